import { describe, expect, test } from "vitest";
import { detectPii, detectPiiInParts, PII_TYPES, redactPii } from "../../src/pii/index.js";

describe("redactPii", () => {
  test("replaces each match with its type", () => {
    const text = "Contact alice@example.com or 415-555-2671; SSN 123-45-6789, key sk-proj-abc123DEF456ghi789JKL012.";
    expect(redactPii(text, PII_TYPES)).toBe(
      "Contact [REDACTED:email] or [REDACTED:phone]; SSN [REDACTED:us_ssn], key [REDACTED:secret].",
    );
  });

  test("redacts a whole private key block", () => {
    const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAAB3NzaC1yc2E=\n-----END OPENSSH PRIVATE KEY-----";
    expect(redactPii(`before\n${key}\nafter`, ["secret"])).toBe("before\n[REDACTED:secret]\nafter");
  });

  test("keeps a valid IBAN's following word", () => {
    expect(redactPii("pay DE89 3704 0044 0532 0130 00 OK", ["iban"])).toBe("pay [REDACTED:iban] OK");
  });

  test("masks PII only the compatibility form shows, which the scan flags: the text goes on in that form", () => {
    const hidden = ["\u034f", "\u115f", "\u3164", "\u180e", "\u202e", "\u2066", "\ufe0f", "\u{e0041}", "\u{1d173}", "\u061c", "\u2800", "\u0301"];
    const marked = "4\u03011\u030111 1111 1111 1111";
    const arabicDigits = "card ٤١١١١١١١١١١١١١١١";
    for (const disguised of ["mail jane＠example．com", "ssn １２３-４５-６７８９", "card 4111\u200b1111\u200b1111\u200b1111", "jane@example\u200b.com", marked, arabicDigits, ...hidden.map((c) => `jane${c}@example.com`)]) {
      expect(detectPii(disguised, PII_TYPES).classification, disguised).toBe("pii");
      expect(redactPii(disguised, PII_TYPES), disguised).toMatch(/^\w+ \[REDACTED:\w+\]$|^\[REDACTED:\w+\]$/);
    }
    // Non-ASCII text without PII is left exactly as written.
    expect(redactPii("café ＡＢＣ", PII_TYPES)).toBe("café ＡＢＣ");
  });

  test("leaves text without PII, and text for disabled detectors, untouched", () => {
    expect(redactPii("plain text 42", PII_TYPES)).toBe("plain text 42");
    expect(redactPii("bob@example.com", ["phone"])).toBe("bob@example.com");
  });

  test("scans the whole text, however long: PII after megabytes of filler is found and redacted", () => {
    const filler = "lorem ipsum ".repeat(200_000);
    const text = `${filler}contact jane.doe@example.com ssn 123-45-6789`;
    expect(text.length).toBeGreaterThan(2 * 1024 * 1024);
    expect(detectPii(text, PII_TYPES).types).toEqual(["email", "us_ssn"]);
    expect(detectPiiInParts([filler, filler, "reach me at jane.doe@example.com"], PII_TYPES).types).toEqual(["email"]);
    expect(redactPii(text, PII_TYPES).endsWith("contact [REDACTED:email] ssn [REDACTED:us_ssn]")).toBe(true);
  });
});

describe("hostile input", () => {
  const size = 5 * 1024 * 1024;
  const fill = (unit: string) => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
  const inputs = {
    letters: fill("a"),
    emailish: fill("a.b@"),
    domains: fill("a@b-c."),
    digits: fill("1"),
    spacedDigits: fill("1 "),
    dashedDigits: fill("12-"),
    dots: fill("1."),
    colons: fill("a:"),
    plus: fill("+1 "),
    jwtish: fill("eyJ"),
    jwtSegments: fill("eyJaaaaaa."),
    keys: fill("sk-"),
    pem: fill("-----BEGIN RSA PRIVATE KEY-----"),
    ibanish: fill("DE89 "),
    bearer: fill("Bearer "),
    mixed: fill("bob@example.com 4111 1111 1111 1111 +44 20 7946 0958 "),
  };

  test.each(Object.keys(inputs))("a 5 MB %s input finishes quickly", (name) => {
    const text = inputs[name as keyof typeof inputs];
    const started = performance.now();
    detectPii(text, PII_TYPES);
    redactPii(text, PII_TYPES);
    expect(performance.now() - started).toBeLessThan(3000);
  });

});
