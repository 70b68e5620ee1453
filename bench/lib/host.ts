import { readFileSync } from "node:fs";

/** Busy CPU time of the whole machine so far, ms (every core; /proc/stat ticks are 10 ms). */
export function machineBusyMs(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 10;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The machine is shared (other builds and test runs come and go): before a measurement, wait up
 * to maxWaitMs for a 500 ms window in which the machine used less than `cores` of CPU. Returns the
 * last window's busy cores.
 */
export async function waitQuiet(maxWaitMs = 8_000, cores = 0.25): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const before = machineBusyMs();
    await pause(500);
    const busy = (machineBusyMs() - before) / 500;
    if (busy < cores || Date.now() > deadline) return Math.round(busy * 100) / 100;
  }
}

/** Tracks CPU used on the machine by anything other than the given processes during a phase. */
export function foreignCpu(ours: () => number): () => number {
  const t0 = Date.now();
  const machine0 = machineBusyMs();
  const ours0 = ours();
  return () => {
    const elapsed = Math.max(1, Date.now() - t0);
    const foreign = machineBusyMs() - machine0 - (ours() - ours0);
    return Math.max(0, Math.round((foreign / elapsed) * 100) / 100);
  };
}
