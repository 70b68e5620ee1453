import OpenAI from "openai";
import type { ChatCompletionTool } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockUpstream, startMockUpstream } from "../../mock/upstream.js";

let mock: MockUpstream;
let client: OpenAI;

beforeAll(async () => {
  mock = await startMockUpstream({ chunks: 3 });
  client = new OpenAI({ baseURL: mock.url, apiKey: "x", maxRetries: 0 });
});
afterAll(() => mock.close());

const tools: ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: {} } } },
  { type: "function", function: { name: "send_email", parameters: { type: "object", properties: {} } } },
];
const ask = (text: string) => [{ role: "user" as const, content: text }];

describe("tool calls", () => {
  it("non-stream call_tool:NAME {args}", async () => {
    const res = await client.chat.completions.create({
      model: "gpt-4o",
      tools,
      messages: ask('please call_tool:send_email {"to": "a@b.c", "body": "hi there"}'),
    });
    const choice = res.choices[0];
    expect(choice?.finish_reason).toBe("tool_calls");
    expect(choice?.message.content).toBeNull();
    expect(choice?.message.tool_calls).toEqual([
      { id: expect.any(String), type: "function", function: { name: "send_email", arguments: '{"to":"a@b.c","body":"hi there"}' } },
    ]);
    expect(res.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it("'use a tool' picks the first declared tool with {} args", async () => {
    const res = await client.chat.completions.create({ model: "gpt-4o", tools, messages: ask("Please use a tool.") });
    expect(res.choices[0]?.message.tool_calls?.[0]).toMatchObject({ function: { name: "get_weather", arguments: "{}" } });
  });

  it("'use a tool' without declared tools is plain text", async () => {
    const res = await client.chat.completions.create({ model: "gpt-4o", messages: ask("use a tool") });
    expect(res.choices[0]?.finish_reason).toBe("stop");
  });

  it("stream: index/id/type/name first, arguments split across deltas, SDK accumulates", async () => {
    const stream = client.chat.completions.stream({
      model: "gpt-4o",
      tools,
      messages: ask('call_tool:get_weather {"city":"Paris"} call_tool:send_email {"to":"x"}'),
    });
    const raw: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    stream.on("chunk", (c) => raw.push(c));
    const final = await stream.finalChatCompletion();
    const calls = final.choices[0]?.message.tool_calls;
    expect(calls?.map((c) => c.type === "function" && [c.function.name, c.function.arguments])).toEqual([
      ["get_weather", '{"city":"Paris"}'],
      ["send_email", '{"to":"x"}'],
    ]);
    expect(final.choices[0]?.finish_reason).toBe("tool_calls");

    const first = raw[0]?.choices[0]?.delta;
    expect(first?.role).toBe("assistant");
    expect(first?.tool_calls?.[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather", arguments: "" } });
    expect(first?.tool_calls?.[0]?.id).toMatch(/^call_/);
    const argDeltas = raw.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []).filter((t) => t.index === 0 && !t.id);
    expect(argDeltas.length).toBe(3);
    expect(argDeltas.every((t) => t.id === undefined && t.function?.name === undefined)).toBe(true);
  });

  it("legacy_function_call answers with function_call (non-stream and stream)", async () => {
    const functions = [{ name: "lookup", parameters: { type: "object", properties: {} } }];
    const res = await client.chat.completions.create({ model: "gpt-4o", functions, messages: ask("use a tool") });
    expect(res.choices[0]?.finish_reason).toBe("function_call");
    expect(res.choices[0]?.message.function_call).toEqual({ name: "lookup", arguments: "{}" });

    const final = await client.chat.completions
      .stream({ model: "gpt-4o", tools, messages: ask('legacy_function_call call_tool:get_weather {"city":"Rome"}') })
      .finalChatCompletion();
    expect(final.choices[0]?.finish_reason).toBe("function_call");
    expect(final.choices[0]?.message.function_call).toEqual({ name: "get_weather", arguments: '{"city":"Rome"}' });
  });
});
