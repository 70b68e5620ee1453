import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { configWarnings } from "../../src/config/warnings.js";

const config = (rules: string) =>
  parseConfig(
    `admin: { token: t, approvers: [{ name: dana, role: security, token_hash: "sha256:${"1".repeat(64)}" }] }
upstreams: { u: { base_url: "http://127.0.0.1:1/v1" } }
models:
  gpt-4o-mini: { upstream: u, input_per_1m: 0.15, output_per_1m: 0.6 }
  local-llm: { upstream: u }
policies:
  rules:
${rules}
`,
    "test",
    {},
  );

const messages = (rules: string) => configWarnings(config(rules)).map((issue) => `${issue.path}: ${issue.message}`);

describe("configWarnings", () => {
  it("names an approver called `admin`, whom records and decisions cannot tell from the admin token", () => {
    const named = parseConfig(
      `admin: { token: t, approvers: [{ name: admin, role: admin, token_hash: "sha256:${"1".repeat(64)}" }] }
upstreams: { u: { base_url: "http://127.0.0.1:1/v1" } }
models: { m: { upstream: u, input_per_1m: 1, output_per_1m: 1 } }
`,
      "test",
      {},
    );
    expect(configWarnings(named).map((issue) => `${issue.path}: ${issue.message}`)).toEqual([
      "admin.approvers[0].name: `admin` is the admin token's name too: records and decisions by either read the same",
    ]);
  });

  it("names approvers and approval rules left without an admin API by an empty admin.token", () => {
    const off = (admin: string, effect: string) =>
      configWarnings(
        parseConfig(
          `admin: ${admin}
upstreams: { u: { base_url: "http://127.0.0.1:1/v1" } }
models: { m: { upstream: u, input_per_1m: 1, output_per_1m: 1 } }
policies: { rules: [{ name: allow_all, effect: ALLOW, conditions: {} }, { name: gate, effect: ${effect}, conditions: {} }, { name: gate_too, effect: ${effect}, conditions: {} }] }
`,
          "test",
          {},
        ),
      ).map((issue) => `${issue.path} (${issue.rule ?? "-"}): ${issue.message}`);
    const dana = `approvers: [{ name: dana, role: security, token_hash: "sha256:${"1".repeat(64)}" }]`;
    expect(off(`{ token: "", ${dana} }`, "REQUIRE_APPROVAL")).toEqual([
      "admin.token (-): empty: the admin API is off, and the approvers cannot use it either",
      "policies.rules[1] (gate): REQUIRE_APPROVAL with an empty admin.token: the admin API is off, so no approval can be decided and each call it gates is refused",
      "policies.rules[2] (gate_too): REQUIRE_APPROVAL with an empty admin.token: the admin API is off, so no approval can be decided and each call it gates is refused",
    ]);
    expect(off(`{ token: "" }`, "DENY")).toEqual([]);
    expect(off(`{ token: t, ${dana} }`, "REQUIRE_APPROVAL")).toEqual([]);
  });

  it("names a redis_stream sink without a url beside the memory store (it goes to whatever Redis listens on this host)", () => {
    const sinks = (store: string, url: string) =>
      parseConfig(
        `${store}upstreams: { u: { base_url: "http://127.0.0.1:1/v1" } }
models: { m: { upstream: u, input_per_1m: 1, output_per_1m: 1 } }
audit: { sinks: [{ redis_stream: { key: k${url} } }] }
`,
        "test",
        {},
      );
    const paths = (config: ReturnType<typeof sinks>) => configWarnings(config).map((issue) => issue.path);
    expect(paths(sinks("", ""))).toEqual(["audit.sinks[0].redis_stream.url"]);
    expect(paths(sinks("", ', url: "redis://127.0.0.1:6390"'))).toEqual([]);
    expect(paths(sinks('store: { redis: { url: "redis://127.0.0.1:6390" } }\n', ""))).toEqual([]);
  });

  it("names rule parts that can never act", () => {
    expect(
      messages(`    - { name: a, effect: DENY, conditions: { tool: { eq: x } }, actions: [tool.call], constraints: { on_deny: strip } }
    - { name: b, effect: ALLOW, constraints: { approver_role: security, approval_timeout_seconds: 60 } }
    - { name: c, effect: REQUIRE_APPROVAL, constraints: { approver_role: [admn, secruity] } }`),
    ).toEqual([
      "policies.rules[0].constraints.on_deny: `on_deny: strip` acts only on a DENY rule for `tool.register` (a declared tool); here it never applies",
      "policies.rules[1].constraints.approver_role: only a REQUIRE_APPROVAL rule's approvals use it; this rule is ALLOW",
      "policies.rules[1].constraints.approval_timeout_seconds: only a REQUIRE_APPROVAL rule's approvals use it; this rule is ALLOW",
      "policies.rules[2].constraints.approver_role: no approver has role `admn` or `secruity` (roles: admin, security): its approvals can never be decided",
    ]);
  });

  it("names conditions no call can meet: only models not served, a cost on models without prices", () => {
    expect(
      messages(`    - { name: a, effect: DENY, conditions: { any_of: [{ model: { eq: gpt4o } }, { not: { model: { in: [o3, o1] } } }] } }
    - { name: b, effect: REQUIRE_APPROVAL, conditions: { estimated_cost: { gt: 0.05 } } }`),
    ).toEqual([
      "policies.rules[0].conditions.model: names no served model (gpt4o): no call's model is ever one of them",
      "policies.rules[0].conditions.model: names no served model (o3, o1): no call's model is ever one of them",
      "policies.rules[1].conditions.estimated_cost: models without prices (local-llm) have no estimated_cost: this condition never holds for their calls",
    ]);
  });

  it("names an empty `in`, and an action condition no action of the rule meets", () => {
    expect(
      messages(`    - { name: a, effect: DENY, conditions: { model: { in: [] } } }
    - { name: b, effect: DENY, conditions: { action: { eq: tool.call } } }
    - { name: c, effect: DENY, actions: [tool.call], conditions: { action: { eq: tool.call } } }`),
    ).toEqual([
      "policies.rules[0].conditions.model: `in: []` holds for no value",
      "policies.rules[1].conditions.action: names only actions this rule does not apply to (tool.call; it applies to chat.completions, responses, embeddings)",
    ]);
  });

  it("names a passthrough path that relays endpoints running models, which nothing judges", () => {
    const withPassthrough = (paths: string) =>
      configWarnings({ ...config("    - { name: x, effect: ALLOW }"), passthrough: { upstream: "u", paths: JSON.parse(paths) } }).map((issue) => `${issue.path}: ${issue.message}`);
    expect(withPassthrough('["/v1/", "/v1/files", "/v1/audio/speech"]')).toEqual([
      "passthrough.paths[0]: relays endpoints that run models (/v1/completions, /v1/batches, /v1/realtime, /v1/images, /v1/audio, /v1/assistants, /v1/threads, /v1/fine_tuning) with no rule, budget or tool check",
    ]);
  });

  it("says nothing of a config whose every part can act", () => {
    expect(
      messages(`    - { name: a, effect: DENY, actions: [tool.register], conditions: { tool: { eq: x } }, constraints: { on_deny: strip } }
    - { name: b, effect: REQUIRE_APPROVAL, conditions: { model: { in: [gpt-4o-mini, o3] } }, constraints: { approver_role: [security, ops] } }
    - { name: c, effect: ALLOW, constraints: { require_audit_log: true } }`),
    ).toEqual([]);
  });
});
