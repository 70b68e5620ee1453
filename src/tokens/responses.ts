import type { Encoding } from "./encoding.js";
import { isRecord } from "../util/is-record.js";
import { measureJson, measureString } from "./json-shape.js";
import { type Measure, REPLY_PRIMING, TOKENS_PER_MESSAGE, tokenMeasure } from "./measure.js";
import { measureContent } from "./parts.js";

/** Input tokens of a /v1/responses body; whatever is malformed is skipped, never thrown on. */
export function countResponsesInput(body: unknown, encoding: Encoding): number {
  return measureResponses(body, tokenMeasure(encoding));
}

// Responses bodies are rendered like chat: instructions as a system message, each input item as
// a message, then the reply priming.
export function measureResponses(body: unknown, measure: Measure): number {
  if (!isRecord(body)) return 0;
  let total = measureJson(body.tools, measure) + (isRecord(body.text) ? measureJson(body.text.format, measure) : 0);
  let items = 0;
  if (typeof body.instructions === "string") {
    total += TOKENS_PER_MESSAGE + measure(body.instructions);
    items++;
  }
  if (typeof body.input === "string") {
    total += TOKENS_PER_MESSAGE + measure(body.input);
    items++;
  } else if (Array.isArray(body.input)) {
    for (const item of body.input) total += measureItem(item, measure);
    items += body.input.length;
  }
  return items > 0 ? total + REPLY_PRIMING : total;
}

function measureItem(item: unknown, measure: Measure): number {
  if (typeof item === "string") return TOKENS_PER_MESSAGE + measure(item);
  if (!isRecord(item)) return TOKENS_PER_MESSAGE;
  // Fields by item type: message (role, content), function_call (name, arguments),
  // function_call_output (output), custom_tool_call (input), reasoning (summary).
  return (
    TOKENS_PER_MESSAGE +
    measureString(item.role, measure) +
    measureContent(item.content, measure) +
    measureString(item.name, measure) +
    measureString(item.arguments, measure) +
    measureString(item.input, measure) +
    measureContent(item.output, measure) +
    measureContent(item.summary, measure)
  );
}
