import type { ServerResponse } from "node:http";
import type { GatewayError } from "../http/errors.js";

export function writeJson(res: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}

export function writeError(res: ServerResponse, error: GatewayError, headers: Record<string, string>): void {
  writeJson(res, error.status, { ...headers, ...error.options.headers }, JSON.stringify(error.toBody()));
}

/** A governance stop inside a stream: one SSE error event, which the OpenAI SDK raises as an APIError. */
export function sseErrorEvent(error: GatewayError): string {
  return `data: ${JSON.stringify(error.toBody())}\n\n`;
}
