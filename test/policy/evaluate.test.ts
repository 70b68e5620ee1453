import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../src/policy/compile.js";
import { evaluatePolicy, mergeDecisions } from "../../src/policy/evaluate.js";
import type { Decision } from "../../src/policy/types.js";
import { compileRules, decide, factsOf, type RawRule } from "./helpers.js";

const allowAll: RawRule = { name: "allow_all", effect: "ALLOW", description: "everything is allowed" };
const approveGpt4o: RawRule = {
  name: "approve_gpt4o",
  effect: "REQUIRE_APPROVAL",
  conditions: { model: { eq: "gpt-4o" } },
  constraints: { approver_role: "admin", approval_timeout_seconds: 60, ticket: "A" },
};
const approveAny: RawRule = {
  name: "approve_any",
  effect: "REQUIRE_APPROVAL",
  constraints: { approver_role: ["security"], ticket: "B", extra: 1 },
  description: "second approval rule",
};
const denyContractor: RawRule = {
  name: "deny_contractor",
  effect: "DENY",
  conditions: { user_role: { eq: "contractor" } },
  description: "contractors may not call",
};

describe("combining", () => {
  it("falls back to default_effect with no rule", () => {
    expect(decide([denyContractor], { user_role: "dev" })).toEqual({
      effect: "ALLOW",
      rule: null,
      reason: "no rule matched; default_effect ALLOW",
      matched: [],
      constraints: {},
      dry_run_rules: [],
    });
    expect(decide([], {}, "chat.completions", "DENY")).toMatchObject({
      effect: "DENY",
      rule: null,
      reason: "no rule matched; default_effect DENY",
    });
  });

  it.each([
    ["DENY beats the others", { model: "gpt-4o", user_role: "contractor" }, "DENY", "deny_contractor"],
    ["REQUIRE_APPROVAL beats ALLOW", { model: "gpt-4o", user_role: "dev" }, "REQUIRE_APPROVAL", "approve_gpt4o"],
  ] as const)("%s", (_name, facts, effect, rule) => {
    const decision = decide([allowAll, approveGpt4o, approveAny, denyContractor], facts);
    expect(decision.effect).toBe(effect);
    expect(decision.rule).toBe(rule);
  });

  it("names the first rule of the winning effect, lists every match and merges earlier-wins", () => {
    const decision = decide([allowAll, approveGpt4o, approveAny], { model: "gpt-4o" });
    expect(decision).toEqual({
      effect: "REQUIRE_APPROVAL",
      rule: "approve_gpt4o",
      reason: "matched rule `approve_gpt4o`",
      matched: ["allow_all", "approve_gpt4o", "approve_any"],
      constraints: { approver_role: "admin", approval_timeout_seconds: 60, ticket: "A", extra: 1 },
      dry_run_rules: [],
    });
  });

  it("uses the description as the reason", () => {
    expect(decide([denyContractor], { user_role: "contractor" }).reason).toBe("contractors may not call");
  });

  it("takes no constraints from rules of a losing effect", () => {
    const decision = decide([approveAny, { ...denyContractor, constraints: { code: "x" } }], { user_role: "contractor" });
    expect(decision.constraints).toEqual({ code: "x" });
  });

  it("takes the highest audit_bodies of every matched rule, whatever its effect", () => {
    const rules: RawRule[] = [
      { name: "audit_redacted", effect: "ALLOW", constraints: { audit_bodies: "redacted" } },
      { name: "audit_full", effect: "ALLOW", conditions: { model: { eq: "gpt-4o" } }, constraints: { audit_bodies: "full" } },
      { name: "deny", effect: "DENY", conditions: { user_role: { eq: "contractor" } }, constraints: { audit_bodies: "none" } },
    ];
    expect(decide(rules, { model: "gpt-4o", user_role: "contractor" }).constraints).toEqual({ audit_bodies: "full" });
    expect(decide(rules, { model: "x", user_role: "contractor" }).constraints).toEqual({ audit_bodies: "redacted" });
    expect(decide(rules, { model: "x" }).constraints).toEqual({ audit_bodies: "redacted" });
  });

  it("does not let a `__proto__` constraint touch the prototype", () => {
    const constraints = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    const rule = { name: "r", effect: "ALLOW", conditions: {}, constraints, description: "", enabled: true, mode: "enforce" } as const;
    const decision = evaluatePolicy(compilePolicy({ default_effect: "ALLOW", rules: [rule] }), "chat.completions", factsOf({}));
    expect(Object.getPrototypeOf(decision.constraints)).toBe(Object.prototype);
    expect(Object.hasOwn(decision.constraints, "__proto__")).toBe(true);
  });
});

describe("dry run and enablement", () => {
  const dryDeny: RawRule = { ...denyContractor, name: "dry_deny", mode: "dry_run", constraints: { audit_bodies: "full" } };

  it("lists a matching dry-run rule only in dry_run_rules", () => {
    const decision = decide([dryDeny, approveGpt4o], { user_role: "contractor", model: "gpt-4o" });
    expect(decision.effect).toBe("REQUIRE_APPROVAL");
    expect(decision.rule).toBe("approve_gpt4o");
    expect(decision.matched).toEqual(["approve_gpt4o"]);
    expect(decision.dry_run_rules).toEqual(["dry_deny"]);
    expect(decision.constraints).not.toHaveProperty("audit_bodies");
  });

  it("keeps dry_run_rules when default_effect decides", () => {
    const decision = decide([dryDeny], { user_role: "contractor" });
    expect(decision).toMatchObject({ effect: "ALLOW", rule: null, matched: [], dry_run_rules: ["dry_deny"] });
  });

  it("does not list a dry-run rule that does not match", () => {
    expect(decide([dryDeny], { user_role: "dev" }).dry_run_rules).toEqual([]);
  });

  it("ignores disabled rules and leaves them out of rules and attributes", () => {
    const rules: RawRule[] = [{ ...denyContractor, enabled: false }, { ...allowAll, conditions: { hour: { lt: 9 } } }];
    expect(decide(rules, { user_role: "contractor" }).rule).toBeNull();
    const compiled = compileRules(rules);
    expect(compiled.rules.map((rule) => rule.name)).toEqual(["allow_all"]);
    expect([...compiled.attributes]).toEqual(["hour"]);
  });
});

describe("actions", () => {
  const toolRule: RawRule = { name: "no_shell", effect: "DENY", actions: ["tool.call"], conditions: { tool: { eq: "shell" } } };
  const callRule: RawRule = { name: "no_gpt4o", effect: "DENY", conditions: { model: { eq: "gpt-4o" } } };
  const everywhere: RawRule = {
    name: "everywhere",
    effect: "REQUIRE_APPROVAL",
    actions: ["chat.completions", "responses", "embeddings", "tool.register", "tool.call"],
  };

  it.each([
    ["chat.completions", ["no_gpt4o", "everywhere"]],
    ["responses", ["no_gpt4o", "everywhere"]],
    ["embeddings", ["no_gpt4o", "everywhere"]],
    ["tool.register", ["everywhere"]],
    ["tool.call", ["no_shell", "everywhere"]],
  ] as const)("a rule without actions applies to the call actions only: %s", (action, matched) => {
    const decision = decide([toolRule, callRule, everywhere], { model: "gpt-4o", tool: "shell" }, action);
    expect(decision.matched).toEqual(matched);
  });

  it("answers governs per action, counting dry-run rules", () => {
    const compiled = compileRules([toolRule, { ...callRule, mode: "dry_run" }]);
    expect(compiled.governs("tool.call")).toBe(true);
    expect(compiled.governs("chat.completions")).toBe(true);
    expect(compiled.governs("tool.register")).toBe(false);
  });

  it("governs every tool action under default_effect DENY, rules for tools or not", () => {
    const compiled = compileRules([{ ...callRule, effect: "ALLOW" }], "DENY");
    expect(compiled.governs("tool.register")).toBe(true);
    expect(compiled.governs("tool.call")).toBe(true);
  });

  it("knows which tool calls some tool.call rule could judge: a rule naming its tools, or any tool", () => {
    const named: RawRule = { name: "named", effect: "DENY", actions: ["tool.call"], conditions: { tool: { in: ["deploy", "wipe"] } } };
    const one: RawRule = { name: "one", effect: "REQUIRE_APPROVAL", actions: ["tool.call"], conditions: { tool: { eq: "pay" }, "tool_args.amount": { gt: 5 } } };
    const compiled = compileRules([named, one]);
    expect(compiled.mayJudgeToolCall(["deploy"])).toBe(true);
    expect(compiled.mayJudgeToolCall(["web_search"])).toBe(false);
    expect(compiled.mayJudgeToolCall(["computer_use_preview", "pay"])).toBe(true);
    const open: RawRule = { name: "open", effect: "DENY", actions: ["tool.call"], conditions: { tool: { matches: "^rm" } } };
    expect(compileRules([named, open]).mayJudgeToolCall(["web_search"])).toBe(true);
    expect(compileRules([named], "DENY").mayJudgeToolCall(["web_search"])).toBe(true);
  });

  it("strips a tool only when every DENY rule that matched it says on_deny: strip", () => {
    const hard: RawRule = { name: "hard_deny", effect: "DENY", actions: ["tool.register"], conditions: { tool: { eq: "shell" } } };
    const soft: RawRule = { name: "soft_strip", effect: "DENY", actions: ["tool.register"], conditions: { tool: { in: ["shell", "file_write"] } }, constraints: { on_deny: "strip" } };
    expect(decide([hard, soft], { tool: "shell" }, "tool.register").constraints.on_deny).toBeUndefined();
    expect(decide([soft, hard], { tool: "shell" }, "tool.register").constraints.on_deny).toBeUndefined();
    expect(decide([hard, soft], { tool: "file_write" }, "tool.register").constraints.on_deny).toBe("strip");
  });

  it("collects the attributes of enabled rules, tool_args paths as tool_args", () => {
    const compiled = compileRules([
      { ...toolRule, conditions: { "tool_args.target.env": { eq: "prod" }, not: { tool: { eq: "x" } } } },
      { ...callRule, conditions: { any_of: [{ model: { eq: "a" } }, { pii_types: { contains: "email" } }] } },
    ]);
    expect([...compiled.attributes].sort()).toEqual(["model", "pii_types", "tool", "tool_args"]);
  });
});

const decision = (effect: Decision["effect"], rule: string | null, extra: Partial<Decision> = {}): Decision => ({
  effect,
  rule,
  reason: rule === null ? "default" : `because ${rule}`,
  matched: rule === null ? [] : [rule],
  constraints: {},
  dry_run_rules: [],
  ...extra,
});

/** The rules merging looks up, in config order. */
const ruleTable = (...rules: [string, Decision["effect"], Record<string, unknown>?][]) =>
  new Map(rules.map(([name, effect, constraints], order) => [name, { order, effect, constraints: constraints ?? {} }]));

describe("mergeDecisions", () => {
  it("returns a single decision unchanged", () => {
    const only = decision("ALLOW", "a", { constraints: { k: 1 }, dry_run_rules: ["d"] });
    expect(mergeDecisions([only])).toEqual(only);
  });

  it("lets the first decision of the winning effect decide", () => {
    const merged = mergeDecisions([
      decision("ALLOW", null, { constraints: { audit_bodies: "full", note: "call" } }),
      decision("REQUIRE_APPROVAL", "tool_a", { constraints: { approver_role: "admin" }, dry_run_rules: ["d1"] }),
      decision("REQUIRE_APPROVAL", "tool_b", {
        constraints: { approver_role: "ops", approval_timeout_seconds: 5, audit_bodies: "redacted" },
        dry_run_rules: ["d1", "d2"],
      }),
      decision("ALLOW", "tool_a"),
    ]);
    expect(merged).toEqual({
      effect: "REQUIRE_APPROVAL",
      rule: "tool_a",
      reason: "because tool_a",
      matched: ["tool_a", "tool_b"],
      constraints: { approver_role: "admin", approval_timeout_seconds: 5, audit_bodies: "full" },
      dry_run_rules: ["d1", "d2"],
    });
  });

  it("says no ALLOW rule matched where the default decided though rules matched, but keeps a stripped tool's own reason", () => {
    const byDefault = decision("DENY", null, { reason: "no rule matched; default_effect DENY" });
    expect(mergeDecisions([byDefault, decision("ALLOW", null, { reason: "`shell` stripped: x", matched: ["strip_shell"] })]).reason).toBe(
      "no ALLOW rule matched; default_effect DENY",
    );
    const stripped = decision("ALLOW", null, { reason: "`shell` stripped: x", matched: ["strip_shell"] });
    expect(mergeDecisions([stripped]).reason).toBe("`shell` stripped: x");
  });

  it("lets a DENY anywhere win", () => {
    const merged = mergeDecisions([decision("REQUIRE_APPROVAL", "a"), decision("DENY", "b"), decision("DENY", "c")]);
    expect(merged).toMatchObject({ effect: "DENY", rule: "b", matched: ["a", "b", "c"] });
  });

  it("names the rule first in config order, whichever of the call and its tools it decided", () => {
    const order = ruleTable(["tool_first", "DENY"], ["call_second", "DENY"], ["no_shell", "DENY"]);
    const merged = mergeDecisions([decision("DENY", "call_second"), decision("DENY", "tool_first")], order);
    expect(merged).toMatchObject({ rule: "tool_first", reason: "because tool_first", matched: ["tool_first", "call_second"] });
    // A named rule names the decision before default_effect does.
    expect(mergeDecisions([decision("DENY", null), decision("DENY", "no_shell")], order)).toMatchObject({ rule: "no_shell", reason: "because no_shell" });
  });

  it("lets the rule first in config order win a conflicting constraint, whichever of the call and its tools it decided", () => {
    const order = ruleTable(["a_tool", "REQUIRE_APPROVAL", { approver_role: "admin" }], ["b_call", "REQUIRE_APPROVAL", { approver_role: "security", ticket: "B" }], ["c_dry", "DENY"], ["d_dry", "DENY"]);
    const merged = mergeDecisions(
      [
        decision("REQUIRE_APPROVAL", "b_call", { constraints: { approver_role: "security", ticket: "B" }, dry_run_rules: ["d_dry"] }),
        decision("REQUIRE_APPROVAL", "a_tool", { constraints: { approver_role: "admin" }, dry_run_rules: ["c_dry"] }),
      ],
      order,
    );
    expect(merged).toMatchObject({ rule: "a_tool", constraints: { approver_role: "admin", ticket: "B" }, matched: ["a_tool", "b_call"], dry_run_rules: ["c_dry", "d_dry"] });
  });

  it("merges constraints rule by rule in config order: a later rule of an earlier-named decision does not beat an earlier rule of another", () => {
    const rules = ruleTable(
      ["m_a", "REQUIRE_APPROVAL", { foo: 1 }],
      ["m_b", "REQUIRE_APPROVAL", { approver_role: "admin", approval_timeout_seconds: 100 }],
      ["m_c", "REQUIRE_APPROVAL", { approver_role: "security", approval_timeout_seconds: 200 }],
      ["allow_all", "ALLOW", { note: "allowed" }],
    );
    const call = decision("REQUIRE_APPROVAL", "m_a", { matched: ["m_a", "m_c", "allow_all"], constraints: { foo: 1, approver_role: "security", approval_timeout_seconds: 200 } });
    const tool = decision("REQUIRE_APPROVAL", "m_b", { matched: ["m_b"], constraints: { approver_role: "admin", approval_timeout_seconds: 100 } });
    expect(mergeDecisions([call, tool], rules)).toMatchObject({
      rule: "m_a",
      matched: ["m_a", "m_b", "m_c", "allow_all"],
      constraints: { foo: 1, approver_role: "admin", approval_timeout_seconds: 100 },
    });
    // A decision whose effect is not its rule's (a held answer's ALLOW) brings its own constraints.
    const held = decision("ALLOW", "m_c", { constraints: { approver_role: "security" } });
    expect(mergeDecisions([held, decision("ALLOW", "allow_all", { constraints: { note: "allowed" } })], rules).constraints).toEqual({ note: "allowed", approver_role: "security" });
  });

  it("refuses an empty list", () => {
    expect(() => mergeDecisions([])).toThrow(RangeError);
  });
});
