/**
 * The framework's floor: hono + @hono/node-server + undici forwarding /v1/* to one upstream with no
 * governance. `pipe` (default) writes the upstream body straight to the Node response, as the
 * gateway does; `web` re-wraps it in a Web `Response` (the naive pass-through of the issue).
 *   node dist/bench/bare-proxy.js --upstream http://127.0.0.1:9999 [--port 0] [--mode pipe|web]
 * Prints its base URL as the only stdout line.
 */
import type { IncomingHttpHeaders, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { type HttpBindings, serve } from "@hono/node-server";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { Hono } from "hono";
import { Agent, type Dispatcher } from "undici";
import { argValue } from "./lib/args.js";

const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "host", "upgrade", "te", "trailer"]);

function forwardHeaders(incoming: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value !== undefined && !HOP.has(name)) out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function responseHeaders(headers: Dispatcher.ResponseData["headers"]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP.has(name)) out[name] = value;
  }
  return out;
}

export function createBareApp(upstream: string, mode: "pipe" | "web"): Hono<{ Bindings: HttpBindings }> {
  const origin = new URL(upstream).origin;
  const agent = new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.all("/v1/*", async (c) => {
    const { incoming, outgoing } = c.env;
    const method = (incoming.method ?? "GET") as Dispatcher.HttpMethod;
    const hasBody = method !== "GET" && method !== "HEAD";
    const upstreamRes = await agent.request({
      origin,
      path: incoming.url ?? "/",
      method,
      headers: forwardHeaders(incoming.headers),
      body: hasBody ? incoming : null,
    });
    if (mode === "web") {
      const body = Readable.toWeb(upstreamRes.body) as ReadableStream<Uint8Array>;
      const headers = new Headers();
      for (const [name, value] of Object.entries(responseHeaders(upstreamRes.headers))) {
        headers.set(name, Array.isArray(value) ? value.join(", ") : value);
      }
      return new Response(body, { status: upstreamRes.statusCode, headers });
    }
    outgoing.writeHead(upstreamRes.statusCode, responseHeaders(upstreamRes.headers));
    outgoing.on("close", () => {
      if (!outgoing.writableFinished) upstreamRes.body.destroy();
    });
    upstreamRes.body.pipe(outgoing);
    return RESPONSE_ALREADY_SENT;
  });
  return app;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const upstream = argValue(argv, "--upstream");
  if (upstream === undefined) throw new Error("--upstream is required");
  const mode = argValue(argv, "--mode") === "web" ? "web" : "pipe";
  const app = createBareApp(upstream, mode);
  const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: Number(argValue(argv, "--port") ?? 0) }) as Server;
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => (server.listening ? resolve() : server.once("listening", () => resolve())));
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
  process.on("SIGTERM", () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

if (process.argv[1]?.endsWith("bare-proxy.js") === true) void main();
