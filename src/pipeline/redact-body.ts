import type { Config } from "../config/schema.js";
import { redactPii } from "../pii/index.js";

type Detectors = Config["pii"]["detectors"];

function redactContent(content: unknown, detectors: Detectors): unknown {
  if (typeof content === "string") return redactPii(content, detectors);
  if (!Array.isArray(content)) return content;
  return content.map((part) => {
    if (part !== null && typeof part === "object" && typeof (part as { text?: unknown }).text === "string") {
      return { ...part, text: redactPii((part as { text: string }).text, detectors) };
    }
    return part;
  });
}

/** `pii.redact: true`: masks what the detectors find in the prompt before it leaves for the upstream. */
export function redactRequestBody(body: Record<string, unknown>, detectors: Detectors): void {
  if (Array.isArray(body.messages)) {
    body.messages = body.messages.map((message: unknown) =>
      message !== null && typeof message === "object" ? { ...message, content: redactContent((message as { content?: unknown }).content, detectors) } : message,
    );
  }
  if (typeof body.instructions === "string") body.instructions = redactPii(body.instructions, detectors);
  if (typeof body.input === "string") body.input = redactPii(body.input, detectors);
  else if (Array.isArray(body.input)) {
    body.input = body.input.map((item: unknown) => {
      if (typeof item === "string") return redactPii(item, detectors);
      if (item !== null && typeof item === "object" && "content" in item) {
        return { ...item, content: redactContent((item as { content?: unknown }).content, detectors) };
      }
      return item;
    });
  }
}
