import { type PiiType, redactPii } from "../pii/index.js";
import { type PromptVisitor, walkPromptText } from "../openai/prompt-walk.js";

type Detectors = readonly PiiType[];
type Json = Record<string, unknown>;

/**
 * Tool-call arguments: masked as written, unless escapes (`\u0040`) hide what the mask would find,
 * or masking in the text's compatibility form changed its JSON (a fullwidth quote made ASCII);
 * then the JSON is decoded, its strings masked, and written again.
 */
function maskArguments(args: string, mask: (text: string) => string): string {
  const masked = mask(args);
  if (!args.includes("\\") && (masked === args || isJson(masked) || !isJson(args))) return masked;
  try {
    const parsed: unknown = JSON.parse(args);
    const decoded = JSON.stringify(parsed);
    const redacted = JSON.stringify(parsed, (_key, value: unknown) => (typeof value === "string" ? mask(value) : value));
    return redacted === decoded ? masked : redacted;
  } catch {
    // Not JSON, or nested past what the serialiser takes: the text as written is all there is.
    return masked;
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * `pii.redact: true`: masks what the detectors find in the prompt before it leaves for the upstream:
 * the same text `prompt_text` holds (`walkPromptText`; embeddings token arrays go as sent). Returns
 * the body's top-level members it changed.
 */
export function redactRequestBody(body: Json, detectors: Detectors): string[] {
  let visitor = redactors.get(detectors);
  if (visitor === undefined) {
    visitor = maskingVisitor((text) => redactPii(text, detectors));
    redactors.set(detectors, visitor);
  }
  return walkPromptText(body, visitor);
}

/**
 * Masks the prompt text of `body` in place with `mask`, where the model reads it (text parts joined,
 * inline text files decoded, arguments behind escapes): what an audit body keeps of the prompt.
 */
export function maskPromptText(body: Json, mask: (text: string) => string): void {
  walkPromptText(body, maskingVisitor(mask));
}

function maskingVisitor(mask: (text: string) => string): PromptVisitor {
  return { text: mask, json: (args) => maskArguments(args, mask) };
}

/** One redacting visitor per detector list (one per config), so the walk behind it is built once, not per call. */
const redactors = new WeakMap<Detectors, PromptVisitor>();
