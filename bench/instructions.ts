/**
 * Machine instructions per request of a target, counted by valgrind's callgrind:
 *   npm run build && node dist/bench/instructions.js [--only "bare,gw full"] [--warmup 3000] [--count 1000] [--connections 1]
 * Counts instructions, not time, so two trees compare on a machine whose speed moves with other
 * tenants' load (CPU time per request moved 2× between runs here). The target runs under
 * `valgrind --tool=callgrind` (~50× slower) in V8's predictable mode, gets `--warmup` requests so
 * V8 optimises the hot code, then its counters are zeroed (`callgrind_control -z`), `--count`
 * requests are sent one at a time and the counters dumped (`callgrind_control -d`). A request's
 * share of the JIT compiler and the garbage collector is included; the driver and the mock run
 * natively. The same tree gives the same count to within 0.5 %; predictable mode itself costs some
 * speed, so compare counts with counts, never with the CPU times of `run.js`.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Pool } from "undici";
import { createPool, type RequestSpec, send } from "./driver.js";
import { argValue } from "./lib/args.js";
import { targetDefs } from "./lib/plan.js";
import { table } from "./lib/report.js";
import { chatSpec } from "./lib/requests.js";
import { startTarget } from "./lib/start-target.js";
import { originOf, startMock } from "./lib/targets.js";

const argv = process.argv.slice(2);
const names = (argValue(argv, "--only") ?? "bare,gw no policies,gw full").split(",").map((n) => n.trim());
const warmup = Number(argValue(argv, "--warmup") ?? 3000);
const count = Number(argValue(argv, "--count") ?? 1000);
/**
 * One request at a time by default: how many requests share an event-loop turn would otherwise vary
 * the count. `--connections 64` counts the gateway as the saturation run loads it (many calls per
 * turn, so the wall-clock timers' share per request shrinks as it does there).
 */
const CONNECTIONS = Number(argValue(argv, "--connections") ?? 1);

/** `total` requests over CONNECTIONS connections, each sending its next when the previous ends; returns the failures. */
async function sendAll(pool: Pool, spec: RequestSpec, total: number): Promise<number> {
  let left = total;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (left > 0) {
      left--;
      if (!(await send(pool, spec)).ok) failed++;
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  return failed;
}

/** The `summary:` (or `totals:`) line of a callgrind dump: instructions executed. */
function dumpedInstructions(dir: string): number {
  const dumps = readdirSync(dir).filter((f) => f.startsWith("callgrind.out") && /\.\d+$/.test(f));
  if (dumps.length === 0) throw new Error(`no callgrind dump in ${dir}`);
  let total = 0;
  for (const dump of dumps) {
    const match = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, dump), "utf8"));
    if (match === null) throw new Error(`no summary line in ${dump}`);
    total += Number(match[1]);
  }
  return total;
}

async function measure(name: string): Promise<(string | number)[]> {
  const def = targetDefs(false).find((d) => d.name === name);
  if (def === undefined || def.target.kind === "direct") throw new Error(`no target named \`${name}\` with a process of its own`);
  const dir = mkdtempSync(join(tmpdir(), "spark-callgrind-"));
  const wrapper = ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", `--callgrind-out-file=${join(dir, "callgrind.out")}`];
  const mock = await startMock();
  // V8's predictable mode: one thread, and no heuristic driven by the clock (heap growth, memory
  // reducer), which otherwise moved the count by up to 50 % between runs under valgrind's slowness.
  const running = await startTarget(def.target, mock.url, ["--predictable"], wrapper);
  const pool = createPool(running.origin, CONNECTIONS);
  try {
    const warmFailed = await sendAll(pool, def.specs.call, warmup);
    execFileSync("callgrind_control", ["-z", String(running.pid)], { stdio: "ignore" });
    const failed = await sendAll(pool, def.specs.call, count);
    execFileSync("callgrind_control", ["-d", String(running.pid)], { stdio: "ignore" });
    const perRequest = dumpedInstructions(dir) / count;
    return [name, warmup, count, warmFailed + failed, Math.round(perRequest / 1000)];
  } finally {
    await pool.close();
    await running.stop();
    await mock.stop();
  }
}

/** The driver's own code warmed on the mock first, so the first target is not fed by a colder driver than the rest. */
async function warmDriver(): Promise<void> {
  const mock = await startMock();
  const pool = createPool(originOf(mock.url), CONNECTIONS);
  try {
    await sendAll(pool, chatSpec(), 5000);
  } finally {
    await pool.close();
    await mock.stop();
  }
}

async function main(): Promise<void> {
  await warmDriver();
  const rows: (string | number)[][] = [];
  for (const name of names) {
    rows.push(await measure(name));
    process.stderr.write(`${name}: done\n`);
  }
  process.stdout.write(`${table(["target", "warm-up", "counted", "failed", "k instructions/req"], rows)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`instructions failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
