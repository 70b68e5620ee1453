import { countTokens } from "./count.js";
import type { Encoding } from "./encoding.js";

/**
 * How one string is sized. The body walkers take a measure so the exact count (tokens) and the
 * cheap bound (UTF-8 bytes) share one traversal: every token spans at least one byte, so
 * bytes >= tokens for each string, and with identical overheads the bound can never fall below
 * the count.
 */
export type Measure = (text: string) => number;

const tokenMeasures = new Map<Encoding, Measure>();

/** One measure per encoding, so caches keyed by the measure (tool definitions) are shared across calls. */
export function tokenMeasure(encoding: Encoding): Measure {
  let measure = tokenMeasures.get(encoding);
  if (measure === undefined) {
    measure = (text) => countTokens(text, encoding);
    tokenMeasures.set(encoding, measure);
  }
  return measure;
}

export const utf8Bytes: Measure = (text) => Buffer.byteLength(text, "utf8");

/** OpenAI's accounting (openai-cookbook "How to count tokens"): per message, per name, reply priming. */
export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_NAME = 1;
export const REPLY_PRIMING = 3;
/** A low-detail image; high-detail ones cost more, but their size is not known before the call. */
export const IMAGE_TOKENS = 85;
