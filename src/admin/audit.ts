import { Hono } from "hono";
import { type AuditQuery, type AuditQueryKind, parseAuditQuery } from "../audit/query.js";
import { AuditUnavailableError } from "../audit/unavailable.js";
import type { Env } from "../http/app.js";
import { GatewayError } from "../http/errors.js";
import { type AdminContext, allowOnly, authorize, fromParsed, list, noQuery, queryParams } from "./http.js";
import type { AdminDeps } from "./routes.js";

/** The filters of `GET /admin/audit` (shared by the shortcuts and by spend); a bad one is 400 naming it. */
export function auditQueryFrom(params: Record<string, string>, kind: AuditQueryKind): AuditQuery {
  return fromParsed(parseAuditQuery(params, kind));
}

/**
 * An audit read. An audit stream that cannot be reached is 503 `audit_unavailable` with
 * `retry-after`, like the store's outages: the records are kept, only reading them must wait.
 */
export async function fromAudit<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (error) {
    if (!(error instanceof AuditUnavailableError)) throw error;
    throw new GatewayError(503, "audit_unavailable", "the audit store cannot be reached; try again shortly", {
      headers: { "retry-after": "1" },
    });
  }
}

async function queryRoute(c: AdminContext, deps: AdminDeps, kind: AuditQueryKind, action: string): Promise<Response> {
  authorize(c, deps.services, "admin", action);
  const page = await fromAudit(deps.audit.query(auditQueryFrom(queryParams(c), kind)));
  return c.json(list(page.data, page.next_cursor));
}

async function verifyRoute(c: AdminContext, deps: AdminDeps): Promise<Response> {
  authorize(c, deps.services, "admin", "admin.audit.verify");
  noQuery(c);
  const result = await deps.audit.verify();
  if (result.ok) return c.json(result);
  // A broken chain is the answer, not a failure of this request: record the 409 without an error
  // code (the audit middleware would otherwise read one from an error body this response lacks).
  deps.services.finish(c.get("draft"), 409, null);
  return c.json(result, 409);
}

export function auditRoutes(deps: AdminDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.get("/", (c) => queryRoute(c, deps, "all", "admin.audit.query"));
  app.get("/violations", (c) => queryRoute(c, deps, "violations", "admin.audit.violations"));
  app.get("/high-cost", (c) => queryRoute(c, deps, "high-cost", "admin.audit.high-cost"));
  app.get("/verify", (c) => verifyRoute(c, deps));
  for (const path of ["/", "/violations", "/high-cost", "/verify"]) allowOnly(app, deps.services, path, ["GET"]);
  return app;
}
