import { describe, expect, it } from "vitest";
import type { Principal } from "../../src/auth/keys.js";
import { parseConfig } from "../../src/config/load.js";
import { planLimits } from "../../src/limits/plan.js";
import { buildRuntime } from "../../src/pipeline/runtime.js";

const config = parseConfig(
  `
upstreams: { openai: { base_url: "http://127.0.0.1:9/v1" } }
models: { m: { upstream: openai } }
limits: { requests_per_minute: 6000 }
policies:
  rules:
    - { name: user_cap, effect: DENY, conditions: { user_daily_spend: { gt: 10 } } }
`,
  "t",
  {},
);

const principal = (): Principal => ({
  keyId: "k1",
  subject: { user: "ana", role: "developer", team: "research", purpose: null },
  limits: { daily_cost: 5 },
  source: "config",
});

describe("Runtime.limitPlan", () => {
  const runtime = buildRuntime(config, 0, null);

  it("plans a key's sessionless calls once, as planLimits does with the spend the rules read", () => {
    const ana = principal();
    const plan = runtime.limitPlan(ana, null);
    expect(plan).toEqual(planLimits(config, ana, null, { user: true, team: false }));
    expect(plan.levels.map((l) => l.level)).toEqual(["key:k1", "user:ana", "org"]);
    expect(runtime.limitPlan(ana, null)).toBe(plan);
  });

  it("plans again for a new principal (a key refresh) and for every session", () => {
    const ana = principal();
    const plan = runtime.limitPlan(ana, null);
    expect(runtime.limitPlan(principal(), null)).not.toBe(plan);
    const session = runtime.limitPlan(ana, "s1");
    expect(session.levels.map((l) => l.level)).toEqual(["key:k1", "user:ana", "org", "session:k1:s1"]);
    expect(runtime.limitPlan(ana, "s1")).not.toBe(session);
    expect(runtime.limitPlan(ana, null)).toBe(plan);
  });
});
