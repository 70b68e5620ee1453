/**
 * The text a request sends the model, for PII detection and the `prompt_text` attribute: a chat
 * body's message contents (strings and text parts), a responses body's `instructions` and
 * `input` (a string, or its items' text content and tool outputs), or an embeddings `input`
 * (strings; token arrays have no text). Joined with newlines; malformed parts are skipped.
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
      if (isRecord(message)) collectContent(message.content, texts);
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
