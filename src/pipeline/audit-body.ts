import type { AuditRecord } from "../audit/types.js";
import { captureBody, parseEncryptionKey, redactValue } from "../audit/bodies.js";
import type { AuditBodies, Config } from "../config/schema.js";
import { redactPii } from "../pii/index.js";
import type { Decision } from "../policy/types.js";
import { gatewaySecretScrubber, KEY_SHAPED, REDACTED_SECRET } from "../upstream/scrub.js";
import { maskPromptText } from "./redact-body.js";

const LEVELS: AuditBodies[] = ["none", "redacted", "full"];

/**
 * The body capture a call gets: the config's level, raised by any matched rule's `audit_bodies`.
 * Without a decision (refused before any rule ran) no rule can raise it.
 */
export function bodyCaptureLevel(config: Config, decision: Decision | null): AuditBodies {
  const raised = decision?.constraints.audit_bodies;
  const configured = LEVELS.indexOf(config.audit.bodies);
  const fromRule = typeof raised === "string" ? LEVELS.indexOf(raised as AuditBodies) : -1;
  return LEVELS[Math.max(configured, fromRule)] ?? "none";
}

const keys = new Map<string, Buffer>();

function encryptionKey(base64: string): Buffer | undefined {
  if (base64 === "") return undefined;
  let key = keys.get(base64);
  if (key === undefined) {
    key = parseEncryptionKey(base64);
    keys.set(base64, key);
  }
  return key;
}

/** Token ids are text in another spelling, which the masking cannot read: an embeddings input of them is not kept in a redacted body. */
const TOKENS_REDACTED = "[REDACTED:tokens]";

function withoutTokenArrays(body: unknown): unknown {
  if (body === null || typeof body !== "object" || !Array.isArray((body as { input?: unknown }).input)) return body;
  const input = (body as { input: unknown[] }).input;
  const isTokens = (value: unknown): boolean => Array.isArray(value) && value.length > 0 && value.every(Number.isInteger);
  if (isTokens(input)) return { ...body, input: TOKENS_REDACTED };
  if (!input.some(isTokens)) return body;
  return { ...body, input: input.map((item) => (isTokens(item) ? TOKENS_REDACTED : item)) };
}

/**
 * A copy of the body with its prompt masked by `mask` where the model reads it: PII cut across text
 * parts, a secret inside an inline text file or behind JSON escapes in arguments is found only by
 * reading the prompt as the model does, which a string-by-string mask cannot. The client's objects
 * are left as they are.
 */
function promptMasked(body: unknown, mask: (text: string) => string): unknown {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return body;
  const copy = { ...(body as Record<string, unknown>) };
  maskPromptText(copy, mask);
  return copy;
}

/**
 * An admin change's request body (a key's subject and limits, a stop's target and reason, an
 * approver's comment), kept redacted whatever `audit.bodies` says: it is what the change was, and
 * holds no prompt. `mask` is the request's own (the token it presented among the secrets it masks).
 */
export function captureAdminBody(config: Config, body: unknown, mask: (text: string) => string): Pick<AuditRecord, "body" | "body_enc" | "body_key_id"> {
  return captureBody("redacted", body, { redact: (text) => redactPii(mask(text), config.pii.detectors), keyId: config.audit.encryption_key_id });
}

/** Masks the secrets in a text of a recorded body: the gateway's own and the caller's key, and anything shaped like an API key. */
function secretMask(config: Config, callerKey: string | null): (text: string) => string {
  const known = gatewaySecretScrubber(config, callerKey);
  return (text) => known(text).replace(KEY_SHAPED, REDACTED_SECRET);
}

/** Masks a text of a redacted body: its secrets, then PII. */
function redactor(config: Config, callerKey: string | null): (text: string) => string {
  const secrets = secretMask(config, callerKey);
  return (text) => redactPii(secrets(text), config.pii.detectors);
}

/**
 * The body as the audit keeps it, at the call's capture level. A redacted body masks the secrets the
 * gateway knows besides what looks like one: the caller's own key (pasted into a prompt, sent as
 * `user`), the admin token and the upstreams' keys, whatever their shape.
 */
export function captureAuditBody(
  config: Config,
  /** The body as the client sent it, read only when it is captured. */
  sent: () => unknown,
  decision: Decision | null,
  callerKey: string | null,
): Pick<AuditRecord, "body" | "body_enc" | "body_key_id"> | null {
  const level = bodyCaptureLevel(config, decision);
  if (level === "none") return null;
  const body = sent();
  const key = encryptionKey(config.audit.encryption_key);
  // Without a key, `full` falls back to `redacted`: a body is never stored in clear.
  const mode = level === "full" && key === undefined ? "redacted" : level;
  // A full body is the client's whole, but for the secrets no record may hold, though encrypted.
  const mask = mode === "redacted" ? redactor(config, callerKey) : secretMask(config, callerKey);
  const masked = promptMasked(mode === "redacted" ? withoutTokenArrays(body) : body, mask);
  return captureBody(mode, mode === "redacted" ? masked : redactValue(masked, mask), {
    redact: mask,
    ...(key === undefined ? {} : { key }),
    keyId: config.audit.encryption_key_id,
  });
}
