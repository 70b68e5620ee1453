import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { clipped, GatewayError } from "../http/errors.js";
import { settleAll, type Reservation } from "../limits/enforce.js";
import { pushRateHeaders } from "../limits/headers.js";
import { planLimits, requestLimitsOnly } from "../limits/plan.js";
import { forward, readUpstream, upstreamError, upstreamUrl } from "../upstream/forward.js";
import { clientResponseHeaders, upstreamRequestHeaders } from "../upstream/headers.js";
import type { AuditDraft } from "./audit-draft.js";
import { CallAbort } from "./call-abort.js";
import { authenticate } from "./call.js";
import { writeError, writeJson, writeOpenHead } from "./respond.js";
import { parseUpstreamJson, upstreamFailure } from "../openai/upstream-error.js";
import { reserveCharge } from "./reserve.js";
import type { Services } from "./services.js";

/** The `/v1/...` path a request sent to `path` on the upstream stands for (its base path replaced by `/v1/`), its query left off. */
function sentPath(base: URL, path: string): string {
  const bare = path.split("?")[0] as string;
  return bare.startsWith(base.pathname) ? `/v1/${bare.slice(base.pathname.length)}` : bare;
}

/**
 * A path listed under `passthrough`: authenticated, rate-limited and audited, relayed as it is and
 * not priced (its rate counters are the key's own, with no token or money charge). Bodies stream
 * both ways, never held whole: a file upload is as large as the upstream takes (not capped by
 * `max_body_bytes`, which bounds the bodies the gateway itself must read).
 */
export async function handlePassthrough(
  services: Services,
  incoming: IncomingMessage,
  res: ServerResponse,
  draft: AuditDraft,
  search: string,
): Promise<void> {
  let status = 500;
  let failure: GatewayError | null = null;
  let reservation: Reservation | null = null;
  draft.action = "passthrough";
  const cancel = new CallAbort();
  let unregister: (() => void) | null = null;
  try {
    const runtime = services.current();
    const config = runtime.config;
    const principal = authenticate(services, incoming, services.clock(), draft);
    // Tracked like a governed call: a stop, revoke or drain ends it, even before it reaches the upstream.
    unregister = services.streams.register(principal.keyId, principal.subject.user, principal.subject.team, cancel);
    const method = incoming.method ?? "GET";
    const length = incoming.headers["content-length"];
    const hasBody = method !== "GET" && method !== "HEAD" && (incoming.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0"));
    const plan = requestLimitsOnly(planLimits(config, principal, null));
    reservation = await reserveCharge(services, plan, { inputTokens: 0, inputMicros: 0, outputPricePer1M: 0, outputTokens: 0 });
    services.leases.hold(reservation);
    const upstreamName = config.passthrough.upstream ?? Object.keys(config.upstreams)[0]!;
    const upstream = runtime.upstreams.get(upstreamName)!;
    const headers = upstreamRequestHeaders(incoming.headers, upstream.apiKey, null, config.sessions.header);
    // The client's length where it sent one; else undici sends the streamed body chunked.
    if (hasBody && length !== undefined) headers["content-length"] = length;
    res.on("close", () => cancel.abort(new Error("the client closed the connection")));
    const sentAt = services.clock();
    const location = upstreamUrl(upstream, draft.path, search);
    // Judged again as the upstream will read it, after URL parsing: what is sent must go to the
    // upstream's own origin (`/v1///host/x` parses as another host) and be a listed path too.
    if (location.origin !== upstream.baseUrl.origin || !runtime.passthrough(sentPath(upstream.baseUrl, location.path))) {
      throw new GatewayError(404, "not_found", `unknown path \`${clipped(draft.path)}\``);
    }
    const response = await forward(upstream, location, method, headers, hasBody ? incoming : null, cancel);
    draft.upstreamMs = services.clock() - sentAt;
    status = response.status;
    if (response.status >= 400) {
      // An error is small, and may echo the credential the gateway sent: read whole and masked; in
      // OpenAI's shape as sent, else wrapped in it, as a governed call's is; recorded with what it said.
      const text = (await readUpstream(response.body)).toString("utf8");
      const failed = upstreamFailure(status, parseUpstreamJson(text), text, upstream.scrub);
      failure = failed.error;
      // An upstream's 429 is about the upstream's limits: its x-ratelimit-* explain it, the gateway's would contradict it.
      const limited = status === 429;
      const errorHeaders = clientResponseHeaders(response.headers, "content-type", upstream.scrub, limited);
      if (!limited) pushRateHeaders(errorHeaders, reservation.rate);
      errorHeaders.push("x-request-id", draft.id);
      writeJson(res, status, errorHeaders, failed.body);
    } else {
      const answerHeaders = pushRateHeaders(clientResponseHeaders(response.headers, null, upstream.scrub), reservation.rate);
      // The body goes on byte for byte: its length, where the upstream gave one, holds (a download's size, a HEAD's).
      const length = response.headers["content-length"];
      if (typeof length === "string") answerHeaders.push("content-length", length);
      answerHeaders.push("x-request-id", draft.id);
      writeOpenHead(res, response.status, answerHeaders);
      await pipeline(response.body, res);
    }
  } catch (error) {
    // A stop (or revoke, or drain) ended it: its own error, as a governed call's.
    const stopped = cancel.aborted && cancel.reason instanceof GatewayError;
    if (stopped) {
      failure = cancel.reason as GatewayError;
    } else if (cancel.aborted && !res.writableFinished) {
      // The client went away: what failed is the relay to it, not the upstream.
      failure = new GatewayError(499, "client_closed", "the client closed the connection");
    } else {
      // A body the upstream stalled (its timeout) or cut off: what failed is the rest of the answer.
      failure = error instanceof GatewayError ? error : upstreamError(error, res.headersSent);
    }
    // Ended by a stop or the upstream once its head was sent: recorded with the status the client
    // got and the failure's code, as a stream is; a client gone is 499 whenever it went.
    if (!res.headersSent || failure.code === "client_closed") status = failure.status;
    if (!res.headersSent) writeError(res, failure, ["x-request-id", draft.id], draft.mask);
    else res.destroy();
  } finally {
    unregister?.();
    // Recorded as answered; the slot and rate it held are given back after.
    services.finish(draft, status, failure);
    if (reservation !== null) {
      services.leases.release(reservation);
      await services.afterAnswer(settleAll(services.store, reservation, { micros: 0, tokens: 0, toolCalls: 0 }, services.clock()).catch(() => undefined));
    }
  }
}
