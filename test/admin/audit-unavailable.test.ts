import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpendRow } from "../../src/admin/spend.js";
import type { AuditRecord } from "../../src/audit/types.js";
import { startRedis } from "../helpers/index.js";
import { ALICE_KEY, chat, expectError, type Harness, type ListBody, startHarness } from "./harness.js";

// Null only outside CI when redis-server is not installed; under CI a missing binary fails here.
const server = await startRedis();

describe.skipIf(server === null)("admin audit reads while the audit's Redis stream is down", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ auditSinks: `[{ redis_stream: { key: "spark:audit", url: "${server!.url}" } }]` });
  });
  afterAll(async () => {
    // The writer holds the records of the outage until Redis is back: closing flushes them.
    await server?.restart();
    await h?.close();
    await server?.stop();
  });

  it("answers 503 audit_unavailable with retry-after, then serves again once Redis is back", async () => {
    expect((await h.call(ALICE_KEY, "POST", "/v1/chat/completions", chat("gpt-4o-mini", "tokens:5"))).status).toBe(200);
    await h.flushAudit();
    const before = await h.admin<ListBody<AuditRecord>>("GET", "/audit?user=alice");
    expect(before.json.data.map((r) => r.model)).toEqual(["gpt-4o-mini"]);
    expect((await h.admin<ListBody<SpendRow>>("GET", "/spend")).json.data.map((row) => row.requests)).toEqual([1]);

    // A server that hangs (SIGSTOP) rather than goes away: reads fail within seconds, never wait on it.
    server!.pause();
    const startedAt = Date.now();
    for (const path of ["/audit?limit=1", "/spend?group_by=key"]) expectError(await h.admin("GET", path), 503, "audit_unavailable");
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    server!.resume();

    await server!.kill9();
    for (const path of ["/audit", "/audit/violations", "/audit/high-cost?min_cost=0.5", "/spend?group_by=model"]) {
      const reply = await h.admin("GET", path);
      const error = expectError(reply, 503, "audit_unavailable");
      expect(error.type).toBe("api_error");
      expect(reply.headers.get("retry-after")).toBe("1");
    }

    // A restart comes back empty (no persistence): the call's record is gone, reads work again.
    await server!.restart();
    await h.flushAudit();
    const after = await h.admin<ListBody<AuditRecord>>("GET", "/audit?user=admin&limit=1000");
    expect(after.status).toBe(200);
    // The refusals while it was killed (those while it hung may have reached it before the kill wiped it).
    const refused = after.json.data.filter((r) => r.status === 503);
    expect(refused.length).toBeGreaterThanOrEqual(4);
    expect(new Set(refused.map((r) => r.error_code))).toEqual(new Set(["audit_unavailable"]));
    expect(refused.map((r) => r.path)).toEqual(expect.arrayContaining(["/admin/audit/violations", "/admin/audit/high-cost"]));
  });
});
