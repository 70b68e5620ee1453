import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { createInterface } from "node:readline";

export interface Service {
  name: string;
  /** Base URL the service reported (for the mock it includes `/v1`). */
  url: string;
  pid: number;
  /** Resident set size in KB, from /proc/<pid>/status. */
  rssKb(): number;
  cpuMs(): number;
  stop(): Promise<void>;
}

/** A free loopback port (bound, then released). */
export function freePort(): Promise<number> {
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

export function readRssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match === null ? Number.NaN : Number(match[1]);
}

/** CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat (10 ms ticks). */
export function readCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the command name: state is field 3, utime 14 and stime 15 (1-based, in the full line).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Returns the service URL when a stdout line announces readiness. */
  ready: (line: string) => string | null;
  timeoutMs?: number;
}

/** Spawns a child process and resolves once it announced readiness on stdout. */
export function spawnService(opts: SpawnOptions): Promise<Service> {
  const child = spawn(opts.command, opts.args, { env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString("utf8")).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${opts.name}: not ready within ${opts.timeoutMs ?? 15_000} ms\n${stderr}`));
    }, opts.timeoutMs ?? 15_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${opts.name} exited early (${code})\n${stderr}`));
    });
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      const url = opts.ready(line);
      if (url === null) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve(serviceOf(opts.name, url, child));
    });
  });
}

function serviceOf(name: string, url: string, child: ChildProcess): Service {
  const pid = child.pid ?? -1;
  return {
    name,
    url,
    pid,
    rssKb: () => readRssKb(pid),
    cpuMs: () => readCpuMs(pid),
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => child.kill("SIGKILL"), 8_000);
    child.once("exit", () => {
      clearTimeout(hard);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** Ready when a line is a bare URL (the mock and the bare proxy print exactly that). */
export const urlLine = (line: string): string | null => (/^https?:\/\/\S+$/.test(line.trim()) ? line.trim() : null);

/** Ready when the gateway's pino log line says it is listening. */
export function gatewayListening(line: string): string | null {
  if (!line.includes("listening")) return null;
  try {
    const parsed: unknown = JSON.parse(line);
    const url = (parsed as { url?: unknown }).url;
    return typeof url === "string" ? url : null;
  } catch {
    return null;
  }
}
