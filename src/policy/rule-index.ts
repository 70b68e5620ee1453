import type { Action, Facts } from "./types.js";

/**
 * Attributes a rule can be filed under: known before evaluation, never lazy, compared exactly by
 * `eq` and `in`. A config of per-team (or per-user) rules then walks only the caller's own.
 */
const INDEXABLE = ["team", "user", "key_id", "model", "user_role", "purpose", "org"] as const;

/** The rules of one action split by the values of one attribute. */
export interface RuleIndex<R> {
  /** Null when no attribute splits the rules: `unguarded` is then every rule. */
  readonly attribute: string | null;
  /** For each value some rule names: the rules that may hold for it, in config order. */
  readonly byValue: ReadonlyMap<string, readonly R[]>;
  /** The rules that name no value of the attribute (they may hold whatever it is), in config order. */
  readonly unguarded: readonly R[];
  /** Every rule, for a value that is neither a string nor missing (a list can hold for `in`). */
  readonly all: readonly R[];
}

/**
 * The values of `attribute` a top-level condition map requires, or null when any value may hold.
 * Top-level conditions are a conjunction, so `eq` and `in` bound the attribute whatever else is there.
 */
export function guardOf(conditions: unknown, attribute: string): ReadonlySet<string> | null {
  if (!isMap(conditions)) return null;
  const operators = conditions[attribute];
  if (!isMap(operators)) return null;
  let allowed: Set<string> | null = null;
  const narrow = (values: unknown[]): void => {
    const strings = values.filter((v): v is string => typeof v === "string");
    allowed = new Set(allowed === null ? strings : strings.filter((v) => (allowed as Set<string>).has(v)));
  };
  if ("eq" in operators) narrow([operators.eq]);
  if ("in" in operators && Array.isArray(operators.in)) narrow(operators.in);
  return allowed;
}

/** Files rules under the attribute that guards the most of them; pure, done once per config. */
export function indexRules<R>(rules: readonly { rule: R; conditions: unknown }[]): RuleIndex<R> {
  let best: { attribute: string; guards: (ReadonlySet<string> | null)[]; guarded: number } | null = null;
  for (const attribute of INDEXABLE) {
    const guards = rules.map((r) => guardOf(r.conditions, attribute));
    const guarded = guards.filter((g) => g !== null).length;
    if (guarded > (best?.guarded ?? 1)) best = { attribute, guards, guarded };
  }
  const all = rules.map((r) => r.rule);
  if (best === null) return { attribute: null, byValue: new Map(), unguarded: all, all };
  const { attribute, guards } = best;
  const values = new Set<string>();
  for (const guard of guards) for (const value of guard ?? []) values.add(value);
  const byValue = new Map<string, R[]>();
  for (const value of values) {
    byValue.set(
      value,
      rules.filter((_, i) => guards[i] === null || guards[i]?.has(value) === true).map((r) => r.rule),
    );
  }
  return { attribute, byValue, unguarded: rules.filter((_, i) => guards[i] === null).map((r) => r.rule), all };
}

/** The rules that may hold for these facts: a superset of those that do, in config order. */
export function candidateRules<R>(index: RuleIndex<R>, facts: Facts): readonly R[] {
  if (index.attribute === null) return index.unguarded;
  const value = facts.get(index.attribute);
  if (typeof value === "string") return index.byValue.get(value) ?? index.unguarded;
  return value === undefined || value === null ? index.unguarded : index.all;
}

export type RuleIndexes<R> = Readonly<Record<Action, RuleIndex<R>>>;

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
