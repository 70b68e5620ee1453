import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KeyView } from "../../src/admin/keys.js";
import { ALICE_KEY, chat, expectError, type Harness, type ListBody, startHarness } from "./harness.js";

type Created = KeyView & { key: string };

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

const models = (key: string) => h.call(key, "GET", "/v1/models");

async function create(body: Record<string, unknown>): Promise<Created> {
  const reply = await h.admin<Created>("POST", "/keys", body);
  expect(reply.status).toBe(201);
  return reply.json;
}

describe("runtime keys", () => {
  it("creates a key shown once, usable at once, listed without secrets", async () => {
    const created = await create({ id: "bob-rt", subject: { user: "bob", role: "developer", team: "research" }, limits: { daily_cost: 5 } });
    expect(created).toMatchObject({
      id: "bob-rt",
      subject: { user: "bob", role: "developer", team: "research", purpose: null },
      limits: { daily_cost: 5 },
      disabled: false,
      revoked: false,
      expires_at: null,
      source: "runtime",
    });
    expect(created.key).toMatch(/^sk-spark-/);
    expect(Date.parse(created.created_at ?? "")).toBeGreaterThan(0);
    expect((await models(created.key)).status).toBe(200);

    const listed = await h.admin<ListBody<KeyView>>("GET", "/keys");
    expect(listed.json.data.map((key) => [key.id, key.source])).toEqual([
      ["alice-dev", "config"],
      ["bob-rt", "runtime"],
    ]);
    expect(listed.text).not.toMatch(/sha256|key_hash|previous_hash/);
    expect(listed.text).not.toContain(created.key);
    const one = await h.admin<KeyView>("GET", "/keys/bob-rt");
    expect(one.json).toMatchObject({ id: "bob-rt", source: "runtime" });
    expect(one.text).not.toContain("sha256");
    expectError(await h.admin("GET", "/keys/nobody"), 404, "not_found");
  });

  it("generates an id when none is given, and refuses a taken one", async () => {
    const created = await create({ subject: { user: "carol" } });
    expect(created.id).toMatch(/^key_/);
    expect(created.subject).toEqual({ user: "carol", role: "user", team: null, purpose: null });
    expectError(await h.admin("POST", "/keys", { id: created.id, subject: { user: "x" } }), 409, "key_exists", "id");
    expectError(await h.admin("POST", "/keys", { id: "alice-dev", subject: { user: "x" } }), 409, "key_not_runtime");
  });

  it("pages the key listing with limit and cursor, in the listing's order", async () => {
    const all = (await h.admin<ListBody<KeyView>>("GET", "/keys")).json.data.map((key) => key.id);
    expect(all.length).toBeGreaterThanOrEqual(3);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `/keys?limit=2${cursor === null ? "" : `&cursor=${cursor}`}`;
      const pageOf = await h.admin<ListBody<KeyView>>("GET", query);
      expect(pageOf.json.data.length).toBeLessThanOrEqual(2);
      seen.push(...pageOf.json.data.map((key) => key.id));
      cursor = pageOf.json.next_cursor;
    } while (cursor !== null);
    expect(seen).toEqual(all);
    expectError(await h.admin("GET", "/keys?limit=0"), 400, "invalid_body", "limit");
    expectError(await h.admin("GET", "/keys?limit=0x10"), 400, "invalid_body", "limit");
    expectError(await h.admin("GET", "/keys?cursor=bm9ib2R5"), 400, "invalid_body", "cursor");
    expectError(await h.admin("GET", "/keys?page=2"), 400, "invalid_body", "page");
  });

  it("patches limits field by field and applies them to the next call", async () => {
    const created = await create({ id: "dave-rt", subject: { user: "dave" }, limits: { daily_cost: 5 } });
    const patched = await h.admin<KeyView>("PATCH", "/keys/dave-rt", { limits: { requests_per_minute: 1 } });
    expect(patched.status).toBe(200);
    expect(patched.json.limits).toEqual({ daily_cost: 5, requests_per_minute: 1 });
    expect((await h.call(created.key, "POST", "/v1/chat/completions", chat("gpt-4o-mini"))).status).toBe(200);
    expectError(await h.call(created.key, "POST", "/v1/chat/completions", chat("gpt-4o-mini")), 429, "rate_limit_exceeded");

    const lifted = await h.admin<KeyView>("PATCH", "/keys/dave-rt", { limits: { requests_per_minute: null } });
    expect(lifted.json.limits).toEqual({ daily_cost: 5, requests_per_minute: null });
    expect((await h.call(created.key, "POST", "/v1/chat/completions", chat("gpt-4o-mini"))).status).toBe(200);

    expect((await h.admin<KeyView>("PATCH", "/keys/dave-rt", { disabled: true })).json.disabled).toBe(true);
    expectError(await models(created.key), 401, "invalid_api_key");
    await h.admin("PATCH", "/keys/dave-rt", { disabled: false });
    expect((await models(created.key)).status).toBe(200);

    expectError(await h.admin("PATCH", "/keys/dave-rt", { limits: { requests_per_minute: 0 } }), 400, "invalid_body", "limits.requests_per_minute");
    expectError(await h.admin("PATCH", "/keys/nobody", { disabled: true }), 404, "not_found");
  });

  it("merges the session block field by field too: raising max_cost keeps the call caps", async () => {
    await create({ id: "sess-rt", subject: { user: "sam" }, limits: { daily_cost: 5, session: { max_llm_calls: 2, max_tool_calls: 1 } } });
    const raised = await h.admin<KeyView>("PATCH", "/keys/sess-rt", { limits: { session: { max_cost: 1 } } });
    expect(raised.json.limits).toEqual({ daily_cost: 5, session: { max_llm_calls: 2, max_tool_calls: 1, max_cost: 1 } });
    const lifted = await h.admin<KeyView>("PATCH", "/keys/sess-rt", { limits: { session: { max_llm_calls: null } } });
    expect(lifted.json.limits).toEqual({ daily_cost: 5, session: { max_llm_calls: null, max_tool_calls: 1, max_cost: 1 } });
    // `session: null` lifts the whole block, as null lifts any limit.
    const none = await h.admin<KeyView>("PATCH", "/keys/sess-rt", { limits: { session: null } });
    expect(none.status).toBe(200);
    expect(none.json.limits).toEqual({ daily_cost: 5 });
  });

  it("names an unknown field of an admin body as the 400's param", async () => {
    expectError(await h.admin("POST", "/keys", { subject: { user: "zed" }, bogus: 1 }), 400, "invalid_body", "bogus");
  });

  it("refuses to change a config key with 409 key_not_runtime", async () => {
    expectError(await h.admin("PATCH", "/keys/alice-dev", { disabled: true }), 409, "key_not_runtime");
    expectError(await h.admin("POST", "/keys/alice-dev/revoke"), 409, "key_not_runtime");
    expectError(await h.admin("POST", "/keys/alice-dev/rotate", { grace_seconds: 10 }), 409, "key_not_runtime");
    expect((await models(ALICE_KEY)).status).toBe(200);
  });

  it("revokes a key at once", async () => {
    const created = await create({ id: "erin-rt", subject: { user: "erin" } });
    expect((await models(created.key)).status).toBe(200);
    const revoked = await h.admin<KeyView>("POST", "/keys/erin-rt/revoke");
    expect(revoked.json).toMatchObject({ id: "erin-rt", revoked: true });
    expectError(await models(created.key), 401, "invalid_api_key");
    expectError(await h.admin("PATCH", "/keys/erin-rt", { disabled: false }), 409, "key_not_runtime");
    // The request is judged before the key's state: a bad body is a 400 even on a revoked key.
    expectError(await h.admin("PATCH", "/keys/erin-rt", { subject: { user: "x" } }), 400, "invalid_body");
    expectError(await h.admin("POST", "/keys/nobody/revoke"), 404, "not_found");
    // Revoking takes no body, but one that is sent must be a JSON object.
    const other = await create({ id: "erin-rt2", subject: { user: "erin" } });
    expectError(await h.admin("POST", "/keys/erin-rt2/revoke", '{"garbage'), 400, "invalid_json");
    expectError(await h.admin("POST", "/keys/erin-rt2/revoke", "[1,2]"), 400, "invalid_body");
    expect((await models(other.key)).status).toBe(200);
  });

  it("rotates: the old secret works for the grace period only", async () => {
    const created = await create({ id: "fay-rt", subject: { user: "fay" } });
    const rotated = await h.admin<Created>("POST", "/keys/fay-rt/rotate", { grace_seconds: 60 });
    expect(rotated.status).toBe(200);
    expect(rotated.json.key).not.toBe(created.key);
    expect(Date.parse(rotated.json.previous_key_expires_at ?? "")).toBeGreaterThan(Date.now());
    expect((await models(created.key)).status).toBe(200);
    expect((await models(rotated.json.key)).status).toBe(200);

    h.advance(61_000);
    expectError(await models(created.key), 401, "invalid_api_key");
    expect((await models(rotated.json.key)).status).toBe(200);
    // The grace is over: no time is shown for a secret that opens nothing.
    expect((await h.admin<Created>("GET", "/keys/fay-rt")).json.previous_key_expires_at).toBeNull();

    const again = await h.admin<Created>("POST", "/keys/fay-rt/rotate", {});
    expect(again.json.previous_key_expires_at).toBeNull();
    expectError(await models(rotated.json.key), 401, "invalid_api_key");
    expect((await models(again.json.key)).status).toBe(200);
  });

  it("rotates twice within a grace: each secret rotated out keeps its own grace", async () => {
    const first = await create({ id: "ivy-rt", subject: { user: "ivy" } });
    const second = await h.admin<Created>("POST", "/keys/ivy-rt/rotate", { grace_seconds: 300 });
    h.advance(60_000);
    const third = await h.admin<Created>("POST", "/keys/ivy-rt/rotate", { grace_seconds: 60 });
    for (const key of [first.key, second.json.key, third.json.key]) expect((await models(key)).status).toBe(200);
    // The latest grace of the two is what the key shows.
    expect(Date.parse(third.json.previous_key_expires_at ?? "")).toBe(Date.parse(second.json.previous_key_expires_at ?? ""));
    h.advance(61_000);
    expect((await models(first.key)).status).toBe(200);
    expectError(await models(second.json.key), 401, "invalid_api_key");
    h.advance(180_000);
    expectError(await models(first.key), 401, "invalid_api_key");
    expect((await models(third.json.key)).status).toBe(200);
    // A revoke ends every grace at once.
    await h.admin<Created>("POST", "/keys/ivy-rt/revoke");
    expectError(await models(third.json.key), 401, "invalid_api_key");
  });

  it("honours expires_at", async () => {
    const soon = new Date(Date.now() + 3_600_000 * 48).toISOString();
    const created = await create({ id: "gus-rt", subject: { user: "gus" }, expires_at: soon });
    expect(created.expires_at).toBe(soon);
    expect((await models(created.key)).status).toBe(200);
    h.advance(3_600_000 * 49);
    expectError(await models(created.key), 401, "invalid_api_key");
  });
});

describe("admin bodies", () => {
  it("takes an admin body up to server.max_body_bytes (10 MiB), and refuses one past it with 413", async () => {
    const padded = `{"id":"padded","subject":{"user":"pat"}${" ".repeat(2 * 1024 * 1024)}}`;
    expect((await h.admin("POST", "/keys", padded)).status).toBe(201);
    const tooBig = await h.admin<{ error: { code: string } }>("POST", "/keys", `{"subject":{"user":"pat"}${" ".repeat(10 * 1024 * 1024)}}`);
    expect(tooBig.status).toBe(413);
    expect(tooBig.json.error.code).toBe("request_too_large");
  });
});
