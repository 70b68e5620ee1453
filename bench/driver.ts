/**
 * The load driver: undici pools, closed-loop saturation, open-loop fixed rate and streaming timing.
 * Every latency is taken with process.hrtime.bigint() and kept in microseconds.
 */
import { Pool } from "undici";
import { type LatencySummary, microsSince, round1, summarize } from "./lib/stats.js";

export interface RequestSpec {
  path: string;
  headers: Record<string, string>;
  /** The body of the n-th request sent with this spec. */
  body: (n: number) => string;
}

let sent = 0;

export interface Outcome {
  ok: boolean;
  /** Send → first body byte, µs (streams only; NaN when the body was empty). */
  ttfbUs: number;
  /** Send → end of body, µs. */
  totalUs: number;
}

export function createPool(origin: string, connections: number): Pool {
  return new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
}

/** One request, body read to its end; never throws. */
export async function send(pool: Pool, spec: RequestSpec, started = process.hrtime.bigint()): Promise<Outcome> {
  let ttfbUs = Number.NaN;
  try {
    const res = await pool.request({ path: spec.path, method: "POST", headers: spec.headers, body: spec.body(sent++) });
    let bytes = 0;
    for await (const chunk of res.body) {
      if (bytes === 0) ttfbUs = microsSince(started);
      bytes += (chunk as Buffer).length;
    }
    return { ok: res.statusCode === 200 && bytes > 0, ttfbUs, totalUs: microsSince(started) };
  } catch {
    return { ok: false, ttfbUs, totalUs: microsSince(started) };
  }
}

export interface ClosedLoopResult {
  workers: number;
  seconds: number;
  requests: number;
  errors: number;
  rps: number;
  /** Every request completed, warm-up and tail included (for CPU-per-request accounting). */
  completed: number;
  latency: LatencySummary;
}

/** N workers, each sending its next request as soon as the previous one ends, for durationMs after a warm-up. */
export async function closedLoop(pool: Pool, spec: RequestSpec, opts: { workers: number; durationMs: number; warmupMs: number }): Promise<ClosedLoopResult> {
  const t0 = process.hrtime.bigint();
  const measureFrom = t0 + BigInt(opts.warmupMs) * 1_000_000n;
  const deadline = measureFrom + BigInt(opts.durationMs) * 1_000_000n;
  const latencies: number[] = [];
  let errors = 0;
  let completed = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const started = process.hrtime.bigint();
      if (started >= deadline) return;
      const outcome = await send(pool, spec, started);
      completed++;
      if (started < measureFrom || process.hrtime.bigint() > deadline) continue;
      if (outcome.ok) latencies.push(outcome.totalUs);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, worker));
  const seconds = opts.durationMs / 1000;
  return { workers: opts.workers, seconds, requests: latencies.length, errors, rps: Math.round(latencies.length / seconds), completed, latency: summarize(latencies) };
}

/**
 * Runs the closed loop in one-second windows until its rate settles: the last three windows within
 * `tolerance` of each other, or `maxMs` gone. A process's JIT takes seconds of saturation to compile
 * its hot code (the gateway's far more of it than a bare proxy's), so a fixed short warm-up measured
 * the compiler's work as part of each call. Returns each window's rate.
 */
export async function warmUntilSteady(pool: Pool, spec: RequestSpec, opts: { workers: number; maxMs: number; tolerance: number }): Promise<number[]> {
  const rates: number[] = [];
  const started = Date.now();
  while (Date.now() - started < opts.maxMs) {
    rates.push((await closedLoop(pool, spec, { workers: opts.workers, durationMs: 1000, warmupMs: 0 })).rps);
    const last = rates.slice(-3);
    if (last.length === 3 && Math.min(...last) >= (1 - opts.tolerance) * Math.max(...last)) break;
  }
  return rates;
}

export interface OpenLoopResult {
  rate: number;
  sent: number;
  errors: number;
  /** Requests per second actually sent over the run. */
  achievedRate: number;
  /** Send → full response, µs, from each request's actual send. */
  latency: LatencySummary;
  /** Send → first body byte, µs (meaningful for streams). */
  ttfb: LatencySummary;
  /** How late each send was against its schedule (start + i/rate), µs: shows the driver did not burst. */
  sendLag: LatencySummary;
}

/**
 * Request i is sent at start + i/rate. Timers carry the wait to within ~1 ms of the slot, then a
 * setImmediate spin (which still lets I/O run between turns) hits the slot; nothing is batched.
 */
export function openLoop(pool: Pool, spec: RequestSpec, opts: { rate: number; count: number }): Promise<OpenLoopResult> {
  const intervalNs = 1e9 / opts.rate;
  const latencies: number[] = [];
  const ttfbs: number[] = [];
  const lags: number[] = [];
  let errors = 0;
  let next = 0;
  let done = 0;
  const start = process.hrtime.bigint() + 1_000_000n;
  const due = (i: number): bigint => start + BigInt(Math.round(i * intervalNs));
  return new Promise((resolve) => {
    const finish = (): void => {
      const lastSend = Number(due(opts.count - 1) - start) / 1e9;
      resolve({
        rate: opts.rate,
        sent: opts.count,
        errors,
        achievedRate: round1(lastSend > 0 ? (opts.count - 1) / lastSend : opts.count),
        latency: summarize(latencies),
        ttfb: summarize(ttfbs),
        sendLag: summarize(lags),
      });
    };
    const fire = (i: number): void => {
      const sentAt = process.hrtime.bigint();
      lags.push(Number(sentAt - due(i)) / 1000);
      void send(pool, spec, sentAt).then((outcome) => {
        if (outcome.ok) {
          latencies.push(outcome.totalUs);
          if (!Number.isNaN(outcome.ttfbUs)) ttfbs.push(outcome.ttfbUs);
        } else errors++;
        if (++done === opts.count) finish();
      });
    };
    const tick = (): void => {
      while (next < opts.count && process.hrtime.bigint() >= due(next)) fire(next++);
      if (next >= opts.count) return;
      const remainingMs = Number(due(next) - process.hrtime.bigint()) / 1e6;
      if (remainingMs > 1.6) setTimeout(tick, Math.floor(remainingMs - 1.1));
      else setImmediate(tick);
    };
    tick();
  });
}
