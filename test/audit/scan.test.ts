import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scanFiles } from "../../src/audit/query-files.js";
import { repeatFilter } from "../../src/audit/query-stream.js";
import type { AuditRange } from "../../src/audit/query.js";
import type { AuditRecord } from "../../src/audit/types.js";
import { writeThrough } from "./file-helpers.js";
import { makeRecord, makeTempDir } from "./fixtures.js";
import { ids, query } from "./query-helpers.js";

let dir: string;
let cleanup: () => Promise<void>;
/** r1's records as written: a day file holds its day's records and late ones from earlier days. */
let written: Record<string, AuditRecord>;
let other: AuditRecord;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const at = (ts: string) => makeRecord({ ts, replica: "r1" });
  written = {
    a: at("2024-05-01T09:00:00.000Z"),
    b: at("2024-05-01T12:00:00.000Z"),
    c: at("2024-05-02T00:00:00.000Z"),
    lateD: at("2024-05-01T23:00:00.000Z"), // in the 05-02 file
    e: at("2024-05-02T12:00:00.000Z"),
    f: at("2024-05-03T01:00:00.000Z"),
    lateG: at("2024-05-02T11:59:59.999Z"), // in the 05-03 file
  };
  await writeThrough(dir, Object.values(written), { replica: "r1" });
  other = makeRecord({ ts: "2024-05-02T06:00:00.000Z", replica: "r2" });
  await writeThrough(dir, [other], { replica: "r2" });
});
afterAll(async () => {
  await cleanup();
});

async function collect(records: AsyncIterable<AuditRecord>): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const record of records) out.push(record);
  return out;
}

const scanned = (range: AuditRange) => collect(scanFiles(dir, "r1", range));

const pick = (...names: string[]) => names.map((name) => written[name]?.id);

describe("scanFiles", () => {
  it("yields every record of the replica once, oldest file first, in write order", async () => {
    expect(ids(await scanned({}))).toEqual(pick("a", "b", "c", "lateD", "e", "f", "lateG"));
  });

  it("takes `from` and `to` inclusive (a date `to`: its whole day), late records included by their own ts", async () => {
    const range = query({ from: "2024-05-01T12:00:00Z", to: "2024-05-02T12:00:00Z" });
    expect(ids(await scanned(range))).toEqual(pick("b", "c", "lateD", "e", "lateG"));
    expect(ids(await scanned(query({ to: "2024-05-02" })))).toEqual(pick("a", "b", "c", "lateD", "e", "lateG"));
    expect(ids(await scanned(query({ from: "2024-05-03T01:00:00Z" })))).toEqual(pick("f"));
    expect(await scanned(query({ from: "2024-05-04" }))).toEqual([]);
    expect(ids(await scanned(query({ to: "2024-05-01" })))).toEqual(pick("a", "b", "lateD"));
    expect(await scanned(query({ to: "2024-04-30" }))).toEqual([]);
  });

  it("reads every replica when none is given", async () => {
    const all = ids(await collect(scanFiles(dir, undefined, query({ from: "2024-05-02", to: "2024-05-02" }))));
    expect(all.sort()).toEqual([...pick("c", "e", "lateG"), other.id].sort());
  });

  it("does not open the files of days that end before `from`", async () => {
    const { dir: own, cleanup: remove } = await makeTempDir();
    try {
      await writeThrough(own, [makeRecord({ ts: "2024-05-02T10:00:00.000Z", replica: "r1" })], { replica: "r1" });
      // A directory where the 05-01 file would be: reading it fails with EISDIR.
      await mkdir(join(own, "audit-r1-2024-05-01.jsonl"));
      expect(await collect(scanFiles(own, "r1", query({ from: "2024-05-02" })))).toHaveLength(1);
      await expect(scanFiles(own, "r1", {}).next()).rejects.toThrow(/EISDIR/);
    } finally {
      await remove();
    }
  });

  it("yields nothing for a missing directory", async () => {
    expect(await collect(scanFiles(join(dir, "missing"), undefined, {}))).toEqual([]);
  });
});

describe("repeatFilter", () => {
  it("recognises a replica's repeated id within the window, per replica", () => {
    const isRepeat = repeatFilter(2);
    const record = (id: string, replica = "r1") => makeRecord({ id, replica });
    expect([record("a"), record("b"), record("a"), record("a", "r2")].map(isRepeat)).toEqual([false, false, true, false]);
    // `a` is the oldest of r1's window (a, b): a third id pushes it out.
    expect([record("c"), record("a")].map(isRepeat)).toEqual([false, false]);
  });
});
