import { readFile } from "node:fs/promises";
import { FileSink, type FileSinkOptions } from "../../src/audit/file-sink.js";
import type { AuditRecord, ChainedRecord } from "../../src/audit/types.js";
import { silentLogger } from "./fixtures.js";

export async function openSink(dir: string, overrides: Partial<FileSinkOptions> = {}): Promise<FileSink> {
  const sink = new FileSink({
    dir,
    replica: "r1",
    retentionDays: null,
    fsync: "always",
    fsyncIntervalMs: 20,
    logger: silentLogger,
    ...overrides,
  });
  await sink.start();
  return sink;
}

/** Writes the records through a fresh sink and closes it. */
export async function writeThrough(dir: string, records: AuditRecord[], overrides: Partial<FileSinkOptions> = {}): Promise<void> {
  const sink = await openSink(dir, overrides);
  await sink.write(records);
  await sink.close();
}

export async function readRecords(path: string): Promise<ChainedRecord[]> {
  const text = await readFile(path, "utf8");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as ChainedRecord);
}
