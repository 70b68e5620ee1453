/**
 * Memory per open stream of one target, measured as `npm run bench` measures it but alone, with
 * node flags of choice (the young generation's size moves the figure by several KB a stream):
 *   npm run build && node dist/bench/memory-alone.js [--variant "gw full"] [--streams 2000] [--node-flags a,b]
 */
import { argValue } from "./lib/args.js";
import { measureMemory } from "./lib/memory.js";
import { GOVERNED, targetDefs } from "./lib/plan.js";
import { chatSpec, slowStreamSpec } from "./lib/requests.js";
import { startTarget } from "./lib/start-target.js";
import { startMock } from "./lib/targets.js";

const argv = process.argv.slice(2);
const name = argValue(argv, "--variant") ?? GOVERNED;
const streams = Number(argValue(argv, "--streams") ?? 2000);
const nodeFlags = (argValue(argv, "--node-flags") ?? "").split(",").filter((flag) => flag !== "");

async function main(): Promise<void> {
  const def = targetDefs(false).find((d) => d.name === name);
  if (def === undefined || def.target.kind === "direct") throw new Error(`no target process named \`${name}\``);
  const mock = await startMock();
  const running = await startTarget(def.target, mock.url, nodeFlags);
  try {
    const result = await measureMemory(name, running.origin, { call: chatSpec(), slow: slowStreamSpec() }, () => running.rssKb() ?? Number.NaN, streams);
    process.stdout.write(`${name} ${nodeFlags.join(" ") || "(no extra flags)"}: ${JSON.stringify(result)}\n`);
  } finally {
    await running.stop();
    await mock.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`memory-alone failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
