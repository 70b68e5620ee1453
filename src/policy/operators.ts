import { RE2JS } from "re2js";
import type { AttributeKind } from "./attributes.js";
import { PII_TYPES } from "../pii/types.js";
import { childPath, type IssueSink, quote, report } from "./errors.js";
import { ACTIONS } from "./types.js";

export const OPERATORS = ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "matches", "contains", "exists"] as const;
export type Operator = (typeof OPERATORS)[number];

/** A test of one attribute value; `undefined` stands for a missing attribute. */
export type ValueTest = (value: unknown) => boolean;

type Scalar = string | number | boolean;

export function isOperator(name: string): name is Operator {
  return (OPERATORS as readonly string[]).includes(name);
}

/**
 * Compiles `{ <op>: operand }` for an attribute of `kind`, or reports why it cannot be.
 * The negative operators (`ne`, `not_in`, `exists: false`) are the exact negation of their positive
 * twins, which is what makes them hold on a missing attribute and rules like `purpose: {not_in: [...]}`
 * fail closed.
 */
export function compileOperator(
  op: Operator,
  operand: unknown,
  kind: AttributeKind,
  attribute: string,
  path: string,
  sink: IssueSink,
): ValueTest | undefined {
  switch (op) {
    case "eq":
    case "ne": {
      if (kind === "list") {
        report(sink, path, `\`${attribute}\` is a list of strings, which never equals one value; use \`contains\` (or \`in\` / \`not_in\`)`);
        return undefined;
      }
      if (!checkScalar(operand, kind, attribute, op, path, sink)) return undefined;
      const test: ValueTest = (value) => value === operand;
      const read = numbersFromText(kind, test);
      return op === "eq" ? read : negate(read);
    }
    case "in":
    case "not_in": {
      if (!Array.isArray(operand)) {
        report(sink, path, `\`${op}\` takes a list, got ${quote(operand)}`);
        return undefined;
      }

      let valid = true;
      operand.forEach((item: unknown, index) => {
        if (!checkScalar(item, kind, attribute, op, childPath(path, index), sink)) valid = false;
      });
      if (!valid) return undefined;
      const test = numbersFromText(kind, memberTest(new Set<unknown>(operand)));
      return op === "in" ? test : negate(test);
    }
    case "gt":
    case "gte":
    case "lt":
    case "lte": {
      if (kind !== "number" && kind !== "free") {
        report(sink, path, `\`${op}\` compares numbers, but \`${attribute}\` is a ${describeKind(kind)}`);
        return undefined;
      }
      if (typeof operand !== "number" || !Number.isFinite(operand)) {
        report(sink, path, `\`${op}\` takes a number, got ${quote(operand)}`);
        return undefined;
      }
      if (!withinRange(operand, attribute, op, path, sink)) return undefined;
      return numbersFromText(kind, compareTest(op, operand));
    }
    case "matches": {
      if (typeof operand !== "string") {
        report(sink, path, `\`matches\` takes a pattern string, got ${quote(operand)}`);
        return undefined;
      }
      const regex = compileRegex(operand, path, sink);
      return regex === undefined ? undefined : matchTest(regex);
    }
    case "contains": {
      if (kind !== "string" && kind !== "list" && kind !== "free") {
        report(sink, path, `\`contains\` looks into text or lists, but \`${attribute}\` is a ${describeKind(kind)}`);
        return undefined;
      }
      if (!checkScalar(operand, kind, attribute, op, path, sink)) return undefined;
      return containsTest(operand as Scalar);
    }
    case "exists": {
      if (typeof operand !== "boolean") {
        report(sink, path, `\`exists\` takes true or false, got ${quote(operand)}`);
        return undefined;
      }
      const present = kind === "list" ? isNonEmpty : isPresent;
      return operand ? present : negate(present);
    }
  }
}

/**
 * The number a text is, as the languages agent frameworks run in read one: `"5000"`, `" +5000 "`,
 * `"05000"`, `"5_000"`, `"５０００"`, `"5e3"`, `"0x1388"`, `"Infinity"`; null for `"5000 USD"` or `""`.
 */
function textNumber(text: string): number | null {
  const plain = text.normalize("NFKC").trim().replace(/(?<=[0-9A-Fa-f])_(?=[0-9A-Fa-f])/g, "");
  if (plain === "") return null;
  const number = Number(plain);
  return Number.isNaN(number) ? null : number;
}

/**
 * For a tool argument (`free`), a number sent as text is also read as the number: agent frameworks
 * coerce `{"amount": "5000"}` to 5000 and run the call, so a rule on `amount > 1000` must see it.
 */
function numbersFromText(kind: AttributeKind, test: ValueTest): ValueTest {
  if (kind !== "free") return test;
  return (value) => {
    if (test(value)) return true;
    const number = typeof value === "string" ? textNumber(value) : null;
    return number !== null && test(number);
  };
}

const isPresent: ValueTest = (value) => value !== undefined;
/** A list attribute with no element (no tools declared, no PII found) does not exist. */
const isNonEmpty: ValueTest = (value) => value !== undefined && !(Array.isArray(value) && value.length === 0);

function negate(test: ValueTest): ValueTest {
  return (value) => !test(value);
}

/** An array-valued fact (`tools`, `pii_types`) is in the list when any of its elements is. */
function memberTest(members: ReadonlySet<unknown>): ValueTest {
  return (value) => {
    if (value === undefined) return false;
    if (Array.isArray(value)) return value.some((item) => members.has(item));
    return members.has(value);
  };
}

function compareTest(op: "gt" | "gte" | "lt" | "lte", bound: number): ValueTest {
  switch (op) {
    case "gt":
      return (value) => typeof value === "number" && value > bound;
    case "gte":
      return (value) => typeof value === "number" && value >= bound;
    case "lt":
      return (value) => typeof value === "number" && value < bound;
    case "lte":
      return (value) => typeof value === "number" && value <= bound;
  }
}

function containsTest(needle: Scalar): ValueTest {
  return (value) => {
    if (typeof value === "string") return typeof needle === "string" && value.includes(needle);
    if (Array.isArray(value)) return value.includes(needle);
    return false;
  };
}

function matchTest(regex: RE2JS): ValueTest {
  const testOne = (value: unknown): boolean => {
    if (typeof value === "string") return regex.test(value);
    // Objects are never stringified: their String() is meaningless and may even throw.
    if (typeof value === "number" || typeof value === "boolean") return regex.test(String(value));
    return false;
  };
  return (value) => (Array.isArray(value) ? value.some(testOne) : testOne(value));
}

function compileRegex(pattern: string, path: string, sink: IssueSink): RE2JS | undefined {
  try {
    return RE2JS.compile(pattern);
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^error parsing regexp: /, "") : String(error);
    report(sink, path, `pattern ${quote(pattern)} is not accepted by RE2: ${reason}`);
    return undefined;
  }
}

/** Checks that an operand could ever equal a value of the attribute, so typos like `weekday: {eq: "1"}` are caught. */
function checkScalar(
  operand: unknown,
  kind: AttributeKind,
  attribute: string,
  op: Operator,
  path: string,
  sink: IssueSink,
): boolean {
  const type = typeof operand;
  if (type !== "string" && type !== "number" && type !== "boolean") {
    report(sink, path, `\`${op}\` takes a string, number or boolean, got ${quote(operand)}`);
    return false;
  }
  const expected = kind === "list" ? "string" : kind;
  if (expected !== "free" && type !== expected) {
    report(sink, path, `\`${attribute}\` is a ${describeKind(kind)}, so ${quote(operand)} can never match`);
    return false;
  }
  // `contains` on a text is a substring test, so a part of a value may be meant.
  if (typeof operand === "string" && !(op === "contains" && kind !== "list")) return withinValues(operand, attribute, path, sink);
  return typeof operand !== "number" || withinRange(operand, attribute, op, path, sink);
}

/** The attributes whose values are a fixed set: an operand outside it is a typo (`data_classification: {eq: PII}`). */
const VALUES: Readonly<Record<string, readonly string[]>> = {
  action: ACTIONS,
  data_classification: ["pii", "none"],
  pii_types: PII_TYPES,
};

function withinValues(operand: string, attribute: string, path: string, sink: IssueSink): boolean {
  const values = VALUES[attribute];
  if (values === undefined || values.includes(operand)) return true;
  report(sink, path, `\`${attribute}\` is one of ${values.join(", ")}, so ${quote(operand)} can never be it`);
  return false;
}

/** The attributes with a fixed range of whole numbers. */
const RANGES: Readonly<Record<string, { min: number; max: number; what: string }>> = {
  hour: { min: 0, max: 23, what: "a whole hour from 0 to 23 (UTC)" },
  weekday: { min: 1, max: 7, what: "a whole day from 1 (Monday) to 7 (Sunday)" },
};

/** An operand that leaves a condition on a ranged attribute unable ever to hold is a config error, like a type mismatch. */
function withinRange(operand: number, attribute: string, op: Operator, path: string, sink: IssueSink): boolean {
  const range = RANGES[attribute];
  if (range === undefined || !neverHolds(op, operand, range)) return true;
  report(sink, path, `\`${attribute}\` is ${range.what}, so \`${op}: ${operand}\` can never match`);
  return false;
}

function neverHolds(op: Operator, operand: number, range: { min: number; max: number }): boolean {
  switch (op) {
    case "gt":
      return operand >= range.max;
    case "gte":
      return operand > range.max;
    case "lt":
      return operand <= range.min;
    case "lte":
      return operand < range.min;
    case "eq":
    case "in":
      return !Number.isInteger(operand) || operand < range.min || operand > range.max;
    default:
      return false;
  }
}

function describeKind(kind: AttributeKind): string {
  return kind === "list" ? "list of strings" : kind;
}
