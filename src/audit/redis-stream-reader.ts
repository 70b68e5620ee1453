import type { Redis } from "ioredis";
import { STREAM_FIELD } from "./redis-stream-sink.js";
import type { AuditRecord } from "./types.js";
import { fromStream } from "./unavailable.js";

export interface StreamEntry {
  entryId: string;
  /** When Redis stored the entry: a record's own `ts` is never later than this. */
  storedMs: number;
  record: AuditRecord;
}

type RawEntry = [id: string, fields: string[]];

/** Entries newest first, fetched with XREVRANGE in pages of `pageSize`. */
export async function* readStreamReverse(redis: Redis, key: string, pageSize = 500): AsyncGenerator<StreamEntry> {
  let end = "+";
  for (;;) {
    const page = await fromStream(redis.xrevrange(key, end, "-", "COUNT", pageSize));
    yield* entriesOf(page);
    const last = page[page.length - 1];
    if (last === undefined || page.length < pageSize) return;
    const before = previousEntryId(last[0]);
    if (before === null) return;
    end = before;
  }
}

/**
 * Entries oldest first, from those stored at `startMs` to the newest one present when the read
 * starts (entries added meanwhile are left to a later read, so the read ends even under load),
 * fetched with XRANGE in pages of `pageSize`. Each entry is fetched once.
 */
export async function* readStreamForward(redis: Redis, key: string, startMs: number, pageSize = 500): AsyncGenerator<StreamEntry> {
  const [newest] = await fromStream(redis.xrevrange(key, "+", "-", "COUNT", 1));
  if (newest === undefined) return;
  const end = newest[0];
  let start = String(startMs);
  for (;;) {
    const page = await fromStream(redis.xrange(key, start, end, "COUNT", pageSize));
    yield* entriesOf(page);
    const last = page[page.length - 1];
    if (last === undefined || page.length < pageSize || last[0] === end) return;
    start = nextEntryId(last[0]);
  }
}

function* entriesOf(page: readonly RawEntry[]): Generator<StreamEntry> {
  for (const [entryId, fields] of page) {
    const record = recordOf(fields);
    if (record !== null) yield { entryId, storedMs: Number(entryId.split("-")[0]), record };
  }
}

const MAX_SEQ = 18446744073709551615n;

/**
 * The id just before `id`, so the next page starts strictly after the last one seen. (The `(`
 * exclusive-range syntax needs Redis 6.2; this works everywhere.)
 */
export function previousEntryId(id: string): string | null {
  const [ms, seq] = entryIdParts(id);
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  if (ms > 0n) return `${ms - 1n}-${MAX_SEQ}`;
  return null;
}

/** The id just after `id`, for reading forward (the same reason as `previousEntryId`). */
export function nextEntryId(id: string): string {
  const [ms, seq] = entryIdParts(id);
  return seq < MAX_SEQ ? `${ms}-${seq + 1n}` : `${ms + 1n}-0`;
}

function entryIdParts(id: string): [ms: bigint, seq: bigint] {
  const [msText = "0", seqText = "0"] = id.split("-");
  return [BigInt(msText), BigInt(seqText)];
}

function recordOf(fields: string[]): AuditRecord | null {
  for (let index = 0; index + 1 < fields.length; index += 2) {
    if (fields[index] !== STREAM_FIELD) continue;
    try {
      const parsed: unknown = JSON.parse(fields[index + 1] ?? "");
      if (parsed !== null && typeof parsed === "object" && "id" in parsed && "ts" in parsed) return parsed as AuditRecord;
    } catch {
      // An entry written by something else is not a record.
    }
  }
  return null;
}
