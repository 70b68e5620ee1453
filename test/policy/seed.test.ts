import { describe, expect, it } from "vitest";
import { evaluatePolicy } from "../../src/policy/evaluate.js";
import type { Action } from "../../src/policy/types.js";
import { compileRules, factsOf, type RawRule } from "./helpers.js";

/** The seed guide's example policies, written as gateway config. */
const seedRules: RawRule[] = [
  {
    name: "high_cost_model_restriction",
    effect: "DENY",
    conditions: { model: { in: ["gpt-4", "claude-opus-3"] }, user_role: { not_in: ["admin", "power_user"] } },
    description: "Only admins can use expensive models",
  },
  {
    name: "api_rate_limit",
    effect: "DENY",
    conditions: { requests_last_minute: { gt: 60 } },
    description: "Limit API calls to 60/minute",
  },
  {
    name: "daily_budget_limit",
    effect: "DENY",
    conditions: { daily_spend: { gt: 100.0 }, user_role: { not_in: ["admin"] } },
    description: "Limit daily spend to $100 for non-admins",
  },
  {
    // The seed's `operation` is the tool, its `resource` the arguments the model sent.
    name: "sensitive_operation_approval",
    effect: "REQUIRE_APPROVAL",
    actions: ["tool.call"],
    conditions: {
      tool: { in: ["delete", "modify", "deploy"] },
      any_of: [{ tool_args_json: { matches: ".*production.*" } }, { "tool_args.environment": { matches: "^prod" } }],
    },
    constraints: { approver_role: "admin", approval_timeout_seconds: 3600 },
    description: "Production operations require admin approval",
  },
  {
    name: "restricted_tool_access",
    effect: "DENY",
    actions: ["tool.register"],
    conditions: {
      tool: { in: ["execute_code", "shell_command", "file_write"] },
      user_role: { not_in: ["admin", "developer"] },
    },
    description: "Only developers can use potentially dangerous tools",
  },
  {
    name: "pii_access_restriction",
    effect: "REQUIRE_APPROVAL",
    conditions: { data_classification: { eq: "pii" }, purpose: { not_in: ["authorized_support"] } },
    constraints: { approver_role: ["security", "admin"] },
    description: "PII access requires approval unless for authorized support",
  },
  {
    name: "user_rate_limit",
    effect: "DENY",
    mode: "dry_run",
    conditions: { requests_last_minute: { gt: 10 } },
    description: "Limit to 10 requests per minute",
  },
  {
    name: "audit_all_operations",
    effect: "ALLOW",
    actions: ["chat.completions", "responses", "embeddings", "tool.register", "tool.call"],
    conditions: {},
    constraints: { require_audit_log: true, log_level: "detailed", audit_bodies: "redacted" },
    description: "All operations must be audited",
  },
  {
    name: "conversation_retention",
    effect: "ALLOW",
    conditions: {},
    constraints: { retention_days: 90, require_encryption: true },
    description: "Conversations retained for 90 days, encrypted",
  },
];

const policy = compileRules(seedRules);
const developer = { user: "alice", user_role: "developer", model: "gpt-4o-mini", requests_last_minute: 0, daily_spend: 0 };

type Row = [string, Action, Record<string, unknown>, string, string | null];

const rows: Row[] = [
  ["a developer cannot use gpt-4", "chat.completions", { ...developer, model: "gpt-4" }, "DENY", "high_cost_model_restriction"],
  ["a power user can use gpt-4", "chat.completions", { ...developer, user_role: "power_user", model: "gpt-4" }, "ALLOW", "audit_all_operations"],
  ["a key without a role cannot use gpt-4", "chat.completions", { model: "gpt-4" }, "DENY", "high_cost_model_restriction"],
  ["61 requests a minute are too many", "chat.completions", { ...developer, requests_last_minute: 61 }, "DENY", "api_rate_limit"],
  ["60 requests a minute are fine", "responses", { ...developer, requests_last_minute: 60 }, "ALLOW", "audit_all_operations"],
  ["a developer over budget is refused", "embeddings", { ...developer, daily_spend: 100.5 }, "DENY", "daily_budget_limit"],
  ["an admin over budget is not", "chat.completions", { ...developer, user_role: "admin", daily_spend: 500 }, "ALLOW", "audit_all_operations"],
  [
    "a deploy to production needs approval (json)",
    "tool.call",
    { ...developer, tool: "deploy", tool_args_json: '{"target":"production-eu"}', tool_args: { target: "production-eu" } },
    "REQUIRE_APPROVAL",
    "sensitive_operation_approval",
  ],
  [
    "a deploy to prod needs approval (tool_args path)",
    "tool.call",
    { ...developer, tool: "deploy", tool_args_json: '{"environment":"prod"}', tool_args: { environment: "prod" } },
    "REQUIRE_APPROVAL",
    "sensitive_operation_approval",
  ],
  [
    "a deploy to staging does not",
    "tool.call",
    { ...developer, tool: "deploy", tool_args_json: '{"environment":"staging"}', tool_args: { environment: "staging" } },
    "ALLOW",
    "audit_all_operations",
  ],
  ["reading production is fine", "tool.call", { ...developer, tool: "read", tool_args_json: "production" }, "ALLOW", "audit_all_operations"],
  ["an analyst cannot register execute_code", "tool.register", { ...developer, user_role: "analyst", tool: "execute_code" }, "DENY", "restricted_tool_access"],
  ["a developer can", "tool.register", { ...developer, tool: "execute_code" }, "ALLOW", "audit_all_operations"],
  [
    "pii without an authorized purpose needs approval",
    "chat.completions",
    { ...developer, data_classification: "pii", purpose: "marketing" },
    "REQUIRE_APPROVAL",
    "pii_access_restriction",
  ],
  [
    "pii for a key with no purpose fails closed",
    "chat.completions",
    { ...developer, data_classification: "pii", purpose: null },
    "REQUIRE_APPROVAL",
    "pii_access_restriction",
  ],
  [
    "pii for authorized support is allowed",
    "chat.completions",
    { ...developer, data_classification: "pii", purpose: "authorized_support" },
    "ALLOW",
    "audit_all_operations",
  ],
  ["an ordinary call is allowed", "chat.completions", developer, "ALLOW", "audit_all_operations"],
];

describe("the seed's example policies", () => {
  it.each(rows)("%s", (_name, action, facts, effect, rule) => {
    const decision = evaluatePolicy(policy, action, factsOf(facts));
    expect(decision.effect).toBe(effect);
    expect(decision.rule).toBe(rule);
  });

  it("carries the audit and retention constraints on an allowed call", () => {
    const decision = evaluatePolicy(policy, "chat.completions", factsOf(developer));
    expect(decision).toEqual({
      effect: "ALLOW",
      rule: "audit_all_operations",
      reason: "All operations must be audited",
      matched: ["audit_all_operations", "conversation_retention"],
      constraints: {
        require_audit_log: true,
        log_level: "detailed",
        audit_bodies: "redacted",
        retention_days: 90,
        require_encryption: true,
      },
      dry_run_rules: [],
    });
  });

  it("gives the approval constraints, and still raises body capture, on a sensitive tool call", () => {
    const facts = { ...developer, tool: "deploy", tool_args: { environment: "prod" } };
    const decision = evaluatePolicy(policy, "tool.call", factsOf(facts));
    expect(decision.constraints).toEqual({ approver_role: "admin", approval_timeout_seconds: 3600, audit_bodies: "redacted" });
    expect(decision.matched).toEqual(["sensitive_operation_approval", "audit_all_operations"]);
  });

  it("records the dry-run rate limit without enforcing it", () => {
    const decision = evaluatePolicy(policy, "chat.completions", factsOf({ ...developer, requests_last_minute: 30 }));
    expect(decision.effect).toBe("ALLOW");
    expect(decision.dry_run_rules).toEqual(["user_rate_limit"]);
  });

  it("needs only the attributes the rules read", () => {
    expect([...policy.attributes].sort()).toEqual([
      "daily_spend",
      "data_classification",
      "model",
      "purpose",
      "requests_last_minute",
      "tool",
      "tool_args",
      "tool_args_json",
      "user_role",
    ]);
  });
});
