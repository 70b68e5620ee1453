import { foreignCpu, waitQuiet } from "./host.js";
import { type ClosedLoopResult, closedLoop, createPool, type OpenLoopResult, openLoop, type RequestSpec, warmUntilSteady } from "../driver.js";

export interface PhasePlan {
  closed: { workers: number; durationMs: number; warmupMs: number; warmMaxMs: number };
  open: { rate: number; count: number; warmup: number };
  /** An extra fixed-rate run at a lighter load; null skips it. */
  light: { rate: number; count: number; warmup: number } | null;
  /** Streaming timing at a fixed rate; null skips it. */
  stream: { rate: number; count: number } | null;
}

export interface TargetResult {
  target: string;
  closed: ClosedLoopResult;
  /** The req/s of each one-second window of the warm-up before the saturation run. */
  warmup: number[];
  open: OpenLoopResult;
  light: OpenLoopResult | null;
  stream: OpenLoopResult | null;
  /** Gateway/proxy RSS after the phases, KB (null for the direct target, whose process is the mock). */
  rssAfterKb: number | null;
  /** CPU per request during the saturation run, µs: the process under test and the mock. */
  cpuUsPerRequest: { target: number | null; mock: number };
  /** Busy cores on the machine before starting, and used by other processes during the run (noise). */
  idleBefore: number;
  foreignCores: number;
}

export interface Probes {
  rssKb: () => number | null;
  cpuMs: () => number | null;
  mockCpuMs: () => number;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Saturation, then the fixed-rate latency run, then streams: one target, nothing else running. */
export async function measureTarget(
  target: string,
  origin: string,
  specs: { call: RequestSpec; stream: RequestSpec },
  plan: PhasePlan,
  probes: Probes,
): Promise<TargetResult> {
  const idleBefore = await waitQuiet();
  const driverMs = (): number => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  };
  const foreign = foreignCpu(() => (probes.cpuMs() ?? 0) + probes.mockCpuMs() + driverMs());
  const saturating = createPool(origin, plan.closed.workers);
  const warmup = await warmUntilSteady(saturating, specs.call, { workers: plan.closed.workers, maxMs: plan.closed.warmMaxMs, tolerance: 0.05 });
  const cpu0 = probes.cpuMs();
  const mock0 = probes.mockCpuMs();
  const closed = await closedLoop(saturating, specs.call, plan.closed);
  const cpu1 = probes.cpuMs();
  const perRequest = (a: number, b: number): number => Math.round(((b - a) * 1000) / Math.max(1, closed.completed));
  const cpuUsPerRequest = { target: cpu0 === null || cpu1 === null ? null : perRequest(cpu0, cpu1), mock: perRequest(mock0, probes.mockCpuMs()) };
  await saturating.close();
  await pause(500);

  const pool = createPool(origin, 64);
  await openLoop(pool, specs.call, { rate: plan.open.rate, count: plan.open.warmup });
  await pause(200);
  const open = await openLoop(pool, specs.call, { rate: plan.open.rate, count: plan.open.count });
  let light: OpenLoopResult | null = null;
  if (plan.light !== null) {
    await pause(200);
    light = await openLoop(pool, specs.call, plan.light);
  }
  let stream: OpenLoopResult | null = null;
  if (plan.stream !== null) {
    await pause(200);
    stream = await openLoop(pool, specs.stream, plan.stream);
  }
  await pool.close();
  return { target, closed, warmup, open, light, stream, rssAfterKb: probes.rssKb(), cpuUsPerRequest, idleBefore, foreignCores: foreign() };
}
