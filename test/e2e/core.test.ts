import { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countChatInput, inputByteUpperBound } from "../../src/tokens/index.js";
import { streamApiError } from "./governance.js";
import { ADMIN_TOKEN, auditRecords, type Harness, KEYS, keyEntry, MODELS, startHarness } from "./harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness(`${MODELS}
keys:
${keyEntry("alice-dev", KEYS.alice, "{ user: alice, role: developer, team: research }")}
${keyEntry("bob-admin", KEYS.bob, "{ user: bob, role: admin, team: platform }")}
`);
});
afterAll(async () => h.close());

async function expectApiError(promise: Promise<unknown>, status: number, code: string): Promise<APIError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(APIError);
    const apiError = error as APIError;
    expect(apiError.status).toBe(status);
    expect(apiError.code).toBe(code);
    return apiError;
  }
  throw new Error(`expected ${status} ${code}`);
}

describe("openai SDK through the gateway", () => {
  it("serves a non-streamed chat completion with cost and request id, replacing the client's key", async () => {
    const { data, response } = await h
      .client(KEYS.alice)
      .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:hello there" }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe("hello there");
    expect(response.headers.get("x-request-id")).toMatch(/^req_/);
    expect(Number(response.headers.get("x-gateway-cost"))).toBeGreaterThan(0);
    const seen = h.mock.requests.at(-1)!;
    expect(seen.headers.authorization).toBe("Bearer sk-upstream-secret");
  });

  it("streams chunks as they arrive and hides the usage chunk the client did not ask for", async () => {
    const stream = await h.client(KEYS.alice).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "chunks:5 say:one two three four five" }],
      stream: true,
    });
    let text = "";
    let usageSeen = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usageSeen = true;
      // Asked for on the client's behalf, so OpenAI's `usage: null` on every chunk is stripped too.
      expect("usage" in chunk).toBe(false);
    }
    expect(text).toBe("one two three four five");
    expect(usageSeen).toBe(false);
    const upstreamBody = h.mock.requests.at(-1)!.body as { stream_options?: { include_usage?: boolean } };
    expect(upstreamBody.stream_options?.include_usage).toBe(true);
    const records = await auditRecords(h);
    const last = records.at(-1)!;
    expect(last.stream).toBe(true);
    expect(last.output_tokens).toBe(5);
    expect(last.cost).toBeGreaterThan(0);
  });

  it("answers HEAD on a GET route with its x-request-id, the id of its audit record", async () => {
    const response = await fetch(`${h.gateway.url}/v1/models`, { method: "HEAD", headers: { authorization: `Bearer ${KEYS.alice}` } });
    expect(response.status).toBe(200);
    const id = response.headers.get("x-request-id");
    expect(id).toMatch(/^req_/);
    let record: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && record === undefined; i++) {
      record = (await auditRecords(h)).find((r) => r.id === id);
      if (record === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(record).toMatchObject({ method: "HEAD", path: "/v1/models", status: 200 });
  });

  it("sends an edited body upstream with the members it did not edit as the client wrote them", async () => {
    const sent = '{"model":"gpt-4o-mini","stream":true,"seed":9007199254740993,"temperature":1.0,"messages":[{"role":"user","content":"say:hi"}]}';
    const response = await fetch(`${h.gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.alice}`, "content-type": "application/json" },
      body: sent,
    });
    expect(response.status).toBe(200);
    await response.text();
    // The mock parses what it gets; its raw text shows the number JSON.parse would round to ...992.
    const raw = h.mock.requests.at(-1)!.rawBody;
    expect(raw).toBe(`${sent.slice(0, -1)},"stream_options":{"include_usage":true}}`);
  });

  it("sends a stream's headers within a moment even while the upstream holds back its first event", async () => {
    const controller = new AbortController();
    const started = Date.now();
    const res = await fetch(`${h.gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.alice}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "stall_after:0" }] }),
      signal: AbortSignal.any([controller.signal, AbortSignal.timeout(5000)]),
    });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    controller.abort();
  });

  it("passes usage through when the client asked for it", async () => {
    const stream = await h.client(KEYS.alice).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "say:a b" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage = null;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    expect(usage).not.toBeNull();
  });

  it("serves embeddings and responses", async () => {
    const embedding = await h.client(KEYS.alice).embeddings.create({ model: "text-embedding-3-small", input: "hi" });
    expect(embedding.data[0]?.embedding.length).toBe(8);
    const response = await h.client(KEYS.alice).responses.create({ model: "gpt-4o-mini", input: "say:from responses" });
    expect(response.output_text).toBe("from responses");
    // A served model on the wrong endpoint is told apart from one that does not exist.
    const wrongKind = await expectApiError(h.client(KEYS.alice).embeddings.create({ model: "gpt-4o-mini", input: "hi" }), 404, "model_not_found");
    expect(wrongKind.message).toContain("is a chat model, not served on /v1/embeddings");
    const embeddingAsChat = await expectApiError(
      h.client(KEYS.alice).chat.completions.create({ model: "text-embedding-3-small", messages: [{ role: "user", content: "hi" }] }),
      404,
      "model_not_found",
    );
    expect(embeddingAsChat.message).toContain("is an embedding model");
  });

  it("raises an upstream's error event in a Responses stream as an APIError in the SDK, as in a chat stream", async () => {
    for (const stream of [
      await h.client(KEYS.alice).responses.create({ model: "gpt-4o-mini", input: "tokens:10 chunks:10 error_after:3", stream: true }),
      await h.client(KEYS.alice).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "tokens:10 chunks:10 error_after:3" }], stream: true }),
    ]) {
      expect((await streamApiError(stream, "server_error")).message).toContain("(mock)");
    }
  });

  it("never echoes a secret sent as the model name, in the error or the record: keys (the caller's or another's), the admin token, the upstream's key", async () => {
    for (const secret of [KEYS.alice, KEYS.bob, ADMIN_TOKEN, "sk-upstream-secret"]) {
      const error = await expectApiError(h.client(KEYS.alice).chat.completions.create({ model: secret, messages: [{ role: "user", content: "hi" }] }), 404, "model_not_found");
      expect(error.message).not.toContain(secret);
      expect(error.message).toContain("[REDACTED_SECRET]");
      const listed = await expectApiError(h.client(KEYS.alice).models.retrieve(secret), 404, "model_not_found");
      expect(listed.message).not.toContain(secret);
    }
    const text = JSON.stringify((await auditRecords(h)).slice(-8));
    for (const secret of [KEYS.alice, KEYS.bob, ADMIN_TOKEN, "sk-upstream-secret"]) expect(text).not.toContain(secret);
    // Any other unknown name is shown as sent.
    const plain = await expectApiError(h.client(KEYS.alice).chat.completions.create({ model: "gpt-9", messages: [{ role: "user", content: "hi" }] }), 404, "model_not_found");
    expect(plain.message).toContain("`gpt-9`");
  });

  it("answers a path after a double slash with 404 not_found whoever asks, never a 500", async () => {
    for (const path of ["//v1/chat/completions", "//admin/keys", "//x"]) {
      const res = await fetch(`${h.gateway.url}${path}`, { headers: { authorization: `Bearer ${KEYS.alice}` } });
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
    }
  });

  it("answers and records an embeddings call that asks for a stream as what it is: no stream", async () => {
    const res = await fetch(`${h.gateway.url}/v1/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.alice}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "text-embedding-3-small", input: "hi", stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    const id = res.headers.get("x-request-id");
    await res.json();
    expect((await auditRecords(h)).find((r) => r.id === id)).toMatchObject({ path: "/v1/embeddings", stream: false });
  });

  it("lists only the configured models", async () => {
    const models = await h.client(KEYS.alice).models.list();
    const ids = models.data.map((m) => m.id).sort();
    expect(ids).toEqual(["free-model", "gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]);
    const one = await h.client(KEYS.alice).models.retrieve("gpt-4o-mini");
    expect(one.id).toBe("gpt-4o-mini");
  });

  it("refuses a bad key, an unknown model and bad bodies with OpenAI-shaped errors", async () => {
    await expectApiError(h.client("sk-wrong").chat.completions.create({ model: "gpt-4o-mini", messages: [] }), 401, "invalid_api_key");
    // A key sent where the gateway does not read it: the message says where it must go.
    for (const headers of [{ authorization: `Basic ${Buffer.from(`u:${KEYS.alice}`).toString("base64")}` }, { "api-key": KEYS.alice }, {}]) {
      const res = await fetch(`${h.gateway.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: "{}" });
      expect(res.status).toBe(401);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("invalid_api_key");
      expect(error.message).toContain("Bearer <key>");
    }
    await expectApiError(
      h.client(KEYS.alice).chat.completions.create({ model: "gpt-5-nope", messages: [{ role: "user", content: "x" }] }),
      404,
      "model_not_found",
    );
    const bad = await fetch(`${h.gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.alice}`, "content-type": "text/plain" },
      body: "{not json",
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_json");
    const wrongShape = await fetch(`${h.gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.alice}` },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: "nope" }),
    });
    const body = (await wrongShape.json()) as { error: { code: string; param: string; type: string } };
    expect(wrongShape.status).toBe(400);
    expect(body.error).toMatchObject({ code: "invalid_body", param: "messages", type: "invalid_request_error" });
    // The refused body's record still names the model it asked for.
    const refusedId = wrongShape.headers.get("x-request-id");
    expect((await auditRecords(h)).find((r) => r.id === refusedId)).toMatchObject({ model: "gpt-4o-mini", error_code: "invalid_body" });
    const deep = await fetch(`${h.gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.alice}` },
      body: `${"[".repeat(100)}${"]".repeat(100)}`,
    });
    expect(deep.status).toBe(400);
    expect(((await deep.json()) as { error: { code: string } }).error.code).toBe("invalid_body");
    const huge = await fetch(`${h.gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.alice}` },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x".repeat(11 * 1024 * 1024) }] }),
    });
    expect(huge.status).toBe(413);
    const unknown = await fetch(`${h.gateway.url}/v1/nope`, { headers: { authorization: `Bearer ${KEYS.alice}` } });
    expect(unknown.status).toBe(404);
    const wrongMethod = await fetch(`${h.gateway.url}/v1/chat/completions`, { headers: { authorization: `Bearer ${KEYS.alice}` } });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
  });

  it("governs a call path with a query string as the plain path (hono's route, not the direct listener)", async () => {
    const before = (await auditRecords(h)).length;
    const viaQuery = await fetch(`${h.gateway.url}/v1/chat/completions?trace=1`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.alice}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:via query" }] }),
    });
    expect(viaQuery.status).toBe(200);
    expect(viaQuery.headers.get("x-request-id")).toMatch(/^req_/);
    expect(((await viaQuery.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content).toBe("via query");
    const bad = await fetch(`${h.gateway.url}/v1/chat/completions?trace=1`, { method: "POST", headers: { authorization: `Bearer ${KEYS.alice}` }, body: "{" });
    expect(bad.status).toBe(400);
    const records = await auditRecords(h);
    expect(records.length).toBe(before + 2);
    expect(records.slice(-2).map((r) => [r.action, r.status])).toEqual([
      ["chat.completions", 200],
      ["chat.completions", 400],
    ]);
  });

  it("relays upstream errors with their status and body", async () => {
    const error = await expectApiError(
      h.client(KEYS.alice).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "error:429" }] }),
      429,
      "rate_limit_exceeded",
    );
    expect(error.message).toBeTruthy();
  });

  it("audits input tokens without limits: the usage, else the tokenizer's count (none needed one in advance)", async () => {
    const body = (content: string) => ({ model: "gpt-4o-mini", messages: [{ role: "user" as const, content }] });
    const counted = await h.client(KEYS.alice).chat.completions.create(body("say:counted"));
    await h.client(KEYS.alice).chat.completions.create(body("no_usage say:uncounted"));
    await expect(h.client(KEYS.alice).chat.completions.create(body("error:400 failed"))).rejects.toMatchObject({ status: 400 });
    const records = (await auditRecords(h)).slice(-3);
    expect(records.map((r) => r.input_tokens)).toEqual([
      counted.usage?.prompt_tokens,
      countChatInput(body("no_usage say:uncounted"), "o200k_base"),
      countChatInput(body("error:400 failed"), "o200k_base"),
    ]);
    // Counted, not bounded from the bytes (which is all the gateway needed before the call).
    expect(records[1]!.input_tokens).toBeLessThan(inputByteUpperBound(body("no_usage say:uncounted"), "chat"));
  });

  it("records an aborted stream as 499 client_closed and aborts the upstream", async () => {
    const abortsBefore = h.mock.aborts;
    const controller = new AbortController();
    const stream = await h.client(KEYS.alice).chat.completions.create(
      { model: "gpt-4o-mini", messages: [{ role: "user", content: "tokens:50 chunks:50 delay:50" }], stream: true },
      { signal: controller.signal },
    );
    let received = 0;
    try {
      for await (const _chunk of stream) {
        received++;
        if (received === 3) controller.abort();
      }
    } catch {
      // The SDK raises or ends quietly on abort depending on timing; either way the client is gone.
    }
    expect(received).toBeGreaterThanOrEqual(3);
    await h.mock.waitFor((m) => m.aborts > abortsBefore);
    await new Promise((r) => setTimeout(r, 100));
    const records = await auditRecords(h);
    const aborted = records.find((r) => r.status === 499);
    expect(aborted?.error_code).toBe("client_closed");
  });

  it("with no tool rules, audits each declared tool and each tool call as the default ALLOW decided it", async () => {
    const tools = ["search", "query_db"].map((name) => ({ type: "function" as const, function: { name, parameters: { type: "object" } } }));
    for (const stream of [false, true]) {
      const body = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: 'call_tool:search {"q":"x"}' }], tools };
      if (stream) {
        for await (const _chunk of await h.client(KEYS.alice).chat.completions.create({ ...body, stream: true })) {
          // drained
        }
      } else {
        await h.client(KEYS.alice).chat.completions.create(body);
      }
      let record: Record<string, unknown> | undefined;
      for (let i = 0; i < 100 && record === undefined; i++) {
        record = (await auditRecords(h)).find((r) => r.stream === stream && (r.tool_calls as string[] | undefined)?.includes("search"));
        if (record === undefined) await new Promise((r) => setTimeout(r, 20));
      }
      expect(record?.tool_decisions, `stream ${stream}`).toEqual([
        { action: "tool.register", tool: "search", effect: "ALLOW", rule: null },
        { action: "tool.register", tool: "query_db", effect: "ALLOW", rule: null },
        { action: "tool.call", tool: "search", effect: "ALLOW", rule: null },
      ]);
    }
  });

  it("charges a stream cut short in its tool call with the arguments it had streamed", async () => {
    const controller = new AbortController();
    const args = JSON.stringify({ query: "quarterly risks ".repeat(40) });
    const stream = await h.client(KEYS.alice).chat.completions.create(
      { model: "gpt-4o-mini", messages: [{ role: "user", content: `call_tool:search ${args} chunks:20 delay:50` }], stream: true },
      { signal: controller.signal },
    );
    let streamed = "";
    try {
      for await (const chunk of stream) {
        streamed += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "";
        if (streamed.length > 100) controller.abort();
      }
    } catch {
      // The client left on purpose.
    }
    expect(streamed.length).toBeGreaterThan(100);
    let record: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && record === undefined; i++) {
      record = (await auditRecords(h)).filter((r) => r.status === 499).at(-1);
      if (record?.tool_calls === undefined || (record.tool_calls as string[]).length === 0) record = undefined;
      if (record === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(record).toMatchObject({ error_code: "client_closed", tool_calls: ["search"] });
    expect(record?.output_tokens).toBeGreaterThan(10);
  });
});
