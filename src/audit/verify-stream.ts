import type { Redis } from "ioredis";
import { type ChainBreak, checkLine, GENESIS_HASH } from "./chain.js";
import { compareEntryIds, nextEntryId } from "./redis-stream-reader.js";
import { STREAM_FIELD, STREAM_HEAD_INFIX } from "./redis-stream-sink.js";
import { fromStream } from "./unavailable.js";
import { parseRecord, type VerifyResult } from "./verify.js";

/** One replica's chain as it is walked, oldest entry first. */
interface Walk {
  prev: string | null;
  lastId: string | null;
  /** Hash by record id: a batch retried after a partial write is stored twice, the same lines. */
  seen: Map<string, string>;
  /** The head the replica stored before the read began was met (its chain may go on past it). */
  headMet: boolean;
  records: number;
}

/**
 * Verifies every replica's chain in the audit stream `key`, in stream order: each entry's line must
 * hash to its `hash` and link to the replica's entry before it; each replica's chain must reach the
 * head it stored (`<key>:head:<replica>`, read before the entries, so records written meanwhile do
 * not count as missing). A stream trimmed by `max_len` starts each chain wherever the trim left it;
 * one from which no entry was ever removed must start each at the genesis, and a replica with a head
 * but no entry there lost them all. An entry deleted from after the stream's first (XDEL; a trim
 * removes the oldest only) is reported at the record that followed it.
 */
export async function verifyStream(redis: Redis, key: string, pageSize = 500): Promise<VerifyResult> {
  const heads = await readHeads(redis, key);
  const removed = await removedEntries(redis, key);
  const walks = new Map<string, Walk>();
  let afterDeleted: string | null = null;
  let start = "-";
  for (;;) {
    const page = (await fromStream(redis.xrange(key, start, "+", "COUNT", pageSize))) as [string, string[]][];
    for (const [entryId, fields] of page) {
      const broken = step(walks, heads, removed.none, entryId, fields);
      if (broken !== null) return { ok: false, first_broken: broken };
      if (afterDeleted === null && removed.deletedInside !== null && compareEntryIds(entryId, removed.deletedInside) > 0) afterDeleted = idOf(fields) ?? `stream entry ${entryId}`;
    }
    const last = page[page.length - 1];
    if (last === undefined || page.length < pageSize) break;
    start = nextEntryId(last[0]);
  }
  if (afterDeleted !== null) return { ok: false, first_broken: { id: afterDeleted, reason: "records missing before it" } };
  for (const [replica, head] of heads) {
    const walk = walks.get(replica);
    if (walk === undefined) {
      if (removed.none && head !== GENESIS_HASH) return { ok: false, first_broken: { id: `replica ${replica}`, reason: "every record missing" } };
      continue;
    }
    if (!walk.headMet && head !== GENESIS_HASH) return { ok: false, first_broken: { id: walk.lastId ?? "", reason: "records missing after it" } };
  }
  let records = 0;
  for (const walk of walks.values()) records += walk.records;
  return { ok: true, records };
}

function step(walks: Map<string, Walk>, heads: ReadonlyMap<string, string>, untouched: boolean, entryId: string, fields: string[]): ChainBreak | null {
  const text = fieldOf(fields);
  const record = text === null ? null : parseRecord(text);
  if (text === null || record === null) return { id: `stream entry ${entryId}`, reason: "unreadable record" };
  const replica = typeof record.replica === "string" ? record.replica : "";
  let walk = walks.get(replica);
  if (walk === undefined) {
    walk = { prev: null, lastId: null, seen: new Map(), headMet: false, records: 0 };
    walks.set(replica, walk);
  }
  const id = String(record.id);
  const before = walk.seen.get(id);
  if (before !== undefined) return before === record.hash ? null : { id, reason: "hash mismatch" };
  const reason = checkLine(text, record, walk.prev);
  if (reason !== null) return { id, reason };
  if (walk.prev === null && untouched && record.prev_hash !== GENESIS_HASH) return { id, reason: "records missing before it" };
  walk.seen.set(id, record.hash);
  walk.prev = record.hash;
  walk.lastId = id;
  walk.records += 1;
  if (record.hash === heads.get(replica)) walk.headMet = true;
  return null;
}

/** Each replica's stored chain head, by replica. */
async function readHeads(redis: Redis, key: string): Promise<Map<string, string>> {
  const prefix = `${key}${STREAM_HEAD_INFIX}`;
  const names: string[] = [];
  let cursor = "0";
  do {
    const [next, found] = await fromStream(redis.scan(cursor, "MATCH", `${globEscaped(prefix)}*`, "COUNT", 500));
    names.push(...found);
    cursor = next;
  } while (cursor !== "0");
  const heads = new Map<string, string>();
  if (names.length === 0) return heads;
  const values = await fromStream(redis.mget(...names));
  names.forEach((name, index) => {
    const value = values[index];
    if (typeof value === "string") heads.set(name.slice(prefix.length), value);
  });
  return heads;
}

/**
 * What XINFO says was removed from the stream: nothing at all (`none`), or the newest entry removed,
 * where it comes after the oldest one left (`deletedInside`: not a trim's doing). Where Redis cannot
 * say (no stream yet, an older server), neither is claimed.
 */
async function removedEntries(redis: Redis, key: string): Promise<{ none: boolean; deletedInside: string | null }> {
  const info = (await fromStream(redis.call("XINFO", "STREAM", key).catch(() => null))) as unknown[] | null;
  const field = (name: string): unknown => (Array.isArray(info) && info.indexOf(name) !== -1 ? info[info.indexOf(name) + 1] : undefined);
  const [added, length, maxDeleted, first] = [field("entries-added"), field("length"), field("max-deleted-entry-id"), field("first-entry")];
  // A trim leaves `max-deleted-entry-id` as it was; XDEL moves it.
  const none = typeof added === "number" && added === length;
  const firstId = Array.isArray(first) && typeof first[0] === "string" ? first[0] : null;
  const inside = typeof maxDeleted === "string" && maxDeleted !== "0-0" && firstId !== null && compareEntryIds(maxDeleted, firstId) > 0;
  return { none, deletedInside: inside ? maxDeleted : null };
}

function idOf(fields: string[]): string | null {
  const text = fieldOf(fields);
  const record = text === null ? null : parseRecord(text);
  return record === null ? null : String(record.id);
}

function globEscaped(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

function fieldOf(fields: string[]): string | null {
  for (let index = 0; index + 1 < fields.length; index += 2) if (fields[index] === STREAM_FIELD) return fields[index + 1] ?? null;
  return null;
}
