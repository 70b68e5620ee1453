import { type LimitPlan, NO_LIMITS } from "../../src/limits/plan.js";
import type { Approval, LevelLimits, ReserveRequest, ReserveResult, RuntimeKey, SettleRequest } from "../../src/state/store.js";

/** Builders for the state tests: everything unlimited and free unless a test says otherwise. */

export const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);

export function limits(set: Partial<LevelLimits> = {}): LevelLimits {
  return { ...NO_LIMITS, ...set };
}

/** A plan of the given levels, clamping down to one output token, with no per-call cap or session. */
export function limitPlan(levels: LimitPlan["levels"]): LimitPlan {
  return {
    levels,
    perCallCapMicros: null,
    clamp: true,
    minOutputTokens: 1,
    needsPrices: false,
    needsTokens: false,
    limited: levels.length > 0,
    sessionTtlMs: 0,
  };
}

/** The lease of a parallel slot the fixtures ask for unless a test says otherwise. */
export const LEASE_MS = 15 * 60_000;

let calls = 0;

/** A new reservation id: each call to reserveRequest() is one call (reusing its result reuses the id). */
export const callId = (): string => `call-${++calls}`;

export function reserveRequest(level: string, levelLimits: LevelLimits, set: Partial<ReserveRequest> = {}): ReserveRequest {
  return {
    level,
    limits: levelLimits,
    inputTokens: 100,
    inputMicros: 0,
    outputPricePer1M: 0,
    outputTokens: 100,
    minOutputTokens: 1,
    clamp: true,
    ttlMs: 0,
    callId: callId(),
    leaseMs: LEASE_MS,
    ...set,
  };
}

/** The settle of a granted reservation; the actuals default to the reservation. */
export function settleRequest(
  request: ReserveRequest,
  result: ReserveResult,
  reservedAt: number,
  actual: Partial<Pick<SettleRequest, "actualMicros" | "actualTokens" | "toolCalls">> = {},
): SettleRequest {
  if (!result.ok) throw new Error(`expected a granted reservation, got ${result.limit}`);
  return {
    level: request.level,
    callId: request.callId,
    limits: request.limits,
    reservedMicros: result.reservedMicros,
    reservedTokens: result.reservedTokens,
    actualMicros: actual.actualMicros ?? result.reservedMicros,
    actualTokens: actual.actualTokens ?? result.reservedTokens,
    toolCalls: actual.toolCalls ?? 0,
    ttlMs: request.ttlMs,
    reservedAt,
  };
}

export function approval(id: string, createdAt: number, set: Partial<Approval> = {}): Approval {
  return {
    id,
    status: "pending",
    key_id: "alice-dev",
    subject: { user: "alice", role: "developer", team: "research", purpose: null },
    body_hash: "sha256:abc",
    action: "REQUIRE_APPROVAL",
    model: "gpt-4o",
    rule: "big_spend",
    reason: "needs a human",
    constraints: { tools: [], max_cost: 0.5 },
    tool_call: null,
    tool_calls: [],
    created_at: new Date(createdAt).toISOString(),
    expires_at: new Date(createdAt + 3_600_000).toISOString(),
    decided_by: null,
    decided_role: null,
    decided_at: null,
    comment: null,
    held: null,
    ...set,
  };
}

export function runtimeKey(id: string): RuntimeKey {
  return {
    id,
    key_hash: `sha256:${id}`,
    previous: [],
    revision: 0,
    subject: { user: "alice", role: "developer", team: "research", purpose: null },
    limits: { requests_per_minute: 60 },
    expires_at: null,
    disabled: false,
    revoked: false,
    created_at: new Date(T0).toISOString(),
  };
}
