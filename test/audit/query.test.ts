import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor, matchesQuery, parseAuditQuery } from "../../src/audit/query.js";
import { queryFiles } from "../../src/audit/query-files.js";
import type { AuditRecord } from "../../src/audit/types.js";
import { makeTempDir } from "./fixtures.js";
import { writeThrough } from "./file-helpers.js";
import { allPages, ids, newestFirst, query, sampleRecords } from "./query-helpers.js";

let dir: string;
let cleanup: () => Promise<void>;
let r1: AuditRecord[];
let r2: AuditRecord[];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  r1 = sampleRecords("r1");
  r2 = sampleRecords("r2");
  await writeThrough(dir, r1, { replica: "r1" });
  await writeThrough(dir, r2, { replica: "r2" });
});
afterAll(async () => {
  await cleanup();
});

const expected = (records: AuditRecord[], keep: (record: AuditRecord) => boolean) => ids(newestFirst(records.filter(keep)));

describe("parseAuditQuery", () => {
  it("applies defaults and treats empty values as absent", () => {
    const parsed = parseAuditQuery(new URLSearchParams("user=&limit=&status=403&min_cost=0.5&from=2024-05-01"));
    expect(parsed).toEqual({
      ok: true,
      data: { kind: "all", limit: 100, status: 403, min_cost: 0.5, from: Date.parse("2024-05-01T00:00:00Z") },
    });
  });

  it("gives high-cost a default min_cost of 1.0 unless one is given", () => {
    expect(query({}, "high-cost").min_cost).toBe(1);
    expect(query({ min_cost: "0.25" }, "high-cost").min_cost).toBe(0.25);
  });

  it.each([
    [{ limit: "1001" }, "limit"],
    [{ limit: "0" }, "limit"],
    [{ status: "abc" }, "status"],
    [{ effect: "MAYBE" }, "effect"],
    [{ from: "yesterday" }, "from"],
    [{ cursor: "garbage" }, "cursor"],
    [{ usr: "alice" }, "usr"],
  ])("refuses %j naming the parameter", (params, param) => {
    const parsed = parseAuditQuery(params);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.param).toBe(param);
      expect(parsed.message.length).toBeGreaterThan(0);
    }
  });

  it("round-trips a cursor", () => {
    const cursor = encodeCursor({ id: "req-1", ts: "2024-05-01T00:00:00.000Z" });
    expect(decodeCursor(cursor)).toEqual({ id: "req-1", ts: "2024-05-01T00:00:00.000Z" });
    expect(query({ cursor }).cursor).toEqual({ id: "req-1", ts: "2024-05-01T00:00:00.000Z" });
  });
});

describe("queryFiles", () => {
  it("returns one replica's records newest first by ts, late records in place", async () => {
    const page = await queryFiles(dir, "r1", query({}));
    expect(ids(page.data)).toEqual(ids(newestFirst(r1)));
    expect(page.next_cursor).toBeNull();
  });

  it("reads every replica when none is given", async () => {
    const page = await queryFiles(dir, undefined, query({}));
    expect(ids(page.data)).toEqual(ids(newestFirst([...r1, ...r2])));
  });

  it.each<[string, Record<string, string>, (record: AuditRecord) => boolean]>([
    ["user", { user: "bob" }, (r) => r.user === "bob"],
    ["key_id", { key_id: "bob-key" }, (r) => r.key_id === "bob-key"],
    ["team", { team: "ops" }, (r) => r.team === "ops"],
    ["model", { model: "gpt-4o" }, (r) => r.model === "gpt-4o"],
    ["effect", { effect: "DENY" }, (r) => r.decision?.effect === "DENY"],
    ["status", { status: "403" }, (r) => r.status === 403],
    ["error_code", { error_code: "client_closed" }, (r) => r.error_code === "client_closed"],
    ["min_cost", { min_cost: "1" }, (r) => r.cost >= 1],
    ["approval_id", { approval_id: "ap_1" }, (r) => r.approval_id === "ap_1"],
    ["from", { from: "2024-05-02T09:00:00Z" }, (r) => r.ts >= "2024-05-02T09:00:00.000Z"],
    ["to (an instant, inclusive)", { to: "2024-05-02T09:00:00Z" }, (r) => r.ts <= "2024-05-02T09:00:00.000Z"],
    [
      "from and to (dates: the whole of the last day)",
      { from: "2024-05-02", to: "2024-05-03" },
      (r) => r.ts >= "2024-05-02T00:00:00.000Z" && r.ts < "2024-05-04T00:00:00.000Z",
    ],
    ["from and to the same day", { from: "2024-05-03", to: "2024-05-03" }, (r) => r.ts.startsWith("2024-05-03")],
  ])("filters by %s", async (_name, params, keep) => {
    const page = await queryFiles(dir, "r1", query(params));
    const want = expected(r1, keep);
    expect(want.length).toBeGreaterThan(0);
    expect(ids(page.data)).toEqual(want);
  });

  it("combines filters", async () => {
    const page = await queryFiles(dir, "r1", query({ user: "bob", status: "403" }));
    expect(ids(page.data)).toEqual(expected(r1, (r) => r.user === "bob" && r.status === 403));
  });

  it.each([1, 2, 3, 7])("pages with limit %i without gaps or duplicates", async (limit) => {
    const all = [...r1, ...r2];
    const pages = await allPages((cursor) => queryFiles(dir, undefined, query({ limit: String(limit), ...(cursor ? { cursor } : {}) })), limit);
    expect(ids(pages.flat())).toEqual(ids(newestFirst(all)));
    expect(pages.at(-1)?.length).toBeGreaterThan(0);
  });

  it("pages through a filtered shortcut", async () => {
    const pages = await allPages(
      (cursor) => queryFiles(dir, "r1", query({ limit: "1", from: "2024-05-02", ...(cursor ? { cursor } : {}) }, "violations")),
      1,
    );
    const violationSince = (r: AuditRecord) =>
      r.ts >= "2024-05-02" &&
      (r.decision?.effect === "REQUIRE_APPROVAL" || ["rate_limit_exceeded", "model_not_priced"].includes(r.error_code ?? ""));
    expect(ids(pages.flat())).toEqual(expected(r1, violationSince));
    expect(pages.flat()).toHaveLength(3);
  });

  it("violations: DENY, REQUIRE_APPROVAL and limit refusals, with other filters", async () => {
    const page = await queryFiles(dir, "r1", query({}, "violations"));
    const violation = (r: AuditRecord) =>
      r.decision?.effect === "DENY" ||
      r.decision?.effect === "REQUIRE_APPROVAL" ||
      ["policy_denied", "rate_limit_exceeded", "model_not_priced"].includes(r.error_code ?? "");
    expect(ids(page.data)).toEqual(expected(r1, violation));
    expect(page.data).toHaveLength(4);
    const bobs = await queryFiles(dir, "r1", query({ user: "bob" }, "violations"));
    expect(ids(bobs.data)).toEqual(expected(r1, (r) => violation(r) && r.user === "bob"));
  });

  it("high-cost: cost >= min_cost, 1.0 by default, with other filters", async () => {
    expect(ids((await queryFiles(dir, "r1", query({}, "high-cost"))).data)).toEqual(expected(r1, (r) => r.cost >= 1));
    expect(ids((await queryFiles(dir, "r1", query({ min_cost: "0.5" }, "high-cost"))).data)).toEqual(expected(r1, (r) => r.cost >= 0.5));
    expect(ids((await queryFiles(dir, "r1", query({ model: "gpt-4o" }, "high-cost"))).data)).toEqual(
      expected(r1, (r) => r.cost >= 1 && r.model === "gpt-4o"),
    );
  });

  it("returns nothing for a missing directory", async () => {
    expect(await queryFiles(`${dir}/missing`, undefined, query({}))).toEqual({ data: [], next_cursor: null });
  });
});

describe("matchesQuery", () => {
  it("is a pure predicate over one record", () => {
    const [record] = sampleRecords();
    if (record === undefined) throw new Error("no record");
    expect(matchesQuery(record, query({ user: "alice" }))).toBe(true);
    expect(matchesQuery(record, query({ user: "bob" }))).toBe(false);
    expect(matchesQuery(record, query({}, "violations"))).toBe(false);
  });
});
