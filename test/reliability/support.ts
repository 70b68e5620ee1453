import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Pool } from "undici";
import { freePort, type StartedProcess, startProcess, writeTempConfig } from "../helpers/index.js";

export const MAIN = join(process.cwd(), "dist/src/main.js");
export const ADMIN_TOKEN = "rel-admin-token-5f2c";
export const UPSTREAM_KEY = "sk-rel-upstream-8d1a";

export const sha256Ref = (clear: string): string => `sha256:${createHash("sha256").update(clear, "utf8").digest("hex")}`;

export interface GatewayProcess {
  proc: StartedProcess;
  port: number;
  url: string;
  pool: Pool;
  /** Resident set size in bytes, from /proc. */
  rss(): number;
  close(): Promise<void>;
}

export async function startGatewayProcess(yaml: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const port = await freePort();
  const config = writeTempConfig(yaml);
  const proc = await startProcess("node", [MAIN, "--config", config], {
    env: { PORT: String(port), LOG_LEVEL: "warn", ...env },
    waitForUrl: `http://127.0.0.1:${port}/healthz`,
    timeoutMs: 20_000,
  });
  const url = `http://127.0.0.1:${port}`;
  const pool = new Pool(url, { connections: 64, pipelining: 1, keepAliveTimeout: 10_000 });
  return {
    proc,
    port,
    url,
    pool,
    rss: () => {
      const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
      const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? "0");
      return kb * 1024;
    },
    async close() {
      await pool.destroy().catch(() => undefined);
      await proc.stop("SIGTERM", 20_000);
    },
  };
}

export interface CallResult {
  status: number;
  id: string | null;
  code: string | null;
  /** The body ended as it should (JSON parsed, or SSE ended with [DONE]). */
  complete: boolean;
  /** When the answer was fully read (ms since epoch). */
  doneAt: number;
  error: string | null;
}

/** One chat call through a pool, read to the end. */
export async function chatCall(pool: Pool, key: string, body: Record<string, unknown>): Promise<CallResult> {
  try {
    const res = await pool.request({
      path: "/v1/chat/completions",
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await res.body.text();
    const id = typeof res.headers["x-request-id"] === "string" ? res.headers["x-request-id"] : null;
    let code: string | null = null;
    let complete = false;
    if (res.statusCode >= 400) {
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null;
      } catch {
        code = null;
      }
      complete = true;
    } else if (body.stream === true) {
      complete = text.includes("data: [DONE]") && !text.includes('"error"');
    } else {
      try {
        JSON.parse(text);
        complete = true;
      } catch {
        complete = false;
      }
    }
    return { status: res.statusCode, id, code, complete, doneAt: Date.now(), error: null };
  } catch (error) {
    return { status: 0, id: null, code: null, complete: false, doneAt: Date.now(), error: (error as Error).message };
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
