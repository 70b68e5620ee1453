import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { StateChange, StateStore } from "../../src/state/store.js";
import { LEASE_GRACE_MS } from "../../src/limits/leases.js";
import { approval, limits, reserveRequest, runtimeKey, settleRequest, T0 } from "./fixtures.js";

export interface StoreUnderTest {
  store: StateStore;
  /** A second replica sharing the store's state (the memory store passes itself). */
  replica: StateStore;
  cleanup: () => Promise<void>;
}

const MINUTE = 60_000;

/** The behaviour every StateStore must have; run against the memory and the Redis store. */
export function describeStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`${name} store contract`, () => {
    let store: StateStore;
    let replica: StateStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, replica, cleanup } = await makeStore());
    });
    afterEach(async () => {
      await cleanup();
    });

    describe("requests per minute", () => {
      it("admits a burst of N, then refuses until the bucket refills", async () => {
        const request = reserveRequest("key:rpm", limits({ requestsPerMinute: 5 }));
        for (let i = 0; i < 5; i++) {
          const result = await store.reserve(request, T0);
          expect(result.ok).toBe(true);
          expect(result.rate.requests).toEqual({ limit: 5, remaining: 4 - i, resetMs: (i + 1) * 12_000 });
        }
        const refused = await store.reserve(request, T0);
        expect(refused).toMatchObject({ ok: false, limit: "requests_per_minute", retryAfterMs: 12_000 });
        expect((await store.reserve(request, T0 + 11_999)).ok).toBe(false);
        expect((await store.reserve(request, T0 + 12_000)).ok).toBe(true);
        expect((await store.reserve(request, T0 + 12_000)).ok).toBe(false);
        // A full minute refills the whole burst, no more.
        for (let i = 0; i < 5; i++) expect((await store.reserve(request, T0 + 12_000 + 10 * MINUTE)).ok).toBe(true);
        expect((await store.reserve(request, T0 + 12_000 + 10 * MINUTE)).ok).toBe(false);
      });
    });

    describe("tokens per minute", () => {
      it("reserves the worst case and refunds the unused part on settle", async () => {
        const levelLimits = limits({ tokensPerMinute: 1000 });
        const request = reserveRequest("key:tpm", levelLimits, { inputTokens: 100, outputTokens: 400 });
        const first = await store.reserve(request, T0);
        expect(first).toMatchObject({ ok: true, reservedTokens: 500, rate: { tokens: { limit: 1000, remaining: 500 } } });
        expect((await store.reserve(request, T0)).ok).toBe(true);
        expect(await store.reserve(request, T0)).toMatchObject({ ok: false, limit: "tokens_per_minute", retryAfterMs: 30_000 });
        await store.settle(settleRequest(request, first, T0, { actualTokens: 150 }), T0);
        // 350 back: not enough for 500, enough for 300.
        expect((await store.reserve(request, T0)).ok).toBe(false);
        const smaller = reserveRequest("key:tpm", levelLimits, { inputTokens: 100, outputTokens: 200 });
        expect(await store.reserve(smaller, T0)).toMatchObject({ ok: true, rate: { tokens: { remaining: 50 } } });
      });

      it("asks a call larger than the whole minute to wait a minute", async () => {
        const request = reserveRequest("key:tpm-big", limits({ tokensPerMinute: 100 }), { inputTokens: 100, outputTokens: 400 });
        expect(await store.reserve(request, T0)).toMatchObject({ ok: false, limit: "tokens_per_minute", retryAfterMs: MINUTE });
      });
    });

    describe("parallel requests", () => {
      // Each call is its own reservation (its own id): a fresh request per call.
      const call = (level: string, maxParallel: number, leaseMs?: number) =>
        reserveRequest(level, limits({ maxParallel }), leaseMs === undefined ? {} : { leaseMs });

      it("holds a slot until the call settles, and settling frees it at once", async () => {
        const first = call("key:par", 2);
        const granted = await store.reserve(first, T0);
        expect((await store.reserve(call("key:par", 2), T0)).ok).toBe(true);
        expect(await store.reserve(call("key:par", 2), T0)).toMatchObject({ ok: false, limit: "max_parallel_requests", retryAfterMs: 1000 });
        await store.settle(settleRequest(first, granted, T0), T0);
        expect((await replica.reserve(call("key:par", 2), T0)).ok).toBe(true);
        expect((await store.reserve(call("key:par", 2), T0)).ok).toBe(false);
      });

      it("stops counting a call that is never settled once its lease ends and the grace to renew it has passed", async () => {
        const leaseMs = 60_000;
        expect((await store.reserve(call("key:lease", 1, leaseMs), T0)).ok).toBe(true);
        expect(await replica.reserve(call("key:lease", 1, leaseMs), T0 + leaseMs - 1)).toMatchObject({ ok: false, limit: "max_parallel_requests" });
        // Every lease of the level lapsed at once, as after a store outage: the grace for renewing them starts.
        expect(await replica.reserve(call("key:lease", 1, leaseMs), T0 + leaseMs)).toMatchObject({ ok: false, limit: "max_parallel_requests" });
        const after = T0 + leaseMs + LEASE_GRACE_MS;
        expect((await replica.reserve(call("key:lease", 1, leaseMs), after)).ok).toBe(true);
        // The call admitted in its place holds the slot for a lease of its own.
        expect((await store.reserve(call("key:lease", 1, leaseMs), after + leaseMs - 1)).ok).toBe(false);
      });

      it("keeps a renewed lease past its first end, on every replica, and lets it lapse once renewal stops", async () => {
        const leaseMs = 60_000;
        const running = call("key:renew", 1, leaseMs);
        expect((await store.reserve(running, T0)).ok).toBe(true);
        await store.renewLeases([{ level: "key:renew", callId: running.callId }], T0 + 50_000, leaseMs);
        expect(await replica.reserve(call("key:renew", 1, leaseMs), T0 + leaseMs + 1)).toMatchObject({ ok: false, limit: "max_parallel_requests" });
        // The replica that ran the call is gone: nobody renews it, and it lapses a lease after the last renewal (and a grace).
        expect((await replica.reserve(call("key:renew", 1, leaseMs), T0 + 50_000 + leaseMs)).ok).toBe(false);
        expect((await replica.reserve(call("key:renew", 1, leaseMs), T0 + 50_000 + leaseMs + LEASE_GRACE_MS)).ok).toBe(true);
      });

      it("does not bring back a settled call's lease by renewing it", async () => {
        const done = call("key:renew-settled", 1);
        const granted = await store.reserve(done, T0);
        await store.settle(settleRequest(done, granted, T0), T0);
        await store.renewLeases([{ level: "key:renew-settled", callId: done.callId }], T0, 60_000);
        expect((await replica.reserve(call("key:renew-settled", 1), T0)).ok).toBe(true);
      });

      it("gives back only its own slot when settled after its lease ended", async () => {
        const leaseMs = 60_000;
        const late = call("key:late", 1, leaseMs);
        const granted = await store.reserve(late, T0);
        expect((await store.reserve(call("key:late", 1, leaseMs), T0 + leaseMs)).ok).toBe(false);
        const after = T0 + leaseMs + LEASE_GRACE_MS;
        expect((await store.reserve(call("key:late", 1, leaseMs), after)).ok).toBe(true);
        await store.settle(settleRequest(late, granted, T0), after + 10);
        expect((await store.reserve(call("key:late", 1, leaseMs), after + 20)).ok).toBe(false);
      });
    });

    describe("cost budgets", () => {
      // 0.70 USD per 1M output tokens: 0.7 micro-USD a token.
      const priced = { inputMicros: 100, outputPricePer1M: 700_000, outputTokens: 5000, minOutputTokens: 10 };

      it("clamps the output tokens to what the daily budget can pay", async () => {
        const levelLimits = limits({ dailyMicros: 1000 });
        const result = await store.reserve(reserveRequest("key:daily", levelLimits, priced), T0);
        // (1000 - 100) / 0.7 = 1285.7 tokens; 100 + ceil(1285 * 0.7) = 1000 micros.
        expect(result).toMatchObject({ ok: true, outputTokens: 1285, reservedMicros: 1000, reservedTokens: 1385 });
        expect(await store.reserve(reserveRequest("key:daily", levelLimits, priced), T0)).toMatchObject({
          ok: false,
          limit: "daily_cost",
          retryAfterMs: null,
        });
        expect((await store.usage("key:daily", T0)).dailyMicros).toBe(1000);
      });

      it("rounds the worst case up once, input and output together: a budget left at exactly it admits the call", async () => {
        // 8 tokens at 0.15 USD per 1M in (1.2 micro-USD), 1 at 0.60 out (0.6): 1.8, reserved as 2.
        const exact = { inputTokens: 8, inputMicros: 1.2, outputPricePer1M: 600_000, outputTokens: 1, minOutputTokens: 1 };
        expect(await store.reserve(reserveRequest("key:exact", limits({ totalMicros: 2 }), exact), T0)).toMatchObject({ ok: true, outputTokens: 1, reservedMicros: 2 });
        expect(await store.reserve(reserveRequest("key:exact", limits({ totalMicros: 2 }), exact), T0)).toMatchObject({ ok: false, limit: "total_cost" });
        // 1.2 + 301 x 0.6 = 181.8, reserved as 182: not clamped to 300; a micro-dollar less clamps to 299 (180.6).
        const longer = { ...exact, outputTokens: 301, minOutputTokens: 10 };
        expect(await store.reserve(reserveRequest("key:exact-301", limits({ totalMicros: 182 }), longer), T0)).toMatchObject({ ok: true, outputTokens: 301, reservedMicros: 182 });
        expect(await store.reserve(reserveRequest("key:exact-300", limits({ totalMicros: 181 }), longer), T0)).toMatchObject({ ok: true, outputTokens: 299, reservedMicros: 181 });
      });

      it("refuses when the budget cannot pay min_output_tokens", async () => {
        const levelLimits = limits({ dailyMicros: 1000 });
        const first = await store.reserve(reserveRequest("key:min", levelLimits, { ...priced, outputTokens: 1200 }), T0);
        expect(first).toMatchObject({ ok: true, reservedMicros: 940 });
        // 60 left: input 50 leaves 10 micros = 14 tokens.
        const next = { ...priced, inputMicros: 50, minOutputTokens: 15 };
        expect(await store.reserve(reserveRequest("key:min", levelLimits, next), T0)).toMatchObject({ ok: false, limit: "daily_cost" });
        const lower = { ...next, minOutputTokens: 14 };
        expect(await store.reserve(reserveRequest("key:min", levelLimits, lower), T0)).toMatchObject({ ok: true, outputTokens: 14 });
      });

      it("rejects instead of clamping in reject mode", async () => {
        const levelLimits = limits({ dailyMicros: 1000 });
        const reject = { ...priced, clamp: false };
        expect(await store.reserve(reserveRequest("key:reject", levelLimits, reject), T0)).toMatchObject({ ok: false, limit: "daily_cost" });
        const fits = await store.reserve(reserveRequest("key:reject", levelLimits, { ...reject, outputTokens: 1285 }), T0);
        expect(fits).toMatchObject({ ok: true, outputTokens: 1285, reservedMicros: 1000 });
      });

      it("starts a new day at midnight UTC and keeps the month", async () => {
        const late = Date.UTC(2025, 0, 15, 23, 59, 59, 999);
        const levelLimits = limits({ dailyMicros: 1000 });
        const request = reserveRequest("key:day", levelLimits, { ...priced, outputTokens: 1285 });
        expect((await store.reserve(request, late)).ok).toBe(true);
        expect((await store.reserve(request, late)).ok).toBe(false);
        expect((await store.reserve(request, late + 1)).ok).toBe(true);
        expect(await store.usage("key:day", late + 1)).toMatchObject({ dailyMicros: 1000, monthlyMicros: 2000, totalMicros: 2000 });
      });

      it("starts a new month on the first, UTC", async () => {
        const late = Date.UTC(2025, 0, 31, 23, 59, 59, 999);
        const levelLimits = limits({ monthlyMicros: 1000 });
        const request = reserveRequest("key:month", levelLimits, { ...priced, outputTokens: 1285 });
        expect((await store.reserve(request, late)).ok).toBe(true);
        expect(await store.reserve(request, late)).toMatchObject({ ok: false, limit: "monthly_cost" });
        expect((await store.reserve(request, late + 1)).ok).toBe(true);
        expect(await store.usage("key:month", late + 1)).toMatchObject({ monthlyMicros: 1000, totalMicros: 2000 });
      });

      it("gives back what a call reserved once its lease ends unsettled (its replica died), and charges a late settle in full", async () => {
        const levelLimits = limits({ totalMicros: 1000, dailyMicros: 1000 });
        const dead = reserveRequest("key:died", levelLimits, { inputMicros: 900, leaseMs: 60_000 });
        const held = await store.reserve(dead, T0);
        expect(held.ok).toBe(true);
        const next = () => reserveRequest("key:died", levelLimits, { inputMicros: 900, leaseMs: 60_000 });
        expect(await store.reserve(next(), T0 + 59_000)).toMatchObject({ ok: false, limit: "daily_cost" });
        // A renewed lease keeps its reservation.
        await store.renewLeases([{ level: "key:died", callId: dead.callId }], T0 + 59_000, 60_000);
        expect(await store.reserve(next(), T0 + 100_000)).toMatchObject({ ok: false, limit: "daily_cost" });
        // Its only lease lapsed: kept through the grace its replica gets to renew it, then given back.
        expect(await store.reserve(next(), T0 + 119_001)).toMatchObject({ ok: false, limit: "daily_cost" });
        const after = T0 + 119_001 + LEASE_GRACE_MS;
        const granted = next();
        const result = await store.reserve(granted, after);
        expect(result.ok).toBe(true);
        expect(await store.usage("key:died", after)).toMatchObject({ dailyMicros: 900, totalMicros: 900 });
        // The first call's settle comes after all (its replica was only stalled): its cost is spend, whole.
        await store.settle(settleRequest(dead, held, T0, { actualMicros: 50 }), after + 1000);
        await store.settle(settleRequest(granted, result, after, { actualMicros: 30 }), after + 1000);
        expect(await store.usage("key:died", after + 1000)).toMatchObject({ dailyMicros: 80, totalMicros: 80 });
      });

      it("never resets the total", async () => {
        const levelLimits = limits({ totalMicros: 1000 });
        const request = reserveRequest("key:total", levelLimits, { ...priced, outputTokens: 1285 });
        const result = await store.reserve(request, T0);
        await store.settle(settleRequest(request, result, T0, { actualMicros: result.ok ? result.reservedMicros : 0 }), T0);
        for (const later of [T0 + 86_400_000, Date.UTC(2025, 1, 15), Date.UTC(2026, 0, 1)]) {
          expect(await store.reserve(request, later)).toMatchObject({ ok: false, limit: "total_cost" });
        }
      });

      it("charges a call settled after midnight to the new day", async () => {
        const before = Date.UTC(2025, 0, 15, 23, 59, 50);
        const after = Date.UTC(2025, 0, 16, 0, 0, 10);
        const request = reserveRequest("key:settle", limits(), { inputMicros: 1000 });
        const result = await store.reserve(request, before);
        expect((await store.usage("key:settle", before)).dailyMicros).toBe(1000);
        await store.settle(settleRequest(request, result, before, { actualMicros: 600 }), after);
        expect(await store.usage("key:settle", after)).toMatchObject({ dailyMicros: 600, monthlyMicros: 600, totalMicros: 600 });
      });

      it("charges a call settled after the month ends to the new month", async () => {
        const before = Date.UTC(2025, 0, 31, 23, 59, 50);
        const after = Date.UTC(2025, 1, 1, 0, 0, 10);
        const request = reserveRequest("key:settle-month", limits(), { inputMicros: 1000 });
        const result = await store.reserve(request, before);
        await store.settle(settleRequest(request, result, before, { actualMicros: 600 }), after);
        expect(await store.usage("key:settle-month", after)).toMatchObject({ dailyMicros: 600, monthlyMicros: 600, totalMicros: 600 });
      });

      it("replaces the reservation by the actual cost", async () => {
        const request = reserveRequest("key:actual", limits({ dailyMicros: 1000 }), { inputMicros: 800 });
        const result = await store.reserve(request, T0);
        expect((await store.reserve(request, T0)).ok).toBe(false);
        await store.settle(settleRequest(request, result, T0, { actualMicros: 150 }), T0);
        expect(await store.usage("key:actual", T0)).toMatchObject({ dailyMicros: 150, monthlyMicros: 150, totalMicros: 150 });
        expect((await store.reserve(request, T0)).ok).toBe(true);
      });
    });

    describe("sessions", () => {
      const session = (set: Parameters<typeof limits>[0]) => limits({ session: true, ...set });
      const level = "session:alice-dev:abc";

      it("counts llm calls", async () => {
        const request = reserveRequest(level, session({ sessionMaxLlmCalls: 2 }), { ttlMs: 3_600_000 });
        expect((await store.reserve(request, T0)).ok).toBe(true);
        expect((await store.reserve(request, T0)).ok).toBe(true);
        expect(await store.reserve(request, T0)).toMatchObject({ ok: false, limit: "session_llm_calls", retryAfterMs: null });
      });

      it("gives a call the upstream never answered back to the session's llm calls (its retry is not a second call)", async () => {
        const request = () => reserveRequest(`${level}:retry`, session({ sessionMaxLlmCalls: 2 }), { ttlMs: 3_600_000 });
        for (let attempt = 0; attempt < 3; attempt++) {
          const failed = request();
          const result = await store.reserve(failed, T0);
          expect(result.ok).toBe(true);
          await store.settle({ ...settleRequest(failed, result, T0, { actualMicros: 0, actualTokens: 0 }), unanswered: true }, T0);
        }
        expect((await store.reserve(request(), T0)).ok).toBe(true);
        expect((await store.reserve(request(), T0)).ok).toBe(true);
        expect(await store.reserve(request(), T0)).toMatchObject({ ok: false, limit: "session_llm_calls" });
      });

      it("counts tool calls when the answer settles; refuses a session past its limit, not one at it", async () => {
        const request = reserveRequest(level, session({ sessionMaxToolCalls: 3 }), { ttlMs: 3_600_000 });
        const first = await store.reserve(request, T0);
        expect((await store.reserve(request, T0)).ok).toBe(true);
        await store.settle(settleRequest(request, first, T0, { toolCalls: 3 }), T0);
        // At the limit a call that makes no tool call (the agent's final answer) still passes.
        const atLimit = await store.reserve(request, T0);
        expect(atLimit.ok).toBe(true);
        await store.settle(settleRequest(request, atLimit, T0, { toolCalls: 1 }), T0);
        expect(await store.reserve(request, T0)).toMatchObject({ ok: false, limit: "session_tool_calls" });
      });

      it("takes an answer's tool calls only while they keep the session within its cap, atomically", async () => {
        const request = reserveRequest(level, session({ sessionMaxToolCalls: 5 }), { ttlMs: 3_600_000 });
        expect(await store.takeToolCalls(level, 1, 5)).toEqual({ ok: false, used: 0 });
        const first = await store.reserve(request, T0);
        await store.settle(settleRequest(request, first, T0, { toolCalls: 2 }), T0);
        const answers = await Promise.all([store.takeToolCalls(level, 2, 5), replica.takeToolCalls(level, 2, 5)]);
        // Two answers of two each, at once: only one fits the three left.
        expect(answers.map((a) => a.ok).sort()).toEqual([false, true]);
        expect(await store.takeToolCalls(level, 1, 5)).toEqual({ ok: true, used: 4 });
        expect(await replica.takeToolCalls(level, 1, 5)).toEqual({ ok: false, used: 5 });
      });

      it("gives a withheld answer's tool calls back, past the cap too, never below zero", async () => {
        const request = reserveRequest(level, session({ sessionMaxToolCalls: 3 }), { ttlMs: 3_600_000 });
        await store.reserve(request, T0);
        expect(await store.takeToolCalls(level, 3, 3)).toEqual({ ok: true, used: 0 });
        expect(await replica.takeToolCalls(level, -2, 3)).toEqual({ ok: true, used: 3 });
        expect(await store.takeToolCalls(level, 2, 3)).toEqual({ ok: true, used: 1 });
        // A cap lowered since the take does not keep the calls from coming back.
        expect(await store.takeToolCalls(level, -1, 1)).toEqual({ ok: true, used: 3 });
        expect(await replica.takeToolCalls(level, -9, 3)).toEqual({ ok: true, used: 2 });
        expect(await store.takeToolCalls(level, 3, 3)).toEqual({ ok: true, used: 0 });
      });

      it("lets a session with max_tool_calls 0 call, until an answer calls a tool", async () => {
        const request = reserveRequest(level, session({ sessionMaxToolCalls: 0 }), { ttlMs: 3_600_000 });
        const first = await store.reserve(request, T0);
        expect(first.ok).toBe(true);
        await store.settle(settleRequest(request, first, T0, { toolCalls: 1 }), T0);
        expect(await store.reserve(request, T0)).toMatchObject({ ok: false, limit: "session_tool_calls" });
      });

      it("reserves the worst case against max tokens, clamps the output to the room left, settles to the actual", async () => {
        // 100 input + 100 output a call; 450 tokens in all.
        const request = reserveRequest(level, session({ sessionMaxTokens: 450 }), { ttlMs: 3_600_000, minOutputTokens: 20 });
        const first = await store.reserve(request, T0);
        expect(first).toMatchObject({ ok: true, outputTokens: 100, reservedTokens: 200 });
        // In flight, the first call holds 200: the second fits in full, the third only clamped.
        const second = await store.reserve(request, T0);
        expect(second).toMatchObject({ ok: true, outputTokens: 100 });
        expect(await store.reserve(request, T0)).toMatchObject({ ok: false, limit: "session_tokens" });
        // The first used only 120: 80 come back, room for a third call with its output clamped to 30.
        await store.settle(settleRequest(request, first, T0, { actualTokens: 120 }), T0);
        expect(await store.reserve(request, T0)).toMatchObject({ ok: true, outputTokens: 30 });
        await store.settle(settleRequest(request, second, T0, { actualTokens: 200 }), T0);
        expect(await store.reserve(request, T0)).toMatchObject({ ok: false, limit: "session_tokens" });
      });

      it("runs max seconds from the first request", async () => {
        const request = reserveRequest(level, session({ sessionMaxMs: 300_000 }), { ttlMs: 3_600_000 });
        expect((await store.reserve(request, T0)).ok).toBe(true);
        expect((await store.reserve(request, T0 + 300_000)).ok).toBe(true);
        expect(await store.reserve(request, T0 + 300_001)).toMatchObject({ ok: false, limit: "session_seconds" });
      });

      it("refuses past max_cost as session_cost, clamping first", async () => {
        const request = reserveRequest(level, session({ totalMicros: 1000 }), {
          ttlMs: 3_600_000,
          inputMicros: 100,
          outputPricePer1M: 700_000,
          outputTokens: 5000,
        });
        expect(await store.reserve(request, T0)).toMatchObject({ ok: true, outputTokens: 1285 });
        expect(await store.reserve(request, T0)).toMatchObject({ ok: false, limit: "session_cost" });
      });

      it("forgets a session idle for its ttl", async () => {
        const ttlMs = 60_000;
        const request = reserveRequest(level, session({ sessionMaxLlmCalls: 1 }), { ttlMs });
        expect((await store.reserve(request, T0)).ok).toBe(true);
        expect((await store.reserve(request, T0 + ttlMs - 1)).ok).toBe(false);
        // The refused call above touched the session: idle is measured from it.
        expect((await store.reserve(request, T0 + 2 * ttlMs - 2)).ok).toBe(false);
        expect((await store.reserve(request, T0 + 3 * ttlMs)).ok).toBe(true);
      });

      it("reads no spend for a session idle past its ttl, as its next call starts it afresh", async () => {
        const ttlMs = 60_000;
        const request = reserveRequest(`${level}:spent`, session({ totalMicros: 10_000 }), { ttlMs, inputMicros: 700 });
        const granted = await store.reserve(request, T0);
        await store.settle(settleRequest(request, granted, T0), T0 + 10);
        expect((await store.usage(`${level}:spent`, T0 + ttlMs)).totalMicros).toBe(700);
        expect(await store.usage(`${level}:spent`, T0 + 10 + ttlMs)).toMatchObject({ totalMicros: 0, dailyMicros: 0, monthlyMicros: 0 });
        // The next call starts it afresh: what it reserves is all the session has spent.
        const next = reserveRequest(`${level}:spent`, session({ totalMicros: 10_000 }), { ttlMs, inputMicros: 300 });
        expect((await store.reserve(next, T0 + 20 + ttlMs)).ok).toBe(true);
        expect((await store.usage(`${level}:spent`, T0 + 20 + ttlMs)).totalMicros).toBe(300);
      });
    });

    describe("usage", () => {
      it("counts requests and tokens of the last 60 seconds", async () => {
        const request = reserveRequest("key:usage", limits(), { inputMicros: 10 });
        const result = await store.reserve(request, T0);
        await store.settle(settleRequest(request, result, T0, { actualTokens: 500 }), T0 + 1000);
        expect(await store.usage("key:usage", T0 + 1000)).toEqual({
          requestsLastMinute: 1,
          tokensLastMinute: 500,
          dailyMicros: 10,
          monthlyMicros: 10,
          totalMicros: 10,
        });
        expect(await store.usage("key:usage", T0 + 59_999)).toMatchObject({ requestsLastMinute: 1, tokensLastMinute: 500 });
        expect(await store.usage("key:usage", T0 + 60_000)).toMatchObject({ requestsLastMinute: 0, tokensLastMinute: 500 });
        expect(await store.usage("key:usage", T0 + 61_000)).toMatchObject({ requestsLastMinute: 0, tokensLastMinute: 0, dailyMicros: 10 });
      });

      it("is zero for an unknown level", async () => {
        expect(await store.usage("key:nobody", T0)).toEqual({
          requestsLastMinute: 0,
          tokensLastMinute: 0,
          dailyMicros: 0,
          monthlyMicros: 0,
          totalMicros: 0,
        });
      });
    });

    describe("approvals", () => {
      const decision = (status: "approved" | "denied") => ({ status, by: "dana", role: "security", comment: "ok", at: new Date(T0 + 5).toISOString() });

      it("creates, reads and lists by status, newest first", async () => {
        await store.createApproval(approval("a1", T0));
        await store.createApproval(approval("a2", T0 + 1000));
        await store.createApproval(approval("a3", T0 + 2000));
        expect(await store.getApproval("a1")).toEqual(approval("a1", T0));
        expect(await store.getApproval("missing")).toBeNull();
        await store.decideApproval("a2", decision("denied"), T0 + 3000);
        expect((await store.listApprovals(null)).map((a) => a.id)).toEqual(["a3", "a2", "a1"]);
        expect((await store.listApprovals("pending")).map((a) => a.id)).toEqual(["a3", "a1"]);
        expect((await store.listApprovals("denied")).map((a) => a.id)).toEqual(["a2"]);
        expect(await store.listApprovals("used")).toEqual([]);
      });

      it("is decided once", async () => {
        await store.createApproval(approval("a1", T0));
        const decided = await store.decideApproval("a1", decision("approved"), T0 + 10);
        expect(decided).toEqual({
          ok: true,
          approval: { ...approval("a1", T0), status: "approved", decided_by: "dana", decided_role: "security", decided_at: new Date(T0 + 5).toISOString(), comment: "ok" },
        });
        expect(await replica.decideApproval("a1", decision("denied"), T0 + 20)).toMatchObject({
          ok: false,
          reason: "not_pending",
          approval: { status: "approved" },
        });
        expect(await store.decideApproval("nope", decision("denied"), T0)).toEqual({ ok: false, reason: "not_found", approval: null });
      });

      it("cannot be decided or consumed once expired", async () => {
        await store.createApproval(approval("a1", T0));
        const expiry = T0 + 3_600_000;
        expect(await store.decideApproval("a1", decision("approved"), expiry)).toMatchObject({ ok: false, reason: "expired" });
        await store.createApproval(approval("a2", T0));
        expect((await store.decideApproval("a2", decision("approved"), expiry - 1)).ok).toBe(true);
        expect(await store.consumeApproval("a2", expiry)).toMatchObject({ ok: false, reason: "expired" });
      });

      it("is consumed exactly once, and only when approved", async () => {
        await store.createApproval(approval("a1", T0));
        expect(await store.consumeApproval("a1", T0)).toMatchObject({ ok: false, reason: "not_approved" });
        await store.decideApproval("a1", decision("approved"), T0);
        const attempts = await Promise.all([store, replica, store, replica].map((s) => s.consumeApproval("a1", T0 + 1)));
        expect(attempts.filter((a) => a.ok)).toHaveLength(1);
        expect(attempts.filter((a) => !a.ok && a.reason === "not_approved")).toHaveLength(3);
        expect((await store.getApproval("a1"))?.status).toBe("used");
        expect(await store.consumeApproval("missing", T0)).toEqual({ ok: false, reason: "not_found", approval: null });
      });

      it("is given back (used -> approved) only when used and not expired, and can then be consumed once more", async () => {
        await store.createApproval(approval("a1", T0));
        expect(await store.restoreApproval("a1", T0)).toMatchObject({ ok: false, reason: "not_used" });
        await store.decideApproval("a1", decision("approved"), T0);
        expect(await store.restoreApproval("a1", T0)).toMatchObject({ ok: false, reason: "not_used" });
        expect((await store.consumeApproval("a1", T0)).ok).toBe(true);
        expect(await replica.restoreApproval("a1", T0 + 1)).toMatchObject({ ok: true, approval: { status: "approved" } });
        expect((await store.getApproval("a1"))?.status).toBe("approved");
        expect((await store.consumeApproval("a1", T0 + 2)).ok).toBe(true);
        expect(await store.restoreApproval("a1", T0 + 3_600_000)).toMatchObject({ ok: false, reason: "expired" });
        expect((await store.getApproval("a1"))?.status).toBe("used");
        expect(await store.restoreApproval("missing", T0)).toEqual({ ok: false, reason: "not_found", approval: null });
      });
    });

    describe("runtime keys and stops", () => {
      it("stores keys by id, each write only on the revision it was made from", async () => {
        expect(await store.putKey(runtimeKey("k1"))).toBe(true);
        expect(await replica.putKey(runtimeKey("k2"))).toBe(true);
        // A second create of an id, on any replica, is refused.
        expect(await replica.putKey({ ...runtimeKey("k1"), disabled: true })).toBe(false);
        const revoked = { ...runtimeKey("k1"), revoked: true, revision: 1 };
        expect(await store.putKey(revoked)).toBe(true);
        // Made from revision 0 too (a PATCH that read before the revoke landed): refused, not laid over it.
        expect(await replica.putKey({ ...runtimeKey("k1"), disabled: true, revision: 1 })).toBe(false);
        expect(await store.putKey({ ...runtimeKey("k1"), revision: 5 })).toBe(false);
        const keys = await replica.listKeys();
        expect(keys.sort((a, b) => a.id.localeCompare(b.id))).toEqual([revoked, runtimeKey("k2")]);
      });

      it("puts, lists and deletes stops", async () => {
        const stop = { kind: "user" as const, value: "alice", reason: "leak", by: "admin", at: new Date(T0).toISOString() };
        await store.putStop(stop);
        await store.putStop({ ...stop, kind: "team", value: "research" });
        expect(await replica.listStops()).toHaveLength(2);
        expect(await store.deleteStop("user", "alice")).toBe(true);
        expect(await store.deleteStop("user", "alice")).toBe(false);
        expect(await replica.listStops()).toEqual([{ ...stop, kind: "team", value: "research" }]);
      });

      it("tells every replica's listeners, its own included", async () => {
        const own: StateChange[] = [];
        const other: StateChange[] = [];
        store.onChange((change) => {
          own.push(change);
        });
        replica.onChange((change) => {
          other.push(change);
        });
        await store.putKey(runtimeKey("k1"));
        await store.putStop({ kind: "key_id", value: "k1", reason: "r", by: "admin", at: new Date(T0).toISOString() });
        await store.deleteStop("key_id", "k1");
        await store.deleteStop("key_id", "k1");
        const expected = ["keys", "stops", "stops"];
        await vi.waitFor(() => {
          expect(own.slice(0, 3)).toEqual(expected);
          expect(other.slice(-3)).toEqual(expected);
        });
      });
    });

    describe("concurrency", () => {
      it("admits exactly as many calls as the daily budget fits, across replicas", async () => {
        const fits = 37;
        const request = reserveRequest("team:race", limits({ dailyMicros: fits * 250 }), { inputMicros: 250, clamp: false });
        const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? store : replica).reserve(request, T0 + i)));
        expect(results.filter((r) => r.ok)).toHaveLength(fits);
        expect(results.filter((r) => !r.ok && r.limit === "daily_cost")).toHaveLength(200 - fits);
        expect((await replica.usage("team:race", T0 + 200)).dailyMicros).toBe(fits * 250);
      });
    });
  });
}
