import { GatewayError } from "../http/errors.js";
import type { RateStatus, ReserveRequest, ReserveResult, StateStore } from "../state/store.js";
import { newId } from "../util/ids.js";
import { isBudgetLimit, type LimitPlan } from "./plan.js";
import { rateHeaders } from "./headers.js";
import { restoredRate } from "./level-state.js";
import { LEASE_MS } from "./leases.js";

export interface CallCharge {
  inputTokens: number;
  inputMicros: number;
  outputPricePer1M: number;
  /** The output limit of one answer. */
  outputTokens: number;
  /** Answers asked for (chat `n`, default 1): each may use the whole output limit. */
  choices?: number;
}

interface ReservedLevel {
  request: ReserveRequest;
  reservedMicros: number;
  reservedTokens: number;
  /** The level's own status once it took this call: what a refusal further on gives back to. */
  rate: RateStatus;
}

/** What a call holds between reserve and settle. Settled exactly once. */
export interface Reservation {
  levels: ReservedLevel[];
  /** The output limit of one answer that every level admitted. */
  outputTokens: number;
  reservedAt: number;
  rate: RateStatus;
  settled: boolean;
}

export const unchargedReservation = (outputTokens: number, now: number): Reservation => ({
  levels: [],
  outputTokens,
  reservedAt: now,
  rate: {},
  settled: false,
});

const LIMIT_NAMES: Record<string, string> = {
  requests_per_minute: "requests per minute",
  tokens_per_minute: "tokens per minute",
  max_parallel_requests: "parallel requests",
  daily_cost: "daily budget",
  monthly_cost: "monthly budget",
  total_cost: "total budget",
  session_cost: "budget",
  session_tokens: "token budget",
  session_seconds: "time limit",
  session_llm_calls: "call limit",
  session_tool_calls: "tool-call limit",
};

/** Session limits that count or time calls rather than reserve a worst case. */
const SPENT_LIMITS = new Set(["session_seconds", "session_llm_calls", "session_tool_calls"]);

/** Keeps the tighter of two statuses for each of requests and tokens. */
function tightest(a: RateStatus, b: RateStatus): RateStatus {
  const out: RateStatus = { ...a };
  if (b.requests !== undefined && (out.requests === undefined || b.requests.remaining < out.requests.remaining)) out.requests = b.requests;
  if (b.tokens !== undefined && (out.tokens === undefined || b.tokens.remaining < out.tokens.remaining)) out.tokens = b.tokens;
  return out;
}

/** The rate status of the levels a reservation took from, once each got this call's request and tokens back. */
function givenBack(reservation: Reservation): RateStatus {
  let out: RateStatus = {};
  for (const { rate, reservedTokens } of reservation.levels) {
    const back: RateStatus = {};
    if (rate.requests !== undefined) back.requests = restoredRate(rate.requests, 1);
    if (rate.tokens !== undefined) back.tokens = restoredRate(rate.tokens, reservedTokens);
    out = tightest(out, back);
  }
  return out;
}

const PASSES = [false, true] as const;

function holdsMoney(limits: ReserveRequest["limits"]): boolean {
  return limits.dailyMicros !== null || limits.monthlyMicros !== null || limits.totalMicros !== null;
}

/**
 * Reserves the call's worst case level by level (key, user, team, org, session), each one atomic
 * step on its own keys; a refusal releases what the earlier levels took, so none is overspent.
 */
export async function reserveAll(store: StateStore, plan: LimitPlan, charge: CallCharge, now: number): Promise<Reservation> {
  const reservation: Reservation = { levels: [], outputTokens: charge.outputTokens, reservedAt: now, rate: {}, settled: false };
  // The levels reserve and clamp the output of all the answers together; each answer gets its share.
  const choices = charge.choices ?? 1;
  let totalOutput = charge.outputTokens * choices;
  // One id for every level: it names the call's parallel slot at each of them until settle.
  const callId = newId("call", now);
  // Levels that hold no money go first: a call they refuse then never sits, for a round trip, on
  // a budget that concurrent calls need (a team's parallel limit in a burst would fill the key's).
  for (const moneyPass of PASSES) for (const { level, limits } of plan.levels) {
    if (holdsMoney(limits) !== moneyPass) continue;
    const request: ReserveRequest = {
      level,
      limits,
      inputTokens: charge.inputTokens,
      inputMicros: charge.inputMicros,
      outputPricePer1M: charge.outputPricePer1M,
      outputTokens: totalOutput,
      minOutputTokens: Math.min(plan.minOutputTokens * choices, totalOutput),
      clamp: plan.clamp,
      ttlMs: plan.sessionTtlMs,
      callId,
      leaseMs: LEASE_MS,
    };
    let result: ReserveResult;
    try {
      result = await store.reserve(request, now);
    } catch (error) {
      // The store failed (the call is refused for it): what the earlier levels took goes back at once.
      await release(store, reservation, now).catch(() => undefined);
      throw error;
    }
    if (!result.ok) {
      await release(store, reservation, now);
      const scope = level.split(":")[0] ?? level;
      const what = LIMIT_NAMES[result.limit] ?? result.limit;
      // The level that refused wins a tie, so the headers name the limit that refused; the earlier
      // levels' figures are read as they stand once this call's request and tokens went back to them.
      const headers = rateHeaders(refusalRate(tightest(result.rate, givenBack(reservation)), result.limit, limits.maxParallel, result.retryAfterMs));
      if (isBudgetLimit(result.limit)) {
        const why = SPENT_LIMITS.has(result.limit) ? `${scope} ${what} reached` : `${scope} ${what} exhausted: this call's worst case does not fit what is left`;
        throw new GatewayError(429, "budget_exceeded", why, {
          headers: { ...headers, "x-should-retry": "false" },
        });
      }
      const retryAfter = Math.max(1, Math.ceil((result.retryAfterMs ?? 60_000) / 1000));
      const needed = request.inputTokens + request.outputTokens;
      const capacity = limits.tokensPerMinute;
      // A call whose worst case exceeds the whole per-minute allowance can never pass as sent: say how to fix it.
      const never = result.limit === "tokens_per_minute" && capacity !== null && needed > capacity;
      if (never) {
        // Waiting cannot help: `x-should-retry: false` stops SDKs from retrying it for minutes. The
        // `retry-after` every rate-limit 429 carries is the whole window, for clients that only read it.
        throw new GatewayError(
          429,
          "rate_limit_exceeded",
          request.outputTokens === 0
            ? `${scope} ${what} limit can never admit this call: its input alone is ${needed} tokens against ${capacity} per minute; send less input`
            : `${scope} ${what} limit can never admit this call: it reserves ${needed} tokens (input + output limit${choices > 1 ? ` × n` : ""}) against ${capacity} per minute; set a lower max_completion_tokens`,
          { headers: { ...headers, "retry-after": "60", "x-should-retry": "false" } },
        );
      }
      throw new GatewayError(429, "rate_limit_exceeded", `${scope} ${what} limit reached; retry after ${retryAfter}s`, {
        headers: { ...headers, "retry-after": String(retryAfter), "retry-after-ms": String(result.retryAfterMs ?? 60_000) },
      });
    }
    reservation.levels.push({ request, reservedMicros: result.reservedMicros, reservedTokens: result.reservedTokens, rate: result.rate });
    totalOutput = Math.min(totalOutput, result.outputTokens);
    reservation.outputTokens = Math.floor(totalOutput / choices);
    reservation.rate = tightest(reservation.rate, result.rate);
  }
  return reservation;
}

/**
 * The rate a 429 reports. A parallel refusal reports the slots as the request limit (none remaining
 * until one frees), over any per-minute status: a bucket with requests to spare would tell a client
 * to retry at once; and a key limited only in parallel calls still gets `x-ratelimit-*`, as the
 * contract says every rate-limit 429 does.
 */
function refusalRate(rate: RateStatus, limit: string, maxParallel: number | null, retryAfterMs: number | null | undefined): RateStatus {
  if (limit !== "max_parallel_requests" || maxParallel === null) return rate;
  return { ...rate, requests: { limit: maxParallel, remaining: 0, resetMs: retryAfterMs ?? 1000 } };
}

async function release(store: StateStore, reservation: Reservation, now: number): Promise<void> {
  await settleAll(store, reservation, { micros: 0, tokens: 0, toolCalls: 0 }, now, { released: true });
}

/** Replaces every level's reservation by the call's actual cost and tokens. Idempotent. */
export async function settleAll(
  store: StateStore,
  reservation: Reservation,
  actual: { micros: number; tokens: number; toolCalls: number },
  now: number,
  how: { released?: boolean; unanswered?: boolean } = {},
): Promise<void> {
  if (reservation.settled) return;
  reservation.settled = true;
  await Promise.all(
    reservation.levels.map(({ request, reservedMicros, reservedTokens }) =>
      store.settle(
        {
          level: request.level,
          callId: request.callId,
          limits: request.limits,
          reservedMicros,
          reservedTokens,
          actualMicros: actual.micros,
          actualTokens: actual.tokens,
          toolCalls: actual.toolCalls,
          ttlMs: request.ttlMs,
          reservedAt: reservation.reservedAt,
          ...(how.released === true ? { released: true } : {}),
          ...(how.unanswered === true ? { unanswered: true } : {}),
        },
        now,
      ),
    ),
  );
}
