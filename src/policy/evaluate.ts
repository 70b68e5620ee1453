import type { AuditBodies } from "../config/schema.js";
import type { CompiledPolicy, CompiledRule, RankedRule } from "./compile.js";
import { raiseAuditLevel } from "./constraints.js";
import { candidateRules } from "./rule-index.js";
import type { Action, Decision, Effect, Facts } from "./types.js";

const PRECEDENCE: Readonly<Record<Effect, number>> = { ALLOW: 0, REQUIRE_APPROVAL: 1, DENY: 2 };

/** Shared by every decision without constraints or rule names: an open stream keeps its decisions until it ends. */
const NO_CONSTRAINTS: Readonly<Record<string, unknown>> = Object.freeze({});
const NO_RULES: readonly string[] = Object.freeze([]);
const NO_RULE_TABLE: ReadonlyMap<string, RankedRule> = new Map();
const DEFAULT_REASON: Readonly<Record<Effect, string>> = {
  ALLOW: "no rule matched; default_effect ALLOW",
  DENY: "no rule matched; default_effect DENY",
  REQUIRE_APPROVAL: "no rule matched; default_effect REQUIRE_APPROVAL",
};

/** What any action no rule names decides under `default_effect: ALLOW` (see `CompiledPolicy.governs`). */
export const UNGOVERNED: Decision = Object.freeze({
  effect: "ALLOW",
  rule: null,
  reason: DEFAULT_REASON.ALLOW,
  matched: NO_RULES,
  constraints: NO_CONSTRAINTS,
  dry_run_rules: NO_RULES,
});

/**
 * Decides one action. Pure, and total over fact values: operators never coerce objects, so no value a
 * client can smuggle into the facts makes it throw. An exception from `facts.get` itself (a failed lazy
 * computation) propagates, so the caller refuses the call rather than deciding on missing facts.
 */
export function evaluatePolicy(compiled: CompiledPolicy, action: Action, facts: Facts): Decision {
  const index = compiled.indexes[action];
  const rules: readonly CompiledRule[] = index === undefined ? [] : candidateRules(index, facts);
  const matchedRules: CompiledRule[] = [];
  let dryRunRules: string[] | null = null;
  for (const rule of rules) {
    if (!rule.holds(facts)) continue;
    if (!rule.dryRun) matchedRules.push(rule);
    else if (dryRunRules === null) dryRunRules = [rule.name];
    else dryRunRules.push(rule.name);
  }
  if (matchedRules.length === 0) {
    return {
      effect: compiled.defaultEffect,
      rule: null,
      reason: DEFAULT_REASON[compiled.defaultEffect],
      matched: NO_RULES,
      constraints: NO_CONSTRAINTS,
      dry_run_rules: dryRunRules ?? NO_RULES,
    };
  }

  let winner = matchedRules[0]!;
  let auditBodies: AuditBodies | undefined;
  for (const rule of matchedRules) {
    if (PRECEDENCE[rule.effect] > PRECEDENCE[winner.effect]) winner = rule;
    auditBodies = raiseAuditLevel(auditBodies, rule.auditBodies);
  }
  return {
    effect: winner.effect,
    rule: winner.name,
    reason: winner.reason,
    matched: matchedRules.map((rule) => rule.name),
    constraints: combineConstraints(matchedRules, winner.effect, auditBodies),
    dry_run_rules: dryRunRules ?? NO_RULES,
  };
}

/**
 * Combines the decisions of one request (the call's, then each tool's) by the same precedence, as
 * one evaluation would: of the winning effect, the rule that comes first in config order
 * (`rules`) is named (a named rule before `default_effect`, else the first in the list), the
 * constraints of its matched rules are merged in config order across the decisions (the earlier
 * rule wins a conflicting key), and the matched rules are listed in config order. A decision whose
 * effect is not its rule's (a held answer's, a stripped tool's) brings its own constraints, ranked
 * by its rule. Needs at least one decision.
 */
export function mergeDecisions(decisions: readonly Decision[], rules: ReadonlyMap<string, RankedRule> = NO_RULE_TABLE): Decision {
  const [first] = decisions;
  if (first === undefined) throw new RangeError("mergeDecisions needs at least one decision");
  const nameRank = (name: string): number => rules.get(name)?.order ?? Number.MAX_SAFE_INTEGER;
  const rank = (decision: Decision): number => (decision.rule === null ? Number.POSITIVE_INFINITY : nameRank(decision.rule));
  let winner = first;
  let auditBodies: AuditBodies | undefined;
  for (const decision of decisions) {
    const higher = PRECEDENCE[decision.effect] > PRECEDENCE[winner.effect];
    if (higher || (decision.effect === winner.effect && rank(decision) < rank(winner))) winner = decision;
    auditBodies = raiseAuditLevel(auditBodies, decision.constraints["audit_bodies"]);
  }
  const matched = inOrder(unique(decisions.flatMap((decision) => decision.matched)), nameRank);
  return {
    effect: winner.effect,
    rule: winner.rule,
    // default_effect decided, though rules of other effects matched (a stripped tool's DENY, say): "no rule matched" would be untrue.
    reason: winner.rule === null && matched.length > 0 && isDefaultReason(winner.reason) ? `no ALLOW rule matched; default_effect ${winner.effect}` : winner.reason,
    matched,
    constraints: combineConstraints(constraintSources(decisions, winner.effect, rules, rank), winner.effect, auditBodies),
    dry_run_rules: inOrder(unique(decisions.flatMap((decision) => decision.dry_run_rules)), nameRank),
  };
}

/**
 * What the winning effect's constraints are merged from, in config order: the matched rules of that
 * effect of each decision its own rule made, and each other decision of that effect as a whole.
 */
function constraintSources(
  decisions: readonly Decision[],
  effect: Effect,
  rules: ReadonlyMap<string, RankedRule>,
  rank: (decision: Decision) => number,
): readonly { effect: Effect; constraints: Readonly<Record<string, unknown>>; order: number }[] {
  const sources: { effect: Effect; constraints: Readonly<Record<string, unknown>>; order: number }[] = [];
  const taken = new Set<string>();
  for (const decision of decisions) {
    if (decision.effect !== effect) continue;
    if (decision.rule === null || rules.get(decision.rule)?.effect !== effect) {
      sources.push({ effect, constraints: decision.constraints, order: rank(decision) });
      continue;
    }
    for (const name of decision.matched) {
      const rule = rules.get(name);
      if (rule === undefined || rule.effect !== effect || taken.has(name)) continue;
      taken.add(name);
      sources.push(rule);
    }
  }
  // Stable: sources of equal rank keep the call's first, then the tools' in order.
  return inOrder(sources, (source) => source.order);
}

/** The reason `evaluatePolicy` gives a decision no rule made (not one made for a stripped tool). */
function isDefaultReason(reason: string): boolean {
  return reason.startsWith("no rule matched;");
}

/** `items` sorted by `rank` (stably), the list itself where it is in order already, as it mostly is. */
function inOrder<T>(items: readonly T[], rank: (item: T) => number): readonly T[] {
  for (let i = 1; i < items.length; i++) {
    if (rank(items[i] as T) < rank(items[i - 1] as T)) return [...items].sort((a, b) => rank(a) - rank(b));
  }
  return items;
}

/** The constraints of the winning effect's rules (or decisions), in order, and the highest audit level of all. */
function combineConstraints(
  sources: readonly { effect: Effect; constraints: Readonly<Record<string, unknown>> }[],
  effect: Effect,
  auditBodies: AuditBodies | undefined,
): Readonly<Record<string, unknown>> {
  let constraints: Record<string, unknown> | null = null;
  let hardDeny = false;
  for (const source of sources) {
    if (source.effect !== effect) continue;
    if (source.constraints.on_deny !== "strip") hardDeny = true;
    if (isEmpty(source.constraints)) continue;
    constraints ??= {};
    assignMissing(constraints, source.constraints);
  }
  // A tool is stripped only when every DENY rule that matched it says so: one plain DENY refuses.
  if (effect === "DENY" && hardDeny && constraints?.on_deny === "strip") delete constraints.on_deny;
  if (auditBodies === undefined) return constraints ?? NO_CONSTRAINTS;
  constraints ??= {};
  constraints["audit_bodies"] = auditBodies;
  return constraints;
}

function isEmpty(record: Readonly<Record<string, unknown>>): boolean {
  for (const _ in record) return false;
  return true;
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

function unique(names: readonly string[]): readonly string[] {
  return names.length === 0 ? NO_RULES : [...new Set(names)];
}
