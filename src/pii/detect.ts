import { findPiiSpans, PII_SCAN_LIMIT, scannedPrefix } from "./scan.js";
import type { PiiType } from "./types.js";

export interface PiiDetection {
  /** Sorted, unique. */
  types: PiiType[];
  classification: "pii" | "none";
}

/** The PII types found in the first PII_SCAN_LIMIT code units of `text`. */
export function detectPii(text: string, detectors: readonly PiiType[], limit = PII_SCAN_LIMIT): PiiDetection {
  const types = [...new Set(findPiiSpans(text, detectors, limit).map((span) => span.type))].sort();
  return { types, classification: types.length > 0 ? "pii" : "none" };
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
