import { sha256Hex } from "../util/canonical-json.js";
import type { AuditRecord, ChainedRecord } from "./types.js";

/** The `prev_hash` of a replica's very first record. */
export const GENESIS_HASH = "0".repeat(64);

export type ChainBreakReason = "hash mismatch" | "broken link";

export interface ChainBreak {
  id: string;
  reason: ChainBreakReason | "truncated record" | "unreadable record" | "records missing after it" | "records missing before it" | "every record missing";
}

export type ChainVerdict = { ok: true; records: number; last_hash: string | null } | { ok: false; first_broken: ChainBreak };

/**
 * The chain rule: a record's `hash` is the sha256 hex of `JSON.stringify` of the record with
 * `prev_hash` as its last field and without `hash`; the stored line is that same text with
 * `"hash"` appended as the last field. A line read back re-stringifies to the same text, because
 * `JSON.stringify(JSON.parse(s)) === s` for any `s` that `JSON.stringify` produced.
 */
export function hashRecord(record: AuditRecord & { prev_hash: string }): string {
  const { hash: _ignored, ...rest } = record as AuditRecord & { prev_hash: string; hash?: unknown };
  return sha256Hex(JSON.stringify(rest));
}

/** The JSONL line (without its newline) of a record linked to `prevHash`, serialised once. */
export function chainLine(record: AuditRecord, prevHash: string): { text: string; hash: string } {
  const plain = JSON.stringify(withoutChainFields(record));
  // The same text as stringifying the record with `prev_hash` added last, without copying the record.
  const linked = `${plain.slice(0, -1)},"prev_hash":"${prevHash}"}`;
  const hash = sha256Hex(linked);
  // `linked` ends with the object's closing brace: the hash goes in just before it.
  return { text: `${linked.slice(0, -1)},"hash":"${hash}"}`, hash };
}

/** The record as stored (the parsed form of `chainLine`'s text). */
export function chainRecord(record: AuditRecord, prevHash: string): ChainedRecord {
  const linked = { ...withoutChainFields(record), prev_hash: prevHash };
  return { ...linked, hash: sha256Hex(JSON.stringify(linked)) };
}

/** A record handed in twice (a retry) must not carry its previous chain fields into the hash. */
function withoutChainFields(record: AuditRecord): AuditRecord {
  if (!("prev_hash" in record) && !("hash" in record)) return record;
  const { prev_hash: _p, hash: _h, ...plain } = record as AuditRecord & { prev_hash?: unknown; hash?: unknown };
  return plain;
}

/**
 * Checks one record against the hash of the record before it. `expectedPrev` null trusts the
 * record's own `prev_hash` (the oldest record kept after retention deleted what came before).
 */
export function checkLink(record: ChainedRecord, expectedPrev: string | null): ChainBreakReason | null {
  if (typeof record.hash !== "string" || hashRecord(record) !== record.hash) return "hash mismatch";
  if (expectedPrev !== null && record.prev_hash !== expectedPrev) return "broken link";
  return null;
}

/**
 * `checkLink` for a stored line, judged on its bytes: the line must be the very text its hash was
 * taken of, so an edit that parses to the same record (a repeated member whose first copy a reader
 * scanning the text would take, added spaces) is a mismatch too.
 */
export function checkLine(text: string, record: ChainedRecord, expectedPrev: string | null): ChainBreakReason | null {
  const tail = `,"hash":"${String(record.hash)}"}`;
  if (!text.endsWith(tail) || sha256Hex(`${text.slice(0, -tail.length)}}`) !== record.hash) return "hash mismatch";
  if (expectedPrev !== null && record.prev_hash !== expectedPrev) return "broken link";
  return null;
}

/** Walks records in chain order; without `startPrev` the first record's `prev_hash` is trusted. */
export function verifyChain(records: Iterable<ChainedRecord>, startPrev?: string): ChainVerdict {
  let prev: string | null = startPrev ?? null;
  let count = 0;
  for (const record of records) {
    const reason = checkLink(record, prev);
    if (reason !== null) return { ok: false, first_broken: { id: String(record.id), reason } };
    prev = record.hash;
    count += 1;
  }
  return { ok: true, records: count, last_hash: prev };
}
