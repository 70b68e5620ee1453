import { type AuditFile, addDays, dayStartMs, listAuditFiles } from "./files.js";
import { readLines, readLinesReverse } from "./jsonl-lines.js";
import {
  type AuditPage,
  type AuditQuery,
  type AuditRange,
  collectPage,
  isWithinTime,
  mayFollowCursor,
  type SourceItem,
  timeOf,
} from "./query.js";
import type { AuditRecord } from "./types.js";

/**
 * One page of records from the day files of one replica (or of all), newest first. Files are read
 * newest day first and backwards; a day file only holds records whose `ts` falls on that day or
 * earlier (the file sink never goes back a day), so reading stops once older days cannot beat
 * the page. Within a file, lines are in write order rather than `ts` order, so a day is read whole.
 */
export async function queryFiles(dir: string, replica: string | undefined, query: AuditQuery): Promise<AuditPage> {
  const files = await listAuditFiles(dir, replica);
  return collectPage(fileRecords(files, query), query);
}

async function* fileRecords(files: readonly AuditFile[], query: AuditQuery): AsyncGenerator<SourceItem> {
  for (const [day, group] of groupByDayNewestFirst(files)) {
    yield { before: dayStartMs(addDays(day, 1)) };
    for (const file of group) {
      for await (const line of readLinesReverse(file.path)) {
        const record = readRecord(line.text, query);
        if (record !== null) yield { record };
      }
    }
  }
}

/**
 * Every record with `ts` in the range from the day files of one replica (or of all), oldest day
 * first, each file read once from its start (a file's records come in write order, not `ts`
 * order). A day file only holds records of that day or earlier, so days ending before `from` are
 * skipped; any later day may hold a late record from before `to`, so those are all read. (The file
 * sink resumes a retried batch after what it stored, so files hold no repeats to drop.)
 */
export async function* scanFiles(dir: string, replica: string | undefined, range: AuditRange): AsyncGenerator<AuditRecord> {
  for (const file of await listAuditFiles(dir, replica)) {
    if (range.from !== undefined && dayStartMs(addDays(file.day, 1)) <= range.from) continue;
    for await (const line of readLines(file.path)) {
      const record = readRecord(line.text, range);
      if (record !== null && isWithinTime(timeOf(record.ts), range)) yield record;
    }
  }
}

function groupByDayNewestFirst(files: readonly AuditFile[]): [string, AuditFile[]][] {
  const groups = new Map<string, AuditFile[]>();
  for (const file of files) groups.set(file.day, [...(groups.get(file.day) ?? []), file]);
  return [...groups.entries()].sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0));
}

// The sink writes records in contract field order; when a line starts this way its `ts` can be
// checked before paying for JSON.parse. Any other line is simply parsed.
const LEADING_TS = /^\{"schema":1,"id":"(?:[^"\\]|\\.)*","ts":"([^"\\]*)"/;

/** A line's record; null for a line that is not one, or whose leading `ts` rules it out unparsed. */
function readRecord(text: string, query: Pick<AuditQuery, "from" | "to" | "cursor">): AuditRecord | null {
  const leading = LEADING_TS.exec(text);
  if (leading?.[1] !== undefined) {
    const ms = timeOf(leading[1]);
    if (!mayFollowCursor(ms, query.cursor) || !isWithinTime(ms, query)) return null;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object" && "id" in parsed && "ts" in parsed) return parsed as AuditRecord;
  } catch {
    // A torn or foreign line is not a record; verification is where it gets reported.
  }
  return null;
}
