import type { RuleConfig } from "../config/schema.js";
import { resolveAttribute } from "./attributes.js";
import { compileConditions } from "./conditions.js";

type Conditions = Record<string, unknown>;

/** Facts no call action has: a rule on them is judged for a listing as on a missing attribute. */
const TOOL_FACTS: ReadonlySet<string> = new Set(["tool", "tool_args", "tool_args_json"]);

const NOTHING = { get: (): undefined => undefined };

/**
 * The rules a model listing is judged by. A listing knows the subject's facts (`known`) and none of
 * what a call carries (its prompt, stream, cost, usage so far): a DENY is kept as the part of its
 * conditions that holds whatever a call carries (it hides a model only where every call to it is
 * denied), an ALLOW or REQUIRE_APPROVAL as the part that may hold for some call (it spares a model
 * wherever some call may be allowed). A rule left with nothing that can hold is dropped.
 */
export function listingRules(rules: readonly RuleConfig[], known: ReadonlySet<string>): RuleConfig[] {
  const out: RuleConfig[] = [];
  for (const rule of rules) {
    const conditions = partHolding(rule.conditions, known, rule.effect === "DENY" ? "certain" : "possible");
    if (conditions !== null) out.push({ ...rule, conditions });
  }
  return out;
}

/** Where conditions must hold for a listing: for every call (`certain`), or for some call (`possible`). */
type Reading = "certain" | "possible";

/** A `not` turns one reading into the other: `not X` holds for every call where X may hold for none. */
const NEGATED: Readonly<Record<Reading, Reading>> = { certain: "possible", possible: "certain" };

/** The part of `map` a listing can judge, read as `reading` says (null: it holds for no listing). */
function partHolding(map: unknown, known: ReadonlySet<string>, reading: Reading): Conditions | null {
  if (!isMap(map)) return null;
  const out: Conditions = {};
  for (const [key, value] of Object.entries(map)) {
    if (key === "all_of" || key === "any_of") {
      const branches = Array.isArray(value) ? value.map((branch) => partHolding(branch, known, reading)) : [];
      const kept = branches.filter((branch) => branch !== null);
      if (key === "all_of" ? kept.length < branches.length : kept.length === 0) return null;
      // A branch that always holds makes the whole `any_of` one that does.
      if (key === "any_of" && kept.some((branch) => Object.keys(branch).length === 0)) continue;
      out[key] = kept;
    } else if (key === "not") {
      const inner = partHolding(value, known, NEGATED[reading]);
      if (inner === null) continue;
      if (Object.keys(inner).length === 0) return null;
      out.not = inner;
    } else {
      // Only a call carries the fact: for every call it cannot be counted on, for some call it may hold.
      const judged = onListing(key, value, known);
      if (judged === false || (judged === "unknown" && reading === "certain")) return null;
      if (judged === "kept") out[key] = value;
    }
  }
  return out;
}

/**
 * An attribute's condition for a listing: kept as it is where the listing has the fact, decided where
 * no call has it (a tool's), unknown where only a call carries it.
 */
function onListing(name: string, operators: unknown, known: ReadonlySet<string>): "kept" | "unknown" | boolean {
  const attribute = resolveAttribute(name);
  if (typeof attribute === "string" || known.has(attribute.fact)) return "kept";
  if (!TOOL_FACTS.has(attribute.fact)) return "unknown";
  return compileConditions({ [name]: operators }, "", { rule: undefined, issues: [] }, new Set())(NOTHING);
}

function isMap(value: unknown): value is Conditions {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
