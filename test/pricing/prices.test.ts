import { describe, expect, test } from "vitest";
import type { Config } from "../../src/config/schema.js";
import { compilePriceTable, isPriced, microsToUsd, usdToMicros } from "../../src/pricing/index.js";

const base = { upstream: "openai", tokenizer: "o200k_base", max_output_tokens: 16384, context_window: null, output_limit_param: "max_completion_tokens" } as const;
const models: Config["models"] = {
  "gpt-4o-mini": { ...base, kind: "chat", input_per_1m: 0.15, output_per_1m: 0.6, cached_input_per_1m: 0.075 },
  "gpt-4o": { ...base, kind: "chat", input_per_1m: 2.5, output_per_1m: 10 },
  "text-embedding-3-small": { ...base, kind: "embedding", input_per_1m: 0.02 },
  "half-priced": { ...base, kind: "chat", input_per_1m: 1, output_per_1m: null },
  unpriced: { ...base, kind: "chat" },
};

describe("compilePriceTable", () => {
  const table = compilePriceTable(models);

  test("stores integer micro-USD per 1M tokens, null where unpriced", () => {
    expect(table.get("gpt-4o-mini")).toEqual({ kind: "chat", inputPer1m: 150_000, outputPer1m: 600_000, cachedInputPer1m: 75_000 });
    expect(table.get("gpt-4o")).toEqual({ kind: "chat", inputPer1m: 2_500_000, outputPer1m: 10_000_000, cachedInputPer1m: null });
    expect(table.get("unpriced")).toEqual({ kind: "chat", inputPer1m: null, outputPer1m: null, cachedInputPer1m: null });
  });

  test("a chat model needs input and output prices; an embedding model only input", () => {
    const priced = (name: string) => isPriced(table.get(name)!);
    expect(priced("gpt-4o-mini")).toBe(true);
    expect(priced("gpt-4o")).toBe(true);
    expect(priced("text-embedding-3-small")).toBe(true);
    expect(priced("half-priced")).toBe(false);
    expect(priced("unpriced")).toBe(false);
  });
});

describe("money conversions", () => {
  test.each([
    [0.15, 150_000],
    [0.075, 75_000],
    [0.1, 100_000],
    [0.000123, 123],
    [0.0000004, 0],
  ])("%f USD is %i micro-USD", (usd, micros) => {
    expect(usdToMicros(usd)).toBe(micros);
  });

  test("micros to USD", () => {
    expect(microsToUsd(123)).toBe(0.000123);
    expect(microsToUsd(1_500_000)).toBe(1.5);
  });
});
