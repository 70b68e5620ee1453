import type { Context, Hono } from "hono";
import { z } from "zod";
import type { Env } from "../http/app.js";
import { type AdminActor, identifyAdmin, checkScope } from "../http/admin-auth.js";
import { GatewayError } from "../http/errors.js";
import { parseJsonBody } from "../openai/json-body.js";
import { captureAdminBody } from "../pipeline/audit-body.js";
import { maskedText } from "../pipeline/shown-name.js";
import { readBody } from "../pipeline/read-body.js";
import type { Services } from "../pipeline/services.js";
import { formatFieldPath } from "../util/field-path.js";
import { type ParsedParams, paramRecord, parseParams } from "../util/query-params.js";

export type AdminContext = Context<Env>;

/**
 * Names the action for the audit before checking the credential, so a refused attempt is still
 * recorded as what it tried to do; then records who acted.
 */
export function authorize(c: AdminContext, services: Services, scope: "approvals" | "admin", action: string): AdminActor {
  const draft = c.get("draft");
  draft.action = action;
  const actor = identifyAdmin(services.current(), services.shared.keys, c.req.header("authorization"));
  // Recorded before the scope check, so a refused approver is audited by name too.
  draft.actor = { name: actor.name, role: actor.role };
  return checkScope(actor, scope);
}

/** `messages[0].content` from zod's path segments. */
export function paramPath(path: ReadonlyArray<PropertyKey>): string | null {
  const out = formatFieldPath(path);
  return out === "" ? null : out;
}

/** A zod failure as the contract's 400 `invalid_body`, naming the first offending field. */
export function invalidBody(error: z.ZodError, prefix = ""): GatewayError {
  const issue = error.issues[0];
  // A field the schema does not know is named by its own path, not its object's.
  const path = issue?.code === "unrecognized_keys" ? [...issue.path, issue.keys[0] ?? ""] : issue?.path;
  const inner = path === undefined ? null : paramPath(path);
  const param = inner === null ? (prefix === "" ? null : prefix) : prefix === "" ? inner : `${prefix}.${inner}`;
  const message = issue?.message.toLowerCase() ?? "invalid value";
  return new GatewayError(400, "invalid_body", `invalid \`${param ?? "body"}\`: ${message}`, { param });
}

export function parseWith<T extends z.ZodType>(schema: T, value: unknown, prefix = ""): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidBody(parsed.error, prefix);
  return parsed.data;
}

/**
 * Reads and validates a JSON body from the Node request (the gateway's one body reader, with its size
 * bound and depth check). An empty body counts as `{}`, so `POST .../revoke` needs none.
 */
export async function readJson<T extends z.ZodType>(c: AdminContext, services: Services, schema: T): Promise<z.output<T>> {
  const { server } = services.current().config;
  // One bound for every body, as the contract has it: a policy evaluation carries a whole call's body.
  const bytes = await readBody(c.env.incoming, server.max_body_bytes);
  const body = bytes.length === 0 ? {} : parseJsonBody(bytes, server.max_json_depth);
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new GatewayError(400, "invalid_body", "the request body must be a JSON object");
  }
  return parseWith(schema, body);
}

/**
 * Records what an admin change was: its request body, redacted. The record's `key_id` stays the
 * caller's (an admin has none): a key's records are its calls.
 */
export function recordChange(c: AdminContext, services: Services, body: unknown): void {
  const draft = c.get("draft");
  // Free text (a stop's reason, a comment) may hold any secret: the ones known by hash too.
  draft.body = captureAdminBody(services.current().config, body, (text) => maskedText(services, text, draft.mask));
}

/** Query-string parameters as a record (`paramRecord`); a repeated parameter keeps its first value. */
export function queryParams(c: AdminContext): Record<string, string> {
  return paramRecord(new URL(c.req.url).searchParams);
}

/** A list route's query parameters by a strict schema; a bad or unknown one is 400 `invalid_body` naming it. */
export function listQuery<S extends z.ZodObject>(c: AdminContext, schema: S): z.output<S> {
  return fromParsed(parseParams(schema, queryParams(c), "parameter"));
}

const NO_PARAMS = z.strictObject({});

/** A route that takes no query parameters refuses one as list routes refuse an unknown one: it would be silently ignored. */
export function noQuery(c: AdminContext): void {
  listQuery(c, NO_PARAMS);
}

/** A parsed query, or its failure as 400 `invalid_body` naming the parameter. */
export function fromParsed<T>(parsed: ParsedParams<T>): T {
  if (!parsed.ok) throw new GatewayError(400, "invalid_body", parsed.message, { param: parsed.param });
  return parsed.data;
}

export interface ListBody<T> {
  object: "list";
  data: T[];
  next_cursor: string | null;
}

export function list<T>(data: T[], nextCursor: string | null = null): ListBody<T> {
  return { object: "list", data, next_cursor: nextCursor };
}

export const iso = (ms: number): string => new Date(ms).toISOString();

/** An ISO 8601 time or date in, the same instant out as UTC (`2025-01-01T00:00:00.000Z`). */
export const isoTimeSchema = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()])
  .transform((text) => iso(Date.parse(text)));

/** Answers 405 with `allow` for a known admin path called with another method (registered last). */
export function allowOnly(app: Hono<Env>, services: Services, path: string, methods: readonly string[]): void {
  app.all(path, (c) => {
    // The credential first, as on every admin route: only a caller it names learns which methods a path takes, and is audited as the actor.
    const actor = identifyAdmin(services.current(), services.shared.keys, c.req.header("authorization"));
    c.get("draft").actor = { name: actor.name, role: actor.role };
    throw new GatewayError(405, "method_not_allowed", `\`${c.req.method}\` is not allowed on \`${c.req.path}\``, {
      headers: { allow: methods.join(", ") },
    });
  });
}

/** 404 `not_found` for an admin id. */
export function notFound(what: string, id: string): GatewayError {
  return new GatewayError(404, "not_found", `no ${what} \`${id}\``);
}
