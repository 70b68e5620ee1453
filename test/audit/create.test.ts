import { readdir } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAudit } from "../../src/audit/create.js";
import { makeRecord, makeTempDir, silentLogger } from "./fixtures.js";
import { query } from "./query-helpers.js";

let dir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir());
});
afterEach(async () => {
  await cleanup();
});

describe("createAudit", () => {
  it("wires file and log sinks from config; query, scan, verify and close work end to end, reads seeing lingering records", async () => {
    const audit = await createAudit(
      {
        sinks: [{ file: { dir, retention_days: null } }, { log: {} }],
        bodies: "none",
        encryption_key: "",
        encryption_key_id: "k1",
        fsync: "interval",
        fsync_interval_ms: 50,
        batch_linger_ms: 1000,
        max_queue: 100,
        on_full: "reject",
      },
      { replica: "gw-8787", logger: silentLogger },
    );
    const records = [makeRecord({ replica: "gw-8787" }), makeRecord({ replica: "gw-8787", user: "bob" })];
    for (const record of records) expect(audit.writer.enqueue(record)).toBe(true);
    // No flush: the records linger in the writer, and a query waits for the ones queued before it.
    expect((await audit.query(query({ user: "bob" }))).data.map((r) => r.id)).toEqual([records[1]?.id]);
    const scanned: string[] = [];
    for await (const record of audit.scan(query({ from: "2024-05-01" }))) scanned.push(record.id);
    expect(scanned).toEqual(records.map((r) => r.id));
    expect(await audit.verify()).toEqual({ ok: true, records: 2 });
    await audit.close();
    expect(await readdir(dir)).toEqual(["audit-gw-8787-2024-05-01.jsonl"]);
  });

  it("refuses a redis_stream sink without a connection factory", async () => {
    await expect(
      createAudit(
        {
          sinks: [{ redis_stream: { key: "k", max_len: 10 } }],
          bodies: "none",
          encryption_key: "",
          encryption_key_id: "k1",
          fsync: "never",
          fsync_interval_ms: 1000,
          batch_linger_ms: 0,
          max_queue: 10,
          on_full: "drop",
        },
        { replica: "r", logger: silentLogger },
      ),
    ).rejects.toThrow(/redis_stream/);
  });
});
