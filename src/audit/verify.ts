import { type ChainBreak, checkLine, GENESIS_HASH } from "./chain.js";
import { type AuditFile, fileReplica, listAuditFiles, readAnchor } from "./files.js";
import { readLines } from "./jsonl-lines.js";
import type { ChainedRecord } from "./types.js";

export type VerifyResult = { ok: true; records: number } | { ok: false; first_broken: ChainBreak };

export interface VerifyOptions {
  /**
   * Bytes to read per file path, e.g. `FileSink.committedSizes()`, so a batch being appended while
   * verifying is not reported as a truncated record.
   */
  sizes?: ReadonlyMap<string, number>;
  /**
   * Where a running writer's chains end (file replica name to its head hash): records cut off the
   * end of a file, which leave every remaining link intact, show as a chain ending before its head.
   */
  heads?: ReadonlyMap<string, string>;
}

/**
 * Verifies each replica's chain in `dir` (or one replica's), oldest kept file first. The oldest
 * record links to the genesis, or to the hash retention left in the replica's anchor when it
 * deleted the days before: records cut off the start of the chain are found too. Reports the
 * first record whose hash or link fails, or a line that is not a record (a torn tail).
 */
export async function verifyFiles(dir: string, replica?: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  let records = 0;
  const groups = groupByReplica(await listAuditFiles(dir, replica));
  // A running writer's chain whose files are all gone (deleted, emptied) is checked too: it has a head.
  for (const name of options.heads?.keys() ?? []) {
    if (!groups.has(name) && (replica === undefined || fileReplica(replica) === name)) groups.set(name, []);
  }
  for (const name of [...groups.keys()].sort()) {
    const anchor = await readAnchor(dir, name);
    const result = await verifyReplica(name, groups.get(name) ?? [], options, options.heads?.get(name), anchor?.prev_hash ?? GENESIS_HASH);
    if (!result.ok) return result;
    records += result.records;
  }
  return { ok: true, records };
}

function groupByReplica(files: readonly AuditFile[]): Map<string, AuditFile[]> {
  const groups = new Map<string, AuditFile[]>();
  for (const file of files) groups.set(file.replica, [...(groups.get(file.replica) ?? []), file]);
  return groups;
}

/** `files` are one replica's, oldest day first (as listed). */
async function verifyReplica(name: string, files: readonly AuditFile[], options: VerifyOptions, head: string | undefined, start: string): Promise<VerifyResult> {
  let prev: string | null = null;
  let lastId: string | null = null;
  let records = 0;
  for (const file of files) {
    let lineNumber = 0;
    for await (const line of readLines(file.path, options.sizes?.get(file.path))) {
      lineNumber += 1;
      if (line.text === "" && line.terminated) continue;
      const record = line.terminated ? parseRecord(line.text) : null;
      if (record === null) {
        const id = idIn(line.text) ?? `${file.name}:${lineNumber}`;
        return { ok: false, first_broken: { id, reason: line.terminated ? "unreadable record" : "truncated record" } };
      }
      const reason = checkLine(line.text, record, prev);
      if (prev === null && record.prev_hash !== start && reason === null) {
        return { ok: false, first_broken: { id: String(record.id), reason: "records missing before it" } };
      }
      if (reason !== null) return { ok: false, first_broken: { id: String(record.id), reason } };
      prev = record.hash;
      lastId = String(record.id);
      records += 1;
    }
  }
  if (head !== undefined && prev === null && head !== start) {
    // No record is left to name: the break is named by the replica whose chain it is.
    return { ok: false, first_broken: { id: `replica ${name}`, reason: "every record missing" } };
  }
  if (head !== undefined && prev !== null && prev !== head) {
    return { ok: false, first_broken: { id: lastId ?? "", reason: "records missing after it" } };
  }
  return { ok: true, records };
}

export function parseRecord(text: string): ChainedRecord | null {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object" && "hash" in parsed && "prev_hash" in parsed && "id" in parsed) {
      return parsed as ChainedRecord;
    }
  } catch {
    // Reported by the caller with the best id it can find.
  }
  return null;
}

/** The id of a damaged line, when its beginning survived. */
function idIn(text: string): string | null {
  return /"id":"((?:[^"\\]|\\.)*)"/.exec(text)?.[1] ?? null;
}
