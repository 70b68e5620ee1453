import OpenAI, { APIError } from "openai";
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
const post = (body: unknown) =>
  fetch(`${mock.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

describe("error directives", () => {
  it("error:STATUS -> SDK APIError with status, type and code", async () => {
    const err = await client.chat.completions.create({ model: "m", messages: ask("error:429") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect(err).toMatchObject({ status: 429, code: "rate_limit_exceeded", type: "requests" });
    const e500 = await client.chat.completions.create({ model: "m", messages: ask("error:500"), stream: true }).catch((e: unknown) => e);
    expect(e500).toMatchObject({ status: 500, type: "server_error" });
  });

  it("retry_after:S sets the Retry-After header", async () => {
    const res = await post({ model: "m", messages: ask("error:503 retry_after:7") });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("7");
  });

  it("error_raw:STATUS answers with a non-JSON body", async () => {
    const res = await post({ model: "m", messages: ask("error_raw:502") });
    expect(res.status).toBe(502);
    expect(res.headers.get("content-type")).toBe("text/html");
    const body = await res.text();
    expect(body.startsWith("<html>")).toBe(true);
    expect(isJson(body)).toBe(false);
  });

  it("invalid JSON bodies get a 400", async () => {
    const res = await post("{nope");
    expect(res.status).toBe(400);
    expect(mock.requests[0]?.body).toBe("{nope");
  });
});

describe("timing and stream faults", () => {
  it("slow_headers:MS delays the response", async () => {
    const started = Date.now();
    await client.chat.completions.create({ model: "m", messages: ask("slow_headers:150") });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it("a client abort is recorded", async () => {
    const ctrl = new AbortController();
    const pending = client.chat.completions.create({ model: "m", messages: ask("slow_headers:5000") }, { signal: ctrl.signal });
    await mock.waitFor((m) => m.requests.length === 1);
    ctrl.abort();
    await expect(pending).rejects.toThrow();
    await mock.waitFor((m) => m.aborts === 1);
    expect(mock.requests[0]).toMatchObject({ aborted: true, completed: false });
  });

  it("stall_after:N sends N frames then hangs until the client leaves", async () => {
    const ctrl = new AbortController();
    const stream = await client.chat.completions.create(
      { model: "m", messages: ask("tokens:10 chunks:10 stall_after:3"), stream: true },
      { signal: ctrl.signal },
    );
    const seen: unknown[] = [];
    const reading = (async () => {
      for await (const c of stream) seen.push(c);
    })().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toHaveLength(3);
    ctrl.abort();
    await reading;
    await mock.waitFor((m) => m.aborts === 1);
    expect(mock.requests[0]).toMatchObject({ aborted: true, completed: false, status: 200 });
  });

  it("reset_after:N destroys the socket mid-stream (not counted as abort)", async () => {
    const stream = await client.chat.completions.create({ model: "m", messages: ask("tokens:10 chunks:10 reset_after:2"), stream: true });
    const seen: unknown[] = [];
    await expect(
      (async () => {
        for await (const c of stream) seen.push(c);
      })(),
    ).rejects.toThrow();
    expect(seen).toHaveLength(2);
    await mock.waitFor((m) => m.requests[0]?.reset === true);
    expect(mock.aborts).toBe(0);
  });

  it("error_after:N ends a stream with the API's own in-stream error event, which the SDK raises", async () => {
    const stream = await client.chat.completions.create({ model: "m", messages: ask("tokens:10 chunks:10 error_after:2"), stream: true });
    const seen: unknown[] = [];
    const failure = await (async () => {
      for await (const c of stream) seen.push(c);
    })().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(APIError);
    expect(String((failure as APIError).message)).toContain("(mock)");
    expect(seen).toHaveLength(2);
    const responses = await fetch(`${mock.url}/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", input: "tokens:10 chunks:10 error_after:3", stream: true }),
    });
    const text = await responses.text();
    expect(text.trimEnd().split("\n\n")).toHaveLength(4);
    expect(text).toContain('event: error\ndata: {"type":"error","message":"The server had an error while processing your request (mock).","code":"server_error"');
  });

  it("reset_after on a non-stream request drops the connection without a response", async () => {
    await expect(client.chat.completions.create({ model: "m", messages: ask("reset_after:0") })).rejects.toThrow(/Connection error/);
  });

  it("malformed_sse emits an unparseable data line", async () => {
    const res = await post({ model: "m", messages: ask("say:a b"), stream: true });
    expect(await res.text()).not.toContain("broken");
    const bad = await post({ model: "m", messages: ask("malformed_sse say:a b"), stream: true });
    const frames = (await bad.text()).split("\n\n").filter((f) => f.startsWith("data: {"));
    expect(frames.filter((f) => !isJson(f.slice(6)))).toHaveLength(1);
  });

  it("latencyMs applies to every request", async () => {
    const slow = await startMockUpstream({ latencyMs: 120 });
    try {
      const started = Date.now();
      await fetch(`${slow.url}/models`);
      expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    } finally {
      await slow.close();
    }
  });
});

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}
