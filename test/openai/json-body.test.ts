import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/http/errors.js";
import { parseJsonBody, scanJson } from "../../src/openai/json-body.js";
import fc from "fast-check";
import { validateBody } from "../../src/openai/schemas.js";

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (error) {
    return error instanceof GatewayError ? `${error.status} ${error.code}${error.options.param ? ` ${error.options.param}` : ""}` : "thrown";
  }
}

describe("request bodies", () => {
  it("measures depth without counting brackets inside strings", () => {
    expect(scanJson('{"a":[1,{"b":"[[[["}]}', 100).depth).toBe(3);
    expect(scanJson('"\\"[["', 100).depth).toBe(0);
    expect(scanJson('{"a\\\\":[[["x\\\\"]]]}', 100).depth).toBe(4);
  });

  it("finds a key its object repeats, with its path, however it is spelled", () => {
    expect(scanJson('{"model":"a","messages":[],"model":"b"}', 64).duplicate).toEqual(["model"]);
    expect(scanJson('{ "a" : [ 1 , { "b" : 2 } ] ,\n "a" : 3 }', 64).duplicate).toEqual(["a"]);
    expect(scanJson('{"messages":[{"role":"user"},{"role":"user","content":"x","content":"y"}]}', 64).duplicate).toEqual(["messages", 1, "content"]);
    // An escape spells the same key: JSON.parse reads both as `model`.
    expect(scanJson('{"model":"a","mod\\u0065l":"b"}', 64).duplicate).toEqual(["model"]);
    expect(scanJson('{"a":{"x":1},"b":{"x":1},"c":["x","x"],"d":"\\"x\\":1,\\"x\\":2"}', 64).duplicate).toBeNull();
    const many = `{${Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`).join(",")},"k7":0}`;
    expect(scanJson(many, 64).duplicate).toEqual(["k7"]);
  });

  it("agrees with JSON.parse on whether a text repeats a key", () => {
    fc.assert(
      fc.property(fc.json({ depthSize: "small" }), fc.nat(), (text, seed) => {
        // Parsing and printing again keeps no duplicates; a copied member inserted at random makes one.
        expect(scanJson(text, 1000).duplicate).toBeNull();
        const value = JSON.parse(text) as unknown;
        if (value === null || typeof value !== "object" || Array.isArray(value) || Object.keys(value).length === 0) return;
        const keys = Object.keys(value);
        const key = keys[seed % keys.length] as string;
        const doubled = `${text.slice(0, -1)},${JSON.stringify(key)}:0}`;
        expect(scanJson(doubled, 1000).duplicate).toEqual([key]);
      }),
      { numRuns: 500 },
    );
  });

  it("answers a repeated key with invalid_body naming it, after the JSON itself is judged", () => {
    expect(codeOf(() => parseJsonBody(Buffer.from('{"model":"gpt-4o","messages":[],"model":"gpt-4o-mini"}'), 64))).toBe("400 invalid_body model");
    expect(codeOf(() => parseJsonBody(Buffer.from('{"a":1,"a":2'), 64))).toBe("400 invalid_json");
  });

  it("answers invalid UTF-8 and invalid JSON with invalid_json, too deep with invalid_body", () => {
    expect(codeOf(() => parseJsonBody(Buffer.from([0x7b, 0xff, 0x7d]), 64))).toBe("400 invalid_json");
    expect(codeOf(() => parseJsonBody(Buffer.from("{nope"), 64))).toBe("400 invalid_json");
    expect(codeOf(() => parseJsonBody(Buffer.from("[".repeat(65) + "]".repeat(65)), 64))).toMatch(/^400 invalid_body /);
    // Too deep names where: the path of the first object or array past the limit.
    const schema = '{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":{"a":{"b":[[1]]}}}}]}';
    expect(codeOf(() => parseJsonBody(Buffer.from(schema), 6))).toBe("400 invalid_body tools[0].function.parameters.a.b");
    expect(parseJsonBody(Buffer.from('{"a":1}'), 64)).toEqual({ a: 1 });
    // A byte order mark would be dropped by the decoder yet forwarded and hashed with the bytes.
    expect(codeOf(() => parseJsonBody(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]), 64))).toBe("400 invalid_json");
  });

  it("checks only the fields the gateway reads, naming the bad one", () => {
    expect(codeOf(() => validateBody("chat.completions", { model: "m", messages: [{ role: "user" }], extra: { any: 1 } }))).toBeNull();
    expect(codeOf(() => validateBody("chat.completions", { model: 1, messages: [] }))).toBe("400 invalid_body model");
    expect(codeOf(() => validateBody("chat.completions", { model: "m", messages: [{ content: "x" }] }))).toBe("400 invalid_body messages[0].role");
    expect(codeOf(() => validateBody("chat.completions", { model: "m", messages: [{ role: "user" }], max_tokens: -1 }))).toBe("400 invalid_body max_tokens");
    // What OpenAI's API refuses too, where the gateway reads it: no message at all, an empty list to embed.
    expect(codeOf(() => validateBody("chat.completions", { model: "m", messages: [] }))).toBe("400 invalid_body messages");
    expect(codeOf(() => validateBody("embeddings", { model: "m", input: [] }))).toBe("400 invalid_body input");
    expect(codeOf(() => validateBody("embeddings", { model: "m", input: { a: 1 } }))).toBe("400 invalid_body input");
    expect(codeOf(() => validateBody("responses", []))).toBe("400 invalid_body");
  });

  it("keeps the original object so unknown fields and their order pass through", () => {
    const body = { z: 1, model: "m", messages: [{ role: "user" }], a: { b: [1] } };
    expect(validateBody("chat.completions", body)).toBe(body);
  });
});
