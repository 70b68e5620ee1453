import { appendFile, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GENESIS_HASH } from "../../src/audit/chain.js";
import { verifyFiles } from "../../src/audit/verify.js";
import { makeRecord, makeTempDir } from "./fixtures.js";
import { openSink, readRecords, writeThrough } from "./file-helpers.js";

let dir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir());
});
afterEach(async () => {
  await cleanup();
});

describe("FileSink", () => {
  it("names files by replica and the UTC day of the record's ts, rolling over at midnight", async () => {
    await writeThrough(dir, [
      makeRecord({ ts: "2024-05-01T23:59:59.000Z" }),
      makeRecord({ ts: "2024-05-02T00:00:01.000Z" }),
      makeRecord({ ts: "2024-05-02T08:00:00.000+02:00" }),
    ]);
    expect((await readdir(dir)).sort()).toEqual(["audit-r1-2024-05-01.jsonl", "audit-r1-2024-05-02.jsonl"]);
    const first = await readRecords(join(dir, "audit-r1-2024-05-01.jsonl"));
    const second = await readRecords(join(dir, "audit-r1-2024-05-02.jsonl"));
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(2);
    expect(first[0]?.prev_hash).toBe(GENESIS_HASH);
    // A day's first record links to the previous day's last.
    expect(second[0]?.prev_hash).toBe(first[0]?.hash);
  });

  it("never goes back a day: a late record joins the open day's file", async () => {
    const sink = await openSink(dir);
    await sink.write([makeRecord({ ts: "2024-05-02T00:00:01.000Z" })]);
    await sink.write([makeRecord({ ts: "2024-05-01T23:59:58.000Z" })]);
    await sink.close();
    expect(await readdir(dir)).toEqual(["audit-r1-2024-05-02.jsonl"]);
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 2 });
  });

  it("keeps replica ids safe in file names", async () => {
    await writeThrough(dir, [makeRecord()], { replica: "host/a:8787" });
    expect(await readdir(dir)).toEqual(["audit-host_a_8787-2024-05-01.jsonl"]);
  });

  it("continues the chain after a restart", async () => {
    await writeThrough(dir, [makeRecord(), makeRecord()]);
    const sink = await openSink(dir);
    const before = await readRecords(join(dir, "audit-r1-2024-05-01.jsonl"));
    expect(sink.headHash).toBe(before[1]?.hash);
    await sink.write([makeRecord({ ts: "2024-05-03T00:00:00.000Z" })]);
    await sink.close();
    const after = await readRecords(join(dir, "audit-r1-2024-05-03.jsonl"));
    expect(after[0]?.prev_hash).toBe(before[1]?.hash);
    expect(await verifyFiles(dir, "r1")).toEqual({ ok: true, records: 3 });
  });

  it("recovers from a torn last line: ignores it, cuts it off and chains from the last whole record", async () => {
    await writeThrough(dir, [makeRecord(), makeRecord()]);
    const path = join(dir, "audit-r1-2024-05-01.jsonl");
    await appendFile(path, '{"schema":1,"id":"torn","ts":"2024-05-01T12:');
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: "torn", reason: "truncated record" } });
    await writeThrough(dir, [makeRecord()]);
    expect(await readRecords(path)).toHaveLength(3);
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 3 });
  });

  it("starts from an older file when the newest one holds no record", async () => {
    await writeThrough(dir, [makeRecord()]);
    await writeFile(join(dir, "audit-r1-2024-05-02.jsonl"), "");
    await writeThrough(dir, [makeRecord({ ts: "2024-05-02T01:00:00.000Z" })]);
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 2 });
  });

  it.each(["always", "interval", "never"] as const)("fsync %s produces complete readable files", async (fsync) => {
    const sink = await openSink(dir, { fsync, fsyncIntervalMs: 5 });
    for (let batch = 0; batch < 5; batch += 1) {
      await sink.write([makeRecord(), makeRecord(), makeRecord()]);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    await sink.close();
    expect(await readRecords(join(dir, "audit-r1-2024-05-01.jsonl"))).toHaveLength(15);
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 15 });
  });

  it("reports committed sizes that bound a racing reader", async () => {
    const sink = await openSink(dir);
    await sink.write([makeRecord(), makeRecord()]);
    const sizes = sink.committedSizes();
    const path = join(dir, "audit-r1-2024-05-01.jsonl");
    // Simulates a batch being appended while verification reads.
    await appendFile(path, '{"schema":1,"id":"in-flight"');
    expect(await verifyFiles(dir, "r1", { sizes })).toEqual({ ok: true, records: 2 });
    await sink.close();
  });

  it("applies retention at start: whole days older than retention_days go, the rest still verifies", async () => {
    const days = ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04", "2024-05-05"];
    await writeThrough(
      dir,
      days.map((day) => makeRecord({ ts: `${day}T10:00:00.000Z` })),
    );
    await writeThrough(dir, [makeRecord({ ts: "2024-05-01T10:00:00.000Z", replica: "r2" })], { replica: "r2" });
    const now = () => Date.parse("2024-05-05T12:00:00.000Z");
    const sink = await openSink(dir, { retentionDays: 2, now });
    expect((await readdir(dir)).sort()).toEqual([
      "audit-r1-2024-05-03.jsonl",
      "audit-r1-2024-05-04.jsonl",
      "audit-r1-2024-05-05.jsonl",
      // Where the kept chain starts: the last hash of what was deleted.
      "audit-r1.anchor",
      // Another replica's files are its own sink's business.
      "audit-r2-2024-05-01.jsonl",
    ]);
    await sink.write([makeRecord({ ts: "2024-05-05T13:00:00.000Z" })]);
    await sink.close();
    expect(await verifyFiles(dir, "r1")).toEqual({ ok: true, records: 4 });
    // The anchor does not vouch for a kept record cut off after retention ran.
    const oldest = join(dir, "audit-r1-2024-05-03.jsonl");
    await writeFile(oldest, "");
    expect(await verifyFiles(dir, "r1")).toMatchObject({ ok: false, first_broken: { reason: "records missing before it" } });
  });

  it("applies retention again when the day changes", async () => {
    let now = Date.parse("2024-05-02T12:00:00.000Z");
    const sink = await openSink(dir, { retentionDays: 1, now: () => now });
    await sink.write([makeRecord({ ts: "2024-05-01T10:00:00.000Z" })]);
    await sink.write([makeRecord({ ts: "2024-05-02T10:00:00.000Z" })]);
    now = Date.parse("2024-05-03T00:00:01.000Z");
    await sink.write([makeRecord({ ts: "2024-05-03T00:00:01.000Z" })]);
    await sink.close();
    expect((await readdir(dir)).sort()).toEqual(["audit-r1-2024-05-02.jsonl", "audit-r1-2024-05-03.jsonl", "audit-r1.anchor"]);
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 2 });
  });

  it("writes to the file now at its path once the open one was replaced or removed there, losing no record", async () => {
    const path = join(dir, "audit-r1-2024-05-01.jsonl");
    const sink = await openSink(dir);
    await sink.write([makeRecord()]);
    // An editor's rewrite: the same lines in a new file put in the old one's place.
    await writeFile(`${path}.tmp`, await readFile(path));
    await rename(`${path}.tmp`, path);
    await sink.write([makeRecord(), makeRecord()]);
    expect(await readRecords(path)).toHaveLength(3);
    expect(await verifyFiles(dir, "r1")).toEqual({ ok: true, records: 3 });
    await unlink(path);
    await sink.write([makeRecord()]);
    await sink.close();
    expect(await readRecords(path)).toHaveLength(1);
  });

  it("writes each batch as whole lines", async () => {
    await writeThrough(dir, [makeRecord(), makeRecord()]);
    const text = await readFile(join(dir, "audit-r1-2024-05-01.jsonl"), "utf8");
    expect(text.endsWith("\n")).toBe(true);
    expect(text.split("\n")).toHaveLength(3);
  });
});

describe("FileSink failures", () => {
  it("retrying a batch that failed at a day rollover neither duplicates nor breaks the chain", async () => {
    const { mkdir, rmdir } = await import("node:fs/promises");
    const blocked = join(dir, "audit-r1-2024-05-02.jsonl");
    const sink = await openSink(dir);
    // A directory in the way of the second day's file makes only that append fail.
    await mkdir(blocked);
    const batch = [makeRecord({ ts: "2024-05-01T23:00:00.000Z" }), makeRecord({ ts: "2024-05-02T01:00:00.000Z" })];
    await expect(sink.write(batch)).rejects.toThrow();
    await rmdir(blocked);
    await sink.write(batch);
    await sink.close();
    expect(await readRecords(join(dir, "audit-r1-2024-05-01.jsonl"))).toHaveLength(1);
    expect(await readRecords(blocked)).toHaveLength(1);
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 2 });
  });
});
