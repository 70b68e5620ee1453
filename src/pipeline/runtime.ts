import { canonicalPath, isClosedToPassthrough, isUnder } from "../config/governed-paths.js";
import { hostname } from "node:os";
import { hashKey, KeyIndex } from "../auth/keys.js";
import type { ConfigIssue } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { type CompiledPolicy, compilePolicy } from "../policy/compile.js";
import { listingRules } from "../policy/listing.js";
import { compilePriceTable, type PriceTable } from "../pricing/index.js";
import type { RuntimeKey, Stop } from "../state/store.js";
import { createUpstreamTarget, type UpstreamTarget } from "../upstream/forward.js";
import type { Principal } from "../auth/keys.js";
import { type LimitPlan, planLimits, type SpendTracking } from "../limits/plan.js";
import { TEAM_SPEND, USER_SPEND } from "./call-facts.js";

/** The config compiled once per load or reload: nothing on the request path parses or builds again. */
export interface Runtime {
  config: Config;
  policy: CompiledPolicy;
  /**
   * What `GET /v1/models` judges a model by, for chat and for embedding models: the rules as a
   * listing can judge them (`listingRules`), knowing the subject and none of what a call carries but
   * what every call of that kind has (an embeddings call: no stream, no tools).
   */
  listingPolicy: Readonly<Record<"chat" | "embedding", CompiledPolicy>>;
  prices: PriceTable;
  upstreams: Map<string, UpstreamTarget>;
  replica: string;
  /** Relays a listed path and everything under it (`/v1/files` covers `/v1/files/file-abc`). */
  passthrough: (path: string) => boolean;
  /** Approver tokens by hash, plus the superuser. */
  adminPrincipals: Map<string, { name: string; role: string }>;
  /**
   * The limits a call of this principal is charged to; the user's and team's levels are charged on
   * every call where rules read their spend.
   */
  limitPlan: (principal: Principal, sessionId: string | null) => LimitPlan;
}

export function buildRuntime(config: Config, port: number, previous: Runtime | null): Runtime {
  const policy = compilePolicy(config.policies);
  const upstreams = new Map<string, UpstreamTarget>();
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const old = previous?.upstreams.get(name);
    const same = old !== undefined && JSON.stringify(previous?.config.upstreams[name]) === JSON.stringify(upstream);
    upstreams.set(name, same ? old : createUpstreamTarget(name, upstream));
  }
  const adminPrincipals = new Map<string, { name: string; role: string }>();
  for (const approver of config.admin.approvers) adminPrincipals.set(approver.token_hash, { name: approver.name, role: approver.role });
  const listedBy = (known: ReadonlySet<string>): CompiledPolicy => compilePolicy({ ...config.policies, rules: listingRules(policy.rules, known) });
  // An embeddings call is never a stream and declares no tools: its listing knows those facts too.
  const listingPolicy = { chat: listedBy(LISTING_FACTS), embedding: listedBy(new Set([...LISTING_FACTS, "stream", "tools"])) };
  const spendTracking: SpendTracking = {
    user: USER_SPEND.some((attribute) => policy.attributes.has(attribute)),
    team: TEAM_SPEND.some((attribute) => policy.attributes.has(attribute)),
  };
  // A key's plan is the same on every call without a session, and lives as long as its principal
  // (key refreshes build new ones): worked out once, not per call.
  const plans = new WeakMap<Principal, LimitPlan>();
  const limitPlan = (principal: Principal, sessionId: string | null): LimitPlan => {
    if (sessionId !== null) return planLimits(config, principal, sessionId, spendTracking);
    let plan = plans.get(principal);
    if (plan === undefined) {
      plan = planLimits(config, principal, null, spendTracking);
      plans.set(principal, plan);
    }
    return plan;
  };
  return {
    config,
    policy,
    listingPolicy,
    prices: compilePriceTable(config.models),
    upstreams,
    // Named once, at start: the audit chain and its files belong to the name the replica started with.
    replica: previous?.replica ?? config.server.replica_id ?? `${hostname()}-${port}`,
    passthrough: passthroughMatcher(config.passthrough.paths),
    adminPrincipals,
    limitPlan,
  };
}

/** The facts a model listing has: who asks, which model, when, in which session, from where and with what client. */
const LISTING_FACTS: ReadonlySet<string> = new Set(["key_id", "user", "user_role", "team", "purpose", "org", "action", "model", "hour", "weekday", "session_id", "ip", "user_agent"]);

/** Settings read once at start (listener, store, audit sinks and writer): a reload cannot apply them. */
const RESTART_ONLY: ReadonlyArray<readonly [string, (config: Config) => unknown]> = [
  ["server.host", (c) => c.server.host],
  ["server.port", (c) => c.server.port],
  ["server.replica_id", (c) => c.server.replica_id],
  ["server.header_timeout_seconds", (c) => c.server.header_timeout_seconds],
  ["server.body_timeout_seconds", (c) => c.server.body_timeout_seconds],
  ["store", (c) => c.store],
  ["audit.sinks", (c) => c.audit.sinks],
  ["audit.fsync", (c) => c.audit.fsync],
  ["audit.fsync_interval_ms", (c) => c.audit.fsync_interval_ms],
  ["audit.batch_linger_ms", (c) => c.audit.batch_linger_ms],
  ["audit.max_queue", (c) => c.audit.max_queue],
  ["audit.on_full", (c) => c.audit.on_full],
];

/** The restart-only settings a reloaded config changes, by path, so the reload can say they wait for a restart. */
export function restartOnlyChanges(previous: Config, next: Config): string[] {
  return RESTART_ONLY.filter(([, read]) => JSON.stringify(read(previous)) !== JSON.stringify(read(next))).map(([path]) => path);
}

/**
 * What a listed file path never needs, and lenient parsers read as something else: control
 * characters, backslashes, non-ASCII (look-alike dots and slashes, invisible characters, which
 * NFKC-normalising upstreams fold) and a `%` left after decoding (double or overlong encodings).
 */
const UNSAFE_IN_PATH = /[\x00-\x1f\x7f\\%]|[^\x00-\x7f]/;

function passthroughMatcher(paths: readonly string[]): (path: string) => boolean {
  const exact = new Set(paths.map((path) => (path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path)));
  const prefixes = [...exact].map((path) => `${path}/`);
  const canonicalPrefixes = [...exact].map((path) => canonicalPath(path));
  // A control character or a backslash is no part of a file's path, and URL parsers drop or turn them
  // into separators: `/v1/files/.%0a./chat/completions` would reach the upstream as `/v1/chat/completions`.
  return (path) => {
    if (UNSAFE_IN_PATH.test(path) || !(exact.has(path) || prefixes.some((prefix) => path.startsWith(prefix)))) return false;
    // Read as a lenient upstream reads it, the path must still lie under a listed one (`/v1/files/..;/batches`
    // is `/v1/batches`), and not be governed (`/v1/Chat/completions` under a `/v1/chat` listing).
    const canonical = canonicalPath(path);
    return canonicalPrefixes.some((prefix) => isUnder(canonical, prefix)) && !isClosedToPassthrough(path, canonical);
  };
}

/** Keys and stops as this replica last read them from the store, refreshed on every change. */
export class SharedState {
  keys: KeyIndex;
  private runtimeKeys: RuntimeKey[] = [];
  private stops = new Map<string, Stop>();
  /** False until the stops were first read: a replica started while the store was down knows of none. */
  stopsKnown = false;
  /** False until the runtime keys were first read: until then a secret no config key has may be one. */
  keysKnown = false;

  constructor(config: Config, now: number) {
    this.keys = new KeyIndex(config.keys, [], now);
  }

  /**
   * The config keys that share an id or a secret with a live runtime key (as last read), by config
   * path, but those already in `running` (the config in force): a config key's id wins, so the runtime
   * key's secret would stop working; a runtime key's secret wins, so the config key would never be used.
   */
  shadowed(config: Config, running?: Config): ConfigIssue[] {
    const live = this.runtimeKeys.filter((key) => !key.revoked);
    const ids = new Set(live.map((key) => key.id));
    const secrets = new Map(live.flatMap((key) => [key.key_hash, ...key.previous.map((previous) => previous.hash)].map((hash) => [hash, key.id] as const)));
    const had = new Set(running?.keys.flatMap((key) => [`id:${key.id}`, `hash:${key.key_hash}`]));
    const credentials = this.credentialsShadowed(config, running, secrets);
    return credentials.concat(config.keys.flatMap((key, index) => {
      const issues: ConfigIssue[] = [];
      if (ids.has(key.id) && !had.has(`id:${key.id}`)) {
        issues.push({ path: `keys[${index}].id`, message: `\`${key.id}\` is also a runtime key's id (made through the admin API); a config key would replace it and its secret stop working` });
      }
      const owner = secrets.get(key.key_hash);
      if (owner !== undefined && owner !== key.id && !had.has(`hash:${key.key_hash}`)) {
        issues.push({ path: `keys[${index}].key_hash`, message: `the same secret as runtime key \`${owner}\`, which it opens instead: this key would never be used` });
      }
      return issues;
    }));
  }

  /** The admin token and approver tokens that are a live runtime key's secret (a virtual key is never an admin credential). */
  private credentialsShadowed(config: Config, running: Config | undefined, secrets: ReadonlyMap<string, string>): ConfigIssue[] {
    const had = new Set([running?.admin.token ? hashKey(running.admin.token) : "", ...(running?.admin.approvers.map((approver) => approver.token_hash) ?? [])]);
    const clashes = (hash: string): string | undefined => (had.has(hash) ? undefined : secrets.get(hash));
    const issues: ConfigIssue[] = [];
    const adminOwner = config.admin.token === "" ? undefined : clashes(hashKey(config.admin.token));
    if (adminOwner !== undefined) issues.push({ path: "admin.token", message: `is also the secret of runtime key \`${adminOwner}\`` });
    config.admin.approvers.forEach((approver, index) => {
      const owner = clashes(approver.token_hash);
      if (owner !== undefined) issues.push({ path: `admin.approvers[${index}].token_hash`, message: `the same token as runtime key \`${owner}\`` });
    });
    return issues;
  }

  setKeys(config: Config, runtimeKeys: RuntimeKey[], now: number): void {
    this.runtimeKeys = runtimeKeys;
    this.keys = new KeyIndex(config.keys, runtimeKeys, now);
    this.keysKnown = true;
  }

  /** A reloaded config's keys, with the runtime keys as last read (no gap until the next refresh). */
  setConfig(config: Config, now: number): void {
    this.keys = new KeyIndex(config.keys, this.runtimeKeys, now);
  }

  setStops(stops: Stop[]): void {
    this.stops = new Map(stops.map((stop) => [`${stop.kind}:${stop.value}`, stop]));
    this.stopsKnown = true;
  }

  listStops(): Stop[] {
    return [...this.stops.values()];
  }

  /** The stop that halts this principal, if any (key, then user, then team). */
  stopFor(keyId: string, user: string, team: string | null): Stop | null {
    if (this.stops.size === 0) return null;
    return (
      this.stops.get(`key_id:${keyId}`) ??
      this.stops.get(`user:${user}`) ??
      (team === null ? undefined : this.stops.get(`team:${team}`)) ??
      null
    );
  }
}
