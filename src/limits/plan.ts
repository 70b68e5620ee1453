import type { Config, KeyLimits, Limits, SessionLimits } from "../config/schema.js";
import type { Principal } from "../auth/keys.js";
import type { LevelLimits, LimitKind } from "../state/store.js";

const DEFAULT_MIN_OUTPUT_TOKENS = 256;

export interface PlannedLevel {
  level: string;
  limits: LevelLimits;
}

/** Everything the limits stage needs for one principal, derived from the config once per call. */
export interface LimitPlan {
  levels: PlannedLevel[];
  /** Lowest `max_cost_per_call` of every level, micro-USD. */
  perCallCapMicros: number | null;
  /** `reject` in any limits block wins over `clamp`. */
  clamp: boolean;
  minOutputTokens: number;
  /** Some level limits money: the model must be priced. */
  needsPrices: boolean;
  /** Some level limits tokens or money: the input must be counted. */
  needsTokens: boolean;
  /** Some level has a limit the store checks; without one, levels are kept only to count spend. */
  limited: boolean;
  sessionTtlMs: number;
}

const toMicros = (usd: number | null | undefined): number | null =>
  usd === null || usd === undefined ? null : Math.round(usd * 1_000_000);

/** A level with no limit set: what each compiled level starts from. */
export const NO_LIMITS: Readonly<LevelLimits> = {
  requestsPerMinute: null,
  tokensPerMinute: null,
  maxParallel: null,
  dailyMicros: null,
  monthlyMicros: null,
  totalMicros: null,
  session: false,
  sessionMaxTokens: null,
  sessionMaxMs: null,
  sessionMaxLlmCalls: null,
  sessionMaxToolCalls: null,
};

function compileLimits(limits: Limits | KeyLimits): LevelLimits {
  return {
    ...NO_LIMITS,
    requestsPerMinute: limits.requests_per_minute ?? null,
    tokensPerMinute: limits.tokens_per_minute ?? null,
    maxParallel: limits.max_parallel_requests ?? null,
    dailyMicros: toMicros(limits.daily_cost),
    monthlyMicros: toMicros(limits.monthly_cost),
    totalMicros: toMicros(limits.total_cost),
  };
}

function compileSession(defaults: SessionLimits, own: SessionLimits | undefined): LevelLimits {
  const merged = { ...defaults, ...Object.fromEntries(Object.entries(own ?? {}).filter(([, v]) => v !== undefined)) };
  return {
    ...NO_LIMITS,
    totalMicros: toMicros(merged.max_cost),
    session: true,
    sessionMaxTokens: merged.max_tokens ?? null,
    sessionMaxMs: merged.max_seconds === null || merged.max_seconds === undefined ? null : merged.max_seconds * 1000,
    sessionMaxLlmCalls: merged.max_llm_calls ?? null,
    sessionMaxToolCalls: merged.max_tool_calls ?? null,
  };
}

function isEmpty(limits: LevelLimits): boolean {
  return (
    limits.requestsPerMinute === null &&
    limits.tokensPerMinute === null &&
    limits.maxParallel === null &&
    limits.dailyMicros === null &&
    limits.monthlyMicros === null &&
    limits.totalMicros === null &&
    limits.sessionMaxTokens === null &&
    limits.sessionMaxMs === null &&
    limits.sessionMaxLlmCalls === null &&
    limits.sessionMaxToolCalls === null
  );
}

/** The key's own level id: its spend and rate counters, also read for policy usage attributes. */
export const keyLevel = (keyId: string): string => `key:${keyId}`;
export const userLevel = (user: string): string => `user:${user}`;
export const teamLevel = (team: string): string => `team:${team}`;
/**
 * A session's level, per key. The key id's own `:` (and `%`) are escaped, so no other key's session
 * can name the same level (key `ci` session `bot:s1` against key `ci:bot` session `s1`); an id
 * without them reads as it always did.
 */
export const sessionLevel = (keyId: string, sessionId: string): string => `session:${keyId.replaceAll("%", "%25").replaceAll(":", "%3A")}:${sessionId}`;

/** Levels kept though they have no limits, because rules read their spend (`user_daily_spend`...). */
export interface SpendTracking {
  user: boolean;
  team: boolean;
}

const NOT_TRACKED: SpendTracking = { user: false, team: false };

/**
 * The levels a call is charged to, in reservation order: key, user, team, org, session. Levels with
 * no limits are skipped, except the key's own, whose counters feed the usage attributes, and the
 * user's and team's where `tracked` says rules read their spend.
 */
export function planLimits(config: Config, principal: Principal, sessionId: string | null, tracked: SpendTracking = NOT_TRACKED): LimitPlan {
  const { subject } = principal;
  const blocks: Array<[string, Limits | KeyLimits]> = [[keyLevel(principal.keyId), principal.limits]];
  const kept = new Set([keyLevel(principal.keyId)]);
  // Own properties only: a user or team named `constructor` must not find Object's prototype.
  const user = Object.hasOwn(config.users, subject.user) ? config.users[subject.user] : undefined;
  if (user !== undefined || tracked.user) blocks.push([userLevel(subject.user), user?.limits ?? {}]);
  if (tracked.user) kept.add(userLevel(subject.user));
  const team = subject.team === null || !Object.hasOwn(config.teams, subject.team) ? undefined : config.teams[subject.team];
  if (subject.team !== null && (team !== undefined || tracked.team)) blocks.push([teamLevel(subject.team), team?.limits ?? {}]);
  if (subject.team !== null && tracked.team) kept.add(teamLevel(subject.team));
  blocks.push(["org", config.limits]);

  const levels: PlannedLevel[] = [];
  let cap: number | null = null;
  let clamp = true;
  let minOutput: number | null = null;
  for (const [level, limits] of blocks) {
    const compiled = compileLimits(limits);
    if (kept.has(level) || !isEmpty(compiled)) levels.push({ level, limits: compiled });
    const levelCap = toMicros(limits.max_cost_per_call);
    if (levelCap !== null) cap = cap === null ? levelCap : Math.min(cap, levelCap);
    if (limits.cost_cap_mode === "reject") clamp = false;
    if (limits.min_output_tokens !== null && limits.min_output_tokens !== undefined) {
      minOutput = minOutput === null ? limits.min_output_tokens : Math.max(minOutput, limits.min_output_tokens);
    }
  }
  if (sessionId !== null) {
    levels.push({
      level: sessionLevel(principal.keyId, sessionId),
      limits: compileSession(config.sessions.limits, principal.limits.session),
    });
  }
  const needsPrices = cap !== null || levels.some(({ limits: l }) => l.dailyMicros !== null || l.monthlyMicros !== null || l.totalMicros !== null);
  return {
    levels,
    perCallCapMicros: cap,
    clamp,
    minOutputTokens: minOutput ?? DEFAULT_MIN_OUTPUT_TOKENS,
    needsPrices,
    needsTokens: needsPrices || levels.some(({ limits: l }) => l.tokensPerMinute !== null || l.sessionMaxTokens !== null),
    limited: levels.some(({ limits: l }) => !isEmpty(l)),
    sessionTtlMs: config.sessions.ttl_seconds * 1000,
  };
}

/**
 * The plan of an unpriced request (a passthrough path): only the request limits (per minute and
 * in parallel) apply; tokens and money are never charged, so a spent budget does not refuse it.
 */
export function requestLimitsOnly(plan: LimitPlan): LimitPlan {
  return {
    ...plan,
    levels: plan.levels.map(({ level, limits }) => ({
      level,
      limits: { ...NO_LIMITS, requestsPerMinute: limits.requestsPerMinute, maxParallel: limits.maxParallel },
    })),
    perCallCapMicros: null,
    needsPrices: false,
    needsTokens: false,
  };
}

/** The limit kinds answered with `budget_exceeded` (money and sessions) rather than `rate_limit_exceeded`. */
export function isBudgetLimit(kind: LimitKind): boolean {
  return kind !== "requests_per_minute" && kind !== "tokens_per_minute" && kind !== "max_parallel_requests";
}
