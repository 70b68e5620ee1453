import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/http/errors.js";
import { jsonDepth, parseJsonBody } from "../../src/openai/json-body.js";
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
    expect(jsonDepth('{"a":[1,{"b":"[[[["}]}', 100)).toBe(3);
    expect(jsonDepth('"\\"[["', 100)).toBe(0);
  });

  it("answers invalid UTF-8 and invalid JSON with invalid_json, too deep with invalid_body", () => {
    expect(codeOf(() => parseJsonBody(Buffer.from([0x7b, 0xff, 0x7d]), 64))).toBe("400 invalid_json");
    expect(codeOf(() => parseJsonBody(Buffer.from("{nope"), 64))).toBe("400 invalid_json");
    expect(codeOf(() => parseJsonBody(Buffer.from("[".repeat(65) + "]".repeat(65)), 64))).toBe("400 invalid_body");
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
