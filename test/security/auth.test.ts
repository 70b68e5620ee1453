import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis } from "../helpers/index.js";
import { bearer, chatBody, DEFAULT_KEYS, errorCode, leaksOf, MODELS, SECRETS, type SecGateway, startSecGateway, until } from "./support.js";

const POLICY = `
policies:
  default_effect: ALLOW
  rules:
    - name: gpt4o_admins_only
      effect: DENY
      conditions: { model: { in: [gpt-4o] }, user_role: { not_in: [admin] } }
      description: Only admins can use gpt-4o
    - name: no_mallory
      effect: DENY
      conditions: { user: { eq: mallory } }
      description: mallory is banned
`;

let g: SecGateway;
const admin = { authorization: `Bearer ${SECRETS.admin}`, "content-type": "application/json" };
const runtimeKeys: Record<string, string> = {};

beforeAll(async () => {
  g = await startSecGateway({ body: `${MODELS}${DEFAULT_KEYS}${POLICY}` });
});
afterAll(async () => {
  await g?.close();
});

async function chat(key: string, content = "hi", extraHeaders: Record<string, string> = {}, model = "gpt-4o-mini"): Promise<{ status: number; code: string | null; id: string }> {
  const res = await g.request("/v1/chat/completions", {
    method: "POST",
    headers: { ...bearer(key), ...extraHeaders },
    body: JSON.stringify({ model, messages: [{ role: "user", content }] }),
  });
  return { status: res.status, code: errorCode(res.text), id: String(res.headers["x-request-id"]) };
}

async function createKey(id: string): Promise<string> {
  const res = await g.request("/admin/keys", {
    method: "POST",
    headers: admin,
    body: JSON.stringify({ id, subject: { user: `u-${id}`, role: "developer", team: "research" } }),
    record: false,
  });
  expect(res.status, res.text).toBe(201);
  const key = (JSON.parse(res.text) as { key: string }).key;
  runtimeKeys[id] = key;
  return key;
}

describe("authentication", () => {
  it("refuses missing, unknown, expired and disabled keys with 401 invalid_api_key", async () => {
    expect(await chat("")).toMatchObject({ status: 401, code: "invalid_api_key" });
    expect(await chat("sk-not-a-key")).toMatchObject({ status: 401, code: "invalid_api_key" });
    expect(await chat(SECRETS.expired)).toMatchObject({ status: 401, code: "invalid_api_key" });
    expect(await chat(SECRETS.disabled)).toMatchObject({ status: 401, code: "invalid_api_key" });
    // A key differing in one character, or with a suffix, is just as unknown (lookup is by hash, compared in constant time).
    expect(await chat(`${SECRETS.alice.slice(0, -1)}x`)).toMatchObject({ status: 401, code: "invalid_api_key" });
    expect(await chat(`${SECRETS.alice}0`)).toMatchObject({ status: 401, code: "invalid_api_key" });
    expect(await chat(SECRETS.alice)).toMatchObject({ status: 200 });
  });

  it("refuses two Authorization headers, whichever of them a proxy in front would have read", async () => {
    const body = chatBody("say:hi");
    const result = await g.raw(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.alice}\r\nauthorization: Bearer sk-someone-else\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(result.statuses).toEqual([401]);
    expect(result.text).toContain("more than one Authorization header");
  });

  it("a revoked runtime key is refused at once", async () => {
    const key = await createKey("rk-revoke");
    expect((await chat(key)).status).toBe(200);
    const revoke = await g.request("/admin/keys/rk-revoke/revoke", { method: "POST", headers: admin, body: "{}" });
    expect(revoke.status, revoke.text).toBe(200);
    expect(await chat(key)).toMatchObject({ status: 401, code: "invalid_api_key" });
  });

  it("a runtime key whose expires_at is moved into the past is refused at once; a rotated key's old secret ends with its grace", async () => {
    const key = await createKey("rk-expire");
    expect((await chat(key)).status).toBe(200);
    const patch = await g.request("/admin/keys/rk-expire", { method: "PATCH", headers: admin, body: JSON.stringify({ expires_at: "2001-01-01T00:00:00Z" }) });
    expect(patch.status, patch.text).toBe(200);
    expect(await chat(key)).toMatchObject({ status: 401, code: "invalid_api_key" });

    const old = await createKey("rk-rotate");
    const rotated = await g.request("/admin/keys/rk-rotate/rotate", { method: "POST", headers: admin, body: JSON.stringify({ grace_seconds: 0 }), record: false });
    expect(rotated.status, rotated.text).toBe(200);
    const fresh = (JSON.parse(rotated.text) as { key: string }).key;
    runtimeKeys["rk-rotate-new"] = fresh;
    expect(await chat(old)).toMatchObject({ status: 401, code: "invalid_api_key" });
    expect((await chat(fresh)).status).toBe(200);
  });

  it("admin endpoints refuse virtual keys (and the upstream key); approver tokens stay on approvals", async () => {
    const routes: Array<[string, string]> = [
      ["GET", "/admin/keys"],
      ["POST", "/admin/keys"],
      ["GET", "/admin/keys/alice-dev"],
      ["POST", "/admin/keys/alice-dev/revoke"],
      ["GET", "/admin/audit"],
      ["GET", "/admin/audit/verify"],
      ["GET", "/admin/spend?group_by=key"],
      ["GET", "/admin/policies"],
      ["POST", "/admin/stop"],
      ["GET", "/admin/approvals"],
      ["GET", "/metrics"],
    ];
    for (const [method, path] of routes) {
      for (const credential of [SECRETS.alice, SECRETS.bob, SECRETS.upstream, SECRETS.expired, "", `${SECRETS.admin}x`]) {
        const res = await g.request(path, { method, headers: credential === "" ? {} : bearer(credential), ...(method === "POST" ? { body: "{}" } : {}) });
        expect(res.status, `${method} ${path} with ${credential.slice(0, 8)}: ${res.text}`).toBe(401);
        expect(errorCode(res.text)).toBe("invalid_admin_token");
      }
      if (!path.startsWith("/admin/approvals")) {
        const res = await g.request(path, { method, headers: bearer(SECRETS.approver), ...(method === "POST" ? { body: "{}" } : {}) });
        expect(res.status, `${method} ${path} with the approver token`).toBe(403);
      }
    }
    const approvals = await g.request("/admin/approvals", { headers: bearer(SECRETS.approver) });
    expect(approvals.status).toBe(200);
    // And the admin token is no virtual key.
    expect(await chat(SECRETS.admin)).toMatchObject({ status: 401, code: "invalid_api_key" });
    // alice is still there: none of the refused calls changed anything.
    expect((await chat(SECRETS.alice)).status).toBe(200);
  });

  it("/healthz, /readyz and /metrics answers carry an x-request-id of their own, like every other answer", async () => {
    const ids = new Set<string>();
    for (const [path, headers] of [["/healthz", {}], ["/readyz", {}], ["/metrics", bearer(SECRETS.admin)], ["/healthz", {}]] as const) {
      const res = await g.request(path, { headers });
      expect(res.status, path).toBe(200);
      expect(String(res.headers["x-request-id"]), path).toMatch(/^req_/);
      ids.add(String(res.headers["x-request-id"]));
    }
    expect(ids.size).toBe(4);
  });

  it("client-supplied identity (body `user`, x-user / x-team / x-role headers) never changes attribution or policy", async () => {
    const spoof = {
      "x-user": "mallory",
      "x-team": "red-team",
      "x-role": "admin",
      "x-user-id": "mallory",
      "x-key-id": "bob-admin",
      "x-spark-user": "mallory",
      "x-openai-user": "mallory",
      "openai-organization": "org-evil",
    };
    const res = await g.request("/v1/chat/completions", {
      method: "POST",
      headers: { ...bearer(SECRETS.alice), ...spoof },
      body: chatBody("hi", { user: "mallory", metadata: { user: "mallory", team: "red-team" } }),
    });
    expect(res.status, res.text).toBe(200);
    const id = String(res.headers["x-request-id"]);
    // A role claimed in a header does not open an admin-only model.
    const denied = await chat(SECRETS.alice, "hi", spoof, "gpt-4o");
    expect(denied).toMatchObject({ status: 403, code: "policy_denied" });
    const records = await g.records();
    for (const rid of [id, denied.id]) {
      const record = records.find((r) => r.id === rid);
      expect(record, rid).toBeDefined();
      expect(record).toMatchObject({ key_id: "alice-dev", user: "alice", team: "research", role: "developer" });
    }
    // The body's `user` passes through to the upstream untouched (OpenAI's own field), but the audit ignores it.
    const upstreamBody = g.mock.requests.at(-1)?.body as { user?: string } | undefined;
    expect(upstreamBody?.user).toBe("mallory");
  });

  it("no secret appeared in logs, audit records, error bodies or headers", async () => {
    expect(leaksOf(g, runtimeKeys)).toEqual([]);
  });
});

const redis = await startRedis();

describe.skipIf(redis === null)("revocation across replicas on one Redis", () => {
  afterAll(async () => {
    await redis?.stop();
  });

  it("a key revoked through one replica is refused by the other", async () => {
    const store = `{ redis: { url: "${redis!.url}", prefix: "sec:" }, on_error: fail_closed }`;
    const a = await startSecGateway({ store, replica: "sec-a" });
    const b = await startSecGateway({ store, replica: "sec-b", sharedMock: a.mock });
    try {
      const created = await a.request("/admin/keys", {
        method: "POST",
        headers: admin,
        body: JSON.stringify({ id: "shared", subject: { user: "sam", role: "developer", team: "research" } }),
        record: false,
      });
      expect(created.status, created.text).toBe(201);
      const key = (JSON.parse(created.text) as { key: string }).key;
      const call = async (gw: SecGateway): Promise<number> =>
        (await gw.request("/v1/chat/completions", { method: "POST", headers: bearer(key), body: chatBody("hi") })).status;
      await until(async () => (await call(b)) === 200, 5_000, "replica b to learn the new key");
      const revoke = await a.request("/admin/keys/shared/revoke", { method: "POST", headers: admin, body: "{}" });
      expect(revoke.status).toBe(200);
      const revokedAt = Date.now();
      expect(await call(a)).toBe(401);
      // Pushed by pub/sub, with a one-second poll as the backstop: bounded, never "eventually".
      await until(async () => (await call(b)) === 401, 3_000, "replica b to refuse the revoked key");
      console.log(`revocation seen by the other replica after ${Date.now() - revokedAt} ms`);
      expect(leaksOf(a, { key })).toEqual([]);
      expect(leaksOf(b, { key })).toEqual([]);
    } finally {
      await b.close();
      await a.close();
    }
  });
});
