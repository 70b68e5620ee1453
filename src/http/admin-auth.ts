import { createHash, timingSafeEqual } from "node:crypto";
import { bearerToken } from "../auth/keys.js";
import type { Runtime } from "../pipeline/runtime.js";
import { GatewayError } from "./errors.js";

export interface AdminActor {
  name: string;
  role: string;
  /** The superuser may use every admin route; approvers only the approval routes. */
  superuser: boolean;
}

const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest();

/** The secrets of the virtual keys, config and runtime, by hash. */
export interface KeySecrets {
  holdsHash(hash: string): boolean;
}

/**
 * Resolves an admin credential: the `admin.token` superuser (role `admin`) or an approver token.
 * Both compared as SHA-256 digests in constant time; a virtual key is never an admin credential.
 */
export function verifyAdmin(runtime: Runtime, keys: KeySecrets, authorization: string | undefined, scope: "approvals" | "admin" | "metrics"): AdminActor {
  return checkScope(identifyAdmin(runtime, keys, authorization), scope);
}

/**
 * Who the credential is (401 when it is none), before whether it may use the route. A secret that is
 * also a virtual key's opens no admin route: the config refuses such a token beside a config key, but
 * a runtime key made before the config named it can only be told apart here.
 */
export function identifyAdmin(runtime: Runtime, keys: KeySecrets, authorization: string | undefined): AdminActor {
  const token = bearerToken(authorization);
  const configured = runtime.config.admin.token;
  if (token === null || configured === "") {
    throw new GatewayError(401, "invalid_admin_token", configured === "" ? "the admin API is disabled (no admin.token)" : "an admin or approver token is required");
  }
  const presented = digest(token);
  if (keys.holdsHash(`sha256:${presented.toString("hex")}`)) throw new GatewayError(401, "invalid_admin_token", "a virtual key is not an admin credential");
  if (timingSafeEqual(presented, digest(configured))) return { name: "admin", role: "admin", superuser: true };
  const approver = runtime.adminPrincipals.get(`sha256:${presented.toString("hex")}`);
  if (approver === undefined) throw new GatewayError(401, "invalid_admin_token", "the admin or approver token is not valid");
  return { name: approver.name, role: approver.role, superuser: false };
}

/** Approvers may only list and decide approvals: 403 `admin_forbidden` beyond that. */
export function checkScope(actor: AdminActor, scope: "approvals" | "admin" | "metrics"): AdminActor {
  if (!actor.superuser && scope !== "approvals") throw new GatewayError(403, "admin_forbidden", `approver \`${actor.name}\` may only list and decide approvals`);
  return actor;
}
