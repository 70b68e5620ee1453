import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { hashKey } from "../../src/auth/keys.js";
import { runCli } from "../../src/cli.js";
import { writeTempConfig } from "../helpers/index.js";

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, (l) => out.push(l), (l) => err.push(l));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const root = join(import.meta.dirname, "..", "..");

describe("gateway CLI", () => {
  it("check accepts the example config", async () => {
    const result = await run(["check", join(root, "config/gateway.yaml")]);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^ok: .*6 rules/);
  });

  it("check lists every error with its path and rule, and exits 1", async () => {
    const path = writeTempConfig(`
upstreams: { openai: { base_url: "http://127.0.0.1:1/v1" } }
models: { m: { upstream: nope } }
servr: {}
policies:
  rules:
    - { name: r1, effect: DENY, conditions: { model: { in: gpt-4o } } }
    - { name: r2, effect: DENY, conditions: { prompt_text: { matches: "(a+)+\\\\1" } } }
`);
    const result = await run(["check", path]);
    expect(result.code).toBe(1);
    expect(result.err).toContain("models.m.upstream: unknown upstream `nope`");
    expect(result.err).toContain("servr");
    expect(result.err).toContain("policies.rules[0].conditions.model.in (rule `r1`)");
    expect(result.err).toContain("policies.rules[1].conditions.prompt_text.matches (rule `r2`)");
  });

  it("check prints what is valid but never acts as warnings, and still exits 0", async () => {
    const path = writeTempConfig(`
upstreams: { openai: { base_url: "http://127.0.0.1:1/v1" } }
models: { m: { upstream: openai } }
policies:
  rules:
    - { name: typo, effect: REQUIRE_APPROVAL, conditions: { model: { eq: gpt4o } }, constraints: { approver_role: admn } }
`);
    const result = await run(["check", path]);
    expect(result.code).toBe(0);
    expect(result.out).toContain("warnings (valid, but most likely not meant)");
    expect(result.out).toContain("policies.rules[0].conditions.model (rule `typo`): names no served model (gpt4o)");
    expect(result.out).toContain("policies.rules[0].constraints.approver_role (rule `typo`): no approver has role `admn`");
  });

  it("check names an unset environment variable", async () => {
    const path = writeTempConfig(`
upstreams: { openai: { base_url: "http://127.0.0.1:1/v1", api_key: "\${SPARK_TEST_SURELY_UNSET_VAR}" } }
models: { m: { upstream: openai } }
`);
    const result = await run(["check", path]);
    expect(result.code).toBe(1);
    expect(result.err).toContain("upstreams.openai.api_key: environment variable `SPARK_TEST_SURELY_UNSET_VAR` is not set");
  });

  it("policy test passes the shipped cases and fails a wrong expectation", async () => {
    const passing = await run(["policy", "test", join(root, "config/policies.test.yaml")]);
    expect(passing.code).toBe(0);
    expect(passing.out).toMatch(/10 passed, 0 failed/);
    const casesPath = join(dirname(writeTempConfig("x: 1")), "cases.yaml");
    writeFileSync(
      casesPath,
      `config: ${join(root, "config/gateway.yaml")}
cases:
  - name: wrong on purpose
    key_id: alice-dev
    request: { model: gpt-4o, messages: [{ role: user, content: hi }] }
    expect: { effect: ALLOW }
`,
    );
    const failing = await run(["policy", "test", casesPath]);
    expect(failing.code).toBe(1);
    expect(failing.out).toContain("FAIL: wrong on purpose");
    expect(failing.out).toMatch(/0 passed, 1 failed/);
  });

  it("policy test fails a case whose request a live call would refuse before any rule, as evaluate answers it", async () => {
    const casesPath = join(dirname(writeTempConfig("x: 1")), "cases.yaml");
    writeFileSync(
      casesPath,
      `config: ${join(root, "config/gateway.yaml")}
cases:
  - name: not served
    key_id: alice-dev
    request: { model: nope, messages: [{ role: user, content: hi }] }
    expect: { effect: ALLOW }
  - name: malformed
    key_id: alice-dev
    request: { model: gpt-4o-mini, messages: [{ role: user, content: 5 }] }
    expect: { effect: ALLOW }
`,
    );
    const result = await run(["policy", "test", casesPath]);
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/FAIL: not served\n.*the model `nope` is not served/);
    expect(result.out).toMatch(/FAIL: malformed\n.*`request`: .*messages\[0\]\.content/);
    expect(result.out).toMatch(/0 passed, 2 failed/);
  });

  it("policy test checks any field of the decision and prints the decision", async () => {
    const casesPath = join(dirname(writeTempConfig("x: 1")), "cases.yaml");
    const deny = "{ effect: DENY, rule: high_cost_model_restriction, reason: Only admins can use expensive models, matched: [audit_all_operations, high_cost_model_restriction], dry_run_rules: [], constraints: {} }";
    writeFileSync(
      casesPath,
      `config: ${join(root, "config/gateway.yaml")}
cases:
  - name: every field
    key_id: alice-dev
    request: { model: gpt-4o, messages: [{ role: user, content: hi }] }
    expect: ${deny}
  - name: wrong reason
    key_id: alice-dev
    request: { model: gpt-4o, messages: [{ role: user, content: hi }] }
    expect: { effect: DENY, reason: something else }
  - name: wrong constraint
    key_id: alice-dev
    request: { model: gpt-4o, messages: [{ role: user, content: hi }] }
    expect: { effect: DENY, constraints: { approver_role: admin } }
`,
    );
    const result = await run(["policy", "test", casesPath]);
    expect(result.out).toContain("PASS: every field");
    expect(result.out).toMatch(/FAIL: wrong reason\n.*reason "Only admins can use expensive models", expected "something else"/);
    expect(result.out).toMatch(/FAIL: wrong constraint\n.*constraints\.approver_role missing, expected "admin"/);
    expect(result.out).toContain('decision: {"effect":"DENY","rule":"high_cost_model_restriction"');
    expect(result.code).toBe(1);
  });

  it("policy test decides as a live call: declared tools judged, a fresh key's usage at zero", async () => {
    const dir = dirname(writeTempConfig("x: 1"));
    const configPath = join(dir, "tools.yaml");
    writeFileSync(
      configPath,
      `upstreams: { openai: { base_url: "http://127.0.0.1:9/v1" } }
models: { gpt-4o-mini: { upstream: openai } }
keys:
  - { id: kc, key_hash: "sha256:${"a".repeat(64)}", subject: { user: carol, role: analyst } }
policies:
  rules:
    - { name: deny_shell_register, effect: DENY, actions: [tool.register], conditions: { tool: { eq: shell_command }, user_role: { not_in: [admin, developer] } } }
    - { name: spent_nothing, effect: DENY, conditions: { not: { daily_spend: { lte: 100 } } } }
    - { name: audit_all, effect: ALLOW, conditions: {} }
`,
    );
    const casesPath = join(dir, "tool-cases.yaml");
    writeFileSync(
      casesPath,
      `config: tools.yaml
cases:
  - name: a declared tool is judged
    key_id: kc
    request: { model: gpt-4o-mini, messages: [{ role: user, content: hi }], tools: [{ type: function, function: { name: shell_command } }] }
    expect: { effect: DENY, rule: deny_shell_register }
  - name: no tool, nothing spent
    key_id: kc
    request: { model: gpt-4o-mini, messages: [{ role: user, content: hi }] }
    expect: { effect: ALLOW, rule: audit_all }
  - name: spent, as the facts say
    key_id: kc
    request: { model: gpt-4o-mini, messages: [{ role: user, content: hi }] }
    facts: { daily_spend: 150 }
    expect: { effect: DENY, rule: spent_nothing }
`,
    );
    const result = await run(["policy", "test", casesPath]);
    expect(result.out).toMatch(/3 passed, 0 failed/);
    expect(result.code).toBe(0);
  });

  it("keys new prints a key whose hash matches", async () => {
    const result = await run(["keys", "new"]);
    const key = /key:\s+(\S+)/.exec(result.out)?.[1];
    const hash = /key_hash:\s+(\S+)/.exec(result.out)?.[1];
    expect(key).toMatch(/^sk-spark-/);
    expect(hash).toBe(hashKey(key!));
  });

  it("unknown commands print the usage and exit 2", async () => {
    const result = await run(["frobnicate"]);
    expect(result.code).toBe(2);
    expect(result.err).toContain("usage:");
  });

  it("a word more than a command takes, or an empty key to hash, is a usage error too", async () => {
    for (const args of [["check", "a.yaml", "b.yaml"], ["keys", "hash", ""], ["keys", "hash", "a", "b"], ["keys", "new", "x"], ["policy", "test"]]) {
      const result = await run(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.err).toContain("usage:");
    }
  });
});
