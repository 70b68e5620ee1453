import { type Encoding, getEncoder } from "./encoding.js";
import { splitForEncoding } from "./split.js";

/** Tokens in `text`; special-token strings such as `<|endoftext|>` count as ordinary text. */
export function countTokens(text: string, encoding: Encoding): number {
  if (text.length === 0) return 0;
  const encoder = getEncoder(encoding);
  let total = 0;
  for (const chunk of splitForEncoding(text)) total += encoder.countOrdinary(chunk);
  return total;
}

/**
 * Tokens of streamed output when the upstream sent no usage. Deltas are joined first because a
 * token can straddle two deltas.
 */
export function countTextTokens(text: string | readonly string[], encoding: Encoding): number {
  return countTokens(typeof text === "string" ? text : text.join(""), encoding);
}
