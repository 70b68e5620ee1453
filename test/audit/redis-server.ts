import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { Redis } from "ioredis";

export interface TestRedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** The redis-server binary, or null: on CI a missing binary must fail the suite, not skip it. */
export function findRedisServer(): string | null {
  const dirs = ["/usr/bin", "/usr/local/bin", ...(process.env["PATH"] ?? "").split(delimiter)];
  for (const dir of dirs) {
    const candidate = join(dir, "redis-server");
    if (dir !== "" && existsSync(candidate)) return candidate;
  }
  if (process.env["CI"]) throw new Error("redis-server is required on CI but was not found");
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts a private, non-persistent redis-server on a free port in a temp dir. */
export async function startRedisServer(binary: string): Promise<TestRedisServer> {
  const dir = await mkdtemp(join(tmpdir(), "audit-redis-"));
  // The free port can be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const port = await freePort();
    const child = spawn(binary, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
      stdio: "ignore",
    });
    if (await waitForPing(port, child)) {
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        stop: async () => {
          await stopChild(child);
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error("could not start redis-server");
}

async function waitForPing(port: number, child: ChildProcess): Promise<boolean> {
  for (let attempt = 0; attempt < 50 && child.exitCode === null; attempt += 1) {
    const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === "PONG") return true;
    } catch {
      // not up yet
    } finally {
      client.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
