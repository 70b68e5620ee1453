import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, chatBody, leaksOf, SECRETS, type SecGateway, sleep, startSecGateway, until } from "./support.js";

let g: SecGateway;

beforeAll(async () => {
  g = await startSecGateway({ server: "header_timeout_seconds: 1, body_timeout_seconds: 2" });
});
afterAll(async () => {
  await g?.close();
});

/**
 * Sends a request on a raw socket, waits until `cutWhen` holds for what came back (or the request
 * was fully sent, for `cutWhen` undefined plus `afterMs`), then destroys the socket.
 * Returns the audit id from the response headers when they arrived.
 */
function disconnectAfter(body: string, cutWhen: (received: string) => boolean, afterMs = 0): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: g.host, port: g.port });
    let received = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no cut point within 10 s; got ${received.slice(0, 300)}`));
    }, 10_000);
    const cut = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(/x-request-id: (\S+)\r\n/i.exec(received)?.[1] ?? null);
    };
    socket.on("error", () => undefined);
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("utf8");
      if (cutWhen(received)) cut();
    });
    socket.on("connect", () => {
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.solo}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      if (afterMs > 0) setTimeout(cut, afterMs);
    });
  });
}

describe("client faults", () => {
  it("20 disconnects mid-stream: upstream aborted, audit 499 client_closed with what was streamed, slot released — every time", async () => {
    const N = 20;
    const startAborts = g.mock.aborts;
    const ids: string[] = [];
    for (let run = 0; run < N; run++) {
      const body = chatBody("tokens:200 chunks:200 delay:20", { stream: true });
      // Cut once a few content chunks went through.
      const id = await disconnectAfter(body, (text) => (text.match(/"content":"[^"]+"/g) ?? []).length >= 3);
      expect(id, `run ${run}`).not.toBeNull();
      ids.push(id!);
      await until(() => g.mock.aborts >= startAborts + run + 1, 5_000, `upstream abort #${run + 1}`);
      await until(async () => (await g.records()).some((r) => r.id === id), 5_000, `audit record of run ${run}`);
    }
    expect(g.mock.aborts - startAborts).toBe(N);
    const records = await g.records();
    for (const id of ids) {
      const record = records.find((r) => r.id === id)!;
      expect(record.status, id).toBe(499);
      expect(record.error_code, id).toBe("client_closed");
      expect(record.output_tokens as number, id).toBeGreaterThan(0);
      expect(typeof record.cost).toBe("number");
    }
    // solo has max_parallel_requests: 1: had any run kept its slot, this call would be 429.
    const after = await g.request("/v1/chat/completions", { method: "POST", headers: bearer(SECRETS.solo), body: chatBody("say:ok") });
    expect(after.status, after.text).toBe(200);
  }, 120_000);

  it("a disconnect while waiting for the upstream's headers aborts it and is audited as 499", async () => {
    const startAborts = g.mock.aborts;
    const before = (await g.records()).length;
    for (let run = 0; run < 5; run++) {
      await disconnectAfter(chatBody("slow_headers:1500"), () => false, 200);
      await until(() => g.mock.aborts >= startAborts + run + 1, 5_000, `upstream abort #${run + 1}`);
      await until(async () => (await g.records()).length >= before + run + 1, 5_000, "the audit record");
    }
    const fresh = (await g.records()).slice(before);
    expect(fresh.map((r) => [r.status, r.error_code])).toEqual(Array.from({ length: 5 }, () => [499, "client_closed"]));
  }, 60_000);

  it("slowloris: clients dripping their headers slower than header_timeout_seconds are disconnected, others are served meanwhile", async () => {
    const SLOW = 40;
    const header = `GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Padding: ${"p".repeat(60)}\r\n\r\n`;
    const sockets: Array<{ socket: Socket; closed: boolean; sent: number; answered: boolean }> = [];
    for (let i = 0; i < SLOW; i++) {
      const socket = connect({ host: g.host, port: g.port });
      const entry = { socket, closed: false, sent: 0, answered: false };
      socket.on("close", () => {
        entry.closed = true;
      });
      socket.on("data", () => {
        entry.answered = true;
      });
      socket.on("error", () => undefined);
      sockets.push(entry);
    }
    let dripping = true;
    const drip = (async () => {
      while (dripping) {
        for (const entry of sockets) {
          if (!entry.closed && entry.sent < header.length - 1) {
            entry.socket.write(header[entry.sent]!);
            entry.sent += 1;
          }
        }
        await sleep(250);
      }
    })();
    // Meanwhile, ordinary clients are served.
    let served = 0;
    const deadline = Date.now() + 2_500;
    while (Date.now() < deadline) {
      const res = await g.request("/v1/chat/completions", { method: "POST", headers: bearer(SECRETS.alice), body: chatBody("say:hi") });
      expect(res.status).toBe(200);
      served += 1;
    }
    await until(() => sockets.every((s) => s.closed), 10_000, "every slow client to be disconnected");
    dripping = false;
    await drip;
    expect(served).toBeGreaterThan(0);
    for (const entry of sockets) {
      expect(entry.sent).toBeLessThan(header.length - 1);
      expect(entry.answered).toBe(false);
    }
    expect((await g.request("/healthz")).status).toBe(200);
  }, 60_000);

  it("cuts a client whose body stops arriving after body_timeout_seconds, and audits it as 499", async () => {
    const before = (await g.records()).length;
    const socket = connect({ host: g.host, port: g.port });
    let closed = false;
    socket.on("close", () => {
      closed = true;
    });
    socket.on("error", () => undefined);
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.alice}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":`);
    const started = Date.now();
    await until(() => closed, 10_000, "the slow body's connection to be cut");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    await until(async () => (await g.records()).length > before, 5_000, "the audit record");
    expect((await g.records()).slice(before).map((r) => [r.status, r.error_code])).toEqual([[499, "client_closed"]]);
  }, 30_000);

  it("takes a client that half-closes once its request is sent as gone: audited 499, not run for nobody", async () => {
    const before = (await g.records()).length;
    const upstreamBefore = g.mock.requests.length;
    const body = chatBody("slow_headers:300 say:half");
    const result = await g.raw(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.alice}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      { endAfterWrite: true },
    );
    expect(result.statuses).toEqual([]);
    await until(async () => (await g.records()).length > before, 5_000, "the audit record");
    expect((await g.records()).slice(before).map((r) => [r.status, r.error_code])).toEqual([[499, "client_closed"]]);
    expect(g.mock.requests.length - upstreamBefore).toBeLessThanOrEqual(1);
  });

  it("no secret leaked", () => {
    expect(leaksOf(g)).toEqual([]);
  });
});
