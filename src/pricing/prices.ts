import type { Config, ModelConfig } from "../config/schema.js";
import { usdToMicros } from "./money.js";

/** A model's prices in integer micro-USD per 1M tokens (USD 0.15 per 1M -> 150000); null: not priced. */
export interface ModelPrices {
  kind: ModelConfig["kind"];
  inputPer1m: number | null;
  outputPer1m: number | null;
  /** Null means cached input is billed at the input price. */
  cachedInputPer1m: number | null;
}

export type PriceTable = ReadonlyMap<string, ModelPrices>;

export function compilePriceTable(models: Config["models"]): PriceTable {
  const table = new Map<string, ModelPrices>();
  for (const [name, model] of Object.entries(models)) table.set(name, compileModelPrices(model));
  return table;
}

export function compileModelPrices(model: ModelConfig): ModelPrices {
  return {
    kind: model.kind,
    inputPer1m: toMicros(model.input_per_1m),
    outputPer1m: toMicros(model.output_per_1m),
    cachedInputPer1m: toMicros(model.cached_input_per_1m),
  };
}

/** Whether every call to the model has a cost: embeddings produce no output tokens to price. */
export function isPriced(prices: ModelPrices): boolean {
  if (prices.inputPer1m === null) return false;
  return prices.kind === "embedding" || prices.outputPer1m !== null;
}

function toMicros(usd: number | null | undefined): number | null {
  return usd === null || usd === undefined ? null : usdToMicros(usd);
}
