import { readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verifyFiles } from "../../src/audit/verify.js";
import { makeRecord, makeTempDir } from "./fixtures.js";
import { readRecords, writeThrough } from "./file-helpers.js";

let dir: string;
let cleanup: () => Promise<void>;
const DAY1 = "audit-r1-2024-05-01.jsonl";
const DAY2 = "audit-r1-2024-05-02.jsonl";

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir());
  await writeThrough(dir, [
    makeRecord({ ts: "2024-05-01T10:00:00.000Z" }),
    makeRecord({ ts: "2024-05-01T11:00:00.000Z" }),
    makeRecord({ ts: "2024-05-01T12:00:00.000Z" }),
    makeRecord({ ts: "2024-05-02T10:00:00.000Z" }),
    makeRecord({ ts: "2024-05-02T11:00:00.000Z" }),
  ]);
});
afterEach(async () => {
  await cleanup();
});

async function editLines(name: string, edit: (lines: string[]) => string[]): Promise<void> {
  const path = join(dir, name);
  const lines = (await readFile(path, "utf8")).split("\n").filter((line) => line !== "");
  await writeFile(path, `${edit(lines).join("\n")}\n`);
}

describe("verifyFiles", () => {
  it("accepts intact chains across day files", async () => {
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 5 });
    expect(await verifyFiles(dir, "r1")).toEqual({ ok: true, records: 5 });
    expect(await verifyFiles(dir, "other")).toEqual({ ok: true, records: 0 });
  });

  it("reports an edited field", async () => {
    const [, second] = await readRecords(join(dir, DAY1));
    await editLines(DAY1, (lines) => lines.map((line, index) => (index === 1 ? line.replace('"cost":0.000015', '"cost":0') : line)));
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: second?.id, reason: "hash mismatch" } });
  });

  it("reports an edit that parses to the same record: a repeated member read first by a scan of the text, added spaces", async () => {
    const [, second] = await readRecords(join(dir, DAY1));
    await editLines(DAY1, (lines) => lines.map((line, index) => (index === 1 ? line.replace('"ts":"', '"ts":"2020-01-01T00:00:00.000Z","ts":"') : line)));
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: second?.id, reason: "hash mismatch" } });
    await editLines(DAY1, (lines) => lines.map((line, index) => (index === 1 ? JSON.stringify(JSON.parse(line)).replace('"cost":', '"cost": ') : line)));
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: second?.id, reason: "hash mismatch" } });
    await editLines(DAY1, (lines) => lines.map((line, index) => (index === 1 ? JSON.stringify(JSON.parse(line)) : line)));
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 5 });
  });

  it("reports a deleted line at the record after it", async () => {
    const records = await readRecords(join(dir, DAY1));
    await editLines(DAY1, (lines) => lines.filter((_, index) => index !== 1));
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: records[2]?.id, reason: "broken link" } });
  });

  it("reports a deleted last line of a day at the next day's first record", async () => {
    const next = await readRecords(join(dir, DAY2));
    await editLines(DAY1, (lines) => lines.slice(0, -1));
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: next[0]?.id, reason: "broken link" } });
  });

  it("reports a truncated tail", async () => {
    const path = join(dir, DAY2);
    const last = (await readRecords(path))[1];
    const size = (await readFile(path)).length;
    await truncate(path, size - 30);
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: last?.id, reason: "truncated record" } });
  });

  it("with the writer's head, reports whole records cut off the end at the last one left", async () => {
    const records = await readRecords(join(dir, DAY2));
    const head = new Map([["r1", records[1]!.hash as string]]);
    expect(await verifyFiles(dir, undefined, { heads: head })).toEqual({ ok: true, records: 5 });
    // Every link left is intact: only the head says the last record is gone.
    await editLines(DAY2, (lines) => lines.slice(0, -1));
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 4 });
    expect(await verifyFiles(dir, undefined, { heads: head })).toEqual({ ok: false, first_broken: { id: records[0]?.id, reason: "records missing after it" } });
    // Another replica's head says nothing of this chain.
    expect(await verifyFiles(dir, "r1", { heads: new Map([["r2", "x"]]) })).toEqual({ ok: true, records: 4 });
  });

  it("with the writer's head, reports a chain whose every record is gone: files deleted or emptied", async () => {
    const records = await readRecords(join(dir, DAY2));
    const head = new Map([["r1", records[1]!.hash as string]]);
    await writeFile(join(dir, DAY1), "");
    await writeFile(join(dir, DAY2), "");
    const gone = { ok: false, first_broken: { id: "replica r1", reason: "every record missing" } };
    expect(await verifyFiles(dir, undefined, { heads: head })).toEqual(gone);
    await rm(join(dir, DAY1));
    await rm(join(dir, DAY2));
    expect(await verifyFiles(dir, undefined, { heads: head })).toEqual(gone);
    expect(await verifyFiles(dir, "r1", { heads: head })).toEqual(gone);
    // Without the head nothing says a chain was there; another replica's filter leaves it out.
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 0 });
    expect(await verifyFiles(dir, "r2", { heads: head })).toEqual({ ok: true, records: 0 });
    // A writer that has written nothing yet has the genesis as its head: nothing is missing.
    expect(await verifyFiles(dir, undefined, { heads: new Map([["r1", "0".repeat(64)]]) })).toEqual({ ok: true, records: 0 });
  });

  it("reports a garbled line in the middle", async () => {
    await editLines(DAY1, (lines) => lines.map((line, index) => (index === 1 ? "not json" : line)));
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: `${DAY1}:2`, reason: "unreadable record" } });
  });

  it("finds records cut off the start of the chain: the first kept must link to the genesis or to retention's anchor", async () => {
    const records = await readRecords(join(dir, DAY1));
    const [, second] = records;
    await editLines(DAY1, (lines) => lines.slice(1));
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: second?.id, reason: "records missing before it" } });
    // A whole first day gone by hand is found the same way; where retention deleted it, its anchor vouches for the rest.
    await writeFile(join(dir, DAY1), "");
    const [next] = await readRecords(join(dir, DAY2));
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: next?.id, reason: "records missing before it" } });
    await writeFile(join(dir, "audit-r1.anchor"), JSON.stringify({ prev_hash: records.at(-1)?.hash, through: "2024-05-01" }));
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 2 });
    // An anchor naming another hash does not vouch for them.
    await writeFile(join(dir, "audit-r1.anchor"), JSON.stringify({ prev_hash: second?.hash, through: "2024-05-01" }));
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: next?.id, reason: "records missing before it" } });
  });

  it("verifies each replica's chain on its own", async () => {
    await writeThrough(dir, [makeRecord({ replica: "r2" }), makeRecord({ replica: "r2" })], { replica: "r2" });
    expect(await verifyFiles(dir)).toEqual({ ok: true, records: 7 });
    const r2 = join(dir, "audit-r2-2024-05-01.jsonl");
    const [first] = await readRecords(r2);
    await writeFile(r2, (await readFile(r2, "utf8")).replace('"user":"alice"', '"user":"mallory"'));
    expect(await verifyFiles(dir)).toEqual({ ok: false, first_broken: { id: first?.id, reason: "hash mismatch" } });
    expect(await verifyFiles(dir, "r1")).toEqual({ ok: true, records: 5 });
  });
});
