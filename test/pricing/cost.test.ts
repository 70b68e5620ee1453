import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { costMicros, maxOutputTokensWithin, type ModelPrices, worstCaseMicros } from "../../src/pricing/index.js";

const mini: ModelPrices = { kind: "chat", inputPer1m: 150_000, outputPer1m: 600_000, cachedInputPer1m: 75_000 };
const gpt4o: ModelPrices = { kind: "chat", inputPer1m: 2_500_000, outputPer1m: 10_000_000, cachedInputPer1m: null };
const embedding: ModelPrices = { kind: "embedding", inputPer1m: 20_000, outputPer1m: null, cachedInputPer1m: null };

const usage = (input: number, output: number, cached = 0) => ({
  input_tokens: input,
  output_tokens: output,
  cached_input_tokens: cached,
});

const pricesArb = fc.record({
  kind: fc.constant("chat" as const),
  inputPer1m: fc.integer({ min: 0, max: 200_000_000 }),
  outputPer1m: fc.integer({ min: 0, max: 200_000_000 }),
  cachedInputPer1m: fc.option(fc.integer({ min: 0, max: 200_000_000 })),
});
const tokensArb = fc.integer({ min: 0, max: 50_000_000 });

describe("costMicros", () => {
  test("rounds a fraction of a micro-dollar up", () => {
    expect(costMicros(usage(1, 0), mini)).toBe(1);
    expect(costMicros(usage(0, 0), mini)).toBe(0);
    expect(costMicros(usage(0, 1), mini)).toBe(1);
  });

  test("rounds once over the sum, not per term", () => {
    // 1 input (0.15) + 1 output (0.6) = 0.75 micro-USD -> 1, not 1 + 1.
    expect(costMicros(usage(1, 1), mini)).toBe(1);
  });

  test("exact whole amounts", () => {
    expect(costMicros(usage(1_000_000, 1_000_000), mini)).toBe(750_000);
    expect(costMicros(usage(1000, 500), gpt4o)).toBe(7_500);
  });

  test("bills cached input at the cached price, or the input price when there is none", () => {
    // 800 uncached x 0.15 + 200 cached x 0.075 + 100 x 0.6 = 120 + 15 + 60
    expect(costMicros(usage(1000, 100, 200), mini)).toBe(195);
    expect(costMicros(usage(1000, 100, 200), gpt4o)).toBe(costMicros(usage(1000, 100), gpt4o));
    // Cached beyond the input is capped at the input.
    expect(costMicros(usage(10, 0, 50), mini)).toBe(costMicros(usage(10, 0, 10), mini));
  });

  test("embeddings have no output price", () => {
    expect(costMicros(usage(1_000_000, 0), embedding)).toBe(20_000);
    expect(costMicros(usage(100, 5), embedding)).toBe(2);
  });

  test("stays exact past 2^53", () => {
    const pricey: ModelPrices = { kind: "chat", inputPer1m: 999_999_999, outputPer1m: 999_999_999, cachedInputPer1m: null };
    // 9_007_199 x 999_999_999 = 9_007_198_990_992_801 > 2^53.
    expect(costMicros(usage(9_007_199, 0), pricey)).toBe(9_007_198_991);
  });

  test("never below the exact rational value, and less than one micro above it", () => {
    fc.assert(
      fc.property(pricesArb, tokensArb, tokensArb, tokensArb, (prices, input, output, cachedRaw) => {
        const cached = Math.min(cachedRaw, input);
        const cachedPrice = prices.cachedInputPer1m ?? prices.inputPer1m;
        const exact =
          BigInt(input - cached) * BigInt(prices.inputPer1m) +
          BigInt(cached) * BigInt(cachedPrice) +
          BigInt(output) * BigInt(prices.outputPer1m);
        const cost = BigInt(costMicros(usage(input, output, cached), prices));
        expect(cost * 1_000_000n).toBeGreaterThanOrEqual(exact);
        expect((cost - 1n) * 1_000_000n).toBeLessThan(exact);
      }),
    );
  });

  test("is monotone in every token count", () => {
    fc.assert(
      fc.property(pricesArb, tokensArb, tokensArb, fc.nat(1000), fc.nat(1000), (prices, input, output, moreIn, moreOut) => {
        const cost = costMicros(usage(input, output), prices);
        expect(costMicros(usage(input + moreIn, output), prices)).toBeGreaterThanOrEqual(cost);
        expect(costMicros(usage(input, output + moreOut), prices)).toBeGreaterThanOrEqual(cost);
      }),
    );
  });

  test("garbage token counts cost nothing rather than NaN", () => {
    expect(costMicros(usage(Number.NaN, -5, Number.POSITIVE_INFINITY), mini)).toBe(0);
  });
});

describe("worstCaseMicros", () => {
  test("counts every input token uncached plus the whole output limit", () => {
    expect(worstCaseMicros(1000, 100, mini)).toBe(210);
    expect(worstCaseMicros(1000, 16_384, gpt4o)).toBe(166_340);
  });
});

describe("maxOutputTokensWithin", () => {
  test("a hand-computed case", () => {
    // $0.01 cap, 1000 input on gpt-4o: 10_000 - 2_500 = 7_500 micro-USD left = 750 output tokens.
    expect(maxOutputTokensWithin(10_000, 1000, gpt4o)).toBe(750);
    expect(worstCaseMicros(1000, 750, gpt4o)).toBe(10_000);
    expect(worstCaseMicros(1000, 751, gpt4o)).toBe(10_010);
  });

  test("null when the input alone is over the cap; 0 when it exactly fills it", () => {
    expect(maxOutputTokensWithin(2_499, 1000, gpt4o)).toBeNull();
    expect(maxOutputTokensWithin(2_500, 1000, gpt4o)).toBe(0);
  });

  test("unbounded output when output is free", () => {
    expect(maxOutputTokensWithin(100, 10, embedding)).toBe(Number.MAX_SAFE_INTEGER);
  });

  test("returns the largest fitting value: n fits, n + 1 does not", () => {
    fc.assert(
      fc.property(
        pricesArb.filter((prices) => prices.outputPer1m > 0),
        fc.integer({ min: 0, max: 10_000_000 }),
        tokensArb,
        (prices, cap, input) => {
          const n = maxOutputTokensWithin(cap, input, prices);
          if (n === null) {
            expect(worstCaseMicros(input, 0, prices)).toBeGreaterThan(cap);
            return;
          }
          expect(worstCaseMicros(input, n, prices)).toBeLessThanOrEqual(cap);
          expect(worstCaseMicros(input, n + 1, prices)).toBeGreaterThan(cap);
        },
      ),
    );
  });
});
