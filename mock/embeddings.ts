import { promptTokens } from "./content.js";
import { sendJson } from "./errors.js";
import { arr, field, str } from "./json.js";
import type { Route } from "./route.js";

export const EMBEDDING_DIMENSIONS = 8;

/** The inputs as strings: token-id arrays are stringified so they still hash deterministically. */
function inputs(body: unknown): string[] {
  const input = field(body, "input");
  if (typeof input === "string") return [input];
  const list = arr(input);
  // A flat number array is ONE tokenised input, not many.
  if (list.length > 0 && list.every((x) => typeof x === "number")) return [JSON.stringify(list)];
  return list.map((x) => (typeof x === "string" ? x : JSON.stringify(x)));
}

/** POST /v1/embeddings: deterministic unit vectors derived from each input's text. */
export const embeddingsRoute: Route = {
  inspect(body) {
    const all = inputs(body);
    return {
      lastUserText: all[all.length - 1] ?? "",
      promptChars: all.reduce((n, s) => n + s.length, 0),
      stream: false,
    };
  },
  handle(ctx, info) {
    const dimsField = field(ctx.body, "dimensions");
    const dims = typeof dimsField === "number" && dimsField > 0 && dimsField <= 4096 ? Math.floor(dimsField) : EMBEDDING_DIMENSIONS;
    const base64 = field(ctx.body, "encoding_format") === "base64";
    const data = inputs(ctx.body).map((text, index) => {
      const vector = embed(text, dims);
      return { object: "embedding", index, embedding: base64 ? toBase64(vector) : Array.from(vector) };
    });
    const tokens = ctx.directives.noUsage ? undefined : promptTokens(info.promptChars);
    sendJson(
      ctx.res,
      200,
      {
        object: "list",
        data,
        model: str(field(ctx.body, "model")) ?? "text-embedding-3-small",
        ...(tokens === undefined ? {} : { usage: { prompt_tokens: tokens, total_tokens: tokens } }),
      },
      { "x-request-id": `req_mock_${ctx.seq}` },
    );
  },
};

/**
 * FNV-1a seed + xorshift, L2-normalised like OpenAI's vectors. Float32 storage
 * makes the float and base64 encodings of the same input decode identically.
 */
export function embed(text: string, dims: number): Float32Array {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  const v = new Float32Array(dims);
  let x = h >>> 0 || 1;
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const val = ((x >>> 0) / 0xffffffff) * 2 - 1;
    v[i] = val;
    norm += val * val;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 1;
  for (let i = 0; i < dims; i++) v[i] = (v[i] ?? 0) * scale;
  return v;
}

function toBase64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
}
