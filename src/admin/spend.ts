import { Hono } from "hono";
import { z } from "zod";
import type { AuditRecord } from "../audit/types.js";
import type { Env } from "../http/app.js";
import { CALL_ACTIONS } from "../policy/types.js";
import { usdToMicros } from "../pricing/index.js";
import { auditQueryFrom, fromAudit } from "./audit.js";
import { type AdminContext, allowOnly, authorize, list, listQuery, queryParams } from "./http.js";
import type { AdminDeps } from "./routes.js";

export type SpendGroupBy = "key" | "user" | "team" | "model" | "day";

export interface SpendRow {
  /** Null for calls without that attribute (a key without a team, a refusal before the model was known). */
  group: string | null;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cost: number;
}

const spendQuerySchema = z.strictObject({
  group_by: z.enum(["key", "user", "team", "model", "day"]).default("key"),
  from: z.string().optional(),
  to: z.string().optional(),
});

function groupOf(record: AuditRecord, groupBy: SpendGroupBy): string | null {
  switch (groupBy) {
    case "key":
      return record.key_id;
    case "user":
      return record.user;
    case "team":
      return record.team;
    case "model":
      return record.model;
    case "day":
      return record.ts.slice(0, 10);
  }
}

const CALLS: ReadonlySet<string | null> = new Set(CALL_ACTIONS);

/**
 * Spend is the governed calls that reached the upstream (chat, responses, embeddings): refusals,
 * model listings, passthrough and admin actions cost nothing and are not counted as requests.
 */
const isCall = (record: AuditRecord): boolean => CALLS.has(record.action) && record.upstream_ms !== null;

interface Totals {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  micros: number;
}

/**
 * Folds records into rows. Costs are summed as integer micro-USD (each record's cost is already
 * rounded up to the micro-dollar), so the total is exact and converted to USD once.
 */
export async function aggregateSpend(records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>, groupBy: SpendGroupBy): Promise<SpendRow[]> {
  const groups = new Map<string | null, Totals>();
  for await (const record of records) {
    if (!isCall(record)) continue;
    const group = groupOf(record, groupBy);
    const totals = groups.get(group) ?? { requests: 0, inputTokens: 0, outputTokens: 0, micros: 0 };
    totals.requests += 1;
    totals.inputTokens += record.input_tokens;
    totals.outputTokens += record.output_tokens;
    totals.micros += usdToMicros(record.cost);
    groups.set(group, totals);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1))
    .map(([group, totals]) => ({
      group,
      requests: totals.requests,
      input_tokens: totals.inputTokens,
      output_tokens: totals.outputTokens,
      cost: totals.micros / 1_000_000,
    }));
}

async function spendRoute(c: AdminContext, deps: AdminDeps): Promise<Response> {
  authorize(c, deps.services, "admin", "admin.spend");
  const params = queryParams(c);
  const { group_by: groupBy } = listQuery(c, spendQuerySchema);
  // The range is read and checked as `GET /admin/audit` reads it, so both refuse the same values.
  const bounds: Record<string, string> = {};
  if (params.from !== undefined) bounds.from = params.from;
  if (params.to !== undefined) bounds.to = params.to;
  const range = auditQueryFrom(bounds, "all");
  // One forward pass over the range: paging through the query would re-read it for every page.
  return c.json(list(await fromAudit(aggregateSpend(deps.audit.scan(range), groupBy))));
}

export function spendRoutes(deps: AdminDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.get("/", (c) => spendRoute(c, deps));
  allowOnly(app, deps.services, "/", ["GET"]);
  return app;
}
