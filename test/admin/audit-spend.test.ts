import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KeyView } from "../../src/admin/keys.js";
import type { SpendRow } from "../../src/admin/spend.js";
import type { AuditRecord } from "../../src/audit/types.js";
import { ALICE_KEY, chat, DANA_TOKEN, expectError, type Harness, type ListBody, startHarness } from "./harness.js";

let h: Harness;
let bobKey: string;

beforeAll(async () => {
  h = await startHarness();
  bobKey = (await h.admin<KeyView & { key: string }>("POST", "/keys", { id: "bob-rt", subject: { user: "bob", team: "ops" } })).json.key;
  const completions = (key: string, body: Record<string, unknown>) => h.call(key, "POST", "/v1/chat/completions", body);
  expect((await completions(ALICE_KEY, chat("gpt-4o-mini", "tokens:20"))).status).toBe(200);
  expect((await completions(ALICE_KEY, chat("gpt-4o-mini", "tokens:7"))).status).toBe(200);
  expect((await completions(ALICE_KEY, chat("o3"))).status).toBe(403);
  expect((await completions(ALICE_KEY, chat("gpt-4o"))).status).toBe(403);
  expect((await completions(bobKey, chat("gpt-4o-mini", "tokens:30"))).status).toBe(200);
  expect((await h.call(bobKey, "POST", "/v1/embeddings", { model: "text-embedding-3-small", input: "some words" })).status).toBe(200);
  await h.flushAudit();
});
afterAll(() => h.close());

async function records(query: string): Promise<AuditRecord[]> {
  const reply = await h.admin<ListBody<AuditRecord>>("GET", `/audit${query}`);
  expect(reply.status).toBe(200);
  return reply.json.data;
}

describe("audit queries", () => {
  it("filters by user, model, effect and status, newest first", async () => {
    const alice = await records("?user=alice");
    expect(alice.map((r) => r.model)).toEqual(["gpt-4o", "o3", "gpt-4o-mini", "gpt-4o-mini"]);
    expect(alice.every((r) => r.key_id === "alice-dev" && r.team === "research")).toBe(true);
    expect((await records("?user=alice&model=gpt-4o-mini&status=200")).length).toBe(2);
    const denied = await records("?effect=DENY");
    expect(denied.map((r) => [r.model, r.error_code, r.decision?.rule])).toEqual([["o3", "policy_denied", "o3_for_admins_only"]]);
    const approvals = await records("?error_code=approval_required");
    expect((await records(`?approval_id=${approvals[0]?.approval_id}`)).map((r) => r.id)).toEqual([approvals[0]?.id]);
  });

  it("has the violations and high-cost shortcuts, taking the same filters", async () => {
    const violations = await h.admin<ListBody<AuditRecord>>("GET", "/audit/violations?user=alice");
    expect(violations.json.data.map((r) => r.error_code)).toEqual(["approval_required", "policy_denied"]);
    const costly = await h.admin<ListBody<AuditRecord>>("GET", "/audit/high-cost?min_cost=0.000001&team=research");
    expect(costly.json.data.length).toBe(2);
    expect(costly.json.data.every((r) => r.cost > 0 && r.user === "alice")).toBe(true);
    expect((await h.admin<ListBody<AuditRecord>>("GET", "/audit/high-cost")).json.data).toEqual([]);
  });

  it("pages with next_cursor", async () => {
    const first = await h.admin<ListBody<AuditRecord>>("GET", "/audit?user=alice&limit=3");
    expect(first.json.data.length).toBe(3);
    expect(first.json.next_cursor).not.toBeNull();
    const second = await h.admin<ListBody<AuditRecord>>("GET", `/audit?user=alice&limit=3&cursor=${first.json.next_cursor}`);
    expect(second.json.data.map((r) => r.model)).toEqual(["gpt-4o-mini"]);
    expect(second.json.next_cursor).toBeNull();
  });

  it("refuses a bad filter naming it", async () => {
    expectError(await h.admin("GET", "/audit?status=abc"), 400, "invalid_body", "status");
    expectError(await h.admin("GET", "/audit?from=yesterday"), 400, "invalid_body", "from");
    expectError(await h.admin("GET", "/audit?colour=red"), 400, "invalid_body");
    // Routes that take no parameter refuse one too, rather than ignore it.
    for (const path of ["/audit/verify", "/keys/alice-dev", "/approvals/apr_x", "/stop", "/policies"]) {
      const refused = await h.admin("GET", `${path}?colour=red`);
      expectError(refused, 400, "invalid_body", "colour");
      expect(JSON.stringify(refused.json)).toContain("this route takes no parameter");
      // Named though left empty: an unknown parameter is never ignored.
      expectError(await h.admin("GET", `${path}?colour`), 400, "invalid_body", "colour");
    }
    expectError(await h.admin("GET", "/audit?colour="), 400, "invalid_body", "colour");
    // Numbers as a query writes them, in decimal digits: not exponents, hex or padding.
    for (const [query, param] of [["limit=1e2", "limit"], ["limit=0x10", "limit"], ["limit=%205", "limit"], ["status=2e2", "status"], ["min_cost=1e-3", "min_cost"], ["min_cost=-1", "min_cost"]]) {
      expectError(await h.admin("GET", `/audit?${query}`), 400, "invalid_body", param);
    }
    expectError(await h.admin("GET", "/approvals?limit=1e2"), 400, "invalid_body", "limit");
    expect((await h.admin("GET", "/audit?min_cost=0.25&limit=7&status=200")).status).toBe(200);
  });

  it("refuses a parameter named like a member of every object as it refuses any unknown one", async () => {
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      for (const route of ["/audit", "/audit/violations", "/audit/high-cost", "/spend", "/keys", "/approvals"]) {
        const error = expectError(await h.admin("GET", `${route}?${name}=1`), 400, "invalid_body", name);
        expect(error.message, `${route}?${name}`).toMatch(new RegExp(`^\`${name}\` is not a`));
      }
    }
  });

  it("records admin actions as admin.<route> with the token's name", async () => {
    const admin = await records("?user=admin&limit=1000");
    expect(admin.map((r) => r.action)).toContain("admin.keys.create");
    expect(admin.find((r) => r.action === "admin.keys.create")).toMatchObject({ role: "admin", status: 201, path: "/admin/keys" });
  });

  it("records what an admin change was: its body (redacted; a create's with the id it made), never as the key's own record", async () => {
    const created = await h.admin<{ id: string }>("POST", "/keys", { subject: { user: "audited", team: "ops" }, limits: { daily_cost: 3 } });
    const id = created.json.id;
    await h.admin("PATCH", `/keys/${id}`, { limits: { daily_cost: 4 } });
    await h.admin("POST", "/stop", { key_id: id, reason: `mail ops@example.com about it (dana's token ${DANA_TOKEN})` });
    const admin = (await records("?user=admin&limit=1000")).filter((r) => JSON.stringify(r.body ?? null).includes(id) || r.path === `/admin/keys/${id}`);
    const [stop, patch, create] = admin;
    expect(create).toMatchObject({ action: "admin.keys.create", key_id: null, body: { id, subject: { user: "audited", team: "ops" }, limits: { daily_cost: 3 } } });
    expect(patch).toMatchObject({ action: "admin.keys.update", key_id: null, body: { limits: { daily_cost: 4 } } });
    expect(stop).toMatchObject({ action: "admin.stop.create", key_id: null, body: { key_id: id, reason: "mail [REDACTED:email] about it (dana's token [REDACTED_SECRET])" } });
    // A key's own records are its calls only.
    expect(await records(`?key_id=${id}`)).toEqual([]);
    await h.admin("POST", "/stop/lift", { key_id: id });
    expectError(await h.admin("POST", `/keys/${id}/revoke`, { why: "unknown field" }), 400, "invalid_body", "why");
  });
});

describe("spend", () => {
  function expected(all: AuditRecord[], group: (r: AuditRecord) => string | null): Map<string | null, Omit<SpendRow, "group">> {
    const rows = new Map<string | null, Omit<SpendRow, "group">>();
    for (const r of all) {
      const row = rows.get(group(r)) ?? { requests: 0, input_tokens: 0, output_tokens: 0, cost: 0 };
      row.requests += 1;
      row.input_tokens += r.input_tokens;
      row.output_tokens += r.output_tokens;
      row.cost = (Math.round(row.cost * 1e6) + Math.round(r.cost * 1e6)) / 1e6;
      rows.set(group(r), row);
    }
    return rows;
  }

  it("aggregates calls by key, model, user, team and day from the audit records", async () => {
    // Calls that reached the upstream: the two refused ones are not spend.
    const calls = (await records("?limit=1000")).filter((r) => ["chat.completions", "embeddings"].includes(r.action ?? "") && r.upstream_ms !== null);
    expect(calls.length).toBe(4);
    for (const [groupBy, group] of [
      ["key", (r: AuditRecord) => r.key_id],
      ["model", (r: AuditRecord) => r.model],
      ["user", (r: AuditRecord) => r.user],
      ["team", (r: AuditRecord) => r.team],
      ["day", (r: AuditRecord) => r.ts.slice(0, 10)],
    ] as const) {
      const reply = await h.admin<ListBody<SpendRow>>("GET", `/spend?group_by=${groupBy}`);
      expect(reply.status).toBe(200);
      const rows = new Map(reply.json.data.map(({ group: g, ...rest }) => [g, rest]));
      expect(rows).toEqual(expected(calls, group));
    }
    const byKey = await h.admin<ListBody<SpendRow>>("GET", "/spend?group_by=key");
    const alice = byKey.json.data.find((row) => row.group === "alice-dev");
    expect(alice?.requests).toBe(2);
    expect(alice?.output_tokens).toBe(27);
    expect(alice?.cost).toBeGreaterThan(0);
  });

  it("takes a time range", async () => {
    const future = new Date(Date.now() + 86_400_000).toISOString();
    expect((await h.admin<ListBody<SpendRow>>("GET", `/spend?from=${future}`)).json.data).toEqual([]);
    const all = await h.admin<ListBody<SpendRow>>("GET", `/spend?group_by=day&to=${future}`);
    expect(all.json.data.reduce((sum, row) => sum + row.requests, 0)).toBe(4);
    expectError(await h.admin("GET", "/spend?group_by=planet"), 400, "invalid_body", "group_by");
    expectError(await h.admin("GET", "/spend?from=soon"), 400, "invalid_body", "from");
    expectError(await h.admin("GET", "/spend?limit=1"), 400, "invalid_body", "limit");
  });
});

describe("verify", () => {
  it("reports records cut off the end of the open file, whose remaining links are intact", async () => {
    await h.flushAudit();
    const path = join(h.auditDir, readdirSync(h.auditDir).filter((name) => name.endsWith(".jsonl")).sort().at(-1) ?? "");
    const whole = readFileSync(path, "utf8");
    const kept = whole.split("\n").filter((line) => line !== "").slice(0, -2);
    writeFileSync(path, kept.map((line) => `${line}\n`).join(""));
    const cut = await h.admin<{ ok: boolean; first_broken: { id: string; reason: string } }>("GET", "/audit/verify");
    expect(cut.status).toBe(409);
    expect(cut.json.first_broken).toEqual({ id: (JSON.parse(kept.at(-1) ?? "{}") as AuditRecord).id, reason: "records missing after it" });
    // Put back, with what was written since: the chain is whole again.
    await h.flushAudit();
    const since = readFileSync(path, "utf8").split("\n").filter((line) => line !== "").slice(kept.length);
    writeFileSync(path, whole + since.map((line) => `${line}\n`).join(""));
    expect((await h.admin<{ ok: boolean }>("GET", "/audit/verify")).json.ok).toBe(true);
  });

  it("reports a trail emptied while the gateway runs, then the file put back", async () => {
    await h.flushAudit();
    const path = join(h.auditDir, readdirSync(h.auditDir).filter((name) => name.endsWith(".jsonl")).sort().at(-1) ?? "");
    const whole = readFileSync(path, "utf8");
    writeFileSync(path, "");
    const gone = await h.admin<{ ok: boolean; first_broken: { id: string; reason: string } }>("GET", "/audit/verify");
    expect(gone.status).toBe(409);
    expect(gone.json.first_broken.reason).toBe("every record missing");
    await h.flushAudit();
    const since = readFileSync(path, "utf8");
    writeFileSync(path, whole + since);
    expect((await h.admin<{ ok: boolean }>("GET", "/audit/verify")).json.ok).toBe(true);
  });

  it("reports an intact chain, then the first tampered record", async () => {
    const intact = await h.admin<{ ok: boolean; records: number }>("GET", "/audit/verify");
    expect(intact.status).toBe(200);
    expect(intact.json.ok).toBe(true);
    expect(intact.json.records).toBeGreaterThan(6);

    await h.flushAudit();
    const [file] = readdirSync(h.auditDir).filter((name) => name.endsWith(".jsonl"));
    const path = join(h.auditDir, file ?? "");
    const lines = readFileSync(path, "utf8").split("\n");
    const index = lines.findIndex((line) => line.includes('"status":200') && line.includes('"model":"gpt-4o-mini"'));
    const target = JSON.parse(lines[index] ?? "{}") as AuditRecord;
    lines[index] = (lines[index] ?? "").replace('"status":200', '"status":201');
    writeFileSync(path, lines.join("\n"));

    const broken = await h.admin<{ ok: boolean; first_broken: { id: string; reason: string } }>("GET", "/audit/verify");
    expect(broken.status).toBe(409);
    expect(broken.json.ok).toBe(false);
    expect(broken.json.first_broken.id).toBe(target.id);
  });
});
