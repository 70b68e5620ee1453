import type { ServerResponse } from "node:http";

// Mirrors the (type, code) pairs OpenAI actually returns so clients and the
// gateway's error mapping see realistic bodies.
const KINDS: Record<number, { type: string; code: string | null; message: string }> = {
  400: { type: "invalid_request_error", code: null, message: "Invalid request (mock)." },
  401: { type: "invalid_request_error", code: "invalid_api_key", message: "Incorrect API key provided (mock)." },
  403: { type: "permission_error", code: "permission_denied", message: "You are not allowed to do this (mock)." },
  404: { type: "invalid_request_error", code: "model_not_found", message: "The model does not exist (mock)." },
  409: { type: "invalid_request_error", code: "conflict", message: "Conflict (mock)." },
  422: { type: "invalid_request_error", code: null, message: "Unprocessable entity (mock)." },
  429: { type: "requests", code: "rate_limit_exceeded", message: "Rate limit reached (mock)." },
  500: { type: "server_error", code: null, message: "The server had an error processing your request (mock)." },
  502: { type: "server_error", code: "bad_gateway", message: "Bad gateway (mock)." },
  503: { type: "server_error", code: "service_unavailable", message: "The engine is currently overloaded (mock)." },
};

/** The error a stream cut by `error_after` ends with, as OpenAI sends one mid-stream. */
export const STREAM_ERROR = { message: "The server had an error while processing your request (mock).", code: "server_error", param: null } as const;

export function openAiErrorBody(status: number, message?: string, param: string | null = null, code?: string | null) {
  const kind = KINDS[status] ?? {
    type: status >= 500 ? "server_error" : "invalid_request_error",
    code: null,
    message: `Mock error ${status}.`,
  };
  return { error: { message: message ?? kind.message, type: kind.type, param, code: code === undefined ? kind.code : code } };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  status: number,
  opts: {
    message?: string;
    param?: string | null;
    code?: string | null;
    retryAfter?: number | undefined;
    requestId?: string;
  } = {},
): void {
  const headers: Record<string, string> = {};
  if (opts.retryAfter !== undefined) headers["retry-after"] = String(opts.retryAfter);
  // OpenAI's own 429 says which of its limits ran out.
  if (status === 429) Object.assign(headers, { "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "120ms" });
  if (opts.requestId !== undefined) headers["x-request-id"] = opts.requestId;
  sendJson(res, status, openAiErrorBody(status, opts.message, opts.param ?? null, opts.code), headers);
}

/** A non-JSON error page, like a load balancer in front of the API would send. */
export function sendRawError(res: ServerResponse, status: number): void {
  const text = `<html><head><title>${status}</title></head><body><h1>${status} Upstream Error</h1></body></html>`;
  res.writeHead(status, { "content-type": "text/html", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
