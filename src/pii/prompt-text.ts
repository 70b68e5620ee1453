import { isRecord } from "../util/is-record.js";

/**
 * The text a request sends the model, for PII detection and the `prompt_text` attribute: a chat
 * body's messages (contents as strings and text parts, refusals, and the arguments of the tool
 * calls earlier answers made), a responses body's `instructions` and `input` (a string, or its
 * items' text content, tool calls' arguments and tool outputs), or an embeddings `input` (strings;
 * token arrays have no text). Joined with newlines; malformed parts are skipped.
 */
export function extractPromptText(body: unknown): string {
  return promptParts(body).join("\n");
}

/** The pieces `extractPromptText` joins, in order. */
export function promptParts(body: unknown): string[] {
  const texts: string[] = [];
  if (!isRecord(body)) return texts;
  if (Array.isArray(body.messages)) {
    for (const message of body.messages) {
      if (!isRecord(message)) continue;
      collectContent(message.content, texts);
      if (typeof message.refusal === "string") texts.push(message.refusal);
      if (isRecord(message.function_call)) collectArguments(message.function_call.arguments, texts);
      if (Array.isArray(message.tool_calls)) {
        for (const call of message.tool_calls) {
          if (!isRecord(call)) continue;
          if (isRecord(call.function)) collectArguments(call.function.arguments, texts);
          if (isRecord(call.custom) && typeof call.custom.input === "string") texts.push(call.custom.input);
        }
      }
    }
  }
  if (typeof body.instructions === "string") texts.push(body.instructions);
  if (typeof body.input === "string") texts.push(body.input);
  else if (Array.isArray(body.input)) {
    for (const item of body.input) {
      if (typeof item === "string") texts.push(item);
      else if (isRecord(item)) {
        collectContent(item.content, texts);
        collectContent(item.output, texts);
        collectArguments(item.arguments, texts);
        // A custom tool's call carries its free-form input as a string.
        if (typeof item.input === "string") texts.push(item.input);
      }
    }
  }
  return texts;
}

function collectContent(content: unknown, texts: string[]): void {
  if (typeof content === "string") {
    texts.push(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (!isRecord(part)) continue;
    if (typeof part.text === "string") texts.push(part.text);
    if (typeof part.refusal === "string") texts.push(part.refusal);
  }
}

/**
 * A tool call's arguments: JSON text as the model wrote it, and where it holds escapes (`\u0040` for
 * `@`), the strings it decodes to as well, so no escape hides a value from the rules and the PII scan.
 */
function collectArguments(args: unknown, texts: string[]): void {
  if (typeof args !== "string") return;
  texts.push(args);
  if (!args.includes("\\")) return;
  try {
    collectStrings(JSON.parse(args), texts);
  } catch {
    // Not JSON: the text as written is all there is.
  }
}

/** The strings in a parsed JSON value, in document order; a loop, not recursion: arguments are the model's or client's, of any depth. */
function collectStrings(root: unknown, texts: string[]): void {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === "string") texts.push(value);
    else if (Array.isArray(value)) for (let i = value.length - 1; i >= 0; i--) pending.push(value[i]);
    else if (isRecord(value)) {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) pending.push(value[keys[i] as string]);
    }
  }
}
