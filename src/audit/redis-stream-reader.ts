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

/** Entries newest first, fetched with XREVRANGE in pages of `pageSize`. */
export async function* readStreamReverse(redis: Redis, key: string, pageSize = 500): AsyncGenerator<StreamEntry> {
  let end = "+";
  for (;;) {
    const page = await fromStream(redis.xrevrange(key, end, "-", "COUNT", pageSize));
    for (const [entryId, fields] of page) {
      const record = recordOf(fields);
      if (record !== null) yield { entryId, storedMs: Number(entryId.split("-")[0]), record };
    }
    const last = page[page.length - 1];
    if (last === undefined || page.length < pageSize) return;
    const before = previousEntryId(last[0]);
    if (before === null) return;
    end = before;
  }
}

/**
 * The id just before `id`, so the next page starts strictly after the last one seen. (The `(`
 * exclusive-range syntax needs Redis 6.2; this works everywhere.)
 */
export function previousEntryId(id: string): string | null {
  const [msText = "0", seqText = "0"] = id.split("-");
  const ms = BigInt(msText);
  const seq = BigInt(seqText);
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  if (ms > 0n) return `${ms - 1n}-18446744073709551615`;
  return null;
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
