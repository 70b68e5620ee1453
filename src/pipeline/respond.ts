import type { ServerResponse } from "node:http";
import type { GatewayError } from "../http/errors.js";
import { flatten } from "../util/flat-string.js";

/** Answers with a JSON body; `headers` is a flat name/value list without content-type or length. */
export function writeJson(res: ServerResponse, status: number, headers: string[], body: string | Buffer): void {
  if (res.headersSent || res.destroyed) return;
  headers.push("content-type", "application/json", "content-length", String(Buffer.byteLength(body)));
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * Sends the head of an answer that stays open (a stream, a piped body). Node builds the head by
 * concatenation and keeps it (`_header`) until the response ends: a tree of ~80 string pieces,
 * about 2 KB per open stream, where one flat copy takes 0.5.
 */
export function writeOpenHead(res: ServerResponse, status: number, headers: string[]): void {
  res.writeHead(status, headers);
  const head = (res as { _header?: unknown })._header;
  if (typeof head === "string") flatten(head);
}

/**
 * Answers with the error's OpenAI-shaped body and its own headers after `headers`. `mask` hides the
 * gateway's secrets in what the error quotes of the request (a path, a member name, a header).
 */
export function writeError(res: ServerResponse, error: GatewayError, headers: string[], mask: (text: string) => string): void {
  const own = error.options.headers;
  if (own !== undefined) for (const name in own) headers.push(name, own[name] as string);
  writeJson(res, error.status, headers, errorJson(error, mask));
}

/** A governance stop inside a stream: one SSE error event, which the OpenAI SDK raises as an APIError. */
export function sseErrorEvent(error: GatewayError, mask: (text: string) => string): string {
  return `data: ${errorJson(error, mask)}\n\n`;
}

/** The error's body as JSON, masked as text: the mask finds a secret in its escaped spellings too. */
export function errorJson(error: GatewayError, mask: (text: string) => string): string {
  return mask(JSON.stringify(error.toBody()));
}

/**
 * Holds back a response's end until the returned release is called; the bytes before it flow. With
 * `audit.fsync: always` an answer is complete only once its record is on disk, so a crash right after
 * a client has its answer cannot lose the record. A second end while held is ignored, as on a response
 * already ended.
 */
export function holdEnd(res: ServerResponse): () => void {
  const end = res.end;
  let held: unknown[] | null = null;
  res.end = function heldEnd(this: ServerResponse, ...args: unknown[]) {
    held ??= args;
    return this;
  } as ServerResponse["end"];
  return () => {
    res.end = end;
    if (held !== null && !res.destroyed) (end as (...args: unknown[]) => ServerResponse).apply(res, held);
  };
}
