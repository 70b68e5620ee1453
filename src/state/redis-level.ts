import { dayOf, monthOf } from "../limits/level-state.js";
import type { LimitKind, RateStatus, ReserveRequest, ReserveResult, SettleRequest } from "./store.js";

/** Argument and reply conversions of the level scripts (src/state/lua/reserve.ts and settle.ts). */

function opt(value: number | null): string {
  return value === null ? "" : String(value);
}

function flag(value: boolean): string {
  return value ? "1" : "0";
}

export function reserveArgs(request: ReserveRequest, now: number): string[] {
  const l = request.limits;
  return [
    String(now),
    opt(l.requestsPerMinute),
    opt(l.tokensPerMinute),
    opt(l.maxParallel),
    opt(l.dailyMicros),
    opt(l.monthlyMicros),
    opt(l.totalMicros),
    flag(l.session),
    opt(l.sessionMaxTokens),
    opt(l.sessionMaxMs),
    opt(l.sessionMaxLlmCalls),
    opt(l.sessionMaxToolCalls),
    String(request.inputTokens),
    String(request.inputMicros),
    String(request.outputPricePer1M),
    String(request.outputTokens),
    String(request.minOutputTokens),
    flag(request.clamp),
    String(request.ttlMs),
    request.callId,
    String(request.leaseMs),
  ];
}

export function settleArgs(request: SettleRequest, now: number): string[] {
  return [
    String(now),
    opt(request.limits.tokensPerMinute),
    flag(request.limits.session),
    String(request.ttlMs),
    String(request.reservedMicros),
    String(request.reservedTokens),
    String(request.actualMicros),
    String(request.actualTokens),
    String(request.toolCalls),
    flag(dayOf(request.reservedAt) === dayOf(now)),
    flag(monthOf(request.reservedAt) === monthOf(now)),
    opt(request.limits.requestsPerMinute),
    flag(request.released === true),
    String(Math.floor(request.reservedAt / 1000)),
    request.callId,
    flag(request.unanswered === true),
  ];
}

function rateFrom(limit: string, remaining: string, resetMs: string): { limit: number; remaining: number; resetMs: number } | null {
  return limit === "" ? null : { limit: Number(limit), remaining: Number(remaining), resetMs: Number(resetMs) };
}

export function reserveResultFrom(reply: unknown): ReserveResult {
  const [status, kind, retry, output, micros, tokens, rl, rr, rs, tl, tr, ts] = reply as string[];
  const rate: RateStatus = {};
  const requests = rateFrom(rl ?? "", rr ?? "", rs ?? "");
  const tokenRate = rateFrom(tl ?? "", tr ?? "", ts ?? "");
  if (requests !== null) rate.requests = requests;
  if (tokenRate !== null) rate.tokens = tokenRate;
  if (status === "ok") {
    return { ok: true, outputTokens: Number(output), reservedMicros: Number(micros), reservedTokens: Number(tokens), rate };
  }
  return { ok: false, limit: kind as LimitKind, retryAfterMs: retry === "" ? null : Number(retry), rate };
}

/** Sums the window hash (fields r<second> and t<second>) over the last 60 s. */
export function windowTotals(window: Record<string, string>, now: number): { requests: number; tokens: number } {
  const oldest = Math.floor(now / 1000) - 59;
  let requests = 0;
  let tokens = 0;
  for (const [field, value] of Object.entries(window)) {
    if (Number(field.slice(1)) < oldest) continue;
    if (field.startsWith("r")) requests += Number(value);
    else tokens += Number(value);
  }
  return { requests, tokens };
}
