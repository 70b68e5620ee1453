import { TextCache } from "../util/text-cache.js";
import { promptParts } from "./prompt-text.js";
import { findPiiSpans, PII_SCAN_LIMIT, scannedPrefix } from "./scan.js";
import type { PiiType } from "./types.js";

export interface PiiDetection {
  /** Sorted, unique. */
  types: PiiType[];
  classification: "pii" | "none";
}

/** The PII types found in the first PII_SCAN_LIMIT code units of `text`. */
export function detectPii(text: string, detectors: readonly PiiType[], limit = PII_SCAN_LIMIT): PiiDetection {
  return detection(typesIn(text, detectors, limit));
}

function detection(found: Iterable<PiiType>): PiiDetection {
  const types = [...new Set(found)].sort();
  return { types, classification: types.length > 0 ? "pii" : "none" };
}

function typesIn(text: string, detectors: readonly PiiType[], limit: number): PiiType[] {
  return findPiiSpans(text, detectors, limit).map((span) => span.type);
}

/** Per detector list (one per config): the types found in recent prompt pieces, scanned whole. */
const piecesSeen = new WeakMap<readonly PiiType[], TextCache<PiiType[]>>();

/**
 * `detectPii` of the pieces joined with newlines, piece by piece: a conversation resent on every
 * turn is scanned once per piece, not once per call. The scan limit counts the joined text, so a
 * piece it cuts is scanned in part and not kept. A match can no longer span two pieces, which
 * only joined-up fragments of separate messages could form.
 */
export function detectPiiInParts(parts: readonly string[], detectors: readonly PiiType[], limit = PII_SCAN_LIMIT): PiiDetection {
  let seen = piecesSeen.get(detectors);
  if (seen === undefined) {
    seen = new TextCache(4096, 4 * 1024 * 1024);
    piecesSeen.set(detectors, seen);
  }
  const found: PiiType[] = [];
  let left = limit;
  for (const part of parts) {
    if (left <= 0) break;
    const types = part.length <= left ? seen.valueOf(part, (text) => typesIn(text, detectors, Number.POSITIVE_INFINITY)) : typesIn(part, detectors, left);
    found.push(...types);
    left -= part.length + 1;
  }
  return detection(found);
}

/** A body's prompt facts, each worked out at most once and only when asked for. */
export function lazyPrompt(body: unknown, detectors: readonly PiiType[]): { text: () => string; pii: () => PiiDetection } {
  let parts: string[] | null = null;
  let text: string | null = null;
  let pii: PiiDetection | null = null;
  const partsOf = (): string[] => {
    parts ??= promptParts(body);
    return parts;
  };
  return {
    text: () => {
      text ??= partsOf().join("\n");
      return text;
    },
    pii: () => {
      pii ??= detectPiiInParts(partsOf(), detectors);
      return pii;
    },
  };
}

export interface RedactOptions {
  /**
   * What becomes of text past the scan limit, which may hold PII nobody looked at: `drop`
   * (default) replaces it with `[REDACTED:unscanned]`, failing closed; `keep` leaves it as is.
   */
  unscanned?: "drop" | "keep";
  limit?: number;
}

export const UNSCANNED_MARKER = "[REDACTED:unscanned]";

/** `text` with each match replaced by `[REDACTED:<type>]`. */
export function redactPii(text: string, detectors: readonly PiiType[], options: RedactOptions = {}): string {
  const limit = options.limit ?? PII_SCAN_LIMIT;
  const scanned = scannedPrefix(text, limit);
  const pieces: string[] = [];
  let cursor = 0;
  for (const span of findPiiSpans(scanned, detectors, limit)) {
    pieces.push(scanned.slice(cursor, span.start), `[REDACTED:${span.type}]`);
    cursor = span.end;
  }
  pieces.push(scanned.slice(cursor));
  if (scanned.length < text.length) {
    pieces.push(options.unscanned === "keep" ? text.slice(scanned.length) : UNSCANNED_MARKER);
  }
  return pieces.join("");
}
