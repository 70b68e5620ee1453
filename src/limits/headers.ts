import type { RateStatus } from "../state/store.js";

/** A duration as OpenAI writes it in rate-limit headers: `20ms`, `1s`, `6m0s`, `1h2m3s`. */
export function formatResetDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  let seconds = Math.ceil(ms / 1000);
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/** `x-ratelimit-*` headers of the tightest limit, as OpenAI sends them. */
export function rateHeaders(rate: RateStatus): Record<string, string> {
  const headers: Record<string, string> = {};
  if (rate.requests !== undefined) {
    headers["x-ratelimit-limit-requests"] = String(rate.requests.limit);
    headers["x-ratelimit-remaining-requests"] = String(rate.requests.remaining);
    headers["x-ratelimit-reset-requests"] = formatResetDuration(rate.requests.resetMs);
  }
  if (rate.tokens !== undefined) {
    headers["x-ratelimit-limit-tokens"] = String(rate.tokens.limit);
    headers["x-ratelimit-remaining-tokens"] = String(rate.tokens.remaining);
    headers["x-ratelimit-reset-tokens"] = formatResetDuration(rate.tokens.resetMs);
  }
  return headers;
}
