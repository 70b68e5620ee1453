import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { newId } from "../util/ids.js";
import { GatewayError } from "./errors.js";

/** What a refused malformed request is known by: its request line, as far as it was read. */
export interface MalformedRequest {
  id: string;
  method: string;
  path: string;
  ip: string | null;
}

export interface MalformedHooks {
  /** Records a malformed request no handler saw (the audit keeps /v1 and /admin requests). */
  record(request: MalformedRequest, failure: GatewayError): void;
  /** Records a request whose body turned out malformed while its handler read it: its id, or null when it is not audited. */
  failInFlight(incoming: IncomingMessage, failure: GatewayError): string | null;
}

const CLIENT_GONE = new Set(["ECONNRESET", "HPE_INVALID_EOF_STATE", "ERR_HTTP_REQUEST_TIMEOUT", "ERR_HTTP_HEADERS_TIMEOUT"]);

/**
 * Node answers malformed requests itself, before any handler runs; this gives those answers the
 * same OpenAI error body (431 for oversized headers, 400 otherwise) wherever the socket allows, one
 * answer and one record per request: a body found malformed while its handler reads it is answered
 * under that request's id (or not at all where it was answered already), and a malformed request
 * pipelined behind one still being answered waits for that answer to go out first. Returns what the
 * server calls with each request's response, so the one whose body is still arriving is known.
 */
export function installClientErrorHandler(server: Server, hooks: MalformedHooks): (outgoing: ServerResponse) => void {
  // The last request Node handed on by connection, and the one before it: pipelined requests are
  // parsed ahead of their answers, which go out in order.
  const handed = new WeakMap<Socket, { last: ServerResponse; before: ServerResponse | null }>();
  server.on("clientError", (error: NodeJS.ErrnoException & { rawPacket?: unknown; bytesParsed?: number }, socket: Socket) => {
    // A client that left (a reset, or its end of the connection closed mid-request) or timed out is
    // answered by no one: a call it had begun records it as gone.
    if (!socket.writable || CLIENT_GONE.has(error.code ?? "")) {
      socket.destroy();
      return;
    }
    const failure =
      error.code === "HPE_HEADER_OVERFLOW"
        ? new GatewayError(431, "headers_too_large", "the request headers are larger than 16 KB")
        : new GatewayError(400, "invalid_body", "the request could not be parsed as HTTP");
    const seen = handed.get(socket);
    const last = seen?.last ?? null;
    if (last !== null && !last.req.complete) {
      // The bytes that broke are the body of the last request handed on.
      if (last.headersSent) {
        // Answered already (a refusal before its body was read): that answer goes out, then the connection closes.
        afterAnswered(last, () => socket.end());
        return;
      }
      const id = hooks.failInFlight(last.req, failure) ?? newId("req", Date.now());
      afterAnswered(seen?.before ?? null, () => (socket.writable ? answer(socket, failure, id) : socket.destroy()));
      return;
    }
    afterAnswered(last, () => refuse(socket, error, failure, hooks));
  });
  return (outgoing) => {
    // A pipelined request's response has no socket until the ones before it are answered: its request has.
    const socket = outgoing.req.socket;
    handed.set(socket, { last: outgoing, before: handed.get(socket)?.last ?? null });
  };
}

/** Runs `then` once `response` (and so every answer before it on its connection) has gone out or failed. */
function afterAnswered(response: ServerResponse | null, then: () => void): void {
  if (response === null || response.writableFinished || response.destroyed) then();
  else response.once("close", then);
}

/** Answers and records a malformed request no handler saw. */
function refuse(socket: Socket, error: { rawPacket?: unknown; bytesParsed?: number }, failure: GatewayError, hooks: MalformedHooks): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const id = newId("req", Date.now());
  const line = requestLine(error.rawPacket, error.bytesParsed);
  if (line !== null) hooks.record({ id, ...line, ip: socket.remoteAddress ?? null }, failure);
  answer(socket, failure, id);
}

function answer(socket: Socket, failure: GatewayError, id: string): void {
  const body = JSON.stringify(failure.toBody());
  const reason = failure.status === 431 ? "Request Header Fields Too Large" : "Bad Request";
  socket.end(
    `HTTP/1.1 ${failure.status} ${reason}\r\nx-request-id: ${id}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

const REQUEST_LINE = /^([A-Z]{1,16}) (\/[^ ?]{0,2048})/;
/** A whole request line anywhere in a packet: a request pipelined behind another's body starts with none before it. */
const WHOLE_REQUEST_LINE = /([A-Z]{3,16}) (\/[^ ?\r\n]{0,2048})[^ \r\n]* HTTP\/1\.[01]\r\n/g;

/**
 * The method and path of the malformed request, where what Node read holds its request line: the
 * last whole one that starts before the point the parser stopped (requests pipelined ahead of it in
 * the same read come first), else the start of the packet. Only a line's start is needed there: a
 * request line too long for Node is refused before its end is known, and the path's first 2,048
 * characters say whether it is audited.
 */
function requestLine(raw: unknown, stoppedAt: number | undefined): { method: string; path: string } | null {
  if (!Buffer.isBuffer(raw)) return null;
  const limit = Math.min(stoppedAt ?? raw.length, raw.length);
  let found: { method: string; path: string } | null = null;
  for (const match of raw.toString("latin1").matchAll(WHOLE_REQUEST_LINE)) {
    if (match.index >= limit) break;
    found = { method: match[1] as string, path: match[2] as string };
  }
  if (found !== null) return found;
  const start = REQUEST_LINE.exec(raw.subarray(0, Math.min(raw.length, 2100)).toString("latin1"));
  return start === null ? null : { method: start[1] as string, path: start[2] as string };
}
