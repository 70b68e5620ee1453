import type { ModelPrices } from "./prices.js";
import type { Usage } from "./usage.js";

const PER_MILLION = 1_000_000n;

/**
 * A call's cost in micro-USD: the exact sum of tokens x price per 1M, divided by 1M and rounded
 * up once. BigInt keeps it exact where tokens x price passes 2^53. Missing prices cost nothing;
 * whether a model may be served unpriced is `isPriced`'s question, not this one's.
 */
export function costMicros(usage: Usage, prices: ModelPrices): number {
  const input = tokens(usage.input_tokens);
  const cached = min(tokens(usage.cached_input_tokens), input);
  const inputPrice = price(prices.inputPer1m);
  const cachedPrice = prices.cachedInputPer1m === null ? inputPrice : price(prices.cachedInputPer1m);
  const scaled =
    (input - cached) * inputPrice + cached * cachedPrice + tokens(usage.output_tokens) * price(prices.outputPer1m);
  return Number(ceilDiv(scaled, PER_MILLION));
}

/** The most a call can cost: every input token uncached, the whole output limit used. */
export function worstCaseMicros(inputTokens: number, outputLimit: number, prices: ModelPrices): number {
  return costMicros({ input_tokens: inputTokens, output_tokens: outputLimit, cached_input_tokens: 0 }, prices);
}

/** The cost of `inputTokens` uncached, micro-USD, not rounded: the part of a worst case reserved before its output. */
export function inputCostMicros(inputTokens: number, prices: ModelPrices): number {
  return Number(tokens(inputTokens) * price(prices.inputPer1m)) / 1_000_000;
}

/**
 * The largest output limit n with worstCaseMicros(inputTokens, n) <= capMicros, or null when the
 * input alone exceeds the cap. With free output any limit fits: Number.MAX_SAFE_INTEGER.
 */
export function maxOutputTokensWithin(capMicros: number, inputTokens: number, prices: ModelPrices): number | null {
  // ceil(x / 1M) <= cap  <=>  x <= cap * 1M, for integer cap: the rounding adds no headroom.
  const budget = BigInt(Math.floor(capMicros)) * PER_MILLION - tokens(inputTokens) * price(prices.inputPer1m);
  if (budget < 0n) return null;
  const outputPrice = price(prices.outputPer1m);
  if (outputPrice === 0n) return Number.MAX_SAFE_INTEGER;
  const limit = budget / outputPrice;
  return limit > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(limit);
}

// Counts come from clients and upstreams: anything not a non-negative number is no tokens, and a
// fraction is rounded up so a cost is never under-charged.
function tokens(value: number): bigint {
  return Number.isFinite(value) && value > 0 ? BigInt(Math.ceil(value)) : 0n;
}

function price(micros: number | null): bigint {
  return micros === null || !Number.isFinite(micros) || micros <= 0 ? 0n : BigInt(Math.round(micros));
}

function ceilDiv(numerator: bigint, denominator: bigint): bigint {
  return (numerator + denominator - 1n) / denominator;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
