import { describe, expect, it } from "vitest";
import { PolicyConfigError, type PolicyIssue } from "../../src/policy/compile.js";
import { compileRules, type RawRule } from "./helpers.js";

function issuesOf(rules: RawRule[]): readonly PolicyIssue[] {
  try {
    compileRules(rules);
  } catch (error) {
    if (error instanceof PolicyConfigError) return error.issues;
    throw error;
  }
  throw new Error("expected a PolicyConfigError");
}

const ok: RawRule = { name: "fine", effect: "ALLOW" };

/** Each row: what is wrong, the rule's conditions/actions/constraints, the path and a message fragment. */
type Row = [string, Partial<RawRule>, string, string];

const rows: Row[] = [
  ["unknown attribute", { conditions: { modle: { eq: "x" } } }, "conditions.modle", "unknown attribute `modle`"],
  ["misspelt combinator", { conditions: { anyOf: [] } }, "conditions.anyOf", "did you mean `any_of`?"],
  ["bare tool_args", { actions: ["tool.call"], conditions: { tool_args: { exists: true } } }, "conditions.tool_args", "needs a path"],
  ["empty tool_args segment", { actions: ["tool.call"], conditions: { "tool_args.a..b": { exists: true } } }, "conditions.tool_args.a..b", "empty path segment"],
  ["eq on a list attribute", { conditions: { tools: { eq: "shell" } } }, "conditions.tools.eq", "`tools` is a list of strings, which never equals one value; use `contains`"],
  ["ne on a list attribute", { conditions: { pii_types: { ne: "email" } } }, "conditions.pii_types.ne", "use `contains`"],
  [
    "a tool attribute in a rule for the call actions (the seed's rule copied without actions)",
    { conditions: { tool: { in: ["execute_code", "shell_command"] }, user_role: { not_in: ["admin"] } } },
    "conditions.tool",
    "`tool` is only set on tool actions, and this rule applies to the call actions, so it can never match; add `actions: [tool.register, tool.call]`",
  ],
  ["tool_args in a call rule", { actions: ["chat.completions"], conditions: { "tool_args.environment": { eq: "prod" } } }, "conditions.tool_args.environment", "add `actions: [tool.call]`"],
  ["a tool attribute every any_of branch requires", { conditions: { any_of: [{ tool: { eq: "a" } }, { tool: { in: ["b"] } }] } }, "conditions.any_of[0].tool", "can never match"],
  ["a tool attribute an all_of branch requires", { conditions: { all_of: [{ model: { eq: "m" } }, { tool_args_json: { matches: "x" } }] } }, "conditions.all_of[1].tool_args_json", "can never match"],
  ["unknown operator", { conditions: { model: { inn: ["x"] } } }, "conditions.model.inn", "unknown operator `inn`"],
  ["operators not a map", { conditions: { model: "gpt-4o" } }, "conditions.model", "expected a map of operators"],
  ["empty operator map", { conditions: { model: {} } }, "conditions.model", "expected a map of operators"],
  ["in not a list", { conditions: { model: { in: "gpt-4o" } } }, "conditions.model.in", "`in` takes a list, got `gpt-4o`"],
  ["not_in with an object", { conditions: { model: { not_in: [{ a: 1 }] } } }, "conditions.model.not_in[0]", "takes a string"],
  ["in with the wrong type", { conditions: { weekday: { in: [1, "7"] } } }, "conditions.weekday.in[1]", "`weekday` is a number"],
  ["an hour past 23", { conditions: { hour: { gt: 24 } } }, "conditions.hour.gt", "`hour` is a whole hour from 0 to 23 (UTC), so `gt: 24` can never match"],
  ["no weekday 8", { conditions: { weekday: { in: [3, 8] } } }, "conditions.weekday.in[1]", "`weekday` is a whole day from 1 (Monday) to 7 (Sunday), so `in: 8`"],
  ["a fractional hour", { conditions: { hour: { eq: 9.5 } } }, "conditions.hour.eq", "can never match"],
  ["an hour before 0", { conditions: { hour: { lt: 0 } } }, "conditions.hour.lt", "can never match"],
  ["eq with the wrong type", { conditions: { stream: { eq: "true" } } }, "conditions.stream.eq", "`stream` is a boolean"],
  ["a classification that is neither pii nor none", { conditions: { data_classification: { eq: "PII" } } }, "conditions.data_classification.eq", "`data_classification` is one of pii, none, so `PII` can never be it"],
  ["a PII type no detector finds", { conditions: { pii_types: { contains: "passport" } } }, "conditions.pii_types.contains", "so `passport` can never be it"],
  ["an action the gateway never takes", { conditions: { action: { in: ["chat.completions", "agent.run"] } } }, "conditions.action.in[1]", "so `agent.run` can never be it"],
  ["eq null", { conditions: { purpose: { eq: null } } }, "conditions.purpose.eq", "`eq` takes a string, number or boolean"],
  ["gt not a number", { conditions: { daily_spend: { gt: "100" } } }, "conditions.daily_spend.gt", "`gt` takes a number, got `100`"],
  ["gt on a string attribute", { conditions: { model: { gt: 1 } } }, "conditions.model.gt", "`gt` compares numbers"],
  ["lte infinite", { conditions: { hour: { lte: Number.POSITIVE_INFINITY } } }, "conditions.hour.lte", "`lte` takes a number"],
  ["exists not boolean", { conditions: { tool: { exists: "yes" } } }, "conditions.tool.exists", "`exists` takes true or false"],
  ["matches not a string", { conditions: { prompt_text: { matches: 1 } } }, "conditions.prompt_text.matches", "takes a pattern string"],
  [
    "matches with a lookahead",
    { conditions: { prompt_text: { matches: "(?=secret)" } } },
    "conditions.prompt_text.matches",
    "pattern `(?=secret)` is not accepted by RE2: invalid or unsupported Perl syntax",
  ],
  ["matches with a backreference", { conditions: { prompt_text: { matches: "(a)\\1" } } }, "conditions.prompt_text.matches", "not accepted by RE2"],
  ["contains on a number", { conditions: { hour: { contains: 1 } } }, "conditions.hour.contains", "`contains` looks into text or lists"],
  ["any_of not a list", { conditions: { any_of: { model: { eq: "x" } } } }, "conditions.any_of", "`any_of` takes a list"],
  ["any_of empty", { conditions: { any_of: [] } }, "conditions.any_of", "needs at least one"],
  ["all_of branch not a map", { conditions: { all_of: ["x"] } }, "conditions.all_of[0]", "expected a map of conditions"],
  ["nested error in any_of", { conditions: { any_of: [{ team: { in: "x" } }] } }, "conditions.any_of[0].team.in", "takes a list"],
  ["nested error in not", { conditions: { not: { tool: { in: [1] } } } }, "conditions.not.tool.in[0]", "`tool` is a string"],
  ["not not a map", { conditions: { not: [] } }, "conditions.not", "expected a map of conditions"],
  ["unknown action", { actions: ["chat.completions", "agent.run"] }, "actions[1]", "unknown action `agent.run`"],
  ["empty actions", { actions: [] }, "actions", "must name at least one action"],
  ["approver_role number", { constraints: { approver_role: 1 } }, "constraints.approver_role", "must be a role or a non-empty list"],
  ["approver_role empty list", { constraints: { approver_role: [] } }, "constraints.approver_role", "non-empty list"],
  ["approver_role list of non-strings", { constraints: { approver_role: ["admin", 2] } }, "constraints.approver_role", "a role"],
  ["approval_timeout_seconds zero", { constraints: { approval_timeout_seconds: 0 } }, "constraints.approval_timeout_seconds", "positive number"],
  ["approval_timeout_seconds string", { constraints: { approval_timeout_seconds: "1h" } }, "constraints.approval_timeout_seconds", "got `1h`"],
  ["approval_timeout_seconds past a date", { constraints: { approval_timeout_seconds: 1e13 } }, "constraints.approval_timeout_seconds", "at most 315360000"],
  ["on_deny other", { constraints: { on_deny: "drop" } }, "constraints.on_deny", "the only supported value is `strip`, got `drop`"],
  ["audit_bodies other", { constraints: { audit_bodies: "all" } }, "constraints.audit_bodies", "must be one of none, redacted, full"],
];

describe("policy config errors", () => {
  it.each(rows)("%s", (_name, fields, path, message) => {
    const issues = issuesOf([ok, { name: "bad_rule", effect: "DENY", ...fields }]);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe(`policies.rules[1].${path}`);
    expect(issues[0]?.rule).toBe("bad_rule");
    expect(issues[0]?.message).toContain(message);
  });

  it("reports every issue of every rule at once, disabled rules included", () => {
    const issues = issuesOf([
      { name: "a", effect: "DENY", conditions: { model: { in: "x" }, hour: { gt: "1" } } },
      ok,
      { name: "c", effect: "ALLOW", enabled: false, actions: ["nope"], constraints: { on_deny: 1 } },
    ]);
    expect(issues.map((issue) => [issue.rule, issue.path])).toEqual([
      ["a", "policies.rules[0].conditions.model.in"],
      ["a", "policies.rules[0].conditions.hour.gt"],
      ["c", "policies.rules[2].actions[0]"],
      ["c", "policies.rules[2].constraints.on_deny"],
    ]);
  });

  it("rejects a duplicate rule name", () => {
    const issues = issuesOf([ok, ok]);
    expect(issues).toEqual([{ path: "policies.rules[1].name", rule: "fine", message: "duplicate rule name `fine`" }]);
  });

  it("puts every issue in the error message", () => {
    expect(() => compileRules([{ name: "r", effect: "DENY", conditions: { modle: {} } }])).toThrow(
      /policies\.rules\[0\]\.conditions\.modle \(rule `r`\): unknown attribute `modle`/,
    );
  });

  it("accepts call rules whose tool conditions may hold without a tool (not, ne, exists: false, one any_of branch)", () => {
    const rules: RawRule[] = [
      { name: "a", effect: "DENY", conditions: { model: { in: ["gpt-4o"] }, not: { tool: { in: ["read_file"] } } } },
      { name: "b", effect: "DENY", conditions: { tool: { ne: "x" }, tool_args_json: { exists: false } } },
      { name: "c", effect: "DENY", conditions: { any_of: [{ tool: { eq: "a" } }, { model: { eq: "m" } }] } },
    ];
    expect(compileRules(rules).rules).toHaveLength(3);
  });

  it("carries unknown constraints untouched", () => {
    const constraints = { approver_role: ["admin", "security"], on_deny: "strip", anything: { nested: [1] } };
    expect(compileRules([{ name: "r", effect: "DENY", constraints }]).rules[0]?.constraints).toEqual(constraints);
  });
});
