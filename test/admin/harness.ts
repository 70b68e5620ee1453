import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { hashKey } from "../../src/auth/keys.js";
import { type Gateway, startGateway } from "../../src/gateway.js";
import { createLogger } from "../../src/log/logger.js";
import { type MockUpstream, startMockUpstream } from "../../mock/upstream.js";

export const ADMIN_TOKEN = "admin-secret-token";
export const DANA_TOKEN = "dana-approver-token";
export const EVE_TOKEN = "eve-approver-token";
export const ALICE_KEY = "sk-alice-config-key";

const CONFIG = (upstream: string, sinks: string): string => `
org: acme
server: { replica_id: gw-test }
admin:
  token: ${ADMIN_TOKEN}
  approvers:
    - { name: dana, role: security, token_hash: "${hashKey(DANA_TOKEN)}" }
    - { name: eve, role: finance, token_hash: "${hashKey(EVE_TOKEN)}" }
store: { memory: { snapshot: null } }
upstreams:
  mock: { base_url: "${upstream}", api_key: upstream-secret }
models:
  gpt-4o-mini: { upstream: mock, input_per_1m: 0.15, output_per_1m: 0.60 }
  gpt-4o: { upstream: mock, input_per_1m: 2.50, output_per_1m: 10.00 }
  o3: { upstream: mock, input_per_1m: 10, output_per_1m: 40 }
  text-embedding-3-small: { upstream: mock, kind: embedding, input_per_1m: 0.02 }
keys:
  - id: alice-dev
    key_hash: "${hashKey(ALICE_KEY)}"
    subject: { user: alice, role: developer, team: research }
policies:
  default_effect: ALLOW
  rules:
    - name: o3_for_admins_only
      effect: DENY
      conditions: { model: { in: [o3] }, user_role: { not_in: [admin] } }
      description: Only admins can use o3
    - name: gpt4o_needs_security
      effect: REQUIRE_APPROVAL
      conditions: { model: { in: [gpt-4o] } }
      constraints: { approver_role: security }
      description: gpt-4o calls need a security review
    - name: prod_deploys_need_approval
      effect: REQUIRE_APPROVAL
      actions: [tool.call]
      conditions: { tool: { in: [deploy] }, tool_args.environment: { matches: "^prod" } }
      constraints: { approver_role: admin }
      description: Production deploys need admin approval
    - name: big_spenders_stop
      effect: DENY
      conditions: { daily_spend: { gt: 100 } }
      description: Over 100 USD a day
audit:
  sinks: ${sinks}
  fsync: interval
  fsync_interval_ms: 20
`;

export interface Harness {
  gateway: Gateway;
  mock: MockUpstream;
  auditDir: string;
  /** Moves the gateway's clock forward (key expiry, rotation grace). */
  advance(ms: number): void;
  admin<T = unknown>(method: string, path: string, body?: unknown, token?: string | null): Promise<Reply<T>>;
  /** A client call: `path` under the gateway, with a virtual key. */
  call<T = unknown>(key: string, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply<T>>;
  /** Flushes the audit queue, so queries see every request made so far. */
  flushAudit(): Promise<void>;
  close(): Promise<void>;
}

/** `json` is typed by the caller (`h.admin<KeyView>(...)`): these tests know the shapes they read. */
export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  json: T;
  text: string;
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string; [extra: string]: unknown };
}

export interface ListBody<T> {
  object: "list";
  data: T[];
  next_cursor: string | null;
}

/** Asserts an OpenAI-shaped error; returns its body for further checks. */
export function expectError(reply: Reply, status: number, code: string, param?: string | null): ErrorBody["error"] {
  const body = reply.json as ErrorBody;
  expect({ status: reply.status, code: body?.error?.code }).toEqual({ status, code });
  if (param !== undefined) expect(body.error.param).toBe(param);
  return body.error;
}

async function send<T>(url: string, method: string, token: string | null, body: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
  const init: RequestInit = { method, headers: { ...headers, ...(token === null ? {} : { authorization: `Bearer ${token}` }) } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // SSE and other non-JSON answers are read through `text`.
  }
  return { status: response.status, headers: response.headers, json: json as T, text };
}

export interface HarnessOptions {
  /** The audit's `sinks` (YAML flow list); by default one file sink in `auditDir`. */
  auditSinks?: string;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const mock = await startMockUpstream({ record: false });
  const root = mkdtempSync(join(tmpdir(), "spark-admin-"));
  const auditDir = join(root, "audit");
  const configPath = join(root, "gateway.yaml");
  const sinks = options.auditSinks ?? `[{ file: { dir: "${auditDir}", retention_days: null } }]`;
  writeFileSync(configPath, CONFIG(mock.url, sinks), "utf8");
  let offset = 0;
  const gateway = await startGateway({
    configPath,
    env: {},
    port: 0,
    clock: () => Date.now() + offset,
    logger: createLogger("silent"),
  });
  return {
    gateway,
    mock,
    auditDir,
    advance: (ms) => {
      offset += ms;
    },
    admin: <T>(method: string, path: string, body?: unknown, token: string | null = ADMIN_TOKEN) =>
      send<T>(`${gateway.url}/admin${path}`, method, token, body),
    call: <T>(key: string, method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
      send<T>(`${gateway.url}${path}`, method, key, body, headers),
    flushAudit: () => gateway.audit.writer.flush(),
    close: async () => {
      await gateway.shutdown();
      await mock.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export const chat = (model: string, text = "hello"): Record<string, unknown> => ({ model, messages: [{ role: "user", content: text }] });
