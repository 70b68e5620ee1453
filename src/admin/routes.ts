import { Hono } from "hono";
import type { Audit } from "../audit/create.js";
import type { Env } from "../http/app.js";
import type { Services } from "../pipeline/services.js";
import { approvalRoutes } from "./approvals.js";
import { auditRoutes } from "./audit.js";
import { keyRoutes } from "./keys.js";
import { policyRoutes } from "./policies.js";
import { spendRoutes } from "./spend.js";
import { stopRoutes } from "./stops.js";

export interface AdminDeps {
  services: Services;
  /** Audit reads: the Redis stream when one is configured (every replica), else this replica's files. */
  audit: Pick<Audit, "query" | "verify">;
  /** Reloads this replica's key index from the store; other replicas hear of the change from the store. */
  onKeysChanged: () => Promise<void>;
  /** Reloads this replica's stops from the store (and halts what they cover). */
  onStopsChanged: () => Promise<void>;
}

/**
 * The admin API of CONTRACT.md §5, mounted at `/admin`. Each handler checks its own credential
 * (approval routes accept approver tokens, the rest only the superuser) and names its audit action.
 */
export function adminRoutes(deps: AdminDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.route("/keys", keyRoutes(deps));
  app.route("/stop", stopRoutes(deps));
  app.route("/approvals", approvalRoutes(deps));
  app.route("/audit", auditRoutes(deps));
  app.route("/spend", spendRoutes(deps));
  app.route("/policies", policyRoutes(deps));
  return app;
}
