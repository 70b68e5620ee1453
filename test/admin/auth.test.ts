import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE_KEY, DANA_TOKEN, expectError, type Harness, type ListBody, startHarness } from "./harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

describe("admin credentials", () => {
  it("refuses a request without a token with 401 invalid_admin_token", async () => {
    expectError(await h.admin("GET", "/keys", undefined, null), 401, "invalid_admin_token");
  });

  it("refuses a wrong token", async () => {
    expectError(await h.admin("GET", "/keys", undefined, "not-the-token"), 401, "invalid_admin_token");
  });

  it("never takes a virtual key as an admin credential", async () => {
    expect((await h.call(ALICE_KEY, "GET", "/v1/models")).status).toBe(200);
    expectError(await h.admin("GET", "/keys", undefined, ALICE_KEY), 401, "invalid_admin_token");
    expectError(await h.admin("GET", "/approvals", undefined, ALICE_KEY), 401, "invalid_admin_token");
  });

  it("lets an approver token list approvals but nothing beyond them (403 admin_forbidden)", async () => {
    expect((await h.admin<ListBody<unknown>>("GET", "/approvals", undefined, DANA_TOKEN)).json.object).toBe("list");
    for (const [method, path] of [
      ["GET", "/keys"],
      ["POST", "/stop"],
      ["GET", "/audit"],
      ["GET", "/spend"],
      ["GET", "/policies"],
    ] as const) {
      expectError(await h.admin(method, path, undefined, DANA_TOKEN), 403, "admin_forbidden");
    }
    // Refused, the approver is still audited by name.
    const refused = await h.admin("GET", "/spend", undefined, DANA_TOKEN);
    await h.flushAudit();
    const audit = await h.admin<ListBody<Record<string, unknown>>>("GET", "/audit?status=403&limit=50");
    expect(audit.json.data.find((r) => r.id === refused.headers.get("x-request-id"))).toMatchObject({ user: "dana", role: "security", action: "admin.spend" });
  });

  it("answers 405 with `allow` for a wrong method and 404 for an unknown admin path", async () => {
    const wrong = await h.admin("DELETE", "/keys");
    expectError(wrong, 405, "method_not_allowed");
    expect(wrong.headers.get("allow")).toBe("GET, POST");
    const nowhere = await h.admin("GET", "/nothing-here");
    expectError(nowhere, 404, "not_found");
    const unknownPath = await h.call(ALICE_KEY, "GET", "/v1/nothing-here");
    expectError(unknownPath, 404, "not_found");
    // The credential is checked first, and the caller is audited as the actor.
    expectError(await h.admin("DELETE", "/keys", undefined, null), 401, "invalid_admin_token");
    const byApprover = await h.admin("PUT", "/approvals", undefined, DANA_TOKEN);
    expectError(byApprover, 405, "method_not_allowed");
    await h.flushAudit();
    const audit = await h.admin<ListBody<{ id: string; user: string | null; status: number }>>("GET", "/audit?limit=100");
    for (const reply of [wrong, byApprover]) expect(audit.json.data.find((r) => r.id === reply.headers.get("x-request-id"))).toMatchObject({ status: 405, user: reply === wrong ? "admin" : "dana" });
    // A path no route serves is answered the same to anyone, and recorded under the credential it carried.
    expect(audit.json.data.find((r) => r.id === nowhere.headers.get("x-request-id"))).toMatchObject({ status: 404, user: "admin" });
    expect(audit.json.data.find((r) => r.id === unknownPath.headers.get("x-request-id"))).toMatchObject({ status: 404, user: "alice" });
  });

  it("refuses bad JSON and wrong shapes with the field's path", async () => {
    expectError(await h.admin("POST", "/keys", "{not json"), 400, "invalid_json");
    expectError(await h.admin("POST", "/keys", { subject: { user: "x", colour: "red" } }), 400, "invalid_body", "subject.colour");
    expectError(await h.admin("POST", "/keys", { subject: { user: "x" }, limits: { daily_cost: -1 } }), 400, "invalid_body", "limits.daily_cost");
  });
});
