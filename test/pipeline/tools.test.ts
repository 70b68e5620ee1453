import { describe, expect, it } from "vitest";
import { toolName } from "../../src/pipeline/tools.js";

describe("toolName", () => {
  it("names every kind of declared tool a rule may govern", () => {
    expect(toolName({ type: "function", function: { name: "search", parameters: {} } })).toBe("search");
    expect(toolName({ type: "custom", custom: { name: "shell_command", format: { type: "text" } } })).toBe("shell_command");
    expect(toolName({ name: "legacy_fn", parameters: {} })).toBe("legacy_fn");
    expect(toolName({ type: "function", name: "responses_fn" })).toBe("responses_fn");
    expect(toolName({ type: "custom", name: "responses_custom" })).toBe("responses_custom");
    expect(toolName({ type: "web_search" })).toBe("web_search");
    expect(toolName({ type: "function" })).toBeNull();
    expect(toolName(null)).toBeNull();
  });
});
