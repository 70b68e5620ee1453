import type { ModelConfig } from "../config/schema.js";
import { GatewayError } from "../http/errors.js";
import type { CallAction } from "../policy/types.js";
import { inputCostMicros, type ModelPrices, maxOutputTokensWithin, microsToUsd, worstCaseMicros } from "../pricing/index.js";
import { countChatInput, countEmbeddingsInput, countResponsesInput, inputByteUpperBound } from "../tokens/index.js";
import type { LimitPlan } from "../limits/plan.js";
import { isRecord } from "../util/is-record.js";

/** The call's worst case, after the per-call cap's clamp. */
export interface Estimate {
  inputTokens: number;
  /** Answers the call asks for (chat `n`); the worst case is each using the whole output limit. */
  choices: number;
  /** The output-limit field the request used (or the model's default one); null for embeddings. */
  outputParam: string | null;
  /** The output limit the request asked for, or null when it set none. */
  requestedOutput: number | null;
  /** The output limit of one answer. */
  outputTokens: number;
  /** The input's cost, not rounded (see `ReserveRequest.inputMicros`). */
  inputMicros: number;
  worstMicros: number;
  /** Input tokens were bounded from bytes, not counted: only when that proves the call far from every cap. */
  approximate: boolean;
}

export function outputParamFor(action: CallAction, body: Record<string, unknown>, model: ModelConfig): string | null {
  if (action === "embeddings") return null;
  if (action === "responses") return "max_output_tokens";
  if (typeof body.max_completion_tokens === "number") return "max_completion_tokens";
  if (typeof body.max_tokens === "number") return "max_tokens";
  return model.output_limit_param;
}

/** Chat's two output-limit fields: a request may set both, and an upstream may honour either. */
export const CHAT_LIMIT_FIELDS = ["max_completion_tokens", "max_tokens"] as const;

/**
 * The output-limit field, the limit the request asked for (null: none; the larger where a chat
 * request set both fields), the limit that applies, and how many answers it applies to.
 */
export function outputLimit(
  action: CallAction,
  body: Record<string, unknown>,
  model: ModelConfig,
): Pick<Estimate, "outputParam" | "requestedOutput" | "outputTokens" | "choices"> {
  const outputParam = outputParamFor(action, body, model);
  let requestedOutput: number | null = null;
  if (action === "chat.completions") {
    for (const field of CHAT_LIMIT_FIELDS) {
      const asked = body[field];
      if (typeof asked === "number") requestedOutput = Math.max(requestedOutput ?? asked, asked);
    }
  } else if (outputParam !== null && typeof body[outputParam] === "number") {
    requestedOutput = body[outputParam] as number;
  }
  const n = body.n;
  const choices = action === "chat.completions" && typeof n === "number" && Number.isInteger(n) && n > 1 ? n : 1;
  return { outputParam, requestedOutput, outputTokens: outputParam === null ? 0 : (requestedOutput ?? model.max_output_tokens), choices };
}

/**
 * Lowers the request's output limit to `outputTokens`: the field the estimate named (set where the
 * request had none), and for chat each limit field the request set higher, so no field the upstream
 * reads allows more; a field the request set lower stays as it is (a clamp never raises a limit).
 */
export function applyOutputLimit(action: CallAction, body: Record<string, unknown>, outputParam: string, outputTokens: number): void {
  const fields = action === "chat.completions" ? CHAT_LIMIT_FIELDS : [outputParam];
  for (const field of fields) {
    const asked = body[field];
    if (typeof asked === "number" && asked > outputTokens) body[field] = outputTokens;
  }
  if (typeof body[outputParam] !== "number") body[outputParam] = outputTokens;
}

export function countInput(action: CallAction, body: Record<string, unknown>, model: ModelConfig): number {
  switch (action) {
    case "chat.completions":
      return countChatInput(body, model.tokenizer);
    case "responses":
      return countResponsesInput(body, model.tokenizer);
    case "embeddings":
      return countEmbeddingsInput(body, model.tokenizer);
  }
}

const usd = (micros: number): string => `$${microsToUsd(micros).toFixed(6)}`;

/** A Responses call the upstream adds stored context to, which the request does not carry: an earlier response, a conversation, a stored prompt. */
function continuesStoredContext(action: CallAction, body: Record<string, unknown>): boolean {
  if (action !== "responses") return false;
  const given = (value: unknown): boolean => value !== undefined && value !== null && value !== "";
  return given(body.previous_response_id) || given(body.conversation) || (isRecord(body.prompt) && given(body.prompt.id));
}

/**
 * Counts the input (or bounds it from bytes when exact counting cannot change any outcome), and
 * clamps the output limit so the worst case fits the per-call cap, or refuses with
 * `cost_cap_exceeded` when the cap cannot be met with at least `min_output_tokens`.
 */
export function estimateCall(
  action: CallAction,
  body: Record<string, unknown>,
  model: ModelConfig,
  prices: ModelPrices,
  plan: LimitPlan,
  exactNeeded: boolean,
): Estimate {
  const { outputParam, requestedOutput, outputTokens, choices } = outputLimit(action, body, model);
  const cap = plan.perCallCapMicros;

  let approximate = false;
  let inputTokens: number;
  const bound = exactNeeded ? null : inputByteUpperBound(body, action === "chat.completions" ? "chat" : action);
  if (bound !== null && (cap === null || worstCaseMicros(bound, outputTokens * choices, prices) <= cap)) {
    inputTokens = bound;
    approximate = true;
  } else {
    inputTokens = countInput(action, body, model);
  }
  if (model.context_window !== null && continuesStoredContext(action, body)) inputTokens = Math.max(inputTokens, model.context_window);

  let output = outputTokens;
  let worst = worstCaseMicros(inputTokens, output * choices, prices);
  if (cap !== null && worst > cap) {
    const fittingAll = outputParam === null ? -1 : maxOutputTokensWithin(cap, inputTokens, prices);
    const fitting = fittingAll === null ? null : Math.floor(fittingAll / choices);
    const least = Math.min(plan.minOutputTokens, output);
    if (!plan.clamp || fitting === null || fitting < least) {
      // Clamping stops at min_output_tokens: the message prices the call there, what clamping could not go below.
      const each = choices > 1 ? ` per answer × ${choices}` : "";
      // No output to clamp (embeddings): the input alone is over the cap.
      if (outputParam === null) {
        throw new GatewayError(400, "cost_cap_exceeded", `estimated cost ${usd(worst)} of the input (${inputTokens} tokens) exceeds the per-call cap of ${usd(cap)}`, {
          param: "input",
        });
      }
      const why = plan.clamp
        ? `estimated worst-case cost ${usd(worstCaseMicros(inputTokens, least * choices, prices))} with the least output clamping allows (${least} tokens${each}) exceeds the per-call cap of ${usd(cap)}`
        : `estimated worst-case cost ${usd(worst)} (${output} output tokens${each}) exceeds the per-call cap of ${usd(cap)}`;
      throw new GatewayError(400, "cost_cap_exceeded", why, { param: outputParam });
    }
    output = Math.min(output, fitting);
    worst = worstCaseMicros(inputTokens, output * choices, prices);
  }
  return {
    inputTokens,
    choices,
    outputParam,
    requestedOutput,
    outputTokens: output,
    inputMicros: inputCostMicros(inputTokens, prices),
    worstMicros: worst,
    approximate,
  };
}
