import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCaseFacts, buildEvaluationFacts, evaluateFacts } from "../../src/admin/policies.js";
import { parseConfig } from "../../src/config/load.js";
import type { RuleConfig } from "../../src/config/schema.js";
import { evaluatePolicy } from "../../src/policy/evaluate.js";
import type { Decision } from "../../src/policy/types.js";
import { buildRuntime } from "../../src/pipeline/runtime.js";
import { chat, expectError, type Harness, type ListBody, startHarness } from "./harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

const evaluate = (body: unknown) => h.admin<Decision>("POST", "/policies/evaluate", body);

describe("GET /admin/policies", () => {
  it("lists the rules in force and the default effect", async () => {
    const reply = await h.admin<ListBody<RuleConfig> & { default_effect: string }>("GET", "/policies");
    expect(reply.json.default_effect).toBe("ALLOW");
    expect(reply.json.data.map((rule) => rule.name)).toEqual([
      "o3_for_admins_only",
      "gpt4o_needs_security",
      "prod_deploys_need_approval",
      "big_spenders_stop",
    ]);
  });
});

describe("POST /admin/policies/evaluate", () => {
  it("returns the decision of a DENY rule for the key's subject, sending nothing upstream", async () => {
    const before = h.mock.requestCount;
    const reply = await evaluate({ key_id: "alice-dev", request: chat("o3") });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({
      effect: "DENY",
      rule: "o3_for_admins_only",
      reason: "Only admins can use o3",
      matched: ["o3_for_admins_only"],
      constraints: {},
      dry_run_rules: [],
    });
    expect(h.mock.requestCount).toBe(before);
  });

  it("gives REQUIRE_APPROVAL with its constraints, and ALLOW by default", async () => {
    expect((await evaluate({ key_id: "alice-dev", request: chat("gpt-4o") })).json).toMatchObject({
      effect: "REQUIRE_APPROVAL",
      rule: "gpt4o_needs_security",
      constraints: { approver_role: "security" },
    });
    expect((await evaluate({ key_id: "alice-dev", request: chat("gpt-4o-mini") })).json).toMatchObject({ effect: "ALLOW", rule: null });
  });

  it("answers a model that is not served as a live call would, 404 model_not_found", async () => {
    const reply = await evaluate({ key_id: "alice-dev", request: chat("gpt-9") });
    expectError(reply, 404, "model_not_found", "request.model");
    // A chat body to an embedding model: the live call's 404 too.
    expectError(await evaluate({ key_id: "alice-dev", request: chat("text-embedding-3-small") }), 404, "model_not_found", "request.model");
  });

  it("evaluates a tool call from facts, and facts override usage", async () => {
    const tool = await evaluate({
      key_id: "alice-dev",
      action: "tool.call",
      facts: { model: "gpt-4o-mini", tool: "deploy", tool_args: { environment: "production" } },
    });
    expect(tool.json).toMatchObject({ effect: "REQUIRE_APPROVAL", rule: "prod_deploys_need_approval", constraints: { approver_role: "admin" } });
    const staging = await evaluate({ key_id: "alice-dev", action: "tool.call", facts: { tool: "deploy", tool_args: { environment: "staging" } } });
    expect(staging.json.effect).toBe("ALLOW");
    const spender = await evaluate({ key_id: "alice-dev", request: chat("gpt-4o-mini"), facts: { daily_spend: 150 } });
    expect(spender.json).toMatchObject({ effect: "DENY", rule: "big_spenders_stop" });
  });

  it("refuses unknown keys, unknown attributes and empty cases", async () => {
    expectError(await evaluate({ key_id: "nobody", request: chat("o3") }), 404, "not_found");
    expectError(await evaluate({ key_id: "alice-dev", facts: { colour: "red" } }), 400, "invalid_body", "facts.colour");
    // A value of the wrong kind would hold for no rule: refused, not judged as if it were absent.
    for (const [name, value] of [["daily_spend", "lots"], ["stream", "yes"], ["pii_types", "email"], ["model", 4], ["hour", "3"]] as const) {
      expectError(await evaluate({ key_id: "alice-dev", request: chat("gpt-4o-mini"), facts: { [name]: value } }), 400, "invalid_body", `facts.${name}`);
    }
    expect((await evaluate({ key_id: "alice-dev", request: chat("gpt-4o-mini"), facts: { daily_spend: null, tool_args: { any: ["thing"] } } })).status).toBe(200);
    expectError(await evaluate({ key_id: "alice-dev" }), 400, "invalid_body", "request");
    expectError(await evaluate({ key_id: "alice-dev", action: "delete", request: chat("o3") }), 400, "invalid_body", "action");
    // A body the live call refuses as malformed is refused here too, not judged.
    expectError(await evaluate({ key_id: "alice-dev", request: { model: "gpt-4o-mini", messages: "x" } }), 400, "invalid_body", "request.messages");
  });
});

describe("buildEvaluationFacts (shared with `policy test`)", () => {
  const config = parseConfig(
    `
upstreams: { u: { base_url: "http://127.0.0.1:1/v1" } }
models:
  gpt-4o-mini: { upstream: u, input_per_1m: 0.15, output_per_1m: 0.60 }
  text-embedding-3-small: { upstream: u, kind: embedding, input_per_1m: 0.02 }
keys:
  - { id: k1, key_hash: "sha256:${"0".repeat(64)}", subject: { user: u1, role: developer, team: t1, purpose: support } }
policies:
  rules:
    - { name: no_pii, effect: DENY, conditions: { data_classification: { eq: pii } } }
    - { name: no_exec, effect: DENY, actions: [tool.register], conditions: { tool: { eq: execute_code } } }
`,
    "inline",
    {},
  );
  const runtime = buildRuntime(config, 0, null);
  const subject = { user: "bob", role: "developer", team: "research", purpose: null };

  it("derives the action from the body", () => {
    expect(buildEvaluationFacts(runtime, subject, chat("gpt-4o-mini"), undefined, undefined).get("action")).toBe("chat.completions");
    expect(buildEvaluationFacts(runtime, subject, { model: "text-embedding-3-small", input: "x" }, undefined, undefined).get("action")).toBe("embeddings");
    expect(buildEvaluationFacts(runtime, subject, { model: "gpt-4o-mini", input: "x" }, undefined, undefined).get("action")).toBe("responses");
    expect(buildEvaluationFacts(runtime, subject, undefined, "tool.call", { tool: "deploy" }).get("action")).toBe("tool.call");
    // An embeddings call is never a stream, whatever its body says, as the live call has it.
    expect(buildEvaluationFacts(runtime, subject, { model: "text-embedding-3-small", input: "x", stream: true }, undefined, undefined).get("stream")).toBe(false);
    expect(buildEvaluationFacts(runtime, subject, { ...chat("gpt-4o-mini"), stream: true }, undefined, undefined).get("stream")).toBe(true);
  });

  it("computes request facts lazily and leaves key_id missing for a bare subject", () => {
    const facts = buildEvaluationFacts(runtime, subject, chat("gpt-4o-mini", "mail me at bob@example.com"), undefined, undefined, Date.UTC(2025, 0, 6, 9));
    expect(facts.get("key_id")).toBeUndefined();
    expect(facts.get("user_role")).toBe("developer");
    expect(facts.get("prompt_text")).toContain("bob@example.com");
    expect(facts.get("pii_types")).toEqual(["email"]);
    expect(facts.get("estimated_cost")).toBeGreaterThan(0);
    expect(facts.get("input_tokens")).toBeGreaterThan(0);
    expect(facts.get("max_output_tokens")).toBe(16384);
    expect([facts.get("hour"), facts.get("weekday")]).toEqual([9, 1]);
    expect(evaluatePolicy(runtime.policy, "chat.completions", facts).rule).toBe("no_pii");
  });

  it("judges tool.register of a request without a named tool as the live call does: each declared tool", () => {
    const request = { ...chat("gpt-4o-mini"), tools: [{ type: "function", function: { name: "search" } }, { type: "function", function: { name: "execute_code" } }] };
    const facts = buildEvaluationFacts(runtime, subject, request, "tool.register", undefined);
    expect(evaluateFacts(runtime, runtime.policy, "tool.register", facts, request)).toMatchObject({ effect: "DENY", rule: "no_exec" });
    const named = buildEvaluationFacts(runtime, subject, request, "tool.register", { tool: "search" });
    expect(evaluateFacts(runtime, runtime.policy, "tool.register", named, request)).toMatchObject({ effect: "ALLOW", rule: null });
  });

  it("scans a prompt given as a fact, as a request's would be, unless its classification is given too", () => {
    const given = buildEvaluationFacts(runtime, subject, undefined, "chat.completions", { prompt_text: "mail a@b.example.com" });
    expect([given.get("data_classification"), given.get("pii_types")]).toEqual(["pii", ["email"]]);
    expect(evaluatePolicy(runtime.policy, "chat.completions", given).rule).toBe("no_pii");
    const overridden = buildEvaluationFacts(runtime, subject, undefined, "chat.completions", { prompt_text: "mail a@b.example.com", data_classification: "none" });
    expect(overridden.get("data_classification")).toBe("none");
  });

  it("keeps tool_args and tool_args_json consistent", () => {
    const fromObject = buildEvaluationFacts(runtime, subject, undefined, "tool.call", { tool: "deploy", tool_args: { env: "prod" } });
    expect(fromObject.get("tool_args_json")).toBe('{"env":"prod"}');
    const fromJson = buildEvaluationFacts(runtime, subject, undefined, "tool.call", { tool: "deploy", tool_args_json: '{"env":"prod"}' });
    expect(fromJson.get("tool_args")).toEqual({ env: "prod" });
    // Read as the pipeline reads a call's arguments: leniently, escapes written out plainly too.
    const escaped = String.raw`{"env":"\u0070rod",}`;
    const lenient = buildEvaluationFacts(runtime, subject, undefined, "tool.call", { tool: "deploy", tool_args_json: escaped });
    expect(lenient.get("tool_args")).toEqual({ env: "prod" });
    expect(lenient.get("tool_args_json")).toBe(`${escaped}\n{"env":"prod"}`);
  });

  it("builds a case from a config key or a subject, with only the config", () => {
    const byKey = buildCaseFacts({ config }, { key_id: "k1", request: chat("gpt-4o-mini") });
    expect([byKey.get("key_id"), byKey.get("purpose"), byKey.get("team")]).toEqual(["k1", "support", "t1"]);
    expect(() => buildCaseFacts({ config }, { key_id: "nope", request: chat("gpt-4o-mini") })).toThrow(/nope/);
  });
});
