import { type PromptVisitor, type TokenDecoder, walkPromptText } from "../openai/prompt-walk.js";
import { isRecord } from "../util/is-record.js";

/**
 * The text a request sends the model, for PII detection and the `prompt_text` attribute (what
 * `walkPromptText` visits; an embeddings token array through `decode`), joined with newlines.
 */
export function extractPromptText(body: unknown, decode?: TokenDecoder): string {
  return promptParts(body, decode).join("\n");
}

/** The pieces `extractPromptText` joins, in order; a tool call's arguments with the strings their escapes hide. */
export function promptParts(body: unknown, decode?: TokenDecoder): string[] {
  const texts: string[] = [];
  if (!isRecord(body)) return texts;
  sink = texts;
  try {
    walkPromptText(body, COLLECT, decode);
  } finally {
    sink = [];
  }
  return texts;
}

/** Where `COLLECT` puts what it sees: one visitor for every call (a walk is synchronous). */
let sink: string[] = [];

const COLLECT: PromptVisitor = {
  text: (text) => {
    sink.push(text);
    return text;
  },
  json: (args) => {
    collectArguments(args, sink);
    return args;
  },
};

/**
 * A tool call's arguments: JSON text as the model wrote it, and where it holds escapes (`\u0040` for
 * `@`), the strings it decodes to as well, so no escape hides a value from the rules and the PII scan.
 */
function collectArguments(args: string, texts: string[]): void {
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
