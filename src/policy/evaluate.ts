import type { AuditBodies } from "../config/schema.js";
import type { CompiledPolicy, CompiledRule } from "./compile.js";
import { raiseAuditLevel } from "./constraints.js";
import { candidateRules } from "./rule-index.js";
import type { Action, Decision, Effect, Facts } from "./types.js";

const PRECEDENCE: Readonly<Record<Effect, number>> = { ALLOW: 0, REQUIRE_APPROVAL: 1, DENY: 2 };

/**
 * Decides one action. Pure, and total over fact values: operators never coerce objects, so no value a
 * client can smuggle into the facts makes it throw. An exception from `facts.get` itself (a failed lazy
 * computation) propagates, so the caller refuses the call rather than deciding on missing facts.
 */
export function evaluatePolicy(compiled: CompiledPolicy, action: Action, facts: Facts): Decision {
  const index = compiled.indexes[action];
  const rules: readonly CompiledRule[] = index === undefined ? [] : candidateRules(index, facts);
  const matchedRules: CompiledRule[] = [];
  const dryRunRules: string[] = [];
  for (const rule of rules) {
    if (!rule.holds(facts)) continue;
    if (rule.dryRun) dryRunRules.push(rule.name);
    else matchedRules.push(rule);
  }
  if (matchedRules.length === 0) {
    return {
      effect: compiled.defaultEffect,
      rule: null,
      reason: `no rule matched; default_effect ${compiled.defaultEffect}`,
      matched: [],
      constraints: {},
      dry_run_rules: dryRunRules,
    };
  }

  let winner = matchedRules[0]!;
  let auditBodies: AuditBodies | undefined;
  for (const rule of matchedRules) {
    if (PRECEDENCE[rule.effect] > PRECEDENCE[winner.effect]) winner = rule;
    auditBodies = raiseAuditLevel(auditBodies, rule.auditBodies);
  }
  const constraints: Record<string, unknown> = {};
  for (const rule of matchedRules) {
    if (rule.effect === winner.effect) assignMissing(constraints, rule.constraints);
  }
  if (auditBodies !== undefined) constraints["audit_bodies"] = auditBodies;
  return {
    effect: winner.effect,
    rule: winner.name,
    reason: winner.reason,
    matched: matchedRules.map((rule) => rule.name),
    constraints,
    dry_run_rules: dryRunRules,
  };
}

/**
 * Combines the decisions of one request (the call's, then each tool's) by the same precedence: the
 * first decision of the winning effect names the rule and reason. Needs at least one decision.
 */
export function mergeDecisions(decisions: readonly Decision[]): Decision {
  const [first] = decisions;
  if (first === undefined) throw new RangeError("mergeDecisions needs at least one decision");
  let winner = first;
  let auditBodies: AuditBodies | undefined;
  for (const decision of decisions) {
    if (PRECEDENCE[decision.effect] > PRECEDENCE[winner.effect]) winner = decision;
    auditBodies = raiseAuditLevel(auditBodies, decision.constraints["audit_bodies"]);
  }
  const constraints: Record<string, unknown> = {};
  for (const decision of decisions) {
    if (decision.effect === winner.effect) assignMissing(constraints, decision.constraints);
  }
  if (auditBodies !== undefined) constraints["audit_bodies"] = auditBodies;
  return {
    effect: winner.effect,
    rule: winner.rule,
    reason: winner.reason,
    matched: unique(decisions.flatMap((decision) => decision.matched)),
    constraints,
    dry_run_rules: unique(decisions.flatMap((decision) => decision.dry_run_rules)),
  };
}

/** Earlier rules win a conflicting key, so config order expresses priority. */
function assignMissing(target: Record<string, unknown>, source: Readonly<Record<string, unknown>>): void {
  for (const key of Object.keys(source)) {
    // defineProperty, because a plain assignment of a `__proto__` key would replace the prototype.
    if (!Object.hasOwn(target, key)) {
      Object.defineProperty(target, key, { value: source[key], enumerable: true, writable: true, configurable: true });
    }
  }
}

function unique(names: readonly string[]): string[] {
  return [...new Set(names)];
}
