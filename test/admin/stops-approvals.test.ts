import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KeyView } from "../../src/admin/keys.js";
import type { ApprovalView as PublicApproval } from "../../src/approvals/service.js";
import { ADMIN_TOKEN, ALICE_KEY, chat, DANA_TOKEN, EVE_TOKEN, expectError, type Harness, type ListBody, startHarness } from "./harness.js";

let h: Harness;

/** What a stream still has to send, to its end. */
async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text;
    text += new TextDecoder().decode(value);
  }
}
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

describe("emergency stops", () => {
  it("keeps no secret in a stop's reason, which every halted caller is told", async () => {
    const stopped = await h.admin("POST", "/stop", { user: "alice", reason: `dana's token leaked (dana:${DANA_TOKEN}.)` });
    expect(stopped.status).toBe(201);
    const refused = await h.call(ALICE_KEY, "GET", "/v1/models");
    expectError(refused, 403, "emergency_stop");
    const listed = await h.admin("GET", "/stop");
    for (const text of [JSON.stringify(stopped.json), JSON.stringify(refused.json), JSON.stringify(listed.json)]) {
      expect(text).not.toContain(DANA_TOKEN);
      expect(text).toContain("[REDACTED_SECRET]");
    }
    expect((await h.admin("POST", "/stop/lift", { user: "alice" })).status).toBe(200);
  });

  it("halts a user until lifted, and lists the stop", async () => {
    expect((await h.call(ALICE_KEY, "GET", "/v1/models")).status).toBe(200);
    const stopped = await h.admin("POST", "/stop", { user: "alice", reason: "runaway agent" });
    expect(stopped.status).toBe(201);
    expect(stopped.json).toMatchObject({ kind: "user", value: "alice", user: "alice", reason: "runaway agent", by: "admin" });
    expectError(await h.call(ALICE_KEY, "GET", "/v1/models"), 403, "emergency_stop");

    const listed = await h.admin<ListBody<{ kind: string; value: string; user?: string }>>("GET", "/stop");
    expect(listed.json.data.map((s) => `${s.kind}:${s.value}`)).toEqual(["user:alice"]);
    // The target also under the field the request named it by, so a client can lift with the item as listed.
    expect(listed.json.data[0]?.user).toBe("alice");

    expect((await h.admin("POST", "/stop/lift", { user: "alice" })).status).toBe(200);
    expect((await h.call(ALICE_KEY, "GET", "/v1/models")).status).toBe(200);
    expect((await h.admin<ListBody<unknown>>("GET", "/stop")).json.data).toEqual([]);
    expectError(await h.admin("POST", "/stop/lift", { user: "alice" }), 404, "not_found");
  });

  it("needs exactly one target; a stop without a reason still halts, and says so", async () => {
    expectError(await h.admin("POST", "/stop", { user: "a", team: "b", reason: "x" }), 400, "invalid_body", "key_id");
    expectError(await h.admin("POST", "/stop", { reason: "x" }), 400, "invalid_body", "key_id");
    expectError(await h.admin("POST", "/stop", { team: "nobody", reason: "" }), 400, "invalid_body", "reason");
    const stopped = await h.admin<{ reason: string }>("POST", "/stop", { team: "nobody" });
    expect(stopped.status).toBe(201);
    expect(stopped.json.reason).toBe("no reason given");
    expect((await h.admin("POST", "/stop/lift", { team: "nobody" })).status).toBe(200);
  });

  it("refuses a stop on a key id no config or runtime key has (a typo would halt nothing), and takes a revoked one", async () => {
    expectError(await h.admin("POST", "/stop", { key_id: "alice-devv", reason: "typo" }), 404, "not_found", "key_id");
    expect((await h.admin<ListBody<unknown>>("GET", "/stop")).json.data).toEqual([]);
    expect((await h.admin("POST", "/stop", { key_id: "alice-dev", reason: "config key" })).status).toBe(201);
    await h.admin("POST", "/keys", { id: "gone-soon", subject: { user: "gus" } });
    await h.admin("POST", "/keys/gone-soon/revoke");
    expect((await h.admin("POST", "/stop", { key_id: "gone-soon", reason: "revoked" })).status).toBe(201);
    for (const key_id of ["alice-dev", "gone-soon"]) expect((await h.admin("POST", "/stop/lift", { key_id })).status).toBe(200);
  });

  it("ends an open stream of the stopped key at once", async () => {
    const created = await h.admin<KeyView & { key: string }>("POST", "/keys", { id: "streamer", subject: { user: "sam" } });
    const response = await fetch(`${h.gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${created.json.key}`, "content-type": "application/json" },
      body: JSON.stringify({ ...chat("gpt-4o-mini", "chunks:50 delay:100"), stream: true }),
    });
    expect(response.status).toBe(200);
    const reader = response.body?.getReader();
    if (reader === undefined) throw new Error("no body");
    await reader.read();
    const started = Date.now();
    expect((await h.admin("POST", "/stop", { key_id: "streamer", reason: "halt" })).status).toBe(201);
    const text = await readRest(reader);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(text).toContain("emergency_stop");
    expect(text).not.toContain("[DONE]");
    await h.admin("POST", "/stop/lift", { key_id: "streamer" });
  });

  it("ends an open stream of a key revoked (or disabled) during it, with invalid_api_key", async () => {
    for (const [id, end] of [
      ["revoked-mid", (key: string) => h.admin("POST", `/keys/${key}/revoke`)],
      ["disabled-mid", (key: string) => h.admin("PATCH", `/keys/${key}`, { disabled: true })],
    ] as const) {
      const created = await h.admin<KeyView & { key: string }>("POST", "/keys", { id, subject: { user: "sam" } });
      const response = await fetch(`${h.gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${created.json.key}`, "content-type": "application/json" },
        body: JSON.stringify({ ...chat("gpt-4o-mini", "chunks:50 delay:100"), stream: true }),
      });
      const reader = response.body?.getReader();
      if (reader === undefined) throw new Error("no body");
      await reader.read();
      const started = Date.now();
      expect((await end(id)).status).toBe(200);
      const text = await readRest(reader);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(text).toContain('"code":"invalid_api_key"');
      expect(text).not.toContain("[DONE]");
    }
  });
});

describe("approvals", () => {
  async function requestApproval(text: string): Promise<string> {
    const refused = await h.call(ALICE_KEY, "POST", "/v1/chat/completions", chat("gpt-4o", text));
    const error = expectError(refused, 403, "approval_required");
    return String(error.approval_id);
  }

  it("lists pending approvals to approvers, without held bodies", async () => {
    const id = await requestApproval("first");
    const pending = await h.admin<ListBody<PublicApproval>>("GET", "/approvals?status=pending", undefined, DANA_TOKEN);
    expect(pending.status).toBe(200);
    const listed = pending.json.data.find((a) => a.id === id);
    expect(listed).toMatchObject({ status: "pending", key_id: "alice-dev", rule: "gpt4o_needs_security", held: false });
    expect((await h.admin<PublicApproval>("GET", `/approvals/${id}`, undefined, DANA_TOKEN)).json.id).toBe(id);
    expectError(await h.admin("GET", "/approvals/apr_missing", undefined, DANA_TOKEN), 404, "not_found");
    expectError(await h.admin("GET", "/approvals?status=maybe", undefined, DANA_TOKEN), 400, "invalid_body", "status");
    expectError(await h.admin("GET", "/approvals?sort=asc", undefined, DANA_TOKEN), 400, "invalid_body", "sort");
    expectError(await h.admin("GET", "/approvals?cursor=nope", undefined, DANA_TOKEN), 400, "invalid_body", "cursor");
    // An empty value is no filter, as in the audit query.
    expect((await h.admin<ListBody<PublicApproval>>("GET", "/approvals?status=", undefined, DANA_TOKEN)).status).toBe(200);
    const metrics = await (await fetch(`${h.gateway.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    const gauge = Number(/^spark_approvals_pending (\d+)$/m.exec(metrics)?.[1]);
    expect(gauge).toBe(pending.json.data.length);
    expect(gauge).toBeGreaterThan(0);
  });

  it("checks the approver's role, decides once, and the retry passes", async () => {
    const id = await requestApproval("second");
    expectError(await h.admin("POST", `/approvals/${id}/approve`, { comment: "ok" }, EVE_TOKEN), 403, "approver_role_mismatch");

    expectError(await h.admin("POST", `/approvals/${id}/approve`, { comment: 42 }, DANA_TOKEN), 400, "invalid_body", "comment");
    // A body naming someone else as the decider is not read: the credential decides.
    const decided = await h.admin<PublicApproval>(
      "POST",
      `/approvals/${id}/approve`,
      { comment: "looks fine", decided_by: "mallory", approver: "mallory", role: "admin" },
      DANA_TOKEN,
    );
    expect(decided.status).toBe(200);
    expect(decided.json).toMatchObject({ status: "approved", decided_by: "dana", decided_role: "security", comment: "looks fine" });

    expectError(await h.admin("POST", `/approvals/${id}/deny`, {}, DANA_TOKEN), 409, "approval_not_pending");
    expectError(await h.admin("POST", "/approvals/apr_missing/approve", {}, DANA_TOKEN), 404, "not_found");

    const retry = await h.call(ALICE_KEY, "POST", "/v1/chat/completions", chat("gpt-4o", "second"), { "x-approval-id": id });
    expect(retry.status).toBe(200);
    const used = await h.admin<ListBody<PublicApproval>>("GET", "/approvals?status=used");
    expect(used.json.data.map((a) => a.id)).toContain(id);
  });

  it("lets the superuser deny without a body; the approver's name comes from the credential", async () => {
    const id = await requestApproval("third");
    const denied = await h.admin<PublicApproval>("POST", `/approvals/${id}/deny`);
    expectError(denied, 403, "approver_role_mismatch");
    const byDana = await h.admin<PublicApproval>("POST", `/approvals/${id}/deny`, undefined, DANA_TOKEN);
    expect(byDana.json).toMatchObject({ status: "denied", decided_by: "dana", comment: null });
  });

  it("pages the list newest first with limit and next_cursor, each approval once", async () => {
    for (const text of ["page-a", "page-b", "page-c"]) await requestApproval(text);
    const all = (await h.admin<ListBody<PublicApproval>>("GET", "/approvals", undefined, DANA_TOKEN)).json.data.map((a) => a.id);
    expect(all.length).toBeGreaterThanOrEqual(5);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? "limit=2" : `limit=2&cursor=${cursor}`;
      const listed = await h.admin<ListBody<PublicApproval>>("GET", `/approvals?${query}`, undefined, DANA_TOKEN);
      expect(listed.json.data.length).toBeLessThanOrEqual(2);
      seen.push(...listed.json.data.map((a) => a.id));
      cursor = listed.json.next_cursor;
    } while (cursor !== null);
    expect(seen).toEqual(all);
  });

  // Last: it moves the gateway's clock past every approval made so far.
  it("shows an approval whose time is up as expired, pending or approved, in its own list", async () => {
    const waiting = await requestApproval("fourth");
    const approved = await requestApproval("fifth");
    await h.admin("POST", `/approvals/${approved}/approve`, {}, DANA_TOKEN);
    h.advance(3601 * 1000);
    for (const id of [waiting, approved]) {
      expect((await h.admin<PublicApproval>("GET", `/approvals/${id}`, undefined, DANA_TOKEN)).json.status).toBe("expired");
    }
    const pending = await h.admin<ListBody<PublicApproval>>("GET", "/approvals?status=pending", undefined, DANA_TOKEN);
    expect(pending.json.data.map((a) => a.id)).not.toContain(waiting);
    const expired = await h.admin<ListBody<PublicApproval>>("GET", "/approvals?status=expired", undefined, DANA_TOKEN);
    expect(expired.json.data.map((a) => a.id)).toEqual(expect.arrayContaining([waiting, approved]));
    expect(expired.json.data.every((a) => a.status === "expired")).toBe(true);
    expectError(await h.call(ALICE_KEY, "POST", "/v1/chat/completions", chat("gpt-4o", "fifth"), { "x-approval-id": approved }), 403, "approval_expired");
  });
});
