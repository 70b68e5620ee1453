import { z } from "zod";
import { amountParam, type ParsedParams, parseParams, type QueryParams, wholeNumberParam } from "../util/query-params.js";
import type { AuditRecord } from "./types.js";

/** `error_code`s of calls refused by a limit, a budget, a stop or a policy. */
export const VIOLATION_ERROR_CODES: ReadonlySet<string> = new Set([
  "rate_limit_exceeded",
  "budget_exceeded",
  "cost_cap_exceeded",
  "emergency_stop",
  "policy_denied",
  "approval_required",
  "model_not_priced",
]);

export const DEFAULT_HIGH_COST = 1.0;
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** `GET /admin/audit` (all), `/admin/audit/violations`, `/admin/audit/high-cost`. */
export type AuditQueryKind = "all" | "violations" | "high-cost";

export interface AuditCursor {
  id: string;
  ts: string;
}

const cursorSchema = z.object({ id: z.string(), ts: z.string() });

const DAY_MS = 86_400_000;
const time = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);
const fromTime = time.transform((text) => Date.parse(text));
/** `to` is inclusive, as the seed's `lte`: a date takes in its whole (UTC) day, an instant itself. */
const toTime = time.transform((text) => Date.parse(text) + (text.length === 10 ? DAY_MS : 1));

/** A `cursor` query parameter: one that `encodeCursor` wrote, else a 400 naming it. */
export function cursorParam() {
  return z.string().transform((text, ctx) => {
    const cursor = decodeCursor(text);
    if (cursor === null) {
      ctx.addIssue({ code: "custom", message: "is not a cursor returned by this API" });
      return z.NEVER;
    }
    return cursor;
  });
}

const paramsSchema = z.strictObject({
  user: z.string().optional(),
  key_id: z.string().optional(),
  team: z.string().optional(),
  model: z.string().optional(),
  effect: z.enum(["ALLOW", "DENY", "REQUIRE_APPROVAL"]).optional(),
  status: wholeNumberParam(100, 599).optional(),
  error_code: z.string().optional(),
  min_cost: amountParam.optional(),
  approval_id: z.string().optional(),
  from: fromTime.optional(),
  to: toTime.optional(),
  limit: wholeNumberParam(1, MAX_LIMIT).default(DEFAULT_LIMIT),
  cursor: cursorParam().optional(),
});

/** Filters of a query; times are epoch ms (`from` inclusive, `to` exclusive: the parsed `to` is the end of what it names). */
export type AuditQuery = z.output<typeof paramsSchema> & { kind: AuditQueryKind };

/** A time range of records, as in a query: epoch ms, `from` inclusive, `to` exclusive. */
export type AuditRange = Pick<AuditQuery, "from" | "to">;

/** Parses query-string parameters (`parseParams`: empty values absent, unknown ones refused). */
export function parseAuditQuery(params: QueryParams, kind: AuditQueryKind = "all"): ParsedParams<AuditQuery> {
  const parsed = parseParams(paramsSchema, params, "filter");
  if (!parsed.ok) return parsed;
  const query: AuditQuery = { ...parsed.data, kind };
  if (kind === "high-cost" && query.min_cost === undefined) query.min_cost = DEFAULT_HIGH_COST;
  return { ok: true, data: query };
}

export function encodeCursor(record: Pick<AuditRecord, "id" | "ts">): string {
  return Buffer.from(JSON.stringify({ id: record.id, ts: record.ts }), "utf8").toString("base64url");
}

export function decodeCursor(text: string): AuditCursor | null {
  try {
    const parsed = cursorSchema.safeParse(JSON.parse(Buffer.from(text, "base64url").toString("utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** A record's time in ms; an unreadable `ts` sorts after every real time. */
export function timeOf(ts: string): number {
  const ms = Date.parse(ts);
  return Number.isFinite(ms) ? ms : Number.NEGATIVE_INFINITY;
}

/** Result order: newest `ts` first, ties by `id` descending, so a cursor is a total position. */
export function compareNewestFirst(a: Pick<AuditRecord, "id" | "ts">, b: Pick<AuditRecord, "id" | "ts">): number {
  const difference = timeOf(b.ts) - timeOf(a.ts);
  if (difference !== 0 && !Number.isNaN(difference)) return difference;
  return a.id === b.id ? 0 : a.id < b.id ? 1 : -1;
}

export function isViolation(record: AuditRecord): boolean {
  const effect = record.decision?.effect;
  if (effect === "DENY" || effect === "REQUIRE_APPROVAL") return true;
  return record.error_code !== null && VIOLATION_ERROR_CODES.has(record.error_code);
}

/** Whether a record passes every filter (not the cursor or the limit). */
export function matchesQuery(record: AuditRecord, query: AuditQuery): boolean {
  if (query.kind === "violations" && !isViolation(record)) return false;
  if (query.user !== undefined && record.user !== query.user) return false;
  if (query.key_id !== undefined && record.key_id !== query.key_id) return false;
  if (query.team !== undefined && record.team !== query.team) return false;
  if (query.model !== undefined && record.model !== query.model) return false;
  if (query.effect !== undefined && record.decision?.effect !== query.effect) return false;
  if (query.status !== undefined && record.status !== query.status) return false;
  if (query.error_code !== undefined && record.error_code !== query.error_code) return false;
  if (query.min_cost !== undefined && !(record.cost >= query.min_cost)) return false;
  if (query.approval_id !== undefined && record.approval_id !== query.approval_id) return false;
  return isWithinTime(timeOf(record.ts), query);
}

export function isWithinTime(ms: number, query: AuditRange): boolean {
  if (query.from !== undefined && !(ms >= query.from)) return false;
  return query.to === undefined || ms < query.to;
}

/** Whether a record at `ms` can still be on a page after the cursor (ties need the id). */
export function mayFollowCursor(ms: number, cursor: AuditCursor | undefined): boolean {
  return cursor === undefined || ms <= timeOf(cursor.ts);
}

export function followsCursor(record: AuditRecord, cursor: AuditCursor | undefined): boolean {
  return cursor === undefined || compareNewestFirst(record, cursor) > 0;
}

/**
 * What a record source yields: records in any order, and bounds — "every record from here on has
 * a `ts` earlier than `before` (ms)" — that let a page stop reading early.
 */
export type SourceItem = { record: AuditRecord } | { before: number };

export interface AuditPage {
  data: AuditRecord[];
  next_cursor: string | null;
}

/** Collects one page from a source, keeping only the best `limit + 1` records in memory. */
export async function collectPage(source: AsyncIterable<SourceItem>, query: AuditQuery): Promise<AuditPage> {
  const keep = query.limit + 1;
  const best: AuditRecord[] = [];
  for await (const item of source) {
    if ("before" in item) {
      if (query.from !== undefined && item.before <= query.from) break;
      const worst = best[keep - 1];
      if (worst !== undefined && timeOf(worst.ts) >= item.before) break;
      continue;
    }
    const { record } = item;
    if (!followsCursor(record, query.cursor) || !matchesQuery(record, query)) continue;
    insertSorted(best, record, keep);
  }
  const data = best.slice(0, query.limit);
  const last = data[data.length - 1];
  return { data, next_cursor: best.length > query.limit && last !== undefined ? encodeCursor(last) : null };
}

/** Inserts in newest-first order, dropping a repeated record (at-least-once sinks) and the overflow. */
function insertSorted(best: AuditRecord[], record: AuditRecord, keep: number): void {
  let low = 0;
  let high = best.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    const current = best[middle];
    if (current !== undefined && compareNewestFirst(current, record) <= 0) low = middle + 1;
    else high = middle;
  }
  const before = best[low - 1];
  if (before !== undefined && compareNewestFirst(before, record) === 0) return;
  if (low >= keep) return;
  best.splice(low, 0, record);
  if (best.length > keep) best.pop();
}
