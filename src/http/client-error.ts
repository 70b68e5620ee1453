import type { Server } from "node:http";
import type { Socket } from "node:net";
import { newId } from "../util/ids.js";
import { GatewayError } from "./errors.js";

/**
 * Node answers malformed requests itself, before any handler runs; this gives those answers the
 * same OpenAI error body (431 for oversized headers, 400 otherwise) wherever the socket allows.
 */
export function installClientErrorHandler(server: Server): void {
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
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
    const body = JSON.stringify(failure.toBody());
    const reason = failure.status === 431 ? "Request Header Fields Too Large" : "Bad Request";
    socket.end(
      `HTTP/1.1 ${failure.status} ${reason}\r\nx-request-id: ${newId("req", Date.now())}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}
