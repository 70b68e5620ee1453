/**
 * CPU profile of the governed gateway under saturation:
 *   npm run build && node dist/bench/profile.js [--seconds 10] [--top 30] [--variant "gw full"]
 * Runs the gateway process with `--cpu-prof`, drives the closed loop against it, stops it (the
 * profile is written on exit) and prints the top self-time functions and files.
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closedLoop, createPool } from "./driver.js";
import { argValue } from "./lib/args.js";
import { inclusiveTimes, selfTimes } from "./lib/cpuprofile.js";
import { waitQuiet } from "./lib/host.js";
import { GOVERNED, targetDefs } from "./lib/plan.js";
import { table } from "./lib/report.js";
import { startTarget } from "./lib/start-target.js";
import { startMock } from "./lib/targets.js";

const argv = process.argv.slice(2);
const seconds = Number(argValue(argv, "--seconds") ?? 10);
const top = Number(argValue(argv, "--top") ?? 30);
const name = argValue(argv, "--variant") ?? GOVERNED;

async function main(): Promise<void> {
  const def = targetDefs(false).find((d) => d.name === name);
  if (def === undefined || def.target.kind === "direct") throw new Error(`no profiled target named \`${name}\``);
  const dir = mkdtempSync(join(tmpdir(), "spark-prof-"));
  const mock = await startMock();
  const running = await startTarget(def.target, mock.url, ["--cpu-prof", "--cpu-prof-dir", dir]);
  await waitQuiet();
  const pool = createPool(running.origin, 64);
  const result = await closedLoop(pool, def.specs.call, { workers: 64, durationMs: seconds * 1000, warmupMs: 1000 });
  await pool.close();
  await running.stop();
  await mock.stop();
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error(`no profile written in ${dir}`);
  const times = selfTimes(join(dir, file));
  const row = (e: { name: string; where: string; ms: number; percent: number }): (string | number)[] => [e.name.slice(0, 48), e.where, e.ms, e.percent];
  process.stdout.write(`${name}: ${result.rps} req/s under the profiler, ${result.errors} errors; ${times.total} ms sampled; ${join(dir, file)}\n\n`);
  process.stdout.write(`${table(["function", "where", "self ms", "%"], times.functions.slice(0, top).map(row))}\n\n`);
  process.stdout.write(`${table(["file", "", "self ms", "%"], times.files.slice(0, 20).map(row))}\n\n`);
  const inclusive = inclusiveTimes(join(dir, file));
  process.stdout.write(`${table(["our function, inclusive", "where", "ms", "%"], inclusive.functions.slice(0, top).map(row))}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`profile failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
