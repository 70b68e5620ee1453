import type { Redis } from "ioredis";
import { type AuditPage, type AuditQuery, collectPage, type SourceItem } from "./query.js";
import { readStreamReverse } from "./redis-stream-reader.js";

export interface StreamQueryOptions {
  pageSize?: number;
  /** How far a replica's clock may run ahead of Redis's: records' `ts` may exceed the entry id. */
  clockSkewMs?: number;
}

/**
 * One page of records from the Redis stream (every replica's), newest first. An entry's id is the
 * time Redis stored it and a record is stored after its `ts`, so reading stops once entries are
 * older than the page's last record (plus the allowed clock skew).
 */
export function queryStream(redis: Redis, key: string, query: AuditQuery, options: StreamQueryOptions = {}): Promise<AuditPage> {
  return collectPage(streamRecords(redis, key, options), query);
}

async function* streamRecords(redis: Redis, key: string, options: StreamQueryOptions): AsyncGenerator<SourceItem> {
  const skew = options.clockSkewMs ?? 60_000;
  for await (const entry of readStreamReverse(redis, key, options.pageSize)) {
    yield { before: entry.storedMs + 1 + skew };
    yield { record: entry.record };
  }
}
