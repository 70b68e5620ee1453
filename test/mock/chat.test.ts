import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type MockUpstream, startMockUpstream } from "../../mock/upstream.js";

let mock: MockUpstream;
let client: OpenAI;

beforeAll(async () => {
  mock = await startMockUpstream();
  client = new OpenAI({ baseURL: mock.url, apiKey: "x", maxRetries: 0 });
});
afterAll(() => mock.close());
beforeEach(() => mock.reset());

const ask = (text: string) => [{ role: "user" as const, content: text }];

describe("chat completions, non-stream", () => {
  it("answers with OpenAI's shape and deterministic usage", async () => {
    const res = await client.chat.completions.create({ model: "gpt-4o", messages: ask("say:Hello there friend") });
    expect(res.object).toBe("chat.completion");
    expect(res.model).toBe("gpt-4o");
    expect(res.choices[0]?.message).toMatchObject({ role: "assistant", content: "Hello there friend" });
    expect(res.choices[0]?.finish_reason).toBe("stop");
    // "say:Hello there friend" = 22 chars -> ceil(22/4)
    expect(res.usage).toMatchObject({ prompt_tokens: 6, completion_tokens: 3, total_tokens: 9 });
    expect(res.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
  });

  it("tokens:N yields N words; cached:N fills cached_tokens", async () => {
    const res = await client.chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "system", content: "x".repeat(400) }, ...ask("tokens:25 cached:50")],
    });
    expect(res.choices[0]?.message.content?.split(" ")).toHaveLength(25);
    expect(res.usage?.completion_tokens).toBe(25);
    expect(res.usage?.prompt_tokens).toBe(Math.ceil((400 + "tokens:25 cached:50".length) / 4));
    expect(res.usage?.prompt_tokens_details?.cached_tokens).toBe(50);
  });

  it("stops at the request's output limit, as a real model does", async () => {
    const cut = await client.chat.completions.create({ model: "gpt-4o", messages: ask("tokens:40"), max_completion_tokens: 12 });
    expect(cut.choices[0]?.message.content?.split(" ")).toHaveLength(12);
    expect(cut.choices[0]?.finish_reason).toBe("length");
    expect(cut.usage?.completion_tokens).toBe(12);
    const said = await client.chat.completions.create({ model: "gpt-4o", messages: ask("say:one two  three four"), max_tokens: 2 });
    expect(said.choices[0]?.message.content).toBe("one two");
    const within = await client.chat.completions.create({ model: "gpt-4o", messages: ask("tokens:5"), max_tokens: 5 });
    expect(within.choices[0]?.finish_reason).toBe("stop");
    expect(within.usage?.completion_tokens).toBe(5);
  });

  it("no_usage omits usage", async () => {
    const res = await client.chat.completions.create({ model: "gpt-4o", messages: ask("no_usage") });
    expect(res.usage).toBeUndefined();
  });

  it("records the request with headers and parsed body", async () => {
    await client.chat.completions.create({ model: "gpt-4o", messages: ask("hi") });
    const rec = mock.requests[0];
    expect(rec).toMatchObject({ method: "POST", path: "/v1/chat/completions", completed: true, aborted: false, status: 200 });
    expect(rec?.headers.authorization).toBe("Bearer x");
    expect(rec?.body).toMatchObject({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
  });
});

describe("chat completions, stream", () => {
  it("streams role first, content in N chunks, finish_reason last, no usage unless asked", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o",
      messages: ask("say:one two three four five six\nchunks:3"),
      stream: true,
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
    const contents = chunks.map((c) => c.choices[0]?.delta.content).filter((c) => c);
    expect(contents).toEqual(["one two ", "three four ", "five six"]);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe("stop");
    expect(chunks.every((c) => c.usage === undefined)).toBe(true);
  });

  it("include_usage adds a final chunk with empty choices and usage: null before it", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o",
      messages: ask("tokens:7"),
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({ completion_tokens: 7, prompt_tokens: 2 });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
  });

  it("no_usage suppresses the usage chunk even when asked", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o",
      messages: ask("no_usage"),
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
  });

  it("delivers chunks incrementally when chunkDelayMs is set", async () => {
    const slow = await startMockUpstream({ chunkDelayMs: 100 });
    try {
      const c = new OpenAI({ baseURL: slow.url, apiKey: "x", maxRetries: 0 });
      const started = Date.now();
      const stream = await c.chat.completions.create({ model: "m", messages: ask("tokens:5 chunks:5"), stream: true });
      const arrivals: number[] = [];
      for await (const _ of stream) arrivals.push(Date.now() - started);
      // 1 role + 5 content + finish = 7 frames, 100ms apart: the first is seen long before the last is sent.
      expect(arrivals).toHaveLength(7);
      expect(arrivals[0]).toBeLessThan(300);
      expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(500);
    } finally {
      await slow.close();
    }
  });

  it("the SDK stream helper accumulates text", async () => {
    const final = await client.chat.completions
      .stream({ model: "gpt-4o", messages: ask("say:streamed words arrive here\nchunks:4") })
      .finalChatCompletion();
    expect(final.choices[0]?.message.content).toBe("streamed words arrive here");
  });
});
