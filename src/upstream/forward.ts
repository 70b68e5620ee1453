import type { EventEmitter } from "node:events";
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { Agent, errors as undiciErrors, type Dispatcher } from "undici";
import type { UpstreamConfig } from "../config/schema.js";
import { GatewayError } from "../http/errors.js";
import { secretScrubber } from "./scrub.js";

export interface UpstreamTarget {
  name: string;
  baseUrl: URL;
  apiKey: string;
  /** Masks `apiKey` in what the upstream says, before it is relayed, recorded or logged. */
  scrub: (text: string) => string;
  dispatcher: Dispatcher;
  /** The governed calls' locations, resolved once: a URL parse per call cost more than its policy. */
  callUrls: Map<string, UpstreamLocation>;
}

/** Where a request goes: the origin undici connects to and the request target sent to it. */
export interface UpstreamLocation {
  origin: string;
  path: string;
}

const CALL_PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/embeddings"];

/** One connection pool per upstream, built at boot (and on reload), with its timeouts. */
export function createUpstreamTarget(name: string, config: UpstreamConfig): UpstreamTarget {
  const timeoutMs = Math.round(config.timeout_seconds * 1000);
  const base = config.base_url.endsWith("/") ? config.base_url : `${config.base_url}/`;
  const baseUrl = new URL(base);
  return {
    name,
    baseUrl,
    callUrls: new Map(CALL_PATHS.map((path) => [path, resolveUrl(baseUrl, path, "")])),
    apiKey: config.api_key,
    scrub: secretScrubber([config.api_key]),
    dispatcher: new Agent({
      connect: { timeout: Math.round(config.connect_timeout_seconds * 1000) },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 30_000,
      // No cap on sockets per upstream: a cap would queue the call past it silently (2,000 open
      // streams would see only the first N flow); the upstream's own limits answer instead.
      connections: null,
      pipelining: 1,
    }),
  };
}

/**
 * The upstream URL for a `/v1/...` path. Built from the configured base alone, never from the
 * request's Host or forwarding headers; a path that escapes `/v1/` is refused before it gets here.
 */
export function upstreamUrl(target: UpstreamTarget, v1Path: string, search: string): UpstreamLocation {
  return (search === "" ? target.callUrls.get(v1Path) : undefined) ?? resolveUrl(target.baseUrl, v1Path, search);
}

function resolveUrl(base: URL, v1Path: string, search: string): UpstreamLocation {
  const url = new URL(v1Path.replace(/^\/v1\//, ""), base);
  url.search = search;
  return { origin: url.origin, path: url.pathname + url.search };
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export async function forward(
  target: UpstreamTarget,
  url: UpstreamLocation,
  method: string,
  headers: Record<string, string>,
  /** Whole, or streamed as it arrives (passthrough). */
  body: Buffer | Readable | null,
  signal: CancelSignal,
): Promise<UpstreamResponse> {
  try {
    const pending = target.dispatcher.request({
      origin: url.origin,
      path: url.path,
      method: method as Dispatcher.HttpMethod,
      headers,
      body,
      signal,
    });
    const response = await untilCancelled(pending, signal);
    const redirect = redirectError(response.statusCode);
    if (redirect !== null) {
      response.body.once("error", () => undefined).destroy();
      throw redirect;
    }
    return { status: response.statusCode, headers: response.headers, body: response.body };
  } catch (error) {
    throw upstreamError(error);
  }
}

/**
 * An upstream's redirect is neither followed (the upstream URL comes from the config alone) nor
 * relayed: its client would follow it around the gateway, the prompt with it, and the answer
 * unjudged. A 304 (a conditional passthrough GET) carries no new location.
 */
function redirectError(status: number): GatewayError | null {
  if (status < 300 || status >= 400 || status === 304) return null;
  return new GatewayError(502, "upstream_error", `the upstream answered ${status}, a redirect, which the gateway neither follows nor relays (check the upstream's base_url)`);
}

/**
 * Undici takes a cancel only once the request has a connection: a call stopped while the upstream
 * is still being connected to would wait out the connect timeout. The call ends at once instead;
 * undici drops the request when it gets its connection (an answer that still comes is let go).
 */
function untilCancelled(pending: Promise<Dispatcher.ResponseData>, signal: CancelSignal): Promise<Dispatcher.ResponseData> {
  return new Promise((resolve, reject) => {
    let cancelled = false;
    const onAbort = (): void => {
      cancelled = true;
      reject(abortReason(signal.reason));
    };
    signal.once("abort", onAbort);
    pending.then(
      (response) => {
        signal.off("abort", onAbort);
        if (cancelled) response.body.once("error", () => undefined).destroy();
        else resolve(response);
      },
      (error: unknown) => {
        signal.off("abort", onAbort);
        reject(error);
      },
    );
  });
}

export interface WholeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A call's cancellation as undici's `signal` takes it: an emitter with `aborted`, `reason` and an `abort` event. */
export interface CancelSignal extends EventEmitter {
  readonly aborted: boolean;
  readonly reason: unknown;
}

/**
 * A request whose answer is read whole, collected as it arrives. A non-streamed call reads its
 * answer whole anyway, and `request`'s body stream, with its async resource, promise and listeners,
 * cost more per call than the governance of many rules. `onHead` is called when the answer's head
 * arrives (an informational one aside), whether or not its body then does.
 */
export function forwardWhole(
  target: UpstreamTarget,
  url: UpstreamLocation,
  method: string,
  headers: Record<string, string>,
  body: Buffer,
  signal: CancelSignal,
  onHead: () => void,
): Promise<WholeResponse> {
  return new Promise((resolve, reject) => {
    const handler = new WholeAnswer(signal, onHead, resolve, reject);
    target.dispatcher.dispatch({ origin: url.origin, path: url.path, method: method as Dispatcher.HttpMethod, headers, body }, handler);
  });
}

class WholeAnswer implements Dispatcher.DispatchHandler {
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private readonly chunks: Buffer[] = [];
  private controller: Dispatcher.DispatchController | null = null;
  private settled = false;
  private readonly onAbort = (): void => {
    const reason = abortReason(this.signal.reason);
    // Without a connection yet undici cannot drop the request: the call ends now, the request once connected.
    if (this.controller === null) this.fail(reason);
    else this.controller.abort(reason);
  };

  constructor(
    private readonly signal: CancelSignal,
    private readonly onHead: () => void,
    private readonly resolve: (response: WholeResponse) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    if (signal.aborted) this.fail(abortReason(signal.reason));
    else signal.once("abort", this.onAbort);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.signal.aborted) controller.abort(abortReason(this.signal.reason));
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    // An informational head (100 Continue, 103 Early Hints) is followed by the real one.
    if (status < 200) return;
    this.status = status;
    this.headers = headers;
    this.onHead();
    const redirect = redirectError(status);
    if (redirect === null) return;
    this.fail(redirect);
    controller.abort(redirect);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settled = true;
    this.signal.off("abort", this.onAbort);
    const { chunks } = this;
    this.resolve({ status: this.status, headers: this.headers, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.fail(upstreamError(error, this.status !== 0));
  }

  private fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.signal.off("abort", this.onAbort);
    this.reject(error);
  }
}

function abortReason(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error("the call was aborted");
}

/** Maps a transport failure to the client-facing error; timeouts are 504, everything else 502. */
export function upstreamError(error: unknown, midAnswer = false): GatewayError {
  if (error instanceof GatewayError) return error;
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
  ) {
    return new GatewayError(504, "upstream_timeout", "the upstream did not answer in time");
  }
  const code = (error as { code?: unknown } | null)?.code;
  const detail = typeof code === "string" ? ` (${code})` : "";
  // Once its answer has begun, the upstream was reached: what failed is the rest of the answer.
  const what = midAnswer ? "the upstream's answer was cut off" : "the upstream could not be reached";
  return new GatewayError(502, "upstream_error", `${what}${detail}`);
}

/** The whole upstream answer. Stream events rather than `for await`, whose iterator costs more than the read. */
export function readUpstream(body: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    body.on("data", (chunk: Buffer) => chunks.push(chunk));
    body.once("end", () => {
      ended = true;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    });
    body.once("error", (error: Error) => reject(upstreamError(error, true)));
    // Destroyed without an error, as when the call is aborted.
    body.once("close", () => {
      if (!ended) reject(upstreamError(new Error("the upstream answer was cut short"), true));
    });
  });
}
