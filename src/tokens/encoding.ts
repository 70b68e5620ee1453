import { get_encoding, type Tiktoken } from "tiktoken";
import type { ModelConfig } from "../config/schema.js";

export type Encoding = ModelConfig["tokenizer"];

// Building a WASM encoder costs ~0.25 s, so each is built on first use and kept for the life of
// the process (never freed: a freed encoder still referenced by an in-flight count would crash).
const encoders = new Map<Encoding, Tiktoken>();

export function getEncoder(encoding: Encoding): Tiktoken {
  let encoder = encoders.get(encoding);
  if (encoder === undefined) {
    encoder = get_encoding(encoding);
    encoders.set(encoding, encoder);
  }
  return encoder;
}
