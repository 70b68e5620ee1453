/**
 * A thin fallback redactor for audit bodies when no PII detector is wired in (the real one lives
 * in src/pii). It errs towards masking: emails, runs of 9+ digits (cards, accounts, phone numbers)
 * and API-key-looking secrets.
 */
const PATTERNS: readonly [RegExp, string][] = [
  [/\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}\b/g, "[REDACTED_SECRET]"],
  [/\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/g, "[REDACTED_EMAIL]"],
  [/\d(?:[ -]?\d){8,}/g, "[REDACTED_NUMBER]"],
];

export function redactText(text: string): string {
  let result = text;
  for (const [pattern, replacement] of PATTERNS) result = result.replace(pattern, replacement);
  return result;
}
