import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/** One day file of one replica's chain: `audit-<replica>-<YYYY-MM-DD>.jsonl`. */
export interface AuditFile {
  path: string;
  name: string;
  replica: string;
  day: string;
}

const DAY_MS = 86_400_000;
// Greedy replica part: replica ids such as `host-8787` contain dashes, the day never varies in shape.
const FILE_NAME = /^audit-(.+)-(\d{4}-\d{2}-\d{2})\.jsonl$/;

/** Replica ids become part of a file name: anything outside a safe set is replaced. */
export function fileReplica(replica: string): string {
  return replica.replace(/[^A-Za-z0-9._-]/g, "_");
}

export function auditFileName(replica: string, day: string): string {
  return `audit-${fileReplica(replica)}-${day}.jsonl`;
}

/**
 * Where retention leaves the hash the oldest kept record links to, so verification can tell days it
 * deleted from records cut off the start of the chain (the name is not a day file's: never listed).
 */
export function anchorFileName(replica: string): string {
  return `audit-${fileReplica(replica)}.anchor`;
}

/** The anchor of one replica's chain: the last hash retention deleted, and its last deleted day. */
export interface ChainAnchor {
  prev_hash: string;
  through: string;
}

/** A replica's anchor in `dir`; null when retention never deleted a file of it (or it cannot be read). */
export async function readAnchor(dir: string, replica: string): Promise<ChainAnchor | null> {
  try {
    const parsed: unknown = JSON.parse(await readFile(join(dir, anchorFileName(replica)), "utf8"));
    if (parsed !== null && typeof parsed === "object" && "prev_hash" in parsed && typeof parsed.prev_hash === "string") return parsed as ChainAnchor;
  } catch {
    // No anchor: the chain must start at its genesis.
  }
  return null;
}

export function parseAuditFileName(name: string): { replica: string; day: string } | null {
  const match = FILE_NAME.exec(name);
  if (match === null) return null;
  return { replica: match[1] ?? "", day: match[2] ?? "" };
}

/** UTC day of an ISO timestamp or epoch ms; null for an unparseable timestamp. */
export function utcDay(ts: string | number): string | null {
  if (typeof ts === "string" && ISO_UTC.test(ts)) return ts.slice(0, 10);
  const ms = typeof ts === "number" ? ts : Date.parse(ts);
  if (!Number.isFinite(ms)) return null;
  return new Date(ms).toISOString().slice(0, 10);
}

/** A `toISOString()` timestamp, as every record's `ts` is: its day is its first ten characters. */
const ISO_UTC = /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function dayStartMs(day: string): number {
  return Date.parse(`${day}T00:00:00.000Z`);
}

/** The day `days` before `day` (both YYYY-MM-DD). */
export function addDays(day: string, days: number): string {
  return new Date(dayStartMs(day) + days * DAY_MS).toISOString().slice(0, 10);
}

/** Audit files in `dir` (of one replica when given), oldest day first; a missing dir has none. */
export async function listAuditFiles(dir: string, replica?: string): Promise<AuditFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const wanted = replica === undefined ? undefined : fileReplica(replica);
  const files: AuditFile[] = [];
  for (const name of names) {
    const parsed = parseAuditFileName(name);
    if (parsed === null || (wanted !== undefined && parsed.replica !== wanted)) continue;
    files.push({ path: join(dir, name), name, ...parsed });
  }
  return files.sort((a, b) => (a.day === b.day ? a.replica.localeCompare(b.replica) : a.day < b.day ? -1 : 1));
}
