import { maskedText } from "../pipeline/shown-name.js";
import { Hono } from "hono";
import { z } from "zod";
import type { Env } from "../http/app.js";
import { GatewayError } from "../http/errors.js";
import type { Stop } from "../state/store.js";
import { type AdminContext, allowOnly, authorize, iso, list, noQuery, readJson, recordChange } from "./http.js";
import type { AdminDeps } from "./routes.js";

const target = {
  key_id: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  team: z.string().min(1).optional(),
};

type Target = { key_id?: string | undefined; user?: string | undefined; team?: string | undefined };

function exactlyOneTarget(body: Target, ctx: z.RefinementCtx): void {
  const given = [body.key_id, body.user, body.team].filter((value) => value !== undefined).length;
  if (given !== 1) ctx.addIssue({ code: "custom", path: ["key_id"], message: "give exactly one of `key_id`, `user` or `team`" });
}

// The contract lists a reason; a stop is an emergency, so one sent without it still halts.
const stopSchema = z.strictObject({ ...target, reason: z.string().min(1).max(1000).optional() }).superRefine(exactlyOneTarget);
// Lifting takes the same body as stopping, so the reason may come along; it is not needed.
const liftSchema = z.strictObject({ ...target, reason: z.string().max(1000).optional() }).superRefine(exactlyOneTarget);

function kindAndValue(body: Target): Pick<Stop, "kind" | "value"> {
  if (body.key_id !== undefined) return { kind: "key_id", value: body.key_id };
  if (body.user !== undefined) return { kind: "user", value: body.user };
  return { kind: "team", value: body.team ?? "" };
}

/** A stop as stored, and its target under the field the request named it by (`key_id`, `user` or `team`). */
const stopView = (stop: Stop) => ({ object: "stop" as const, ...stop, [stop.kind]: stop.value });

async function createStop(c: AdminContext, deps: AdminDeps): Promise<Response> {
  const { services } = deps;
  const actor = authorize(c, services, "admin", "admin.stop.create");
  const body = await readJson(c, services, stopSchema);
  recordChange(c, services, body);
  // A mistyped key id would halt nothing while the key meant stays live. Users and teams are named
  // by keys yet to come as well, so those are taken as given.
  if (body.key_id !== undefined && !(await keyExists(deps, body.key_id))) {
    throw new GatewayError(404, "not_found", `no key \`${body.key_id}\` to stop`, { param: "key_id" });
  }
  // Quoted to every halted caller in its refusals: stored with every secret in it masked.
  const reason = body.reason === undefined ? "no reason given" : maskedText(services, body.reason, c.get("draft").mask);
  const stop: Stop = { ...kindAndValue(body), reason, by: actor.name, at: iso(services.clock()) };
  await services.store.putStop(stop);
  // Ends this replica's open streams now rather than after the reload; other replicas hear it from the store.
  services.streams.halt([stop]);
  await deps.onStopsChanged();
  return c.json(stopView(stop), 201);
}

/** A config key, or a runtime key in the store (revoked ones too: a stop on one is harmless). */
async function keyExists(deps: AdminDeps, id: string): Promise<boolean> {
  const { services } = deps;
  if (services.shared.keys.byId.has(id)) return true;
  return (await services.store.listKeys()).some((key) => key.id === id);
}

async function liftStop(c: AdminContext, deps: AdminDeps): Promise<Response> {
  const { services } = deps;
  authorize(c, services, "admin", "admin.stop.lift");
  const body = await readJson(c, services, liftSchema);
  recordChange(c, services, body);
  const { kind, value } = kindAndValue(body);
  if (!(await services.store.deleteStop(kind, value))) {
    throw new GatewayError(404, "not_found", `no emergency stop on ${kind === "key_id" ? "key" : kind} \`${value}\``);
  }
  await deps.onStopsChanged();
  return c.json({ object: "stop.lifted", kind, value, lifted: true });
}

export function stopRoutes(deps: AdminDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.post("/", (c) => createStop(c, deps));
  app.post("/lift", (c) => liftStop(c, deps));
  app.get("/", async (c) => {
    authorize(c, deps.services, "admin", "admin.stop.list");
    noQuery(c);
    const stops = (await deps.services.store.listStops()).sort((a, b) => (a.at === b.at ? 0 : a.at < b.at ? 1 : -1));
    return c.json(list(stops.map(stopView)));
  });
  allowOnly(app, deps.services, "/", ["GET", "POST"]);
  allowOnly(app, deps.services, "/lift", ["POST"]);
  return app;
}
