import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import type { Directives } from "./directives.js";

/** One request as the mock saw it; tests assert on what the gateway actually forwarded. */
export interface RecordedRequest {
  /** 1-based arrival order; also used to derive deterministic response ids. */
  id: number;
  method: string;
  /** Path without the query string, e.g. `/v1/chat/completions`. */
  path: string;
  /** Raw request target including the query string. */
  url: string;
  headers: IncomingHttpHeaders;
  /** Alternating name/value pairs, to see duplicates and original casing. */
  rawHeaders: string[];
  /** Parsed JSON when the body is JSON, the raw string otherwise, undefined when empty. */
  body: unknown;
  rawBody: string;
  receivedAt: number;
  /** HTTP status the mock answered with; undefined if headers were never sent. */
  status: number | undefined;
  /** The client went away before the response was complete. */
  aborted: boolean;
  /** The response was fully written. */
  completed: boolean;
  /** The mock itself destroyed the socket (`reset_after`). Not counted as an abort. */
  reset: boolean;
}

export interface MockUpstreamOptions {
  port?: number | undefined;
  host?: string | undefined;
  /** Delay before response headers on every request. */
  latencyMs?: number | undefined;
  /** Delay between SSE frames; 0 writes the whole stream at once. */
  chunkDelayMs?: number | undefined;
  /** Default number of content pieces a streamed answer is split into. */
  chunks?: number | undefined;
  /** Keep RecordedRequest entries; turn off for benchmarks so memory stays flat. */
  record?: boolean | undefined;
}

export interface ResolvedOptions {
  latencyMs: number;
  chunkDelayMs: number;
  chunks: number;
}

export interface MockUpstream {
  /** Base URL including `/v1`, ready for `new OpenAI({ baseURL })`. */
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Responses cut short by the client since the last reset(). */
  readonly aborts: number;
  /** Requests received since the last reset(), counted even when record=false. */
  readonly requestCount: number;
  reset(): void;
  /** Resolves once `predicate` holds, polling; rejects after timeoutMs. */
  waitFor(predicate: (mock: MockUpstream) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Everything a route handler needs; handlers never touch the recorder directly. */
export interface HandlerContext {
  res: ServerResponse;
  body: unknown;
  directives: Directives;
  options: ResolvedOptions;
  /** Sequence number used for deterministic ids. */
  seq: number;
  /** Register cleanup (timers) for when the client disconnects. */
  onCancel(fn: () => void): void;
  /** Mark that the mock destroyed the socket on purpose. */
  markReset(): void;
}
