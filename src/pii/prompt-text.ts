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
      collectArguments(message.function_call, texts);
      if (Array.isArray(message.tool_calls)) {
        for (const call of message.tool_calls) {
          if (!isRecord(call)) continue;
          collectArguments(call.function, texts);
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
        if (typeof item.arguments === "string") texts.push(item.arguments);
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
    if (isRecord(part) && typeof part.text === "string") texts.push(part.text);
  }
}

/** A chat tool call's `function` (or a legacy `function_call`): its arguments string. */
function collectArguments(fn: unknown, texts: string[]): void {
  if (isRecord(fn) && typeof fn.arguments === "string") texts.push(fn.arguments);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
