import { Hono } from "hono";
import { z } from "zod";
import { generateKey, hashKey } from "../auth/keys.js";
import { type KeyConfig, type KeyLimits, keyLimitsSchema, type Subject, sessionLimitsSchema, subjectSchema } from "../config/schema.js";
import type { Env } from "../http/app.js";
import { GatewayError } from "../http/errors.js";
import type { RuntimeKey } from "../state/store.js";
import { newId } from "../util/ids.js";
import { wholeNumberParam } from "../util/query-params.js";
import { type AdminContext, allowOnly, authorize, iso, isoTimeSchema, list, type ListBody, listQuery, noQuery, notFound, parseWith, readJson, recordChange } from "./http.js";
import type { AdminDeps } from "./routes.js";

/** A key as the admin API shows it: never the hash, the previous hash or the secret. */
export interface KeyView {
  object: "key";
  id: string;
  subject: Subject;
  limits: KeyLimits;
  expires_at: string | null;
  disabled: boolean;
  revoked: boolean;
  /** Null for config keys: the config file is their record. */
  created_at: string | null;
  /** Until when a previous secret is still accepted after a rotation (the last of their grace periods). */
  previous_key_expires_at: string | null;
  source: "config" | "runtime";
}

// Ids appear in audit records, level names and URLs: keep them to a plain, bounded alphabet.
const keyIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, "must be 1-128 letters, digits, `.`, `_`, `:` or `-`");

const createSchema = z.strictObject({
  id: keyIdSchema.optional(),
  subject: subjectSchema,
  limits: keyLimitsSchema.default({}),
  expires_at: isoTimeSchema.nullable().default(null),
});

const patchSchema = z.strictObject({
  // `session: null` lifts the key's whole session block, as `null` lifts any other limit.
  limits: keyLimitsSchema.extend({ session: sessionLimitsSchema.nullable().optional() }).optional(),
  disabled: z.boolean().optional(),
  expires_at: isoTimeSchema.nullable().optional(),
});

/** Up to 30 days: a grace period is for a deploy to pick up the new secret, not a second key. */
const rotateSchema = z.strictObject({
  grace_seconds: z.number().int().min(0).max(30 * 86_400).default(0),
});

const listQuerySchema = z.strictObject({
  limit: wholeNumberParam(1, 1000).optional(),
  cursor: z.string().optional(),
});

/** Revoking takes no fields; a body, when sent, must still be a JSON object. */
const revokeSchema = z.strictObject({});

function configView(key: KeyConfig): KeyView {
  return {
    object: "key",
    id: key.id,
    subject: key.subject,
    limits: key.limits,
    expires_at: key.expires_at === null ? null : iso(Date.parse(key.expires_at)),
    disabled: key.disabled,
    revoked: false,
    created_at: null,
    previous_key_expires_at: null,
    source: "config",
  };
}

/** `now`: a previous secret whose grace has ended opens nothing, so no time is shown for it. */
function runtimeView(key: RuntimeKey, now: number): KeyView {
  const graceEnds = key.previous.reduce<string | null>((last, p) => (last === null || p.expires_at > last ? p.expires_at : last), null);
  return {
    object: "key",
    id: key.id,
    subject: key.subject,
    limits: key.limits,
    expires_at: key.expires_at,
    disabled: key.disabled,
    revoked: key.revoked,
    created_at: key.created_at,
    previous_key_expires_at: graceEnds !== null && Date.parse(graceEnds) > now ? graceEnds : null,
    source: "runtime",
  };
}

/** Config keys first, then runtime keys; a runtime key shadowed by a config id is never served, so not listed. */
async function listKeyViews(deps: AdminDeps): Promise<KeyView[]> {
  const configKeys = deps.services.current().config.keys;
  const configIds = new Set(configKeys.map((key) => key.id));
  const runtimeKeys = (await deps.services.store.listKeys())
    .filter((key) => !configIds.has(key.id))
    .sort((a, b) => (a.created_at === b.created_at ? a.id.localeCompare(b.id) : a.created_at < b.created_at ? -1 : 1));
  const now = deps.services.clock();
  return [...configKeys.map(configView), ...runtimeKeys.map((key) => runtimeView(key, now))];
}

/** A page of the listing (config keys in config order, then runtime keys oldest first); a cursor names the last key shown. */
function keyPage(views: KeyView[], limit: number | undefined, cursor: string | undefined): ListBody<KeyView> {
  let start = 0;
  if (cursor !== undefined) {
    const id = Buffer.from(cursor, "base64url").toString("utf8");
    start = views.findIndex((view) => view.id === id) + 1;
    if (start === 0) throw new GatewayError(400, "invalid_body", "`cursor` is not a cursor returned by this API", { param: "cursor" });
  }
  const rest = views.slice(start);
  if (limit === undefined || rest.length <= limit) return list(rest);
  const shown = rest.slice(0, limit);
  return list(shown, Buffer.from((shown[limit - 1] as KeyView).id, "utf8").toString("base64url"));
}

function isConfigKey(deps: AdminDeps, id: string): boolean {
  return deps.services.current().config.keys.some((key) => key.id === id);
}

function notRuntime(id: string): GatewayError {
  return new GatewayError(409, "key_not_runtime", `key \`${id}\` comes from the config file; change it there`);
}

/** Revoked keys are final: only revoking them again is allowed. */
function notRevoked(key: RuntimeKey): RuntimeKey {
  if (key.revoked) throw new GatewayError(409, "key_not_runtime", `key \`${key.id}\` is revoked and can no longer change; create a new key instead`);
  return key;
}

/** Each lost write means another landed, so this many losses in a row only come from a storm of writes to one key. */
const WRITE_ATTEMPTS = 20;

/**
 * Applies `change` to runtime key `id` as stored and saves the result (config ids are 409, unknown
 * ids 404). A write made from the same read as another (a revoke and a PATCH at once, on any replica)
 * is not lost on it: the one that lands second is made again on the first's result. Then this
 * replica (and, through the store, every other) reloads its keys.
 */
async function changeKey(deps: AdminDeps, id: string, change: (key: RuntimeKey) => RuntimeKey): Promise<RuntimeKey> {
  if (isConfigKey(deps, id)) throw notRuntime(id);
  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    const key = (await deps.services.store.listKeys()).find((candidate) => candidate.id === id);
    if (key === undefined) throw notFound("key", id);
    const changed = { ...change(key), revision: key.revision + 1 };
    if (await deps.services.store.putKey(changed)) {
      await deps.onKeysChanged();
      return changed;
    }
  }
  throw new GatewayError(503, "store_unavailable", `key \`${id}\` kept changing under this write; retry it`, { headers: { "retry-after": "1" } });
}

async function createKey(c: AdminContext, deps: AdminDeps): Promise<Response> {
  const { services } = deps;
  authorize(c, services, "admin", "admin.keys.create");
  const body = await readJson(c, services, createSchema);
  const now = services.clock();
  const id = body.id ?? newId("key", now);
  // The id a create made up is what names the key afterwards: recorded with what was asked.
  recordChange(c, services, { ...body, id });
  if (isConfigKey(deps, id)) throw notRuntime(id);
  const clear = generateKey();
  const key: RuntimeKey = {
    id,
    key_hash: hashKey(clear),
    previous: [],
    revision: 0,
    subject: body.subject,
    limits: body.limits,
    expires_at: body.expires_at,
    disabled: false,
    revoked: false,
    created_at: iso(now),
  };
  // Stored only where no key has the id, checked in the same step: of two creates at once, one gets 409.
  // Revoked ids stay taken too: reusing one would merge two keys' spend and audit history.
  if (!(await services.store.putKey(key))) {
    throw new GatewayError(409, "key_exists", `a key with id \`${id}\` already exists`, { param: "id" });
  }
  await deps.onKeysChanged();
  return c.json({ ...runtimeView(key, services.clock()), key: clear }, 201);
}

/**
 * Limits merge field by field (JSON merge-patch style), the session block's too: `null` lifts a
 * limit, an absent field keeps it, so raising a session's `max_cost` leaves its call caps standing.
 */
function mergeLimits(current: KeyLimits, patch: z.output<typeof patchSchema>["limits"] & object): KeyLimits {
  const { session, ...fields } = patch;
  const merged: KeyLimits = { ...current, ...fields };
  if (session === null) delete merged.session;
  else if (session !== undefined) merged.session = current.session === undefined ? session : { ...current.session, ...session };
  return merged;
}

async function updateKey(c: AdminContext, deps: AdminDeps): Promise<Response> {
  authorize(c, deps.services, "admin", "admin.keys.update");
  const id = c.req.param("id") ?? "";
  // The request first (400), then whether the key can take it (404, 409).
  const patch = await readJson(c, deps.services, patchSchema);
  recordChange(c, deps.services, patch);
  const updated = await changeKey(deps, id, (key) => ({
    ...notRevoked(key),
    limits: patch.limits === undefined ? key.limits : parseWith(keyLimitsSchema, mergeLimits(key.limits, patch.limits), "limits"),
    disabled: patch.disabled ?? key.disabled,
    expires_at: patch.expires_at === undefined ? key.expires_at : patch.expires_at,
  }));
  return c.json(runtimeView(updated, deps.services.clock()));
}

async function revokeKey(c: AdminContext, deps: AdminDeps): Promise<Response> {
  authorize(c, deps.services, "admin", "admin.keys.revoke");
  const id = c.req.param("id") ?? "";
  recordChange(c, deps.services, await readJson(c, deps.services, revokeSchema));
  // Revoking twice is not an error: the operator's intent holds either way.
  const revoked = await changeKey(deps, id, (key) => ({ ...key, revoked: true, previous: [] }));
  return c.json(runtimeView(revoked, deps.services.clock()));
}

async function rotateKey(c: AdminContext, deps: AdminDeps): Promise<Response> {
  const { services } = deps;
  authorize(c, services, "admin", "admin.keys.rotate");
  const id = c.req.param("id") ?? "";
  const rotation = await readJson(c, services, rotateSchema);
  recordChange(c, services, rotation);
  const grace = rotation.grace_seconds;
  const clear = generateKey();
  const rotated = await changeKey(deps, id, (key) => {
    const now = services.clock();
    // Secrets rotated out earlier keep their own grace; the one rotated out now gets this one's.
    const previous = notRevoked(key).previous.filter((p) => Date.parse(p.expires_at) > now);
    if (grace > 0) previous.push({ hash: key.key_hash, expires_at: iso(now + grace * 1000) });
    return { ...key, key_hash: hashKey(clear), previous };
  });
  return c.json({ ...runtimeView(rotated, services.clock()), key: clear });
}

export function keyRoutes(deps: AdminDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.post("/", (c) => createKey(c, deps));
  app.get("/", async (c) => {
    authorize(c, deps.services, "admin", "admin.keys.list");
    const { limit, cursor } = listQuery(c, listQuerySchema);
    return c.json(keyPage(await listKeyViews(deps), limit, cursor));
  });
  app.get("/:id", async (c) => {
    authorize(c, deps.services, "admin", "admin.keys.get");
    noQuery(c);
    const id = c.req.param("id");
    const view = (await listKeyViews(deps)).find((key) => key.id === id);
    if (view === undefined) throw notFound("key", id);
    return c.json(view);
  });
  app.patch("/:id", (c) => updateKey(c, deps));
  app.post("/:id/revoke", (c) => revokeKey(c, deps));
  app.post("/:id/rotate", (c) => rotateKey(c, deps));
  allowOnly(app, deps.services, "/", ["GET", "POST"]);
  allowOnly(app, deps.services, "/:id", ["GET", "PATCH"]);
  allowOnly(app, deps.services, "/:id/revoke", ["POST"]);
  allowOnly(app, deps.services, "/:id/rotate", ["POST"]);
  return app;
}
