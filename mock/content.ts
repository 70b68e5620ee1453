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
}

export function contentSource(d: Directives, lastUserText: string, chunks: number): ContentSource {
  if (d.say === undefined && d.tokens !== undefined) return generatedSource(d.tokens, chunks);
  const text = replyText(d, lastUserText);
  const pieces = splitContent(text, chunks);
  return { count: pieces.length, piece: (i) => pieces[i] ?? "", words: countWords(text), full: () => text };
}

/**
 * `tokens:N` answers are computed per piece instead of materialised, so a
 * `tokens:1000 chunks:1000` stream held open for minutes costs almost nothing.
 * Same split as splitContent() on the generated text.
 */
function generatedSource(n: number, chunks: number): ContentSource {
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
