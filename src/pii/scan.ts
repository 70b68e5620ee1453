import { PATTERNS } from "./patterns.js";
import type { PiiSpan, PiiType } from "./types.js";

/**
 * How much of a text is scanned: the first 1 MiB of UTF-16 code units (at least 1 MiB of UTF-8).
 * Code units rather than bytes because measuring bytes would mean encoding the whole text, the
 * very cost this bound avoids. Every pattern is linear, so this caps a scan at tens of
 * milliseconds however large the prompt.
 */
export const PII_SCAN_LIMIT = 1 << 20;

/** The part of `text` that is scanned, never ending inside a surrogate pair. */
export function scannedPrefix(text: string, limit = PII_SCAN_LIMIT): string {
  if (text.length <= limit) return text;
  const code = text.charCodeAt(limit - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit);
}

/**
 * Non-overlapping PII matches in the scanned prefix, in text order. Where matches overlap, the
 * one starting first wins, then the longer: an IP inside a bearer token is part of the secret.
 */
export function findPiiSpans(text: string, detectors: readonly PiiType[], limit = PII_SCAN_LIMIT): PiiSpan[] {
  const scanned = scannedPrefix(text, limit);
  const found: PiiSpan[] = [];
  const digits = /\d/.test(scanned);
  for (const type of new Set(detectors)) {
    for (const pattern of PATTERNS[type]) {
      const needs = pattern.needs;
      if (needs !== undefined && !(needs === "digit" ? digits : scanned.includes(needs))) continue;
      // `exec` on the shared global regex: `matchAll` would clone the regex on every call.
      const regex = pattern.regex;
      regex.lastIndex = 0;
      for (let match = regex.exec(scanned); match !== null; match = regex.exec(scanned)) {
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
