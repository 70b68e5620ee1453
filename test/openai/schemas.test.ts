import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { chatBodySchema, isPlainChatBody, validateBody } from "../../src/openai/schemas.js";

const anyValue = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 5 }),
  fc.double({ noNaN: true }),
  fc.constant(2 ** 60),
  fc.string({ maxLength: 4 }),
  fc.constant({}),
  fc.constant([]),
);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.oneof(arb, anyValue);

const tool = maybe(
  fc.record(
    { type: maybe(fc.constant("function")), function: maybe(fc.record({ name: maybe(fc.string({ maxLength: 6 })) })), name: maybe(fc.string({ maxLength: 6 })) },
    { requiredKeys: [] },
  ),
);

const chatBody = fc.record(
  {
    model: maybe(fc.constantFrom("gpt-4o", "")),
    messages: maybe(
      fc.array(
        maybe(
          fc.record(
            { role: maybe(fc.constantFrom("user", "system")), content: maybe(fc.array(maybe(fc.record({ type: anyValue, text: anyValue }, { requiredKeys: [] })), { maxLength: 2 })) },
            { requiredKeys: [] },
          ),
        ),
        { maxLength: 3 },
      ),
    ),
    stream: anyValue,
    stream_options: maybe(fc.record({ include_usage: anyValue }, { requiredKeys: [] })),
    max_tokens: anyValue,
    max_completion_tokens: anyValue,
    n: anyValue,
    tools: maybe(fc.array(tool, { maxLength: 3 })),
    functions: maybe(fc.array(maybe(fc.record({ name: anyValue }, { requiredKeys: [] })), { maxLength: 2 })),
    temperature: anyValue,
  },
  { requiredKeys: [] },
);

describe("the chat body fast check", () => {
  test("never passes a body the schema refuses", () => {
    fc.assert(
      fc.property(chatBody, (body) => {
        // JSON has no undefined: bodies are compared as the gateway would have parsed them.
        const parsed = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
        if (isPlainChatBody(parsed)) expect(chatBodySchema.safeParse(parsed).success).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  test("passes an ordinary chat body, tools and limits included", () => {
    const body = {
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: [{ type: "text", text: "hi" }] },
      ],
      tools: [{ type: "function", function: { name: "search", parameters: { type: "object" } } }],
      max_tokens: 256,
      stream: true,
      stream_options: { include_usage: true },
      n: 1,
    };
    expect(isPlainChatBody(body)).toBe(true);
    expect(validateBody("chat.completions", body)).toBe(body);
  });

  test("leaves a wrong body to the schema, which names the field", () => {
    expect(isPlainChatBody({ model: "gpt-4o", messages: [{ content: "no role" }] })).toBe(false);
    expect(() => validateBody("chat.completions", { model: "gpt-4o", messages: [{ content: "no role" }] })).toThrow(/messages\[0\]\.role/);
    expect(() => validateBody("chat.completions", { model: "gpt-4o", messages: [{ role: "user" }], max_tokens: -1 })).toThrow(/max_tokens/);
    expect(isPlainChatBody({ model: "gpt-4o", messages: [] })).toBe(false);
    expect(() => validateBody("chat.completions", { model: "gpt-4o", messages: [] })).toThrow(/at least one message/);
  });

  test("names a message content that is neither text, null nor parts", () => {
    for (const content of [5, { bad: true }, true, ["text"], [{ text: "no type" }]]) {
      const body = { model: "gpt-4o", messages: [{ role: "system", content: "ok" }, { role: "user", content }] };
      expect(isPlainChatBody(body)).toBe(false);
      let param: unknown;
      try {
        validateBody("chat.completions", body);
      } catch (error) {
        param = (error as { options?: { param?: unknown } }).options?.param;
      }
      expect(param).toBe("messages[1].content");
    }
    // A text part's text is prompt text the rules read: it must be a string.
    const textPart = { model: "gpt-4o", messages: [{ role: "user", content: [{ type: "text", text: 5 }] }] };
    expect(isPlainChatBody(textPart)).toBe(false);
    expect(() => validateBody("chat.completions", textPart)).toThrow(/messages\[0\]\.content/);
    const assistantCall = { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] };
    expect(isPlainChatBody({ model: "gpt-4o", messages: [assistantCall, { role: "tool", tool_call_id: "c1", content: "done" }] })).toBe(true);
  });
});

describe("the Responses body", () => {
  const paramOf = (body: unknown): unknown => {
    try {
      validateBody("responses", body);
    } catch (error) {
      return (error as { options?: { param?: unknown } }).options?.param;
    }
    return "accepted";
  };

  test("checks each input item's content as a chat message's, naming the item", () => {
    expect(paramOf({ model: "m", input: [{ role: "user", content: "hi" }, { role: "user", content: 5 }] })).toBe("input[1].content");
    expect(paramOf({ model: "m", input: [{ role: "user", content: [{ type: "input_text", text: 5 }] }] })).toBe("input[0].content");
    expect(paramOf({ model: "m", input: ["hi"] })).toBe("input[0]");
    expect(paramOf({ model: "m", input: 5 })).toBe("input");
  });

  test("accepts every kind of item, with or without content", () => {
    const input = [
      { role: "user", content: [{ type: "input_text", text: "hi" }, { type: "input_image", image_url: "x" }] },
      { type: "function_call", call_id: "c1", name: "f", arguments: "{}" },
      { type: "function_call_output", call_id: "c1", output: "ok" },
      { type: "reasoning", id: "r1", summary: [] },
      { type: "item_reference", id: "msg_1" },
    ];
    expect(paramOf({ model: "m", input })).toBe("accepted");
    expect(paramOf({ model: "m", input: "plain" })).toBe("accepted");
  });

  test("refuses a background response, which would be produced past the gateway's judgement and charge", () => {
    expect(paramOf({ model: "m", input: "x", background: true })).toBe("background");
    expect(() => validateBody("responses", { model: "m", input: "x", background: true })).toThrow(/background responses are not served/);
    expect(paramOf({ model: "m", input: "x", background: false })).toBe("accepted");
  });
});

describe("the embeddings body", () => {
  const outcome = (input: unknown): string => {
    try {
      validateBody("embeddings", { model: "m", input });
      return "accepted";
    } catch (error) {
      return `${(error as { code?: string }).code} ${(error as { options?: { param?: unknown } }).options?.param}`;
    }
  };

  test("takes strings and token arrays of whole numbers from 0; refuses an empty or a malformed one", () => {
    for (const input of ["hi", ["a", "b"], [0, 15339], [[1, 2], [3]]]) expect(outcome(input), JSON.stringify(input)).toBe("accepted");
    for (const input of [[-1], [1.5], [[]], [[1], [-2]], [], ["a", [1, 2]], 5]) expect(outcome(input), JSON.stringify(input)).toMatch(/^invalid_body input/);
  });
});
