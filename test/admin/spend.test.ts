import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { aggregateSpend, type SpendGroupBy, type SpendRow } from "../../src/admin/spend.js";
import type { AuditRange } from "../../src/audit/query.js";
import { queryFiles, scanFiles } from "../../src/audit/query-files.js";
import type { AuditRecord } from "../../src/audit/types.js";
import { writeThrough } from "../audit/file-helpers.js";
import { makeRecord, makeTempDir } from "../audit/fixtures.js";
import { allPages, query } from "../audit/query-helpers.js";

const COUNT = 4000;
const GROUPS: SpendGroupBy[] = ["key", "user", "team", "model", "day"];

let dir: string;
let cleanup: () => Promise<void>;
let records: AuditRecord[];

/** A deterministic mix over six days: calls of several keys, refusals, admin actions, late records. */
function manyRecords(): AuditRecord[] {
  let seed = 7;
  const next = (n: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed % n;
  };
  const start = Date.parse("2024-05-01T00:00:00.000Z");
  const out: AuditRecord[] = [];
  for (let index = 0; index < COUNT; index += 1) {
    // About 108 s apart, so the records span six days; one in 20 is a late record from hours before.
    const late = next(20) === 0 ? next(6 * 3_600_000) : 0;
    const ts = new Date(Math.max(start, start + index * 129_600 - late)).toISOString();
    const key = next(10);
    const admin = key === 9;
    // Refused before the upstream (a limit, a policy) or a model listing: neither is spend.
    const refused = index % 9 === 4;
    const listing = !admin && index % 13 === 5;
    out.push(
      makeRecord({
        ts,
        replica: "r1",
        key_id: admin ? null : key === 8 ? null : `key-${key % 4}`,
        user: admin ? "admin" : `user-${key % 3}`,
        team: key % 5 === 0 ? null : `team-${key % 2}`,
        path: admin ? "/admin/keys" : listing ? "/v1/models" : "/v1/chat/completions",
        action: admin ? "admin.keys.create" : listing ? null : "chat.completions",
        status: refused ? 429 : 200,
        upstream_ms: refused || admin || listing ? null : 10,
        model: key === 7 ? null : ["gpt-4o-mini", "gpt-4o", "o3"][next(3)] ?? null,
        input_tokens: next(5000),
        output_tokens: next(2000),
        cost: next(50_000) / 1_000_000,
      }),
    );
  }
  return out;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  records = manyRecords();
  await writeThrough(dir, records, { replica: "r1" });
});
afterAll(async () => {
  await cleanup();
});

/** The totals computed the plain way: integer micro-USD over governed calls that reached the upstream, in the range. */
function expectedRows(groupBy: SpendGroupBy, range: AuditRange): Map<string | null, Omit<SpendRow, "group">> {
  const rows = new Map<string | null, Omit<SpendRow, "group"> & { micros: number }>();
  for (const r of records) {
    const ms = Date.parse(r.ts);
    if (r.action !== "chat.completions" || r.upstream_ms === null) continue;
    if ((range.from !== undefined && ms < range.from) || (range.to !== undefined && ms >= range.to)) continue;
    const group = groupBy === "day" ? r.ts.slice(0, 10) : groupBy === "key" ? r.key_id : r[groupBy];
    const row = rows.get(group) ?? { requests: 0, input_tokens: 0, output_tokens: 0, cost: 0, micros: 0 };
    row.requests += 1;
    row.input_tokens += r.input_tokens;
    row.output_tokens += r.output_tokens;
    row.micros += Math.round(r.cost * 1_000_000);
    rows.set(group, row);
  }
  return new Map([...rows].map(([group, { micros, ...row }]) => [group, { ...row, cost: micros / 1_000_000 }]));
}

const byGroup = (rows: SpendRow[]) => new Map(rows.map(({ group, ...rest }) => [group, rest]));

describe("spend over a forward scan of many records", () => {
  it.each([
    ["the whole audit", {}],
    ["a range cutting through days and late records", { from: "2024-05-02T06:00:00Z", to: "2024-05-05" }],
  ])("totals every group over %s exactly", async (_name, params) => {
    const range = query(params);
    for (const groupBy of GROUPS) {
      const rows = await aggregateSpend(scanFiles(dir, "r1", range), groupBy);
      expect(byGroup(rows)).toEqual(expectedRows(groupBy, range));
    }
    const total = (await aggregateSpend(scanFiles(dir, "r1", range), "key")).reduce((sum, row) => sum + row.requests, 0);
    expect(total).toBeGreaterThan(1000);
  });

  it("gives the same rows as paging through the audit query", async () => {
    const range = { from: "2024-05-01T18:00:00Z", to: "2024-05-06T03:00:00Z" };
    const pages = await allPages((cursor) => queryFiles(dir, "r1", query({ ...range, limit: "1000", ...(cursor ? { cursor } : {}) })), 1000);
    expect(pages.flat().length).toBeGreaterThan(2000);
    for (const groupBy of GROUPS) {
      expect(await aggregateSpend(scanFiles(dir, "r1", query(range)), groupBy)).toEqual(await aggregateSpend(pages.flat(), groupBy));
    }
  });
});
