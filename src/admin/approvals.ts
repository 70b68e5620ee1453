import { Hono } from "hono";
import { z } from "zod";
import { type ApprovalView, fromStore, publicApproval } from "../approvals/service.js";
import { type AuditCursor, compareNewestFirst, cursorParam, encodeCursor } from "../audit/query.js";
import type { Env } from "../http/app.js";
import { maskedText } from "../pipeline/shown-name.js";
import { wholeNumberParam } from "../util/query-params.js";
import { type AdminContext, allowOnly, authorize, list, type ListBody, listQuery, noQuery, notFound, readJson, recordChange } from "./http.js";
import type { AdminDeps } from "./routes.js";

const listQuerySchema = z.strictObject({
  status: z.enum(["pending", "approved", "denied", "used", "expired"]).optional(),
  limit: wholeNumberParam(1, 1000).optional(),
  cursor: cursorParam().optional(),
});

/** Who decides comes from the credential: other fields (an `approver`, a `role`) are ignored, never read. */
const decisionSchema = z.object({
  comment: z.string().max(4000).nullable().optional(),
});

/** Newest first, ties by id, so a cursor (the last one's `created_at` and id) is a total position. */
function page(views: ApprovalView[], limit: number | undefined, cursor: AuditCursor | undefined): ListBody<ApprovalView> {
  const position = (view: ApprovalView) => ({ id: view.id, ts: view.created_at });
  const sorted = views.sort((a, b) => compareNewestFirst(position(a), position(b)));
  const rest = cursor === undefined ? sorted : sorted.filter((view) => compareNewestFirst(position(view), cursor) > 0);
  if (limit === undefined || rest.length <= limit) return list(rest);
  const shown = rest.slice(0, limit);
  return list(shown, encodeCursor(position(shown[limit - 1] as ApprovalView)));
}

async function decide(c: AdminContext, deps: AdminDeps, status: "approved" | "denied"): Promise<Response> {
  const { services } = deps;
  const actor = authorize(c, services, "approvals", status === "approved" ? "admin.approvals.approve" : "admin.approvals.deny");
  const id = c.req.param("id") ?? "";
  c.get("draft").approvalId = id;
  const decision = await readJson(c, services, decisionSchema);
  // Stored, listed, sent to the webhook and recorded: every secret in it masked.
  const comment = decision.comment === undefined || decision.comment === null ? decision.comment : maskedText(services, decision.comment, c.get("draft").mask);
  recordChange(c, services, { ...decision, comment });
  // Who decides comes from the credential alone; the service checks `approver_role` and pending-ness.
  const approval = await services.approvals.decide(id, { name: actor.name, role: actor.role }, status, comment ?? null);
  return c.json(publicApproval(approval, services.clock()));
}

/** The only routes an approver token may use (scope `approvals`); the superuser may too. */
export function approvalRoutes(deps: AdminDeps): Hono<Env> {
  const { services } = deps;
  const app = new Hono<Env>();
  app.get("/", async (c) => {
    authorize(c, services, "approvals", "admin.approvals.list");
    const { status, limit, cursor } = listQuery(c, listQuerySchema);
    // `expired` is a view of pending and approved approvals whose time is up, not a stored state.
    const stored = await fromStore(services.store.listApprovals(status === undefined || status === "expired" ? null : status));
    const now = services.clock();
    const views = stored.map((approval) => publicApproval(approval, now)).filter((view) => status === undefined || view.status === status);
    return c.json(page(views, limit, cursor));
  });
  app.get("/:id", async (c) => {
    authorize(c, services, "approvals", "admin.approvals.get");
    noQuery(c);
    const id = c.req.param("id");
    const approval = await fromStore(services.store.getApproval(id));
    if (approval === null) throw notFound("approval", id);
    return c.json(publicApproval(approval, services.clock()));
  });
  app.post("/:id/approve", (c) => decide(c, deps, "approved"));
  app.post("/:id/deny", (c) => decide(c, deps, "denied"));
  allowOnly(app, deps.services, "/", ["GET"]);
  allowOnly(app, deps.services, "/:id", ["GET"]);
  allowOnly(app, deps.services, "/:id/approve", ["POST"]);
  allowOnly(app, deps.services, "/:id/deny", ["POST"]);
  return app;
}
