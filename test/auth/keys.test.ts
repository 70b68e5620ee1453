import { describe, expect, it } from "vitest";
import { bearerToken, generateKey, hashKey, KeyIndex } from "../../src/auth/keys.js";
import type { RuntimeKey } from "../../src/state/store.js";

const subject = { user: "u", role: "developer", team: null, purpose: null };
const now = Date.parse("2026-01-01T00:00:00Z");

function runtimeKey(overrides: Partial<RuntimeKey>): RuntimeKey {
  return {
    id: "rt",
    key_hash: hashKey("sk-rt"),
    previous: [],
    revision: 0,
    subject,
    limits: {},
    expires_at: null,
    disabled: false,
    revoked: false,
    created_at: new Date(now).toISOString(),
    ...overrides,
  };
}

describe("virtual keys", () => {
  it("hashes as sha256: + hex of the UTF-8 bytes", () => {
    expect(hashKey("test")).toBe("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    expect(generateKey()).not.toBe(generateKey());
  });

  it("finds config keys by hash and refuses unknown, disabled and expired ones", () => {
    const index = new KeyIndex(
      [
        { id: "a", key_hash: hashKey("sk-a"), subject, expires_at: null, disabled: false, limits: {} },
        { id: "d", key_hash: hashKey("sk-d"), subject, expires_at: null, disabled: true, limits: {} },
        { id: "e", key_hash: hashKey("sk-e"), subject, expires_at: "2025-12-31T00:00:00Z", disabled: false, limits: {} },
      ],
      [],
      now,
    );
    expect(index.lookup("sk-a", now)).toMatchObject({ ok: true, principal: { keyId: "a", source: "config" } });
    expect(index.lookup("sk-x", now)).toEqual({ ok: false, reason: "unknown" });
    expect(index.lookup(null, now)).toEqual({ ok: false, reason: "missing" });
    expect(index.lookup("sk-d", now)).toEqual({ ok: false, reason: "disabled" });
    expect(index.lookup("sk-e", now)).toEqual({ ok: false, reason: "expired" });
  });

  it("skips revoked runtime keys and honours the rotation grace period", () => {
    const graceEnds = new Date(now + 60_000).toISOString();
    const index = new KeyIndex(
      [],
      [
        runtimeKey({ id: "gone", key_hash: hashKey("sk-gone"), revoked: true }),
        runtimeKey({
          key_hash: hashKey("sk-new"),
          previous: [
            { hash: hashKey("sk-older"), expires_at: new Date(now + 120_000).toISOString() },
            { hash: hashKey("sk-old"), expires_at: graceEnds },
            { hash: hashKey("sk-ended"), expires_at: new Date(now - 1).toISOString() },
          ],
        }),
      ],
      now,
    );
    expect(index.lookup("sk-gone", now).ok).toBe(false);
    expect(index.lookup("sk-new", now)).toMatchObject({ ok: true, principal: { keyId: "rt", source: "runtime" } });
    // Each earlier secret works until its own grace ends.
    expect(index.lookup("sk-old", now).ok).toBe(true);
    expect(index.lookup("sk-older", now).ok).toBe(true);
    expect(index.lookup("sk-ended", now).ok).toBe(false);
    expect(index.lookup("sk-old", now + 61_000)).toEqual({ ok: false, reason: "expired" });
    expect(index.lookup("sk-older", now + 61_000).ok).toBe(true);
  });

  it("remembers a connection's secret without letting it open anything else or outlive the key's state", () => {
    const config = (disabled: boolean, expires_at: string | null = null) => [
      { id: "a", key_hash: hashKey("sk-a-secret"), subject, expires_at, disabled, limits: {} },
      { id: "b", key_hash: hashKey("sk-b-secret"), subject, expires_at: null, disabled: false, limits: {} },
    ];
    const index = new KeyIndex(config(false, new Date(now + 1000).toISOString()), [], now);
    const connection = {};
    expect(index.lookup("sk-a-secret", now, connection)).toMatchObject({ ok: true, principal: { keyId: "a" } });
    // Another secret on the same connection (a proxy's) is looked up for itself, never given the remembered key.
    expect(index.lookup("sk-a-secreT", now, connection)).toEqual({ ok: false, reason: "unknown" });
    expect(index.lookup("sk-a-secre", now, connection)).toEqual({ ok: false, reason: "unknown" });
    expect(index.lookup("sk-b-secret", now, connection)).toMatchObject({ ok: true, principal: { keyId: "b" } });
    expect(index.lookup("sk-a-secret", now, connection)).toMatchObject({ ok: true, principal: { keyId: "a" } });
    // The remembered entry is still judged at each call's time.
    expect(index.lookup("sk-a-secret", now + 1000, connection)).toEqual({ ok: false, reason: "expired" });
    // A new index (a key disabled, say) remembers nothing of the old one's connections.
    const changed = new KeyIndex(config(true), [], now);
    expect(changed.lookup("sk-a-secret", now, connection)).toEqual({ ok: false, reason: "disabled" });
  });

  it("reads bearer tokens strictly", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer   abc  ")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeNull();
    expect(bearerToken("Bearer a b")).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});
