import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/index.js";
import { bearer, chatBody, DEFAULT_KEYS, findSecrets, leaksOf, MODELS, SECRETS, type SecGateway, startSecGateway } from "./support.js";

/**
 * Drives every kind of traffic — allowed, refused, upstream failures, admin calls (creating and
 * rotating keys), approvals — then scans all of it: pino output (level trace, plus the `log` audit
 * sink), the audit files, every response body and header.
 */
let g: SecGateway;
const issued: Record<string, string> = {};
/** Responses that are allowed to show one freshly issued key (create / rotate), scanned for every other secret. */
const issuing: string[] = [];

const ADMIN = { authorization: `Bearer ${SECRETS.admin}`, "content-type": "application/json" };

beforeAll(async () => {
  const deadPort = await freePort();
  g = await startSecGateway({
    upstream: "timeout_seconds: 1",
    extraSinks: "{ log: {} }",
    upstreams: `  dead: { base_url: "http://127.0.0.1:${deadPort}/v1", api_key: ${SECRETS.upstream}, connect_timeout_seconds: 1, timeout_seconds: 1 }`,
    body: `${MODELS}
  dead-model: { upstream: dead, input_per_1m: 1, output_per_1m: 1 }
${DEFAULT_KEYS}
passthrough: { upstream: openai, paths: [/v1/files] }
policies:
  default_effect: ALLOW
  rules:
    - name: gpt4o_needs_security
      effect: REQUIRE_APPROVAL
      conditions: { model: { in: [gpt-4o] } }
      constraints: { approver_role: security }
`,
  });
}, 30_000);
afterAll(async () => {
  await g?.close();
});

describe("secrets never leak", () => {
  it("drives allowed, refused, failing and admin traffic", async () => {
    const call = (key: string, content: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
      g.request("/v1/chat/completions", { method: "POST", headers: { ...bearer(key), ...headers }, body: chatBody(content, extra) });

    // Allowed: JSON, SSE, embeddings, responses, models, passthrough.
    expect((await call(SECRETS.alice, "say:hello")).status).toBe(200);
    expect((await call(SECRETS.bob, "tokens:5 chunks:3", { stream: true })).status).toBe(200);
    expect((await g.request("/v1/embeddings", { method: "POST", headers: bearer(SECRETS.alice), body: JSON.stringify({ model: "text-embedding-3-small", input: "x" }) })).status).toBe(200);
    expect((await g.request("/v1/responses", { method: "POST", headers: bearer(SECRETS.alice), body: JSON.stringify({ model: "gpt-4o-mini", input: "hi", stream: true }) })).status).toBe(200);
    expect((await g.request("/v1/models", { headers: bearer(SECRETS.alice) })).status).toBe(200);
    expect((await g.request("/v1/files", { headers: bearer(SECRETS.alice) })).status).toBe(200);

    // Refused: bad, expired, disabled keys; keys in other headers and the query string; malformed bodies.
    for (const key of [SECRETS.expired, SECRETS.disabled, `${SECRETS.alice}-typo`, SECRETS.admin, SECRETS.upstream, SECRETS.approver]) {
      expect((await call(key, "hi")).status).toBe(401);
    }
    expect((await g.request("/v1/chat/completions", { method: "POST", headers: { "x-api-key": SECRETS.alice, "api-key": SECRETS.bob }, body: chatBody("hi") })).status).toBe(401);
    expect((await g.request(`/v1/models?api_key=${SECRETS.alice}&key=${SECRETS.admin}`, { headers: { cookie: `k=${SECRETS.bob}` } })).status).toBe(401);
    expect((await g.request("/v1/chat/completions", { method: "POST", headers: bearer(SECRETS.alice), body: "{not json" })).status).toBe(400);
    expect((await g.request("/v1/chat/completions", { method: "POST", headers: bearer(SECRETS.alice), body: '{"model":1}' })).status).toBe(400);
    expect((await call(SECRETS.solo, "hi", { model: "unknown-model" })).status).toBe(404);
    // Approval required, then an approver decides.
    const approval = await call(SECRETS.alice, "hi", { model: "gpt-4o" });
    expect(approval.status).toBe(403);
    const approvalId = (JSON.parse(approval.text) as { error: { approval_id: string } }).error.approval_id;
    const decided = await g.request(`/admin/approvals/${approvalId}/approve`, { method: "POST", headers: bearer(SECRETS.approver), body: JSON.stringify({ comment: "ok" }) });
    expect(decided.status, decided.text).toBe(200);
    expect((await call(SECRETS.alice, "hi", { model: "gpt-4o" }, { "x-approval-id": approvalId })).status).toBe(200);

    // Secrets the client put outside the body: headers the record keeps, the path, a tool's name, a member's name.
    for (const secret of [SECRETS.alice, SECRETS.admin, SECRETS.upstream]) {
      const headers = { "x-session-id": secret, "x-request-id": secret, "user-agent": secret, "x-approval-id": secret };
      expect((await call(SECRETS.alice, "say:placed", {}, headers)).status).toBeLessThan(500);
      const tools = [{ type: "function", function: { name: secret.replace(/[^A-Za-z0-9_-]/g, "_"), parameters: { type: "object" } } }];
      expect((await call(SECRETS.alice, "say:placed", { tools })).status).toBe(200);
      expect((await g.request(`/v1/${secret}/chat/completions`, { method: "POST", headers: bearer(SECRETS.alice), body: chatBody("hi") })).status).toBe(404);
      expect((await g.request(`/elsewhere/${secret}`, { headers: bearer(SECRETS.alice) })).status).toBe(404);
      const duplicate = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"${secret}":1,"${secret}":2}`;
      expect((await g.request("/v1/chat/completions", { method: "POST", headers: bearer(SECRETS.alice), body: duplicate })).status).toBe(400);
    }

    // Secrets the gateway knows only by hash (another caller's key, an approver's token), sent whole
    // in a header the record keeps or in the path a 404 quotes: looked up, and masked.
    for (const secret of [SECRETS.bob, SECRETS.approver]) {
      const headers = { "x-session-id": secret, "x-request-id": secret, "user-agent": secret, "x-approval-id": secret };
      expect((await call(SECRETS.alice, "say:placed", {}, headers)).status).toBeLessThan(500);
      expect((await g.request(`/v1/${secret}/chat/completions`, { method: "POST", headers: bearer(SECRETS.alice), body: chatBody("hi") })).status).toBe(404);
      expect((await g.request(`/elsewhere/${secret}`, { headers: bearer(SECRETS.alice) })).status).toBe(404);
      // Sent twice (Node joins the values with a comma), with a comma, percent-encoded in a path, as a query parameter's name.
      const joined = { "x-session-id": `${secret}, ${secret}`, "x-request-id": `${secret},x`, "x-approval-id": `${secret}, ${secret}` };
      expect((await call(SECRETS.alice, "say:placed", {}, joined)).status).toBeLessThan(500);
      const encoded = `%${secret.charCodeAt(0).toString(16)}${secret.slice(1)}`;
      expect((await g.request(`/v1/${encoded}`, { headers: bearer(SECRETS.alice) })).status).toBe(404);
      expect((await g.request(`/admin/keys/${encoded}`, { headers: ADMIN })).status).toBe(404);
      expect((await g.request(`/admin/keys/rt-none?${secret}=1`, { headers: ADMIN })).status).toBe(400);
    }

    // Upstream failures: relayed errors (the mock answers 401 to a "bad key"), refused connection, timeouts, resets.
    expect((await call(SECRETS.alice, "error:401")).status).toBe(401);
    expect((await call(SECRETS.alice, "error:500")).status).toBe(500);
    expect((await call(SECRETS.alice, "error_raw:502")).status).toBe(502);
    expect((await call(SECRETS.alice, "hi", { model: "dead-model" })).status).toBe(502);
    expect((await call(SECRETS.alice, "slow_headers:2000")).status).toBe(504);
    expect((await call(SECRETS.alice, "reset_after:2", { stream: true })).status).toBe(200);
    expect((await call(SECRETS.alice, "reset_after:0")).status).toBe(502);

    // Admin traffic, good and bad tokens.
    const created = await g.request("/admin/keys", {
      method: "POST",
      headers: ADMIN,
      body: JSON.stringify({ id: "rt-1", subject: { user: "rita", role: "developer", team: "research" } }),
      record: false,
    });
    expect(created.status).toBe(201);
    issuing.push(created.text, JSON.stringify(created.headers));
    issued.runtime = (JSON.parse(created.text) as { key: string }).key;
    expect((await call(issued.runtime, "say:hi")).status).toBe(200);
    const rotated = await g.request("/admin/keys/rt-1/rotate", { method: "POST", headers: ADMIN, body: JSON.stringify({ grace_seconds: 60 }), record: false });
    expect(rotated.status).toBe(200);
    issuing.push(rotated.text, JSON.stringify(rotated.headers));
    issued.rotated = (JSON.parse(rotated.text) as { key: string }).key;
    expect((await call(issued.rotated, "say:hi")).status).toBe(200);
    expect((await call(issued.runtime, "say:hi")).status).toBe(200);
    for (const path of ["/admin/keys", "/admin/keys/rt-1", "/admin/audit?limit=500", "/admin/audit/violations", "/admin/audit/verify", "/admin/spend?group_by=key", "/admin/policies", "/admin/approvals", "/admin/stop", "/metrics"]) {
      expect((await g.request(path, { headers: ADMIN })).status, path).toBeLessThan(500);
      expect((await g.request(path, { headers: bearer(`${SECRETS.admin}-wrong`) })).status, path).toBe(401);
      expect((await g.request(path, { headers: bearer(SECRETS.alice) })).status, path).toBe(401);
    }
    const evaluated = await g.request("/admin/policies/evaluate", {
      method: "POST",
      headers: ADMIN,
      body: JSON.stringify({ key_id: "alice-dev", request: { model: "gpt-4o", messages: [{ role: "user", content: "x" }] } }),
    });
    expect(evaluated.status).toBe(200);
    expect((await g.request("/admin/keys/rt-1/revoke", { method: "POST", headers: ADMIN, body: "{}" })).status).toBe(200);
    expect((await call(issued.rotated, "say:hi")).status).toBe(401);
  }, 30_000);

  it("scans the logs, the audit files and every response", async () => {
    await g.gateway.audit.writer.flush();
    const records = await g.records();
    expect(records.length).toBeGreaterThan(40);
    // The `log` sink really did put records into the captured pino output, so the scan covers them there too.
    expect(g.logs.length).toBeGreaterThanOrEqual(records.length);
    expect(g.logs.some((line) => line.includes(String(records[0]!.id)))).toBe(true);
    const wrongAdmin = { wrongAdmin: `${SECRETS.admin}-wrong` };
    expect(leaksOf(g, { ...issued, ...wrongAdmin })).toEqual([]);
    // The two issuing responses show their own new key, and nothing else.
    expect(findSecrets({ issuing }, { ...SECRETS, ...wrongAdmin })).toEqual([]);
    expect(findSecrets({ create: [issuing[0]!] }, { rotated: issued.rotated! })).toEqual([]);
    // Upstream saw its own key and never the client's, except where the client itself wrote a secret into what goes upstream.
    for (const seen of g.mock.requests.filter((request) => !request.rawBody.includes("say:placed"))) {
      expect(seen.headers.authorization).toBe(`Bearer ${SECRETS.upstream}`);
      expect(findSecrets({ upstream: [JSON.stringify(seen.rawHeaders), seen.rawBody] }, { ...SECRETS, upstream: "-none-", ...issued })).toEqual([]);
    }
  });
});
