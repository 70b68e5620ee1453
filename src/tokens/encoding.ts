import * as cl100k from "gpt-tokenizer/encoding/cl100k_base";
import * as o200k from "gpt-tokenizer/encoding/o200k_base";
import type { ModelConfig } from "../config/schema.js";

export type Encoding = ModelConfig["tokenizer"];

export interface Encoder {
  /** Tokens of `text` with special-token strings (`<|endoftext|>`) counted as ordinary text. */
  countOrdinary(text: string): number;
  /** The text of a token array, or null when it holds a token the encoding does not have. */
  decode(tokens: number[]): string | null;
}

// Special tokens are never special in a prompt the gateway counts: they are text the client sent.
const ORDINARY = { disallowedSpecial: new Set<string>() };

/**
 * gpt-tokenizer (pure JS) rather than tiktoken's WASM: identical o200k/cl100k counts, measured
 * 6–10× faster per call here (no string copy across the WASM boundary), and no encoder to build.
 */
const encoders: Record<Encoding, Encoder> = {
  o200k_base: { countOrdinary: (text) => o200k.countTokens(text, ORDINARY), decode: (tokens) => decoded(o200k.decode, tokens) },
  cl100k_base: { countOrdinary: (text) => cl100k.countTokens(text, ORDINARY), decode: (tokens) => decoded(cl100k.decode, tokens) },
};

function decoded(decode: (tokens: number[]) => string, tokens: number[]): string | null {
  try {
    return decode(tokens);
  } catch {
    return null;
  }
}

export function getEncoder(encoding: Encoding): Encoder {
  return encoders[encoding];
}

/**
 * What reads a model's token arrays back into text (for the prompt's rules and PII scan): an
 * embedding model's are cl100k_base, as every OpenAI embedding model's are, whatever `tokenizer`
 * (which counts text) says; a chat model's, its tokenizer's.
 */
export function tokenDecoder(model: Pick<ModelConfig, "kind" | "tokenizer">): (tokens: number[]) => string | null {
  return getEncoder(model.kind === "embedding" ? "cl100k_base" : model.tokenizer).decode;
}
