import type { Redis } from "ioredis";
import { type AuditPage, type AuditQuery, type AuditRange, collectPage, isWithinTime, type SourceItem, timeOf } from "./query.js";
import { readStreamForward, readStreamReverse } from "./redis-stream-reader.js";
import type { AuditRecord } from "./types.js";
import { MAX_BATCH_SIZE } from "./writer.js";

export interface StreamQueryOptions {
  pageSize?: number;
  /** How far a replica's clock may run ahead of Redis's: records' `ts` may exceed the entry id. */
  clockSkewMs?: number;
}

const DEFAULT_CLOCK_SKEW_MS = 60_000;

/**
 * One page of records from the Redis stream (every replica's), newest first. An entry's id is the
 * time Redis stored it and a record is stored after its `ts`, so reading stops once entries are
 * older than the page's last record (plus the allowed clock skew).
 */
export function queryStream(redis: Redis, key: string, query: AuditQuery, options: StreamQueryOptions = {}): Promise<AuditPage> {
  return collectPage(streamRecords(redis, key, options), query);
}

async function* streamRecords(redis: Redis, key: string, options: StreamQueryOptions): AsyncGenerator<SourceItem> {
  const skew = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  for await (const entry of readStreamReverse(redis, key, options.pageSize)) {
    yield { before: entry.storedMs + 1 + skew };
    yield { record: entry.record };
  }
}

/**
 * Every record with `ts` in the range from the Redis stream (every replica's), in the order they
 * were stored, each entry read once. Reading starts at entries stored at `from` less the clock
 * skew (a record is stored after its `ts`); a late record can be stored long after its `ts`, so it
 * runs to the stream's end. Repeats of an at-least-once delivery are dropped, as queries do.
 */
export async function* scanStream(redis: Redis, key: string, range: AuditRange, options: StreamQueryOptions = {}): AsyncGenerator<AuditRecord> {
  const skew = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  const startMs = range.from === undefined ? 0 : Math.max(0, range.from - skew);
  const isRepeat = repeatFilter(MAX_BATCH_SIZE);
  for await (const { record } of readStreamForward(redis, key, startMs, options.pageSize)) {
    if (isWithinTime(timeOf(record.ts), range) && !isRepeat(record)) yield record;
  }
}

/**
 * Recognises a record seen a little earlier, in memory that does not grow with the stream. A
 * repeat comes from a retried pipeline, which resends only the batch it retries, and the writer
 * sends nothing else from that replica until the batch is stored: so from a first copy to its
 * repeat, a replica's records hold at most a batch's worth of distinct ids.
 */
export function repeatFilter(window: number): (record: AuditRecord) => boolean {
  const recent = new Map<string, Set<string>>();
  return (record) => {
    let ids = recent.get(record.replica);
    if (ids === undefined) {
      ids = new Set();
      recent.set(record.replica, ids);
    }
    if (ids.has(record.id)) return true;
    ids.add(record.id);
    // A Set iterates in insertion order: the first id is the oldest remembered.
    if (ids.size > window) ids.delete(ids.values().next().value as string);
    return false;
  };
}
