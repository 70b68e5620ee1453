import { z } from "zod";
import { subjectSchema } from "../config/schema.js";
import { isAction } from "./compile.js";
import { ACTIONS } from "./types.js";
import type { PolicyIssue } from "./errors.js";
import type { Action, Decision, Facts } from "./types.js";
import { formatFieldPath } from "../util/field-path.js";

const effectSchema = z.enum(["ALLOW", "DENY", "REQUIRE_APPROVAL"]);

/** Any field of the decision; `matched` and `dry_run_rules` compare as sets, `constraints` as a subset. */
export const expectSchema = z.strictObject({
  effect: effectSchema,
  /** A rule name, or null to assert that `default_effect` decided. */
  rule: z.string().min(1).nullable().optional(),
  reason: z.string().optional(),
  matched: z.array(z.string()).optional(),
  constraints: z.record(z.string(), z.unknown()).optional(),
  dry_run_rules: z.array(z.string()).optional(),
});

export const policyCaseSchema = z
  .strictObject({
    name: z.string().min(1),
    key_id: z.string().min(1).optional(),
    subject: subjectSchema.optional(),
    action: z.enum(ACTIONS).optional(),
    request: z.record(z.string(), z.unknown()).optional(),
    facts: z.record(z.string(), z.unknown()).optional(),
    expect: expectSchema,
  })
  .superRefine((testCase, ctx) => {
    if ((testCase.key_id === undefined) === (testCase.subject === undefined)) {
      ctx.addIssue({ code: "custom", path: ["key_id"], message: "give exactly one of `key_id` or `subject`" });
    }
    if (testCase.request === undefined && testCase.facts === undefined) {
      ctx.addIssue({ code: "custom", path: ["request"], message: "give `request`, `facts` or both" });
    }
  });

/** The `policy test` cases file of CONTRACT.md §2; `config` is relative to the cases file. */
export const policyCasesFileSchema = z.strictObject({
  config: z.string().min(1),
  cases: z.array(policyCaseSchema).min(1),
});

export type PolicyCase = z.infer<typeof policyCaseSchema>;
export type PolicyCasesFile = z.infer<typeof policyCasesFileSchema>;
export type CaseExpectation = z.infer<typeof expectSchema>;

export interface CaseResult {
  name: string;
  pass: boolean;
  message: string;
  /** Null when the case could not be evaluated (its facts could not be built). */
  decision: Decision | null;
}

/** Thrown by `parsePolicyCases` with every problem of the file, paths like `cases[1].expect.effect`. */
export class PolicyCasesError extends Error {
  readonly issues: readonly PolicyIssue[];

  constructor(issues: readonly PolicyIssue[]) {
    super(`invalid policy cases file:\n${issues.map((issue) => `  ${issue.path}: ${issue.message}`).join("\n")}`);
    this.name = "PolicyCasesError";
    this.issues = issues;
  }
}

/** Validates an already-parsed YAML document as a cases file. */
export function parsePolicyCases(document: unknown): PolicyCasesFile {
  const result = policyCasesFileSchema.safeParse(document);
  if (result.success) return result.data;
  throw new PolicyCasesError(
    result.error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
  );
}

/**
 * Runs each case independently: one that cannot be built fails alone. `buildFacts` is the pipeline's
 * facts builder, given the case's subject and request; `decide` decides as the pipeline does (a
 * call's declared tools included). A case without `action` takes the `action` fact its builder
 * derived from the request.
 */
export function runPolicyCases<F extends Facts>(
  cases: readonly PolicyCase[],
  buildFacts: (testCase: PolicyCase) => F,
  decide: (action: Action, facts: F, testCase: PolicyCase) => Decision,
): CaseResult[] {
  return cases.map((testCase) => {
    let facts: F;
    try {
      facts = buildFacts(testCase);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { name: testCase.name, pass: false, message: `cannot build facts: ${reason}`, decision: null };
    }
    const action = testCase.action ?? facts.get("action");
    if (!isAction(action)) {
      return {
        name: testCase.name,
        pass: false,
        message: "cannot tell the action from the request; set `action`",
        decision: null,
      };
    }
    const decision = decide(action, facts, testCase);
    return { name: testCase.name, ...checkCase(decision, testCase.expect), decision };
  });
}

/** Compares a decision with a case's expectation; the message reads well whether it passes or not. */
export function checkCase(decision: Decision, expect: CaseExpectation): { pass: boolean; message: string } {
  const got = describeDecision(decision);
  const effectOk = decision.effect === expect.effect;
  const ruleOk = expect.rule === undefined || expect.rule === decision.rule;
  if (!effectOk || !ruleOk) {
    const wanted =
      expect.rule === undefined ? expect.effect : `${expect.effect} by ${expect.rule === null ? "default_effect" : `\`${expect.rule}\``}`;
    return { pass: false, message: `expected ${wanted}, got ${got}` };
  }
  const mismatches: string[] = [];
  if (expect.reason !== undefined && expect.reason !== decision.reason) mismatches.push(`reason ${JSON.stringify(decision.reason)}, expected ${JSON.stringify(expect.reason)}`);
  for (const field of ["matched", "dry_run_rules"] as const) {
    const wanted = expect[field];
    if (wanted !== undefined && !sameNames(wanted, decision[field])) mismatches.push(`${field} ${JSON.stringify(decision[field])}, expected ${JSON.stringify(wanted)}`);
  }
  for (const [key, value] of Object.entries(expect.constraints ?? {})) {
    const actual = Object.hasOwn(decision.constraints, key) ? decision.constraints[key] : undefined;
    if (JSON.stringify(actual) !== JSON.stringify(value)) mismatches.push(`constraints.${key} ${JSON.stringify(actual) ?? "missing"}, expected ${JSON.stringify(value)}`);
  }
  return mismatches.length === 0 ? { pass: true, message: got } : { pass: false, message: `${got}, but ${mismatches.join("; ")}` };
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((name) => set.has(name));
}

function describeDecision(decision: Decision): string {
  return decision.rule === null
    ? `${decision.effect} by default_effect`
    : `${decision.effect} by \`${decision.rule}\` (${decision.reason})`;
}

function formatPath(path: readonly PropertyKey[]): string {
  return formatFieldPath(path) || "(root)";
}
