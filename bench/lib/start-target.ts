import type { TargetKind } from "./plan.js";
import type { Service } from "./procs.js";
import { startRedisServer } from "./redis.js";
import { originOf, startBare, startGatewayProcess } from "./targets.js";

export interface RunningTarget {
  origin: string;
  /** The process under test (null for direct). */
  pid: number | null;
  /** RSS of the process under test (null when that is the mock itself). */
  rssKb: () => number | null;
  /** CPU ms used so far by the process under test (null for direct). */
  cpuMs: () => number | null;
  stop(): Promise<void>;
}

/**
 * Starts the process under test (and its redis-server, if any) in front of the mock at mockUrl;
 * `wrapper` runs it under another command (valgrind).
 */
export async function startTarget(target: TargetKind, mockUrl: string, nodeArgs: string[] = [], wrapper: readonly string[] = []): Promise<RunningTarget> {
  if (target.kind === "direct") return { origin: originOf(mockUrl), pid: null, rssKb: () => null, cpuMs: () => null, stop: async () => undefined };
  const helpers: Service[] = [];
  let service: Service;
  if (target.kind === "bare") {
    service = await startBare(mockUrl, target.mode, nodeArgs, wrapper);
  } else {
    let variant = target.variant;
    if (target.redis === true) {
      const redis = await startRedisServer();
      helpers.push(redis);
      variant = { ...variant, redisUrl: redis.url };
    }
    service = await startGatewayProcess(variant, mockUrl, nodeArgs, wrapper);
  }
  return {
    origin: originOf(service.url),
    pid: service.pid,
    rssKb: () => service.rssKb(),
    cpuMs: () => service.cpuMs(),
    async stop() {
      await service.stop();
      for (const helper of helpers) await helper.stop();
    },
  };
}
