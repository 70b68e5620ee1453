import { describe, expect, test } from "vitest";
import { detectPii, PII_TYPES, type PiiType } from "../../src/pii/index.js";

const found = (text: string, type: PiiType): boolean => detectPii(`see ${text} here`, [type]).types.includes(type);

const cases: Record<PiiType, { positive: string[]; negative: string[] }> = {
  email: {
    positive: ["alice@example.com", "bob.smith+tag@mail.example.co.uk", "x_y%z@sub-domain.io"],
    negative: ["user@localhost", "alice at example dot com", "@example.com", "a@b.c"],
  },
  phone: {
    positive: ["+44 20 7946 0958", "+1 (415) 555-2671", "+33612345678", "(415) 555-2671", "415-555-2671", "415.555.2671", "1-415-555-2671"],
    negative: ["4155552671", "123-456-7890", "+12 34", "4111 1111 1111 1111", "v1.2.3.4", "2024-01-15"],
  },
  credit_card: {
    positive: ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "5555555555554444", "3782 822463 10005", "378282246310005", "41111111 1111 1111", "4111-111111111111"],
    negative: ["4111 1111 1111 1112", "1234567890123452", "4111 1111-1111 1111", "41111111111111110000000", "4111 1111 1111"],
  },
  iban: {
    positive: ["DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "FR14 2004 1010 0505 0001 3M02 606"],
    negative: ["DE89 3704 0044 0532 0130 01", "GB82 WEST 1234 5698 7654 33", "XX00 0000 0000 0000", "DE89 3704"],
  },
  us_ssn: {
    positive: ["123-45-6789", "078-05-1120", "123 45 6789"],
    negative: ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "123-45-67890", "123456789", "123-45 6789", "000 12 3456"],
  },
  secret: {
    positive: [
      "sk-proj-abc123DEF456ghi789JKL012mno345",
      "sk-ant-api03-abcdefghij0123456789",
      "AKIAIOSFODNN7EXAMPLE",
      "ASIAQWERTYUIOPASDFGH",
      "ghp_0123456789abcdefghijABCDEFGHIJ012345",
      "xoxb-1234567890-abcdefghij",
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
      "-----BEGIN PRIVATE KEY-----",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
      "Authorization: Bearer abcdef1234567890abcdef",
      "AIzaSyA1234567890abcdefghijklmnopqrstuv",
      "sk_live_51HqLyjWDarjtT1zdp7dcXYZ",
      "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
    ],
    negative: [
      "sk-learn-is-a-python-library-name",
      "task-force-0123456789abcdefghijkl",
      "AKIA1234",
      "the bearer of bad news",
      "-----BEGIN PUBLIC KEY-----",
      "eyJhbGciOiJIUzI1NiJ9",
      "AIza-too-short",
      "sk_live_short",
    ],
  },
  ip: {
    positive: ["192.168.1.20", "10.0.0.1", "2001:db8:85a3::8a2e:370:7334", "fe80::1ff:fe23:4567:890a", "2001:0db8:0000:0000:0000:ff00:0042:8329"],
    negative: ["256.1.1.1", "1.2.3.4.5", "std::vector", "12:30:45", "::1", "00:1A:2B:3C:4D:5E", "1.2.3", "Note: at 12:30 see https://x.io"],
  },
};

describe.each(PII_TYPES)("%s", (type) => {
  test.each(cases[type].positive)("finds %j", (text) => {
    expect(found(text, type)).toBe(true);
  });
  test.each(cases[type].negative)("ignores %j", (text) => {
    expect(found(text, type)).toBe(false);
  });
});

describe("detectPii", () => {
  test("reports sorted unique types and a classification", () => {
    const text = "mail bob@example.com, ip 10.0.0.1, card 4111 1111 1111 1111, again carol@example.org";
    expect(detectPii(text, PII_TYPES)).toEqual({ types: ["credit_card", "email", "ip"], classification: "pii" });
    expect(detectPii("nothing to see", PII_TYPES)).toEqual({ types: [], classification: "none" });
  });

  test("only runs the configured detectors", () => {
    expect(detectPii("bob@example.com 10.0.0.1", ["ip"]).types).toEqual(["ip"]);
    expect(detectPii("bob@example.com", []).classification).toBe("none");
  });

  test("an address inside a secret counts as the secret", () => {
    expect(detectPii("Bearer abc.10.0.0.1.defghijklmnop", PII_TYPES).types).toEqual(["secret"]);
  });

  test("a card number whose separator a zero-width space replaced, or grouped oddly, is still a card", () => {
    expect(detectPii("pay with 4111\u200b1111 1111 1111 today", PII_TYPES).types).toEqual(["credit_card"]);
    expect(detectPii("pay with 41111111 1111 1111 today", PII_TYPES).types).toEqual(["credit_card"]);
  });

  test("an international number that passes Luhn is a phone, not a card", () => {
    expect(detectPii("call +4111111111111", PII_TYPES).types).toEqual(["phone"]);
  });
});

describe("digit-counting skips", () => {
  // Each digit-gated pattern at the fewest digits it can match, the text holding no other digit:
  // a skip by digit count that were too eager would miss these.
  test.each([
    ["a US phone of 10 digits", "call (201) 555-0123 today", "phone"],
    ["a 13-digit card", "card 4222222222222 on file", "credit_card"],
    ["a grouped 13-digit card", "card 42222 22222 222 on file", "credit_card"],
    ["an SSN", "ssn 219-09-9999 here", "us_ssn"],
  ] as const)("%s is still found", (_label, text, type) => {
    expect(detectPii(text, PII_TYPES).types).toContain(type);
    // One digit fewer: not that type any more (and nothing else is found in its place).
    const shorter = text.replace(/\d(?=\D*$)/, "");
    expect(detectPii(shorter, PII_TYPES).types).not.toContain(type);
  });
});

describe("digits of scripts whose blocks adjoin", () => {
  test("Eastern Pwo Karen digits (after Pa-O's, one run of twenty) read as their values", () => {
    // U+116DA..U+116E3 are Eastern Pwo Karen 0..9, right after Pa-O's U+116D0..U+116D9.
    const karen = (digits: string) => [...digits].map((d) => String.fromCodePoint(0x116da + Number(d))).join("");
    const card = `card ${karen("4111")} ${karen("1111")} ${karen("1111")} ${karen("1111")}`;
    expect(detectPii(card, PII_TYPES).types).toContain("credit_card");
    expect(detectPii(`ssn ${karen("219")}-${karen("09")}-${karen("9999")}`, PII_TYPES).types).toContain("us_ssn");
  });
});

describe("dashes of every kind", () => {
  test.each([
    ["an SSN with en dashes", "ssn 219\u201309\u20139999 here", "us_ssn"],
    ["an SSN with non-breaking hyphens", "ssn 219\u201109\u20119999 here", "us_ssn"],
    ["a card with minus signs", "card 4111\u22121111\u22121111\u22121111", "credit_card"],
    ["a phone with em dashes", "call 201\u2014555\u20140123", "phone"],
  ] as const)("%s is found", (_label, text, type) => {
    expect(detectPii(text, PII_TYPES).types).toContain(type);
  });
});
