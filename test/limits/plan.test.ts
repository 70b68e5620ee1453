import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { planLimits } from "../../src/limits/plan.js";
import type { Principal } from "../../src/auth/keys.js";

const config = parseConfig(
  `
upstreams: { openai: { base_url: "http://127.0.0.1:9/v1" } }
models: { m: { upstream: openai } }
limits: { requests_per_minute: 6000, max_cost_per_call: 0.5 }
teams: { research: { limits: { daily_cost: 200, cost_cap_mode: reject } } }
users: { alice: { limits: { monthly_cost: 50, max_cost_per_call: 0.2, min_output_tokens: 512 } } }
sessions: { limits: { max_cost: 5, max_llm_calls: 10 } }
`,
  "t",
  {},
);

const principal = (user: string, team: string | null, limits: Principal["limits"] = {}): Principal => ({
  keyId: "k1",
  subject: { user, role: "developer", team, purpose: null },
  limits,
  source: "config",
});

describe("planLimits", () => {
  it("names each key's session level apart: no key id and session id can name another key's session", () => {
    const sessionOf = (keyId: string, sessionId: string) => planLimits(config, { ...principal("alice", null), keyId }, sessionId).levels.at(-1)!.level;
    expect(sessionOf("ci", "bot:s1")).not.toBe(sessionOf("ci:bot", "s1"));
    expect(sessionOf("a%3Ab", "s")).not.toBe(sessionOf("a:b", "s"));
    // An id without `:` or `%` names its sessions as before.
    expect(sessionOf("alice-dev", "s1")).toBe("session:alice-dev:s1");
  });

  it("orders levels key, user, team, org, session, with the lowest per-call cap and reject winning", () => {
    const plan = planLimits(config, principal("alice", "research", { max_cost_per_call: 0.3, session: { max_llm_calls: 3 } }), "s1");
    expect(plan.levels.map((l) => l.level)).toEqual(["key:k1", "user:alice", "team:research", "org", "session:k1:s1"]);
    expect(plan.perCallCapMicros).toBe(200_000);
    expect(plan.clamp).toBe(false);
    expect(plan.minOutputTokens).toBe(512);
    expect(plan.needsPrices).toBe(true);
    const session = plan.levels.at(-1)!.limits;
    expect(session).toMatchObject({ session: true, totalMicros: 5_000_000, sessionMaxLlmCalls: 3 });
  });

  it("keeps the key level even without limits and skips empty levels", () => {
    const bare = parseConfig(`upstreams: { o: { base_url: "http://127.0.0.1:9/v1" } }\nmodels: { m: { upstream: o } }`, "t", {});
    const plan = planLimits(bare, principal("bob", null), null);
    expect(plan.levels.map((l) => l.level)).toEqual(["key:k1"]);
    expect(plan).toMatchObject({ perCallCapMicros: null, clamp: true, minOutputTokens: 256, needsPrices: false, needsTokens: false });
  });

  it("does not mistake Object.prototype members for configured users or teams", () => {
    const plan = planLimits(config, principal("constructor", "__proto__"), null);
    expect(plan.levels.map((l) => l.level)).toEqual(["key:k1", "org"]);
  });
});
