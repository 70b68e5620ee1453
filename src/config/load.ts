import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { compilePolicy, PolicyConfigError } from "../policy/compile.js";
import { type Config, configSchema, crossCheckSections, formsAt, policiesSchema, ruleSchema } from "./schema.js";
import { formatFieldPath } from "../util/field-path.js";
import { interpolate, maskVariables } from "./variables.js";
import { isRecord } from "../util/is-record.js";

export interface ConfigIssue {
  path: string;
  rule?: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: ConfigIssue[],
  ) {
    super(`invalid config \`${source}\`:\n${formatIssues(issues)}`);
    this.name = "ConfigError";
  }
}

export function formatIssues(issues: ConfigIssue[]): string {
  return issues.map((i) => `  - ${i.path || "(root)"}${i.rule ? ` (rule \`${i.rule}\`)` : ""}: ${i.message}`).join("\n");
}

function ruleNameAt(raw: unknown, path: ReadonlyArray<PropertyKey>): string | undefined {
  if (path[0] !== "policies" || path[1] !== "rules" || typeof path[2] !== "number") return undefined;
  const name = valueAt(raw, ["policies", "rules", path[2], "name"]);
  return typeof name === "string" ? name : undefined;
}

function zodIssues(raw: unknown, error: z.ZodError): ConfigIssue[] {
  return error.issues
    .flatMap((issue) => explain(issue, []))
    .flatMap((issue) => formsOwnIssues(raw, issue) ?? [issue])
    .map(({ path, message }) => issueAt(raw, path, message));
}

/**
 * Zod reports a wrong value inside one form of a section (`store: { redis: { url: 6379 } }`) as the
 * other form's unknown key (`store: Unrecognized key: "redis"`), since an unknown key does not stop
 * that form's check and a wrong type does: the form the key names is checked alone, and its own
 * problems are reported in place. Null where the issue is not such a key.
 */
function formsOwnIssues(raw: unknown, issue: { path: PropertyKey[]; message: string }): { path: PropertyKey[]; message: string }[] | null {
  const forms = formsAt(issue.path);
  if (forms === null) return null;
  const value = valueAt(raw, issue.path);
  const named = isRecord(value) ? Object.keys(value).filter((key) => Object.hasOwn(forms, key)) : [];
  if (named.length !== 1 || !issue.message.includes(`"${named[0]}"`)) return null;
  const checked = (forms[named[0] as string] as z.ZodType).safeParse(value);
  return checked.success ? null : checked.error.issues.flatMap((inner) => explain(inner, issue.path));
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let value = raw;
  for (const step of path) value = isRecord(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[step] : undefined;
  return value;
}

/** An issue found by its formatted path (a variable's) with the name of the rule it is in, where it is in one. */
function withRuleName(raw: unknown, issue: ConfigIssue): ConfigIssue {
  const index = /^policies\.rules\[(\d+)\]/.exec(issue.path)?.[1];
  const rule = index === undefined ? undefined : ruleNameAt(raw, ["policies", "rules", Number(index)]);
  return rule === undefined ? issue : { ...issue, rule };
}

function issueAt(raw: unknown, path: ReadonlyArray<PropertyKey>, message: string): ConfigIssue {
  const rule = ruleNameAt(raw, path);
  return { path: formatFieldPath(path), ...(rule === undefined ? {} : { rule }), message };
}

/**
 * The policies to compile: the section, or when it is broken, its rules alone, each broken rule cut
 * down to what can still be judged (its name, actions and conditions) at its own index, so the
 * conditions of every rule are checked in the same run as the shape of the others.
 */
function rulesToCompile(section: unknown) {
  const whole = policiesSchema.safeParse(section ?? {});
  if (whole.success || section === null || typeof section !== "object") return whole;
  const rules = (section as { rules?: unknown }).rules;
  return policiesSchema.safeParse({ rules: Array.isArray(rules) ? rules.map(salvagedRule) : rules });
}

/** Starts the stand-in name of a rule whose own is broken (a NUL, which no real name holds); its issues name no rule. */
const NAMELESS = "\u0000";

function salvagedRule(rule: unknown, index: number): unknown {
  if (ruleSchema.safeParse(rule).success || rule === null || typeof rule !== "object") return rule;
  const { name, effect, actions, conditions, constraints } = rule as Record<string, unknown>;
  return {
    name: typeof name === "string" && name !== "" ? name : `${NAMELESS}${index}`,
    effect: effect === "DENY" || effect === "REQUIRE_APPROVAL" ? effect : "ALLOW",
    conditions: isRecord(conditions) ? conditions : {},
    ...(Array.isArray(actions) && actions.every((action) => typeof action === "string") ? { actions } : {}),
    ...(isRecord(constraints) ? { constraints } : {}),
  };
}

/**
 * A union's "Invalid input" says nothing of what is wrong: report the problems of the alternative
 * that went deepest, with the fewest problems on a tie (the one the author meant: `store: { redis: …,
 * on_error: fail_sometimes }` is a Redis store with a bad `on_error`, not a mistyped memory store).
 */
function explain(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[]): { path: PropertyKey[]; message: string }[] {
  const path = [...prefix, ...issue.path];
  if (issue.code !== "invalid_union" || issue.errors.length === 0) return [{ path, message: issue.message }];
  const depth = (branch: readonly z.core.$ZodIssue[]): number => Math.max(...branch.map((i) => i.path.length + (i.code === "unrecognized_keys" ? 0 : 1)));
  // The form the value is written in is the one whose top fits it best: a form it is not written in
  // (`{ file: … }` against `redis_stream`'s) has keys it does not know there, or lacks the key that
  // names it, or is a word the value is not. That form's own problem, however deep, is the one to name.
  const misfit = (branch: readonly z.core.$ZodIssue[]): number =>
    branch.reduce((sum, i) => {
      if (i.path.length === 0 && i.code === "unrecognized_keys") return sum + i.keys.length;
      if (i.path.length === 0 && i.code === "invalid_value") return sum + 100;
      return sum + (i.path.length === 1 && i.code === "invalid_type" && i.message.endsWith("received undefined") ? 1 : 0);
    }, 0);
  const best = [...issue.errors].sort((a, b) => misfit(a) - misfit(b) || depth(b) - depth(a) || a.length - b.length)[0] ?? [];
  return best.flatMap((inner) => explain(inner, path));
}

/** Parses and validates a config text. Throws ConfigError listing every problem found. */
export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv): Config {
  const { masked, unmask, restore } = maskVariables(text);
  const doc = parseDocument(masked, { prettyErrors: true });
  const [syntax] = doc.errors;
  if (syntax !== undefined) {
    // The message without the quoted source lines that follow it: the line may hold a secret written in clear.
    const where = (syntax.message.split("\n")[0] ?? "").replace(/:$/, "");
    throw new ConfigError(source, [{ path: "", message: `not valid YAML: ${unmask(where)}` }]);
  }
  restore(doc);
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(source, [{ path: "", message: "expected a YAML mapping at the top level" }]);
  }
  const unset: ConfigIssue[] = [];
  const interpolated = interpolate(raw, env, [], unset);
  const issues: ConfigIssue[] = unset.map((issue) => withRuleName(interpolated, issue));
  const parsed = configSchema.safeParse(interpolated);
  if (!parsed.success) {
    issues.push(...zodIssues(interpolated, parsed.error));
    crossCheckSections(interpolated as Record<string, unknown>, (path, message) => issues.push(issueAt(interpolated, path, message)));
  }
  // Rule conditions are checked even when other sections are broken, so one run lists every error.
  const policies = rulesToCompile((interpolated as { policies?: unknown }).policies);
  if (policies.success) {
    try {
      compilePolicy(policies.data);
    } catch (error) {
      if (!(error instanceof PolicyConfigError)) throw error;
      issues.push(...error.issues.map(({ rule, ...issue }) => (rule === undefined || rule.startsWith(NAMELESS) ? issue : { ...issue, rule })));
    }
  }
  // The schema and the policy compiler both know some problems (a duplicate rule name): say each once.
  // A value left empty for a variable not set is checked only so the rest is: what that finds of it is not said.
  // A key left empty is found again at its path with the variable gone (`conditions.${NOPE}` → `conditions.`).
  const unsetAt = unset.flatMap((issue) => [issue.path, issue.path.replace(/\$\{[^}]*\}/g, "")]);
  const follows = (path: string): boolean => unsetAt.some((at) => path === at || path.startsWith(`${at}.`) || path.startsWith(`${at}[`));
  const said = issues.filter((issue, index) => index < unset.length || !follows(issue.path));
  if (issues.length > 0 || !parsed.success) throw new ConfigError(source, distinct(said));
  return parsed.data;
}

function distinct(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\n${issue.rule ?? ""}\n${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function readConfigFile(path: string, env: NodeJS.ProcessEnv): Config {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [{ path: "", message: `cannot read file: ${(error as Error).message}` }]);
  }
  return parseConfig(text, path, env);
}
