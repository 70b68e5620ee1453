import { spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join } from "node:path";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockUpstream, startMockUpstream } from "../../mock/upstream.js";
import { verifyFiles } from "../../src/audit/verify.js";
import { freePort, type StartedProcess, startProcess, writeTempConfig } from "../helpers/index.js";
import { DEFAULT_KEYS, findSecrets, MODELS, readAudit, SECRETS, sha256Ref, until } from "./support.js";

/** SIGTERM to a real gateway process (dist/, as `npm start` runs it) while streams are open. */
const MAIN = join(process.cwd(), "dist/src/main.js");

let mock: MockUpstream;
beforeAll(async () => {
  mock = await startMockUpstream();
});
afterAll(async () => {
  await mock?.close();
});

describe.skipIf(!existsSync(MAIN))("process faults", () => {
  it("SIGTERM with open streams: the streams finish, exit code 0, the audit file has every record", async () => {
    const port = await freePort();
    const auditDir = join(mkdtempSync(join(tmpdir(), "spark-sec-proc-")), "audit");
    const config = writeTempConfig(`
org: acme
server: { host: 127.0.0.1, port: 1, drain_seconds: 20, replica_id: proc }
admin: { token: ${SECRETS.admin}, approvers: [{ name: dana, role: security, token_hash: "${sha256Ref(SECRETS.approver)}" }] }
store: { memory: { snapshot: null } }
upstreams:
  openai: { base_url: "${mock.url}", api_key: ${SECRETS.upstream}, timeout_seconds: 5 }
audit:
  sinks: [{ file: { dir: "${auditDir}" } }]
  fsync: interval
  fsync_interval_ms: 200
${MODELS}${DEFAULT_KEYS}`);
    const gw: StartedProcess = await startProcess("node", [MAIN, "--config", config], {
      env: { PORT: String(port), LOG_LEVEL: "debug" },
      waitForUrl: `http://127.0.0.1:${port}/healthz`,
    });
    const agent = new Agent({ keepAliveTimeout: 1_000 });
    try {
      const base = `http://127.0.0.1:${port}`;
      const headers = { authorization: `Bearer ${SECRETS.alice}`, "content-type": "application/json" };
      const ids: string[] = [];
      // Some finished calls first.
      for (let i = 0; i < 5; i++) {
        const res = await request(`${base}/v1/chat/completions`, {
          method: "POST",
          headers,
          body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `say:done ${i}` }] }),
          dispatcher: agent,
        });
        await res.body.text();
        expect(res.statusCode).toBe(200);
        ids.push(String(res.headers["x-request-id"]));
      }
      // Five streams of ~2 s each.
      const STREAMS = 5;
      let started = 0;
      const streams = Array.from({ length: STREAMS }, async () => {
        const res = await request(`${base}/v1/chat/completions`, {
          method: "POST",
          headers,
          body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "tokens:20 chunks:20 delay:100" }], stream: true }),
          dispatcher: agent,
        });
        ids.push(String(res.headers["x-request-id"]));
        let text = "";
        for await (const chunk of res.body) {
          if (text === "") started += 1;
          text += (chunk as Buffer).toString("utf8");
        }
        return { status: res.statusCode, text };
      });
      await until(() => started === STREAMS, 10_000, "every stream to send its first bytes");
      const exit = gw.stop("SIGTERM", 30_000);
      // Draining: still listening while the streams finish, so a load balancer reads /readyz's 503,
      // and a new request is refused with 503 shutting_down on a connection that then closes.
      await until(async () => (await fetch(`${base}/readyz`)).status === 503, 5_000, "/readyz to turn 503");
      const late = await request(`${base}/v1/chat/completions`, {
        method: "POST",
        headers,
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "too late" }] }),
      });
      expect(late.statusCode).toBe(503);
      expect(late.headers.connection).toBe("close");
      expect(((await late.body.json()) as { error: { code: string } }).error.code).toBe("shutting_down");
      ids.push(String(late.headers["x-request-id"]));
      const results = await Promise.all(streams);
      for (const r of results) {
        expect(r.status).toBe(200);
        expect(r.text).toContain("data: [DONE]");
        expect(r.text).toMatch(/: gateway-cost \d+\.\d{6}/);
        expect(r.text).not.toContain('"error"');
      }
      expect(await exit).toBe(0);
      expect(await refused(port)).toBe(true);
      expect(gw.output()).toContain("stopped");

      const records = readAudit(auditDir);
      const recorded = new Set(records.map((r) => String(r.id)));
      expect(ids.filter((id) => !recorded.has(id))).toEqual([]);
      expect(records.find((r) => r.id === ids.at(-1))).toMatchObject({ status: 503, error_code: "shutting_down" });
      for (const id of ids.slice(5, -1)) {
        const record = records.find((r) => r.id === id)!;
        expect(record.status).toBe(200);
        expect(record.stream).toBe(true);
        expect(record.output_tokens).toBe(20);
      }
      expect(await verifyFiles(auditDir)).toEqual({ ok: true, records: records.length });
      expect(findSecrets({ logs: [gw.output()] })).toEqual([]);
    } finally {
      await agent.close();
      await gw.stop("SIGKILL");
    }
  }, 60_000);
});

describe.skipIf(!existsSync(MAIN))("a log reader that goes away", () => {
  it("does not keep the gateway from exiting 0 on SIGTERM", async () => {
    const port = await freePort();
    const config = writeTempConfig(`
org: acme
server: { host: 127.0.0.1, port: 1, drain_seconds: 2 }
admin: { token: ${SECRETS.admin} }
store: { memory: { snapshot: null } }
upstreams:
  openai: { base_url: "${mock.url}", api_key: ${SECRETS.upstream} }
audit: { sinks: [{ file: { dir: "${join(mkdtempSync(join(tmpdir(), "spark-sec-epipe-")), "audit")}" } }] }
${MODELS}${DEFAULT_KEYS}`);
    const child = spawn(process.execPath, [MAIN, "--config", config], { env: { ...process.env, PORT: String(port), LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "ignore"] });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await until(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok === true, 10_000);
      // The reader of its stdout (a log shipper) dies: every line logged from now on meets a closed pipe.
      child.stdout?.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      child.kill("SIGTERM");
      const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve("still running"), 10_000))]);
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 30_000);
});

describe.skipIf(!existsSync(MAIN))("signals while the gateway starts", () => {
  const unreachableStore = async () =>
    writeTempConfig(`
org: acme
server: { host: 127.0.0.1, port: 1 }
admin: { token: ${SECRETS.admin} }
store: { redis: { url: "redis://127.0.0.1:${await freePort()}" } }
upstreams:
  openai: { base_url: "${mock.url}", api_key: ${SECRETS.upstream} }
audit: { sinks: [{ file: { dir: "${join(mkdtempSync(join(tmpdir(), "spark-sec-term-")), "audit")}" } }] }
${MODELS}${DEFAULT_KEYS}`);

  it("SIGTERM and SIGINT drain it once it is up, exit 0, rather than end it by the signal", async () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const child = spawn(process.execPath, [MAIN, "--config", await unreachableStore()], { env: { ...process.env, PORT: String(await freePort()) }, stdio: "ignore" });
      try {
        const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once("exit", (code, by) => resolve({ code, signal: by })));
        await new Promise((resolve) => setTimeout(resolve, 1500));
        child.kill(signal);
        expect(await exited, signal).toEqual({ code: 0, signal: null });
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL");
      }
    }
  }, 40_000);

  it("SIGHUP does not end it (the config is reloaded once it is up)", async () => {
    const config = await unreachableStore();
    // Its store cannot be reached: it keeps starting (trying to connect) for seconds.
    const child = spawn(process.execPath, [MAIN, "--config", config], { env: { ...process.env, PORT: String(await freePort()) }, stdio: "ignore" });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      child.kill("SIGHUP");
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect({ exitCode: child.exitCode, signal: child.signalCode }).toEqual({ exitCode: null, signal: null });
    } finally {
      child.kill("SIGKILL");
    }
  }, 20_000);
});

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
}
