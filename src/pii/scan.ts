import { PATTERNS } from "./patterns.js";
import type { PiiSpan, PiiType } from "./types.js";

/**
 * Non-overlapping PII matches in `text`, in text order. Where matches overlap, the one starting
 * first wins, then the longer: an IP inside a bearer token is part of the secret. The whole text is
 * scanned, however long (every pattern is linear: ~20 ms a MB of prose, as counting its tokens):
 * PII past any cut-off would pass both the `data_classification` rules and redaction.
 */
export function findPiiSpans(text: string, detectors: readonly PiiType[]): PiiSpan[] {
  const found: PiiSpan[] = [];
  const digits = digitsUpTo(text, MOST_DIGITS_NEEDED);
  for (const type of new Set(detectors)) {
    for (const pattern of PATTERNS[type]) {
      if (pattern.minDigits !== undefined && digits < pattern.minDigits) continue;
      const needs = pattern.needs;
      if (needs !== undefined && !(typeof needs === "string" ? text.includes(needs) : needs.test(text))) continue;
      // `exec` on the shared global regex: `matchAll` would clone the regex on every call.
      const regex = pattern.regex;
      regex.lastIndex = 0;
      for (let match = regex.exec(text); match !== null; match = regex.exec(text)) {
        if (match[0].length === 0) regex.lastIndex++;
        const length = pattern.accept(match);
        if (length > 0) found.push({ type, start: match.index, end: match.index + length });
      }
    }
  }
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: PiiSpan[] = [];
  let end = 0;
  for (const span of found) {
    if (span.start < end) continue;
    kept.push(span);
    end = span.end;
  }
  return kept;
}

/** No pattern needs more digits than this: counting stops there. */
const MOST_DIGITS_NEEDED = Math.max(...Object.values(PATTERNS).flatMap((patterns) => patterns.map((pattern) => pattern.minDigits ?? 0)));

/** The ASCII digits in `text`, counted up to `cap`. */
function digitsUpTo(text: string, cap: number): number {
  let count = 0;
  for (let i = 0; i < text.length && count < cap; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) count++;
  }
  return count;
}
