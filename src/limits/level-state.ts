import type { LimitKind, RateStatus, ReserveRequest, ReserveResult, SettleRequest, Usage } from "../state/store.js";
import { LEASE_GRACE_MS } from "./leases.js";

/**
 * One level's counters and the pure arithmetic over them. The memory store applies these functions
 * directly; the Redis store's Lua scripts implement the same steps, and one contract suite runs
 * against both.
 */
export interface LevelState {
  rpm: Bucket | null;
  tpm: Bucket | null;
  /**
   * Calls in flight where the level limits them: reservation id -> lease expiry (ms). A lease,
   * not a count, so a call that is never settled stops counting once its lease ends.
   */
  leases: Map<string, number>;
  day: string;
  dayMicros: number;
  month: string;
  monthMicros: number;
  totalMicros: number;
  session: SessionCounters | null;
  /** Per-second slots of the last minute: [second, requests, tokens]. */
  window: Array<[number, number, number]>;
  /**
   * What the spend above holds for each call in flight that reserved money (by reservation id; its
   * lease in `leases`): given back when the lease ends unsettled, left out of what a restart finds.
   */
  holds: Map<string, Hold>;
  /** The holds summed per counter (those of a past day or month left out): what a save leaves out, without a walk over every call in flight. */
  held: HeldSums;
  /** No lease ends before this (ms): until then a call need not look through them for ended ones. */
  sweepAfter: number;
  /** Set when every lease lapsed at once: none is taken back before this (ms; see `startGraceIfLapsed`). */
  graceUntil: number | null;
}

interface HeldSums {
  day: number;
  month: number;
  total: number;
  sessionMicros: number;
  sessionTokens: number;
}

/** One call's reservation: where it was counted (the day and month it was made in) and how much. */
interface Hold {
  micros: number;
  day: string;
  month: string;
  /** Its tokens in the session's count (0 outside a session). */
  tokens: number;
}

/** What a level keeps across a restart: its spend and its session. */
export type SavedLevel = Pick<LevelState, "day" | "dayMicros" | "month" | "monthMicros" | "totalMicros" | "session">;

/**
 * The level as a restart should find it: its spend without what it holds for calls in flight. Those
 * calls end with the process that reserved for them and will never be settled; kept, a worst case
 * reserved just before a crash would count as spent for good (a total budget never gets it back).
 */
export function savedLevel(state: LevelState): SavedLevel {
  const { day, month, session, held } = state;
  return {
    day,
    dayMicros: Math.max(0, state.dayMicros - held.day),
    month,
    monthMicros: Math.max(0, state.monthMicros - held.month),
    totalMicros: Math.max(0, state.totalMicros - held.total),
    session:
      session === null
        ? null
        : { ...session, micros: Math.max(0, session.micros - held.sessionMicros), tokens: Math.max(0, session.tokens - held.sessionTokens) },
  };
}

/** Takes a call's hold off the level (settled, or given back), from the sums of the counters that hold it. */
function dropHold(state: LevelState, id: string): Hold | undefined {
  const hold = state.holds.get(id);
  if (hold === undefined) return undefined;
  state.holds.delete(id);
  const { held } = state;
  if (hold.day === state.day) held.day = Math.max(0, held.day - hold.micros);
  if (hold.month === state.month) held.month = Math.max(0, held.month - hold.micros);
  held.total = Math.max(0, held.total - hold.micros);
  held.sessionMicros = Math.max(0, held.sessionMicros - hold.micros);
  held.sessionTokens = Math.max(0, held.sessionTokens - hold.tokens);
  return hold;
}

/**
 * Gives back what calls whose lease ended unsettled had reserved (their replica died mid-call), and
 * drops those leases: from today's and this month's spend where it was reserved today and this month.
 */
function releaseExpired(state: LevelState, now: number): void {
  // While a grace runs, `sweepAfter` stays at the lease that lapsed first: every call comes here.
  if (now < state.sweepAfter) return;
  const graceEnded = state.graceUntil !== null;
  if (state.graceUntil !== null) {
    if (now < state.graceUntil) return;
    state.graceUntil = null;
  }
  // The leases still lapsed when a grace ends are taken back, not given another.
  if (!graceEnded && startGraceIfLapsed(state, now)) return;
  state.sweepAfter = Number.POSITIVE_INFINITY;
  for (const [id, expiry] of state.leases) {
    if (expiry > now) {
      state.sweepAfter = Math.min(state.sweepAfter, expiry);
      continue;
    }
    state.leases.delete(id);
    const hold = dropHold(state, id);
    if (hold === undefined) continue;
    if (hold.day === state.day) state.dayMicros = Math.max(0, state.dayMicros - hold.micros);
    if (hold.month === state.month) state.monthMicros = Math.max(0, state.monthMicros - hold.micros);
    state.totalMicros = Math.max(0, state.totalMicros - hold.micros);
    if (state.session !== null) {
      state.session.micros = Math.max(0, state.session.micros - hold.micros);
      state.session.tokens = Math.max(0, state.session.tokens - hold.tokens);
    }
  }
}

/**
 * A lease also lapses when no replica could reach the store for longer than a lease: every lease of
 * the level then lapsed at once, its calls perhaps still running. Where every lease lapsed, their
 * replicas get LEASE_GRACE_MS to renew them before any is taken back (the lapsed ones keep their
 * slots meanwhile); true when that grace starts now. Called by the first call or renewal after it.
 */
export function startGraceIfLapsed(state: LevelState, now: number): boolean {
  if (state.graceUntil !== null || state.leases.size === 0) return false;
  for (const expiry of state.leases.values()) if (expiry > now) return false;
  state.graceUntil = now + LEASE_GRACE_MS;
  return true;
}

interface Bucket {
  tokens: number;
  at: number;
}

interface SessionCounters {
  startedAt: number;
  micros: number;
  tokens: number;
  llmCalls: number;
  toolCalls: number;
}

const MINUTE_MS = 60_000;

export function emptyLevelState(now: number): LevelState {
  return {
    rpm: null,
    tpm: null,
    leases: new Map(),
    day: dayOf(now),
    dayMicros: 0,
    month: monthOf(now),
    monthMicros: 0,
    totalMicros: 0,
    session: null,
    window: [],
    holds: new Map(),
    held: { day: 0, month: 0, total: 0, sessionMicros: 0, sessionTokens: 0 },
    sweepAfter: Number.POSITIVE_INFINITY,
    graceUntil: null,
  };
}

const DAY_MS = 86_400_000;
/** The last day asked for (index since the epoch) and its `YYYY-MM-DD`: most calls ask for today. */
let cachedDay = { index: Number.NaN, text: "", month: "" };

function calendarOf(now: number): { text: string; month: string } {
  const index = Math.floor(now / DAY_MS);
  if (index !== cachedDay.index) {
    const iso = new Date(now).toISOString();
    cachedDay = { index, text: iso.slice(0, 10), month: iso.slice(0, 7) };
  }
  return cachedDay;
}

export function dayOf(now: number): string {
  return calendarOf(now).text;
}

export function monthOf(now: number): string {
  return calendarOf(now).month;
}

/** Refills a bucket of `capacity` that fills completely in one minute. */
function refill(bucket: Bucket | null, capacity: number, now: number): Bucket {
  if (bucket === null) return { tokens: capacity, at: now };
  const elapsed = Math.max(0, now - bucket.at);
  return { tokens: Math.min(capacity, bucket.tokens + (elapsed * capacity) / MINUTE_MS), at: now };
}

function msToRefill(missing: number, capacity: number): number {
  return Math.ceil((missing * MINUTE_MS) / capacity);
}

type BucketStatus = NonNullable<RateStatus["requests"]>;

/**
 * A bucket's status once `amount` went back into it. The reset shrinks by the time that amount takes
 * to refill, so it stays the reset of the remaining shown (within the millisecond `msToRefill` rounds to).
 */
export function restoredRate(status: BucketStatus, amount: number): BucketStatus {
  const { limit, remaining, resetMs } = status;
  return {
    limit,
    remaining: Math.min(limit, remaining + amount),
    resetMs: Math.max(0, Math.ceil(resetMs - (amount * MINUTE_MS) / limit)),
  };
}

function rollCalendar(state: LevelState, now: number): void {
  const day = dayOf(now);
  if (state.day !== day) {
    state.day = day;
    state.dayMicros = 0;
    state.held.day = 0;
  }
  const month = monthOf(now);
  if (state.month !== month) {
    state.month = month;
    state.monthMicros = 0;
    state.held.month = 0;
  }
}

function pruneWindow(state: LevelState, now: number): void {
  const oldest = Math.floor(now / 1000) - 59;
  // Most calls find nothing to drop (a second's entry ends once a second): no new array for them.
  if (state.window.some(([second]) => second < oldest)) state.window = state.window.filter(([second]) => second >= oldest);
}

function addToWindow(state: LevelState, now: number, requests: number, tokens: number): void {
  const second = Math.floor(now / 1000);
  const last = state.window[state.window.length - 1];
  if (last !== undefined && last[0] === second) {
    last[1] += requests;
    last[2] += tokens;
  } else {
    state.window.push([second, requests, tokens]);
  }
}

function rateStatus(state: LevelState, request: { limits: ReserveRequest["limits"] }): RateStatus {
  const status: RateStatus = {};
  const { requestsPerMinute: rpm, tokensPerMinute: tpm } = request.limits;
  if (rpm !== null && state.rpm !== null) {
    const remaining = Math.max(0, Math.floor(state.rpm.tokens));
    status.requests = { limit: rpm, remaining, resetMs: msToRefill(rpm - state.rpm.tokens, rpm) };
  }
  if (tpm !== null && state.tpm !== null) {
    const remaining = Math.max(0, Math.floor(state.tpm.tokens));
    status.tokens = { limit: tpm, remaining, resetMs: msToRefill(tpm - state.tpm.tokens, tpm) };
  }
  return status;
}

/** The input's cost times 1M, whole: the worst case is rounded up once, input and output together, as a call's cost is. */
function inputScaled(request: ReserveRequest): number {
  return Math.round(request.inputMicros * 1_000_000);
}

function worstMicros(request: ReserveRequest, output: number): number {
  return Math.ceil((inputScaled(request) + output * request.outputPricePer1M) / 1_000_000);
}

/** The output tokens the remaining budget can pay for, or null when it cannot pay `minimum`. */
function affordableOutput(remainingMicros: number, request: ReserveRequest, wanted: number): number | null {
  if (worstMicros(request, wanted) <= remainingMicros) return wanted;
  if (!request.clamp || request.outputPricePer1M <= 0) return null;
  const fitting = Math.floor((remainingMicros * 1_000_000 - inputScaled(request)) / request.outputPricePer1M);
  return fitting >= request.minOutputTokens ? Math.min(fitting, wanted) : null;
}

/** The output tokens a token allowance leaves room for (after the input), or null when not `minimum`. */
function fittingOutput(room: number, request: ReserveRequest, wanted: number): number | null {
  if (wanted <= room) return wanted;
  return request.clamp && room >= request.minOutputTokens ? room : null;
}

function refusal(state: LevelState, request: ReserveRequest, limit: LimitKind, retryAfterMs: number | null): ReserveResult {
  return { ok: false, limit, retryAfterMs, rate: rateStatus(state, request) };
}

/** Checks every limit of the level and, when all pass, reserves the worst case. Mutates `state` only on success. */
export function reserveLevel(state: LevelState, request: ReserveRequest, now: number): ReserveResult {
  const limits = request.limits;
  rollCalendar(state, now);
  releaseExpired(state, now);
  pruneWindow(state, now);
  if (limits.sessionMaxMs !== null && state.session !== null && now - state.session.startedAt > limits.sessionMaxMs) {
    return refusal(state, request, "session_seconds", null);
  }
  if (limits.sessionMaxLlmCalls !== null && (state.session?.llmCalls ?? 0) >= limits.sessionMaxLlmCalls) {
    return refusal(state, request, "session_llm_calls", null);
  }
  if (limits.sessionMaxToolCalls !== null && (state.session?.toolCalls ?? 0) > limits.sessionMaxToolCalls) {
    return refusal(state, request, "session_tool_calls", null);
  }
  if (limits.sessionMaxTokens !== null && (state.session?.tokens ?? 0) >= limits.sessionMaxTokens) {
    return refusal(state, request, "session_tokens", null);
  }

  let output = request.outputTokens;
  const budgets: Array<[LimitKind, number | null, number]> = [
    ["daily_cost", limits.dailyMicros, state.dayMicros],
    ["monthly_cost", limits.monthlyMicros, state.monthMicros],
    ["total_cost", limits.totalMicros, state.totalMicros],
  ];
  for (const [kind, limit, spent] of budgets) {
    if (limit === null) continue;
    const fitting = affordableOutput(limit - spent, request, output);
    if (fitting === null) return refusal(state, request, limits.session ? "session_cost" : kind, null);
    output = fitting;
  }
  if (limits.sessionMaxTokens !== null) {
    const fitting = fittingOutput(limits.sessionMaxTokens - (state.session?.tokens ?? 0) - request.inputTokens, request, output);
    if (fitting === null) return refusal(state, request, "session_tokens", null);
    output = fitting;
  }

  const rpm = limits.requestsPerMinute === null ? null : refill(state.rpm, limits.requestsPerMinute, now);
  const tpm = limits.tokensPerMinute === null ? null : refill(state.tpm, limits.tokensPerMinute, now);
  if (rpm !== null) state.rpm = rpm;
  if (tpm !== null) state.tpm = tpm;
  if (rpm !== null && rpm.tokens < 1) {
    return refusal(state, request, "requests_per_minute", msToRefill(1 - rpm.tokens, limits.requestsPerMinute!));
  }
  const tokens = request.inputTokens + output;
  if (tpm !== null && tpm.tokens < tokens) {
    const capacity = limits.tokensPerMinute!;
    const wait = tokens > capacity ? MINUTE_MS : msToRefill(tokens - tpm.tokens, capacity);
    return refusal(state, request, "tokens_per_minute", wait);
  }
  // Leases that ended were dropped by `releaseExpired` above: the rest are calls in flight.
  if (limits.maxParallel !== null && state.leases.size >= limits.maxParallel) {
    return refusal(state, request, "max_parallel_requests", 1000);
  }

  const micros = worstMicros(request, output);
  if (rpm !== null) rpm.tokens -= 1;
  if (tpm !== null) tpm.tokens -= tokens;
  // A call that reserves money holds a lease too: its replica may die before the settle.
  if (limits.maxParallel !== null || micros > 0) {
    state.leases.set(request.callId, now + request.leaseMs);
    state.sweepAfter = Math.min(state.sweepAfter, now + request.leaseMs);
  }
  if (micros > 0) {
    const heldTokens = limits.session ? tokens : 0;
    state.holds.set(request.callId, { micros, day: state.day, month: state.month, tokens: heldTokens });
    const { held } = state;
    held.day += micros;
    held.month += micros;
    held.total += micros;
    held.sessionMicros += micros;
    held.sessionTokens += heldTokens;
  }
  state.dayMicros += micros;
  state.monthMicros += micros;
  state.totalMicros += micros;
  if (limits.session) {
    state.session ??= { startedAt: now, micros: 0, tokens: 0, llmCalls: 0, toolCalls: 0 };
    state.session.micros += micros;
    state.session.tokens += tokens;
    state.session.llmCalls += 1;
  }
  addToWindow(state, now, 1, 0);
  return { ok: true, outputTokens: output, reservedMicros: micros, reservedTokens: tokens, rate: rateStatus(state, request) };
}

/** Replaces a reservation by what the call actually used. */
export function settleLevel(state: LevelState, request: SettleRequest, now: number): void {
  const reservedAt = request.reservedAt;
  rollCalendar(state, now);
  releaseExpired(state, now);
  const sameDay = dayOf(reservedAt) === state.day;
  const sameMonth = monthOf(reservedAt) === state.month;
  // A reservation already given back (its lease ended before this settle came) is no longer in the
  // spend or the session: the call is charged there in full.
  const givenBack = request.reservedMicros > 0 && dropHold(state, request.callId) === undefined;
  const heldMicros = givenBack ? 0 : request.reservedMicros;
  const heldTokens = givenBack ? 0 : request.reservedTokens;
  const delta = request.actualMicros - heldMicros;
  state.dayMicros = Math.max(0, state.dayMicros + (sameDay ? delta : request.actualMicros));
  state.monthMicros = Math.max(0, state.monthMicros + (sameMonth ? delta : request.actualMicros));
  state.totalMicros = Math.max(0, state.totalMicros + delta);
  state.leases.delete(request.callId);
  if (request.released === true) releaseRequest(state, request, now);
  else if (request.unanswered === true && state.session !== null) state.session.llmCalls = Math.max(0, state.session.llmCalls - 1);
  if (state.tpm !== null && request.limits.tokensPerMinute !== null) {
    const refilled = refill(state.tpm, request.limits.tokensPerMinute, now);
    refilled.tokens = Math.min(request.limits.tokensPerMinute, refilled.tokens + request.reservedTokens - request.actualTokens);
    state.tpm = refilled;
  }
  if (state.session !== null) {
    state.session.micros = Math.max(0, state.session.micros + delta);
    state.session.tokens = Math.max(0, state.session.tokens + request.actualTokens - heldTokens);
    state.session.toolCalls += request.toolCalls;
  }
  pruneWindow(state, now);
  addToWindow(state, now, 0, request.actualTokens);
}

/** Undoes the request-counting part of a reservation that a later level refused. */
function releaseRequest(state: LevelState, request: SettleRequest, now: number): void {
  const rpm = request.limits.requestsPerMinute;
  if (state.rpm !== null && rpm !== null) {
    const refilled = refill(state.rpm, rpm, now);
    refilled.tokens = Math.min(rpm, refilled.tokens + 1);
    state.rpm = refilled;
  }
  const slot = state.window.find(([second]) => second === Math.floor(request.reservedAt / 1000));
  if (slot !== undefined && slot[1] > 0) slot[1] -= 1;
  if (state.session !== null) state.session.llmCalls = Math.max(0, state.session.llmCalls - 1);
}

export function usageOf(state: LevelState, now: number): Usage {
  rollCalendar(state, now);
  pruneWindow(state, now);
  let requests = 0;
  let tokens = 0;
  for (const [, r, t] of state.window) {
    requests += r;
    tokens += t;
  }
  return {
    requestsLastMinute: requests,
    tokensLastMinute: tokens,
    dailyMicros: state.dayMicros,
    monthlyMicros: state.monthMicros,
    totalMicros: state.totalMicros,
  };
}
