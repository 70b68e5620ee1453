import type { Encoding } from "./encoding.js";
import { isRecord } from "../util/is-record.js";
import { measureJson, measureString } from "./json-shape.js";
import { type Measure, REPLY_PRIMING, TOKENS_PER_MESSAGE, TOKENS_PER_NAME, tokenMeasure } from "./measure.js";
import { measureContent } from "./parts.js";

/** Input tokens of a /v1/chat/completions body; whatever is malformed is skipped, never thrown on. */
export function countChatInput(body: unknown, encoding: Encoding): number {
  return measureChat(body, tokenMeasure(encoding));
}

export function measureChat(body: unknown, measure: Measure): number {
  if (!isRecord(body)) return 0;
  // A structured answer's schema is put before the model as prompt too.
  let total = measureJson(body.tools, measure) + measureJson(body.functions, measure) + measureJson(body.response_format, measure);
  if (Array.isArray(body.messages)) {
    for (const message of body.messages) total += measureMessage(message, measure);
    total += REPLY_PRIMING;
  }
  return total;
}

function measureMessage(message: unknown, measure: Measure): number {
  let total = TOKENS_PER_MESSAGE;
  if (!isRecord(message)) return total;
  total += measureString(message.role, measure);
  total += measureContent(message.content, measure);
  total += measureString(message.refusal, measure);
  total += measureString(message.tool_call_id, measure);
  if (typeof message.name === "string") total += measure(message.name) + TOKENS_PER_NAME;
  total += measureFunctionCall(message.function_call, measure);
  if (Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls) {
      if (isRecord(call)) total += measureFunctionCall(call.function, measure);
    }
  }
  return total;
}

function measureFunctionCall(call: unknown, measure: Measure): number {
  if (!isRecord(call)) return 0;
  return measureString(call.name, measure) + measureString(call.arguments, measure);
}
