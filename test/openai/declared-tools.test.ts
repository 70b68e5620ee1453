import { describe, expect, it } from "vitest";
import { declaredToolNames, toolName, toolNames, visitDeclaredTools } from "../../src/openai/declared-tools.js";
import { GatewayError } from "../../src/http/errors.js";

describe("toolName", () => {
  it("names every kind of declared tool a rule may govern, where its dialect's upstream reads the name", () => {
    expect(toolName({ type: "function", function: { name: "search", parameters: {} } }, "chat")).toBe("search");
    expect(toolName({ type: "custom", custom: { name: "shell_command", format: { type: "text" } } }, "chat")).toBe("shell_command");
    expect(toolName({ name: "legacy_fn", parameters: {} }, "chat")).toBe("legacy_fn");
    expect(toolName({ type: "function", name: "responses_fn" }, "responses")).toBe("responses_fn");
    expect(toolName({ type: "custom", name: "responses_custom" }, "responses")).toBe("responses_custom");
    expect(toolName({ type: "web_search" }, "responses")).toBe("web_search");
    expect(toolName({ type: "function" }, "chat")).toBeNull();
    expect(toolName({ type: "function", name: 42 }, "responses")).toBeNull();
    expect(toolName(null, "chat")).toBeNull();
  });

  it("never takes the name from a member the upstream ignores", () => {
    expect(toolName({ type: "function", name: "shell_command", function: { name: "harmless" } }, "responses")).toBe("shell_command");
    expect(toolName({ type: "function", name: "harmless", function: { name: "shell_command" } }, "chat")).toBe("shell_command");
    expect(toolName({ type: "custom", custom: { name: "shell_command" }, function: { name: "harmless" } }, "chat")).toBe("shell_command");
    expect(toolName({ type: "custom", name: "shell_command", custom: { name: "harmless" } }, "responses")).toBe("shell_command");
    expect(toolName({ type: "web_search", name: "harmless" }, "responses")).toBe("web_search");
    expect(toolName({ type: "mcp", server_label: "x", name: "ok" }, "responses")).toBe("mcp");
  });

  it("governs a dated built-in tool by its base name", () => {
    expect(toolName({ type: "web_search_preview_2025_03_11" }, "responses")).toBe("web_search_preview");
    expect(toolName({ type: "web_search_2025_08_26" }, "responses")).toBe("web_search");
  });
});

describe("toolNames", () => {
  it("judges a tool of an unknown type (or a misspelt one) by every name an upstream might read", () => {
    expect(toolNames({ type: "Function", function: { name: "execute_code" } }, "chat")).toEqual(["Function", "execute_code"]);
    expect(toolNames({ type: "weird", name: "execute_code", custom: { name: "other" } }, "responses")).toEqual(["weird", "execute_code", "other"]);
    // A function's flat `name` beside chat's `function.name`, which a lenient framework may read.
    expect(toolNames({ type: "function", name: "shell_command", function: { name: "search" } }, "chat")).toEqual(["search", "shell_command"]);
    expect(toolNames({ type: "function", name: "search", function: { name: "shell_command" } }, "responses")).toEqual(["search", "shell_command"]);
    expect(toolNames({ type: "web_search" }, "responses")).toEqual(["web_search"]);
    // A rule may name a dated built-in tool by either name.
    expect(toolNames({ type: "web_search_preview_2025_03_11" }, "responses")).toEqual(["web_search_preview", "web_search_preview_2025_03_11"]);
    expect(toolNames({ type: "function" }, "chat")).toBeNull();
  });

  it("drops such a tool when any of its names is refused", () => {
    const body = { model: "m", tools: [{ type: "Function", function: { name: "execute_code" } }, { type: "function", function: { name: "search" } }] };
    const seen: string[] = [];
    visitDeclaredTools("chat.completions", body, (name) => {
      seen.push(name);
      return name !== "execute_code";
    });
    expect(seen).toEqual(["Function", "execute_code", "search"]);
    expect(body.tools).toEqual([{ type: "function", function: { name: "search" } }]);
  });
});

describe("visitDeclaredTools", () => {
  const responses = () => ({
    model: "m",
    tools: [
      { type: "function", name: "search" },
      { type: "namespace", name: "utils", description: "u", tools: [{ type: "function", name: "shell_command" }, { type: "custom", name: "notes" }] },
    ],
    input: [
      { role: "user", content: "hi" },
      { type: "additional_tools", role: "developer", tools: [{ type: "function", name: "deploy" }, { type: "web_search" }] },
      { type: "tool_search_output", tools: [{ type: "code_interpreter", container: { type: "auto" } }] },
    ],
  });

  it("finds the tools of namespaces and of input items that add tools, in order", () => {
    expect(declaredToolNames("responses", responses())).toEqual(["search", "shell_command", "notes", "deploy", "web_search", "code_interpreter"]);
  });

  it("drops what the visitor refuses from its own list, a namespace left empty with it, and names the members changed", () => {
    const body = responses();
    const edited = visitDeclaredTools("responses", body, (name) => !["shell_command", "notes", "web_search"].includes(name));
    expect(edited).toEqual(["tools", "input"]);
    expect(body.tools).toEqual([{ type: "function", name: "search" }]);
    expect(body.input[1]).toMatchObject({ tools: [{ type: "function", name: "deploy" }] });
    expect(body.input[2]).toMatchObject({ tools: [{ type: "code_interpreter" }] });
  });

  it("keeps a namespace with tools left, and marks `tools` changed", () => {
    const body = responses();
    const sent = body.tools;
    expect(visitDeclaredTools("responses", body, (name) => name !== "notes")).toEqual(["tools"]);
    expect((body.tools[1] as { tools: unknown[] }).tools).toEqual([{ type: "function", name: "shell_command" }]);
    // The edited list is a new one, as when a tool of the list itself goes: nothing keyed by the list as sent stands for it.
    expect(body.tools).not.toBe(sent);
  });

  it("refuses a function tool without a name, naming where it is", () => {
    const check = (action: "chat.completions" | "responses", body: Record<string, unknown>, param: string) => {
      let caught: unknown;
      try {
        declaredToolNames(action, body);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(GatewayError);
      expect((caught as GatewayError).code).toBe("invalid_body");
      expect((caught as GatewayError).toBody().error.param).toBe(param);
    };
    check("chat.completions", { tools: [{ type: "function", function: { name: "a" } }, { type: "function" }] }, "tools[1].function.name");
    check("responses", { tools: [{ type: "namespace", name: "n", tools: [{ type: "function" }] }] }, "tools[0].tools[0].name");
    check("responses", { input: [{ type: "additional_tools", tools: [{ type: "custom", custom: { name: "x" } }] }] }, "input[0].tools[0].name");
    check("responses", { tools: [{ type: "function", name: "" }] }, "tools[0].name");
    check("chat.completions", { tools: [{ type: "function", function: { name: "" } }] }, "tools[0].function.name");
    check("chat.completions", { functions: [{ name: "" }] }, "functions[0].name");
  });

  it("sees no tools in an embeddings body", () => {
    expect(declaredToolNames("embeddings", { tools: [{ type: "function" }] })).toEqual([]);
  });
});
