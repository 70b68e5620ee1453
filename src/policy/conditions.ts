import { resolveAttribute } from "./attributes.js";
import { childPath, type IssueSink, quote, report } from "./errors.js";
import { compileOperator, isOperator, OPERATORS, type ValueTest } from "./operators.js";
import type { Facts } from "./types.js";

/** A compiled condition map: true when every condition in it holds for the facts. */
export type Predicate = (facts: Facts) => boolean;

const COMBINATORS = ["any_of", "all_of", "not"] as const;

const always: Predicate = () => true;
const never: Predicate = () => false;

/**
 * Compiles a `conditions` map (or a nested one under a combinator). Reports every problem to `sink`
 * and adds each referenced fact name to `attributes`; the returned predicate is only meaningful when
 * no issue was reported.
 */
export function compileConditions(
  conditions: unknown,
  path: string,
  sink: IssueSink,
  attributes: Set<string>,
): Predicate {
  if (!isPlainMap(conditions)) {
    report(sink, path, `expected a map of conditions, got ${quote(conditions)}`);
    return never;
  }
  const parts: Predicate[] = [];
  for (const [key, value] of Object.entries(conditions)) {
    const keyPath = childPath(path, key);
    switch (key) {
      case "any_of":
      case "all_of": {
        const branches = compileBranches(key, value, keyPath, sink, attributes);
        if (branches !== undefined) parts.push(key === "any_of" ? anyOf(branches) : allOf(branches));
        break;
      }
      case "not": {
        const inner = compileConditions(value, keyPath, sink, attributes);
        parts.push((facts) => !inner(facts));
        break;
      }
      default: {
        const predicate = compileAttribute(key, value, keyPath, sink, attributes);
        if (predicate !== undefined) parts.push(predicate);
      }
    }
  }
  return allOf(parts);
}

function compileBranches(
  combinator: "any_of" | "all_of",
  value: unknown,
  path: string,
  sink: IssueSink,
  attributes: Set<string>,
): Predicate[] | undefined {
  if (!Array.isArray(value)) {
    report(sink, path, `\`${combinator}\` takes a list of condition maps, got ${quote(value)}`);
    return undefined;
  }
  // An empty any_of could never hold, which is certainly not what its author meant.
  if (combinator === "any_of" && value.length === 0) {
    report(sink, path, "`any_of` needs at least one condition map");
    return undefined;
  }
  return value.map((branch: unknown, index) => compileConditions(branch, childPath(path, index), sink, attributes));
}

function compileAttribute(
  name: string,
  operators: unknown,
  path: string,
  sink: IssueSink,
  attributes: Set<string>,
): Predicate | undefined {
  const attribute = resolveAttribute(name);
  if (typeof attribute === "string") {
    const squashed = squash(name);
    const combinator = COMBINATORS.find((candidate) => squash(candidate) === squashed);
    report(sink, path, combinator === undefined ? attribute : `${attribute}; did you mean \`${combinator}\`?`);
    return undefined;
  }
  attributes.add(attribute.fact);
  if (!isPlainMap(operators) || Object.keys(operators).length === 0) {
    report(sink, path, `expected a map of operators such as \`{ eq: ... }\`, got ${quote(operators)}`);
    return undefined;
  }
  const tests: ValueTest[] = [];
  for (const [op, operand] of Object.entries(operators)) {
    const opPath = childPath(path, op);
    if (!isOperator(op)) {
      report(sink, opPath, `unknown operator \`${op}\`; expected one of ${OPERATORS.join(", ")}`);
      continue;
    }
    const test = compileOperator(op, operand, attribute.kind, name, opPath, sink);
    if (test !== undefined) tests.push(test);
  }
  const { read } = attribute;
  const [first, ...rest] = tests;
  if (first === undefined) return undefined;
  if (rest.length === 0) return (facts) => first(read(facts));
  return (facts) => {
    const value = read(facts);
    return tests.every((test) => test(value));
  };
}

/** Specialised for the common small sizes so evaluation avoids a loop and closure per call. */
function allOf(parts: readonly Predicate[]): Predicate {
  const [a, b, ...rest] = parts;
  if (a === undefined) return always;
  if (b === undefined) return a;
  if (rest.length === 0) return (facts) => a(facts) && b(facts);
  return (facts) => {
    for (const part of parts) if (!part(facts)) return false;
    return true;
  };
}

function anyOf(parts: readonly Predicate[]): Predicate {
  return (facts) => {
    for (const part of parts) if (part(facts)) return true;
    return false;
  };
}

function squash(name: string): string {
  return name.toLowerCase().replaceAll("_", "");
}

function isPlainMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
