import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { captureBody, decryptBody, parseEncryptionKey } from "../../src/audit/bodies.js";
import { redactText } from "../../src/audit/redact.js";

const body = {
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "mail bob@example.com, card 4111 1111 1111 1111, key sk-abcdefghijklmnopqrstuvwx" }],
  max_tokens: 5,
};

describe("captureBody", () => {
  it("none adds nothing", () => {
    expect(captureBody("none", body, { redact: redactText, keyId: "k1" })).toEqual({});
  });

  it("redacted masks every string with the given redactor and keeps the shape", () => {
    const captured = captureBody("redacted", body, { redact: redactText, keyId: "k1" });
    expect(captured).toEqual({
      body: {
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "mail [REDACTED_EMAIL], card [REDACTED_NUMBER], key [REDACTED_SECRET]" }],
        max_tokens: 5,
      },
    });
    const custom = captureBody("redacted", { a: ["x", 1] }, { redact: (text) => text.toUpperCase(), keyId: "k1" });
    expect(custom).toEqual({ body: { A: ["X", 1] } });
  });

  it("full encrypts with AES-256-GCM and decrypts back with the key", () => {
    const key = randomBytes(32);
    const captured = captureBody("full", body, { redact: redactText, key, keyId: "k7" });
    if (!("body_enc" in captured)) throw new Error("expected an encrypted body");
    expect(captured.body_key_id).toBe("k7");
    expect(captured.body_enc).not.toContain("bob@example.com");
    expect(decryptBody(captured.body_enc, key)).toEqual(body);
    // A fresh IV each time: the same body never encrypts the same.
    const again = captureBody("full", body, { redact: redactText, key, keyId: "k7" });
    expect("body_enc" in again && again.body_enc).not.toBe(captured.body_enc);
  });

  it("fails to decrypt with the wrong key or altered data", () => {
    const key = randomBytes(32);
    const captured = captureBody("full", body, { redact: redactText, key, keyId: "k1" });
    if (!("body_enc" in captured)) throw new Error("expected an encrypted body");
    expect(() => decryptBody(captured.body_enc, randomBytes(32))).toThrow();
    const altered = Buffer.from(captured.body_enc, "base64");
    altered[altered.length - 1] = (altered[altered.length - 1] ?? 0) ^ 1;
    expect(() => decryptBody(altered.toString("base64"), key)).toThrow();
  });

  it("full without a key is an error", () => {
    expect(() => captureBody("full", body, { redact: redactText, keyId: "k1" })).toThrow(/encryption key/);
  });

  it("parses a base64 key of exactly 32 bytes", () => {
    const key = randomBytes(32);
    expect(parseEncryptionKey(key.toString("base64")).equals(key)).toBe(true);
    expect(() => parseEncryptionKey(randomBytes(16).toString("base64"))).toThrow(/32 bytes/);
  });
});

describe("redactText", () => {
  it("leaves ordinary text and short numbers alone", () => {
    expect(redactText("order 12345 shipped to room 42")).toBe("order 12345 shipped to room 42");
  });
});
