import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { type MockUpstream, type MockUpstreamOptions, startMockUpstream } from "../../mock/upstream.js";
import { type Gateway, startGateway } from "../../src/gateway.js";
import { createLogger } from "../../src/log/logger.js";
import { writeTempConfig } from "../helpers/index.js";

/** Secrets used across the security suite; none may ever show up in logs, audit records, error bodies or headers. */
export const SECRETS = {
  alice: "sk-sec-alice-0b7d2f6e91",
  bob: "sk-sec-bob-5c1e88aa02",
  solo: "sk-sec-solo-7f3a0c4d55",
  expired: "sk-sec-expired-a4e2b9c710",
  disabled: "sk-sec-disabled-d83f61b2c4",
  upstream: "sk-upstream-sec-9e4c2a7b3d",
  admin: "adm-sec-token-61f0c9e2b8",
  approver: "apr-sec-token-3b8d7e5f14",
} as const;

export const sha256Ref = (clear: string): string => `sha256:${createHash("sha256").update(clear, "utf8").digest("hex")}`;

export function keyLine(id: string, clear: string, subject: string, extra = ""): string {
  return `  - { id: ${id}, key_hash: "${sha256Ref(clear)}", subject: ${subject}${extra === "" ? "" : `, ${extra}`} }`;
}

export const MODELS = `
models:
  gpt-4o-mini: { upstream: openai, input_per_1m: 0.15, output_per_1m: 0.60 }
  gpt-4o: { upstream: openai, input_per_1m: 2.50, output_per_1m: 10.00 }
  text-embedding-3-small: { upstream: openai, kind: embedding, input_per_1m: 0.02 }
`;

export const DEFAULT_KEYS = `
keys:
${keyLine("alice-dev", SECRETS.alice, "{ user: alice, role: developer, team: research }")}
${keyLine("bob-admin", SECRETS.bob, "{ user: bob, role: admin, team: platform }")}
${keyLine("solo", SECRETS.solo, "{ user: sol, role: developer, team: research }", "limits: { max_parallel_requests: 1, requests_per_minute: 100000 }")}
${keyLine("old-key", SECRETS.expired, "{ user: olga, role: developer, team: research }", 'expires_at: "2001-01-01T00:00:00Z"')}
${keyLine("off-key", SECRETS.disabled, "{ user: otto, role: developer, team: research }", "disabled: true")}
`;

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface RawAnswer {
  /** Everything the server sent before it closed the socket (or the liveness timeout passed). */
  text: string;
  /** The server closed the connection (vs. our timeout). */
  closed: boolean;
  /** HTTP status lines seen, in order (more than one would mean a second, smuggled request was answered). */
  statuses: number[];
}

export interface SecGateway {
  mock: MockUpstream;
  gateway: Gateway;
  host: string;
  port: number;
  url: string;
  auditDir: string;
  /** Every pino line the gateway wrote (level trace). */
  logs: string[];
  /** Every response status line, header and body seen by the helpers, to be scanned for secrets. */
  observed: string[];
  pool: Pool;
  request(
    path: string,
    init?: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer; record?: boolean },
  ): Promise<HttpAnswer>;
  raw(bytes: string | Buffer, options?: { timeoutMs?: number; endAfterWrite?: boolean }): Promise<RawAnswer>;
  records(): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export interface SecGatewayOptions {
  /** Extra `server:` fields as a YAML flow fragment, e.g. `max_json_depth: 8`. */
  server?: string;
  /** Fields of the `openai` upstream beyond base_url and api_key (default `timeout_seconds: 5`). */
  upstream?: string;
  /** Appended verbatim (models, keys, policies, extra upstreams...). Defaults to MODELS + DEFAULT_KEYS. */
  body?: string;
  mock?: MockUpstreamOptions;
  /** Reuse a running mock (it is not closed by close()). */
  sharedMock?: MockUpstream;
  admin?: string;
  /** Extra entries under `upstreams:`, each a line like `  dead: { base_url: ... }`. */
  upstreams?: string;
  /** `server.replica_id` (default `sec`). */
  replica?: string;
  /** YAML for `store:`; default an in-memory store without snapshot. */
  store?: string;
  /** Extra audit sinks, as YAML flow items, e.g. `{ log: {} }`. */
  extraSinks?: string;
}

const unhandled: unknown[] = [];
let listening = false;
/** Unhandled rejections seen in this worker since the suite started (the in-process gateway runs here). */
export function unhandledRejections(): unknown[] {
  if (!listening) {
    listening = true;
    process.on("unhandledRejection", (reason) => unhandled.push(reason));
  }
  return unhandled;
}

export async function startSecGateway(options: SecGatewayOptions = {}): Promise<SecGateway> {
  unhandledRejections();
  const mock = options.sharedMock ?? (await startMockUpstream(options.mock ?? {}));
  const dir = mkdtempSync(join(tmpdir(), "spark-sec-"));
  const auditDir = join(dir, "audit");
  const yaml = `
org: acme
server: { host: 127.0.0.1, port: 0, drain_seconds: 5, replica_id: ${options.replica ?? "sec"}${options.server === undefined ? "" : `, ${options.server}`} }
admin: ${options.admin ?? `{ token: ${SECRETS.admin}, approvers: [{ name: dana, role: security, token_hash: "${sha256Ref(SECRETS.approver)}" }] }`}
store: ${options.store ?? "{ memory: { snapshot: null } }"}
upstreams:
  openai: { base_url: "${mock.url}", api_key: ${SECRETS.upstream}, ${options.upstream ?? "timeout_seconds: 5"} }
${options.upstreams ?? ""}
audit:
  sinks: [{ file: { dir: "${auditDir}" } }${options.extraSinks === undefined ? "" : `, ${options.extraSinks}`}]
  fsync: never
${options.body ?? `${MODELS}${DEFAULT_KEYS}`}
`;
  const configPath = writeTempConfig(yaml);
  const logs: string[] = [];
  const logger = createLogger("trace", {
    write(line: string) {
      logs.push(line);
    },
  });
  const gateway = await startGateway({ configPath, env: {}, logger });
  const url = new URL(gateway.url);
  const host = url.hostname;
  const port = Number(url.port);
  const pool = new Pool(gateway.url, { connections: 16, pipelining: 1, keepAliveTimeout: 10_000 });
  const observed: string[] = [];

  const request: SecGateway["request"] = async (path, init = {}) => {
    const res = await pool.request({
      path,
      method: (init.method ?? (init.body === undefined ? "GET" : "POST")) as "GET",
      headers: init.headers ?? {},
      body: init.body ?? null,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await res.body.text();
    if (init.record !== false) observed.push(`${res.statusCode} ${JSON.stringify(res.headers)}\n${text}`);
    return { status: res.statusCode, headers: res.headers, text };
  };

  const raw: SecGateway["raw"] = (bytes, rawOptions = {}) =>
    new Promise((resolve) => {
      const socket = connect({ host, port });
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (closed: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        const text = Buffer.concat(chunks).toString("latin1");
        observed.push(text);
        const statuses = [...text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
        resolve({ text, closed, statuses });
      };
      const timer = setTimeout(() => finish(false), rawOptions.timeoutMs ?? 5_000);
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("end", () => finish(true));
      socket.on("close", () => finish(true));
      socket.on("error", () => finish(true));
      socket.on("connect", () => {
        socket.write(bytes);
        if (rawOptions.endAfterWrite === true) socket.end();
      });
    });

  return {
    mock,
    gateway,
    host,
    port,
    url: gateway.url,
    auditDir,
    logs,
    observed,
    pool,
    request,
    raw,
    records: async () => {
      await gateway.audit.writer.flush();
      return readAudit(auditDir);
    },
    async close() {
      await pool.close().catch(() => undefined);
      await gateway.shutdown();
      if (options.sharedMock === undefined) await mock.close();
    },
  };
}

/** Every record in an audit directory, files in name order. */
export function readAudit(dir: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  let files: string[] = [];
  try {
    files = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const file of files) {
    for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
      if (line.trim() !== "") out.push(JSON.parse(line) as Record<string, unknown>);
    }
  }
  return out;
}

/** Raw text of every audit file (torn lines included), for secret scans. */
export function auditText(dir: string): string {
  try {
    return readdirSync(dir)
      .sort()
      .map((file) => readFileSync(join(dir, file), "utf8"))
      .join("\n");
  } catch {
    return "";
  }
}

/** Where each secret leaked, as `secretName in source: excerpt`; empty when clean. */
export function findSecrets(sources: Record<string, string[]>, secrets: Record<string, string> = SECRETS): string[] {
  const leaks: string[] = [];
  for (const [source, texts] of Object.entries(sources)) {
    for (const text of texts) {
      for (const [name, secret] of Object.entries(secrets)) {
        const at = text.indexOf(secret);
        if (at !== -1) leaks.push(`${name} in ${source}: …${text.slice(Math.max(0, at - 80), at + secret.length + 40)}…`);
      }
    }
  }
  return leaks;
}

/** Scans this gateway's logs, audit files and every observed response for the suite's secrets. */
export function leaksOf(g: SecGateway, extra: Record<string, string> = {}, except: ReadonlySet<string> = new Set()): string[] {
  return findSecrets(
    { logs: g.logs, audit: [auditText(g.auditDir)], responses: g.observed.filter((t) => !except.has(t)) },
    { ...SECRETS, ...extra },
  );
}

export function chatBody(content: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], ...extra });
}

export const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });

/** Parses the `error.code` of an OpenAI-shaped error body, or null. */
export function errorCode(text: string): string | null {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === "string" ? parsed.error.code : null;
  } catch {
    return null;
  }
}

/** The body of a raw HTTP response (after the blank line). */
export function rawBody(text: string): string {
  const at = text.indexOf("\r\n\r\n");
  return at === -1 ? "" : text.slice(at + 4);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` is true (liveness bound only). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
