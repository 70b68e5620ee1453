import { countTokens } from "./count.js";
import type { Encoding } from "./encoding.js";
import { TextCache } from "../util/text-cache.js";

/**
 * How one string is sized. The body walkers take a measure so the exact count (tokens) and the
 * cheap bound (UTF-8 bytes) share one traversal: every token spans at least one byte, so
 * bytes >= tokens for each string, and with identical overheads the bound can never fall below
 * the count.
 */
export type Measure = (text: string) => number;

const tokenMeasures = new Map<Encoding, Measure>();

/** Per encoding: what a few hundred conversations' recent turns and tool sets take. */
const CACHE_ENTRIES = 16_384;
const CACHE_CHARS = 4 * 1024 * 1024;

/** One measure per encoding, counting through that encoding's cache of recent strings. */
export function tokenMeasure(encoding: Encoding): Measure {
  let measure = tokenMeasures.get(encoding);
  if (measure === undefined) {
    const cache = new TextCache<number>(CACHE_ENTRIES, CACHE_CHARS);
    const count = (text: string): number => countTokens(text, encoding);
    measure = (text) => cache.valueOf(text, count);
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
