import type { Redis } from "ioredis";
import { type ChainBreak, checkLine, GENESIS_HASH } from "./chain.js";
import { nextEntryId } from "./redis-stream-reader.js";
import { STREAM_FIELD, STREAM_HEAD_INFIX } from "./redis-stream-sink.js";
import { fromStream } from "./unavailable.js";
import { parseRecord, type VerifyResult } from "./verify.js";

/** One replica's chain as it is walked, oldest entry first. */
interface Walk {
  /** Its first record left, whose link is checked once the walk knows whether anything was removed. */
  first: { id: string; prev: string };
  prev: string;
  lastId: string;
  /** Line by record id: a batch retried after a partial write is stored twice, the same lines. */
  seen: Map<string, string>;
  /** The head the replica stored before the read began was met or passed (its chain may go on past it). */
  headMet: boolean;
  records: number;
}

/**
 * Verifies every replica's chain in the audit stream `key`, in stream order: each entry's line must
 * hash to its `hash` and link to the replica's entry before it (a line stored twice must be the same
 * line); each replica's chain must reach the head it stored (`<key>:head:<replica>`, read before the
 * entries, so records written meanwhile do not count as missing, and passed where a trim took the
 * head's own entry). An entry deleted by XDEL (Redis notes the newest one; a `max_len` trim leaves
 * that note alone) is reported at the record after it. A stream trimmed by `max_len` starts each chain
 * wherever the trim left it; one nothing was removed from by the end of the walk must start each at
 * the genesis, and a replica with a head but no entry there lost them all.
 */
export async function verifyStream(redis: Redis, key: string, pageSize = 500): Promise<VerifyResult> {
  const heads = await readHeads(redis, key);
  const walks = new Map<string, Walk>();
  let start = "-";
  for (;;) {
    const page = (await fromStream(redis.xrange(key, start, "+", "COUNT", pageSize))) as [string, string[]][];
    for (const [entryId, fields] of page) {
      const broken = step(walks, heads, entryId, fields);
      if (broken !== null) return { ok: false, first_broken: broken };
    }
    const last = page[page.length - 1];
    if (last === undefined || page.length < pageSize) break;
    start = nextEntryId(last[0]);
  }
  // Read after the walk: nothing removed by its end means nothing was removed before it either.
  const removed = await removedEntries(redis, key);
  if (removed.deleted !== null) {
    const [after] = (await fromStream(redis.xrange(key, nextEntryId(removed.deleted), "+", "COUNT", 1))) as [string, string[]][];
    if (after !== undefined) return { ok: false, first_broken: { id: idOf(after[1]) ?? `stream entry ${after[0]}`, reason: "records missing before it" } };
  }
  for (const walk of walks.values()) {
    if (removed.none && walk.first.prev !== GENESIS_HASH) return { ok: false, first_broken: { id: walk.first.id, reason: "records missing before it" } };
  }
  for (const [replica, head] of heads) {
    const walk = walks.get(replica);
    if (walk === undefined) {
      if (removed.none && head !== GENESIS_HASH) return { ok: false, first_broken: { id: `replica ${replica}`, reason: "every record missing" } };
      continue;
    }
    if (!walk.headMet && head !== GENESIS_HASH) return { ok: false, first_broken: { id: walk.lastId, reason: "records missing after it" } };
  }
  let records = 0;
  for (const walk of walks.values()) records += walk.records;
  return { ok: true, records };
}

function step(walks: Map<string, Walk>, heads: ReadonlyMap<string, string>, entryId: string, fields: string[]): ChainBreak | null {
  const text = fieldOf(fields);
  const record = text === null ? null : parseRecord(text);
  if (text === null || record === null) return { id: `stream entry ${entryId}`, reason: "unreadable record" };
  const replica = typeof record.replica === "string" ? record.replica : "";
  const id = String(record.id);
  let walk = walks.get(replica);
  const before = walk?.seen.get(id);
  if (before !== undefined) return before === text ? null : { id, reason: "hash mismatch" };
  const reason = checkLine(text, record, walk?.prev ?? null);
  if (reason !== null) return { id, reason };
  if (walk === undefined) {
    walk = { first: { id, prev: record.prev_hash }, prev: record.hash, lastId: id, seen: new Map(), headMet: false, records: 0 };
    walks.set(replica, walk);
  }
  walk.seen.set(id, text);
  walk.prev = record.hash;
  walk.lastId = id;
  walk.records += 1;
  const head = heads.get(replica);
  if (record.hash === head || record.prev_hash === head) walk.headMet = true;
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
 * What XINFO says was removed from the stream: nothing at all (`none`: as many entries as were ever
 * added), and the newest entry XDEL removed (`deleted`). Where Redis cannot say (no stream yet, an
 * older server), neither is claimed.
 */
async function removedEntries(redis: Redis, key: string): Promise<{ none: boolean; deleted: string | null }> {
  const info = (await fromStream(redis.call("XINFO", "STREAM", key).catch(() => null))) as unknown[] | null;
  const field = (name: string): unknown => (Array.isArray(info) && info.indexOf(name) !== -1 ? info[info.indexOf(name) + 1] : undefined);
  const [added, length, maxDeleted] = [field("entries-added"), field("length"), field("max-deleted-entry-id")];
  return { none: typeof added === "number" && added === length, deleted: typeof maxDeleted === "string" && maxDeleted !== "0-0" ? maxDeleted : null };
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
