import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createNotifier } from "../../src/approvals/notify.js";

const servers: ReturnType<typeof createServer>[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A receiver refusing its first `failures` deliveries; resolves each delivery it took. */
async function receiver(failures: number): Promise<{ url: string; attempts: () => number; delivered: Promise<string> }> {
  let attempts = 0;
  let deliver: (body: string) => void = () => undefined;
  const delivered = new Promise<string>((resolve) => {
    deliver = resolve;
  });
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on("end", () => {
      attempts++;
      if (attempts <= failures) return void res.writeHead(503).end();
      res.writeHead(204).end();
      deliver(body);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, attempts: () => attempts, delivered };
}

describe("approval webhook delivery", () => {
  it("keeps trying past a receiver's longer outage: the seventh attempt delivers", async () => {
    const hook = await receiver(6);
    const notifier = createNotifier(() => ({ url: hook.url, secret: "s" }), pino({ level: "silent" }), () => 1);
    notifier.send("approval.created", { id: "apr_1" });
    expect(JSON.parse(await hook.delivered)).toMatchObject({ type: "approval.created", approval: { id: "apr_1" } });
    expect(hook.attempts()).toBe(7);
  });

  it("gives up after ten attempts, and says so", async () => {
    const hook = await receiver(100);
    const lines: string[] = [];
    const log = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });
    createNotifier(() => ({ url: hook.url, secret: "s" }), log, () => 1).send("approval.created", { id: "apr_2" });
    await expect.poll(() => lines.find((line) => line.includes("given up")), { timeout: 5000 }).toMatch(/"approval_id":"apr_2","event":"approval\.created"/);
    expect(hook.attempts()).toBe(10);
  });
});
