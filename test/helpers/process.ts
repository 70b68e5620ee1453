import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export interface StartProcessOptions {
  /** Merged over process.env (set a key to undefined to remove it). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Resolve only once this URL answers any HTTP status. */
  waitForUrl?: string;
  /** Budget for waitForUrl. */
  timeoutMs?: number;
}

export interface StartedProcess {
  child: ChildProcess;
  pid: number;
  /** Captured lines, kept for the whole life of the process (e.g. secret-scanning tests). */
  stdout: string[];
  stderr: string[];
  /** stdout and stderr lines together, for assertions and failure messages. */
  output(): string;
  /** Exit code once exited; null while running or when killed by a signal. */
  readonly exitCode: number | null;
  readonly exited: boolean;
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  waitForExit(timeoutMs?: number): Promise<number | null>;
  /** Sends `signal`, escalates to SIGKILL after timeoutMs, resolves with the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

// A crashed test must not leave servers behind holding ports.
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export async function startProcess(cmd: string, args: string[], opts: StartProcessOptions = {}): Promise<StartedProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const child = spawn(cmd, args, { env, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const all: string[] = [];
  const lineWaiters = new Set<(line: string) => void>();
  const capture = (stream: NodeJS.ReadableStream | null, into: string[]) => {
    if (!stream) return;
    createInterface({ input: stream }).on("line", (line) => {
      into.push(line);
      all.push(line);
      for (const w of lineWaiters) w(line);
    });
  };
  capture(child.stdout, stdout);
  capture(child.stderr, stderr);

  const exit = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      live.delete(child);
      resolve(code);
    });
  });
  let exited = false;
  let exitCode: number | null = null;
  void exit.then((code) => {
    exited = true;
    exitCode = code;
  });
  const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
  spawnError.catch(() => undefined);

  const handle: StartedProcess = {
    child,
    pid: child.pid ?? -1,
    stdout,
    stderr,
    output: () => all.join("\n"),
    get exitCode() {
      return exitCode;
    },
    get exited() {
      return exited;
    },
    waitForLine(pattern, timeoutMs = 10_000) {
      const hit = all.find((l) => pattern.test(l));
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const done = (line: string) => {
          if (!pattern.test(line)) return;
          cleanup();
          resolve(line);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no line matching ${pattern} within ${timeoutMs}ms. Output:\n${handle.output()}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          lineWaiters.delete(done);
        };
        lineWaiters.add(done);
      });
    },
    async waitForExit(timeoutMs = 10_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`process ${cmd} did not exit within ${timeoutMs}ms`)), timeoutMs);
      });
      try {
        return await Promise.race([exit, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async stop(signal = "SIGTERM", timeoutMs = 5_000) {
      if (exited) return exitCode;
      child.kill(signal);
      const escalate = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exit;
      } finally {
        clearTimeout(escalate);
      }
    },
  };

  if (opts.waitForUrl !== undefined) {
    try {
      await Promise.race([waitForHttp(opts.waitForUrl, opts.timeoutMs ?? 15_000, () => exited), spawnError]);
    } catch (err) {
      await handle.stop("SIGKILL");
      throw new Error(`${cmd} ${args.join(" ")} did not come up: ${(err as Error).message}\nOutput:\n${handle.output()}`);
    }
  }
  return handle;
}

/** Polls until the URL answers with any HTTP status (a 401 still means the server is up). */
export async function waitForHttp(url: string, timeoutMs = 15_000, gaveUp: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gaveUp()) throw new Error("process exited before the URL answered");
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.body?.cancel();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs}ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
