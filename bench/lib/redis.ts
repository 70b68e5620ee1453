import { freePort, type Service, spawnService } from "./procs.js";

/** A throwaway redis-server on a free loopback port: no RDB, no AOF. */
export async function startRedisServer(): Promise<Service> {
  const port = await freePort();
  const service = await spawnService({
    name: "redis",
    command: "redis-server",
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "notice"],
    ready: (line) => (line.includes("Ready to accept connections") ? `redis://127.0.0.1:${port}` : null),
  });
  return service;
}
