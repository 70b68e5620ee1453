import { Hono } from "hono";
import { z } from "zod";
import { fromStore, publicApproval } from "../approvals/service.js";
import type { Env } from "../http/app.js";
import { type AdminContext, allowOnly, authorize, list, notFound, parseWith, queryParams, readJson } from "./http.js";
import type { AdminDeps } from "./routes.js";

const listQuerySchema = z.strictObject({
  status: z.enum(["pending", "approved", "denied", "used", "expired"]).optional(),
});

const decisionSchema = z.strictObject({
  comment: z.string().max(4000).nullable().optional(),
});

async function decide(c: AdminContext, deps: AdminDeps, status: "approved" | "denied"): Promise<Response> {
  const { services } = deps;
  const actor = authorize(c, services, "approvals", status === "approved" ? "admin.approvals.approve" : "admin.approvals.deny");
  const id = c.req.param("id") ?? "";
  c.get("draft").approvalId = id;
  const { comment } = await readJson(c, services, decisionSchema);
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
    const { status } = parseWith(listQuerySchema, queryParams(c));
    // `expired` is a view of pending and approved approvals whose time is up, not a stored state.
    const stored = await fromStore(services.store.listApprovals(status === undefined || status === "expired" ? null : status));
    const now = services.clock();
    const views = stored.map((approval) => publicApproval(approval, now)).filter((view) => status === undefined || view.status === status);
    views.sort((a, b) => (a.created_at === b.created_at ? 0 : a.created_at < b.created_at ? 1 : -1));
    return c.json(list(views));
  });
  app.get("/:id", async (c) => {
    authorize(c, services, "approvals", "admin.approvals.get");
    const id = c.req.param("id");
    const approval = await fromStore(services.store.getApproval(id));
    if (approval === null) throw notFound("approval", id);
    return c.json(publicApproval(approval, services.clock()));
  });
  app.post("/:id/approve", (c) => decide(c, deps, "approved"));
  app.post("/:id/deny", (c) => decide(c, deps, "denied"));
  allowOnly(app, "/", ["GET"]);
  allowOnly(app, "/:id", ["GET"]);
  allowOnly(app, "/:id/approve", ["POST"]);
  allowOnly(app, "/:id/deny", ["POST"]);
  return app;
}
