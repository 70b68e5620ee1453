import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  countChatInput,
  countEmbeddingsInput,
  countResponsesInput,
  countTokens,
  inputByteUpperBound,
} from "../../src/tokens/index.js";

const text = fc.string({ unit: "binary", maxLength: 200 });
const part = fc.oneof(
  fc.record({ type: fc.constant("text"), text }),
  fc.record({ type: fc.constant("image_url"), image_url: fc.record({ url: fc.string() }) }),
  fc.anything(),
);
const message = fc.record(
  {
    role: fc.constantFrom("system", "user", "assistant", "tool"),
    content: fc.oneof(text, fc.array(part, { maxLength: 4 }), fc.constant(null)),
    name: text,
    tool_calls: fc.array(fc.record({ function: fc.record({ name: text, arguments: text }) }), { maxLength: 2 }),
  },
  { requiredKeys: ["role"] },
);
const chatBody = fc.record({ messages: fc.array(fc.oneof(message, fc.anything()), { maxLength: 6 }), tools: fc.anything() });
const responsesBody = fc.record({
  instructions: fc.oneof(text, fc.anything()),
  input: fc.oneof(text, fc.array(fc.oneof(message, fc.anything()), { maxLength: 6 })),
});
const embeddingsBody = fc.record({
  input: fc.oneof(text, fc.array(fc.oneof(text, fc.integer(), fc.array(fc.integer())), { maxLength: 6 })),
});

describe("inputByteUpperBound", () => {
  test("a token is at least one byte", () => {
    fc.assert(
      fc.property(text, (value) => {
        expect(countTokens(value, "o200k_base")).toBeLessThanOrEqual(Buffer.byteLength(value));
        expect(countTokens(value, "cl100k_base")).toBeLessThanOrEqual(Buffer.byteLength(value));
      }),
    );
  });

  test("bounds the exact chat count", () => {
    fc.assert(
      fc.property(chatBody, (body) => {
        const bound = inputByteUpperBound(body, "chat");
        expect(bound).toBeGreaterThanOrEqual(countChatInput(body, "o200k_base"));
        expect(bound).toBeGreaterThanOrEqual(countChatInput(body, "cl100k_base"));
        expect(inputByteUpperBound(body)).toBeGreaterThanOrEqual(bound);
      }),
    );
  });

  test("bounds the exact responses and embeddings counts", () => {
    fc.assert(
      fc.property(responsesBody, embeddingsBody, (responses, embeddings) => {
        expect(inputByteUpperBound(responses, "responses")).toBeGreaterThanOrEqual(countResponsesInput(responses, "o200k_base"));
        expect(inputByteUpperBound(embeddings, "embeddings")).toBeGreaterThanOrEqual(
          countEmbeddingsInput(embeddings, "o200k_base"),
        );
        expect(inputByteUpperBound(responses)).toBeGreaterThanOrEqual(countResponsesInput(responses, "cl100k_base"));
        expect(inputByteUpperBound(embeddings)).toBeGreaterThanOrEqual(countEmbeddingsInput(embeddings, "cl100k_base"));
      }),
    );
  });

  test("is within bytes plus overheads of a plain prompt", () => {
    const body = { messages: [{ role: "user", content: "hello world" }] };
    expect(inputByteUpperBound(body, "chat")).toBe(3 + 4 + 11 + 3);
  });
});

describe("malformed bodies", () => {
  const counters = [
    (body: unknown) => countChatInput(body, "o200k_base"),
    (body: unknown) => countResponsesInput(body, "o200k_base"),
    (body: unknown) => countEmbeddingsInput(body, "o200k_base"),
    (body: unknown) => inputByteUpperBound(body),
  ];

  test.each([
    null,
    undefined,
    42,
    "a string",
    [],
    { messages: "not an array" },
    { messages: [null, 1, "x", { role: 5, content: { text: "hi" }, tool_calls: "no" }] },
    { input: { nested: true } },
    { input: [null, 1.5, { content: 3 }, [["deep"]]] },
  ])("%j is counted without throwing", (body) => {
    for (const count of counters) expect(count(body)).toBeGreaterThanOrEqual(0);
  });

  test("values JSON cannot hold are skipped", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const count of counters) expect(count({ tools: 1n, functions: cyclic, messages: [] })).toBeGreaterThanOrEqual(0);
  });

  test("arbitrary values never throw", () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withMap: true, withSet: true }), (body) => {
        for (const count of counters) expect(Number.isInteger(count(body))).toBe(true);
        for (const count of counters) expect(Number.isInteger(count({ messages: [body], input: body, tools: body }))).toBe(true);
      }),
    );
  });
});
