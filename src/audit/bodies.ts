import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { AuditBodies } from "../config/schema.js";

export interface CaptureOptions {
  /** Masks personal data in one string (the PII detector, or `redactText` as a fallback). */
  redact: (text: string) => string;
  /** 32-byte AES-256 key; required for `full`. */
  key?: Buffer;
  keyId: string;
}

export type CapturedBody = Record<string, never> | { body: unknown } | { body_enc: string; body_key_id: string };

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * The body fields to add to an audit record. `redacted` masks every string inside the body (keys
 * included: tool arguments use user data as keys too); `full` stores the untouched body encrypted
 * with AES-256-GCM as base64 of iv | tag | ciphertext, readable only with the key.
 */
export function captureBody(mode: AuditBodies, body: unknown, options: CaptureOptions): CapturedBody {
  switch (mode) {
    case "none":
      return {};
    case "redacted":
      return { body: redactValue(body, options.redact) };
    case "full": {
      if (options.key === undefined) throw new Error("audit.bodies `full` needs an encryption key");
      return { body_enc: encryptBody(body, options.key), body_key_id: options.keyId };
    }
  }
}

export function encryptBody(body: unknown, key: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", checkKey(key), iv);
  const plain = Buffer.from(JSON.stringify(body ?? null), "utf8");
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), encrypted]).toString("base64");
}

/** The captured body; throws when the key is wrong or the ciphertext was altered. */
export function decryptBody(bodyEnc: string, key: Buffer): unknown {
  const data = Buffer.from(bodyEnc, "base64");
  if (data.length < IV_BYTES + TAG_BYTES) throw new Error("encrypted audit body is too short");
  const decipher = createDecipheriv("aes-256-gcm", checkKey(key), data.subarray(0, IV_BYTES));
  decipher.setAuthTag(data.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  return JSON.parse(plain.toString("utf8"));
}

/** Decodes `audit.encryption_key` (base64 of 32 bytes); throws with a message for the operator. */
export function parseEncryptionKey(base64: string): Buffer {
  const key = Buffer.from(base64, "base64");
  if (key.length !== 32) throw new Error(`audit.encryption_key must be base64 of 32 bytes, got ${key.length}`);
  return key;
}

function checkKey(key: Buffer): Buffer {
  if (key.length !== 32) throw new Error("audit body key must be 32 bytes");
  return key;
}

export function redactValue(value: unknown, redact: (text: string) => string): unknown {
  if (typeof value === "string") return redact(value);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, redact));
  if (value !== null && typeof value === "object") {
    // fromEntries defines own properties, so a `__proto__` key in a body stays a plain key.
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [redact(key), redactValue(item, redact)]));
  }
  return value;
}
