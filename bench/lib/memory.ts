import { closedLoop, createPool, type RequestSpec } from "../driver.js";
import { openStreams } from "./open-streams.js";
import { round1 } from "./stats.js";

export interface MemoryResult {
  target: string;
  streams: number;
  /** Streams that delivered their first byte through the target. */
  flowing: number;
  failed: number;
  idleRssKb: number;
  openRssKb: number;
  /** (open − idle) / flowing streams. */
  kbPerStream: number;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** RSS of the target idle (after a short warm-up) and while `streams` slow streams are open through it. */
export async function measureMemory(
  target: string,
  origin: string,
  specs: { call: RequestSpec; slow: RequestSpec },
  rssKb: () => number,
  streams: number,
): Promise<MemoryResult> {
  const warm = createPool(origin, 16);
  await closedLoop(warm, specs.call, { workers: 16, durationMs: 1000, warmupMs: 0 });
  await warm.close();
  await pause(2000);
  const idleRssKb = rssKb();
  const open = await openStreams(origin, specs.slow, streams, 45_000);
  await pause(3000);
  let openRssKb = 0;
  for (let i = 0; i < 4; i++) {
    openRssKb = Math.max(openRssKb, rssKb());
    await pause(500);
  }
  const flowing = open.flowing;
  const failed = open.failed;
  await open.close();
  return { target, streams, flowing, failed, idleRssKb, openRssKb, kbPerStream: round1((openRssKb - idleRssKb) / Math.max(1, flowing)) };
}
