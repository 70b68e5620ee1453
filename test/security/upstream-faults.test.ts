import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/index.js";
import { bearer, chatBody, DEFAULT_KEYS, errorCode, leaksOf, MODELS, SECRETS, type SecGateway, startSecGateway } from "./support.js";

/**
 * Each upstream fault ends in a clear answer to the client, an audit record, and a settled
 * reservation: the `solo` key (max_parallel_requests: 1) is admitted again right after.
 */
let g: SecGateway;

beforeAll(async () => {
  const deadPort = await freePort();
  g = await startSecGateway({
    upstream: "timeout_seconds: 1",
    upstreams: `  dead: { base_url: "http://127.0.0.1:${deadPort}/v1", api_key: ${SECRETS.upstream}, connect_timeout_seconds: 1, timeout_seconds: 1 }`,
    body: `${MODELS}
  dead-model: { upstream: dead, input_per_1m: 1, output_per_1m: 1 }
${DEFAULT_KEYS}`,
  });
});
afterAll(async () => {
  await g?.close();
});

interface Outcome {
  status: number;
  text: string;
  id: string;
  rateLimit: unknown;
}

async function solo(content: string, options: { stream?: boolean; model?: string } = {}): Promise<Outcome> {
  const res = await g.request("/v1/chat/completions", {
    method: "POST",
    headers: bearer(SECRETS.solo),
    body: chatBody(content, { stream: options.stream ?? false, ...(options.model === undefined ? {} : { model: options.model }) }),
  });
  return { status: res.status, text: res.text, id: String(res.headers["x-request-id"]), rateLimit: res.headers["x-ratelimit-limit-requests"] };
}

/** The parallel slot was released and the audit holds the faulted call with the expected status/code. */
async function settledAndAudited(outcome: Outcome, status: number, code: string | null): Promise<void> {
  const next = await solo("say:next");
  expect(next.status, `the call after the fault: ${next.text}`).toBe(200);
  const records = await g.records();
  const record = records.find((r) => r.id === outcome.id);
  expect(record, `audit record ${outcome.id}`).toBeDefined();
  expect(record?.status).toBe(status);
  expect(record?.error_code ?? null).toBe(code);
  expect(record?.key_id).toBe("solo");
}

/** The SSE error event's `error.code`, if the stream carried one. */
function sseErrorCode(text: string): string | null {
  for (const line of text.split("\n")) {
    if (!line.startsWith("data: {")) continue;
    try {
      const event = JSON.parse(line.slice(6)) as { error?: { code?: string } };
      if (event.error?.code !== undefined) return event.error.code;
    } catch {
      // not an error event
    }
  }
  return null;
}

describe("upstream faults", () => {
  it("connection refused -> 502 upstream_error", async () => {
    const out = await solo("hi", { model: "dead-model" });
    expect(out.status).toBe(502);
    expect(errorCode(out.text)).toBe("upstream_error");
    await settledAndAudited(out, 502, "upstream_error");
  });

  it("connection refused on a stream -> 502 before any byte", async () => {
    const out = await solo("hi", { model: "dead-model", stream: true });
    expect(out.status).toBe(502);
    await settledAndAudited(out, 502, "upstream_error");
  });

  it("5xx and 429 from the upstream are relayed with status and an OpenAI-shaped body", async () => {
    for (const [directive, status] of [
      ["error:500", 500],
      ["error:503", 503],
      ["error:429", 429],
      ["error_raw:502", 502],
      ["error_raw:500", 500],
    ] as const) {
      const out = await solo(directive);
      expect(out.status, directive).toBe(status);
      const body = JSON.parse(out.text) as { error: { message: string } };
      expect(typeof body.error.message).toBe("string");
      // The upstream's own limits explain its 429; elsewhere the gateway's are reported.
      expect(out.rateLimit, directive).toBe(status === 429 ? "500" : "100000");
      await settledAndAudited(out, status, "upstream_error");
    }
  });

  it("slow headers beyond timeout_seconds -> 504 upstream_timeout (JSON and stream requests)", async () => {
    for (const stream of [false, true]) {
      const out = await solo("slow_headers:2500", { stream });
      expect(out.status).toBe(504);
      expect(errorCode(out.text)).toBe("upstream_timeout");
      // Admitted before the upstream failed: the limits it counted against are reported.
      expect(out.rateLimit).toBe("100000");
      await settledAndAudited(out, 504, "upstream_timeout");
    }
  });

  it("a non-streamed answer that never comes -> 504; one cut without an answer -> 502", async () => {
    const stalled = await solo("stall_after:0");
    expect(stalled.status).toBe(504);
    await settledAndAudited(stalled, 504, "upstream_timeout");
    const reset = await solo("reset_after:0");
    expect(reset.status).toBe(502);
    await settledAndAudited(reset, 502, "upstream_error");
  });

  it("a non-streamed answer cut off after its head -> 502, recorded as a call that reached the upstream", async () => {
    const cut = await solo("tokens:40 truncate_after:20");
    expect(cut.status).toBe(502);
    expect(cut.text).toContain("the upstream's answer was cut off");
    await settledAndAudited(cut, 502, "upstream_error");
    const record = (await g.records()).find((r) => r.id === cut.id);
    // Its head arrived: the time to it is recorded (spend rows and upstream metrics count such calls).
    expect(typeof record?.upstream_ms).toBe("number");
  });

  it("a stream stalled beyond timeout_seconds ends with an SSE error event upstream_timeout", async () => {
    const out = await solo("tokens:10 chunks:10 stall_after:3", { stream: true });
    expect(out.status).toBe(200);
    expect(out.text.split("\n").filter((l) => l.startsWith("data: {")).length).toBeGreaterThanOrEqual(3);
    expect(sseErrorCode(out.text)).toBe("upstream_timeout");
    expect(out.text).not.toContain("[DONE]");
    await settledAndAudited(out, 200, "upstream_timeout");
  });

  it("a stream reset mid-way ends with an SSE error event", async () => {
    const out = await solo("tokens:10 chunks:10 reset_after:3", { stream: true });
    expect(out.status).toBe(200);
    expect(sseErrorCode(out.text)).toBe("upstream_error");
    // Reached, then cut: not "could not be reached".
    expect(out.text).toContain("the upstream's answer was cut off");
    await settledAndAudited(out, 200, "upstream_error");
  });

  it("an error event the upstream sends in its stream reaches the client as sent and is audited as upstream_error", async () => {
    const out = await solo("tokens:10 chunks:10 error_after:3", { stream: true });
    expect(out.status).toBe(200);
    // The upstream's own event, once: the gateway adds none of its own.
    expect(out.text.match(/"error"/g)).toHaveLength(1);
    expect(out.text).toContain('"code":"server_error"');
    await settledAndAudited(out, 200, "upstream_error");
    const record = (await g.records()).find((r) => r.id === out.id);
    expect(record?.error_message).toContain("(mock)");
    expect(record?.output_tokens).toBeGreaterThan(0);
    // A Responses stream's `event: error` is read the same way.
    const res = await g.request("/v1/responses", {
      method: "POST",
      headers: bearer(SECRETS.solo),
      body: JSON.stringify({ model: "gpt-4o-mini", input: "tokens:10 chunks:10 error_after:3", stream: true }),
    });
    expect(res.text).toContain("event: error");
    // With the `error` member the SDK raises it by, beside the event's own fields.
    expect(res.text).toMatch(/"type":"error".*"error":\{"message":"The server had an error[^"]*","type":"api_error","param":null,"code":"server_error"\}/);
    await settledAndAudited({ status: res.status, text: res.text, id: String(res.headers["x-request-id"]), rateLimit: undefined }, 200, "upstream_error");
  });

  it("a malformed upstream event ends the stream with one upstream_error event, never relayed as it came", async () => {
    const out = await solo("tokens:6 chunks:3 malformed_sse", { stream: true });
    expect(out.status).toBe(200);
    const broken = out.text.split("\n").filter((l) => l.startsWith("data: ") && l !== "data: [DONE]" && !isJson(l.slice(6)));
    expect(broken).toEqual([]);
    expect(sseErrorCode(out.text)).toBe("upstream_error");
    expect(out.text).not.toContain("[DONE]");
    await settledAndAudited(out, 200, "upstream_error");
  });

  it("no secret leaked through any of the faults; nothing was logged as unexpected", () => {
    expect(leaksOf(g)).toEqual([]);
    expect(g.logs.filter((l) => l.includes("unexpected error"))).toEqual([]);
  });
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
