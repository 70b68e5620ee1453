import { describe, expect, it } from "vitest";
import { visitDeclaredTools } from "../../src/openai/declared-tools.js";
import { parseJsonBody } from "../../src/openai/json-body.js";
import { measureJson } from "../../src/tokens/json-shape.js";
import { rawJsonOf } from "../../src/util/raw-json.js";

const tool = (name: string) => ({ type: "function", function: { name, description: `${name} the docs`, parameters: { type: "object", properties: { q: { type: "string" } } } } });

/** A measure that counts characters and how often it was asked. */
function countingMeasure() {
  const asked: string[] = [];
  const measure = (text: string): number => {
    asked.push(text);
    return text.length;
  };
  return { measure, asked };
}

function parsed(text: string): Record<string, unknown> {
  return parseJsonBody(Buffer.from(text), 64) as Record<string, unknown>;
}

describe("measureJson by the text the tools were parsed from", () => {
  it("counts a call's tools as their JSON, once per distinct text", () => {
    const { measure, asked } = countingMeasure();
    const tools = [tool("search"), tool("query_db")];
    const expected = JSON.stringify(tools).length;
    const first = parsed(JSON.stringify({ model: "m", tools, messages: [] }));
    expect(rawJsonOf(first.tools)).toBe(JSON.stringify(tools));
    expect(measureJson(first.tools, measure)).toBe(expected);
    // The same text again, as new objects: found by the text, not serialised and measured again.
    expect(measureJson(parsed(JSON.stringify({ tools, model: "m" })).tools, measure)).toBe(expected);
    expect(asked).toHaveLength(1);
    // Spaced otherwise, the text is another key, measured as its JSON (the same count).
    expect(measureJson(parsed(`{"model":"m", "tools" : ${JSON.stringify(tools, null, 2)} }`).tools, measure)).toBe(expected);
    expect(asked).toHaveLength(2);
    // Other tools are measured for themselves.
    const other = [tool("delete_everything")];
    expect(measureJson(parsed(JSON.stringify({ tools: other })).tools, measure)).toBe(JSON.stringify(other).length);
  });

  it("knows no text for nested or edited tools, which are serialised as before", () => {
    const body = parsed(JSON.stringify({ model: "m", extra: { tools: [tool("a")] }, tools: [tool("b")] }));
    expect(rawJsonOf((body.extra as { tools: unknown }).tools)).toBeUndefined();
    expect(rawJsonOf(body.tools)).toBe(JSON.stringify([tool("b")]));
    // Stripping builds a new list: its count is its own.
    const stripped = (body.tools as unknown[]).filter(() => false);
    const { measure } = countingMeasure();
    expect(measureJson(stripped, measure)).toBe(2);
    // A `tools` that is not a list or object, or a key spelled with an escape, has no text either.
    expect(rawJsonOf(parsed('{"tools":"x","a":[1]}').a)).toBeUndefined();
    expect(rawJsonOf(parsed('{"tool\\u0073":[1]}').tools)).toBeUndefined();
  });

  it("counts a list whose namespace lost a stripped tool as it now is, not as it was sent", () => {
    const namespace = { type: "namespace", name: "ns", tools: [{ type: "function", name: "keep_me" }, { type: "function", name: "strip_me", description: "a long description ".repeat(20) }] };
    const body = parsed(JSON.stringify({ model: "m", input: "hi", tools: [namespace, { type: "function", name: "other" }] }));
    visitDeclaredTools("responses", body, (name) => name !== "strip_me");
    const { measure } = countingMeasure();
    expect(measureJson(body.tools, measure)).toBe(JSON.stringify(body.tools).length);
    expect(JSON.stringify(body.tools)).not.toContain("strip_me");
  });
});
