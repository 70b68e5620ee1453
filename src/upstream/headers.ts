import type { IncomingHttpHeaders } from "node:http";

/** The header names a Connection header lists (RFC 9110 §7.6.1), or null for the usual bare options. */
function listedInConnection(connection: string | string[] | undefined): Set<string> | null {
  if (connection === undefined || connection === "keep-alive" || connection === "close") return null;
  return new Set(
    String(connection)
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name !== ""),
  );
}

/**
 * RFC 9110 hop-by-hop headers, plus what the gateway itself owns on the way upstream: credentials,
 * and the OpenAI organization and project that scope the upstream key's billing, which a client
 * must not choose.
 */
const DROPPED = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "authorization",
  "x-api-key",
  "api-key",
  "accept-encoding",
  "cookie",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-real-ip",
  "x-approval-id",
  "x-approval-wait",
  "expect",
  "openai-organization",
  "openai-project",
  // Headers front ends honour to route or re-method a request (IIS, Symfony, Envoy...): a passthrough
  // to `/v1/files` must not become a call to `/v1/chat/completions` behind the upstream's own proxy.
  "x-original-url",
  "x-rewrite-url",
  "x-original-host",
  "x-forwarded-prefix",
  "x-forwarded-path",
  "x-forwarded-uri",
  "x-forwarded-server",
  "x-forwarded-port",
  "x-envoy-original-path",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
]);

/** The headers sent upstream: the client's, minus hop-by-hop and credentials, plus the upstream's own key. */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  upstreamKey: string,
  bodyLength: number | null,
  sessionHeader: string,
): Record<string, string> {
  const connectionListed = listedInConnection(incoming.connection);
  const out: Record<string, string> = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || DROPPED.has(name) || connectionListed?.has(name) === true || name === sessionHeader) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  if (upstreamKey !== "") out.authorization = `Bearer ${upstreamKey}`;
  // The gateway must read the answer to govern it: asked plainly, so no upstream compresses it.
  out["accept-encoding"] = "identity";
  if (bodyLength !== null) {
    // The body sent is the JSON the gateway read, whatever encoding the client claimed for it.
    delete out["content-encoding"];
    out["content-length"] = String(bodyLength);
    out["content-type"] = "application/json";
  }
  return out;
}

/** Hop-by-hop headers, cookies, and the upstream account's organization and project, which name the operator's, not the client's. */
const RESPONSE_DROPPED = new Set([
  "connection",
  "proxy-authenticate",
  "openai-organization",
  "openai-project",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "content-length",
  "set-cookie",
  "x-request-id",
]);

/**
 * The upstream's response headers the client may see, as a flat name/value list for `writeHead`.
 * The gateway's own (`x-ratelimit-*`, `x-gateway-*`) and `leaveOut`, which the caller sets itself,
 * are left out so no name reaches the client twice; `keepRateLimits` keeps the upstream's
 * `x-ratelimit-*` where the gateway sends none of its own.
 */
export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
  leaveOut: string | null,
  scrub: (text: string) => string,
  keepRateLimits = false,
): string[] {
  const connectionListed = listedInConnection(upstream.connection);
  const out: string[] = [];
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || name === leaveOut || RESPONSE_DROPPED.has(name) || connectionListed?.has(name) === true) continue;
    if ((!keepRateLimits && name.startsWith("x-ratelimit-")) || name.startsWith("x-gateway-")) continue;
    out.push(name, scrub(Array.isArray(value) ? value.join(", ") : value));
  }
  return out;
}
