import { type AuditPage, type AuditQuery, type AuditQueryKind, parseAuditQuery } from "../../src/audit/query.js";
import type { AuditRecord } from "../../src/audit/types.js";
import { makeRecord } from "./fixtures.js";

export function query(params: Record<string, string>, kind: AuditQueryKind = "all"): AuditQuery {
  const parsed = parseAuditQuery(params, kind);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.data;
}

const deny = { effect: "DENY" as const, rule: "r", reason: "no", matched: ["r"], constraints: {}, dry_run_rules: [] };
const approval = { ...deny, effect: "REQUIRE_APPROVAL" as const };

/** A varied set over three days, as one replica writes them (one late record included). */
export function sampleRecords(replica = "r1"): AuditRecord[] {
  const at = (ts: string, overrides: Partial<AuditRecord> = {}) => makeRecord({ ts, replica, ...overrides });
  return [
    at("2024-05-01T09:00:00.000Z"),
    at("2024-05-01T10:00:00.000Z", { user: "bob", team: "ops", key_id: "bob-key", cost: 2.5, model: "gpt-4o" }),
    at("2024-05-01T11:00:00.000Z", { decision: deny, status: 403, error_code: "policy_denied" }),
    at("2024-05-02T09:00:00.000Z", { status: 429, error_code: "rate_limit_exceeded" }),
    at("2024-05-02T10:00:00.000Z", { decision: approval, status: 202, approval_id: "ap_1" }),
    at("2024-05-02T11:00:00.000Z", { cost: 1.0 }),
    // Late: a long call that started before the previous records but ended (was written) after them.
    at("2024-05-02T08:00:00.000Z", { status: 499, error_code: "client_closed" }),
    at("2024-05-03T09:00:00.000Z", { status: 500, error_code: "internal_error", cost: 0.99 }),
    at("2024-05-03T10:00:00.000Z", { user: "bob", status: 403, error_code: "model_not_priced" }),
    at("2024-05-03T10:00:00.000Z", { model: "gpt-4o" }),
  ];
}

export function newestFirst(records: AuditRecord[]): AuditRecord[] {
  return [...records].sort((a, b) => (a.ts === b.ts ? (a.id < b.id ? 1 : -1) : a.ts < b.ts ? 1 : -1));
}

export const ids = (records: readonly AuditRecord[]) => records.map((record) => record.id);

/** Follows next_cursor to the end, with every page checked to be at most `limit` long. */
export async function allPages(run: (cursor: string | undefined) => Promise<AuditPage>, limit: number): Promise<AuditRecord[][]> {
  const pages: AuditRecord[][] = [];
  let cursor: string | undefined;
  for (let guard = 0; guard < 100; guard += 1) {
    const page = await run(cursor);
    if (page.data.length > limit) throw new Error("page over limit");
    pages.push(page.data);
    if (page.next_cursor === null) return pages;
    cursor = page.next_cursor;
  }
  throw new Error("pagination did not end");
}
