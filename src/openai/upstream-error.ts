import { clipped, GatewayError } from "../http/errors.js";
import { isRecord } from "../util/is-record.js";

/** `{"error": {"message": "…", …}}`, as OpenAI's SDKs read an error. */
export function isOpenAIError(parsed: unknown): boolean {
  return isRecord(parsed) && isRecord(parsed.error) && typeof parsed.error.message === "string";
}

/**
 * What an upstream's error says, clipped (a record quotes it): OpenAI's `error.message`, or the message
 * of another shape (`{"error": "…"}`, `{"message": "…"}`, `{"detail": "…"}`, as other servers answer),
 * or a short text body as it is; null where it says nothing readable (an HTML page, nothing, `null`).
 * `parsed` is the body parsed, or undefined where it is not JSON.
 */
export function upstreamErrorMessage(parsed: unknown, text: string): string | null {
  if (isOpenAIError(parsed)) return clipped((parsed as { error: { message: string } }).error.message);
  if (isRecord(parsed)) {
    for (const said of [parsed.error, parsed.message, parsed.detail]) if (typeof said === "string" && said !== "") return clipped(said);
    return null;
  }
  const plain = parsed === undefined ? text.trim() : "";
  return plain !== "" && !plain.startsWith("<") ? clipped(plain) : null;
}

/** An upstream's body (an answer or an error), parsed where it is JSON; undefined where it is not. */
export function parseUpstreamJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * An upstream's 4xx/5xx as the gateway answers and records it: the error (`upstream_error`, the
 * upstream's status, what it said) and the body to relay — in OpenAI's shape as sent, any other
 * wrapped in it, so SDKs read its code and message. `scrub` masks the gateway's secrets in both.
 */
export function upstreamFailure(status: number, parsed: unknown, text: string, scrub: (text: string) => string): { error: GatewayError; body: string } {
  const said = upstreamErrorMessage(parsed, text);
  const error = new GatewayError(status, "upstream_error", scrub(said === null ? `the upstream answered ${status}` : `the upstream answered ${status}: ${said}`));
  return { error, body: isOpenAIError(parsed) ? scrub(text) : JSON.stringify(error.toBody()) };
}
