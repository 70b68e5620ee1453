import { Hono } from "hono";
import type { Env } from "../http/app.js";
import type { Services } from "../pipeline/services.js";
import type { Audit } from "../audit/create.js";

export interface AdminDeps {
  services: Services;
  audit: Audit;
  onKeysChanged: () => Promise<void>;
  onStopsChanged: () => Promise<void>;
}

export function adminRoutes(_deps: AdminDeps): Hono<Env> {
  return new Hono<Env>();
}
