import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import pino from "pino";
import { type MockUpstream, startMockUpstream } from "../../mock/upstream.js";
import { type Gateway, startGateway } from "../../src/gateway.js";
import { writeTempConfig } from "../helpers/index.js";
import type { Clock } from "../../src/util/ids.js";

export const KEYS = {
  alice: "sk-test-alice",
  bob: "sk-test-bob",
  carol: "sk-test-carol",
} as const;

export const ADMIN_TOKEN = "admin-secret-token";

export interface Harness {
  mock: MockUpstream;
  gateway: Gateway;
  auditDir: string;
  /** The config file the gateway was started with: a test may rewrite it and call `gateway.reload()`. */
  configPath: string;
  client(key: string, options?: { maxRetries?: number; headers?: Record<string, string> }): OpenAI;
  close(): Promise<void>;
}

/** A mock upstream and an in-process gateway on free ports; `configBody` is appended to the base config. */
export async function startHarness(
  configBody: string,
  options: {
    clock?: Clock;
    mockOptions?: Parameters<typeof startMockUpstream>[0];
    /** YAML flow map for `admin:`, e.g. to add approvers; the default keeps only the superuser token. */
    admin?: string;
    /** `audit.fsync` (default `never`: the tests do not need the disk's durability). */
    fsync?: "always" | "interval" | "never";
    /** YAML flow map for `store:` (default: memory, no snapshot); `$DIR` stands for the harness's temp dir. */
    store?: string;
  } = {},
): Promise<Harness> {
  const mock = await startMockUpstream(options.mockOptions ?? {});
  const dir = mkdtempSync(join(tmpdir(), "spark-e2e-"));
  const auditDir = join(dir, "audit");
  const yaml = `
org: acme
server: { host: 127.0.0.1, port: 0, drain_seconds: 2 }
admin: ${options.admin ?? `{ token: ${ADMIN_TOKEN} }`}
store: ${(options.store ?? "{ memory: { snapshot: null } }").replaceAll("$DIR", dir)}
upstreams:
  openai: { base_url: "${mock.url}", api_key: sk-upstream-secret, timeout_seconds: 5 }
audit:
  sinks: [{ file: { dir: "${auditDir}" } }]
  fsync: ${options.fsync ?? "never"}
${configBody}
`;
  const configPath = writeTempConfig(yaml);
  const gateway = await startGateway({
    configPath,
    env: {},
    logger: pino({ level: "silent" }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  return {
    mock,
    gateway,
    auditDir,
    configPath,
    client: (key, clientOptions = {}) =>
      new OpenAI({
        apiKey: key,
        baseURL: `${gateway.url}/v1`,
        maxRetries: clientOptions.maxRetries ?? 0,
        ...(clientOptions.headers === undefined ? {} : { defaultHeaders: clientOptions.headers }),
      }),
    async close() {
      await gateway.shutdown();
      await mock.close();
    },
  };
}

export const MODELS = `
models:
  gpt-4o-mini: { upstream: openai, input_per_1m: 0.15, output_per_1m: 0.60, cached_input_per_1m: 0.075 }
  gpt-4o: { upstream: openai, input_per_1m: 2.50, output_per_1m: 10.00 }
  free-model: { upstream: openai }
  text-embedding-3-small: { upstream: openai, kind: embedding, input_per_1m: 0.02 }
`;

const hash = (key: string): string => `sha256:${createHash("sha256").update(key).digest("hex")}`;

export function keyEntry(id: string, clear: string, subject: string, limits = "{}"): string {
  return `  - { id: ${id}, key_hash: "${hash(clear)}", subject: ${subject}, limits: ${limits} }`;
}

/** Reads every audit record written so far (after a flush). */
export async function auditRecords(harness: Harness): Promise<Array<Record<string, unknown>>> {
  await harness.gateway.audit.writer.flush();
  const { readdirSync, readFileSync } = await import("node:fs");
  const out: Array<Record<string, unknown>> = [];
  for (const file of readdirSync(harness.auditDir).sort()) {
    for (const line of readFileSync(join(harness.auditDir, file), "utf8").split("\n")) {
      if (line.trim() !== "") out.push(JSON.parse(line) as Record<string, unknown>);
    }
  }
  return out;
}

/** `sha256:<hex>` of a clear secret, as config `key_hash` / `token_hash` fields want it. */
export const sha256Ref = hash;
