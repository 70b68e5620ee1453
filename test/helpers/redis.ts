import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { type StartedProcess, startProcess } from "./process.js";

export interface RedisHandle {
  url: string;
  port: number;
  /** Graceful shutdown (SIGTERM). */
  stop(): Promise<void>;
  /** Crash simulation: SIGKILL, no shutdown work; state is lost unless `durable`. */
  kill9(): Promise<void>;
  /** Stops if running, then starts a server on the same port: empty, or as it was where `durable`. */
  restart(): Promise<void>;
  /** A server that hangs (SIGSTOP): connections stay open, nothing is answered, until `resume`. */
  pause(): void;
  resume(): void;
}

export interface RedisOptions {
  /** An append-only file in the server's dir, so a restart after a graceful stop keeps the data. */
  durable?: boolean;
}

function findBinary(): string | undefined {
  const candidates = [process.env.REDIS_SERVER_BIN, "/usr/bin/redis-server", "/usr/local/bin/redis-server"];
  return candidates.find((p): p is string => p !== undefined && p !== "" && existsSync(p));
}

/**
 * Starts a throwaway redis-server. Returns null when the binary is absent so
 * local runs can `it.skipIf(!redis)`; under CI a missing binary is a failure.
 */
export async function startRedis(options: RedisOptions = {}): Promise<RedisHandle | null> {
  const bin = findBinary();
  if (bin === undefined) {
    if (process.env.CI) throw new Error("redis-server binary not found (set REDIS_SERVER_BIN); required under CI");
    return null;
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "spark-gw-redis-"));
  let proc: StartedProcess | undefined;

  const launch = async (): Promise<void> => {
    mkdirSync(dir, { recursive: true });
    // No persistence unless asked: every (re)start is empty, which is what crash tests assume.
    const persistence = options.durable === true ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--dir", dir];
    proc = await startProcess(bin, args);
    try {
      await waitForPing(port, 10_000, () => proc?.exited === true);
    } catch (err) {
      await proc.stop("SIGKILL");
      throw new Error(`redis-server did not start: ${(err as Error).message}\n${proc.output()}`);
    }
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    if (proc && !proc.exited) await proc.stop(signal);
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await halt("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
    kill9: () => halt("SIGKILL"),
    pause: () => proc?.child.kill("SIGSTOP"),
    resume: () => proc?.child.kill("SIGCONT"),
    async restart() {
      await halt("SIGTERM");
      await launch();
    },
  };
}

/** Raw RESP PING so the helper does not depend on a client library. */
export function ping(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: "127.0.0.1" });
    let buf = "";
    const finish = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => finish(false));
    sock.once("error", () => finish(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.includes("\r\n")) finish(buf.startsWith("+PONG"));
    });
  });
}

async function waitForPing(port: number, timeoutMs: number, gaveUp: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ping(port))) {
    if (gaveUp()) throw new Error("process exited");
    if (Date.now() > deadline) throw new Error(`no PONG within ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
