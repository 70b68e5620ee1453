import { hash, randomBytes, timingSafeEqual } from "node:crypto";
import type { KeyConfig, KeyLimits, Subject } from "../config/schema.js";
import type { RuntimeKey } from "../state/store.js";

/** A virtual key as the request path sees it, config and runtime keys alike. */
export interface Principal {
  keyId: string;
  subject: Subject;
  limits: KeyLimits;
  source: "config" | "runtime";
}

interface KeyEntry {
  principal: Principal;
  hash: Buffer;
  expiresAt: number | null;
  disabled: boolean;
}

export function hashKey(clear: string): string {
  return `sha256:${hash("sha256", clear, "hex")}`;
}

export function generateKey(): string {
  return `sk-spark-${randomBytes(24).toString("base64url")}`;
}

function hashBytes(hash: string): Buffer {
  return Buffer.from(hash.slice("sha256:".length), "hex");
}

export type KeyLookup =
  | { ok: true; principal: Principal }
  | { ok: false; reason: "missing" | "unknown" | "expired" | "disabled" };

/**
 * Keys indexed by their hash. The lookup hashes the presented secret first, so the map never sees
 * the clear key, and the final comparison is constant-time.
 */
export class KeyIndex {
  private readonly byHash = new Map<string, KeyEntry>();
  readonly byId = new Map<string, Principal>();

  constructor(configKeys: KeyConfig[], runtimeKeys: RuntimeKey[], now: number) {
    for (const key of configKeys) {
      this.add(key.key_hash, {
        principal: { keyId: key.id, subject: key.subject, limits: key.limits, source: "config" },
        hash: hashBytes(key.key_hash),
        expiresAt: key.expires_at === null ? null : Date.parse(key.expires_at),
        disabled: key.disabled,
      });
    }
    for (const key of runtimeKeys) {
      if (key.revoked || this.byId.has(key.id)) continue;
      const principal: Principal = { keyId: key.id, subject: key.subject, limits: key.limits, source: "runtime" };
      const expiresAt = key.expires_at === null ? null : Date.parse(key.expires_at);
      this.add(key.key_hash, { principal, hash: hashBytes(key.key_hash), expiresAt, disabled: key.disabled });
      for (const previous of key.previous) {
        const graceEnds = Date.parse(previous.expires_at);
        if (!(graceEnds > now)) continue;
        this.add(previous.hash, {
          principal,
          hash: hashBytes(previous.hash),
          expiresAt: expiresAt === null ? graceEnds : Math.min(expiresAt, graceEnds),
          disabled: key.disabled,
        });
      }
    }
  }

  /** Each key's entries (its secret, and a rotated-out one in its grace period). */
  private readonly entriesById = new Map<string, KeyEntry[]>();

  private add(hash: string, entry: KeyEntry): void {
    this.byHash.set(hash, entry);
    this.byId.set(entry.principal.keyId, entry.principal);
    const entries = this.entriesById.get(entry.principal.keyId);
    if (entries === undefined) this.entriesById.set(entry.principal.keyId, [entry]);
    else entries.push(entry);
  }

  /** Whether some secret of the key still opens it: not revoked, disabled or expired. */
  serves(keyId: string, now: number): boolean {
    return this.entriesById.get(keyId)?.some((entry) => refusal(entry, now) === null) ?? false;
  }

  /**
   * The key a secret opens. With `connection` (the client's socket), the entry a secret found is
   * remembered for that connection: a keep-alive client sends the same secret on every call, and
   * hashing it was a few µs of each. A later call on the same connection (a proxy's may carry other
   * clients) is compared with it in constant time; a secret it does not repeat is looked up by its
   * hash as always.
   */
  lookup(clear: string | null, now: number, connection?: object): KeyLookup {
    if (clear === null || clear === "") return { ok: false, reason: "missing" };
    const known = connection === undefined ? undefined : this.byConnection.get(connection);
    const entry = known !== undefined && sameSecret(known.clear, clear) ? known.entry : this.find(clear);
    if (entry === undefined) return { ok: false, reason: "unknown" };
    if (connection !== undefined && known?.entry !== entry) this.byConnection.set(connection, { clear, entry });
    const refused = refusal(entry, now);
    return refused === null ? { ok: true, principal: entry.principal } : { ok: false, reason: refused };
  }

  /** Whether some key has this secret hash (`hashKey`), whatever its state. */
  holdsHash(hash: string): boolean {
    return this.byHash.has(hash);
  }

  /** The last secret each connection opened a key with, for this index only (a new index starts empty). */
  private readonly byConnection = new WeakMap<object, { clear: string; entry: KeyEntry }>();

  private find(clear: string): KeyEntry | undefined {
    const hash = hashKey(clear);
    const entry = this.byHash.get(hash);
    return entry !== undefined && timingSafeEqual(entry.hash, hashBytes(hash)) ? entry : undefined;
  }
}

/** Whether two secrets are equal, in time that depends on their lengths only (no early exit). */
function sameSecret(a: string, b: string): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i % Math.max(1, b.length));
  return difference === 0;
}

/** Why a known secret no longer opens its key, or null. */
function refusal(entry: KeyEntry, now: number): "disabled" | "expired" | null {
  if (entry.disabled) return "disabled";
  if (entry.expiresAt !== null && entry.expiresAt <= now) return "expired";
  return null;
}

/** The bearer token of an `Authorization` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}
