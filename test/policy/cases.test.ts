import { describe, expect, it } from "vitest";
import { checkCase, PolicyCasesError, parsePolicyCases, runPolicyCases } from "../../src/policy/cases.js";
import { evaluatePolicy } from "../../src/policy/evaluate.js";
import type { Decision } from "../../src/policy/types.js";
import { compileRules, factsOf } from "./helpers.js";

const contractExample = {
  config: "../config/gateway.yaml",
  cases: [
    {
      name: "a developer cannot use gpt-4o",
      key_id: "alice-dev",
      request: { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] },
      expect: { effect: "DENY", rule: "high_cost_model_restriction" },
    },
    {
      name: "a deploy to prod needs approval",
      subject: { user: "bob", role: "developer", team: "research" },
      action: "tool.call",
      facts: { model: "gpt-4o-mini", tool: "deploy", tool_args: { environment: "prod" } },
      expect: { effect: "REQUIRE_APPROVAL" },
    },
  ],
};

function issuesOf(document: unknown): readonly { path: string; message: string }[] {
  try {
    parsePolicyCases(document);
  } catch (error) {
    if (error instanceof PolicyCasesError) return error.issues;
    throw error;
  }
  throw new Error("expected a PolicyCasesError");
}

describe("parsePolicyCases", () => {
  it("parses the contract's example, filling subject defaults", () => {
    const file = parsePolicyCases(contractExample);
    expect(file.config).toBe("../config/gateway.yaml");
    expect(file.cases[1]?.subject).toEqual({ user: "bob", role: "developer", team: "research", purpose: null });
    expect(file.cases[1]?.action).toBe("tool.call");
  });

  it.each([
    ["an unknown field", { config: "c", cases: [{ ...contractExample.cases[0], extra: 1 }] }, "cases[0]"],
    ["both key_id and subject", { config: "c", cases: [{ ...contractExample.cases[1], key_id: "k" }] }, "cases[0].key_id"],
    ["neither request nor facts", { config: "c", cases: [{ name: "n", key_id: "k", expect: { effect: "ALLOW" } }] }, "cases[0].request"],
    ["an unknown effect", { config: "c", cases: [{ ...contractExample.cases[0], expect: { effect: "PERMIT" } }] }, "cases[0].expect.effect"],
    ["an unknown action", { config: "c", cases: [{ ...contractExample.cases[1], action: "agent.run" }] }, "cases[0].action"],
    ["no config", { cases: contractExample.cases }, "config"],
    ["no cases", { config: "c", cases: [] }, "cases"],
  ])("rejects %s", (_name, document, path) => {
    expect(issuesOf(document).map((issue) => issue.path)).toContain(path);
  });
});

const deny: Decision = {
  effect: "DENY",
  rule: "no_gpt4o",
  reason: "gpt-4o is expensive",
  matched: ["no_gpt4o"],
  constraints: {},
  dry_run_rules: [],
};
const byDefault: Decision = { ...deny, effect: "ALLOW", rule: null, reason: "no rule matched", matched: [] };

describe("checkCase", () => {
  it.each([
    ["effect only", deny, { effect: "DENY" }, true, "DENY by `no_gpt4o` (gpt-4o is expensive)"],
    ["effect and rule", deny, { effect: "DENY", rule: "no_gpt4o" }, true, "DENY by `no_gpt4o` (gpt-4o is expensive)"],
    ["wrong effect", deny, { effect: "ALLOW" }, false, "expected ALLOW, got DENY by `no_gpt4o` (gpt-4o is expensive)"],
    ["wrong rule", deny, { effect: "DENY", rule: "other" }, false, "expected DENY by `other`, got DENY by `no_gpt4o`"],
    ["default expected", byDefault, { effect: "ALLOW", rule: null }, true, "ALLOW by default_effect"],
    ["default expected, rule decided", deny, { effect: "DENY", rule: null }, false, "expected DENY by default_effect, got DENY by"],
  ] as const)("%s", (_name, decision, expectation, pass, message) => {
    const result = checkCase(decision, expectation);
    expect(result.pass).toBe(pass);
    expect(result.message).toContain(message);
  });
});

describe("runPolicyCases", () => {
  const compiled = compileRules([
    { name: "no_gpt4o", effect: "DENY", conditions: { model: { eq: "gpt-4o" } } },
    { name: "deploy_approval", effect: "REQUIRE_APPROVAL", actions: ["tool.call"], conditions: { tool: { eq: "deploy" } } },
  ]);

  it("runs each case with the facts its builder gives, taking the action from the facts when unset", () => {
    const { cases } = parsePolicyCases({
      config: "c",
      cases: [
        ...contractExample.cases,
        { name: "unknown key", key_id: "ghost", request: { model: "x" }, expect: { effect: "ALLOW" } },
        { name: "no action", subject: { user: "u" }, facts: { model: "gpt-4o" }, expect: { effect: "DENY" } },
      ],
    });
    const results = runPolicyCases(
      cases,
      (testCase) => {
        if (testCase.key_id === "ghost") throw new Error("unknown key `ghost`");
        const values: Record<string, unknown> = { ...testCase.request, ...testCase.facts };
        if (testCase.request?.["messages"] !== undefined) values["action"] = "chat.completions";
        return factsOf(values);
      },
      (action, facts) => evaluatePolicy(compiled, action, facts),
    );
    expect(results.map(({ name, pass, message }) => ({ name, pass, message }))).toEqual([
      { name: "a developer cannot use gpt-4o", pass: false, message: "expected DENY by `high_cost_model_restriction`, got DENY by `no_gpt4o` (matched rule `no_gpt4o`)" },
      { name: "a deploy to prod needs approval", pass: true, message: "REQUIRE_APPROVAL by `deploy_approval` (matched rule `deploy_approval`)" },
      { name: "unknown key", pass: false, message: "cannot build facts: unknown key `ghost`" },
      { name: "no action", pass: false, message: "cannot tell the action from the request; set `action`" },
    ]);
    expect(results[1]?.decision?.matched).toEqual(["deploy_approval"]);
    expect(results[2]?.decision).toBeNull();
  });
});
