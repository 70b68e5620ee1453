import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { getModel, listFiles, listModels } from "./catalog.js";
import { chatRoute } from "./chat.js";
import { parseDirectives } from "./directives.js";
import { embeddingsRoute } from "./embeddings.js";
import { sendError, sendRawError } from "./errors.js";
import type { Route } from "./route.js";
import { responsesRoute } from "./responses.js";
import type { MockUpstream, MockUpstreamOptions, RecordedRequest, ResolvedOptions } from "./types.js";

export type { MockUpstream, MockUpstreamOptions, RecordedRequest } from "./types.js";

const POST_ROUTES: Record<string, Route> = {
  "/v1/chat/completions": chatRoute,
  "/v1/responses": responsesRoute,
  "/v1/embeddings": embeddingsRoute,
};

/** Starts an in-process fake of the OpenAI API. See mock/README.md for the steering directives. */
export async function startMockUpstream(opts: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const options: ResolvedOptions = {
    latencyMs: opts.latencyMs ?? 0,
    chunkDelayMs: opts.chunkDelayMs ?? 0,
    chunks: Math.max(1, opts.chunks ?? 4),
  };
  const record = opts.record ?? true;
  const host = opts.host ?? "127.0.0.1";
  const requests: RecordedRequest[] = [];
  const counters = { aborts: 0, requests: 0, seq: 0 };

  const server = createServer({ noDelay: true, keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    const seq = ++counters.seq;
    counters.requests++;
    const rec = newRecord(seq, req);
    if (record) requests.push(rec);
    const cancels: Array<() => void> = [];
    res.on("finish", () => {
      rec.completed = true;
      rec.status = res.statusCode;
    });
    // `res` closes on finish too; only a close without finish is a client abort.
    res.on("close", () => {
      if (!rec.completed && !rec.reset) {
        rec.aborted = true;
        counters.aborts++;
      }
      if (res.headersSent) rec.status = res.statusCode;
      for (const cancel of cancels) cancel();
    });
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => {
      rec.rawBody = Buffer.concat(parts).toString("utf8");
      rec.body = parseBody(rec.rawBody);
      dispatch(rec, req, res, seq, options, cancels);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;

  const mock: MockUpstream = {
    url: `http://${urlHost}:${port}/v1`,
    port,
    requests,
    get aborts() {
      return counters.aborts;
    },
    get requestCount() {
      return counters.requests;
    },
    reset() {
      requests.length = 0;
      counters.aborts = 0;
      counters.requests = 0;
    },
    async waitFor(predicate, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(mock)) {
        if (Date.now() > deadline) throw new Error(`mock upstream: condition not met within ${timeoutMs}ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    close() {
      // Stalled streams would otherwise keep close() pending forever.
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return mock;
}

function newRecord(id: number, req: IncomingMessage): RecordedRequest {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return {
    id,
    method: req.method ?? "GET",
    path: q === -1 ? url : url.slice(0, q),
    url,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    body: undefined,
    rawBody: "",
    receivedAt: Date.now(),
    status: undefined,
    aborted: false,
    completed: false,
    reset: false,
  };
}

function parseBody(raw: string): unknown {
  if (raw === "") return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function dispatch(
  rec: RecordedRequest,
  req: IncomingMessage,
  res: ServerResponse,
  seq: number,
  options: ResolvedOptions,
  cancels: Array<() => void>,
): void {
  const requestId = `req_mock_${seq}`;
  const later = (ms: number, fn: () => void): void => {
    if (ms <= 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      if (!res.destroyed) fn();
    }, ms);
    cancels.push(() => clearTimeout(t));
  };

  const route = rec.method === "POST" ? POST_ROUTES[rec.path] : undefined;
  if (!route) {
    later(options.latencyMs, () => answerGet(rec, res, requestId));
    return;
  }
  // parseBody leaves non-JSON as a string; OpenAI rejects those up front.
  if (typeof rec.body !== "object" || rec.body === null) {
    sendError(res, 400, { message: "We could not parse the JSON body of your request.", requestId });
    return;
  }

  const info = route.inspect(rec.body);
  const directives = parseDirectives(info.lastUserText);
  later(options.latencyMs + (directives.slowHeadersMs ?? 0), () => {
    const d = directives;
    if (d.error !== undefined && d.error >= 400 && d.error <= 599) {
      sendError(res, d.error, { retryAfter: d.retryAfter, requestId });
    } else if (d.errorRaw !== undefined && d.errorRaw >= 400 && d.errorRaw <= 599) {
      sendRawError(res, d.errorRaw);
    } else if (!info.stream && d.resetAfter !== undefined) {
      rec.reset = true;
      req.socket.destroy();
    } else if (!info.stream && d.stallAfter !== undefined) {
      // Never answer: lets tests exercise the gateway's upstream timeout.
    } else {
      if (!info.stream && d.truncateAfter !== undefined) truncateAnswer(res, d.truncateAfter, () => {
        rec.reset = true;
      });
      route.handle(
        {
          res,
          body: rec.body,
          directives: d,
          options,
          seq,
          onCancel: (fn) => cancels.push(fn),
          markReset: () => {
            rec.reset = true;
          },
        },
        info,
      );
    }
  });
}

function answerGet(rec: RecordedRequest, res: ServerResponse, requestId: string): void {
  if (rec.method === "GET" && rec.path === "/v1/models") listModels(res);
  else if (rec.method === "GET" && rec.path.startsWith("/v1/models/")) {
    getModel(res, decodeURIComponent(rec.path.slice("/v1/models/".length)));
  } else if (rec.method === "GET" && rec.path === "/v1/files") listFiles(res);
  else sendError(res, 404, { message: `Invalid URL (${rec.method} ${rec.path})`, code: null, requestId });
}

/** A non-streamed answer's head and its first `bytes` bytes, then the socket destroyed: an answer cut off mid-body. */
function truncateAnswer(res: ServerResponse, bytes: number, markReset: () => void): void {
  res.end = ((chunk?: unknown) => {
    const whole = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.alloc(0);
    res.write(whole.subarray(0, bytes), () => {
      markReset();
      res.socket?.destroy();
    });
    return res;
  }) as ServerResponse["end"];
}
