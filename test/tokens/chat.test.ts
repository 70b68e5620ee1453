import { describe, expect, test } from "vitest";
import { countChatInput, countResponsesInput } from "../../src/tokens/index.js";
import { countTokens } from "../../src/tokens/count.js";

// The openai-cookbook "How to count tokens" example, whose counts the API itself reported.
const cookbookMessages = [
  { role: "system", content: "You are a helpful, pattern-following assistant that translates corporate jargon into plain English." },
  { role: "system", name: "example_user", content: "New synergies will help drive top-line growth." },
  { role: "system", name: "example_assistant", content: "Things working well together will increase revenue." },
  {
    role: "system",
    name: "example_user",
    content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
  },
  { role: "system", name: "example_assistant", content: "Let's talk later when we're less busy about how to do better." },
  { role: "user", content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
];

describe("countChatInput", () => {
  test("matches the prompt_tokens OpenAI reports for the cookbook example", () => {
    expect(countChatInput({ messages: cookbookMessages }, "cl100k_base")).toBe(129);
    expect(countChatInput({ messages: cookbookMessages }, "o200k_base")).toBe(124);
  });

  test("adds 3 per message, the role, the content, 1 + the name, and 3 for priming", () => {
    const body = {
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "You are helpful." },
        { role: "user", name: "bob", content: "hello world" },
      ],
    };
    // (3 + system 1 + 4) + (3 + user 1 + hello world 2 + bob 1 + 1) + 3
    expect(countChatInput(body, "o200k_base")).toBe(19);
  });

  test("counts text parts and a fixed 85 per image part", () => {
    const body = {
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "hello world" },
            { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
            { type: "text", text: "hello world" },
          ],
        },
      ],
    };
    expect(countChatInput(body, "o200k_base")).toBe(3 + 1 + 2 + 85 + 2 + 3);
  });

  test("counts tool calls from name and arguments, and the tool's reply", () => {
    const body = {
      messages: [
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
        },
        { role: "tool", tool_call_id: "call_1", content: "sunny" },
      ],
    };
    // (3 + assistant 1 + get_weather 2 + args 5) + (3 + tool 1 + call_1 3 + sunny 2) + 3
    expect(countChatInput(body, "o200k_base")).toBe(23);
  });

  test("counts tool definitions from their JSON", () => {
    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }];
    const without = countChatInput({ messages: [] }, "o200k_base");
    const withTools = countChatInput({ messages: [], tools }, "o200k_base");
    expect(without).toBe(3);
    expect(withTools - without).toBeGreaterThan(10);
    expect(countChatInput({ messages: [], functions: tools }, "o200k_base")).toBe(withTools);
  });

  test("counts a structured answer's schema, which the model is given as prompt", () => {
    const schema = { type: "object", properties: { city: { type: "string", description: "the city the user asked about" } } };
    const without = countChatInput({ messages: [] }, "o200k_base");
    const chat = countChatInput({ messages: [], response_format: { type: "json_schema", json_schema: { name: "weather", schema } } }, "o200k_base");
    expect(chat - without).toBeGreaterThan(15);
    const responses = countResponsesInput({ input: "hi", text: { format: { type: "json_schema", name: "weather", schema } } }, "o200k_base");
    expect(responses - countResponsesInput({ input: "hi" }, "o200k_base")).toBeGreaterThan(15);
  });

  test("counts repeated tool definitions the same as the first time, per encoding", () => {
    const tools = [{ type: "function", function: { name: "lookup_order", description: "Finds an order by id", parameters: { type: "object" } } }];
    const json = JSON.stringify(tools);
    for (const encoding of ["o200k_base", "cl100k_base"] as const) {
      const expected = 3 + countTokens(json, encoding);
      expect(countChatInput({ messages: [], tools }, encoding)).toBe(expected);
      expect(countChatInput({ messages: [], tools: JSON.parse(json) }, encoding)).toBe(expected);
    }
  });
});
