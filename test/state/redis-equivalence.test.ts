import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../../src/state/memory.js";
import { RedisStore } from "../../src/state/redis.js";
import type { ReserveRequest, ReserveResult, StateStore } from "../../src/state/store.js";
import { startRedis } from "../helpers/redis.js";
import { limits, reserveRequest, settleRequest } from "./fixtures.js";

/**
 * The Lua scripts against the reference arithmetic: random sequences of reserves, settles and usage reads,
 * across a month's end, must get the very same answers, to the last float rounding, from both stores.
 */

const server = await startRedis();
afterAll(async () => {
  await server?.stop();
});

const START = Date.UTC(2025, 0, 31, 23, 58, 0);

const LEVELS = {
  "key:k": limits({ requestsPerMinute: 4, tokensPerMinute: 3000, maxParallel: 3, dailyMicros: 3000 }),
  "user:u": limits({ monthlyMicros: 4000, maxParallel: 2 }),
  "team:t": limits({ requestsPerMinute: 3 }),
  org: limits({ requestsPerMinute: 20, totalMicros: 6000 }),
  // Several sessions: the limits of one would shadow each other.
  "session:k:a": limits({ session: true, totalMicros: 4000, sessionMaxLlmCalls: 4 }),
  "session:k:b": limits({ session: true, sessionMaxToolCalls: 5, sessionMaxMs: 150_000 }),
  "session:k:c": limits({ session: true, sessionMaxTokens: 2000 }),
};
type Level = keyof typeof LEVELS;
// Levels are independent (their own keys), so each run drives one level hard rather than several lightly.
const level = fc.constantFrom<Level>(...(Object.keys(LEVELS) as Level[]));

// Mostly no or short waits so limits bite; some long ones so buckets refill, windows pass and sessions expire.
const wait = fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 100_000 }));

const reserveStep = fc.record({
  op: fc.constant("reserve" as const),
  inputTokens: fc.integer({ min: 0, max: 800 }),
  outputTokens: fc.integer({ min: 1, max: 2000 }),
  // Unrounded, as a call's input cost is (tokens x price / 1M): Lua and JavaScript must round it alike.
  inputMicros: fc.integer({ min: 0, max: 1_500_000 }).map((scaled) => scaled / 1000),
  clamp: fc.boolean(),
  // Leases short enough that calls left unsettled run out of them within a run.
  leaseMs: fc.integer({ min: 1, max: 200_000 }),
  wait,
});
const settleStep = fc.record({
  op: fc.constant("settle" as const),
  pick: fc.nat(),
  used: fc.double({ min: 0, max: 1.2, noNaN: true }),
  toolCalls: fc.integer({ min: 0, max: 3 }),
  wait,
});
const usageStep = fc.record({ op: fc.constant("usage" as const), wait });
const step = fc.oneof({ arbitrary: reserveStep, weight: 4 }, { arbitrary: settleStep, weight: 3 }, { arbitrary: usageStep, weight: 1 });
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

/** Runs the steps on one level of one store and records every answer. */
async function trace(store: StateStore, level: Level, steps: Step[]): Promise<unknown[]> {
  const answers: unknown[] = [];
  const open: Array<{ request: ReserveRequest; result: ReserveResult; at: number }> = [];
  let now = START;
  for (const s of steps) {
    now += s.wait;
    if (s.op === "reserve") {
      const request = reserveRequest(level, LEVELS[level], { ...s, outputPricePer1M: 700_000, minOutputTokens: 20, ttlMs: 300_000 });
      const result = await store.reserve(request, now);
      answers.push(result);
      if (result.ok) open.push({ request, result, at: now });
    } else if (s.op === "settle") {
      const [call] = open.splice(s.pick % Math.max(1, open.length), 1);
      if (call === undefined || !call.result.ok) continue;
      const actualMicros = Math.ceil(call.result.reservedMicros * s.used);
      const actualTokens = Math.ceil(call.result.reservedTokens * s.used);
      await store.settle(settleRequest(call.request, call.result, call.at, { actualMicros, actualTokens, toolCalls: s.toolCalls }), now);
    } else {
      answers.push(await store.usage(level, now));
    }
  }
  return answers;
}

/** The limits that refused at least once: agreeing proves little unless most of them bite. */
function refusedLimits(answers: unknown[], seen: Set<string>): void {
  for (const answer of answers) {
    const result = answer as ReserveResult;
    if (result.ok === false) seen.add(result.limit);
  }
}

let run = 0;

// Random runs reach these two limits only now and then; these examples make sure every run sees them bite.
const call = { op: "reserve" as const, inputTokens: 800, outputTokens: 2000, inputMicros: 0, clamp: true, leaseMs: 60_000, wait: 0 };
const bitingTokens: [Level, Step[]] = ["session:k:c", [call, { op: "settle", pick: 0, used: 1, toolCalls: 0, wait: 10 }, call]];
const bitingRate: [Level, Step[]] = ["team:t", [call, call, call, call]];

describe.skipIf(server === null)("redis store against the reference arithmetic", () => {
  it("answers every sequence exactly like the memory store", async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(level, fc.array(step, { minLength: 5, maxLength: 60, size: "max" }), async (focus, steps) => {
        const memory = new MemoryStore(null, START);
        const shared = new RedisStore(new Redis(server!.url), `eq${++run}:`);
        try {
          const expected = await trace(memory, focus, steps);
          expect(await trace(shared, focus, steps)).toEqual(expected);
          refusedLimits(expected, seen);
        } finally {
          await shared.close();
        }
      }),
      { numRuns: 250, examples: [bitingTokens, bitingRate] },
    );
    expect([...seen].sort()).toEqual([
      "daily_cost",
      "max_parallel_requests",
      "monthly_cost",
      "requests_per_minute",
      "session_cost",
      "session_llm_calls",
      "session_seconds",
      "session_tokens",
      "session_tool_calls",
      "tokens_per_minute",
      "total_cost",
    ]);
  });
});
