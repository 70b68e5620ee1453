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

/**
 * Appends the `x-ratelimit-*` headers of the tightest limit, as OpenAI sends them, to a flat
 * name/value list (the form `writeHead` takes without copying an object).
 */
export function pushRateHeaders(list: string[], rate: RateStatus): string[] {
  for (const kind of RATE_KINDS) {
    const status = rate[kind];
    if (status === undefined) continue;
    const names = RATE_NAMES[kind];
    list.push(names[0], String(status.limit), names[1], String(status.remaining), names[2], formatResetDuration(status.resetMs));
  }
  return list;
}

const RATE_KINDS = ["requests", "tokens"] as const;
const RATE_NAMES = {
  requests: ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"],
  tokens: ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"],
} as const;

/** The same headers as an object, for a refusal's error options. */
export function rateHeaders(rate: RateStatus): Record<string, string> {
  const list = pushRateHeaders([], rate);
  const headers: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) headers[list[i] as string] = list[i + 1] as string;
  return headers;
}
