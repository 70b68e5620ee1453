/**
 * `npm run bench [-- --quick] [--only a,b] [--rounds N] [--no-memory] [--out FILE]`: the mock, the bare
 * pass-through and the gateway variants, each in its own process and measured one at a time by the
 * driver in this process. Prints tables and writes bench/results/<date>.json. See bench/README.md.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { join } from "node:path";
import { countChatInput } from "../src/tokens/index.js";
import { argValue, hasFlag } from "./lib/args.js";
import { buildHeadline } from "./lib/headline.js";
import { type MemoryResult, measureMemory } from "./lib/memory.js";
import { measureTarget, type TargetResult } from "./lib/measure.js";
import { GOVERNED, type TargetDef, targetDefs } from "./lib/plan.js";
import { lightTable, memoryTable, resultsTable, table } from "./lib/report.js";
import { medianResults, roundSpread } from "./lib/rounds.js";
import { bigPromptText, chatSpec, slowStreamSpec } from "./lib/requests.js";
import { startTarget } from "./lib/start-target.js";
import { startMock } from "./lib/targets.js";

const argv = process.argv.slice(2);
const quick = hasFlag(argv, "--quick");
const only = argValue(argv, "--only")?.split(",");
const streams = Number(argValue(argv, "--streams") ?? 2000);
/** Below the gateway's upstream pool size (512), so every stream flows: a clean KB-per-stream figure. */
const fewStreams = Number(argValue(argv, "--few-streams") ?? 500);
/** Rounds of the latency phases, every target measured in each in turn; the figures are the medians. */
const rounds = Math.max(1, Number(argValue(argv, "--rounds") ?? 1));
const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function runLatency(defs: TargetDef[]): Promise<TargetResult[]> {
  const mock = await startMock();
  const results: TargetResult[] = [];
  try {
    for (const def of defs) {
      log(`· ${def.name}`);
      const running = await startTarget(def.target, mock.url);
      try {
        results.push(await measureTarget(def.name, running.origin, def.specs, def.plan, { ...running, mockCpuMs: () => mock.cpuMs() }));
      } finally {
        await running.stop();
      }
    }
  } finally {
    await mock.stop();
  }
  return results;
}

async function runMemory(defs: TargetDef[]): Promise<MemoryResult[]> {
  const out: MemoryResult[] = [];
  const runs = defs.flatMap((def) => (def.name === GOVERNED ? [{ def, count: fewStreams }, { def, count: streams }] : [{ def, count: streams }]));
  for (const { def, count } of runs) {
    log(`· memory ${def.name} ${count}`);
    const mock = await startMock();
    const running = await startTarget(def.target, mock.url);
    try {
      const rss = (): number => running.rssKb() ?? Number.NaN;
      out.push(await measureMemory(def.name, running.origin, { call: chatSpec(), slow: slowStreamSpec() }, rss, count));
    } finally {
      await running.stop();
      await mock.stop();
    }
  }
  return out;
}

function resultPath(): string {
  const dir = join(process.cwd(), "bench", "results");
  mkdirSync(dir, { recursive: true });
  const explicit = argValue(argv, "--out");
  if (explicit !== undefined) return explicit;
  const date = new Date().toISOString().slice(0, 10);
  let path = join(dir, `${date}.json`);
  for (let n = 2; existsSync(path); n++) path = join(dir, `${date}-${n}.json`);
  return path;
}

async function main(): Promise<void> {
  const started = Date.now();
  const defs = targetDefs(quick).filter((d) => only === undefined || only.includes(d.name));
  const perRound: TargetResult[][] = [];
  for (let round = 1; round <= rounds; round++) {
    if (rounds > 1) log(`round ${round} of ${rounds}`);
    perRound.push(await runLatency(defs));
  }
  const results = rounds === 1 ? perRound[0]! : medianResults(perRound);
  const memoryDefs = hasFlag(argv, "--no-memory") ? [] : defs.filter((d) => d.name === "bare" || d.name === "bare web" || d.name === GOVERNED);
  const memory = await runMemory(memoryDefs);
  const headline = buildHeadline(results, memory, GOVERNED);

  const bigTokens = countChatInput({ messages: [{ role: "user", content: bigPromptText() }] }, "o200k_base");
  process.stdout.write(`\nLatency: open loop, µs from each request's actual send; saturation: closed loop, ${defs[0]?.plan.closed.workers ?? 0} connections\n`);
  process.stdout.write(`${resultsTable(results)}\n\nLighter fixed rate\n${lightTable(results)}\n\nMemory (slow streams held open)\n${memoryTable(memory)}\n`);
  if (headline !== null) {
    process.stdout.write(`\nHeadline (${GOVERNED} vs direct and the pass-throughs; the issue's targets are judged against ${headline.reference})\n`);
    process.stdout.write(`${table(["target", "goal", "measured", "met"], headline.checks.map((c) => [c.target, c.goal, c.measured, c.met ? "yes" : "NO"]), 4)}\n`);
    if (rounds > 1) process.stdout.write(`\nRound by round (the table holds the medians):\n${roundSpread(perRound.map((round) => buildHeadline(round, memory, GOVERNED))).join("\n")}\n`);
  }
  const report = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? "", node: process.version, kernel: release() },
    quick,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    bigPromptTokens: bigTokens,
    headline,
    results,
    ...(rounds > 1 ? { rounds: perRound } : {}),
    memory,
  };
  const path = resultPath();
  writeFileSync(path, `${JSON.stringify(report, null, 1)}\n`);
  process.stdout.write(`\n${path} (${report.durationSeconds} s)\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
