import { describe, expect, it } from "vitest";
import { reserveAll, settleAll } from "../../src/limits/enforce.js";
import { LEASE_MS } from "../../src/limits/leases.js";
import type { LimitPlan } from "../../src/limits/plan.js";
import { MemoryStore } from "../../src/state/memory.js";
import type { ReserveRequest, SettleRequest } from "../../src/state/store.js";
import { limitPlan, limits, T0 } from "../state/fixtures.js";

/** A memory store that records what reserveAll and settleAll ask of it. */
class RecordingStore extends MemoryStore {
  readonly reserved: ReserveRequest[] = [];
  readonly settled: SettleRequest[] = [];
  override reserve(request: ReserveRequest, now: number) {
    this.reserved.push(request);
    return super.reserve(request, now);
  }
  override settle(request: SettleRequest, now: number) {
    this.settled.push(request);
    return super.settle(request, now);
  }
}

const plan = (maxParallel: number): LimitPlan =>
  limitPlan([
    { level: "key:k", limits: limits({ maxParallel: 100 }) },
    { level: "org", limits: limits({ maxParallel }) },
  ]);
const charge = { inputTokens: 10, inputMicros: 0, outputPricePer1M: 0, outputTokens: 10 };

describe("reserveAll / settleAll", () => {
  it("names each reservation once for all its levels, leases it for the plan's time and settles that name", async () => {
    const store = new RecordingStore(null, T0);
    const first = await reserveAll(store, plan(2), charge, T0);
    await reserveAll(store, plan(2), charge, T0);
    const [a, b, c, d] = store.reserved;
    expect(a!.callId).toBe(b!.callId);
    expect(c!.callId).toBe(d!.callId);
    expect(c!.callId).not.toBe(a!.callId);
    expect(store.reserved.every((r) => r.leaseMs === LEASE_MS)).toBe(true);

    await settleAll(store, first, { micros: 0, tokens: 0, toolCalls: 0 }, T0);
    expect(store.settled.map((s) => s.callId)).toEqual([a!.callId, a!.callId]);
    // The settled call's slot is free again; the other one still holds its own.
    await reserveAll(store, plan(2), charge, T0);
    await expect(reserveAll(store, plan(2), charge, T0)).rejects.toMatchObject({ status: 429 });
    // The org refused: the key level's slot was released under the same name.
    const refused = store.reserved.at(-1)!;
    expect(store.settled.at(-1)).toMatchObject({ level: "key:k", callId: refused.callId, released: true });
  });

  it("gives back what the earlier levels took when the store fails at a later one", async () => {
    const store = new RecordingStore(null, T0);
    const down = new Error("store unreachable");
    store.reserve = (request, now) => (request.level === "org" ? Promise.reject(down) : MemoryStore.prototype.reserve.call(store, request, now));
    await expect(reserveAll(store, plan(1), charge, T0)).rejects.toBe(down);
    expect(store.settled).toMatchObject([{ level: "key:k", released: true }]);
    expect((await store.usage("key:k", T0)).requestsLastMinute).toBe(0);
  });

  it("reports x-ratelimit-* on a parallel refusal, even with no per-minute limit to report", async () => {
    const store = new MemoryStore(null, T0);
    await reserveAll(store, plan(1), charge, T0);
    const refusal = await reserveAll(store, plan(1), charge, T0).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ status: 429, code: "rate_limit_exceeded" });
    expect((refusal as { options: { headers: Record<string, string> } }).options.headers).toMatchObject({
      "retry-after": "1",
      "x-ratelimit-limit-requests": "1",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "1s",
    });
  });

  it("reports the parallel limit that refused, not a per-minute limit with requests to spare", async () => {
    const store = new MemoryStore(null, T0);
    const both = limitPlan([{ level: "key:k", limits: limits({ maxParallel: 1, requestsPerMinute: 60 }) }]);
    await reserveAll(store, both, charge, T0);
    const refusal = await reserveAll(store, both, charge, T0).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ status: 429, code: "rate_limit_exceeded" });
    expect((refusal as { options: { headers: Record<string, string> } }).options.headers).toMatchObject({
      "x-ratelimit-limit-requests": "1",
      "x-ratelimit-remaining-requests": "0",
    });
  });

  it("reserves n answers' worst case and shares a budget's clamp between them", async () => {
    const store = new RecordingStore(null, T0);
    const budget: LimitPlan = { ...plan(100), levels: [{ level: "key:n", limits: limits({ dailyMicros: 1000, tokensPerMinute: 100_000 }) }] };
    // 10 micro-USD per output token: 300 tokens of output fit the 1,000 micro-USD budget.
    const reservation = await reserveAll(store, budget, { inputTokens: 10, inputMicros: 0, outputPricePer1M: 10_000_000, outputTokens: 200, choices: 3 }, T0);
    expect(store.reserved[0]).toMatchObject({ outputTokens: 600, minOutputTokens: 3 });
    expect(reservation.outputTokens).toBe(33);
    expect(reservation.levels[0]?.reservedMicros).toBeLessThanOrEqual(1000);
    expect(reservation.levels[0]?.reservedMicros).toBeGreaterThan(990);
  });
});

describe("the x-ratelimit-* headers of a refusal", () => {
  const levels = (keyRpm: number, teamRpm: number): LimitPlan => ({
    ...plan(100),
    levels: [
      { level: "key:k", limits: limits({ requestsPerMinute: keyRpm }) },
      { level: "team:t", limits: limits({ requestsPerMinute: teamRpm }) },
    ],
  });
  const headersOf = (error: unknown): Record<string, string> => (error as { options: { headers: Record<string, string> } }).options.headers;

  it("name the limit of the level that refused, not an earlier level's tied at none remaining", async () => {
    const store = new MemoryStore(null, T0);
    await reserveAll(store, levels(3, 2), charge, T0);
    await reserveAll(store, levels(3, 2), charge, T0);
    const refusal = await reserveAll(store, levels(3, 2), charge, T0).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ status: 429, code: "rate_limit_exceeded", message: expect.stringMatching(/^team requests per minute/) });
    expect(headersOf(refusal)).toMatchObject({ "x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "0" });
  });

  it("report an earlier level's tokens as they stand once the refused call gave them back", async () => {
    const store = new MemoryStore(null, T0);
    const tiers: LimitPlan = {
      ...plan(100),
      levels: [
        { level: "key:k", limits: limits({ tokensPerMinute: 500, requestsPerMinute: 100 }) },
        { level: "user:u", limits: limits({ requestsPerMinute: 1 }) },
      ],
    };
    const admitted = await reserveAll(store, tiers, charge, T0);
    expect(admitted.rate.tokens?.remaining).toBe(480);
    const refusal = await reserveAll(store, tiers, charge, T0).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ status: 429, message: expect.stringMatching(/^user requests per minute/) });
    expect(headersOf(refusal)).toMatchObject({ "x-ratelimit-remaining-tokens": "480", "x-ratelimit-remaining-requests": "0", "x-ratelimit-limit-requests": "1" });
    // 20 of 500 tokens missing refill in 2.4 s: the reset the admitted call reported, not that of 40 missing.
    expect(headersOf(refusal)["x-ratelimit-reset-tokens"]).toBe("3s");
  });

  it("report the reset of the remaining they show when a later level refuses a budget", async () => {
    const store = new MemoryStore(null, T0);
    const session: LimitPlan = {
      ...plan(100),
      levels: [
        { level: "key:k", limits: limits({ requestsPerMinute: 60 }) },
        { level: "session:k:s", limits: limits({ session: true, sessionMaxLlmCalls: 1 }) },
      ],
    };
    const admitted = await reserveAll(store, session, charge, T0);
    expect(admitted.rate.requests).toEqual({ limit: 60, remaining: 59, resetMs: 1000 });
    for (let i = 0; i < 3; i++) {
      const refusal = await reserveAll(store, session, charge, T0 + 500).catch((error: unknown) => error);
      expect(refusal).toMatchObject({ status: 429, code: "budget_exceeded" });
      // 59.5 of 60 at 60 a minute, 500 ms after the admitted call: full again in 500 ms.
      expect(headersOf(refusal)).toMatchObject({ "x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "500ms" });
    }
  });

  it("carry retry-after when the call can never fit the tokens per minute, with x-should-retry false", async () => {
    const store = new MemoryStore(null, T0);
    const tpm: LimitPlan = { ...plan(100), levels: [{ level: "key:k", limits: limits({ tokensPerMinute: 15 }) }] };
    const refusal = await reserveAll(store, tpm, charge, T0).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ status: 429, code: "rate_limit_exceeded", message: expect.stringMatching(/can never admit/) });
    expect(headersOf(refusal)).toMatchObject({ "retry-after": "60", "x-should-retry": "false", "x-ratelimit-limit-tokens": "15" });
    // An embedding has no output to lower: the message says what can be.
    const input = await reserveAll(store, tpm, { ...charge, inputTokens: 20, outputTokens: 0 }, T0).catch((error: unknown) => error);
    expect(input).toMatchObject({ status: 429, message: expect.stringMatching(/its input alone is 20 tokens against 15 per minute; send less input$/) });
  });
});

describe("the order levels are reserved in", () => {
  it("tries the levels that hold no money first, so a call they refuse never sits on a budget", async () => {
    const store = new RecordingStore(null, T0);
    const plan = limitPlan([
      { level: "key:k", limits: limits({ dailyMicros: 1000 }) },
      { level: "team:t", limits: limits({ maxParallel: 1 }) },
    ]);
    const running = await reserveAll(store, plan, { ...charge, inputMicros: 600 }, T0);
    expect(store.reserved.map((r) => r.level)).toEqual(["team:t", "key:k"]);
    const before = store.reserved.length;
    await expect(reserveAll(store, plan, { ...charge, inputMicros: 300 }, T0)).rejects.toMatchObject({ code: "rate_limit_exceeded" });
    // Refused by the team's parallel limit before the key's budget was asked.
    expect(store.reserved.slice(before).map((r) => r.level)).toEqual(["team:t"]);
    await settleAll(store, running, { micros: 100, tokens: 0, toolCalls: 0 }, T0);
    expect((await reserveAll(store, plan, { ...charge, inputMicros: 800 }, T0)).levels).toHaveLength(2);
  });
});
