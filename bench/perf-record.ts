/**
 * CPU per request of a target under saturation, sampled by Linux `perf` with V8's JIT symbols, so
 * native work (the kernel's socket writes, JSON, GC, crypto) is seen next to the JavaScript:
 *   npm run build && node dist/bench/perf-record.js [--variant "gw full"] [--seconds 6] [--out FILE]
 * Then `perf report -i FILE --no-children --sort sym` or `perf script -i FILE` for the stacks.
 * Needs `perf` and `kernel.perf_event_paranoid` ≤ 2.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { closedLoop, createPool, warmUntilSteady } from "./driver.js";
import { argValue } from "./lib/args.js";
import { GOVERNED, targetDefs } from "./lib/plan.js";
import { startTarget } from "./lib/start-target.js";
import { startMock } from "./lib/targets.js";

const HZ = 2999;
const argv = process.argv.slice(2);
const name = argValue(argv, "--variant") ?? GOVERNED;
const seconds = Number(argValue(argv, "--seconds") ?? 6);
const out = argValue(argv, "--out") ?? `/tmp/perf-${name.replaceAll(" ", "-")}.data`;

async function main(): Promise<void> {
  const def = targetDefs(false).find((d) => d.name === name);
  if (def === undefined || def.target.kind === "direct") throw new Error(`no target process named \`${name}\``);
  const mock = await startMock();
  const running = await startTarget(def.target, mock.url, ["--perf-basic-prof-only-functions"]);
  const pool = createPool(running.origin, 64);
  // Warm: the JIT has settled before the samples start.
  await warmUntilSteady(pool, def.specs.call, { workers: 64, maxMs: 20_000, tolerance: 0.05 });
  const perf = spawn("perf", ["record", "-F", String(HZ), "-g", "-o", out, "-p", String(running.pid)], { stdio: ["ignore", "ignore", "pipe"] });
  let report = "";
  perf.stderr.on("data", (chunk: Buffer) => {
    report += chunk.toString();
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const result = await closedLoop(pool, def.specs.call, { workers: 64, durationMs: seconds * 1000, warmupMs: 0 });
  perf.kill("SIGINT");
  await once(perf, "exit");
  await pool.close();
  await running.stop();
  await mock.stop();
  const samples = Number(/\((\d+) samples\)/.exec(report)?.[1] ?? Number.NaN);
  const perRequest = (samples / HZ / (result.rps * seconds)) * 1e6;
  process.stdout.write(`${name}: ${result.rps} req/s, ${samples} samples at ${HZ} Hz: ${perRequest.toFixed(1)} µs of CPU per request; ${out}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`perf-record failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
