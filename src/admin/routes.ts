import { Hono } from "hono";
import { fromStore } from "../approvals/service.js";
import type { Audit } from "../audit/create.js";
import type { Env } from "../http/app.js";
import type { Services } from "../pipeline/services.js";
import type { StateStore } from "../state/store.js";
import { approvalRoutes } from "./approvals.js";
import { auditRoutes } from "./audit.js";
import { keyRoutes } from "./keys.js";
import { policyRoutes } from "./policies.js";
import { spendRoutes } from "./spend.js";
import { stopRoutes } from "./stops.js";

export interface AdminDeps {
  services: Services;
  /** Audit reads: the Redis stream when one is configured (every replica), else this replica's files. */
  audit: Pick<Audit, "query" | "scan" | "verify">;
  /** Reloads this replica's key index from the store; other replicas hear of the change from the store. */
  onKeysChanged: () => Promise<void>;
  /** Reloads this replica's stops from the store (and halts what they cover). */
  onStopsChanged: () => Promise<void>;
}

/**
 * The admin API of CONTRACT.md §5, mounted at `/admin`. Each handler checks its own credential
 * (approval routes accept approver tokens, the rest only the superuser) and names its audit action.
 */
export function adminRoutes(given: AdminDeps): Hono<Env> {
  const deps: AdminDeps = { ...given, services: { ...given.services, store: guardedStore(given.services.store) } };
  const app = new Hono<Env>();
  app.route("/keys", keyRoutes(deps));
  app.route("/stop", stopRoutes(deps));
  app.route("/approvals", approvalRoutes(deps));
  app.route("/audit", auditRoutes(deps));
  app.route("/spend", spendRoutes(deps));
  app.route("/policies", policyRoutes(deps));
  return app;
}

/** The store as admin handlers see it: a store that cannot be reached answers 503 `store_unavailable`. */
function guardedStore(store: StateStore): StateStore {
  return new Proxy(store, {
    get(target, name) {
      const value: unknown = Reflect.get(target, name, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]): unknown => {
        const result: unknown = value.apply(target, args);
        return result instanceof Promise ? fromStore(result) : result;
      };
    },
  });
}
