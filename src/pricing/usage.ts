import { isRecord } from "../util/is-record.js";

/** Tokens of one call; `cached_input_tokens` is the part of `input_tokens` served from cache. */
export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
}

/**
 * Normalises the `usage` of a chat completion (`prompt_tokens`, `completion_tokens`,
 * `prompt_tokens_details.cached_tokens`), a response (`input_tokens`, `output_tokens`,
 * `input_tokens_details.cached_tokens`) or an embedding (`prompt_tokens` only). Accepts the usage
 * object or the whole body holding it; null when neither has token counts.
 */
export function usageFromOpenAI(json: unknown): Usage | null {
  const usage = isRecord(json) && isRecord(json.usage) ? json.usage : json;
  if (!isRecord(usage)) return null;
  const input = count(usage.prompt_tokens) ?? count(usage.input_tokens);
  const output = count(usage.completion_tokens) ?? count(usage.output_tokens);
  if (input === undefined && output === undefined) return null;
  const cached = count(detail(usage.prompt_tokens_details)) ?? count(detail(usage.input_tokens_details)) ?? 0;
  const inputTokens = input ?? 0;
  return { input_tokens: inputTokens, output_tokens: output ?? 0, cached_input_tokens: Math.min(cached, inputTokens) };
}

function detail(details: unknown): unknown {
  return isRecord(details) ? details.cached_tokens : undefined;
}

function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}
