import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileModelPrices, costMicros, worstCaseMicros } from "../../src/pricing/index.js";
import { countChatInput } from "../../src/tokens/index.js";
import { chatCount, expectApiError, raw } from "./governance.js";
import { auditRecords, type Harness, keyEntry, MODELS, startHarness } from "./harness.js";

/** OpenAI's duration format in x-ratelimit-reset-*: `20ms`, `1s`, `6m0s`, `1h2m3s`. */
const OPENAI_DURATION = /^(?:\d+ms|(?:\d+h)?(?:\d+m)?\d+s)$/;

const GPT4O = compileModelPrices({ upstream: "openai", kind: "chat", tokenizer: "o200k_base", max_output_tokens: 16384, output_limit_param: "max_completion_tokens", input_per_1m: 2.5, output_per_1m: 10 } as Parameters<typeof compileModelPrices>[0]);

const MINI = compileModelPrices({ upstream: "openai", kind: "chat", tokenizer: "o200k_base", max_output_tokens: 16384, output_limit_param: "max_completion_tokens", input_per_1m: 0.15, output_per_1m: 0.6 } as Parameters<typeof compileModelPrices>[0]);

/** Worst case of a gpt-4o chat body as the gateway reckons it: counted input + output limit. */
function worstOf(body: Record<string, unknown>, outputLimit: number): { input: number; micros: number } {
  const input = countChatInput(body, "o200k_base");
  return { input, micros: worstCaseMicros(input, outputLimit, GPT4O) };
}

/** A client whose fetch records the status of every attempt the SDK makes. */
function countingClient(h: Harness, key: string, maxRetries: number): { client: OpenAI; attempts: number[] } {
  const attempts: number[] = [];
  const client = new OpenAI({
    apiKey: key,
    baseURL: `${h.gateway.url}/v1`,
    maxRetries,
    fetch: async (url: string | URL | Request, init?: RequestInit) => {
      const response = await fetch(url, init);
      attempts.push(response.status);
      return response;
    },
  });
  return { client, attempts };
}

const usd = (micros: number): number => micros / 1_000_000;
const spentToday = async (h: Harness, level: string): Promise<number> => (await h.gateway.services.store.usage(level, h.gateway.services.clock())).dailyMicros;

const K = {
  rpm: "sk-lim-rpm",
  rpmRetry: "sk-lim-rpm-retry",
  budget: "sk-lim-budget",
  cap: "sk-lim-cap",
  capReject: "sk-lim-cap-reject",
  clampBudget: "sk-lim-clamp-budget",
  unpriced: "sk-lim-unpriced",
  session: "sk-lim-session",
  tpm: "sk-lim-tpm",
  teamA: "sk-lim-team-a",
  teamB: "sk-lim-team-b",
  concurrent: "sk-lim-concurrent",
  abort: "sk-lim-abort",
  countedBudget: "sk-lim-counted",
  sessionTools: "sk-lim-session-tools",
  noUsage: "sk-lim-no-usage",
  rpmSession: "sk-lim-rpm-session",
  slowSettle: "sk-lim-slow-settle",
  bounded: "sk-lim-bounded",
  sessionCost: "sk-lim-session-cost",
} as const;

// gpt-4o: 2.5 micro-USD per input token, 10 per output token.
const CONCURRENT_K = 7;
const CONCURRENT_BODY = { model: "gpt-4o", messages: [{ role: "user" as const, content: "tokens:100" }], max_completion_tokens: 100 };
const CONCURRENT_WORST = worstOf(CONCURRENT_BODY, 100).micros;

let h: Harness;

beforeAll(async () => {
  h = await startHarness(`${MODELS}
teams:
  shared: { limits: { daily_cost: 0.005 } }
keys:
${keyEntry("rpm", K.rpm, "{ user: u-rpm, role: developer, team: t1 }", "{ requests_per_minute: 3 }")}
${keyEntry("rpm-retry", K.rpmRetry, "{ user: u-rpm2, role: developer, team: t1 }", "{ requests_per_minute: 60 }")}
${keyEntry("budget", K.budget, "{ user: u-budget, role: developer, team: t1 }", "{ daily_cost: 0.0005 }")}
${keyEntry("cap", K.cap, "{ user: u-cap, role: developer, team: t1 }", "{ max_cost_per_call: 0.005 }")}
${keyEntry("cap-reject", K.capReject, "{ user: u-capr, role: developer, team: t1 }", "{ max_cost_per_call: 0.005, cost_cap_mode: reject }")}
${keyEntry("clamp-budget", K.clampBudget, "{ user: u-cb, role: developer, team: t1 }", "{ daily_cost: 0.004, min_output_tokens: 100 }")}
${keyEntry("unpriced", K.unpriced, "{ user: u-np, role: developer, team: t1 }", "{ daily_cost: 1 }")}
${keyEntry("session", K.session, "{ user: u-s, role: developer, team: t1 }", "{ session: { max_llm_calls: 2 } }")}
${keyEntry("tpm", K.tpm, "{ user: u-tpm, role: developer, team: t1 }", "{ tokens_per_minute: 2000 }")}
${keyEntry("team-a", K.teamA, "{ user: u-ta, role: developer, team: shared }")}
${keyEntry("team-b", K.teamB, "{ user: u-tb, role: developer, team: shared }")}
${keyEntry("concurrent", K.concurrent, "{ user: u-c, role: developer, team: t1 }", `{ daily_cost: ${usd(CONCURRENT_K * CONCURRENT_WORST)}, cost_cap_mode: reject }`)}
${keyEntry("counted", K.countedBudget, "{ user: u-cnt, role: developer, team: t1 }", "{ daily_cost: 0.001 }")}
${keyEntry("session-tools", K.sessionTools, "{ user: u-st, role: developer, team: t1 }", "{ session: { max_tool_calls: 1 } }")}
${keyEntry("no-usage", K.noUsage, "{ user: u-nu, role: developer, team: t1 }", "{ daily_cost: 1 }")}
${keyEntry("rpm-session", K.rpmSession, "{ user: u-rs, role: developer, team: t1 }", "{ requests_per_minute: 2, session: { max_llm_calls: 1 } }")}
${keyEntry("slow-settle", K.slowSettle, "{ user: u-ss, role: developer, team: t1 }", "{ daily_cost: 1 }")}
${keyEntry("bounded", K.bounded, "{ user: u-bd, role: developer, team: t1 }", "{ daily_cost: 1 }")}
${keyEntry("session-cost", K.sessionCost, "{ user: u-sc, role: developer, team: t1 }", "{ session: { max_cost: 1 } }")}
${keyEntry("abort", K.abort, "{ user: u-ab, role: developer, team: t1 }", "{ daily_cost: 1, max_parallel_requests: 1 }")}
`);
});
afterAll(async () => h.close());

const say = (text: string, extra: Record<string, unknown> = {}) => ({ model: "gpt-4o-mini", messages: [{ role: "user" as const, content: text }], ...extra });

describe("requests_per_minute", () => {
  it("admits a burst of N, then answers 429 rate_limit_exceeded with retry-after and x-ratelimit-* headers", async () => {
    for (let i = 0; i < 3; i++) {
      const { response } = await h.client(K.rpm).chat.completions.create(say("say:ok")).withResponse();
      expect(response.headers.get("x-ratelimit-limit-requests")).toBe("3");
      expect(response.headers.get("x-ratelimit-remaining-requests")).toBe(String(2 - i));
      expect(response.headers.get("x-ratelimit-reset-requests")).toMatch(OPENAI_DURATION);
    }
    const before = chatCount(h);
    const error = await expectApiError(h.client(K.rpm).chat.completions.create(say("say:too many")), 429, "rate_limit_exceeded");
    expect(error.type).toBe("rate_limit_error");
    expect(chatCount(h)).toBe(before);
    const headers = error.headers!;
    // One request refills in 20 s at 3 per minute.
    const retryAfter = Number(headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
    expect(headers.get("x-ratelimit-limit-requests")).toBe("3");
    expect(headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(headers.get("x-ratelimit-reset-requests")).toMatch(OPENAI_DURATION);
    expect(headers.get("x-should-retry")).not.toBe("false");
  });

  it("is honoured by the SDK: with retries on, it waits for retry-after and the retry goes through", async () => {
    // Empty the 60-request bucket (refills one request per second).
    let refused = false;
    for (let i = 0; i < 80 && !refused; i++) {
      const result = await raw(h, "/v1/chat/completions", K.rpmRetry, say("say:x"));
      refused = result.status === 429;
    }
    expect(refused).toBe(true);
    const before = chatCount(h);
    const { client, attempts } = countingClient(h, K.rpmRetry, 2);
    const answer = await client.chat.completions.create(say("say:after retry"));
    expect(answer.choices[0]?.message.content).toBe("after retry");
    expect(attempts[0]).toBe(429);
    expect(attempts.at(-1)).toBe(200);
    expect(chatCount(h)).toBe(before + 1);
  });
});

describe("budgets", () => {
  it("answers an exhausted daily budget with 429 budget_exceeded and x-should-retry: false; the SDK does not retry", async () => {
    // 700 output tokens at $0.60/1M = 420 micro-USD of the 500 budget; 80 left cannot pay 256 tokens.
    await h.client(K.budget).chat.completions.create(say("tokens:700", { max_completion_tokens: 800 }));
    expect(await spentToday(h, "key:budget")).toBeGreaterThanOrEqual(420);
    const before = chatCount(h);
    const { client, attempts } = countingClient(h, K.budget, 2);
    const error = await expectApiError(client.chat.completions.create(say("say:more", { max_completion_tokens: 800 })), 429, "budget_exceeded");
    expect(error.headers?.get("x-should-retry")).toBe("false");
    expect(error.message).toMatch(/daily budget/);
    expect(attempts).toEqual([429]);
    expect(chatCount(h)).toBe(before);
  });

  it("clamps the output limit to what the budget can pay, down to min_output_tokens", async () => {
    // Budget 4000 micro-USD; spend 3000 (5000 output tokens at 0.6), then 1000 left: ~1600 tokens fit.
    await h.client(K.clampBudget).chat.completions.create(say("tokens:5000", { max_completion_tokens: 6000 }));
    const left = 4000 - (await spentToday(h, "key:clamp-budget"));
    const { response } = await h.client(K.clampBudget).chat.completions.create(say("say:clamped", { max_completion_tokens: 6000 })).withResponse();
    const clamped = Number(response.headers.get("x-gateway-max-tokens"));
    const seen = h.mock.requests.at(-1)!.body as { max_completion_tokens: number };
    expect(seen.max_completion_tokens).toBe(clamped);
    expect(clamped).toBeGreaterThanOrEqual(100);
    expect(clamped).toBeLessThan(6000);
    expect(Math.ceil(clamped * 0.6)).toBeLessThanOrEqual(left);
    expect(Math.ceil((clamped + 10) * 0.6)).toBeGreaterThan(left - 10);
    // Spend down so fewer than min_output_tokens (100) fit: then budget_exceeded.
    await h.client(K.clampBudget).chat.completions.create(say(`tokens:${Math.floor((left - 50) / 0.6)}`, { max_completion_tokens: clamped }));
    const error = await expectApiError(h.client(K.clampBudget).chat.completions.create(say("say:none")), 429, "budget_exceeded");
    expect(error.headers?.get("x-should-retry")).toBe("false");
  });

  it("reserves the counted worst case against a budget, not a byte bound of the input", async () => {
    // ~2000 input tokens in 12000 bytes: counted, the worst case is ~600 micro-USD of the 1000 left;
    // bounded by bytes it would be ~2100 and the call refused.
    const body = say(`say:fits\n${"hello world ".repeat(1000)}`, { max_completion_tokens: 500 });
    const input = countChatInput(body, "o200k_base");
    expect(Math.ceil(input * 0.15) + 300).toBeLessThanOrEqual(1000);
    const { data, response } = await h.client(K.countedBudget).chat.completions.create(body).withResponse();
    expect(data.choices[0]?.message.content).toBe("fits");
    expect(response.headers.get("x-gateway-max-tokens")).toBeNull();
  });

  it("sends a request without an output limit the one its worst case was reserved with, so the upstream cannot spend past it", async () => {
    const chat = await h.client(K.bounded).chat.completions.create(say("say:bounded")).withResponse();
    expect(h.mock.requests.at(-1)!.body).toMatchObject({ max_completion_tokens: 16384 });
    // Not clamped (the model's own limit): no header, as the contract ties it to a clamp.
    expect(chat.response.headers.get("x-gateway-max-tokens")).toBeNull();
    await h.client(K.bounded).responses.create({ model: "gpt-4o-mini", input: "say:bounded" });
    expect(h.mock.requests.at(-1)!.body).toMatchObject({ max_output_tokens: 16384 });
    // Nothing depends on the worst case of a key without money or token limits: its body goes as sent.
    await h.client(K.rpm).chat.completions.create(say("say:free")).catch(() => undefined);
    await h.client(K.session).chat.completions.create(say("say:free"));
    expect((h.mock.requests.at(-1)!.body as Record<string, unknown>).max_completion_tokens).toBeUndefined();
  });

  it("sums a team's budget over its keys", async () => {
    // Team budget 5000 micro-USD; gpt-4o, 400 output tokens = 4000 micro-USD spent by key a.
    await h.client(K.teamA).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "tokens:400" }], max_completion_tokens: 450 });
    const before = chatCount(h);
    const error = await expectApiError(
      h.client(K.teamB).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "say:b" }], max_completion_tokens: 450 }),
      429,
      "budget_exceeded",
    );
    expect(error.message).toMatch(/team daily budget/);
    expect(chatCount(h)).toBe(before);
    const team = await spentToday(h, "team:shared");
    expect(team).toBe((await spentToday(h, "key:team-a")) + (await spentToday(h, "key:team-b")));
    expect(team).toBeGreaterThanOrEqual(4000);
    expect(team).toBeLessThanOrEqual(5000);
  });

  it("refuses a model without prices to a key with a cost limit: 403 model_not_priced", async () => {
    const error = await expectApiError(h.client(K.unpriced).chat.completions.create({ model: "free-model", messages: [{ role: "user", content: "x" }] }), 403, "model_not_priced");
    expect(error.message).toContain("free-model");
    // A key without cost limits may use it.
    const ok = await h.client(K.session).chat.completions.create({ model: "free-model", messages: [{ role: "user", content: "say:free" }] });
    expect(ok.choices[0]?.message.content).toBe("free");
  });

  it("lists in /v1/models only the models a key with a cost limit can be charged for", async () => {
    const listed = (await h.client(K.unpriced).models.list()).data.map((m) => m.id);
    expect(listed).toEqual(expect.arrayContaining(["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]));
    expect(listed).not.toContain("free-model");
    await expectApiError(h.client(K.unpriced).models.retrieve("free-model"), 404, "model_not_found");
    expect((await h.client(K.session).models.list()).data.map((m) => m.id)).toContain("free-model");
    // A cost limit only sessions have applies to a listing asked in a session, as to a call made in one.
    expect((await h.client(K.sessionCost).models.list()).data.map((m) => m.id)).toContain("free-model");
    const inSession = h.client(K.sessionCost, { headers: { "x-session-id": "listing" } });
    expect((await inSession.models.list()).data.map((m) => m.id)).not.toContain("free-model");
    await expectApiError(inSession.models.retrieve("free-model"), 404, "model_not_found");
  });

  it("never admits more than a daily budget under 50 concurrent calls", async () => {
    // The budget fits exactly CONCURRENT_K worst cases; each call spends a little less than its worst case,
    // and the difference over K calls is far below one more worst case.
    const results = await Promise.all(
      Array.from({ length: 50 }, () => raw(h, "/v1/chat/completions", K.concurrent, CONCURRENT_BODY)),
    );
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    expect(refused.every((r) => r.status === 429 && r.json().error?.code === "budget_exceeded")).toBe(true);
    expect(ok.length).toBe(CONCURRENT_K);
    const spent = await spentToday(h, "key:concurrent");
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(CONCURRENT_K * CONCURRENT_WORST);
    const costs = ok.reduce((sum, r) => sum + Math.round(Number(r.headers.get("x-gateway-cost")) * 1_000_000), 0);
    expect(costs).toBe(spent);
    const audited = (await auditRecords(h)).filter((r) => r.key_id === "concurrent");
    expect(audited.length).toBe(50);
    expect(Math.round(audited.reduce((sum, r) => sum + (r.cost as number), 0) * 1_000_000)).toBe(spent);
  });
});

describe("per-call cost cap", () => {
  it("clamps max_completion_tokens so the worst case stays under the cap; the upstream sees the clamped value", async () => {
    const body = { model: "gpt-4o", messages: [{ role: "user" as const, content: "say:capped" }], max_completion_tokens: 2000 };
    const { response } = await h.client(K.cap).chat.completions.create(body).withResponse();
    const clamped = Number(response.headers.get("x-gateway-max-tokens"));
    const seen = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(seen.max_completion_tokens).toBe(clamped);
    expect(seen.max_tokens).toBeUndefined();
    // Cap 5000 micro-USD: the largest output limit whose worst case fits.
    expect(worstOf(body, clamped).micros).toBeLessThanOrEqual(5000);
    expect(worstOf(body, clamped + 1).micros).toBeGreaterThan(5000);
    expect(clamped).toBeGreaterThan(490);
  });

  it("clamps the field the request used (max_tokens), and sets the model's default field when none was set", async () => {
    const legacy = { model: "gpt-4o", messages: [{ role: "user" as const, content: "say:legacy" }], max_tokens: 3000 };
    await h.client(K.cap).chat.completions.create(legacy);
    const seenLegacy = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(seenLegacy.max_completion_tokens).toBeUndefined();
    expect(worstOf(legacy, seenLegacy.max_tokens as number).micros).toBeLessThanOrEqual(5000);
    const unlimited = { model: "gpt-4o", messages: [{ role: "user" as const, content: "say:default" }] };
    const { response } = await h.client(K.cap).chat.completions.create(unlimited).withResponse();
    const seen = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(seen.max_completion_tokens).toBe(Number(response.headers.get("x-gateway-max-tokens")));
    expect(worstOf(unlimited, seen.max_completion_tokens as number).micros).toBeLessThanOrEqual(5000);
  });

  it("clamps the Responses API's max_output_tokens", async () => {
    const { response } = await h.client(K.cap).responses.create({ model: "gpt-4o", input: "say:resp", max_output_tokens: 4000 }).withResponse();
    const seen = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(seen.max_output_tokens).toBe(Number(response.headers.get("x-gateway-max-tokens")));
    expect(seen.max_output_tokens).toBeLessThan(500);
  });

  it("reckons n answers: each may use the whole output limit, so the cap is shared between them", async () => {
    // gpt-4o-mini: 0.15 / 0.60 micro-USD per token; 3 × 4,000 output tokens would cost 7,200 of the 5,000 cap.
    const body = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "say:three" }], max_completion_tokens: 4000, n: 3 };
    const worst = (output: number): number => worstCaseMicros(countChatInput(body, "o200k_base"), output, MINI);
    const { response } = await h.client(K.cap).chat.completions.create(body).withResponse();
    const clamped = Number(response.headers.get("x-gateway-max-tokens"));
    expect((h.mock.requests.at(-1)!.body as Record<string, unknown>).max_completion_tokens).toBe(clamped);
    expect(worst(3 * clamped)).toBeLessThanOrEqual(5000);
    expect(worst(3 * (clamped + 1))).toBeGreaterThan(5000);
    // On gpt-4o three answers cannot each have min_output_tokens (256) within the cap.
    const error = await expectApiError(h.client(K.cap).chat.completions.create({ ...body, model: "gpt-4o" }), 400, "cost_cap_exceeded");
    // Priced where clamping had to stop: three answers of 256 tokens at $10 per million, plus the input.
    const least = worstCaseMicros(countChatInput(body, "o200k_base"), 3 * 256, GPT4O);
    expect(error.message).toContain(`$${(least / 1e6).toFixed(6)} with the least output clamping allows (256 tokens per answer × 3)`);
    expect(error.message).toContain("cap of $0.005000");
  });

  it("clamps both output-limit fields where a request set both", async () => {
    const body = { model: "gpt-4o", messages: [{ role: "user" as const, content: "say:both" }], max_tokens: 3000, max_completion_tokens: 1000 };
    const { response } = await h.client(K.cap).chat.completions.create(body).withResponse();
    const clamped = Number(response.headers.get("x-gateway-max-tokens"));
    const seen = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(seen.max_completion_tokens).toBe(clamped);
    expect(seen.max_tokens).toBe(clamped);
    expect(worstOf(body, clamped).micros).toBeLessThanOrEqual(5000);
    // Under the cap, a lower second field is left as sent.
    await h.client(K.cap).chat.completions.create({ ...body, max_tokens: 50, max_completion_tokens: 100 });
    expect(h.mock.requests.at(-1)!.body).toMatchObject({ max_tokens: 50, max_completion_tokens: 100 });
    // A clamp never raises a limit: a field set below the clamp stays as sent, the other comes down to it.
    const mixed = await h.client(K.cap).chat.completions.create({ ...body, max_tokens: 5000, max_completion_tokens: 7 }).withResponse();
    expect(Number(mixed.response.headers.get("x-gateway-max-tokens"))).toBeGreaterThan(7);
    expect(h.mock.requests.at(-1)!.body).toMatchObject({ max_tokens: Number(mixed.response.headers.get("x-gateway-max-tokens")), max_completion_tokens: 7 });
  });

  it("does not touch a request already under the cap", async () => {
    const { response } = await h.client(K.cap).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "say:small" }], max_completion_tokens: 100 }).withResponse();
    expect(response.headers.get("x-gateway-max-tokens")).toBeNull();
    expect((h.mock.requests.at(-1)!.body as Record<string, unknown>).max_completion_tokens).toBe(100);
  });

  it("refuses with 400 cost_cap_exceeded in cost_cap_mode reject, saying estimated vs cap", async () => {
    const before = chatCount(h);
    const error = await expectApiError(
      h.client(K.capReject).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "say:no" }], max_completion_tokens: 2000 }),
      400,
      "cost_cap_exceeded",
    );
    expect(error.type).toBe("invalid_request_error");
    expect(error.message).toMatch(/\$0\.02\d+.*\$0\.005000/);
    expect(chatCount(h)).toBe(before);
  });

  it("refuses with cost_cap_exceeded when even min_output_tokens does not fit the cap", async () => {
    // 256 output tokens of gpt-4o cost 2560 micro-USD; an input of ~1200 tokens (3000) takes the rest.
    const long = "word ".repeat(1200);
    await expectApiError(
      h.client(K.cap).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: long }], max_completion_tokens: 2000 }),
      400,
      "cost_cap_exceeded",
    );
  });

  it("records the input tokens a cost_cap_exceeded refusal priced, counted, not a byte bound", async () => {
    const body = { model: "gpt-4o", messages: [{ role: "user" as const, content: "word ".repeat(1200) }], max_completion_tokens: 2000 };
    const error = await expectApiError(h.client(K.cap).chat.completions.create(body), 400, "cost_cap_exceeded");
    const { input, micros } = worstOf(body, 256);
    expect(error.message).toContain(`$${usd(micros).toFixed(6)} with the least output clamping allows (256 tokens)`);
    expect((await auditRecords(h)).at(-1)).toMatchObject({ error_code: "cost_cap_exceeded", input_tokens: input });
  });
});

describe("sessions and tokens per minute", () => {
  it("matches a sessions.header written with capitals (HTTP header names are case-insensitive)", async () => {
    const own = await startHarness(`${MODELS}
sessions: { header: X-Agent-Session, limits: { max_llm_calls: 1 } }
keys:
${keyEntry("agent", K.session, "{ user: u-agent, role: developer, team: t1 }")}
`);
    try {
      const client = own.client(K.session, { headers: { "X-Agent-Session": "run-1" } });
      await client.chat.completions.create(say("say:1"));
      expect(own.mock.requests.at(-1)!.headers["x-agent-session"]).toBeUndefined();
      await expectApiError(client.chat.completions.create(say("say:2")), 429, "budget_exceeded");
      expect((await auditRecords(own)).map((r) => r.session_id)).toEqual(["run-1", "run-1"]);
    } finally {
      await own.close();
    }
  });

  it("charges a session (x-session-id) and refuses past max_llm_calls with budget_exceeded", async () => {
    const client = (session: string) => h.client(K.session, { headers: { "x-session-id": session } });
    await client("s-1").chat.completions.create(say("say:1"));
    await client("s-1").chat.completions.create(say("say:2"));
    const error = await expectApiError(client("s-1").chat.completions.create(say("say:3")), 429, "budget_exceeded");
    expect(error.headers?.get("x-should-retry")).toBe("false");
    expect(error.message).toBe("429 session call limit reached");
    // Another session, or no session at all, is not affected.
    await client("s-2").chat.completions.create(say("say:other"));
    await h.client(K.session).chat.completions.create(say("say:none"));
    const records = (await auditRecords(h)).filter((r) => r.key_id === "session" && r.session_id === "s-1");
    expect(records.map((r) => r.status)).toEqual([200, 200, 429]);
  });

  it("does not count calls the upstream failed (5xx) against max_llm_calls: the SDK's retries leave the session its calls", async () => {
    const retrying = h.client(K.session, { headers: { "x-session-id": "s-5xx" }, maxRetries: 2 });
    const failed = await retrying.chat.completions.create(say("error:503 retry_after:0")).catch((error: unknown) => error);
    expect((failed as { status?: number }).status).toBe(503);
    // Three attempts reached the gateway (the SDK retried twice), none answered.
    expect((await auditRecords(h)).filter((r) => r.session_id === "s-5xx").map((r) => r.status)).toEqual([503, 503, 503]);
    await retrying.chat.completions.create(say("say:1"));
    await retrying.chat.completions.create(say("say:2"));
    await expectApiError(retrying.chat.completions.create(say("say:3")), 429, "budget_exceeded");
  });

  it("counts the tool calls in a session's answers against max_tool_calls and withholds an answer that would pass it", async () => {
    const client = h.client(K.sessionTools, { headers: { "x-session-id": "agent-run-1" } });
    const answer = await client.chat.completions.create(say('call_tool:search {"q":"a"}'));
    expect(answer.choices[0]?.message.tool_calls?.length).toBe(1);
    // At max_tool_calls (1): an answer calling another tool is withheld, paid for but not delivered ...
    const withheld = await expectApiError(client.chat.completions.create(say('call_tool:search {"q":"b"}')), 429, "budget_exceeded");
    expect(withheld.message).toContain("would take the session past its 1 (1 used)");
    expect(Number(withheld.headers?.get("x-gateway-cost"))).toBeGreaterThan(0);
    // ... and not charged: the agent's final answer, which calls no tool, still runs.
    expect((await client.chat.completions.create(say("say:done"))).choices[0]?.message.content).toBe("done");
    const records = (await auditRecords(h)).filter((r) => r.session_id === "agent-run-1");
    expect(records.map((r) => [r.status, r.tool_calls])).toEqual([
      [200, ["search"]],
      [429, ["search"]],
      [200, []],
    ]);
  });

  it("withholds a single answer, streamed or not, whose tool calls alone pass max_tool_calls", async () => {
    const client = h.client(K.sessionTools, { headers: { "x-session-id": "agent-run-2" } });
    const two = 'call_tool:search {"q":"a"} call_tool:search {"q":"b"}';
    await expectApiError(client.chat.completions.create(say(two)), 429, "budget_exceeded");
    const stream = await client.chat.completions.create({ ...say(`${two} say:Looking.`), stream: true });
    let text = "";
    let toolDeltas = 0;
    const caught = await (async () => {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        toolDeltas += chunk.choices[0]?.delta.tool_calls?.length ?? 0;
      }
    })().catch((error: unknown) => error);
    expect((caught as { code?: string }).code).toBe("budget_exceeded");
    expect(text).toBe("Looking.");
    expect(toolDeltas).toBe(0);
    // Neither answer was delivered, so the session still has its one tool call.
    expect((await client.chat.completions.create(say('call_tool:search {"q":"c"}'))).choices[0]?.message.tool_calls?.length).toBe(1);
  });

  it("gives back what earlier levels took when a later level refuses: a refused call costs no request", async () => {
    const inSession = h.client(K.rpmSession, { headers: { "x-session-id": "one-shot" } });
    await inSession.chat.completions.create(say("say:1"));
    // The session level refuses after the key level admitted: the key's request token is given back.
    const refused = await expectApiError(inSession.chat.completions.create(say("say:2")), 429, "budget_exceeded");
    // 1 of 2 at 2 a minute is full again within 30 s: the reset of the remaining shown, not of none.
    expect(refused.headers?.get("x-ratelimit-remaining-requests")).toBe("1");
    expect(refused.headers?.get("x-ratelimit-reset-requests")).toMatch(/^(?:[12]?\d|30)s$/);
    await expectApiError(inSession.chat.completions.create(say("say:3")), 429, "budget_exceeded");
    const answer = await h.client(K.rpmSession).chat.completions.create(say("say:outside the session"));
    expect(answer.choices[0]?.message.content).toBe("outside the session");
  });

  it("charges a stream whose upstream sent no usage from the text it relayed", async () => {
    const stream = await h.client(K.noUsage).chat.completions.create({ ...say("no_usage tokens:30"), stream: true });
    let words = 0;
    for await (const chunk of stream) words += (chunk.choices[0]?.delta.content ?? "").split(" ").filter((w) => w !== "").length;
    expect(words).toBe(30);
    let record: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && record === undefined; i++) {
      record = (await auditRecords(h)).find((r) => r.key_id === "no-usage");
      if (record === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(record?.output_tokens as number).toBeGreaterThanOrEqual(30);
    expect(record?.cost as number).toBeGreaterThan(0);
    const first = await spentToday(h, "key:no-usage");
    expect(Math.round((record?.cost as number) * 1_000_000)).toBe(first);
    // Counted past the output limit the call was reserved with (a count of the text can exceed the
    // model's own): charged no more than that limit, so concurrent calls cannot overspend what they reserved.
    const bound = await h.client(K.noUsage).chat.completions.create({ ...say("no_usage tokens:30", { max_completion_tokens: 10 }), stream: true });
    for await (const _ of bound);
    let capped: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && capped === undefined; i++) {
      capped = (await auditRecords(h)).find((r) => r.key_id === "no-usage" && r.id !== record?.id);
      if (capped === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(capped?.output_tokens).toBe(10);
    expect(Math.round((capped?.cost as number) * 1_000_000)).toBe((await spentToday(h, "key:no-usage")) - first);
  });

  it("reserves the worst case against tokens_per_minute and settles to the actual usage", async () => {
    // Reserve input + 1600, use ~1510: the bucket keeps ~490 tokens.
    const { response } = await h.client(K.tpm).chat.completions.create(say("tokens:1500", { max_completion_tokens: 1600 })).withResponse();
    expect(response.headers.get("x-ratelimit-limit-tokens")).toBe("2000");
    const error = await expectApiError(h.client(K.tpm).chat.completions.create(say("say:big", { max_completion_tokens: 1600 })), 429, "rate_limit_exceeded");
    const headers = error.headers!;
    expect(Number(headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(headers.get("x-ratelimit-limit-tokens")).toBe("2000");
    expect(Number(headers.get("x-ratelimit-remaining-tokens"))).toBeLessThan(1600);
    expect(headers.get("x-ratelimit-reset-tokens")).toMatch(OPENAI_DURATION);
    // What the first call did not use was given back: a small call fits.
    const small = await h.client(K.tpm).chat.completions.create(say("say:small", { max_completion_tokens: 100 }));
    expect(small.choices[0]?.message.content).toBe("small");
  });
});

describe("settling after the answer", () => {
  it("answers without waiting for the store's settle, holding the worst case until the settle lands", async () => {
    const store = h.gateway.services.store;
    const settle = store.settle;
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    store.settle = async (request, now) => {
      await gate;
      return settle.call(store, request, now);
    };
    try {
      const body = say("tokens:12", { model: "gpt-4o", max_completion_tokens: 500 });
      const answer = await h.client(K.slowSettle).chat.completions.create(body);
      const stream = await h.client(K.slowSettle).chat.completions.create({ ...body, stream: true });
      for await (const _chunk of stream);
      const worst = worstOf(body, 500).micros;
      // Both answers arrived while their settles were held: the store still charges both worst cases.
      expect(await spentToday(h, "key:slow-settle")).toBe(2 * worst);
      release();
      let spent = 2 * worst;
      for (let i = 0; i < 50 && spent === 2 * worst; i++) {
        await new Promise((r) => setTimeout(r, 10));
        spent = await spentToday(h, "key:slow-settle");
      }
      const actual = costMicros({ input_tokens: answer.usage?.prompt_tokens ?? 0, output_tokens: answer.usage?.completion_tokens ?? 0, cached_input_tokens: 0 }, GPT4O);
      expect(actual).toBeLessThan(worst);
      expect(spent).toBe(2 * actual);
    } finally {
      store.settle = settle;
      release();
    }
  });
});

describe("a client abort mid-stream", () => {
  it("settles the real cost (more than nothing, less than the worst case) and frees the parallel slot", async () => {
    const body = { ...say("tokens:200 chunks:200 delay:20", { max_completion_tokens: 1000 }), stream: true as const };
    const worst = worstCaseMicros(countChatInput(body, "o200k_base"), 1000, compileModelPrices({ upstream: "openai", kind: "chat", tokenizer: "o200k_base", max_output_tokens: 16384, output_limit_param: "max_completion_tokens", input_per_1m: 0.15, output_per_1m: 0.6 } as Parameters<typeof compileModelPrices>[0]));
    const controller = new AbortController();
    const stream = await h.client(K.abort).chat.completions.create(body, { signal: controller.signal });
    let received = 0;
    try {
      for await (const _chunk of stream) {
        received++;
        if (received === 5) controller.abort();
      }
    } catch (error) {
      expect(error).not.toBeInstanceOf(APIError);
    }
    expect(received).toBeGreaterThanOrEqual(5);
    let record: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && record === undefined; i++) {
      record = (await auditRecords(h)).find((r) => r.key_id === "abort" && r.status === 499);
      if (record === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(record?.error_code).toBe("client_closed");
    const spent = await spentToday(h, "key:abort");
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThan(worst);
    expect(Math.round((record?.cost as number) * 1_000_000)).toBe(spent);
    expect(record?.output_tokens as number).toBeGreaterThan(0);
    expect(record?.output_tokens as number).toBeLessThan(200);
    // max_parallel_requests: 1 — the aborted call gave its slot back.
    const next = await h.client(K.abort).chat.completions.create(say("say:next"));
    expect(next.choices[0]?.message.content).toBe("next");
  });
});

describe("org-wide limits", () => {
  let org: Harness;
  beforeAll(async () => {
    org = await startHarness(`${MODELS}
limits: { daily_cost: 0.009 }
keys:
${keyEntry("o1", "sk-org-1", "{ user: o1, role: developer, team: red }")}
${keyEntry("o2", "sk-org-2", "{ user: o2, role: developer, team: blue }")}
`);
  });
  afterAll(async () => org.close());

  it("sums the org budget over every key of every team", async () => {
    const call = (key: string, content: string) =>
      org.client(key).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content }], max_completion_tokens: 450 });
    await call("sk-org-1", "tokens:400");
    await call("sk-org-2", "tokens:400");
    const error = await expectApiError(call("sk-org-2", "say:third"), 429, "budget_exceeded");
    expect(error.message).toMatch(/org daily budget/);
    const spent = await spentToday(org, "org");
    expect(spent).toBe((await spentToday(org, "key:o1")) + (await spentToday(org, "key:o2")));
    expect(spent).toBeLessThanOrEqual(9000);
  });
});

describe("UTC day rollover", () => {
  let now = Date.parse("2025-03-10T23:59:30.000Z");
  let day: Harness;
  beforeAll(async () => {
    day = await startHarness(
      `${MODELS}
keys:
${keyEntry("d", "sk-day", "{ user: d, role: developer, team: red }", "{ daily_cost: 0.005, monthly_cost: 1 }")}
`,
      { clock: () => now },
    );
  });
  afterAll(async () => day.close());

  it("starts a fresh daily budget at midnight UTC, while the monthly spend carries on", async () => {
    const call = (content: string) =>
      day.client("sk-day").chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content }], max_completion_tokens: 450 });
    await call("tokens:400");
    await expectApiError(call("say:late"), 429, "budget_exceeded");
    const before = await day.gateway.services.store.usage("key:d", now);
    now = Date.parse("2025-03-11T00:00:05.000Z");
    const answer = await call("say:new day");
    expect(answer.choices[0]?.message.content).toBe("new day");
    const after = await day.gateway.services.store.usage("key:d", now);
    expect(after.dailyMicros).toBeGreaterThan(0);
    expect(after.dailyMicros).toBeLessThan(before.dailyMicros);
    expect(after.monthlyMicros).toBe(before.monthlyMicros + after.dailyMicros);
  });
});
