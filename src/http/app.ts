import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { getRequestListener, type HttpBindings } from "@hono/node-server";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { type Context, Hono } from "hono";
import { adminRoutes, type AdminDeps } from "../admin/routes.js";
import { authenticate, handleCall } from "../pipeline/call.js";
import { type AuditDraft, startDraft } from "../pipeline/audit-draft.js";
import { errorJson, writeError } from "../pipeline/respond.js";
import type { Services } from "../pipeline/services.js";
import { handlePassthrough } from "../pipeline/passthrough.js";
import { listModels } from "../pipeline/models.js";
import { shownName } from "../pipeline/shown-name.js";
import { clientIp, normalize } from "../pipeline/client-ip.js";
import type { MalformedRequest } from "./client-error.js";
import { bearerToken } from "../auth/keys.js";
import { gatewaySecretScrubber } from "../upstream/scrub.js";
import { issuedSecretsAmong } from "../pipeline/shown-name.js";
import { GOVERNED_PATHS } from "../config/governed-paths.js";
import { newId } from "../util/ids.js";
import type { CallAction } from "../policy/types.js";
import { clipped, GatewayError, internalError } from "./errors.js";
import { identifyAdmin, verifyAdmin } from "./admin-auth.js";

export type Env = { Bindings: HttpBindings; Variables: { draft: AuditDraft } };

const CALL_ROUTES = new Map<string, CallAction>([
  ["/v1/chat/completions", "chat.completions"],
  ["/v1/responses", "responses"],
  ["/v1/embeddings", "embeddings"],
]);

export interface AppState {
  draining(): boolean;
}

/** Each audited request's draft, for a body Node finds malformed while its handler reads it. */
const draftsByRequest = new WeakMap<IncomingMessage, AuditDraft>();

function draftFor(services: Services, incoming: IncomingMessage, path: string): AuditDraft {
  const clientRequestId = incoming.headers["x-request-id"];
  const now = services.clock();
  const runtime = services.current();
  const draft = startDraft({
    id: newId("req", now),
    startedAt: now,
    method: incoming.method ?? "GET",
    path,
    ip: clientIp(incoming, runtime.config.server.trusted_proxies),
    userAgent: typeof incoming.headers["user-agent"] === "string" ? incoming.headers["user-agent"] : null,
    clientRequestId: typeof clientRequestId === "string" ? clientRequestId.slice(0, 200) : null,
    replica: runtime.replica,
    mask: requestMask(services, incoming),
  });
  services.begin(draft);
  draftsByRequest.set(incoming, draft);
  return draft;
}

/**
 * Masks the gateway's secrets, the key or token this request presented among them, and any issued
 * secret (another key, an approver's token) sent whole in a header the record or an error echoes.
 */
function requestMask(services: Services, incoming: IncomingMessage): (text: string) => string {
  const { config } = services.current();
  const { headers } = incoming;
  const sent: string[] = [];
  for (const value of [headers["x-approval-id"], headers["x-request-id"], headers[config.sessions.header], headers["user-agent"]]) {
    if (typeof value !== "string") continue;
    sent.push(value);
    // A header sent twice reaches here joined by a comma: each part is looked up.
    if (value.includes(",")) for (const part of value.split(",")) sent.push(part.trim());
  }
  // The path is echoed too (a 404 quotes it, decoded): the segments of one the gateway does not serve
  // as such, as sent and decoded; and the query's names and values (an unknown parameter is quoted).
  const [path = "", query] = (incoming.url ?? "").split("?", 2);
  if (!GOVERNED_PATHS.has(path)) for (const segment of path.split("/")) sent.push(segment, decoded(segment));
  if (query !== undefined) for (const [name, value] of new URLSearchParams(query)) sent.push(name, value);
  const echoed = issuedSecretsAmong(services, sent);
  return gatewaySecretScrubber(config, bearerToken(headers.authorization), echoed);
}

/** A path segment percent-decoded, or as it is where it does not decode. */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The answer to a request outside /v1 and /admin: not audited, but it still carries an id. */
function errorResponse(c: Context<Env>, services: Services, error: GatewayError): Response {
  const headers: Record<string, string> = { ...error.options.headers, "content-type": "application/json", "x-request-id": newId("req", Date.now()) };
  return c.body(errorJson(error, requestMask(services, c.env.incoming)), error.status as 400, headers);
}

/** Routes; errors become OpenAI-shaped responses in exactly one place (`onError`). */
export function createApp(services: Services, state: AppState, admin: AdminDeps): Hono<Env> {
  const app = new Hono<Env>();

  // URL parsing would resolve dot segments (`/v1/../admin/keys`, `/v1/%2e%2e/admin`) into another route: refused first.
  app.use("*", async (c, next) => {
    const target = c.env.incoming.url ?? "";
    if (hasDotSegment(target)) {
      // Audited as sent (it claims /v1 or /admin) though it names no route.
      if (AUDITED_PREFIX.test(target)) c.set("draft", draftFor(services, c.env.incoming, target.split("?")[0] as string));
      throw new GatewayError(404, "not_found", "the path must not contain `.` or `..` segments");
    }
    await next();
  });

  // Not audited, so their id names nothing on record; the contract still promises one on every response.
  for (const path of ["/healthz", "/readyz", "/metrics"]) {
    app.use(path, async (c, next) => {
      await next();
      c.header("x-request-id", newId("req", Date.now()));
    });
  }

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    if (state.draining()) return c.json({ status: "draining" }, 503);
    // Records a sink cannot store wait in the queue: a load balancer should send calls elsewhere meanwhile.
    if (!services.audit.healthy()) return c.json({ status: "audit_unavailable" }, 503);
    const storeUp = await services.store.ping().catch(() => false);
    // A replica started while its store was down refuses calls until it has read the stops and runtime keys.
    const serving = storeUp && services.shared.stopsKnown && services.shared.keysKnown;
    return serving ? c.json({ status: "ready", store: services.store.kind }) : c.json({ status: "store_unavailable" }, 503);
  });
  app.get("/metrics", async (c) => {
    const config = services.current().config;
    if (!config.admin.public_metrics) verifyAdmin(services.current(), services.shared.keys, c.req.header("authorization"), "metrics");
    return c.text(await services.metrics.registry.metrics(), 200, { "content-type": services.metrics.registry.contentType });
  });

  // Every /v1 and /admin request is audited, whatever its outcome.
  app.use("/v1/*", async (c, next) => auditing(services, state, c, next));
  app.use("/admin/*", async (c, next) => auditing(services, state, c, next));

  // Reached only with a query string: `requestListener` serves the plain paths without hono.
  for (const [path, action] of CALL_ROUTES) {
    app.post(path, async (c) => {
      await handleCall(services, action, c.env.incoming, c.env.outgoing, c.get("draft"));
      return RESPONSE_ALREADY_SENT;
    });
  }

  app.get("/v1/models", (c) => {
    const principal = authenticate(services, c.env.incoming, services.clock(), c.get("draft"));
    return c.json({ object: "list", data: listModels(services.current(), principal, c.env.incoming, c.get("draft").ip) });
  });
  app.get("/v1/models/:id{.+}", (c) => {
    const principal = authenticate(services, c.env.incoming, services.clock(), c.get("draft"));
    const id = c.req.param("id");
    const model = listModels(services.current(), principal, c.env.incoming, c.get("draft").ip).find((m) => m.id === id);
    if (model === undefined) {
      const shown = clipped(shownName(services, id, bearerToken(c.env.incoming.headers.authorization)));
      // The path names the model too: recorded as shown.
      if (shown !== id) c.get("draft").path = `/v1/models/${shown}`;
      throw new GatewayError(404, "model_not_found", `the model \`${shown}\` does not exist or you do not have access to it`, { param: "model" });
    }
    return c.json(model);
  });

  app.route("/admin", adminRoutes(admin));

  app.all("/v1/*", async (c) => {
    const path = c.req.path;
    const runtime = services.current();
    if (runtime.passthrough(path)) {
      await handlePassthrough(services, c.env.incoming, c.env.outgoing, c.get("draft"), new URL(c.req.url).search);
      return RESPONSE_ALREADY_SENT;
    }
    recordCaller(services, c);
    throw notAllowedOrNotFound(path, c.req.method);
  });

  app.notFound((c) => {
    recordCaller(services, c);
    throw notAllowedOrNotFound(c.req.path, c.req.method);
  });

  app.onError((error, c) => {
    const failure = error instanceof GatewayError ? error : internalError();
    if (!(error instanceof GatewayError)) services.log.error({ err: error, path: requestMask(services, c.env.incoming)(c.req.path) }, "unexpected error");
    const draft = c.get("draft");
    if (draft !== undefined) {
      const outgoing = c.env.outgoing;
      // Handlers that write straight to the socket have already answered; only the record is left.
      if (outgoing.headersSent) return RESPONSE_ALREADY_SENT;
      writeError(outgoing, failure, ["x-request-id", draft.id], draft.mask);
      services.finish(draft, failure.status, failure);
      return RESPONSE_ALREADY_SENT;
    }
    return errorResponse(c, services, failure);
  });

  return app;
}

/**
 * The Node request listener: a governed call on its exact path goes straight to `handleCall`, which
 * answers and audits every outcome itself; hono's routing, its Request object and the middleware
 * cost more per call than the whole policy evaluation. Everything else is hono's.
 */
export function requestListener(services: Services, app: Hono<Env>, state: AppState): RequestListener {
  const viaHono = getRequestListener(app.fetch);
  return (incoming, outgoing) => {
    const action = incoming.method === "POST" ? CALL_ROUTES.get(incoming.url ?? "") : undefined;
    if (action === undefined) {
      // hono builds a URL from Host and answers a bare 400 where it cannot; nothing here is routed
      // by Host, so an absent or malformed one (HTTP/1.0 may omit it) is replaced for that URL alone.
      if (!usableHost(incoming.headers.host)) incoming.headers.host = "gateway.invalid";
      const target = incoming.url ?? "";
      if (!routableTarget(target)) {
        refuseTarget(services, incoming, outgoing, target);
        return;
      }
      void viaHono(incoming, outgoing);
      return;
    }
    const draft = draftFor(services, incoming, incoming.url as string);
    if (state.draining()) {
      const refusal = shuttingDown();
      writeError(outgoing, refusal, ["x-request-id", draft.id], draft.mask);
      services.finish(draft, refusal.status, refusal);
      return;
    }
    handleCall(services, action, incoming, outgoing, draft).catch((error: unknown) => failedCall(services, outgoing, draft, error));
  };
}

/**
 * A request target hono can build a URL from: a path without a backslash before its query, or an
 * absolute http(s) URL. It answers any other (`*`, `/v1/chat\\completions`) with a bare 400.
 */
function routableTarget(target: string): boolean {
  const backslash = target.indexOf("\\");
  const query = target.indexOf("?");
  if (backslash !== -1 && (query === -1 || backslash < query)) return false;
  if (target.startsWith("/")) return true;
  if (!target.startsWith("http://") && !target.startsWith("https://")) return false;
  return URL.canParse(target);
}

/** An unroutable target's refusal: an OpenAI error with a request id, audited where its path is /v1 or /admin. */
function refuseTarget(services: Services, incoming: IncomingMessage, outgoing: ServerResponse, target: string): void {
  const refusal = new GatewayError(400, "invalid_body", `the request target \`${clipped(target)}\` is not a path the gateway serves`);
  if (!AUDITED_PREFIX.test(target)) {
    writeError(outgoing, refusal, ["x-request-id", newId("req", services.clock())], requestMask(services, incoming));
    return;
  }
  const draft = draftFor(services, incoming, target);
  writeError(outgoing, refusal, ["x-request-id", draft.id], draft.mask);
  services.finish(draft, refusal.status, refusal);
}

/** A request that arrives while the gateway drains: the client should go to another replica. */
function shuttingDown(): GatewayError {
  return new GatewayError(503, "shutting_down", "the gateway is shutting down; retry the request", {
    headers: { "retry-after": "1", connection: "close" },
  });
}

/** A Host that URL parsing keeps as written (hono's own test of it). */
function usableHost(host: string | undefined): boolean {
  if (host === undefined || host === "") return false;
  try {
    const { hostname } = new URL(`http://${host}/`);
    return hostname.length === host.length || hostname === host.replace(/:\d+$/, "");
  } catch {
    return false;
  }
}

/** The paths whose every request is audited. */
const AUDITED_PREFIX = /^\/(v1|admin)(\/|$)/;

/** Audits a request Node refused before it reached a handler (431, unparsable), when under /v1 or /admin. */
export function recordMalformed(services: Services): (request: MalformedRequest, failure: GatewayError) => void {
  return (request, failure) => {
    if (!AUDITED_PREFIX.test(request.path)) return;
    const runtime = services.current();
    const draft = startDraft({
      id: request.id,
      startedAt: services.clock(),
      method: request.method,
      path: request.path,
      ip: request.ip === null ? null : normalize(request.ip),
      userAgent: null,
      clientRequestId: null,
      replica: runtime.replica,
      mask: gatewaySecretScrubber(runtime.config, null),
    });
    services.finish(draft, failure.status, failure);
  };
}

/**
 * Records an audited request whose body Node found malformed while it was read, as the failure its
 * client is answered with, and gives its id (null for a request not audited). The handler that was
 * reading it then finds its client gone: its own record of that is not written, the draft being finished.
 */
export function failInFlight(services: Services): (incoming: IncomingMessage, failure: GatewayError) => string | null {
  return (incoming, failure) => {
    const draft = draftsByRequest.get(incoming);
    if (draft === undefined) return null;
    services.finish(draft, failure.status, failure);
    return draft.id;
  };
}

/** `handleCall` settles every error it meets; one that escapes it is a bug, still answered and audited. */
function failedCall(services: Services, outgoing: ServerResponse, draft: AuditDraft, error: unknown): void {
  services.log.error({ err: error, path: draft.mask(draft.path) }, "unexpected error");
  const failure = internalError();
  if (!outgoing.headersSent) writeError(outgoing, failure, ["x-request-id", draft.id], draft.mask);
  else if (!outgoing.destroyed) outgoing.end();
  services.finish(draft, failure.status, failure);
}

const KNOWN_METHODS: Record<string, string[]> = {
  "/v1/chat/completions": ["POST"],
  "/v1/responses": ["POST"],
  "/v1/embeddings": ["POST"],
  "/v1/models": ["GET"],
  "/healthz": ["GET"],
  "/readyz": ["GET"],
  "/metrics": ["GET"],
};

/** True when the raw request target's path has a `.` or `..` segment, plain or percent-encoded (`%2f` and backslashes count as `/`). */
export function hasDotSegment(target: string): boolean {
  // A dot segment needs a `.` or an encoded one: most targets have neither.
  if (!target.includes(".") && !target.includes("%")) return false;
  let path = target;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/\\]*/i.exec(path);
  if (scheme !== null) path = path.slice(scheme[0].length);
  const query = path.search(/[?#]/);
  if (query !== -1) path = path.slice(0, query);
  // Encoded separators too: an upstream that decodes `..%2f` must not see a `..` segment either.
  const plain = path.replace(/%2e/gi, ".").replace(/%2f/gi, "/").replace(/%5c/gi, "\\");
  return plain.split(/[/\\]/).some((segment) => segment === "." || segment === "..");
}

/**
 * A request to no route is answered whoever sent it, but its record names the key or admin
 * credential it carried when that is valid: a client probing paths is still seen as itself.
 */
function recordCaller(services: Services, c: Context<Env>): void {
  const draft = c.get("draft");
  // Outside /v1 and /admin (`//v1/...` included) nothing is recorded.
  if (draft === undefined) return;
  const authorization = c.req.header("authorization");
  if (c.req.path.startsWith("/admin")) {
    try {
      const actor = identifyAdmin(services.current(), services.shared.keys, authorization);
      draft.actor = { name: actor.name, role: actor.role };
    } catch {
      // An invalid credential leaves the record without an actor; the answer is the same.
    }
    return;
  }
  const lookup = services.shared.keys.lookup(bearerToken(authorization), services.clock());
  if (lookup.ok) draft.principal = lookup.principal;
}

function notAllowedOrNotFound(path: string, method: string): GatewayError {
  const allowed = KNOWN_METHODS[path] ?? (path.startsWith("/v1/models/") ? ["GET"] : undefined);
  if (allowed !== undefined && !allowed.includes(method)) {
    return new GatewayError(405, "method_not_allowed", `\`${method}\` is not allowed on \`${path}\``, { headers: { allow: allowed.join(", ") } });
  }
  return new GatewayError(404, "not_found", `unknown path \`${clipped(path)}\``);
}

async function auditing(services: Services, state: AppState, c: Context<Env>, next: () => Promise<void>): Promise<Response | undefined> {
  const draft = draftFor(services, c.env.incoming, c.req.path);
  c.set("draft", draft);
  if (state.draining()) throw shuttingDown();
  await next();
  if (c.res === RESPONSE_ALREADY_SENT || c.res.headers.get("x-hono-already-sent") !== null) return undefined;
  c.res.headers.set("x-request-id", draft.id);
  // hono answers HEAD with a copy of the GET response made from its original headers, which
  // @hono/node-server takes from before this set: a response built on them keeps the id.
  if (c.req.method === "HEAD") c.res = new Response(null, { status: c.res.status, headers: c.res.headers });
  if (!draft.finished) {
    let error: GatewayError | null = null;
    if (c.res.status >= 400) {
      const body = (await c.res.clone().json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
      error = new GatewayError(c.res.status, (body?.error?.code ?? "internal_error") as GatewayError["code"], body?.error?.message ?? "");
    }
    services.finish(draft, c.res.status, error);
  }
  return undefined;
}

