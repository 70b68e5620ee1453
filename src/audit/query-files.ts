import { type AuditFile, addDays, dayStartMs, listAuditFiles } from "./files.js";
import { readLinesReverse } from "./jsonl-lines.js";
import { type AuditPage, type AuditQuery, collectPage, isWithinTime, mayFollowCursor, type SourceItem, timeOf } from "./query.js";
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

function groupByDayNewestFirst(files: readonly AuditFile[]): [string, AuditFile[]][] {
  const groups = new Map<string, AuditFile[]>();
  for (const file of files) groups.set(file.day, [...(groups.get(file.day) ?? []), file]);
  return [...groups.entries()].sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0));
}

// The sink writes records in contract field order; when a line starts this way its `ts` can be
// checked before paying for JSON.parse. Any other line is simply parsed.
const LEADING_TS = /^\{"schema":1,"id":"(?:[^"\\]|\\.)*","ts":"([^"\\]*)"/;

function readRecord(text: string, query: AuditQuery): AuditRecord | null {
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
