import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockUpstream, startMockUpstream } from "../../mock/upstream.js";
import { decryptBody } from "../../src/audit/bodies.js";
import { type Gateway, startGateway } from "../../src/gateway.js";
import { oneKeyConfig } from "../helpers/index.js";

const KEY = "sk-bodies-key";
const ADMIN = "bodies-admin";
const SECRET = "webhook-secret";
const AUDIT_KEY = randomBytes(32);

let mock: MockUpstream;
let gateway: Gateway;
let hooks: Server;
let dir: string;
const received: Array<{ body: string; signature: string | undefined }> = [];

beforeAll(async () => {
  mock = await startMockUpstream({});
  dir = mkdtempSync(join(tmpdir(), "spark-bodies-"));
  let failFirst = true;
  hooks = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      // The first delivery fails: the notifier must retry it.
      if (failFirst) {
        failFirst = false;
        res.writeHead(500).end();
        return;
      }
      received.push({ body, signature: req.headers["x-spark-signature"] as string | undefined });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hooks.listen(0, "127.0.0.1", resolve));
  const hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook`;
  const path = join(dir, "gateway.yaml");
  writeFileSync(
    path,
    `${oneKeyConfig({ admin: ADMIN, upstreamUrl: mock.url, key: KEY })}approvals: { notify_url: "${hookUrl}", notify_secret: ${SECRET} }
policies:
  rules:
    - { name: secrets_audited_in_full, effect: ALLOW, conditions: { prompt_text: { contains: "TOP-SECRET" } }, constraints: { audit_bodies: full } }
    - { name: gated, effect: REQUIRE_APPROVAL, conditions: { prompt_text: { contains: "please gate" } }, constraints: { approver_role: admin } }
    - { name: lookups_audited_in_full, effect: ALLOW, actions: [tool.call], conditions: { tool: { eq: lookup } }, constraints: { audit_bodies: full } }
audit:
  sinks: [{ file: { dir: "${join(dir, "audit")}" } }]
  bodies: redacted
  encryption_key: ${AUDIT_KEY.toString("base64")}
  encryption_key_id: k7
`,
  );
  gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
});

afterAll(async () => {
  await gateway.shutdown();
  await mock.close();
  await new Promise((resolve) => hooks.close(resolve));
});

const client = (): OpenAI => new OpenAI({ apiKey: KEY, baseURL: `${gateway.url}/v1`, maxRetries: 0 });

async function records(): Promise<Array<Record<string, unknown>>> {
  await gateway.audit.writer.flush();
  const auditDir = join(dir, "audit");
  return readdirSync(auditDir).flatMap((f) =>
    readFileSync(join(auditDir, f), "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

describe("audit bodies", () => {
  it("stores a redacted body by default and an encrypted one where a rule raises capture to full", async () => {
    await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "mail jane.doe@example.com please" }] });
    await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "TOP-SECRET plan for bob@example.com" }] });
    const [plain, secret] = (await records()).filter((r) => r.path === "/v1/chat/completions");
    const redacted = JSON.stringify(plain?.body);
    expect(redacted).not.toContain("jane.doe@example.com");
    expect(redacted).toContain("[REDACTED:email]");
    expect(secret?.body).toBeUndefined();
    expect(secret?.body_key_id).toBe("k7");
    expect(JSON.stringify(secret)).not.toContain("TOP-SECRET");
    const clear = decryptBody(String(secret?.body_enc), AUDIT_KEY) as { messages: Array<{ content: string }> };
    expect(clear.messages[0]?.content).toBe("TOP-SECRET plan for bob@example.com");
    expect(() => decryptBody(String(secret?.body_enc), randomBytes(32))).toThrow();
  });
});

describe("audit bodies raised by a tool call's rule", () => {
  it("captures the request body (as sent) once the answer's tool call matches a rule asking for it", async () => {
    const content = 'LOOKUP-ME call_tool:lookup {"q":"x"}';
    const answer = await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content }], max_completion_tokens: 50 });
    expect(answer.choices[0]?.message.tool_calls?.length).toBe(1);
    const record = (await records()).find((r) => JSON.stringify(r.tool_calls ?? []).includes("lookup"));
    expect(record).toBeDefined();
    expect((record!.decision as { constraints: Record<string, unknown> }).constraints.audit_bodies).toBe("full");
    const clear = decryptBody(String(record?.body_enc), AUDIT_KEY) as { messages: Array<{ content: string }>; max_completion_tokens: number };
    expect(clear.messages[0]?.content).toBe(content);
    expect(clear.max_completion_tokens).toBe(50);
  });
});

describe("approval webhooks", () => {
  it("posts a signed approval.created event, retried after a failure, then approval.decided", async () => {
    const error = await client()
      .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "please gate this" }] })
      .catch((e: unknown) => e as { error?: { approval_id?: string } });
    const id = (error as { error?: { approval_id?: string } }).error?.approval_id;
    expect(id).toMatch(/^apr_/);
    const decided = await fetch(`${gateway.url}/admin/approvals/${id}/approve`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}` },
      body: "{}",
    });
    expect(decided.status).toBe(200);
    for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    // In the order they happened, though the decision came while the creation was being retried.
    const types = received.map((r) => (JSON.parse(r.body) as { type: string }).type);
    expect(types).toEqual(["approval.created", "approval.decided"]);
    for (const hook of received) {
      expect(hook.signature).toBe(`sha256=${createHmac("sha256", SECRET).update(hook.body).digest("hex")}`);
      const event = JSON.parse(hook.body) as { approval: { id: string; held: boolean } };
      expect(event.approval.id).toBe(id);
    }
  });
});

// Last: the approval it creates would otherwise join the events the webhook test counts.
describe("audit bodies of approval retries refused before any rule ran", () => {
  it("keep the body at the configured level, with no decision, as every other refusal keeps it", async () => {
    const content = "please gate this for jane.doe@example.com";
    const body = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content }] };
    const gated = (await client()
      .chat.completions.create(body)
      .catch((e: unknown) => e)) as { error?: { approval_id?: string } };
    const id = gated.error?.approval_id;
    expect(id).toMatch(/^apr_/);
    const retry = (approvalId: string, sent: typeof body) => client().chat.completions.create(sent, { headers: { "x-approval-id": approvalId } }).catch((e: unknown) => e);
    expect(await retry(id!, body)).toMatchObject({ status: 403, code: "approval_pending" });
    expect(await retry("apr_bogus", body)).toMatchObject({ status: 403, code: "approval_invalid" });
    // A rule would capture this body in full, but no rule was evaluated: the configured level applies.
    const secret = { ...body, messages: [{ role: "user" as const, content: "TOP-SECRET for jane.doe@example.com" }] };
    expect(await retry("apr_bogus", secret)).toMatchObject({ status: 403, code: "approval_invalid" });
    const refused = (await records()).filter((r) => r.error_code === "approval_pending" || r.error_code === "approval_invalid");
    expect(refused.map((r) => r.error_code)).toEqual(["approval_pending", "approval_invalid", "approval_invalid"]);
    for (const record of refused) {
      expect(record.decision).toBeNull();
      expect(record.body_enc).toBeUndefined();
      const kept = JSON.stringify(record.body);
      expect(kept).toContain("[REDACTED:email]");
      expect(kept).not.toContain("jane.doe@example.com");
    }
    expect(JSON.stringify(refused[2]?.body)).toContain("TOP-SECRET");
    // Refused before any rule for another reason, a model it does not serve: the same.
    const unknownModel = await client()
      .chat.completions.create({ ...body, model: "gpt-nope" })
      .catch((e: unknown) => e);
    expect(unknownModel).toMatchObject({ status: 404, code: "model_not_found" });
    const notFound = (await records()).filter((r) => r.error_code === "model_not_found").at(-1);
    expect(notFound?.decision).toBeNull();
    expect(JSON.stringify(notFound?.body)).toContain("[REDACTED:email]");
  });
});
