import { type PiiType, redactPii } from "../pii/index.js";
import { isRecord } from "../util/is-record.js";

type Detectors = readonly PiiType[];
type Json = Record<string, unknown>;

function redactContent(content: unknown, detectors: Detectors): unknown {
  if (typeof content === "string") return redactPii(content, detectors);
  if (!Array.isArray(content)) return content;
  return content.map((part) => (isRecord(part) ? redactStrings(part, ["text", "refusal"], detectors) : part));
}

/**
 * Tool-call arguments: masked as written, unless escapes (`\u0040`) hide what the detectors would
 * find; then the JSON is decoded, its strings masked, and written again.
 */
function redactArguments(args: string, detectors: Detectors): string {
  const masked = redactPii(args, detectors);
  if (!args.includes("\\")) return masked;
  try {
    const parsed: unknown = JSON.parse(args);
    const decoded = JSON.stringify(parsed);
    const redacted = JSON.stringify(parsed, (_key, value: unknown) => (typeof value === "string" ? redactPii(value, detectors) : value));
    return redacted === decoded ? masked : redacted;
  } catch {
    // Not JSON, or nested past what the serialiser takes: the text as written is all there is.
    return masked;
  }
}

/** A copy of `record` with each named member that is a string masked (by `mask`); the others kept as they are. */
function redactStrings(record: Json, names: readonly string[], detectors: Detectors, mask: (text: string, detectors: Detectors) => string = redactPii): Json {
  let out = record;
  for (const name of names) {
    const value = record[name];
    if (typeof value === "string") {
      if (out === record) out = { ...record };
      out[name] = mask(value, detectors);
    }
  }
  return out;
}

/** A chat tool call: a function's arguments, or a custom tool's input. */
function redactToolCall(call: unknown, detectors: Detectors): unknown {
  if (!isRecord(call)) return call;
  let out = call;
  if (isRecord(call.function)) out = { ...out, function: redactStrings(call.function, ["arguments"], detectors, redactArguments) };
  if (isRecord(call.custom)) out = { ...out, custom: redactStrings(call.custom, ["input"], detectors) };
  return out;
}

function redactMessage(message: unknown, detectors: Detectors): unknown {
  if (!isRecord(message)) return message;
  const out = redactStrings({ ...message, content: redactContent(message.content, detectors) }, ["refusal"], detectors);
  if (message.content === undefined) delete out.content;
  if (isRecord(message.function_call)) out.function_call = redactStrings(message.function_call, ["arguments"], detectors, redactArguments);
  if (Array.isArray(message.tool_calls)) out.tool_calls = message.tool_calls.map((call: unknown) => redactToolCall(call, detectors));
  return out;
}

/** A responses input item: its content, a tool call's arguments or input, a tool's output. */
function redactInputItem(item: unknown, detectors: Detectors): unknown {
  if (typeof item === "string") return redactPii(item, detectors);
  if (!isRecord(item)) return item;
  const out = { ...redactStrings(redactStrings(item, ["arguments"], detectors, redactArguments), ["input"], detectors) };
  if ("content" in item) out.content = redactContent(item.content, detectors);
  if ("output" in item) out.output = redactContent(item.output, detectors);
  return out;
}

/**
 * `pii.redact: true`: masks what the detectors find in the prompt before it leaves for the upstream:
 * the same text `prompt_text` holds (see `promptParts`).
 */
export function redactRequestBody(body: Json, detectors: Detectors): void {
  if (Array.isArray(body.messages)) body.messages = body.messages.map((message: unknown) => redactMessage(message, detectors));
  if (typeof body.instructions === "string") body.instructions = redactPii(body.instructions, detectors);
  if (typeof body.input === "string") body.input = redactPii(body.input, detectors);
  else if (Array.isArray(body.input)) body.input = body.input.map((item: unknown) => redactInputItem(item, detectors));
}
