import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config/load.js";
import { interpolate } from "../../src/config/variables.js";

const base = `
upstreams: { openai: { base_url: "http://127.0.0.1:9/v1", api_key: "\${UPSTREAM_KEY:-dflt}" } }
models: { m: { upstream: openai } }
`;

function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, "test.yaml", env);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((i) => `${i.path}${i.rule ? ` [${i.rule}]` : ""}: ${i.message}`);
    throw error;
  }
  return [];
}

describe("config loading", () => {
  it("fills defaults and interpolates ${VAR:-default}", () => {
    const config = parseConfig(base, "test.yaml", {});
    expect(config.server).toMatchObject({ host: "127.0.0.1", port: 8787, max_json_depth: 64 });
    expect(config.upstreams.openai?.api_key).toBe("dflt");
    expect(config.store).toEqual({ memory: { snapshot: "./data/state.json" }, on_error: "fail_closed" });
    expect(config.policies.default_effect).toBe("ALLOW");
    const fromEnv = parseConfig(base, "test.yaml", { UPSTREAM_KEY: "sk-real" });
    expect(fromEnv.upstreams.openai?.api_key).toBe("sk-real");
  });

  it("takes upstream_model null as the model's own name, as the walk-through writes it", () => {
    const config = parseConfig(`${base.replace("models: { m: { upstream: openai } }", "models: { m: { upstream: openai, upstream_model: null }, n: { upstream: openai, upstream_model: gpt-4o-2024-08-06 } }")}`, "test.yaml", {});
    expect(config.models.m?.upstream_model).toBeUndefined();
    expect(config.models.n?.upstream_model).toBe("gpt-4o-2024-08-06");
  });

  it("names an unset variable without default", () => {
    const issues: Array<{ path: string; message: string }> = [];
    expect(interpolate({ a: ["${NOPE}"] }, {}, [], issues)).toEqual({ a: [""] });
    expect(issues).toEqual([{ path: "a[0]", message: "environment variable `NOPE` is not set" }]);
  });

  it("replaces variables in mapping keys too: a model, upstream or team may be named by one", () => {
    const text = `
upstreams: { \${UPNAME:-openai}: { base_url: "http://127.0.0.1:9/v1" } }
models:
  \${MODEL_NAME}:
    upstream: "\${UPNAME:-openai}"
`;
    const config = parseConfig(text, "t", { MODEL_NAME: "gpt-4o-mini" });
    expect(Object.keys(config.models)).toEqual(["gpt-4o-mini"]);
    expect(Object.keys(config.upstreams)).toEqual(["openai"]);
    expect(issuesOf(text)).toEqual(["models.${MODEL_NAME}: environment variable `MODEL_NAME` is not set"]);
    expect(issuesOf(`${text}  \${OTHER}: { upstream: openai }\n`, { MODEL_NAME: "m", OTHER: "m" })).toEqual([
      "models.${OTHER}: the key is `m` once its variables are replaced, as another key of this mapping is",
    ]);
  });

  it("names the rule an unset variable is in, and nothing else of the value left empty for it", () => {
    const text = `
upstreams: { openai: { base_url: "http://127.0.0.1:9/v1" } }
models: { m: { upstream: openai } }
policies:
  rules:
    - { name: block_pattern, effect: DENY, conditions: { prompt_text: { matches: "\${PATTERN}" } } }
    - { name: block_team, effect: DENY, conditions: { team: { in: [a] } }, constraints: { approver_role: "\${ROLE}" } }
    - { name: keyed, effect: DENY, actions: [tool.call], conditions: { \${ATTR}: { eq: x }, tool_args.\${ARG}: { eq: y } } }
`;
    expect(issuesOf(text)).toEqual([
      "policies.rules[0].conditions.prompt_text.matches [block_pattern]: environment variable `PATTERN` is not set",
      "policies.rules[1].constraints.approver_role [block_team]: environment variable `ROLE` is not set",
      "policies.rules[2].conditions.${ATTR} [keyed]: environment variable `ATTR` is not set",
      "policies.rules[2].conditions.tool_args.${ARG} [keyed]: environment variable `ARG` is not set",
    ]);
  });

  it("reads the contract's unquoted ${VAR} inside flow mappings", () => {
    const text = `
admin:
  token: \${GATEWAY_ADMIN_TOKEN:-}
upstreams:
  openai: { base_url: https://api.openai.com/v1, api_key: \${OPENAI_API_KEY}, connect_timeout_seconds: 10, timeout_seconds: 600 }
models: { m: { upstream: openai } }
approvals: { notify_url: null, notify_secret: \${APPROVALS_WEBHOOK_SECRET:-}, default_timeout_seconds: 3600 }
`;
    const config = parseConfig(text, "t", { OPENAI_API_KEY: "sk-real" });
    expect(config.upstreams.openai).toMatchObject({ base_url: "https://api.openai.com/v1", api_key: "sk-real", timeout_seconds: 600 });
    expect(config.approvals.default_timeout_seconds).toBe(3600);
    expect(issuesOf(text)).toEqual(["upstreams.openai.api_key: environment variable `OPENAI_API_KEY` is not set"]);
  });

  it("gives an unquoted whole-scalar variable the type YAML would, and keeps a quoted one a string", () => {
    const text = (port: string) => `${base}\nserver: { port: ${port}, max_body_bytes: \${MAX_BODY:-2048} }`;
    expect(parseConfig(text("${PORT:-18788}"), "t", {}).server).toMatchObject({ port: 18788, max_body_bytes: 2048 });
    expect(parseConfig(text("${PORT:-18788}"), "t", { PORT: "9000", MAX_BODY: "4096" }).server).toMatchObject({ port: 9000, max_body_bytes: 4096 });
    expect(issuesOf(text('"${PORT:-18788}"'))).toEqual([expect.stringMatching(/^server\.port: .*number/)]);
    const numericKey = parseConfig(base.replace(":-dflt}", "}"), "t", { UPSTREAM_KEY: "12345" });
    expect(numericKey.upstreams.openai?.api_key).toBe("12345");
    expect(parseConfig(`${base}\norg: pre-\${ORG:-acme}-post`, "t", {}).org).toBe("pre-acme-post");
  });

  it("rejects unknown keys with their path (strict schema)", () => {
    expect(issuesOf(`${base}\nserver: { prot: 1 }`)).toEqual([expect.stringContaining("server")]);
  });

  it("checks trusted_proxies at load, where a bad entry would otherwise fail the first request", () => {
    const proxies = (list: string) => issuesOf(`${base}\nserver: { trusted_proxies: ${list} }`);
    expect(proxies('["10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8", "192.168.1.0/24"]')).toEqual([]);
    expect(proxies('[notacidr, "10.0.0.0/33", "::1/129", "10.0.0.0/8/1", "10.0.0.0/x"]')).toEqual([
      "server.trusted_proxies[0]: must be an IP address or a CIDR such as 10.0.0.0/8",
      "server.trusted_proxies[1]: must be an IP address or a CIDR such as 10.0.0.0/8",
      "server.trusted_proxies[2]: must be an IP address or a CIDR such as 10.0.0.0/8",
      "server.trusted_proxies[3]: must be an IP address or a CIDR such as 10.0.0.0/8",
      "server.trusted_proxies[4]: must be an IP address or a CIDR such as 10.0.0.0/8",
    ]);
  });

  it("names what is wrong inside a union (store, sinks) and catches values that would fail later", () => {
    const hash = `sha256:${"a".repeat(64)}`;
    expect(issuesOf(`${base}\nstore: { redis: { url: "redis://h:1" }, on_error: fail_sometimes }`)).toEqual([
      'store.on_error: Invalid option: expected one of "fail_closed"|"fail_open"',
    ]);
    expect(issuesOf(`${base}\naudit: { sinks: [{ file: { dir: x, retention_days: 0 } }] }`)).toEqual([
      "audit.sinks[0].file.retention_days: Too small: expected number to be >0",
    ]);
    expect(issuesOf(`${base}\nstore: { redis: { url: notaurl } }`)).toEqual(["store.redis.url: must be a redis:// or rediss:// URL"]);
    // A value of the wrong type inside a form, which Zod reports as another form's unknown key.
    expect(issuesOf(`${base}\nstore: { redis: { url: 6379 } }`)).toEqual(["store.redis.url: Invalid input: expected string, received number"]);
    expect(issuesOf(`${base}\naudit: { sinks: [{ file: { dir: x, retention_days: "30" } }, { redis_stream: { key: 5 } }] }`)).toEqual([
      "audit.sinks[0].file.retention_days: Invalid input: expected number, received string",
      "audit.sinks[1].redis_stream.key: Invalid input: expected string, received number",
    ]);
    // A mistyped key is named in the form the value is written in, not in another form.
    expect(issuesOf(`${base}\nstore: { redis: { url: "redis://h:1", prefx: a } }`)).toEqual(['store.redis: Unrecognized key: "prefx"']);
    expect(issuesOf(`${base}\nstore: { redis: { url: "redis://h:1" }, on_eror: fail_open }`)).toEqual(['store: Unrecognized key: "on_eror"']);
    expect(issuesOf(`${base}\naudit: { sinks: [{ file: { dir: x, retention_day: 9 } }] }`)).toEqual(['audit.sinks[0].file: Unrecognized key: "retention_day"']);
    expect(issuesOf(`${base}\nsessions: { header: "bad header name" }`)).toEqual([expect.stringMatching(/^sessions\.header: must be an HTTP header name/)]);
    expect(issuesOf(`${base}\napprovals: { notify_url: "ftp://x/hook" }`)).toEqual([expect.stringMatching(/^approvals\.notify_url: /)]);
    expect(
      issuesOf(`${base}\nkeys: [{ id: a, key_hash: "${hash}", subject: { user: u } }, { id: b, key_hash: "${hash}", subject: { user: v } }]`),
    ).toEqual(["keys[1].key_hash: the same key_hash as key `a`"]);
    // What would only fail at start (Node refuses the listener; an expiry no date can hold), or break the chain.
    expect(issuesOf(`${base}\nserver: { body_timeout_seconds: 5 }`)).toEqual([expect.stringMatching(/^server\.header_timeout_seconds: must not exceed server\.body_timeout_seconds \(5\)/)]);
    expect(issuesOf(`${base}\napprovals: { default_timeout_seconds: 10000000000000 }`)).toEqual([expect.stringMatching(/^approvals\.default_timeout_seconds: at most 315360000/)]);
    expect(issuesOf(`${base}\naudit: { sinks: [{ file: { dir: ./a } }, { file: { dir: "a/" } }] }`)).toEqual([
      "audit.sinks[1].file.dir: the same directory as audit.sinks[0]: one file sink a directory",
    ]);
    expect(issuesOf(`${base}\nstore: { memory: { snapshot: "" } }`)).toEqual([expect.stringMatching(/^store\.memory\.snapshot: must be a file path/)]);
    expect(issuesOf(`${base}\naudit: { sinks: [{ file: { dir: "" } }] }`)).toEqual(["audit.sinks[0].file.dir: must be a directory path"]);
  });

  it("refuses one secret for two identities: an admin token or approver that is also a virtual key, approvers sharing a token or a name", () => {
    // sha256("sk-alice"), sha256("approver-one")
    const alice = "sha256:099295a3784e1bd368dc348843a7398c1931b6b8ec2504c73e91ed2040bdc46c";
    const one = `sha256:${createHash("sha256").update("approver-one").digest("hex")}`;
    const keys = `keys: [{ id: k1, key_hash: "${alice}", subject: { user: a } }]`;
    expect(issuesOf(`${base}
${keys}
admin: { token: sk-alice }`)).toEqual(["admin.token: is also the virtual key `k1`"]);
    expect(issuesOf(`${base}
${keys}
admin: { token: t, approvers: [{ name: dana, role: security, token_hash: "${alice}" }] }`)).toEqual([
      "admin.approvers[0].token_hash: the same token as virtual key `k1`",
    ]);
    expect(
      issuesOf(`${base}
admin: { token: approver-one, approvers: [{ name: dana, role: security, token_hash: "${one}" }, { name: dana, role: admin, token_hash: "${one.replace(/.$/, "0")}" }] }`),
    ).toEqual(["admin.approvers[0].token_hash: the same token as admin token", "admin.approvers[1].name: duplicate approver name `dana`"]);
    expect(
      issuesOf(`${base}
admin: { token: t, approvers: [{ name: dana, role: security, token_hash: "${one}" }, { name: eve, role: admin, token_hash: "${one}" }] }`),
    ).toEqual(["admin.approvers[1].token_hash: the same token as approver `dana`"]);
  });


  it("reports several problems at once, with rule names for rules", () => {
    const issues = issuesOf(`${base}
keys: [{ id: a, key_hash: "sha256:ABC", subject: { user: a } }]
policies:
  rules:
    - { name: dup, effect: DENY }
    - { name: dup, effect: MAYBE }
`);
    expect(issues).toContain("keys[0].key_hash: must be `sha256:` followed by 64 lowercase hex digits");
    expect(issues.some((i) => i.startsWith("policies.rules[1].effect [dup]"))).toBe(true);
  });

  it("reports references, duplicates and rule conditions next to a broken section, not after it is fixed", () => {
    const zero = `sha256:${"0".repeat(64)}`;
    const issues = issuesOf(`
upstreams: { openai: { base_url: "http://127.0.0.1:9/v1" } }
models: { m1: { upstream: nowhere, input_per_1m: -1 }, m2: { upstream: openai } }
keys: [{ id: a, key_hash: "sha256:ABC", subject: { user: a } }, { id: b, key_hash: "${zero}", subject: { user: b } }, { id: b, key_hash: "${zero}", subject: { user: c } }]
policies: { default_effect: MAYBE, rules: [{ name: r0, effect: DENY }, { name: r0, effect: DENY, conditions: { model: { in: x } } }] }
`);
    expect(issues).toEqual(
      expect.arrayContaining([
        "models.m1.input_per_1m: Too small: expected number to be >=0",
        'policies.default_effect: Invalid option: expected one of "ALLOW"|"DENY"',
        "keys[0].key_hash: must be `sha256:` followed by 64 lowercase hex digits",
        "models.m1.upstream: unknown upstream `nowhere`",
        "keys[2].id: duplicate key id `b`",
        "keys[2].key_hash: the same key_hash as key `b`",
        expect.stringMatching(/^policies\.rules\[1\]\.name \[r0\]: duplicate rule name `r0`/),
        expect.stringMatching(/^policies\.rules\[1\]\.conditions\.model\.in \[r0\]: `in` takes a list/),
      ]),
    );
    expect(issues.some((i) => i.startsWith("models.m2"))).toBe(false);
  });

  it("checks every rule's conditions and every key's id in the run that finds another rule or key malformed", () => {
    const zero = `sha256:${"0".repeat(64)}`;
    const issues = issuesOf(`${base}
keys: [{ id: a, key_hash: "${zero}", subject: { user: a } }, { id: a, key_hash: "sha256:BAD", subject: { user: b } }]
policies:
  rules:
    - { name: r1, effect: DENY, conditions: { bogus_attr: { eq: 1 } } }
    - { name: r2, effect: DENY, mode: sometimes, actions: [tool.call], conditions: { tool: { in: deploy } } }
    - { effect: DENY, mode: sometimes, conditions: { model: { eq: [1] } } }
    - { name: r4, effect: REQUIRE_APPROVAL, mode: sometimes, conditions: {}, constraints: { approval_timeout_seconds: -3 } }
`);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^policies\.rules\[1\]\.mode \[r2\]/),
        expect.stringMatching(/^policies\.rules\[0\]\.conditions\.bogus_attr \[r1\]: unknown attribute/),
        // The broken rule's own conditions are judged too, under their own path.
        expect.stringMatching(/^policies\.rules\[1\]\.conditions\.tool\.in \[r2\]: `in` takes a list/),
        "policies.rules[2].conditions.model.eq: `eq` takes a string, number or boolean, got `[1]`",
        "keys[1].key_hash: must be `sha256:` followed by 64 lowercase hex digits",
        "keys[1].id: duplicate key id `a`",
        // And its constraints.
        expect.stringMatching(/^policies\.rules\[3\]\.constraints\.approval_timeout_seconds \[r4\]: must be a positive number/),
      ]),
    );
  });

  it("says each problem once, though the schema and the policy compiler both find a duplicate name", () => {
    const issues = issuesOf(`${base}
policies:
  rules:
    - { name: dup, effect: DENY }
    - { name: dup, effect: DENY, conditions: { prompt_text: { matches: "(a" } } }
`);
    expect(issues.filter((i) => i.includes("duplicate rule name"))).toHaveLength(1);
    expect(issues.some((i) => i.includes("not accepted by RE2"))).toBe(true);
  });

  it("rejects a model on an unknown upstream and full bodies without a key", () => {
    const issues = issuesOf(`
upstreams: { openai: { base_url: "http://127.0.0.1:9/v1" } }
models: { m: { upstream: other } }
audit: { bodies: full }
`);
    expect(issues).toContain("models.m.upstream: unknown upstream `other`");
    expect(issues).toContain("audit.encryption_key: required when audit.bodies is `full`");
  });

  it("rejects a passthrough path the gateway governs, however written; a prefix of one is allowed", () => {
    const issues = issuesOf(`
upstreams: { openai: { base_url: "http://127.0.0.1:9/v1" } }
models: { m: { upstream: openai } }
passthrough: { paths: [/v1/chat, /v1/chat/completions/, /v1//responses, /v1/files, /v1/Chat/completions, /v1/responses/resp_1, /v1/conversations] }
`);
    const why = "is governed by the gateway (or holds its stored answers) and cannot be passed through";
    expect(issues).toEqual([
      `passthrough.paths[1]: \`/v1/chat/completions/\` ${why}`,
      `passthrough.paths[2]: \`/v1//responses\` ${why}`,
      `passthrough.paths[4]: \`/v1/Chat/completions\` ${why}`,
      `passthrough.paths[5]: \`/v1/responses/resp_1\` ${why}`,
      `passthrough.paths[6]: \`/v1/conversations\` ${why}`,
    ]);
  });

  it("rejects a rule raising capture to full bodies without a key, and an audit with no sink", () => {
    const issues = issuesOf(`
upstreams: { openai: { base_url: "http://127.0.0.1:9/v1" } }
models: { m: { upstream: openai } }
audit: { sinks: [] }
policies:
  rules:
    - { name: detailed, effect: ALLOW, constraints: { audit_bodies: full } }
`);
    expect(issues.some((i) => i.startsWith("policies.rules[0].constraints.audit_bodies") && i.includes("needs audit.encryption_key"))).toBe(true);
    expect(issues.some((i) => i.startsWith("audit.sinks") && i.includes("at least one sink"))).toBe(true);
  });

  it("refuses YAML that is not a mapping", () => {
    expect(issuesOf("- just\n- a list")).toEqual([": expected a YAML mapping at the top level"]);
    expect(issuesOf("a: [unclosed")[0]).toMatch(/not valid YAML/);
  });

  it("says where YAML breaks without quoting the line, which may hold a secret in clear", () => {
    const [issue] = issuesOf(`${base}
admin:
  token: ADMINTOKEN-supersecret-xyz: oops
`);
    expect(issue).toMatch(/^: not valid YAML: .* at line 6, column \d+$/);
    expect(issue).not.toContain("supersecret");
  });

  it("accepts the store shorthands", () => {
    expect(parseConfig(`${base}\nstore: redis`, "t", {}).store).toMatchObject({ redis: { url: "redis://127.0.0.1:6379", prefix: "spark:" } });
    expect(parseConfig(`${base}\nstore: { redis: { url: "redis://h:1" }, on_error: fail_open }`, "t", {}).store).toMatchObject({ on_error: "fail_open" });
  });
});
