import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockUpstream, startMockUpstream } from "../../mock/upstream.js";

let mock: MockUpstream;
let client: OpenAI;

beforeAll(async () => {
  mock = await startMockUpstream({ chunks: 3 });
  client = new OpenAI({ baseURL: mock.url, apiKey: "x", maxRetries: 0 });
});
afterAll(() => mock.close());

const tools = [{ type: "function" as const, name: "lookup", parameters: { type: "object", properties: {} }, strict: false }];

describe("responses API", () => {
  it("non-stream message with output_text and usage", async () => {
    const res = await client.responses.create({ model: "gpt-4o", input: "say:Hi from responses", instructions: "be brief" });
    expect(res.object).toBe("response");
    expect(res.status).toBe("completed");
    expect(res.output_text).toBe("Hi from responses");
    expect(res.output[0]).toMatchObject({ type: "message", role: "assistant", content: [{ type: "output_text" }] });
    const chars = "say:Hi from responses".length + "be brief".length;
    expect(res.usage).toMatchObject({ input_tokens: Math.ceil(chars / 4), output_tokens: 3 });
  });

  it("reads directives from the last user item of an input array", async () => {
    const res = await client.responses.create({
      model: "gpt-4o",
      tools,
      input: [
        { role: "user", content: "say:ignored" },
        { role: "user", content: [{ type: "input_text", text: 'call_tool:lookup {"q":"x"}' }] },
      ],
    });
    expect(res.output).toEqual([expect.objectContaining({ type: "function_call", name: "lookup", arguments: '{"q":"x"}' })]);
  });

  it("stream emits the real event sequence and the helper builds the final response", async () => {
    const stream = client.responses.stream({ model: "gpt-4o", input: "tokens:6" });
    const types: string[] = [];
    stream.on("event", (e) => types.push(e.type));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe("lorem ipsum dolor sit amet consectetur");
    expect(final.usage?.output_tokens).toBe(6);
    expect(types).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
  });

  it("stream with a function call", async () => {
    const stream = await client.responses.create({ model: "gpt-4o", tools, input: "use a tool", stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const added = events.find((e) => e.type === "response.output_item.added");
    expect(added?.type === "response.output_item.added" && added.item).toMatchObject({ type: "function_call", name: "lookup" });
    expect(events.some((e) => e.type === "response.function_call_arguments.delta")).toBe(true);
    const done = events.at(-1);
    expect(done?.type).toBe("response.completed");
    if (done?.type === "response.completed") {
      expect(done.response.output[0]).toMatchObject({ type: "function_call", arguments: "{}", status: "completed" });
    }
  });

  it("raw wire format is `event: X\\ndata: {...}`", async () => {
    const res = await fetch(`${mock.url}/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", input: "say:x", stream: true }),
    });
    const text = await res.text();
    expect(text.startsWith('event: response.created\ndata: {"type":"response.created"')).toBe(true);
    expect(text.trimEnd().split("\n\n")).toHaveLength(9); // 4 lifecycle + 1 delta + 4 closing events, no [DONE]
  });
});
