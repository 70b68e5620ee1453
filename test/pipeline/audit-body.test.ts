import { describe, expect, test } from "vitest";
import { decryptBody } from "../../src/audit/bodies.js";
import { parseConfig } from "../../src/config/load.js";
import { captureAuditBody } from "../../src/pipeline/audit-body.js";
import type { Decision } from "../../src/policy/types.js";

const config = parseConfig(
  `admin: { token: ADMINTOKEN-SECRET-zz9 }
approvals: { notify_secret: webhook-signing-secret-77 }
audit: { bodies: redacted }
upstreams: { openai: { base_url: "http://127.0.0.1:1/v1", api_key: upstream-key-without-a-prefix } }
models: { gpt-4o-mini: { upstream: openai } }
keys: []
`,
  "test",
  {},
);

const allow: Decision = { effect: "ALLOW", rule: null, reason: "", matched: [], constraints: {}, dry_run_rules: [] };

describe("captureAuditBody", () => {
  test("a redacted body masks the secrets the gateway knows, whatever their shape: the caller's key, the admin token, upstream keys", () => {
    const body = {
      model: "gpt-4o-mini",
      user: "alice-probe-key-1",
      metadata: { note: "token ADMINTOKEN-SECRET-zz9" },
      messages: [{ role: "user", content: "my keys: alice-probe-key-1 and upstream-key-without-a-prefix" }],
    };
    const captured = JSON.stringify(captureAuditBody(config, () => body, allow, "alice-probe-key-1"));
    for (const secret of ["alice-probe-key-1", "ADMINTOKEN-SECRET-zz9", "upstream-key-without-a-prefix"]) expect(captured).not.toContain(secret);
    expect(captured).toContain("my keys: [REDACTED_SECRET] and [REDACTED_SECRET]");
  });

  test("a redacted body keeps no embeddings token array: token ids spell text the masking cannot read", () => {
    const tokens = [73, 1097, 311, 1280, 31, 8858, 916];
    expect(captureAuditBody(config, () => ({ model: "m", input: tokens }), allow, null)).toEqual({ body: { model: "m", input: "[REDACTED:tokens]" } });
    expect(captureAuditBody(config, () => ({ model: "m", input: [tokens, [1]] }), allow, null)).toEqual({ body: { model: "m", input: ["[REDACTED:tokens]", "[REDACTED:tokens]"] } });
    expect(captureAuditBody(config, () => ({ model: "m", input: ["mail bob@example.com"] }), allow, null)).toEqual({ body: { model: "m", input: ["mail [REDACTED:email]"] } });
  });

  test("a redacted body masks the PII only the prompt's reading finds: cut across parts, in an inline text file, behind escapes", () => {
    const file = `data:text/plain;base64,${Buffer.from("contact jane.doe@example.com").toString("base64")}`;
    const body = {
      model: "gpt-4o-mini",
      messages: [
        { role: "user", content: [{ type: "text", text: "write to jane.doe@exa" }, { type: "text", text: "mple.com now" }] },
        { role: "user", content: [{ type: "file", file: { filename: "a.txt", file_data: file } }] },
        { role: "assistant", tool_calls: [{ id: "1", type: "function", function: { name: "f", arguments: '{"esc":"jane\\u0040example.org"}' } }] },
      ],
    };
    const captured = captureAuditBody(config, () => body, allow, null) as { body: typeof body };
    const text = JSON.stringify(captured);
    expect(text).not.toContain("jane.doe");
    expect(text).not.toContain("u0040example");
    const stored = captured.body.messages[1]?.content as unknown as [{ file: { file_data: string } }];
    expect(Buffer.from(stored[0].file.file_data.split(",")[1] ?? "", "base64").toString()).toBe("contact [REDACTED:email]");
    // The client's body is left as it was.
    expect(body.messages[0]?.content).toHaveLength(2);
  });

  test("no body keeps a secret: not inside an inline text file, nor in a full body once decrypted, nor a key-shaped value without the `secret` detector", () => {
    const secrets = ["alice-probe-key-1", "ADMINTOKEN-SECRET-zz9", "upstream-key-without-a-prefix", "sk-proj-abcdefghijklmnopqrstuvwxyz0123", "webhook-signing-secret-77"];
    const said = `keys ${secrets.join(" ")}`;
    const body = {
      model: "gpt-4o-mini",
      user: secrets[0],
      messages: [{ role: "user", content: [{ type: "file", file: { filename: "notes.txt", file_data: `data:text/plain;base64,${Buffer.from(said).toString("base64")}` } }, { type: "text", text: said }] }],
    };
    const decoded = (captured: unknown): string => {
      const text = JSON.stringify(captured);
      const file = /base64,([A-Za-z0-9+/=]+)/.exec(text)?.[1] ?? "";
      return text + Buffer.from(file, "base64").toString();
    };
    const emailOnly = { ...config, pii: { ...config.pii, detectors: ["email" as const] } };
    const key = Buffer.alloc(32, 7);
    const full = { ...config, audit: { ...config.audit, bodies: "full" as const, encryption_key: key.toString("base64") } };
    const encrypted = captureAuditBody(full, () => body, allow, secrets[0] ?? null) as { body_enc: string };
    for (const captured of [
      captureAuditBody(config, () => body, allow, secrets[0] ?? null),
      captureAuditBody(emailOnly, () => body, allow, secrets[0] ?? null),
      decryptBody(encrypted.body_enc, key),
    ]) {
      const text = decoded(captured);
      expect(text).toContain("[REDACTED_SECRET]");
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
  });

  test("nothing is captured at level none", () => {
    expect(captureAuditBody({ ...config, audit: { ...config.audit, bodies: "none" } }, () => ({ model: "m" }), allow, null)).toBeNull();
  });
});
