import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { getEncoder } from "../../src/tokens/encoding.js";
import { EncodeBudget } from "../../src/tokens/count.js";
import { countTextTokens, countTokens } from "../../src/tokens/index.js";

describe("countTokens", () => {
  test.each([
    ["hello world", 2, 2],
    ["Hello, world!", 4, 4],
    ["The quick brown fox jumps over the lazy dog.", 10, 10],
    ["日本語のテキスト", 6, 8],
    ["🎉🎉", 4, 6],
    ["", 0, 0],
  ])("%j is %i tokens in o200k_base and %i in cl100k_base", (text, o200k, cl100k) => {
    expect(countTokens(text, "o200k_base")).toBe(o200k);
    expect(countTokens(text, "cl100k_base")).toBe(cl100k);
  });

  test("counts numbers as the encoder does, every length to 14 digits, with and without a space, among other text", () => {
    const pieces = fc.oneof(fc.stringMatching(/^[0-9]{1,14}$/), fc.constantFrom(" ", ":", ".", ",", "\n", "v", "Call", " x", "€", "-", "_"));
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 12 }), (parts) => {
        const text = parts.join("");
        for (const encoding of ["o200k_base", "cl100k_base"] as const) {
          expect(countTokens(text, encoding)).toBe(getEncoder(encoding).countOrdinary(text));
        }
      }),
      { numRuns: 2000 },
    );
  });

  test("special-token text counts as ordinary text instead of throwing", () => {
    expect(countTokens("<|endoftext|>", "o200k_base")).toBe(7);
    expect(countTokens("<|endoftext|>", "cl100k_base")).toBe(7);
  });

  test("a 1 MB single-letter run finishes quickly with a close estimate", () => {
    const started = performance.now();
    const tokens = countTokens("a".repeat(1_000_000), "o200k_base");
    expect(performance.now() - started).toBeLessThan(3000);
    expect(tokens).toBeGreaterThan(100_000);
    expect(tokens).toBeLessThan(150_000);
  });
});

describe("countTextTokens", () => {
  test("joins streamed deltas before counting, since a token can straddle two deltas", () => {
    expect(countTextTokens(["hel", "lo wor", "ld"], "o200k_base")).toBe(2);
    expect(countTextTokens("hello world", "cl100k_base")).toBe(2);
    expect(countTextTokens([], "o200k_base")).toBe(0);
  });
});

describe("the encode budget", () => {
  test("past its budget a count bounds never-seen words by their bytes (never below the exact count), and refills with time", () => {
    let now = 0;
    // Three words' characters (each word below is 12-15 characters with its space).
    const budget = new EncodeBudget(45, 1000, () => now);
    const fresh = (i: number) => ` zq${i.toString(36)}xv${i}kw`;
    const text = Array.from({ length: 10 }, (_, i) => fresh(i + 1_000_000)).join("");
    const exact = getEncoder("o200k_base").countOrdinary(text);
    const bounded = countTokens(text, "o200k_base", budget);
    expect(bounded).toBeGreaterThan(exact);
    expect(bounded).toBeLessThanOrEqual(Buffer.byteLength(text));
    expect(budget.take(15)).toBe(false);
    now += 15;
    expect(budget.take(15)).toBe(true);
    // Words the cache already holds cost nothing: counted exactly whatever the budget.
    const seen = Array.from({ length: 10 }, (_, i) => fresh(i + 2_000_000)).join("");
    const counted = countTokens(seen, "o200k_base");
    expect(countTokens(seen, "o200k_base", new EncodeBudget(0, 0, () => now))).toBe(counted);
    // A word bounded for want of budget is not kept: counted again with budget, it is exact.
    const later = Array.from({ length: 3 }, (_, i) => fresh(i + 3_000_000)).join("");
    const starved = countTokens(later, "o200k_base", new EncodeBudget(0, 0, () => now));
    expect(starved).toBeGreaterThan(getEncoder("o200k_base").countOrdinary(later));
    expect(countTokens(later, "o200k_base")).toBe(getEncoder("o200k_base").countOrdinary(later));
    // A long unbroken run (base64) is cut into pieces, each charged its length.
    const blob = "x".repeat(10) + Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 256)).toString("base64");
    expect(countTokens(blob, "o200k_base", new EncodeBudget(200, 0, () => now))).toBeGreaterThan(getEncoder("o200k_base").countOrdinary(blob));
  });
});
