import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { clipped, GatewayError } from "../http/errors.js";
import { StreamAccumulator, type ToolCall } from "../openai/answer.js";
import { eventData, SseSplitter, withEventData } from "../openai/sse.js";
import { upstreamError } from "../upstream/forward.js";
import { isRecord } from "../util/is-record.js";
import { SimilarTexts } from "../util/similar-texts.js";
import type { CallSignal } from "./call-abort.js";
import { sseErrorEvent, writeOpenHead } from "./respond.js";

export interface RelayOptions {
  /** Drop the usage-only chunk the gateway asked for on the client's behalf. */
  stripUsageChunk: boolean;
  /**
   * Null when nothing judges tool calls; else which calls the events from them on are held for,
   * until the calls are decided (every call seen is decided at the end either way).
   */
  holdsFor: ((call: ToolCall) => boolean) | null;
  /** Decides the model's tool calls once they are complete; a GatewayError ends the stream. */
  decideTools: (calls: ToolCall[], answer: string) => Promise<GatewayError | null>;
  /** An event of the answer (not an error event of the gateway's) is being sent to the client. */
  onAnswer: () => void;
  /** Masks the gateway's own secrets in an event's text (an upstream echoing its key in an error). */
  scrub: (text: string) => string;
  /** The error event's error as the client is sent it (an approval the failure gives back named in it). */
  named: (error: GatewayError) => GatewayError;
  /**
   * Keep what goes out once the answer is complete (`[DONE]`, a Responses final event, and anything
   * after) in `deferred` rather than send it: with `audit.fsync: always` a client that stops reading
   * at the end of the answer must not have it before its record is on disk.
   */
  deferEnd: boolean;
}

export interface RelayOutcome {
  accumulator: StreamAccumulator;
  /** The stream ended with a governance or upstream error event. */
  error: GatewayError | null;
  clientClosed: boolean;
  /** What `deferEnd` kept back, in order: the caller sends it once the record is stored. */
  deferred: string;
}

/**
 * How the stream ended, for its audit record: the gateway's own error event, or else one the
 * upstream sent in the stream (relayed to the client as sent, masked), as `upstream_error`. Its
 * message is read decoded from the event's JSON, so it is masked again here.
 */
export function streamFailure(outcome: RelayOutcome, scrub: (text: string) => string): GatewayError | null {
  if (outcome.error !== null) return outcome.error;
  const failure = outcome.accumulator.failure;
  return failure === null ? null : new GatewayError(502, "upstream_error", `the upstream ended the stream with an error: ${clipped(scrub(failure))}`);
}

/**
 * A Responses stream's `error` event (`{"type": "error", "code", "message", "param"}`) with an
 * `error` member added in OpenAI's error shape: the SDK raises an event's data as an APIError only
 * where it holds `error`, and yields this one as an ordinary event, the stream simply stopping. The
 * upstream's failure after the first byte reaches the client as an error it raises, as the
 * contract has it; a client reading the event's own fields still finds them. Null for any other data.
 */
function raisedError(data: unknown): string | null {
  if (!isRecord(data) || data.type !== "error" || "error" in data) return null;
  const code = typeof data.code === "string" ? data.code : "upstream_error";
  const message = typeof data.message === "string" ? data.message : "the upstream ended the stream with an error";
  const error = { message, type: "api_error", param: typeof data.param === "string" ? data.param : null, code };
  return JSON.stringify({ ...data, error });
}

/**
 * The `"usage": null` member OpenAI adds to every chunk once usage is asked for. A quote inside a
 * JSON string is always escaped, so this text after a comma can only be a member of the object.
 */
const USAGE_NULL = /,\s*"usage"\s*:\s*null(?=\s*[,}])/;

function write(res: ServerResponse, text: string): Promise<void> | null {
  if (res.destroyed) return null;
  if (res.write(text)) return null;
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/**
 * Relays an upstream SSE body event by event as it arrives. The tap only observes, except for
 * the usage chunk the client did not ask for and tool-call events, held until decided.
 */
export async function relayStream(
  body: Readable,
  res: ServerResponse,
  head: { status: number; headers: string[] },
  options: RelayOptions,
  stopSignal: CallSignal,
): Promise<RelayOutcome> {
  const sendHead = (): void => {
    if (!res.headersSent && !res.destroyed) writeOpenHead(res, head.status, head.headers);
  };
  // The headers leave with the first event, in one write; an upstream slow to send it (a reasoning
  // model, a held tool call) still lets the client see them within HEADERS_WITHIN_MS.
  const headerTimer = setTimeout(() => {
    if (res.headersSent || res.destroyed) return;
    sendHead();
    res.flushHeaders();
  }, HEADERS_WITHIN_MS);
  const send = (text: string): Promise<void> | null => {
    sendHead();
    return write(res, text);
  };
  try {
    return await relayEvents(body, res, send, options, stopSignal);
  } finally {
    clearTimeout(headerTimer);
    // A stream that sent no event still answers with its own headers.
    sendHead();
  }
}

const HEADERS_WITHIN_MS = 100;

/** How long an upstream may take to close its answer once its end was sent. */
const CLOSE_AFTER_END_MS = 5000;

/**
 * The answer ended (`[DONE]`, a Responses final event): the client's stream ends now, whether or not
 * the upstream closes its body. Anything it still sends is read and dropped, unjudged, as no client
 * reads it, so the connection can serve another call; one that stays open past a grace is cut.
 */
function letRestGo(body: Readable): void {
  const timer = setTimeout(() => body.destroy(), CLOSE_AFTER_END_MS);
  timer.unref();
  body.once("close", () => clearTimeout(timer));
  body.resume();
}

const ignore = (): void => undefined;

/** The answer is over: its end was announced, or the upstream's error ended it (the client's SDK raises it and reads no further). */
const answerEnded = (accumulator: StreamAccumulator): boolean => accumulator.done || accumulator.failure !== null;

/**
 * An event's data when it is a JSON object, whitespace before it allowed (SDKs parse
 * `data:   {…}` as JSON too, so the gateway must read it), else null (`[DONE]`, comments).
 */
function jsonData(data: string | null): string | null {
  if (data === null) return null;
  const first = data.charCodeAt(0);
  if (first === 123) return data;
  if (first !== 32 && first !== 9 && first !== 10) return null;
  const trimmed = data.trimStart();
  return trimmed.charCodeAt(0) === 123 ? trimmed : null;
}

async function relayEvents(
  body: Readable,
  res: ServerResponse,
  sendNow: (text: string) => Promise<void> | null,
  options: RelayOptions,
  stopSignal: CallSignal,
): Promise<RelayOutcome> {
  const accumulator = new StreamAccumulator(options.holdsFor ?? undefined);
  const splitter = new SseSplitter();
  const outcome: RelayOutcome = { accumulator, error: null, clientClosed: false, deferred: "" };
  // Every event sent or held, for the answer an approval holds; kept as each one's change to the one before, since it lasts the whole stream.
  const all: SimilarTexts | null = options.holdsFor !== null ? new SimilarTexts() : null;
  const held: string[] = [];
  /** Where in `held` the upstream's error event is, when it came while events were held. */
  let failedAt = -1;

  const send = (text: string): Promise<void> | null => {
    if (!options.deferEnd || !accumulator.done) return sendNow(text);
    outcome.deferred += text;
    return null;
  };
  /** Events that were held, in order, each after the client took the one before. */
  const sendHeld = async (events: readonly string[]): Promise<void> => {
    for (const event of events) {
      const pending = send(event);
      if (pending !== null) await pending;
    }
  };
  // Called for no event after the answer's end (`[DONE]`, a Responses final event, an error): no client reads on past it.
  const handle = async (sent: string): Promise<void> => {
    let event = options.scrub(sent);
    const raw = eventData(event);
    const data = jsonData(raw);
    let drop = false;
    // SDKs end a stream at any data that starts with `[DONE]`.
    if (raw?.trimStart().startsWith("[DONE]") === true) accumulator.markDone();
    if (data !== null) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch {
        // Passed on, it would make the client's SDK fail to parse rather than raise an API error.
        throw new GatewayError(502, "upstream_error", "the upstream sent a stream event that is not valid JSON");
      }
      drop = accumulator.observe(parsed) && options.stripUsageChunk;
      const raised = raisedError(parsed);
      if (raised !== null) event = withEventData(event, raised);
      // Usage the gateway asked for that came on a chunk with choices: the chunk goes on without it.
      if (!drop && options.stripUsageChunk && isRecord(parsed) && isRecord(parsed.usage)) {
        delete parsed.usage;
        event = withEventData(event, JSON.stringify(parsed));
      }
    }
    if (drop) return;
    if (options.stripUsageChunk && event.includes('"usage"')) event = event.replace(USAGE_NULL, "");
    // What the client is sent, in order: a held answer is replayed exactly so, without the usage chunk it did not ask for.
    all?.add(event);
    if (accumulator.holding) {
      if (failedAt === -1 && accumulator.failure !== null) failedAt = held.length;
      held.push(event);
      return;
    }
    options.onAnswer();
    const pending = send(event);
    if (pending !== null) await pending;
  };

  // The loop's iterator does not destroy the body when it stops, nor listen after: a body destroyed
  // after it (a stop, a bad event) reports its abort as an error, which must not go unheard.
  body.on("error", ignore);
  try {
    // Not destroyed when the loop stops at the answer's end: the rest is let go (`letRestGo`).
    for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      if (stopSignal.aborted) break;
      for (const event of splitter.push(chunk)) {
        await handle(event);
        if (answerEnded(accumulator)) break;
      }
      if (res.destroyed) {
        outcome.clientClosed = true;
        body.destroy();
        return outcome;
      }
      if (answerEnded(accumulator)) {
        letRestGo(body);
        break;
      }
    }
    if (!stopSignal.aborted && !answerEnded(accumulator)) for (const event of splitter.end()) await handle(event);
  } catch (error) {
    if (res.destroyed) {
      outcome.clientClosed = true;
      return outcome;
    }
    if (!stopSignal.aborted) {
      body.destroy();
      outcome.error = error instanceof GatewayError ? error : upstreamError(error, true);
      send(sseErrorEvent(options.named(outcome.error), options.scrub));
      return outcome;
    }
  }
  if (res.destroyed) {
    outcome.clientClosed = true;
    body.destroy();
    return outcome;
  }
  if (stopSignal.aborted && stopSignal.reason instanceof GatewayError) {
    body.destroy();
    outcome.error = stopSignal.reason;
    send(sseErrorEvent(options.named(outcome.error), options.scrub));
    return outcome;
  }
  if (!accumulator.complete) {
    // An SDK raises on such a stream, or worse takes its half-written tool call for a whole one: the
    // held calls are not released, and the client is told the answer was cut off.
    outcome.error = new GatewayError(502, "upstream_error", "the upstream ended the stream before its answer was complete (no final event, finish_reason or [DONE])");
    send(sseErrorEvent(options.named(outcome.error), options.scrub));
    return outcome;
  }
  if (accumulator.failure !== null && !accumulator.failedWithCalls) {
    // The upstream ended its answer with an error: the calls it held are never released, decided or
    // held for an approval (a failed answer is not one to approve); its error event goes on as sent.
    // A `response.failed` carrying calls is an answer the client's SDK hands on: judged as any other.
    if (failedAt !== -1) await sendHeld(held.slice(failedAt));
    return outcome;
  }
  if (held.length > 0 || (options.holdsFor !== null && accumulator.toolCallSeen)) {
    // A stop while the decision waits (x-approval-wait) ends the stream with its own error.
    const refusal = await options.decideTools(accumulator.toolCalls(), all?.toString() ?? "").catch((error: unknown) => {
      if (error instanceof GatewayError) return error;
      throw error;
    });
    // Gone while the decision was awaited (x-approval-wait): the call ends as the client ended it.
    if (res.destroyed) {
      outcome.clientClosed = true;
      return outcome;
    }
    if (refusal !== null) {
      outcome.error = refusal;
      send(sseErrorEvent(refusal, options.scrub));
      return outcome;
    }
    if (held.length > 0) options.onAnswer();
    await sendHeld(held);
  }
  return outcome;
}
