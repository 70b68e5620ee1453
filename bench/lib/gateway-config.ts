import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchRules, type RawRule, TOKEN_RULE } from "./rules.js";

export const BENCH_KEY = "sk-bench-research-dev";

export interface GatewayVariant {
  /** Short label in the table. */
  name: string;
  policies: boolean;
  limits: boolean;
  /** A Redis URL for the state store; memory when absent. */
  redisUrl?: string;
  fsync: "always" | "interval" | "never";
  /** Adds a rule on `input_tokens` (the token-counting variant). */
  tokenRule?: boolean;
}

/** Limits far above what a run can use, so nothing is refused but every level is reserved and settled. */
const KEY_LIMITS = {
  requests_per_minute: 100_000_000,
  tokens_per_minute: 2_000_000_000,
  daily_cost: 1_000_000,
  max_cost_per_call: 5,
};

/**
 * Writes the gateway config for a variant into a fresh temp dir (the audit file sink goes there too)
 * and returns its path. JSON is valid YAML, so no YAML writer is needed.
 */
export function writeGatewayConfig(variant: GatewayVariant, port: number, upstreamUrl: string): { path: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "spark-bench-"));
  const rules: RawRule[] = variant.policies ? benchRules() : [];
  if (variant.tokenRule === true) rules.push(TOKEN_RULE);
  const config = {
    org: "acme",
    server: { host: "127.0.0.1", port, drain_seconds: 1, header_timeout_seconds: 30 },
    store: variant.redisUrl === undefined ? { memory: { snapshot: null } } : { redis: { url: variant.redisUrl, prefix: "bench:" } },
    upstreams: { openai: { base_url: upstreamUrl, api_key: "sk-upstream-bench", timeout_seconds: 600 } },
    models: {
      "gpt-4o-mini": { upstream: "openai", input_per_1m: 0.15, output_per_1m: 0.6, cached_input_per_1m: 0.075 },
      "gpt-4o": { upstream: "openai", input_per_1m: 2.5, output_per_1m: 10 },
      "text-embedding-3-small": { upstream: "openai", kind: "embedding", input_per_1m: 0.02 },
    },
    keys: [
      {
        id: "research-dev",
        key_hash: `sha256:${createHash("sha256").update(BENCH_KEY).digest("hex")}`,
        subject: { user: "dana", role: "developer", team: "research" },
        limits: variant.limits ? KEY_LIMITS : {},
      },
    ],
    policies: { default_effect: "ALLOW", rules },
    audit: { sinks: [{ file: { dir: join(dir, "audit"), retention_days: null } }], bodies: "none", fsync: variant.fsync },
  };
  const path = join(dir, "gateway.yaml");
  writeFileSync(path, JSON.stringify(config, null, 1), "utf8");
  return { path, dir };
}
