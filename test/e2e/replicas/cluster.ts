import { createHash } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { APIError } from "openai";
import { expect } from "vitest";
import { type MockUpstream, startMockUpstream } from "../../../mock/upstream.js";
import { freePort, type RedisHandle, type StartedProcess, startProcess, writeTempConfig } from "../../helpers/index.js";

/** Several gateway processes sharing one Redis: the deployment of docker-compose.yml, on free ports. */

const root = join(import.meta.dirname, "..", "..", "..");
const MAIN = join(root, "dist", "src", "main.js");

export const ADMIN_TOKEN = "replicas-admin-token";

export const sha256Ref = (clear: string): string => `sha256:${createHash("sha256").update(clear).digest("hex")}`;

/** One config `keys:` entry (flow YAML). */
export function keyEntry(id: string, clear: string, subject: string, limits = "{}"): string {
  return `  - { id: ${id}, key_hash: "${sha256Ref(clear)}", subject: ${subject}, limits: ${limits} }`;
}

export const MODELS = `
models:
  gpt-4o-mini: { upstream: openai, input_per_1m: 0.15, output_per_1m: 0.60 }
  gpt-4o: { upstream: openai, input_per_1m: 2.50, output_per_1m: 10.00 }
`;

/** A JSON document as the admin API answers it; tests read the fields they assert on. */
export type Json = Record<string, unknown> & {
  data?: Array<Record<string, unknown>>;
  error?: { code?: string; message?: string };
};

export interface AdminResult {
  status: number;
  headers: Headers;
  body: Json;
  text: string;
}

export interface Replica {
  id: string;
  port: number;
  url: string;
  proc: StartedProcess;
  client(key: string, options?: { maxRetries?: number; headers?: Record<string, string> }): OpenAI;
  admin(method: string, path: string, body?: unknown): Promise<AdminResult>;
  /** GET of an open route (`/healthz`, `/readyz`); never throws on a status. */
  probe(path: string): Promise<number>;
}

export interface Cluster {
  mock: MockUpstream;
  redis: RedisHandle;
  auditDir: string;
  configPath: string;
  replicas: Replica[];
  a: Replica;
  b: Replica;
  close(): Promise<void>;
}

export interface ClusterOptions {
  /** `fail_closed` (default) or `fail_open`. */
  onError?: "fail_closed" | "fail_open";
  /** Add the `redis_stream` audit sink next to the file sink (default true). */
  auditStream?: boolean;
  /** Key of the shared audit stream. */
  streamKey?: string;
  prefix?: string;
  mockOptions?: Parameters<typeof startMockUpstream>[0];
  replicaIds?: string[];
}

function replicaFor(id: string, port: number, proc: StartedProcess): Replica {
  const url = `http://127.0.0.1:${port}`;
  return {
    id,
    port,
    url,
    proc,
    client: (key, options = {}) =>
      new OpenAI({
        apiKey: key,
        baseURL: `${url}/v1`,
        maxRetries: options.maxRetries ?? 0,
        // Well under the tests' own timeouts, so a hung call fails as a timeout, not a stuck test.
        timeout: 30_000,
        ...(options.headers === undefined ? {} : { defaultHeaders: options.headers }),
      }),
    async admin(method, path, body) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      let parsed: Json = {};
      try {
        parsed = JSON.parse(text) as Json;
      } catch {
        // Not JSON: `text` keeps it for the failure message.
      }
      return { status: response.status, headers: response.headers, body: parsed, text };
    },
    async probe(path) {
      const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) });
      await response.body?.cancel();
      return response.status;
    },
  };
}

/**
 * Starts a mock upstream and one gateway process per replica id (default `a` and `b`), all on one
 * config whose `replica_id` comes from each process's environment, all sharing `redis`.
 * `configBody` (models, keys, policies…) is appended to the common part.
 */
export async function startCluster(redis: RedisHandle, configBody: string, options: ClusterOptions = {}): Promise<Cluster> {
  expect(existsSync(MAIN), "run `npm run build` first (npm test does)").toBe(true);
  const mock = await startMockUpstream(options.mockOptions ?? {});
  const auditDir = join(mkdtempSync(join(tmpdir(), "spark-replicas-")), "audit");
  const stream = options.auditStream ?? true;
  const sinks = [`{ file: { dir: "${auditDir}" } }`];
  if (stream) sinks.push(`{ redis_stream: { key: "${options.streamKey ?? "spark:audit"}" } }`);
  const yaml = `
org: acme
server: { host: 127.0.0.1, port: 0, drain_seconds: 2, replica_id: "\${REPLICA_ID}" }
admin: { token: ${ADMIN_TOKEN} }
store: { redis: { url: "${redis.url}", prefix: "${options.prefix ?? "spark:"}" }, on_error: ${options.onError ?? "fail_closed"} }
upstreams:
  openai: { base_url: "${mock.url}", api_key: sk-upstream-secret, timeout_seconds: 30 }
audit:
  sinks: [${sinks.join(", ")}]
  fsync: never
${configBody}
`;
  const configPath = writeTempConfig(yaml);
  const replicas: Replica[] = [];
  try {
    for (const id of options.replicaIds ?? ["a", "b"]) {
      const port = await freePort();
      const proc = await startProcess("node", [MAIN, "--config", configPath], {
        env: { PORT: String(port), REPLICA_ID: id, LOG_LEVEL: "warn", GATEWAY_CONFIG: undefined },
        waitForUrl: `http://127.0.0.1:${port}/healthz`,
        timeoutMs: 20_000,
      });
      replicas.push(replicaFor(id, port, proc));
    }
  } catch (error) {
    await Promise.all(replicas.map((r) => r.proc.stop("SIGKILL")));
    await mock.close();
    throw error;
  }
  const [a, b] = replicas as [Replica, Replica];
  return {
    mock,
    redis,
    auditDir,
    configPath,
    replicas,
    a,
    b,
    async close() {
      await Promise.all(replicas.map((r) => r.proc.stop("SIGTERM", 10_000)));
      await mock.close();
    },
  };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs` with the last value. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
      last = "no value yet";
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs}ms (last: ${String(last)})`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** How a call ended: 200, or the status and `error.code` of the APIError it threw. */
export interface Outcome {
  status: number;
  code: string | null;
  headers: Headers | null;
}

export async function outcomeOf(call: () => Promise<{ response: Response }>): Promise<Outcome> {
  try {
    const { response } = await call();
    return { status: response.status, code: null, headers: response.headers };
  } catch (error) {
    if (error instanceof APIError && error.status !== undefined) {
      return { status: error.status, code: typeof error.code === "string" ? error.code : null, headers: error.headers ?? null };
    }
    throw error;
  }
}

/** A chat call's outcome through the SDK (`withResponse` keeps the headers of a success). */
export function chat(client: OpenAI, body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming): Promise<Outcome> {
  return outcomeOf(() => client.chat.completions.create(body).withResponse());
}

/** Sums money exactly as integer micro-dollars. */
export const micros = (usd: number): number => Math.round(usd * 1_000_000);
