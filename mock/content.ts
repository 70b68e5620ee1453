import type { Directives } from "./directives.js";

export const DEFAULT_REPLY = "Hello! This is the mock upstream answering your request.";

// A fixed vocabulary keeps `tokens:N` output deterministic and easy to eyeball.
const WORDS = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit"];

export function generateWords(n: number): string {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = WORDS[i % WORDS.length] ?? "lorem";
  return out.join(" ");
}

/** The assistant text a request is directed to produce. */
export function replyText(d: Directives, lastUserText: string): string {
  if (d.say !== undefined) return d.say;
  if (d.tokens !== undefined) return generateWords(d.tokens);
  if (d.echoPrompt) return lastUserText;
  return DEFAULT_REPLY;
}

/** Usage convention shared by every route: ~4 chars per prompt token, never 0. */
export function promptTokens(chars: number): number {
  return Math.max(1, Math.ceil(chars / 4));
}

/** Completion tokens are words, so `tokens:N` yields exactly N. */
export function countWords(text: string): number {
  let n = 0;
  for (const w of text.split(/\s+/)) if (w !== "") n++;
  return n;
}

/** Tool-call output has no words; charge by argument size so it is still non-zero. */
export function toolCallTokens(calls: ReadonlyArray<{ name: string; arguments: string }>): number {
  let n = 0;
  for (const c of calls) n += 1 + Math.ceil(c.arguments.length / 4);
  return n;
}

/**
 * Splits text into at most `n` pieces whose concatenation is exactly `text`.
 * Word boundaries are preferred so deltas look like real token streams; falls
 * back to code points when there are fewer words than pieces.
 */
export function splitContent(text: string, n: number): string[] {
  if (n <= 1 || text === "") return [text];
  const words = text.split(/(?<=\s)(?=\S)/);
  const units = words.length >= n ? words : Array.from(text);
  const count = Math.min(n, units.length);
  const pieces: string[] = [];
  for (let i = 0; i < count; i++) {
    const from = Math.floor((i * units.length) / count);
    const to = Math.floor(((i + 1) * units.length) / count);
    pieces.push(units.slice(from, to).join(""));
  }
  return pieces;
}

/** Streamable answer text, addressable piece by piece. */
export interface ContentSource {
  count: number;
  piece(i: number): string;
  /** Completion tokens (words). */
  words: number;
  full(): string;
  /** The request's output limit cut the answer short, as a real model stops at `max_tokens`. */
  truncated: boolean;
}

/** The output limit a request sets (`max_completion_tokens`, `max_tokens` or `max_output_tokens`), if any. */
export function outputLimit(body: unknown): number | null {
  const fields = body !== null && typeof body === "object" ? (body as Record<string, unknown>) : {};
  for (const name of ["max_completion_tokens", "max_tokens", "max_output_tokens"]) {
    const value = fields[name];
    if (typeof value === "number" && Number.isInteger(value) && value >= 0) return value;
  }
  return null;
}

export function contentSource(d: Directives, lastUserText: string, chunks: number, limit: number | null = null): ContentSource {
  if (d.say === undefined && d.tokens !== undefined) {
    const words = limit === null ? d.tokens : Math.min(d.tokens, limit);
    return { ...generatedSource(words, chunks), truncated: words < d.tokens };
  }
  const whole = replyText(d, lastUserText);
  const text = limit === null ? whole : firstWords(whole, limit);
  const pieces = splitContent(text, chunks);
  return { count: pieces.length, piece: (i) => pieces[i] ?? "", words: countWords(text), full: () => text, truncated: text !== whole };
}

/** The text up to the end of its `n`-th word. */
function firstWords(text: string, n: number): string {
  if (n === 0) return "";
  const words = /\S+/g;
  let seen = 0;
  for (let match = words.exec(text); match !== null; match = words.exec(text)) {
    if (++seen === n) return text.slice(0, match.index + match[0].length);
  }
  return text;
}

/**
 * `tokens:N` answers are computed per piece instead of materialised, so a
 * `tokens:1000 chunks:1000` stream held open for minutes costs almost nothing.
 * Same split as splitContent() on the generated text.
 */
function generatedSource(n: number, chunks: number): Omit<ContentSource, "truncated"> {
  if (n === 0) return { count: 1, piece: () => "", words: 0, full: () => "" };
  const count = Math.max(1, Math.min(chunks, n));
  return {
    count,
    words: n,
    full: () => generateWords(n),
    piece(i) {
      let out = "";
      const to = Math.floor(((i + 1) * n) / count);
      for (let w = Math.floor((i * n) / count); w < to; w++) {
        out += (WORDS[w % WORDS.length] ?? "lorem") + (w < n - 1 ? " " : "");
      }
      return out;
    },
  };
}
