import { z } from "zod";
import { type RawConfig, ruleSchema } from "../../src/config/schema.js";
import { type CompiledPolicy, compilePolicy } from "../../src/policy/compile.js";
import { evaluatePolicy } from "../../src/policy/evaluate.js";
import type { Action, Decision, Facts } from "../../src/policy/types.js";

export type RawRule = NonNullable<NonNullable<RawConfig["policies"]>["rules"]>[number];

/** Compiles rules as the config loader would, defaults included. */
export function compileRules(rules: RawRule[], defaultEffect: "ALLOW" | "DENY" = "ALLOW"): CompiledPolicy {
  return compilePolicy({ default_effect: defaultEffect, rules: z.array(ruleSchema).parse(rules) });
}

export function factsOf(values: Record<string, unknown>): Facts {
  return { get: (attribute) => (Object.hasOwn(values, attribute) ? values[attribute] : undefined) };
}

/** Whether a single condition map holds for the facts. */
export function holds(conditions: Record<string, unknown>, facts: Record<string, unknown>): boolean {
  // A tool.call rule: every attribute, tool ones included, can be set there.
  const policy = compileRules([{ name: "r", effect: "DENY", actions: ["tool.call"], conditions }]);
  return evaluatePolicy(policy, "tool.call", factsOf(facts)).effect === "DENY";
}

export function decide(
  rules: RawRule[],
  facts: Record<string, unknown>,
  action: Action = "chat.completions",
  defaultEffect: "ALLOW" | "DENY" = "ALLOW",
): Decision {
  return evaluatePolicy(compileRules(rules, defaultEffect), action, factsOf(facts));
}
