import type { Server } from "node:http";
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

/**
 * Node answers malformed requests itself, before any handler runs; this gives those answers the
 * same OpenAI error body (431 for oversized headers, 400 otherwise) wherever the socket allows, and
 * hands each answered one to `record` (the audit keeps /v1 and /admin requests).
 */
export function installClientErrorHandler(server: Server, record: (request: MalformedRequest, failure: GatewayError) => void): void {
  server.on("clientError", (error: NodeJS.ErrnoException & { rawPacket?: unknown }, socket: Socket) => {
    if (!socket.writable || error.code === "ECONNRESET") {
      socket.destroy();
      return;
    }
    let failure: GatewayError;
    if (error.code === "HPE_HEADER_OVERFLOW") {
      failure = new GatewayError(431, "headers_too_large", "the request headers are larger than 16 KB");
    } else if (error.code === "ERR_HTTP_REQUEST_TIMEOUT" || error.code === "ERR_HTTP_HEADERS_TIMEOUT") {
      socket.destroy();
      return;
    } else {
      failure = new GatewayError(400, "invalid_body", "the request could not be parsed as HTTP");
    }
    const id = newId("req", Date.now());
    const line = requestLine(error.rawPacket);
    if (line !== null) record({ id, ...line, ip: socket.remoteAddress ?? null }, failure);
    const body = JSON.stringify(failure.toBody());
    const reason = failure.status === 431 ? "Request Header Fields Too Large" : "Bad Request";
    socket.end(
      `HTTP/1.1 ${failure.status} ${reason}\r\nx-request-id: ${id}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}

/**
 * The method and path of the first line of what the client sent, when it starts as one. Only its
 * start is read: a request line too long for Node is refused before its end is known, and the
 * path's first 2,048 characters say whether it is audited.
 */
function requestLine(raw: unknown): { method: string; path: string } | null {
  if (!Buffer.isBuffer(raw)) return null;
  const end = raw.indexOf("\r\n");
  const head = raw.subarray(0, Math.min(end === -1 ? raw.length : end, 2100)).toString("latin1");
  const match = /^([A-Z]{1,16}) (\/[^ ?]{0,2048})/.exec(head);
  return match === null ? null : { method: match[1] as string, path: match[2] as string };
}
