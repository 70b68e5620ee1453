import { describe, expect, it } from "vitest";
import { splitContent } from "../../mock/content.js";
import { parseDirectives } from "../../mock/directives.js";

describe("parseDirectives", () => {
  it("say: owns the rest of its line only", () => {
    const d = parseDirectives("chunks:2 say:  hello  error:500 world \nno_usage");
    expect(d.say).toBe("hello  error:500 world");
    expect(d.error).toBeUndefined();
    expect(d.chunks).toBe(2);
    expect(d.noUsage).toBe(true);
  });

  it("call_tool takes balanced JSON (nested, braces in strings) and canonicalises it", () => {
    const d = parseDirectives('call_tool:a { "x": {"y": "}{"} } and call_tool:b');
    expect(d.toolCalls).toEqual([
      { name: "a", arguments: '{"x":{"y":"}{"}}' },
      { name: "b", arguments: "{}" },
    ]);
  });

  it("ignores prose that merely looks like a key", () => {
    const d = parseDirectives("The error: was bad, see https://x.y/tokens:5 pre-tokens:3");
    expect(d.error).toBeUndefined();
    expect(d.tokens).toBeUndefined();
  });
});

describe("splitContent", () => {
  it("concatenates back to the input and honours the piece count", () => {
    for (const [text, n] of [["a b c d e", 2], ["abc", 5], ["", 3], ["one two", 1]] as const) {
      const pieces = splitContent(text, n);
      expect(pieces.join("")).toBe(text);
      expect(pieces.length).toBeLessThanOrEqual(Math.max(1, n));
    }
  });
});
