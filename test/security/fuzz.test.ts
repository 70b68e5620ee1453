import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, errorCode, leaksOf, rawBody, SECRETS, type SecGateway, startSecGateway, unhandledRejections } from "./support.js";

/**
 * Property-based fuzzing of the request path (CONTRACT.md §3): every generated request gets exactly
 * the answer the contract gives it, never a 5xx (the mock upstream never fails here), never a crash.
 */
const MAX_DEPTH = 16;
const MAX_BODY = 1024 * 1024;
const CHAT = "/v1/chat/completions";

let g: SecGateway;
let sent = 0;
const statuses = new Map<number, number>();

beforeAll(async () => {
  g = await startSecGateway({ server: `max_json_depth: ${MAX_DEPTH}, max_body_bytes: ${MAX_BODY}` });
});
afterAll(async () => {
  await g?.close();
});

interface Expectation {
  status: number;
  code?: string;
  /** `error.param` must start with this. */
  param?: string;
}

async function send(path: string, body: string | Buffer, headers: Record<string, string | string[]>, expected: Expectation): Promise<void> {
  const res = await g.request(path, { method: "POST", headers, body, record: Buffer.byteLength(body) < 64 * 1024 });
  sent += 1;
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  const context = `${path} ${JSON.stringify(headers["content-type"] ?? null)} ${Buffer.from(body).subarray(0, 200).toString("latin1")} -> ${res.status} ${res.text.slice(0, 300)}`;
  expect(res.status, context).toBe(expected.status);
  expect(typeof res.headers["x-request-id"], context).toBe("string");
  if (expected.status >= 400) {
    const parsed = JSON.parse(res.text) as { error: { code: string; type: string; param: string | null; message: string } };
    expect(parsed.error.code, context).toBe(expected.code);
    expect(parsed.error.type, context).toBe("invalid_request_error");
    expect(typeof parsed.error.message, context).toBe("string");
    if (expected.param !== undefined) expect(parsed.error.param ?? "", context).toMatch(new RegExp(`^${expected.param}`));
  }
}

const json = (key: string = SECRETS.alice, contentType = "application/json"): Record<string, string> => ({ ...bearer(key), "content-type": contentType });

/** A prompt without `:`, so it can never spell a mock directive. */
/** Names that are properties of every JS object: a lookup by them must never find one. */
const protoName = fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "prototype", "__defineGetter__");
const prompt = fc.string({ maxLength: 40 }).map((s) => s.replaceAll(":", " "));
const validChat = fc.record(
  {
    model: fc.constantFrom("gpt-4o-mini", "gpt-4o"),
    messages: fc.array(fc.record({ role: fc.constantFrom("user", "system", "assistant"), content: prompt }), { minLength: 1, maxLength: 4 }),
    stream: fc.option(fc.boolean()),
    max_tokens: fc.option(fc.integer({ min: 1, max: 4096 })),
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    user: fc.string({ maxLength: 20 }),
    metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 3 }),
    tools: fc.option(
      fc.array(fc.record({ type: fc.constant("function"), function: fc.record({ name: fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), protoName), parameters: fc.constant({}) }) }), {
        maxLength: 3,
      }),
    ),
  },
  { requiredKeys: ["model", "messages"] },
);
// The last message is always the user's, so directives are read from a controlled text.
const fixLast = (body: Record<string, unknown>): Record<string, unknown> => ({
  ...body,
  messages: [...(body.messages as unknown[]), { role: "user", content: "hello" }],
});

const contentTypes = fc.oneof(
  fc.constantFrom(
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "image/png",
    "*/*",
    "application/json; charset=latin1",
    "APPLICATION/JSON",
  ),
  fc.stringMatching(/^[a-z]{1,10}\/[a-z0-9.+-]{1,16}$/),
);

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const isCount = (v: unknown, min: number): boolean => typeof v === "number" && Number.isSafeInteger(v) && v >= min;
/** What the gateway's schema accepts for each field it reads (CONTRACT: everything else passes through). */
const VALID: Record<string, (v: unknown) => boolean> = {
  model: (v) => typeof v === "string" && v.length > 0,
  messages: (v) => Array.isArray(v) && v.every((m) => isObj(m) && typeof m.role === "string"),
  stream: (v) => v === null || typeof v === "boolean",
  max_tokens: (v) => v === null || isCount(v, 0),
  max_completion_tokens: (v) => v === null || isCount(v, 0),
  n: (v) => v === null || isCount(v, 1),
  stream_options: (v) => v === null || (isObj(v) && (v.include_usage === undefined || v.include_usage === null || typeof v.include_usage === "boolean")),
  tools: (v) =>
    v === null ||
    (Array.isArray(v) &&
      v.every(
        (t) =>
          isObj(t) &&
          typeof t.type === "string" &&
          (t.name === undefined || typeof t.name === "string") &&
          (t.function === undefined || (isObj(t.function) && typeof t.function.name === "string")),
      )),
  functions: (v) => v === null || (Array.isArray(v) && v.every((f) => isObj(f) && typeof f.name === "string")),
};
const roundTrip = (v: unknown): unknown => JSON.parse(JSON.stringify(v) ?? "null");
const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.integer({ min: -1_000_000, max: -1 }),
  fc.array(fc.oneof(fc.constant(null), fc.integer(), fc.string(), fc.record({ role: fc.integer() }), fc.record({ type: fc.boolean() })), {
    minLength: 1,
    maxLength: 3,
  }),
);
const wrongField = fc
  .tuple(fc.constantFrom(...Object.keys(VALID)), anyValue)
  .map(([field, value]) => [field, roundTrip(value)] as const)
  .filter(([field, value]) => !VALID[field]!(value));

function depthOf(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "[" || c === "{") deepest = Math.max(deepest, ++depth);
    else if (c === "]" || c === "}") depth--;
  }
  return deepest;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

describe("fuzzing the governed call path (fast-check)", () => {
  it("invalid JSON gets 400 invalid_json, whatever the endpoint and content type", async () => {
    const invalidText = fc
      .oneof(
        fc.string({ maxLength: 200 }),
        fc.string({ unit: "grapheme", maxLength: 60 }),
        fc.json({ maxDepth: 4 }).chain((text) => fc.nat({ max: Math.max(0, text.length - 1) }).map((cut) => text.slice(0, cut))),
        fc.json({ maxDepth: 4 }).map((text) => `${text},`),
        fc.constantFrom("{'model': 'x'}", "{model: 1}", "[1,2,]", '{"a":1}}', "NaN", "undefined", '{"a":01}', "\u00ef\u00bb\u00bf{}", '{"a":"\\x41"}'),
      )
      .filter((text) => !parses(text) && depthOf(text) <= MAX_DEPTH && !text.startsWith("\ufeff"));
    await fc.assert(
      fc.asyncProperty(invalidText, fc.constantFrom(CHAT, "/v1/responses", "/v1/embeddings"), contentTypes, async (text, path, type) => {
        await send(path, text, json(SECRETS.alice, type), { status: 400, code: "invalid_json" });
      }),
      { numRuns: 2000 },
    );
  }, 180_000);

  it("a wrong type in a field the gateway reads gets 400 invalid_body naming the field", async () => {
    await fc.assert(
      fc.asyncProperty(wrongField, fc.boolean(), async ([field, value], stream) => {
        const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream, [field]: value };
        await send(CHAT, JSON.stringify(body), json(), { status: 400, code: "invalid_body", param: field });
      }),
      { numRuns: 2500 },
    );
  }, 180_000);

  it("JSON that is not an object, or misses model/messages, gets 400 invalid_body", async () => {
    const notObject = fc.oneof(fc.jsonValue({ maxDepth: 2 }).filter((v) => !isObj(v)), fc.constant([]), fc.constant(null));
    const missing = fc.constantFrom({ messages: [{ role: "user", content: "x" }] }, { model: "gpt-4o-mini" }, {});
    await fc.assert(
      fc.asyncProperty(fc.oneof(notObject, missing), fc.constantFrom(CHAT, "/v1/responses", "/v1/embeddings"), async (value, path) => {
        if (path !== CHAT && isObj(value) && "model" in value) return; // responses/embeddings: other required fields
        await send(path, JSON.stringify(value), json(), { status: 400, code: "invalid_body" });
      }),
      { numRuns: 400 },
    );
  }, 120_000);

  it("valid JSON is served (200 from the mock) whatever its content type, unknown fields and escaped NULs included", async () => {
    await fc.assert(
      fc.asyncProperty(validChat, contentTypes, fc.string({ maxLength: 10 }), fc.option(fc.oneof(fc.stringMatching(/^[!-~]{1,20}$/), protoName)), async (body, type, extra, session) => {
        const full = { ...fixLast(body), [`x_${extra}`]: `nul\u0000${extra}\u0000` };
        const headers = { ...json(SECRETS.alice, type), ...(session === null ? {} : { "x-session-id": session }) };
        await send(CHAT, JSON.stringify(full), headers, { status: 200 });
      }),
      { numRuns: 2000 },
    );
  }, 180_000);

  it("a model the config does not serve is 404 model_not_found", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(protoName, fc.string({ minLength: 1, maxLength: 30 })).filter((m) => !["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"].includes(m)), async (model) => {
        await send(CHAT, JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }), json(), { status: 404, code: "model_not_found" });
      }),
      { numRuns: 300 },
    );
  }, 120_000);

  it("invalid UTF-8 and raw NUL bytes get 400 invalid_json", async () => {
    const badSequences = fc.constantFrom(
      [0xff],
      [0xfe],
      [0xc0, 0x80],
      [0xc1, 0xbf],
      [0x80],
      [0xbf],
      [0xe0, 0x80, 0x80],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf8, 0x88, 0x80, 0x80, 0x80],
      [0xe2, 0x82],
      [0xc3],
    );
    await fc.assert(
      fc.asyncProperty(validChat, badSequences, fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), async (body, seq, where, nul) => {
        const bytes = Buffer.from(JSON.stringify(fixLast(body)), "utf8");
        const at = Math.floor(where * bytes.length);
        const insert = nul ? Buffer.from([0x00]) : Buffer.from(seq);
        const mutated = Buffer.concat([bytes.subarray(0, at), insert, bytes.subarray(at)]);
        await send(CHAT, mutated, json(), { status: 400, code: "invalid_json" });
      }),
      { numRuns: 1500 },
    );
  }, 180_000);

  it("nesting deeper than server.max_json_depth is 400 invalid_body (never a 5xx), and brackets in strings do not count", async () => {
    const nest = fc.record({
      depth: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 41, max: 100_000 })),
      objects: fc.boolean(),
      closed: fc.boolean(),
      inString: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(nest, async ({ depth, objects, closed, inString }) => {
        const open = objects ? '{"a":' : "[";
        const close = objects ? "}" : "]";
        const deep = `${open.repeat(depth)}1${closed ? close.repeat(depth) : ""}`;
        const value = inString ? JSON.stringify(deep) : deep;
        const text = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"meta":${value}}`;
        const total = inString ? 1 : 1 + depth;
        const expected: Expectation =
          total > MAX_DEPTH ? { status: 400, code: "invalid_body" } : inString || closed ? { status: 200 } : { status: 400, code: "invalid_json" };
        await send(CHAT, text, json(), expected);
      }),
      { numRuns: 800 },
    );
  }, 180_000);

  it("gigantic messages arrays are served; bodies over max_body_bytes are 413 request_too_large", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1_000, max: 25_000 }), async (count) => {
        const messages = Array.from({ length: count }, (_, i) => ({ role: i % 2 === 0 ? "user" : "assistant", content: "x" }));
        messages.push({ role: "user", content: "hello" });
        await send(CHAT, JSON.stringify({ model: "gpt-4o-mini", messages }), json(), { status: 200 });
      }),
      { numRuns: 15 },
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: MAX_BODY + 1, max: 3 * MAX_BODY }), fc.boolean(), async (size, validJson) => {
        const filler = validJson ? `{"model":"gpt-4o-mini","messages":[],"pad":"${"p".repeat(size)}"}` : "{".repeat(size);
        await send(CHAT, filler, json(), { status: 413, code: "request_too_large" });
      }),
      { numRuns: 25 },
    );
  }, 180_000);

  it("random paths and methods under /v1 never get a 5xx and always an OpenAI error shape", async () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9_~%-]{0,12}$/);
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"), async (segments, method) => {
        const path = `/v1/${segments.join("/")}`;
        const res = await g.request(path, { method, headers: bearer(SECRETS.alice), ...(method === "GET" ? {} : { body: "{}" }) });
        sent += 1;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status, `${method} ${path}`).toBeLessThan(500);
        if (res.status >= 400) expect(errorCode(res.text), `${method} ${path} ${res.text}`).not.toBeNull();
      }),
      { numRuns: 500 },
    );
  }, 120_000);

  it("raw bytes: duplicate headers, bare CR/LF, NUL and obs-fold in headers, CRLF-injected values — 400 with an error body or the normal answer; nothing injected reaches upstream", async () => {
    const body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}';
    const injection = fc.constantFrom(
      { header: "X-A: a\rX-Injected: 1", ok: false },
      { header: "X-A: a\nX-Injected: 1", ok: false },
      { header: "X-A: a\u0000b", ok: false },
      { header: "X-A: a\r\n folded", ok: false },
      { header: "X A: spaced-name", ok: false },
      { header: "X-A : before-colon", ok: false },
      { header: "Content-Type: text/plain\r\nContent-Type: application/json", ok: true },
      { header: "X-Request-Id: one\r\nX-Request-Id: two", ok: true },
      // Two Authorization headers are one identity too many, whichever is valid.
      { header: `Authorization: Bearer ${SECRETS.alice}`, ok: false, status: 401 },
      { header: "Authorization: Bearer sk-wrong-second", ok: false, status: 401 },
      { header: "X-Forwarded-Host: evil.example\r\nX-Forwarded-Host: evil2.example", ok: true },
      { header: `Content-Length: ${body.length + 1}`, ok: false },
    );
    await fc.assert(
      fc.asyncProperty(injection, async ({ header, ok, status: expected }: { header: string; ok: boolean; status?: number }) => {
        const wire = `POST ${CHAT} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.alice}\r\n${header}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
        const res = await g.raw(wire, { timeoutMs: 10_000 });
        sent += 1;
        expect(res.closed, header).toBe(true);
        expect(res.statuses.length, `${JSON.stringify(header)}: ${res.text}`).toBe(1);
        const status = res.statuses[0]!;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        expect(status, `${JSON.stringify(header)}: ${res.text}`).toBe(expected ?? (ok ? 200 : 400));
        if (!ok) expect(errorCode(rawBody(res.text))).not.toBeNull();
        const forwarded = g.mock.requests.at(-1);
        if (forwarded !== undefined) expect(forwarded.headers["x-injected"]).toBeUndefined();
      }),
      { numRuns: 400 },
    );
  }, 120_000);

  it("after all of it: ≥ 10,000 requests, no 5xx, no unhandled rejection, no unexpected-error log, /healthz still answers, no secret leaked", async () => {
    const health = await g.request("/healthz");
    expect(health.status).toBe(200);
    console.log(`fuzz: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    expect(sent).toBeGreaterThanOrEqual(10_000);
    expect([...statuses.keys()].filter((s) => s >= 500)).toEqual([]);
    expect(unhandledRejections()).toEqual([]);
    const errors = g.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
    expect(errors).toEqual([]);
    expect(leaksOf(g)).toEqual([]);
  }, 60_000);
});
