/**
 * What a call costs at a fixed rate, where the process sleeps between calls, against what it costs
 * at saturation, where it never does: CPU per call of the process under test (all its threads,
 * kernel time included) and its context switches per call, which on a VM each cost tens of µs:
 *   npm run build && node dist/bench/between-calls.js [--variant "gw full"] [--rate 500] [--rounds 3] [--node-flags a,b]
 * `--node-flags` are passed to the process under test after the ones it is started with (later wins).
 */
import { readdirSync, readFileSync } from "node:fs";
import { closedLoop, createPool, openLoop } from "./driver.js";
import { argValue } from "./lib/args.js";
import { GOVERNED, targetDefs } from "./lib/plan.js";
import { startTarget } from "./lib/start-target.js";
import { startMock } from "./lib/targets.js";

const argv = process.argv.slice(2);
const name = argValue(argv, "--variant") ?? GOVERNED;
const rate = Number(argValue(argv, "--rate") ?? 500);
const rounds = Number(argValue(argv, "--rounds") ?? 3);
const nodeFlags = (argValue(argv, "--node-flags") ?? "").split(",").filter((flag) => flag !== "");
const CALLS = 3000;

/** Voluntary and involuntary context switches of every thread of `pid` so far. */
function contextSwitches(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
    for (const match of status.matchAll(/ctxt_switches:\s+(\d+)/g)) total += Number(match[1]);
  }
  return total;
}

async function main(): Promise<void> {
  const def = targetDefs(false).find((d) => d.name === name);
  if (def === undefined || def.target.kind === "direct") throw new Error(`no target process named \`${name}\``);
  const mock = await startMock();
  const running = await startTarget(def.target, mock.url, nodeFlags);
  const pid = running.pid as number;
  const cpu = (): number => running.cpuMs() ?? Number.NaN;
  const pool = createPool(running.origin, 64);
  try {
    await closedLoop(pool, def.specs.call, { workers: 32, durationMs: 6000, warmupMs: 0 });
    for (let round = 1; round <= rounds; round++) {
      const [cpu0, switches0] = [cpu(), contextSwitches(pid)];
      const fixed = await openLoop(pool, def.specs.call, { rate, count: CALLS });
      const [cpu1, switches1] = [cpu(), contextSwitches(pid)];
      const saturated = await closedLoop(pool, def.specs.call, { workers: 64, durationMs: 4000, warmupMs: 0 });
      const cpu2 = cpu();
      const perCall = (ms: number, calls: number): string => `${((ms * 1000) / calls).toFixed(0)} µs`;
      process.stdout.write(
        `${name} round ${round}: at ${rate} req/s p50 ${fixed.latency.p50.toFixed(0)} µs, CPU ${perCall(cpu1 - cpu0, CALLS)} a call, ` +
          `${((switches1 - switches0) / CALLS).toFixed(2)} context switches a call; saturated ${saturated.rps} req/s, CPU ${perCall(cpu2 - cpu1, saturated.completed)} a call\n`,
      );
    }
  } finally {
    await pool.close();
    await running.stop();
    await mock.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`between-calls failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
