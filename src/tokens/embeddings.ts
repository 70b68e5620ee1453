import type { Encoding } from "./encoding.js";
import { isRecord } from "../util/is-record.js";
import { type Measure, tokenMeasure } from "./measure.js";

/** Input tokens of a /v1/embeddings body: strings are encoded, token arrays counted by length. */
export function countEmbeddingsInput(body: unknown, encoding: Encoding): number {
  return measureEmbeddings(body, tokenMeasure(encoding));
}

export function measureEmbeddings(body: unknown, measure: Measure): number {
  if (!isRecord(body)) return 0;
  const input = body.input;
  if (typeof input === "string") return measure(input);
  if (!Array.isArray(input)) return 0;
  let total = 0;
  for (const element of input) {
    if (typeof element === "string") total += measure(element);
    else if (typeof element === "number") total += 1;
    else if (Array.isArray(element)) total += element.length;
  }
  return total;
}
