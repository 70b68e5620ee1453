import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request as httpRequest } from "node:http";
import { type AddressInfo, createServer } from "node:net";
import OpenAI, { APIError } from "openai";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockUpstream, startMockUpstream } from "../../mock/upstream.js";
import { startGateway } from "../../src/gateway.js";
import { freePort } from "../helpers/index.js";
import { startRedis } from "../helpers/redis.js";

const KEY = "sk-ops-key";
const ADMIN = "ops-admin-token";
const hash = (k: string): string => `sha256:${createHash("sha256").update(k).digest("hex")}`;

let mock: MockUpstream;
let dir: string;

function writeConfig(path: string, rule: string): void {
  writeFileSync(
    path,
    `org: acme
server: { host: 127.0.0.1, port: 0, drain_seconds: 5 }
admin: { token: ${ADMIN} }
store: { memory: { snapshot: "${join(dir, "state.json")}" } }
upstreams: { openai: { base_url: "${mock.url}", api_key: sk-up } }
models: { gpt-4o-mini: { upstream: openai, input_per_1m: 1.0, output_per_1m: 2.0 } }
keys: [{ id: ops, key_hash: "${hash(KEY)}", subject: { user: olga, role: developer, team: ops }, limits: { daily_cost: 5 } }]
policies: { rules: [${rule}] }
audit: { sinks: [{ file: { dir: "${join(dir, "audit")}" } }] }
`,
  );
}

beforeAll(async () => {
  mock = await startMockUpstream({});
  dir = mkdtempSync(join(tmpdir(), "spark-ops-"));
});
afterAll(async () => mock.close());

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const client = (url: string, key = KEY): OpenAI => new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 });
const ask = (url: string, key = KEY) => client(url, key).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "tokens:100" }] });

describe("operating the gateway", () => {
  it("reloads a changed config and keeps the old one when the new one is bad", async () => {
    const path = join(dir, "reload.yaml");
    writeConfig(path, "");
    const gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
    try {
      await expect(ask(gateway.url)).resolves.toBeTruthy();
      writeConfig(path, "{ name: block, effect: DENY, conditions: {}, description: closed for maintenance }");
      expect(gateway.reload()).toBe(true);
      await expect(ask(gateway.url)).rejects.toMatchObject({ status: 403, code: "policy_denied" });
      writeFileSync(path, readFileSync(path, "utf8").replace("effect: DENY", "effect: NOPE"));
      expect(gateway.reload()).toBe(false);
      const error = await ask(gateway.url).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(APIError);
      expect((error as APIError).message).toContain("closed for maintenance");
    } finally {
      await gateway.shutdown();
    }
  });

  it("refuses a reload whose config key takes a runtime key's id or secret, and warns at startup of one already taken", async () => {
    const path = join(dir, "shadow.yaml");
    writeConfig(path, "");
    const logged: string[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => logged.push(line) });
    let gateway = await startGateway({ configPath: path, env: {}, logger });
    try {
      const response = await fetch(`${gateway.url}/admin/keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ id: "rt-shadow", subject: { user: "rita" } }),
      });
      const created = (await response.json()) as { key: string };
      const runtimeClient = new OpenAI({ apiKey: created.key, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
      const listModels = () => runtimeClient.models.list();
      await expect(listModels()).resolves.toBeTruthy();
      const shadowing = readFileSync(path, "utf8").replace(
        "keys: [",
        `keys: [{ id: rt-shadow, key_hash: "${hash("sk-other")}", subject: { user: rita, role: admin } }, `,
      );
      writeFileSync(path, shadowing);
      expect(gateway.reload()).toBe(false);
      expect(logged.some((line) => line.includes("keys[0].id") && line.includes("rt-shadow"))).toBe(true);
      // The runtime key still answers as itself.
      await expect(listModels()).resolves.toBeTruthy();
      // Nor may a config key take its secret under another id: that secret would open the runtime key.
      writeConfig(path, "");
      writeFileSync(path, readFileSync(path, "utf8").replace("keys: [", `keys: [{ id: copied, key_hash: "${hash(created.key)}", subject: { user: mallory, role: admin } }, `));
      logged.length = 0;
      expect(gateway.reload()).toBe(false);
      expect(logged.some((line) => line.includes("keys[0].key_hash") && line.includes("runtime key `rt-shadow`"))).toBe(true);
      // Nor may the admin token or an approver's: a virtual key is never an admin credential.
      for (const admin of [`{ token: ${created.key} }`, `{ token: ${ADMIN}, approvers: [{ name: vic, role: admin, token_hash: "${hash(created.key)}" }] }`]) {
        writeConfig(path, "");
        writeFileSync(path, readFileSync(path, "utf8").replace(`admin: { token: ${ADMIN} }`, `admin: ${admin}`));
        logged.length = 0;
        expect(gateway.reload()).toBe(false);
        expect(logged.some((line) => line.includes("admin.") && line.includes("runtime key `rt-shadow`"))).toBe(true);
      }
      writeFileSync(path, shadowing);
      await gateway.shutdown();
      // Started on that config (the snapshot holds the runtime key): it runs, and says what it replaced.
      logged.length = 0;
      gateway = await startGateway({ configPath: path, env: {}, logger });
      const warning = logged.map((line) => JSON.parse(line) as { level: number; msg: string }).find((entry) => entry.msg.includes("clash with runtime keys"));
      expect(warning?.level).toBe(40);
      expect(warning?.msg).toContain("keys[0].id");
      // A runtime key's secret that a config names as an approver's token, the gateway started on it: still no admin credential.
      await gateway.shutdown();
      writeConfig(path, "");
      writeFileSync(path, readFileSync(path, "utf8").replace(`admin: { token: ${ADMIN} }`, `admin: { token: ${ADMIN}, approvers: [{ name: vic, role: admin, token_hash: "${hash(created.key)}" }] }`));
      gateway = await startGateway({ configPath: path, env: {}, logger });
      const asAdmin = await fetch(`${gateway.url}/admin/approvals`, { headers: { authorization: `Bearer ${created.key}` } });
      expect(asAdmin.status).toBe(401);
      expect(((await asAdmin.json()) as { error: { code: string } }).error.code).toBe("invalid_admin_token");
    } finally {
      await gateway.shutdown();
    }
  });

  it("says which reloaded settings wait for a restart, and keeps the replica's name (its audit chain) until then", async () => {
    const path = join(dir, "restart-only.yaml");
    writeConfig(path, "");
    const logged: string[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => logged.push(line) });
    const gateway = await startGateway({ configPath: path, env: {}, logger });
    try {
      await ask(gateway.url);
      const before = gateway.services.current().replica;
      writeFileSync(path, readFileSync(path, "utf8").replace("drain_seconds: 5", "drain_seconds: 5, replica_id: renamed, header_timeout_seconds: 3"));
      expect(gateway.reload()).toBe(true);
      expect(gateway.services.current().replica).toBe(before);
      const warnings = () => logged.map((line) => JSON.parse(line) as { level: number; settings?: string[] }).filter((entry) => entry.settings !== undefined);
      expect(warnings()).toEqual([expect.objectContaining({ level: 40, settings: ["server.replica_id", "server.header_timeout_seconds"] })]);
      // Set back to what the process runs on: nothing waits for a restart any more.
      writeConfig(path, "");
      expect(gateway.reload()).toBe(true);
      expect(warnings()).toHaveLength(1);
    } finally {
      await gateway.shutdown();
    }
  });

  it("watches the config's path: a file replaced by a rename (editors, mv, ConfigMaps) reloads every time", async () => {
    const path = join(dir, "watched.yaml");
    writeConfig(path, "");
    const gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }), watchConfig: true });
    const replace = (rule: string): void => {
      writeConfig(`${path}.new`, rule);
      renameSync(`${path}.new`, path);
    };
    const denied = (): Promise<boolean> => ask(gateway.url).then(
      () => false,
      (error: unknown) => (error as APIError).code === "policy_denied",
    );
    try {
      for (const [round, rule] of ["{ name: block, effect: DENY, conditions: {} }", "", "{ name: block, effect: DENY, conditions: {} }"].entries()) {
        replace(rule);
        await until(async () => (await denied()) === (rule !== ""), `replacement ${round + 1} to take effect`);
      }
    } finally {
      await gateway.shutdown();
    }
  });

  it("starts while its Redis is down: /readyz 503, /healthz 200; calls refused, under fail_open too, until it has read the stops and the runtime keys", async () => {
    for (const mode of ["fail_open", "fail_closed"]) {
      const path = join(dir, `redis-down-${mode}.yaml`);
      writeConfig(path, "");
      const down = await freePort();
      writeFileSync(
        path,
        readFileSync(path, "utf8")
          .replace(/^store: .*$/m, `store: { redis: { url: "redis://127.0.0.1:${down}", prefix: "down:" }, on_error: ${mode} }`)
          // No limit to check: only the stops the replica could not read stand in the call's way.
          .replace(", limits: { daily_cost: 5 }", ""),
      );
      const gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
      try {
        expect((await fetch(`${gateway.url}/readyz`)).status).toBe(503);
        expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
        // A key this replica never saw stopped may be stopped: it cannot tell, and fail_open covers limits and budgets, not stops.
        await expect(ask(gateway.url)).rejects.toMatchObject({ status: 503, code: "store_unavailable", message: expect.stringContaining("emergency stops") });
        // A secret no config key has may be a runtime key it has not read: retryable, not 401.
        await expect(ask(gateway.url, "sk-made-at-runtime")).rejects.toMatchObject({ status: 503, code: "store_unavailable", message: expect.stringContaining("runtime keys") });
      } finally {
        await gateway.shutdown();
      }
    }
  }, 30_000);

  it("answers /readyz 200 once its Redis is back only when it serves calls again (it has read the stops and keys)", async () => {
    const redis = await startRedis();
    if (redis === null) return;
    const path = join(dir, "redis-back.yaml");
    writeConfig(path, "");
    writeFileSync(
      path,
      readFileSync(path, "utf8")
        .replace(/^store: .*$/m, `store: { redis: { url: "${redis.url}", prefix: "back:" }, on_error: fail_closed }`)
        .replace(", limits: { daily_cost: 5 }", ""),
    );
    await redis.stop();
    const gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
    try {
      expect((await fetch(`${gateway.url}/readyz`)).status).toBe(503);
      await redis.restart();
      await until(async () => (await fetch(`${gateway.url}/readyz`)).status === 200, "the replica to be ready", 10_000);
      await expect(ask(gateway.url)).resolves.toBeTruthy();
    } finally {
      await gateway.shutdown();
      await redis.stop();
    }
  }, 30_000);

  it("logs why its Redis refuses it (a wrong password), not only that commands could not be sent", async () => {
    const refusing = createServer((socket) => socket.on("data", () => socket.write("-WRONGPASS invalid username-password pair or user is disabled.\r\n")));
    await new Promise<void>((resolve) => refusing.listen(0, "127.0.0.1", resolve));
    const path = join(dir, "redis-wrongpass.yaml");
    writeConfig(path, "");
    const port = (refusing.address() as AddressInfo).port;
    writeFileSync(path, readFileSync(path, "utf8").replace(/^store: .*$/m, `store: { redis: { url: "redis://:not-the-password@127.0.0.1:${port}", prefix: "pw:" } }`));
    const logged: string[] = [];
    const gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "info" }, { write: (line: string) => logged.push(line) }) });
    try {
      expect(logged.some((line) => line.includes("state store connection") && line.includes("WRONGPASS"))).toBe(true);
      expect(logged.join("\n")).not.toContain("not-the-password");
    } finally {
      await gateway.shutdown();
      refusing.close();
    }
  }, 20_000);

  it("keeps spend across a restart through the snapshot file", async () => {
    const path = join(dir, "snapshot.yaml");
    writeConfig(path, "");
    const first = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
    await ask(first.url);
    await ask(first.url);
    const spent = await first.services.store.usage("key:ops", Date.now());
    expect(spent.dailyMicros).toBeGreaterThan(0);
    await first.shutdown();
    const second = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
    try {
      const restored = await second.services.store.usage("key:ops", Date.now());
      expect(restored.dailyMicros).toBe(spent.dailyMicros);
      expect(restored.totalMicros).toBe(spent.totalMicros);
    } finally {
      await second.shutdown();
    }
  });

  it("exposes health, readiness and admin-protected Prometheus metrics", async () => {
    const path = join(dir, "metrics.yaml");
    writeConfig(path, "");
    const gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
    try {
      await ask(gateway.url);
      // Refused before the upstream (no such model): its tokens are in no usage counter.
      await client(gateway.url).chat.completions.create({ model: "gpt-9", messages: [{ role: "user", content: "x".repeat(400) }] }).catch(() => undefined);
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      expect(await (await fetch(`${gateway.url}/readyz`)).json()).toMatchObject({ status: "ready", store: "memory" });
      const anonymous = await fetch(`${gateway.url}/metrics`);
      expect(anonymous.status).toBe(401);
      expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("invalid_admin_token");
      const withVirtualKey = await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } });
      expect(withVirtualKey.status).toBe(401);
      const metrics = await (await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
      expect(metrics).toMatch(/spark_requests_total\{route="\/v1\/chat\/completions",status="200",effect="ALLOW",rule=""\} 1/);
      expect(metrics).toMatch(/spark_tokens_total\{model="gpt-4o-mini",team="ops",direction="output"\} 100/);
      expect(metrics).not.toContain('model="gpt-9"');
      expect(metrics).toContain("# TYPE spark_audit_dropped_total counter");
      expect(metrics).toContain("# TYPE spark_calls_uncharged_total counter");
      expect(metrics).toContain("spark_cost_usd_total");
      expect(metrics).toMatch(/spark_request_duration_seconds_count\{route="\/v1\/chat\/completions"\} 2/);
      expect(metrics).toMatch(/spark_upstream_duration_seconds_count\{route="\/v1\/chat\/completions"\} 1/);
      expect(metrics).toMatch(/spark_requests_total\{route="\/v1\/chat\/completions",status="404",effect="none",rule=""\} 1/);
    } finally {
      await gateway.shutdown();
    }
  });

  it("drains on shutdown: an open stream finishes and its record is written", async () => {
    const path = join(dir, "drain.yaml");
    writeConfig(path, "");
    const gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
    const stream = await client(gateway.url).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "tokens:10 chunks:10 delay:50" }],
      stream: true,
    });
    const stopping = gateway.shutdown();
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    await stopping;
    expect(text.split(" ").length).toBe(10);
    const files = readFileSync(join(dir, "audit", (await import("node:fs")).readdirSync(join(dir, "audit")).sort().at(-1)!), "utf8");
    expect(files).toContain('"stream":true');
  });

  it("cuts at drain_seconds: the open stream ends with a shutting_down error event, and its record is written", async () => {
    const path = join(dir, "cut.yaml");
    writeConfig(path, "");
    writeFileSync(path, readFileSync(path, "utf8").replace("drain_seconds: 5", "drain_seconds: 0.3"));
    const auditDir = join(dir, "audit-cut");
    writeFileSync(path, readFileSync(path, "utf8").replace(join(dir, "audit"), auditDir));
    const gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
    const stream = await client(gateway.url).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "tokens:40 chunks:40 delay:100" }],
      stream: true,
    });
    const stopping = gateway.shutdown();
    let chunks = 0;
    const outcome = await (async () => {
      for await (const _chunk of stream) chunks++;
      return "ended quietly";
    })().catch((error: unknown) => error);
    await stopping;
    expect(chunks).toBeLessThan(40);
    expect(outcome).toBeInstanceOf(APIError);
    expect((outcome as APIError).code).toBe("shutting_down");
    const lines = readFileSync(join(auditDir, readdirSync(auditDir).sort().at(-1)!), "utf8").split("\n").filter((l) => l !== "");
    const record = lines.map((l) => JSON.parse(l) as { stream: boolean; error_code: string | null }).find((r) => r.stream);
    expect(record?.error_code).toBe("shutting_down");
  });

  it("cuts a call still waiting at drain_seconds with 503 shutting_down and connection: close", async () => {
    const path = join(dir, "cut-call.yaml");
    writeConfig(path, "");
    writeFileSync(path, readFileSync(path, "utf8").replace("drain_seconds: 5", "drain_seconds: 0.3"));
    const gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
    const answered = new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
      const req = httpRequest(`${gateway.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" } }, (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
      });
      req.on("error", reject);
      req.end(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "slow_headers:3000 hi" }] }));
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopping = gateway.shutdown();
    const outcome = await answered;
    await stopping;
    expect(outcome.status).toBe(503);
    expect(outcome.connection).toBe("close");
    expect(outcome.body).toContain("shutting_down");
  });

  it("refuses to start, naming the path, where it cannot make its audit or snapshot directory (never hangs)", async () => {
    const dangling = join(dir, "dangling");
    symlinkSync(join(dir, "nowhere"), dangling);
    for (const [from, to] of [
      [join(dir, "audit"), "/proc/spark-nope/audit"],
      [`"${join(dir, "state.json")}"`, `"${join(dangling, "state.json")}"`],
      [`"${join(dir, "state.json")}"`, '"/proc/spark-nope/state.json"'],
    ] as const) {
      const path = join(dir, "unwritable.yaml");
      writeConfig(path, "");
      writeFileSync(path, readFileSync(path, "utf8").replace(from, to));
      const started = Date.now();
      await expect(startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) })).rejects.toThrow(/spark-nope|dangling/);
      expect(Date.now() - started).toBeLessThan(5_000);
    }
  });

  it("answers a client waiting on x-approval-wait approval_required with its id as soon as the drain starts", async () => {
    const path = join(dir, "wait.yaml");
    writeConfig(path, "{ name: gate, effect: REQUIRE_APPROVAL, conditions: { prompt_text: { contains: NEEDAPPROVAL } }, description: gated }");
    const gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
    const waiting = new OpenAI({ apiKey: KEY, baseURL: `${gateway.url}/v1`, maxRetries: 0, defaultHeaders: { "x-approval-wait": "60" } });
    const started = Date.now();
    const call = waiting.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "NEEDAPPROVAL tokens:3" }] }).catch((error: unknown) => error);
    await until(async () => gateway.services.streams.size > 0, "the call to wait");
    await new Promise((resolve) => setTimeout(resolve, 200));
    await gateway.shutdown();
    const outcome = await call;
    expect(outcome).toBeInstanceOf(APIError);
    expect((outcome as APIError).code).toBe("approval_required");
    expect(((outcome as APIError).error as { approval_id?: unknown }).approval_id).toMatch(/^apr_/);
    // Well inside drain_seconds (5): the wait did not hold the drain.
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
