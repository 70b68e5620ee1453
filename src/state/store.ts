import type { KeyLimits, Subject } from "../config/schema.js";

/**
 * The limits of one level (key, user, team, org or session), compiled to integers:
 * money in micro-USD, times in ms. `null` means "not limited at this level".
 */
export interface LevelLimits {
  requestsPerMinute: number | null;
  tokensPerMinute: number | null;
  maxParallel: number | null;
  dailyMicros: number | null;
  monthlyMicros: number | null;
  totalMicros: number | null;
  /** A session level: `totalMicros` is its `max_cost`, and the session counters below apply. */
  session: boolean;
  sessionMaxTokens: number | null;
  sessionMaxMs: number | null;
  sessionMaxLlmCalls: number | null;
  sessionMaxToolCalls: number | null;
}

/** One level's share of a call: what to check and reserve in one atomic step. */
export interface ReserveRequest {
  /** Stable id of the level, e.g. `key:alice-dev`, `team:research`, `org`, `session:alice-dev:abc`. */
  level: string;
  limits: LevelLimits;
  inputTokens: number;
  /**
   * Cost of the input part of the worst case, micro-USD, not rounded (input tokens x price / 1M):
   * the worst case is rounded up once, input and output together, as the per-call cap and a call's
   * cost are, so a budget left at exactly a call's worst case admits it.
   */
  inputMicros: number;
  /** Output price, micro-USD per 1M tokens; 0 for unpriced or embedding models. */
  outputPricePer1M: number;
  /** Output-token limit wanted; the level may clamp it down to what its budgets can pay for. */
  outputTokens: number;
  minOutputTokens: number;
  /** `reject`: a budget that cannot pay the worst case refuses instead of clamping. */
  clamp: boolean;
  /** For sessions: the ttl of the session's counters, ms. */
  ttlMs: number;
  /** Unique per reservation (shared by its levels): names the call's parallel slot until settle. */
  callId: string;
  /**
   * How long the parallel slot is held if the call is never settled (its replica died mid-call), ms.
   * Only kept where the level has `maxParallel`.
   */
  leaseMs: number;
}

export type LimitKind =
  | "requests_per_minute"
  | "tokens_per_minute"
  | "max_parallel_requests"
  | "daily_cost"
  | "monthly_cost"
  | "total_cost"
  | "session_cost"
  | "session_tokens"
  | "session_seconds"
  | "session_llm_calls"
  | "session_tool_calls";

/** Rate headers' raw material for one level (only for the limits it has). */
export interface RateStatus {
  requests?: { limit: number; remaining: number; resetMs: number };
  tokens?: { limit: number; remaining: number; resetMs: number };
}

export type ReserveResult =
  | {
      ok: true;
      /** The output limit this level admitted (≤ the one asked for). */
      outputTokens: number;
      reservedMicros: number;
      reservedTokens: number;
      rate: RateStatus;
    }
  | { ok: false; limit: LimitKind; retryAfterMs: number | null; rate: RateStatus };

/** What one level gives back when the call ends: the reservation is replaced by the actuals. */
export interface SettleRequest {
  level: string;
  /** The reservation's `callId`: its parallel slot is given back. */
  callId: string;
  limits: LevelLimits;
  reservedMicros: number;
  reservedTokens: number;
  actualMicros: number;
  actualTokens: number;
  toolCalls: number;
  ttlMs: number;
  /** When the reservation was made: a call settled after midnight UTC is charged to the new day. */
  reservedAt: number;
  /**
   * A later level refused the call: the request itself is given back too (its request-per-minute
   * token, its count in the last minute and its session call), not only its money and tokens.
   */
  released?: boolean;
  /**
   * The upstream gave no answer (a 5xx, a timeout, no connection): the session's call is given back,
   * so the SDK's own retry of it is not a second call against `max_llm_calls`.
   */
  unanswered?: boolean;
}

/** The key's own usage, for policy attributes. */
export interface Usage {
  requestsLastMinute: number;
  tokensLastMinute: number;
  dailyMicros: number;
  monthlyMicros: number;
  totalMicros: number;
}

export interface RuntimeKey {
  id: string;
  key_hash: string;
  /** Earlier secrets' hashes, each accepted until its rotation grace ends. */
  previous: { hash: string; expires_at: string }[];
  /** Counts the key's writes: a write lands only on the revision it was made from (0: a new key). */
  revision: number;
  subject: Subject;
  limits: KeyLimits;
  expires_at: string | null;
  disabled: boolean;
  revoked: boolean;
  created_at: string;
}

export type StopTarget = { key_id: string } | { user: string } | { team: string };

export interface Stop {
  kind: "key_id" | "user" | "team";
  value: string;
  reason: string;
  by: string;
  at: string;
}

export type ApprovalStatus = "pending" | "approved" | "denied" | "used";

export interface Approval {
  id: string;
  status: ApprovalStatus;
  key_id: string;
  subject: Subject;
  body_hash: string;
  action: string;
  model: string | null;
  rule: string | null;
  reason: string;
  constraints: Record<string, unknown>;
  /** The tool call that needed approval (the first, where several did). */
  tool_call: { name: string; arguments: string } | null;
  /** Every tool call of the held answer, each with its own decision: approving releases them all. */
  tool_calls: { name: string; arguments: string; effect: string; rule: string | null; variant?: true }[];
  created_at: string;
  expires_at: string;
  decided_by: string | null;
  decided_role: string | null;
  decided_at: string | null;
  comment: string | null;
  /** Set when the model's answer was held: the retry receives it instead of a new upstream call. */
  held: { kind: "json" | "sse"; status: number; content_type: string; body: string } | null;
  /** What the approver needs to judge the call without its prompt (absent from approvals stored before it existed). */
  context?: ApprovalContext;
}

export interface ApprovalContext {
  /** The audit id of the call that asked. */
  request_id: string;
  /** The call's action (its endpoint): the approval is redeemed there only (absent from approvals stored before it existed). */
  endpoint?: string;
  /** The tools the request declares, and the one (declared, or called in the answer) whose rule asked; null: the call's own rule. */
  tools: string[];
  tool: string | null;
  input_tokens: number | null;
  /** USD, the call's worst case as the rules saw it. */
  estimated_cost: number | null;
  /** What the PII scan of the prompt found. */
  pii_types: string[];
}

/** A runtime key as an earlier version stored it: one previous secret, no revision. */
export type StoredKey = Omit<RuntimeKey, "previous" | "revision"> &
  Partial<Pick<RuntimeKey, "previous" | "revision">> & { previous_hash?: string | null; previous_expires_at?: string | null };

/** A stored key in the current shape. */
export function upgradeKey(stored: StoredKey): RuntimeKey {
  const { previous_hash, previous_expires_at, ...key } = stored;
  const previous = key.previous ?? (previous_hash && previous_expires_at ? [{ hash: previous_hash, expires_at: previous_expires_at }] : []);
  return { ...key, previous, revision: key.revision ?? 0 };
}

/** Approvals stay readable a week past their expiry (for the admin list), then every store forgets them. */
export const APPROVAL_KEPT_AFTER_EXPIRY_MS = 7 * 86_400_000;

/** An approval stored before `tool_calls` existed gets them from its one `tool_call`. */
export function withToolCalls(approval: Approval): Approval {
  if (Array.isArray(approval.tool_calls)) return approval;
  const call = approval.tool_call;
  approval.tool_calls = call === null ? [] : [{ ...call, effect: "REQUIRE_APPROVAL", rule: approval.rule }];
  return approval;
}

export type ApprovalTransition =
  | { ok: true; approval: Approval }
  | { ok: false; reason: "not_found" | "not_pending" | "not_approved" | "not_used" | "expired"; approval: Approval | null };

/** A change other replicas must see at once: they reload keys and stops. */
export type StateChange = "keys" | "stops";
export type ChangeListener = (change: StateChange) => unknown;

export interface LeaseRenewal {
  level: string;
  callId: string;
  /** What the call, still running, reserved at the level. */
  held?: { micros: number; tokens: number };
}

/**
 * The one state interface: limits and budgets, runtime keys, stops and approvals.
 * Every read-modify-write is atomic per level (a Lua script on Redis, synchronous code in memory).
 */
export interface StateStore {
  readonly kind: "memory" | "redis";
  reserve(request: ReserveRequest, now: number): Promise<ReserveResult>;
  settle(request: SettleRequest, now: number): Promise<void>;
  usage(level: string, now: number): Promise<Usage>;
  /**
   * Extends the named calls' leases to `now + leaseMs`; a lease already gone (its call settled)
   * stays gone, unless the renewal says what the running call holds (`held`): then a lease the
   * store lost (Redis restarted without its data) comes back with that reservation.
   */
  renewLeases(leases: readonly LeaseRenewal[], now: number, leaseMs: number): Promise<void>;
  /**
   * Charges a session level with an answer's `count` tool calls if that keeps it within `max`, as
   * one atomic step; `used` is the count before this answer either way. A negative `count` gives
   * calls back (a withheld answer's), never below zero.
   */
  takeToolCalls(level: string, count: number, max: number): Promise<{ ok: boolean; used: number }>;

  listKeys(): Promise<RuntimeKey[]>;
  /** Stores `key` where the stored one's revision is `key.revision - 1` (none stored for 0); false when another write came first. */
  putKey(key: RuntimeKey): Promise<boolean>;

  listStops(): Promise<Stop[]>;
  putStop(stop: Stop): Promise<void>;
  deleteStop(kind: Stop["kind"], value: string): Promise<boolean>;

  createApproval(approval: Approval): Promise<void>;
  getApproval(id: string): Promise<Approval | null>;
  listApprovals(status: ApprovalStatus | null): Promise<Approval[]>;
  /** pending -> approved | denied; refused when not pending or expired. */
  decideApproval(
    id: string,
    decision: { status: "approved" | "denied"; by: string; role: string; comment: string | null; at: string },
    now: number,
  ): Promise<ApprovalTransition>;
  /** approved -> used, exactly once. */
  consumeApproval(id: string, now: number): Promise<ApprovalTransition>;
  /** used -> approved, while not expired: undoes a consume whose call was not served. */
  restoreApproval(id: string, now: number): Promise<ApprovalTransition>;

  /**
   * Subscribe to changes made by any replica (including this one). A listener returns once it has
   * applied the change (for the Redis store, a write waits on every replica's listeners).
   */
  onChange(listener: ChangeListener): void;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
