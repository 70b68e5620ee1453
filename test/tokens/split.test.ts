import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { getEncoder } from "../../src/tokens/encoding.js";
import { MAX_RUN, splitForEncoding } from "../../src/tokens/split.js";

const encodings = ["o200k_base", "cl100k_base"] as const;

function chunkedCount(text: string, encoding: (typeof encodings)[number], chunkChars: number, maxRun = MAX_RUN): number {
  const encoder = getEncoder(encoding);
  return splitForEncoding(text, chunkChars, maxRun).reduce((sum, chunk) => sum + encoder.countOrdinary(chunk), 0);
}

// With forced cuts disabled and tiny chunks, every cut is at a boundary the splitter judged
// certain, so the chunked count must equal the whole-text count.
const prose = fc
  .array(
    fc.tuple(
      fc.string({ unit: fc.constantFrom(..."aZé9日'-"), maxLength: 12 }),
      fc.constantFrom(" ", "  ", "\n", "\n\n ", ", ", ".", "{\"", "\":", "/", "\t"),
    ),
    { minLength: 5, maxLength: 60 },
  )
  .map((pairs) => pairs.map(([word, glue]) => word + glue).join(""));

describe("splitForEncoding", () => {
  test("returns the text unchanged when concatenated", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 2000 }), (text) => {
        expect(splitForEncoding(text, 16).join("")).toBe(text);
      }),
    );
  });

  test("cuts at piece boundaries only, so ordinary text counts exactly", () => {
    for (const encoding of encodings) {
      fc.assert(
        fc.property(prose, (text) => {
          expect(chunkedCount(text, encoding, 8, Number.POSITIVE_INFINITY)).toBe(getEncoder(encoding).countOrdinary(text));
        }),
        { numRuns: 200 },
      );
    }
  });

  test("cut into single words, prose still counts exactly", () => {
    for (const encoding of encodings) {
      fc.assert(
        fc.property(prose, (text) => {
          expect(chunkedCount(text, encoding, 1)).toBe(getEncoder(encoding).countOrdinary(text));
        }),
        { numRuns: 200 },
      );
    }
  });

  test("chunks a long text and still counts it exactly", () => {
    const text = 'The {"city":"Paris"} isn\'t far, is it? 日本語 tokens/sec\n\n  ok. '.repeat(500);
    expect(splitForEncoding(text).length).toBeGreaterThan(1);
    for (const encoding of encodings) {
      expect(chunkedCount(text, encoding, 8192)).toBe(getEncoder(encoding).countOrdinary(text));
    }
  });

  test("never splits a surrogate pair", () => {
    const chunks = splitForEncoding("🎉".repeat(MAX_RUN * 4));
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(chunk).toMatch(/^(?:\uD83C\uDF89)+$/);
  });

  test("bounds unbroken runs", () => {
    for (const chunk of splitForEncoding("x".repeat(10_000))) expect(chunk.length).toBeLessThanOrEqual(MAX_RUN);
  });
});
