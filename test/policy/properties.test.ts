import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ATTRIBUTE_NAMES, resolveAttribute } from "../../src/policy/attributes.js";
import type { CompiledPolicy } from "../../src/policy/compile.js";
import { PII_TYPES } from "../../src/pii/types.js";
import { ACTIONS } from "../../src/policy/types.js";
import { evaluatePolicy, mergeDecisions } from "../../src/policy/evaluate.js";
import { compileRules, factsOf, holds, type RawRule } from "./helpers.js";

const WORDS = ["gpt-4o", "admin", "prod", "deploy", "pii", "", "x"];
const PATTERNS = ["^prod", "(a+)+$", "(?i)secret", ".*", "\\d{2}", "[a-c]", "^$"];
const ATTRIBUTES = [...ATTRIBUTE_NAMES, "tool_args.environment", "tool_args.target.env"];

function kindOf(attribute: string): string {
  const resolved = resolveAttribute(attribute);
  if (typeof resolved === "string") throw new Error(resolved);
  return resolved.kind;
}

function scalarFor(kind: string): fc.Arbitrary<string | number | boolean> {
  switch (kind) {
    case "number":
      return fc.oneof(fc.integer({ min: -2, max: 30 }), fc.double({ noNaN: true, noDefaultInfinity: true }));
    case "boolean":
      return fc.boolean();
    case "free":
      return fc.oneof(fc.constantFrom(...WORDS), fc.integer({ min: -2, max: 30 }), fc.boolean());
    default:
      return fc.constantFrom(...WORDS);
  }
}

/** The attributes of a fixed range: an operand that can never match there is a config error. */
const RANGED: Record<string, { min: number; max: number }> = { hour: { min: 0, max: 23 }, weekday: { min: 1, max: 7 } };

/** The attributes of a fixed set of values: likewise. */
const ENUMERATED: Record<string, readonly string[]> = { action: ACTIONS, data_classification: ["pii", "none"], pii_types: PII_TYPES };

/** One valid `{ op: operand }` for an attribute. */
function operatorFor(attribute: string): fc.Arbitrary<Record<string, unknown>> {
  const kind = kindOf(attribute);
  const range = RANGED[attribute];
  const values = ENUMERATED[attribute];
  const scalar = range !== undefined ? fc.integer(range) : values !== undefined ? fc.constantFrom(...values) : scalarFor(kind);
  const bound = range === undefined ? fc.integer({ min: -2, max: 30 }) : fc.integer({ min: range.min + 1, max: range.max - 1 });
  // A list never equals one value: the compiler refuses eq / ne on one.
  const options: fc.Arbitrary<Record<string, unknown>>[] = [
    ...(kind === "list" ? [] : [scalar.map((value) => ({ eq: value })), scalar.map((value) => ({ ne: value }))]),
    fc.array(scalar, { maxLength: 3 }).map((values) => ({ in: values })),
    fc.array(scalar, { maxLength: 3 }).map((values) => ({ not_in: values })),
    fc.boolean().map((value) => ({ exists: value })),
    fc.constantFrom(...PATTERNS).map((pattern) => ({ matches: pattern })),
  ];
  if (kind === "number" || kind === "free") {
    for (const op of ["gt", "gte", "lt", "lte"]) {
      options.push(bound.map((value) => ({ [op]: value })));
    }
  }
  if (kind === "string" || kind === "list" || kind === "free") {
    options.push((kind === "list" && values !== undefined ? scalar : scalarFor(kind === "free" ? "free" : "string")).map((value) => ({ contains: value })));
  }
  return fc.oneof(...options);
}

const attributeCondition = fc
  .constantFrom(...ATTRIBUTES)
  .chain((attribute) => operatorFor(attribute).map((ops) => ({ [attribute]: ops })));

/** Condition maps nested at most `depth` combinators deep, so generation stays bounded. */
function conditionsAt(depth: number): fc.Arbitrary<Record<string, unknown>> {
  const leaves = fc.array(attributeCondition, { maxLength: 3 }).map((parts) => Object.assign({}, ...parts));
  if (depth === 0) return leaves;
  const inner = conditionsAt(depth - 1);
  return fc
    .tuple(
      leaves,
      fc.option(fc.array(inner, { minLength: 1, maxLength: 2 })),
      fc.option(fc.array(inner, { maxLength: 2 })),
      fc.option(inner),
    )
    .map(([map, anyOf, allOf, not]) => {
      if (anyOf !== null) map["any_of"] = anyOf;
      if (allOf !== null) map["all_of"] = allOf;
      if (not !== null) map["not"] = not;
      return map;
    });
}

const conditions = conditionsAt(2);

const rule = fc.record({
  effect: fc.constantFrom("ALLOW", "DENY", "REQUIRE_APPROVAL" as const),
  conditions,
  actions: fc.option(fc.subarray([...ACTIONS], { minLength: 1 }), { nil: undefined }),
  mode: fc.constantFrom("enforce", "dry_run" as const),
  enabled: fc.boolean(),
  constraints: fc.record(
    { audit_bodies: fc.constantFrom("none", "redacted", "full"), approver_role: fc.constantFrom("admin"), note: fc.string() },
    { requiredKeys: [] },
  ),
});

const rules = fc
  .array(rule, { maxLength: 8 })
  .map((list) => list.map((fields, index): RawRule => {
    const { actions, ...rest } = fields;
    // The compiler refuses a call-only rule that requires a tool attribute: such rules also judge tool calls.
    const toolOnly = /"tool(_args[^"]*)?"/.test(JSON.stringify(fields.conditions));
    const covered = actions?.some((action) => action.startsWith("tool.")) === true;
    const effective = toolOnly && !covered ? [...(actions ?? ["chat.completions"]), "tool.call" as const] : actions;
    return effective === undefined ? { name: `r${index}`, ...rest } : { name: `r${index}`, actions: effective, ...rest };
  }));

const hostile = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

const factValue = fc.oneof(hostile, fc.constantFrom(...WORDS), fc.integer({ min: -2, max: 30 }), fc.array(fc.constantFrom(...WORDS)));

const facts = fc.record(
  Object.fromEntries(
    [...ATTRIBUTE_NAMES, "tool_args"].map((name) => [
      name,
      name === "tool_args"
        ? fc.oneof(hostile, fc.record({ environment: factValue, target: fc.record({ env: factValue }) }))
        : factValue,
    ]),
  ),
  { requiredKeys: [] },
);

/** The same policy with every action's rules walked in full, as before rules were indexed. */
function unindexed(policy: CompiledPolicy): CompiledPolicy {
  const indexes = Object.fromEntries(
    ACTIONS.map((action) => [action, { attribute: null, byValue: new Map(), unguarded: policy.rulesByAction[action], all: policy.rulesByAction[action] }]),
  ) as unknown as CompiledPolicy["indexes"];
  return { ...policy, indexes };
}

/** Rules most of which are guarded by a team or user, as per-team configs are. */
const guardedRules = fc
  .tuple(rules, fc.array(fc.option(fc.tuple(fc.constantFrom("team", "user"), fc.oneof(
    fc.constantFrom(...WORDS).map((value) => ({ eq: value })),
    fc.array(fc.constantFrom(...WORDS), { maxLength: 3 }).map((values) => ({ in: values })),
    fc.tuple(fc.constantFrom(...WORDS), fc.constantFrom(...WORDS)).map(([eq, ne]) => ({ eq, ne })),
  ))), { minLength: 8, maxLength: 8 }))
  .map(([list, guards]) => list.map((item, i) => {
    const guard = guards[i];
    return guard === null || guard === undefined ? item : { ...item, conditions: { ...item.conditions, [guard[0]]: guard[1] } };
  }));

describe("evaluatePolicy properties", () => {
  it("decides the same with rules indexed by team or user as walking them all", () => {
    fc.assert(
      fc.property(guardedRules, facts, fc.constantFrom(...ACTIONS), (ruleList, values, action) => {
        const compiled = compileRules(ruleList);
        expect(evaluatePolicy(compiled, action, factsOf(values))).toEqual(evaluatePolicy(unindexed(compiled), action, factsOf(values)));
      }),
      { numRuns: 1000 },
    );
  });

  it("never throws and returns a well-formed decision", () => {
    fc.assert(
      fc.property(rules, facts, fc.constantFrom(...ACTIONS), fc.constantFrom("ALLOW", "DENY" as const), (ruleList, values, action, defaultEffect) => {
        const compiled = compileRules(ruleList, defaultEffect);
        const decision = evaluatePolicy(compiled, action, factsOf(values));
        const names = new Set(ruleList.map((item) => item.name));
        expect(["ALLOW", "DENY", "REQUIRE_APPROVAL"]).toContain(decision.effect);
        for (const name of [...decision.matched, ...decision.dry_run_rules]) expect(names).toContain(name);
        if (decision.rule === null) expect(decision.matched).toEqual([]);
        else expect(decision.matched).toContain(decision.rule);
        expect(evaluatePolicy(compiled, action, factsOf(values))).toEqual(decision);
        expect(mergeDecisions([decision, decision])).toEqual(decision);
      }),
      { numRuns: 500 },
    );
  });

  it("makes each negative operator the exact negation of its positive twin", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ATTRIBUTES), facts, (attribute, values) => {
        const scalar = kindOf(attribute) === "number" ? 3 : kindOf(attribute) === "boolean" ? true : (ENUMERATED[attribute]?.[0] ?? "prod");
        if (kindOf(attribute) !== "list") expect(holds({ [attribute]: { ne: scalar } }, values)).toBe(!holds({ [attribute]: { eq: scalar } }, values));
        expect(holds({ [attribute]: { not_in: [scalar] } }, values)).toBe(!holds({ [attribute]: { in: [scalar] } }, values));
        expect(holds({ [attribute]: { exists: false } }, values)).toBe(!holds({ [attribute]: { exists: true } }, values));
      }),
      { numRuns: 300 },
    );
  });
});
