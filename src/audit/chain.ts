import { createHash } from "node:crypto";
import { canonicalJson } from "../util/canonical-json.js";
import type { AuditRecord, ChainedRecord } from "./types.js";

/** The `prev_hash` of a replica's very first record. */
export const GENESIS_HASH = "0".repeat(64);

export type ChainBreakReason = "hash mismatch" | "broken link";

export interface ChainBreak {
  id: string;
  reason: ChainBreakReason | "truncated record" | "unreadable record";
}

export type ChainVerdict = { ok: true; records: number; last_hash: string | null } | { ok: false; first_broken: ChainBreak };

/** sha256 hex of the canonical JSON of the record with `prev_hash` and without `hash`. */
export function hashRecord(record: AuditRecord & { prev_hash: string }): string {
  const { hash: _ignored, ...rest } = record as AuditRecord & { prev_hash: string; hash?: unknown };
  return createHash("sha256").update(canonicalJson(rest)).digest("hex");
}

export function chainRecord(record: AuditRecord, prevHash: string): ChainedRecord {
  // A record handed in twice (a retry) must not carry its previous chain fields into the hash.
  const { prev_hash: _p, hash: _h, ...plain } = record as AuditRecord & { prev_hash?: unknown; hash?: unknown };
  const linked = { ...plain, prev_hash: prevHash };
  return { ...linked, hash: hashRecord(linked) };
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
