import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/http/errors.js";
import { CallAbort } from "../../src/pipeline/call-abort.js";
import { Agent } from "undici";
import { createUpstreamTarget, forward, forwardWhole, type UpstreamTarget, upstreamUrl } from "../../src/upstream/forward.js";

let server: Server | null = null;

afterEach(async () => {
  const open = server;
  server = null;
  if (open === null) return;
  open.closeAllConnections();
  await new Promise((resolve) => open.close(resolve));
});

async function upstream(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  server = createServer(handler);
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const target = createUpstreamTarget("t", {
    base_url: `http://127.0.0.1:${port}/v1`,
    api_key: "sk-upstream-secret",
    timeout_seconds: 5,
    connect_timeout_seconds: 2,
  } as Parameters<typeof createUpstreamTarget>[1]);
  return (cancel = new CallAbort(), onHead: () => void = () => undefined) =>
    forwardWhole(target, upstreamUrl(target, "/v1/chat/completions", ""), "POST", { "content-type": "application/json" }, Buffer.from("{}"), cancel, onHead);
}

describe("forwardWhole", () => {
  it("collects an answer sent in pieces, its head reported when it arrived and an informational head skipped", async () => {
    const send = await upstream((_req, res) => {
      res.writeEarlyHints({ link: "</a>; rel=preload" });
      res.writeHead(201, { "content-type": "application/json", "x-upstream": "yes" });
      res.write('{"a":');
      setTimeout(() => res.end("1}"), 30);
    });
    let heads = 0;
    const answer = await send(new CallAbort(), () => heads++);
    expect(answer.status).toBe(201);
    expect(answer.headers["x-upstream"]).toBe("yes");
    expect(answer.body.toString()).toBe('{"a":1}');
    // Once, for the real head.
    expect(heads).toBe(1);
  });

  it("a cancel while the upstream is silent rejects with the cancel's reason and closes the upstream request", async () => {
    let upstreamClosed: Promise<void> = new Promise(() => undefined);
    const send = await upstream((req, res) => {
      upstreamClosed = new Promise((resolve) => res.on("close", () => resolve()));
      req.resume();
    });
    const cancel = new CallAbort();
    const pending = send(cancel);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const reason = new GatewayError(403, "emergency_stop", "stopped");
    cancel.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await upstreamClosed;
    expect(cancel.listenerCount("abort")).toBe(0);
  });

  it("a call cancelled before it is sent never reaches the upstream", async () => {
    let reached = false;
    const send = await upstream((_req, res) => {
      reached = true;
      res.end("{}");
    });
    const cancel = new CallAbort();
    cancel.abort(new Error("client gone"));
    await expect(send(cancel)).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reached).toBe(false);
  });

  it("an answer cut off after its head is a 502 that says so, and stops listening for a cancel", async () => {
    const send = await upstream((_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const cancel = new CallAbort();
    let heads = 0;
    const error = await send(cancel, () => heads++).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).status).toBe(502);
    expect((error as GatewayError).message).toContain("cut off");
    // The upstream was reached and answered: its head was reported though the body never came whole.
    expect(heads).toBe(1);
    expect(cancel.listenerCount("abort")).toBe(0);
  });

  it("an upstream that cannot be reached is a 502 that says it was not reached", async () => {
    const send = await upstream((_req, res) => res.end());
    const open = server as Server;
    server = null;
    open.closeAllConnections();
    await new Promise((resolve) => open.close(resolve));
    const error = await send().catch((e: unknown) => e);
    expect((error as GatewayError).status).toBe(502);
    expect((error as GatewayError).message).toContain("could not be reached");
  });
  describe("an upstream whose connection never opens", () => {
    // A connect that never completes: undici takes a cancel only once a request has its connection.
    const hanging = (): UpstreamTarget => {
      const target = createUpstreamTarget("t", {
        base_url: "http://127.0.0.1:9/v1",
        api_key: "k",
        timeout_seconds: 60,
        connect_timeout_seconds: 60,
      } as Parameters<typeof createUpstreamTarget>[1]);
      return { ...target, dispatcher: new Agent({ connect: () => undefined }) };
    };
    const location = (target: UpstreamTarget) => upstreamUrl(target, "/v1/chat/completions", "");

    it("a whole-answer call cancelled meanwhile ends at once", async () => {
      const target = hanging();
      const cancel = new CallAbort();
      const pending = forwardWhole(target, location(target), "POST", {}, Buffer.from("{}"), cancel, () => undefined);
      setTimeout(() => cancel.abort(new GatewayError(403, "emergency_stop", "stopped")), 30);
      const started = Date.now();
      await expect(pending).rejects.toThrow("stopped");
      expect(Date.now() - started).toBeLessThan(1000);
      expect(cancel.listenerCount("abort")).toBe(0);
    });

    it("a streamed call, or a passed-through one, ends at once too", async () => {
      const target = hanging();
      const cancel = new CallAbort();
      const streamed = forward(target, location(target), "POST", {}, Buffer.from("{}"), cancel);
      const passing = new CallAbort();
      const passedThrough = forward(target, location(target), "GET", {}, null, passing);
      setTimeout(() => {
        cancel.abort(new Error("client gone"));
        passing.abort(new GatewayError(403, "emergency_stop", "stopped"));
      }, 30);
      const started = Date.now();
      await expect(streamed).rejects.toBeInstanceOf(GatewayError);
      await expect(passedThrough).rejects.toBeInstanceOf(GatewayError);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(cancel.listenerCount("abort")).toBe(0);
      expect(passing.listenerCount("abort")).toBe(0);
    });
  });
});
