import type { TokenDecoder } from "../openai/prompt-walk.js";
import { INVISIBLE } from "../util/invisible.js";
import { TextCache } from "../util/text-cache.js";
import { promptParts } from "./prompt-text.js";
import { findPiiSpans } from "./scan.js";
import type { PiiType } from "./types.js";

export interface PiiDetection {
  /** Sorted, unique. */
  types: PiiType[];
  classification: "pii" | "none";
}

/** The PII types found in `text`. */
export function detectPii(text: string, detectors: readonly PiiType[]): PiiDetection {
  return detection(typesIn(text, detectors));
}

function detection(found: Iterable<PiiType>): PiiDetection {
  const types = [...new Set(found)].sort();
  return { types, classification: types.length > 0 ? "pii" : "none" };
}

/**
 * The PII types in `text`, and in its compatibility form (NFKC, invisible characters removed) where
 * that differs: a fullwidth `＠`, a no-break space or a zero-width space inside a number must not
 * hide it from the rules. ASCII text is its own form, so most text is scanned once.
 */
function typesIn(text: string, detectors: readonly PiiType[]): PiiType[] {
  const found = findPiiSpans(text, detectors).map((span) => span.type);
  if (!NON_ASCII.test(text)) return found;
  const plain = compatibilityForm(text);
  return plain === text ? found : [...found, ...findPiiSpans(plain, detectors).map((span) => span.type)];
}

/**
 * The text's compatibility form (NFKD, recomposed), without the characters that render as nothing
 * and without marks (an accent on a digit or a letter of an address only disguises it: `exá`), with
 * every dash as `-` and every script's decimal digits as ASCII ones (`٤١١١`): the form a reader, or
 * a model, takes the text in, seen as plainly as it can be.
 */
function compatibilityForm(text: string): string {
  return text.normalize("NFKD").replace(INVISIBLE, "").replace(MARKS, "").replace(DASHES, "-").replace(DIGITS, asciiDigit).normalize("NFC");
}

const MARKS = /\p{M}/gu;

/** Every dash (en, em, non-breaking hyphen, minus...) as the ASCII hyphen: `219–09–9999` is an SSN to its reader. */
const DASHES = /[\p{Pd}\u2212]/gu;

/** Decimal digits of other scripts (NFKC leaves them as they are; fullwidth ones it maps itself). */
const DIGITS = /[^\x00-\x7f]/gu;

/** A decimal digit's ASCII form: every script's digits run zero to nine in consecutive code points. */
function asciiDigit(char: string): string {
  if (!DECIMAL.test(char)) return char;
  const code = char.codePointAt(0) as number;
  let zero = code;
  // A run longer than ten (adjacent blocks: Pa-O then Eastern Pwo Karen) is read in tens from its
  // start, which may be more than nine code points back; no run of digits NFKD leaves is near 100 long.
  while (zero > code - 100 && DECIMAL.test(String.fromCodePoint(zero - 1))) zero--;
  return String((code - zero) % 10);
}

const DECIMAL = /^\p{Nd}$/u;

/**
 * The text and, where it differs, its compatibility form after it: what `prompt_text` rules match,
 * so `ignore\u200b previous` cannot pass a rule on "ignore previous".
 */
export function withCompatibilityForm(text: string): string {
  if (!NON_ASCII.test(text)) return text;
  const plain = compatibilityForm(text);
  return plain === text ? text : `${text}\n${plain}`;
}

const NON_ASCII = /[^\x00-\x7f]/;


/** Per detector list (one per config): the types found in recent prompt pieces, scanned whole. */
const piecesSeen = new WeakMap<readonly PiiType[], TextCache<PiiType[]>>();

/**
 * `detectPii` of the pieces joined with newlines, piece by piece: a conversation resent on every
 * turn is scanned once per piece, not once per call. A match can no longer span two pieces, which
 * only joined-up fragments of separate messages could form.
 */
export function detectPiiInParts(parts: readonly string[], detectors: readonly PiiType[]): PiiDetection {
  let seen = piecesSeen.get(detectors);
  if (seen === undefined) {
    seen = new TextCache(4096, 4 * 1024 * 1024);
    piecesSeen.set(detectors, seen);
  }
  const found: PiiType[] = [];
  for (const part of parts) found.push(...seen.valueOf(part, (text) => typesIn(text, detectors)));
  return detection(found);
}

/**
 * A body's prompt facts, each worked out at most once and only when asked for. The pieces both are
 * made from are let go once both are known: a call's facts last as long as its stream.
 */
export function lazyPrompt(body: () => unknown, detectors: readonly PiiType[], decode?: TokenDecoder): { text: () => string; pii: () => PiiDetection } {
  let parts: string[] | null = null;
  let text: string | null = null;
  let pii: PiiDetection | null = null;
  const partsOf = (): string[] => {
    parts ??= promptParts(body(), decode);
    return parts;
  };
  return {
    text: () => {
      text ??= withCompatibilityForm(partsOf().join("\n"));
      if (pii !== null) parts = null;
      return text;
    },
    pii: () => {
      pii ??= detectPiiInParts(partsOf(), detectors);
      if (text !== null) parts = null;
      return pii;
    },
  };
}

/**
 * `text` with each match replaced by `[REDACTED:<type>]`. PII that only the compatibility form shows
 * (a fullwidth `＠`, a zero-width space inside a number), which the scan flags, is masked too: the
 * text then goes on in that form.
 */
export function redactPii(text: string, detectors: readonly PiiType[]): string {
  const masked = maskSpans(text, detectors);
  if (!NON_ASCII.test(masked)) return masked;
  const plain = compatibilityForm(masked);
  return plain !== masked && findPiiSpans(plain, detectors).length > 0 ? maskSpans(plain, detectors) : masked;
}

function maskSpans(text: string, detectors: readonly PiiType[]): string {
  const pieces: string[] = [];
  let cursor = 0;
  for (const span of findPiiSpans(text, detectors)) {
    pieces.push(text.slice(cursor, span.start), `[REDACTED:${span.type}]`);
    cursor = span.end;
  }
  pieces.push(text.slice(cursor));
  return pieces.join("");
}
