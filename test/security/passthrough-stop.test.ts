import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, DEFAULT_KEYS, MODELS, SECRETS, type SecGateway, startSecGateway } from "./support.js";

/** An upstream whose file download sends its head and a first piece, then nothing until the gateway lets go. */
let slow: Server;
let g: SecGateway;

beforeAll(async () => {
  slow = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream" });
    res.write("first piece of the file\n");
  });
  await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
  const port = (slow.address() as AddressInfo).port;
  g = await startSecGateway({
    upstreams: `  slow: { base_url: "http://127.0.0.1:${port}/v1", api_key: ${SECRETS.upstream}, timeout_seconds: 30 }`,
    body: `${MODELS}
passthrough: { upstream: slow, paths: [/v1/files] }
${DEFAULT_KEYS}`,
  });
});
afterAll(async () => {
  await g?.close();
  slow?.closeAllConnections();
  await new Promise((resolve) => slow?.close(resolve));
});

describe("a passthrough download stopped once its head was sent", () => {
  it("is cut off, and recorded with the status its client got and the stop's code, as a stopped stream is", async () => {
    const url = new URL(`${g.url}/v1/files/report.bin/content`);
    const outcome = await new Promise<{ status: number; body: string; id: string }>((resolve) => {
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, headers: bearer(SECRETS.alice) }, (res) => {
        let body = "";
        const done = () => resolve({ status: res.statusCode ?? 0, body, id: String(res.headers["x-request-id"]) });
        res.on("data", (chunk: Buffer) => {
          body += chunk.toString();
          if (body.includes("first piece")) {
            void g.request("/admin/stop", { method: "POST", headers: { ...bearer(SECRETS.admin), "content-type": "application/json" }, body: JSON.stringify({ key_id: "alice-dev", reason: "download frozen" }) });
          }
        });
        res.on("error", done);
        res.on("close", done);
      });
      req.end();
    });
    expect(outcome.status).toBe(200);
    expect(outcome.body).toBe("first piece of the file\n");
    let record: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && record === undefined; i++) {
      record = (await g.records()).find((r) => r.id === outcome.id);
      if (record === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(record).toMatchObject({ action: "passthrough", key_id: "alice-dev", status: 200, error_code: "emergency_stop" });
  });
});

describe("a passthrough download its upstream stalls once its head was sent", () => {
  it("is cut at the upstream's timeout, and recorded with the status its client got and upstream_timeout", async () => {
    const port = (slow.address() as AddressInfo).port;
    const impatient = await startSecGateway({
      upstreams: `  slow: { base_url: "http://127.0.0.1:${port}/v1", api_key: ${SECRETS.upstream}, timeout_seconds: 1 }`,
      body: `${MODELS}
passthrough: { upstream: slow, paths: [/v1/files] }
${DEFAULT_KEYS}`,
    });
    try {
      const url = new URL(`${impatient.url}/v1/files/report.bin/content`);
      const outcome = await new Promise<{ status: number; id: string }>((resolve) => {
        const req = request({ host: url.hostname, port: url.port, path: url.pathname, headers: bearer(SECRETS.alice) }, (res) => {
          const done = () => resolve({ status: res.statusCode ?? 0, id: String(res.headers["x-request-id"]) });
          res.resume();
          res.on("error", done);
          res.on("close", done);
        });
        req.end();
      });
      expect(outcome.status).toBe(200);
      await expect.poll(async () => (await impatient.records()).find((r) => r.id === outcome.id), { timeout: 3000 }).toMatchObject({
        action: "passthrough",
        status: 200,
        error_code: "upstream_timeout",
      });
    } finally {
      await impatient.close();
    }
  });
});
