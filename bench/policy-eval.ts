/**
 * Policy evaluation micro-benchmark: 100 realistic rules, median and p99 time per `evaluatePolicy`
 * call in µs. Run after a build: `node dist/bench/policy-eval.js`.
 */
import { z } from "zod";
import { type RawConfig, ruleSchema } from "../src/config/schema.js";
import { compilePolicy } from "../src/policy/compile.js";
import { evaluatePolicy } from "../src/policy/evaluate.js";
import type { Action, Facts } from "../src/policy/types.js";

type RawRule = NonNullable<NonNullable<RawConfig["policies"]>["rules"]>[number];

const TEAMS = ["research", "support", "sales", "finance", "legal", "ops", "platform", "data", "design", "hr"];
const TOOLS = ["deploy", "delete_records", "shell_command", "execute_code", "file_write", "send_email", "query_db", "search"];

/** Ten families of ten rules each, shaped like the seed's examples and the contract's. */
function buildRules(): RawRule[] {
  const rules: RawRule[] = [];
  TEAMS.forEach((team, i) => {
    rules.push(
      {
        name: `${team}_expensive_models`,
        effect: "DENY",
        conditions: { team: { eq: team }, model: { in: ["gpt-4o", "o1", "gpt-4.1"] }, user_role: { not_in: ["admin", "power_user"] } },
        description: `${team} may not use expensive models`,
      },
      {
        name: `${team}_daily_budget`,
        effect: "DENY",
        conditions: { team: { eq: team }, daily_spend: { gt: 50 + i * 10 }, user_role: { ne: "admin" } },
      },
      { name: `${team}_rate`, effect: "DENY", conditions: { team: { eq: team }, requests_last_minute: { gt: 100 + i } } },
      {
        name: `${team}_cost_per_call`,
        effect: "REQUIRE_APPROVAL",
        conditions: { team: { eq: team }, estimated_cost: { gte: 1 + i / 10 } },
        constraints: { approver_role: "finance", approval_timeout_seconds: 600 },
      },
      {
        name: `${team}_pii`,
        effect: "REQUIRE_APPROVAL",
        conditions: { team: { eq: team }, data_classification: { eq: "pii" }, purpose: { not_in: ["authorized_support"] } },
        constraints: { approver_role: ["security", "admin"] },
      },
      {
        name: `${team}_after_hours`,
        effect: "DENY",
        mode: i % 2 === 0 ? "dry_run" : "enforce",
        conditions: { team: { eq: team }, any_of: [{ hour: { lt: 6 } }, { hour: { gte: 22 } }, { weekday: { in: [6, 7] } }] },
      },
      {
        name: `${team}_prompt_secrets`,
        effect: "DENY",
        conditions: { team: { eq: team }, prompt_text: { matches: "(?i)(api[_-]?key|password)\\s*[:=]" } },
      },
      {
        name: `${team}_dangerous_tools`,
        effect: "DENY",
        actions: ["tool.register"],
        conditions: { team: { eq: team }, tool: { in: TOOLS.slice(2, 5) }, user_role: { not_in: ["admin", "developer"] } },
        constraints: { on_deny: "strip" },
      },
      {
        name: `${team}_prod_ops`,
        effect: "REQUIRE_APPROVAL",
        actions: ["tool.call"],
        conditions: {
          team: { eq: team },
          tool: { in: ["deploy", "delete_records"] },
          any_of: [{ "tool_args.environment": { matches: "^prod" } }, { tool_args_json: { matches: "production" } }],
        },
        constraints: { approver_role: "admin", approval_timeout_seconds: 3600 },
      },
      {
        name: `${team}_audit`,
        effect: "ALLOW",
        conditions: { team: { eq: team }, not: { pii_types: { exists: false } } },
        constraints: { audit_bodies: i % 3 === 0 ? "full" : "redacted", retention_days: 90 },
      },
    );
  });
  return rules;
}

/** Facts as the pipeline gives them: a memoised lookup over plain values. */
function factsOf(values: Record<string, unknown>): Facts {
  const map = new Map(Object.entries(values));
  return { get: (attribute) => map.get(attribute) };
}

const prompt = "Summarise the attached quarterly report for the board, highlighting risks and open questions. ".repeat(6);
const calls: { action: Action; facts: Facts }[] = [
  { action: "chat.completions", facts: factsOf({ team: "research", user_role: "developer", model: "gpt-4o-mini", daily_spend: 12, requests_last_minute: 3, estimated_cost: 0.01, hour: 14, weekday: 3, prompt_text: prompt, pii_types: [] }) },
  { action: "chat.completions", facts: factsOf({ team: "ops", user_role: "contractor", model: "gpt-4o", daily_spend: 120, requests_last_minute: 300, estimated_cost: 2, hour: 23, weekday: 6, prompt_text: prompt, pii_types: ["email"], data_classification: "pii" }) },
  { action: "tool.call", facts: factsOf({ team: "platform", user_role: "developer", tool: "deploy", tool_args: { environment: "production" }, tool_args_json: '{"environment":"production"}', hour: 10, weekday: 2 }) },
  { action: "tool.register", facts: factsOf({ team: "hr", user_role: "analyst", tool: "shell_command" }) },
];

const rules = z.array(ruleSchema).parse(buildRules());
const compiled = compilePolicy({ default_effect: "ALLOW", rules });

const iterations = 200_000;
for (let i = 0; i < 20_000; i++) {
  const call = calls[i % calls.length]!;
  evaluatePolicy(compiled, call.action, call.facts);
}

/** Times each evaluation on its own; hrtime's own cost (~50 ns) is included, which only overstates. */
function measure(pick: (i: number) => { action: Action; facts: Facts }, count: number): Float64Array {
  const samples = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const call = pick(i);
    const start = process.hrtime.bigint();
    evaluatePolicy(compiled, call.action, call.facts);
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  return samples.sort();
}

function summarise(samples: Float64Array): { median_us: number; p99_us: number } {
  const at = (q: number): number => {
    const value = samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? Number.NaN;
    return Math.round(value * 1000) / 1000;
  };
  return { median_us: at(0.5), p99_us: at(0.99) };
}

const all = measure((i) => calls[i % calls.length]!, iterations);
const perCall = calls.map((call, index) => ({
  call: `${index}:${call.action}`,
  ...summarise(measure(() => call, iterations / calls.length)),
}));

console.log(
  JSON.stringify(
    { bench: "policy-eval", rules: rules.length, evaluations: iterations, ...summarise(all), per_call: perCall, node: process.version },
    null,
    2,
  ),
);
