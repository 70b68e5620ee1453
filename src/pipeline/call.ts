import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { Principal } from "../auth/keys.js";
import { bearerToken } from "../auth/keys.js";
import type { Config, ModelConfig } from "../config/schema.js";
import { clipped, GatewayError } from "../http/errors.js";
import { isRecord } from "../util/is-record.js";
import { isOpenAIError, parseUpstreamJson, upstreamErrorMessage, upstreamFailure } from "../openai/upstream-error.js";
import { type Reservation, settleAll } from "../limits/enforce.js";
import { reserveCharge, storeDown } from "./reserve.js";
import { pushRateHeaders } from "../limits/headers.js";
import type { LimitPlan } from "../limits/plan.js";
import { distinctCalls, summarizeAnswer, type ToolCall } from "../openai/answer.js";
import { parseJsonBody } from "../openai/json-body.js";
import { spliceEdited } from "../openai/json-splice.js";
import { validateBody } from "../openai/schemas.js";
import { evaluatePolicy, mergeDecisions } from "../policy/evaluate.js";
import type { CallAction, Decision } from "../policy/types.js";
import { costMicros, isPriced, type ModelPrices, microsToUsd, usageFromOpenAI } from "../pricing/index.js";
import { countTextTokens } from "../tokens/index.js";
import { forward, forwardWhole, readUpstream, type UpstreamResponse, upstreamError, upstreamUrl, type WholeResponse } from "../upstream/forward.js";
import { clientResponseHeaders, upstreamRequestHeaders } from "../upstream/headers.js";
import { canonicalJson, sha256Hex } from "../util/canonical-json.js";
import { stopError } from "./active-streams.js";
import { CallAbort, type CallSignal } from "./call-abort.js";
import type { AuditDraft } from "./audit-draft.js";
import { captureAuditBody } from "./audit-body.js";
import { applyOutputLimit, CHAT_LIMIT_FIELDS, type Estimate, estimateCall, outputLimit } from "./estimate.js";
import { buildCallFacts, prefetchUsage } from "./call-facts.js";
import { readBody } from "./read-body.js";
import { sessionIdOf } from "./session-id.js";
import { relayStream, streamFailure } from "./relay-stream.js";
import { holdEnd, sseErrorEvent, writeError, writeJson } from "./respond.js";
import type { Approval, Stop } from "../state/store.js";
import type { Runtime } from "./runtime.js";
import type { Services } from "./services.js";
import { approvalContext, governDeclaredTools, governToolCalls, judgeToolCalls, type ToolCallContext, type ToolGovernance, type ToolVerdict, ungoverned } from "./tools.js";
import { approvalRequired, deniedError, type WaitOutcome } from "./refusals.js";
import type { CallFacts } from "./facts.js";
import { redactRequestBody } from "./redact-body.js";
import { RequestBody, sentBody } from "./request-body.js";
import { shownName } from "./shown-name.js";
import { storeTrouble } from "../log/throttle.js";

/**
 * Authenticates a virtual key and checks it is not halted: 401 / 403. With a draft, the principal is
 * recorded before the stop check, so an `emergency_stop` refusal is audited with the key it refused.
 */
export function authenticate(services: Services, incoming: IncomingMessage, now: number, draft?: AuditDraft): Principal {
  const principal = identify(services, incoming, now, draft);
  const stop = stopOf(services, principal);
  if (stop !== null) throw stopError(stop);
  return principal;
}

/**
 * The stop that halts the principal, if any. A replica that has not yet read the stops (it started
 * while the store was down) cannot tell: `store_unavailable`, under `store.on_error: fail_open` too,
 * which covers limits and budgets, not stops.
 */
function stopOf(services: Services, principal: Principal): Stop | null {
  if (!services.shared.stopsKnown) {
    throw new GatewayError(503, "store_unavailable", "the state store is unavailable and this replica has not yet read its emergency stops", {
      headers: { "retry-after": "1" },
    });
  }
  return services.shared.stopFor(principal.keyId, principal.subject.user, principal.subject.team);
}

/** The key's principal, or 401; recorded in the draft. */
function identify(services: Services, incoming: IncomingMessage, now: number, draft?: AuditDraft, token = bearerToken(incoming.headers.authorization)): Principal {
  // Node keeps the first of two Authorization headers, a proxy before it may keep the last: one identity only.
  if (authorizationCount(incoming.rawHeaders) > 1) throw new GatewayError(401, "invalid_api_key", "more than one Authorization header was sent; send one");
  const lookup = services.shared.keys.lookup(token, now, incoming.socket);
  if (!lookup.ok) {
    // A secret this replica does not know may be a runtime key it has not read yet (it started while the store was down).
    if (lookup.reason === "unknown" && !services.shared.keysKnown) {
      throw new GatewayError(503, "store_unavailable", "the state store is unavailable and this replica has not yet read its runtime keys", { headers: { "retry-after": "1" } });
    }
    const why = lookup.reason === "missing" ? missingKey(incoming) : lookup.reason === "unknown" ? "the API key is not valid" : `the API key is ${lookup.reason}`;
    throw new GatewayError(401, "invalid_api_key", `${why}; use a virtual key issued by the gateway`);
  }
  if (draft !== undefined) draft.principal = lookup.principal;
  return lookup.principal;
}

function authorizationCount(raw: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).length === 13 && (raw[i] as string).toLowerCase() === "authorization") count++;
  return count;
}

/** Why no key was read, where the client sent one somewhere the gateway does not read it. */
function missingKey(incoming: IncomingMessage): string {
  const { authorization } = incoming.headers;
  if (authorization !== undefined) return "the Authorization header must be `Bearer <key>`";
  if (incoming.headers["api-key"] !== undefined || incoming.headers["x-api-key"] !== undefined) return "the key must be sent as `Authorization: Bearer <key>`, not in an `api-key` header";
  return "no API key was provided (send `Authorization: Bearer <key>`)";
}

/** The body parsed. One the client compressed is `invalid_json` as the contract has it, and told why. */
function parseRequestJson(bytes: Buffer, maxDepth: number, encoding: string | undefined): unknown {
  try {
    return parseJsonBody(bytes, maxDepth);
  } catch (error) {
    if (!(error instanceof GatewayError) || error.code !== "invalid_json" || encoding === undefined || encoding === "identity") throw error;
    throw new GatewayError(400, "invalid_json", `${error.message}: it was sent with \`content-encoding: ${clipped(encoding)}\`, which the gateway does not decode; send the JSON uncompressed`);
  }
}

/** The call's body parsed and checked for its shape, in a frame of its own (see `handleCall`). */
function readRequest(services: Services, state: CallState, action: CallAction, bytes: Buffer, encoding: string | undefined): RequestBody {
  const parsed = parseRequestJson(bytes, services.current().config.server.max_json_depth, encoding);
  // Named before the shape is checked: a refused body's record says which model it asked for.
  state.draft.model = askedModelOf(services, state, parsed);
  return new RequestBody(validateBody(action, parsed), bytes);
}

/** The model a halted call asked for, for its audit record: the body is not otherwise judged. */
function askedModel(services: Services, state: CallState, bytes: Buffer): string | null {
  try {
    return askedModelOf(services, state, sentBody(bytes));
  } catch {
    return null;
  }
}

function askedModelOf(services: Services, state: CallState, body: unknown): string | null {
  const model = body !== null && typeof body === "object" ? (body as { model?: unknown }).model : undefined;
  return typeof model === "string" ? clipped(shownName(services, model, state.callerKey)) : null;
}

interface CallState {
  draft: AuditDraft;
  reservation: Reservation | null;
  estimate: Estimate | null;
  /**
   * Set when the call went on without an exact input count (nothing needed one, or a byte bound
   * settled every check): it is counted from these only if the audit needs its input tokens after
   * all (the call ended without an upstream usage report).
   */
  uncounted: { action: CallAction; body: Record<string, unknown>; model: ModelConfig; plan: LimitPlan } | null;
  /** The audit's tokens and cost were set from the answer. */
  accounted: boolean;
  prices: ModelPrices | null;
  status: number;
  error: GatewayError | null;
  toolCallCount: number;
  /** An approval this call used up: given back if the call then fails for a reason a retry can outlive. */
  redeemedApproval: string | null;
  /** Some of the answer reached the client: an approval it used stays used, whatever happens next. */
  delivered: boolean;
  /** The request body's bytes as the client sent them (stages edit the parsed body). */
  bytes: Buffer | null;
  /** The key the client sent, masked wherever a captured body repeats it. */
  callerKey: string | null;
  /** The session's `max_tool_calls`, when the call is charged to a session that has one. */
  toolCap: ToolCallCap | null;
  /** The answer's tool calls are accounted for (taken from that cap, or withheld): the settle charges none. */
  toolCallsTaken: boolean;
  /** How many calls the cap took for this answer: given back if the answer is then withheld. */
  toolCallsCharged: number;
  /** The per-call cap cannot be met: refused once the rules have run (a DENY comes first). */
  capRefusal: GatewayError | null;
}

/**
 * One governed call, stage by stage: authenticate, parse, decide, enforce, forward, relay, settle,
 * audit. Writes straight to the Node response so the body never goes through Web streams.
 */
export async function handleCall(
  services: Services,
  action: CallAction,
  incoming: IncomingMessage,
  res: ServerResponse,
  draft: AuditDraft,
): Promise<void> {
  const state: CallState = {
    draft,
    reservation: null,
    estimate: null,
    uncounted: null,
    accounted: false,
    prices: null,
    status: 200,
    error: null,
    toolCallCount: 0,
    redeemedApproval: null,
    delivered: false,
    bytes: null,
    callerKey: bearerToken(incoming.headers.authorization),
    toolCap: null,
    toolCallsTaken: false,
    toolCallsCharged: 0,
    capRefusal: null,
  };
  draft.action = action;
  // `fsync: always`: the answer ends once its record is on disk (see holdEnd).
  const releaseEnd = services.current().config.audit.fsync === "always" ? holdEnd(res) : null;
  const cancel = new CallAbort();
  res.on("close", () => {
    if (!res.writableFinished) cancel.abort(new Error("the client closed the connection"));
  });
  let unregister: (() => void) | null = null;
  try {
    if (!services.audit.canAccept()) {
      throw new GatewayError(503, "audit_unavailable", "the audit queue is full; the call was refused rather than go unrecorded", {
        headers: { "retry-after": "1" },
      });
    }
    const runtime = services.current();
    const config = runtime.config;
    const principal = identify(services, incoming, services.clock(), draft, state.callerKey);
    // Tracked from here on, so an emergency stop also ends a call waiting for an approval.
    unregister = services.streams.register(principal.keyId, principal.subject.user, principal.subject.team, cancel);

    const bytes = await readBody(incoming, config.server.max_body_bytes);
    state.bytes = bytes;
    // Checked once the body is in, so the refusal's record names the model the halted agent asked for.
    const stop = stopOf(services, principal);
    if (stop !== null) {
      draft.model = askedModel(services, state, bytes);
      throw stopError(stop);
    }
    // Read through `request` wherever it may be read after the call went upstream: a suspended async
    // function keeps every local (and register) alive, so a `body` here, even a temporary, would hold
    // the parsed tree as long as a stream. The rules' facts read `request.asSent`, the stages edit `request.body`.
    const request = readRequest(services, state, action, bytes, incoming.headers["content-encoding"]);
    const modelName = request.body.model as string;
    // An embeddings answer is never a stream, whatever the body says.
    draft.stream = request.body.stream === true && action !== "embeddings";
    const model = Object.hasOwn(config.models, modelName) ? config.models[modelName] : undefined;
    if (model === undefined) {
      throw new GatewayError(404, "model_not_found", `the model \`${draft.model}\` does not exist or you do not have access to it`, { param: "model" });
    }
    if ((model.kind === "embedding") !== (action === "embeddings")) {
      const served = model.kind === "embedding" ? "an embedding model, served on /v1/embeddings" : "a chat model, not served on /v1/embeddings";
      throw new GatewayError(404, "model_not_found", `the model \`${clipped(modelName)}\` is ${served}`, { param: "model" });
    }
    const sessionId = sessionIdOf(incoming, config);
    draft.sessionId = sessionId;
    const plan = runtime.limitPlan(principal, sessionId);
    state.toolCap = toolCallCap(plan);
    const prices = runtime.prices.get(modelName) ?? null;
    state.prices = prices;
    if (plan.needsPrices && (prices === null || !isPriced(prices))) {
      throw new GatewayError(403, "model_not_priced", `the model \`${modelName}\` has no price and this key has cost limits`, { param: "model" });
    }

    const approvalHeader = incoming.headers["x-approval-id"];
    // No approval id is that long: a longer header is cut before it is echoed or recorded.
    const approvalId = typeof approvalHeader === "string" && approvalHeader !== "" ? approvalHeader.slice(0, 200) : null;
    // The hash of the body as the client sent it (parsed again from the bytes: stages below edit `body`),
    // computed only when an approval is created or redeemed.
    let hashed: string | null = null;
    const bodyHash = (): string => {
      hashed ??= sha256Hex(canonicalJson(sentBody(bytes)));
      return hashed;
    };
    let approved = false;
    let heldBy: Approval | null = null;
    if (approvalId !== null) {
      draft.approvalId = approvalId;
      const redemption = await services.approvals.redeem(approvalId, principal, bodyHash(), action);
      state.redeemedApproval = approvalId;
      if (redemption.kind === "held" && redemption.approval.held !== null) heldBy = redemption.approval;
      else approved = true;
    }

    const facts = buildCallFacts(services, runtime, {
      principal,
      action,
      body: () => request.asSent,
      model,
      modelName,
      prices,
      plan,
      sessionId,
      ip: draft.ip,
      userAgent: draft.userAgent,
      estimate: () => ensureEstimate(state, action, request.body, model, plan, true),
    });
    await prefetchUsage(services, runtime.policy.attributes, facts, principal, sessionId);

    const callDecision = evaluatePolicy(runtime.policy, action, facts);
    // Stripping is the first edit; from here a prompt fact first read is read from the bytes.
    request.beginEdits();
    const tools: ToolGovernance = governDeclaredTools(runtime.policy, action, request.body, facts);
    draft.toolsDeclared = tools.declared;
    draft.toolsStripped = tools.stripped;
    draft.toolDecisions = tools.decisions.map((d) => d.record);
    const decision = mergeDecisions([callDecision, ...tools.decisions.map((d) => d.decision)], runtime.policy.rulesByName);
    // What shaped an approved call's outcome is the approval: audited as ALLOW, not as a violation.
    const shaped = approved && decision.effect === "REQUIRE_APPROVAL" ? approvedDecision(decision) : decision;
    draft.decision = shaped;
    // The client's body, not the one the stages edit (a stripped tool): the record keeps what was sent.
    draft.body = captureAuditBody(config, () => request.asSent, decision, state.callerKey);

    if (decision.effect === "DENY") throw deniedError(decision, refusedTool(decision, callDecision, tools));
    // A held answer's approval covers the call too (its approver saw the request): only a DENY of the
    // rules in force now stops its delivery.
    if (heldBy !== null) return await deliverHeld(services, state, runtime, facts, res, heldBy, shaped);
    if (state.capRefusal !== null) throw state.capRefusal;
    if (decision.effect === "REQUIRE_APPROVAL" && !approved) {
      const approval = await services.approvals.create({
        principal,
        bodyHash: bodyHash(),
        action,
        model: modelName,
        decision,
        toolCall: null,
        toolCalls: [],
        held: null,
        context: approvalContext(facts, draft.id, tools.decisions.find((d) => d.decision.effect === "REQUIRE_APPROVAL" && d.decision.rule === decision.rule)?.record.tool ?? null),
      });
      draft.approvalId = approval.id;
      const waited = await waitIfAsked(services, incoming, approval.id, cancel);
      if (waited !== "approved") throw approvalRequired(approval.id, decision, waited);
      await services.approvals.redeem(approval.id, principal, approval.body_hash, action);
      state.redeemedApproval = approval.id;
      draft.decision = approvedDecision(decision);
    }

    // The top-level members the gateway changes; everything else goes upstream as the client wrote it.
    let edited: Set<string> | null = tools.edited.length > 0 ? withEdits(null, tools.edited) : null;
    let estimate: Estimate;
    if (estimateNeeded(plan, runtime.policy.attributes) || config.pii.redact) {
      estimate = ensureEstimate(state, action, request.body, model, plan, false);
      if (state.capRefusal !== null) throw state.capRefusal;
      if (estimate.approximate) state.uncounted = { action, body: request.body, model, plan };
    } else {
      // Redaction, the only later edit of what the estimate measures, is off: a late count is the same.
      estimate = uncountedEstimate(action, request.body, model);
      state.uncounted = { action, body: request.body, model, plan };
    }
    state.reservation = await reserve(services, plan, estimate, prices);
    services.leases.hold(state.reservation);
    const outputTokens = state.reservation.outputTokens;
    const headers = pushRateHeaders(["x-request-id", draft.id], state.reservation.rate);
    // A request without an output limit is sent the one its worst case was reserved with wherever a
    // token or money limit holds that reservation: the upstream must not write past it. A key without
    // such limits keeps its body as sent.
    if (estimate.outputParam !== null && (estimate.requestedOutput === null ? plan.needsTokens || outputTokens < model.max_output_tokens : outputTokens < estimate.requestedOutput)) {
      applyOutputLimit(action, request.body, estimate.outputParam, outputTokens);
      edited = withEdits(edited, [estimate.outputParam, ...CHAT_LIMIT_FIELDS]);
      // Said where the limit was clamped below what the call could otherwise have had, as the contract has it.
      if (outputTokens < (estimate.requestedOutput ?? model.max_output_tokens)) headers.push("x-gateway-max-tokens", String(outputTokens));
    }
    const clientAskedUsage = isUsageRequested(request.body);
    if (action === "chat.completions" && draft.stream && !clientAskedUsage) {
      request.body.stream_options = { ...(request.body.stream_options as object | undefined), include_usage: true };
      edited = withEdits(edited, ["stream_options"]);
    }
    if (config.pii.redact) {
      const redacted = redactRequestBody(request.body, config.pii.detectors);
      if (redacted.length > 0) edited = withEdits(edited, redacted);
    }

    const upstream = runtime.upstreams.get(model.upstream)!;
    const path = action === "chat.completions" ? "/v1/chat/completions" : action === "responses" ? "/v1/responses" : "/v1/embeddings";
    if (model.upstream_model !== undefined) {
      request.body.model = model.upstream_model;
      edited = withEdits(edited, ["model"]);
    }
    // An untouched body goes upstream as the very bytes the client sent.
    const payload = edited === null ? bytes : ownBuffer(spliceEdited(bytes.toString("utf8"), request.body, edited));
    const sentAt = services.clock();
    const location = upstreamUrl(upstream, path, "");
    const upstreamHeaders = upstreamRequestHeaders(incoming.headers, upstream.apiKey, payload.length, config.sessions.header);
    const rethrowCancel = (error: unknown): never => {
      throw cancel.aborted ? cancel.reason : error;
    };
    // Set when the head arrives: an answer cut off after it still reached the upstream.
    const answered = (): void => {
      draft.upstreamMs = services.clock() - sentAt;
    };
    // A non-streamed answer is read whole without a Node stream (see forwardWhole).
    const response: UpstreamResponse | WholeResponse = draft.stream
      ? await forward(upstream, location, "POST", upstreamHeaders, payload, cancel).catch(rethrowCancel)
      : await forwardWhole(upstream, location, "POST", upstreamHeaders, payload, cancel, answered).catch(rethrowCancel);
    if (draft.stream) answered();
    // What an upstream may echo that no client, record or log should hold: its own key, the admin
    // token, the caller's key (in an error about a body that carried it).
    const scrub = draft.mask;
    const encoding = response.headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      if (!Buffer.isBuffer(response.body)) response.body.once("error", () => undefined).destroy();
      throw new GatewayError(502, "upstream_error", `the upstream answered with \`content-encoding: ${clipped(String(encoding))}\`, which the gateway asked it not to use: an answer it cannot read is not relayed`);
    }
    // A stream the client asked for is read as one whatever its label: the client's SDK reads it so.
    const isSse = String(response.headers["content-type"] ?? "").includes("text/event-stream") || draft.stream;

    if (response.status >= 400 || !isSse) {
      const raw = Buffer.isBuffer(response.body) ? response.body : await readUpstream(response.body);
      await relayJson(services, state, facts, action, response.status, response.headers, raw, headers, res, principal, bodyHash, modelName, scrub, (id) =>
        waitIfAsked(services, incoming, id, cancel),
      );
      return;
    }
    // An event stream the client did not ask for, already read whole: relayed as the stream it is.
    const answerBody = Buffer.isBuffer(response.body) ? Readable.from([response.body]) : response.body;

    state.status = response.status;
    request.release();
    const streamHeaders = clientResponseHeaders(response.headers, "cache-control", scrub);
    streamHeaders.push(...headers, "cache-control", "no-cache");
    const outcome = await relayStream(
      answerBody,
      res,
      { status: response.status, headers: streamHeaders },
      {
        stripUsageChunk: action === "chat.completions" && !clientAskedUsage,
        holdsFor: callsHeld(runtime, state.toolCap !== null),
        onAnswer: () => {
          state.delivered = true;
        },
        scrub,
        named: (error) => namingGivenBack(error, approvalGivenBack(state, error.status)),
        deferEnd: releaseEnd !== null,
        decideTools: async (calls, answer) => {
          const withinCap = () => withinToolCap(services, state, distinctCalls(calls).length);
          if (!runtime.policy.governs("tool.call")) return withinCap();
          const verdict = await governToolCalls(services, runtime.policy, facts, calls, {
            requestId: draft.id,
            principal,
            bodyHash,
            action,
            model: modelName,
            held: { kind: "sse", status: response.status, content_type: String(response.headers["content-type"]), body: answer },
            scrub,
            waitForDecision: (id) => waitIfAsked(services, incoming, id, cancel),
            withinCap,
          });
          applyToolVerdict(state, runtime, verdict);
          if (verdict.error !== null) await withholdToolCalls(services, state);
          return verdict.error;
        },
      },
      cancel,
    );
    if (outcome.clientClosed) {
      state.status = 499;
      state.error = new GatewayError(499, "client_closed", "the client closed the connection before the answer ended");
    } else {
      state.error = streamFailure(outcome, scrub);
    }
    const calls = outcome.accumulator.toolCalls();
    const made = distinctCalls(calls);
    draft.toolCalls = made.map((c) => c.name);
    if (!runtime.policy.governs("tool.call")) recordUngoverned(draft, calls);
    state.toolCallCount = state.toolCallsTaken ? 0 : made.length;
    account(state, model, outcome.accumulator.usage, outcome.accumulator.text, made);
    if (!res.destroyed) {
      res.end(`${outcome.deferred}: gateway-cost ${microsToUsd(draft.costMicros).toFixed(6)}\n\n`);
    }
  } catch (error) {
    const failure = failureOf(services, error, cancel, res.writableFinished);
    state.error = failure;
    state.status = failure.status;
    if (draft.body === null && state.bytes !== null) draft.body = refusedBody(services.current().config, state.bytes, state.callerKey);
    if (res.headersSent) {
      // A stream already open ends with the failure as its last event, as any failure after its first byte does.
      if (!res.destroyed && !res.writableEnded) res.end(draft.stream ? sseErrorEvent(namingGivenBack(failure, approvalGivenBack(state)), draft.mask) : undefined);
    } else if (!res.destroyed) {
      const headers = ["x-request-id", draft.id];
      // An approval given back (below) is named, so the retry can redeem it: one waited for here the client never saw.
      const standing = approvalGivenBack(state);
      if (standing !== null) headers.push("x-approval-id", standing);
      // Admitted, then failed (upstream down or timed out): the answer still reports the limits it counted against.
      if (state.reservation !== null) pushRateHeaders(headers, state.reservation.rate);
      // Refused after the upstream answered (a tool call in it): that answer was paid for.
      if (state.accounted) headers.push("x-gateway-cost", microsToUsd(draft.costMicros).toFixed(6));
      writeError(res, namingGivenBack(failure, standing), headers, draft.mask);
    }
  } finally {
    // A call that skipped its estimate and ended before its answer was accounted audits it as before.
    if (!state.accounted) lateEstimate(state);
    unregister?.();
    // Queued as the answer went out, before the store's part of the call (the settle, an approval
    // given back) has ended: an audit query right after the answer finds the call.
    services.finish(draft, state.status, state.error);
    const giveBack = approvalGivenBack(state);
    if (giveBack !== null || (state.reservation !== null && !state.reservation.settled)) await services.afterAnswer(storeWorkAfter(services, state, giveBack));
    if (releaseEnd !== null) await services.audit.storedWithin(DURABLE_WAIT_MS).finally(releaseEnd);
  }
}

/** What the store still owes a call once it is answered and recorded: the approval it gives back, then its settle. */
async function storeWorkAfter(services: Services, state: CallState, giveBack: string | null): Promise<void> {
  if (giveBack !== null) await giveBackApproval(services, giveBack);
  await finishSettle(services, state);
}

/**
 * The body of a call refused before any rule judged it (a stop, an unknown model, a spent approval),
 * as the configured `audit.bodies` captures it: no rule ran to raise the level. A body that is not
 * JSON is not captured.
 */
function refusedBody(config: Config, bytes: Buffer, callerKey: string | null): AuditDraft["body"] {
  if (config.audit.bodies === "none") return null;
  try {
    return captureAuditBody(config, () => sentBody(bytes), null, callerKey);
  } catch {
    return null;
  }
}

/**
 * How long an answer waits for its record to reach the disk (`fsync: always`): a sink that cannot
 * store it holds the record for retries, and the client gets its answer rather than hang.
 */
const DURABLE_WAIT_MS = 5_000;

/**
 * An approved call's held answer, delivered as it was produced, with no upstream call. Its tool
 * calls are judged again by the `tool.call` rules in force now: one a rule now DENYs stops the
 * delivery (the approval is used up), as a DENY of the call's own rules does. They were given back
 * to the session when the answer was held and are taken from its cap now: they run only once delivered.
 */
async function deliverHeld(
  services: Services,
  state: CallState,
  runtime: Runtime,
  facts: CallFacts,
  res: ServerResponse,
  approval: Approval,
  /** The call's decision under the rules in force, the approval applied. */
  callDecision: Decision,
): Promise<void> {
  const { draft } = state;
  const config = runtime.config;
  const held = approval.held as NonNullable<Approval["held"]>;
  const made = distinctCalls(approval.tool_calls);
  if (runtime.policy.governs("tool.call")) {
    const now = judgeToolCalls(runtime.policy, facts, approval.tool_calls);
    const combined = mergeDecisions(now.map((d) => d.decision), runtime.policy.rulesByName);
    if (combined.effect === "DENY") {
      draft.toolCalls = made.map((call) => call.name);
      draft.toolDecisions = [...draft.toolDecisions, ...now.map((d) => d.record)];
      draft.decision = combined;
      const denied = now.find((d) => d.decision.effect === "DENY");
      throw deniedError(combined, denied === undefined ? null : { name: denied.record.tool });
    }
  }
  const capped = await withinToolCap(services, state, made.length, true);
  if (capped !== null) throw capped;
  // Named by the approval, which shaped the outcome; the call's own matched rules and their constraints beside it.
  const approved = heldDecision(approval);
  draft.decision = { ...mergeDecisions([callDecision, approved], runtime.policy.rulesByName), rule: approved.rule, reason: approved.reason };
  // The body is captured at the highest level any matched rule asks, the call's own included.
  const { bytes } = state;
  if (bytes !== null) draft.body = captureAuditBody(config, () => sentBody(bytes), draft.decision, state.callerKey);
  draft.toolCalls = made.map((call) => call.name);
  draft.toolDecisions = [
    ...draft.toolDecisions,
    ...approval.tool_calls.map((call) => ({ action: "tool.call" as const, tool: call.name, effect: call.effect as Decision["effect"], rule: call.rule })),
  ];
  const heldHeaders = ["x-request-id", draft.id, "content-type", held.content_type, "x-approval-id", approval.id];
  // The held answer was paid for by the call that produced it; delivering it calls no upstream.
  const free = microsToUsd(0).toFixed(6);
  heldHeaders.push(...(held.kind === "json" ? ["x-gateway-cost", free] : ["cache-control", "no-cache"]));
  state.status = held.status;
  state.delivered = true;
  res.writeHead(held.status, heldHeaders);
  res.end(held.kind === "json" ? held.body : `${held.body}: gateway-cost ${free}\n\n`);
}

/**
 * Failures a retry can outlive: a limit, the upstream or the store, the client gone. An approved call
 * that failed so before any of its answer was sent has not been served, and the SDK's own retry of
 * it must not find its approval used. One whose answer had begun stays used: a client that read the
 * answer and then dropped the connection must not get the call again for free.
 */
function outlivedByRetry(status: number): boolean {
  return status === 429 || status === 499 || status >= 500;
}

/**
 * The approval this call redeemed, where its failure gives it back for the retry (see `outlivedByRetry`):
 * judged by the failure's status, not the 200 a stream's head may already have gone out with.
 */
function approvalGivenBack(state: CallState, status = state.error?.status ?? state.status): string | null {
  return state.redeemedApproval !== null && !state.delivered && outlivedByRetry(status) ? state.redeemedApproval : null;
}

/** The error, naming the approval it gives back (so the retry can redeem it), where it gives one back. */
function namingGivenBack(error: GatewayError, approvalId: string | null): GatewayError {
  if (approvalId === null) return error;
  return new GatewayError(error.status, error.code, error.message, { ...error.options, extra: { ...error.options.extra, approval_id: approvalId } });
}

async function giveBackApproval(services: Services, id: string): Promise<void> {
  try {
    await services.approvals.restore(id);
  } catch (error) {
    storeTrouble(services.log, "approval restore", error);
  }
}

/** The declared tool a DENY is about, when a tool's rule (not the call's) named it. */
function refusedTool(decision: Decision, callDecision: Decision, tools: ToolGovernance): { name: string; param?: string } | null {
  if (callDecision.effect === "DENY" && callDecision.rule === decision.rule) return null;
  const byRule = tools.decisions.find((d) => d.decision.effect === "DENY" && d.decision.rule === decision.rule);
  return byRule === undefined ? tools.deniedTool : { name: byRule.record.tool, ...(byRule.param === undefined ? {} : { param: byRule.param }) };
}

/** A REQUIRE_APPROVAL that a human approved: what shaped the outcome, audited as ALLOW. */
function approvedDecision(decision: Decision): Decision {
  return { ...decision, effect: "ALLOW", reason: `approved by a human; ${decision.reason}` };
}

/**
 * The edited body's bytes in a buffer of their own. `Buffer.from` would cut them from the shared
 * 8 KB pool, and the upstream client keeps the request's body until the answer ends: every open
 * stream would hold a slab that others' short-lived buffers share.
 */
function ownBuffer(text: string): Buffer {
  const buffer = Buffer.allocUnsafeSlow(Buffer.byteLength(text, "utf8"));
  buffer.write(text, "utf8");
  return buffer;
}


/** What delivering a held answer decided: the approval's rule and constraints, now allowed. */
function heldDecision(approval: Approval): Decision {
  const { rule } = approval;
  return {
    effect: "ALLOW",
    rule,
    reason: "approved by a human; the held answer is delivered",
    matched: rule === null ? [] : [rule],
    constraints: approval.constraints,
    dry_run_rules: [],
  };
}

function ensureEstimate(
  state: CallState,
  action: CallAction,
  body: Record<string, unknown>,
  model: ModelConfig,
  plan: LimitPlan,
  exact: boolean,
): Estimate {
  if (state.estimate !== null && (!exact || !state.estimate.approximate)) return state.estimate;
  const prices: ModelPrices = state.prices ?? { kind: model.kind, inputPer1m: null, outputPer1m: null, cachedInputPer1m: null };
  const exactNeeded = exact || needsExact(plan);
  try {
    state.estimate = estimateCall(action, body, model, prices, plan, exactNeeded);
  } catch (error) {
    if (!(error instanceof GatewayError) || error.code !== "cost_cap_exceeded") throw error;
    // Refused after the rules, so a DENY the call also meets is what the client and the audit see;
    // until then its facts are the uncapped worst case, as `POST /admin/policies/evaluate` judges it.
    // Counted exactly, as the refusal counted it: with no cap left to check, a byte bound would pass and be recorded.
    state.capRefusal = error;
    state.estimate = estimateCall(action, body, model, prices, { ...plan, perCallCapMicros: null }, true);
  }
  // An answer's usage, once accounted, is what the record reports; a rule reading an estimate after it changes nothing.
  if (!state.accounted) state.draft.inputTokens = state.estimate.inputTokens;
  return state.estimate;
}

/**
 * The exact count of a call that went on without one, made now (and recorded in the draft) when the
 * audit needs it. A byte bound that fit the per-call cap means the count fits it too: no refusal here.
 */
function lateEstimate(state: CallState): Estimate | null {
  const uncounted = state.uncounted;
  if (uncounted === null) return state.estimate;
  return ensureEstimate(state, uncounted.action, uncounted.body, uncounted.model, uncounted.plan, true);
}

/**
 * Token limits and budgets need the real count: a budget's remainder is only known inside the
 * store's atomic reserve, so a byte bound there could refuse or clamp a call whose counted worst
 * case fits. Only the per-call cap, which `estimateCall` checks itself, can use the byte bound.
 */
function needsExact(plan: LimitPlan): boolean {
  return plan.levels.some(
    ({ limits }) =>
      limits.tokensPerMinute !== null ||
      limits.sessionMaxTokens !== null ||
      limits.dailyMicros !== null ||
      limits.monthlyMicros !== null ||
      limits.totalMicros !== null,
  );
}

/** Attributes whose value depends on the estimate: input tokens, or worst-case money reserved in flight. */
const ESTIMATE_READERS = ["estimated_cost", "input_tokens", "max_output_tokens", "daily_spend", "monthly_spend", "total_spend", "session_cost"];

/** Something reads the estimate: a limit on tokens or money (or the per-call cap), or a rule. */
function estimateNeeded(plan: LimitPlan, attributes: ReadonlySet<string>): boolean {
  return plan.needsTokens || ESTIMATE_READERS.some((attribute) => attributes.has(attribute));
}

/** The call's output limit without any input count: what the reservation needs when nothing limits tokens or money. */
function uncountedEstimate(action: CallAction, body: Record<string, unknown>, model: ModelConfig): Estimate {
  return { inputTokens: 0, ...outputLimit(action, body, model), inputMicros: 0, worstMicros: 0, approximate: true };
}


function withEdits(edited: Set<string> | null, keys: readonly string[]): Set<string> {
  const set = edited ?? new Set<string>();
  for (const key of keys) set.add(key);
  return set;
}

interface ToolCallCap {
  level: string;
  max: number;
}

function toolCallCap(plan: LimitPlan): ToolCallCap | null {
  for (const { level, limits } of plan.levels) {
    if (limits.sessionMaxToolCalls !== null) return { level, max: limits.sessionMaxToolCalls };
  }
  return null;
}

/**
 * An answer whose tool calls would take its session past `max_tool_calls` is withheld (429
 * `budget_exceeded`): the cap is on what the agent gets to run, not only on its next call. The
 * answer's calls are taken from the session's allowance in one atomic step when it is in, so answers
 * arriving together cannot pass the cap between them; the settle then charges none again.
 */
async function withinToolCap(services: Services, state: CallState, count: number, heldAnswer = false): Promise<GatewayError | null> {
  const cap = state.toolCap;
  if (cap === null || count === 0) return null;
  let taken: { ok: boolean; used: number };
  try {
    taken = await services.store.takeToolCalls(cap.level, count, cap.max);
  } catch (error) {
    return storeDown(services, "session tool calls", error);
  }
  state.toolCallsTaken = true;
  state.toolCallsCharged = taken.ok ? count : 0;
  // A held answer retried where its session has no count (it ended, or the retry names another)
  // has nothing to charge: what fits the cap is delivered.
  if (taken.ok || (heldAnswer && taken.used + count <= cap.max)) return null;
  return new GatewayError(
    429,
    "budget_exceeded",
    `session tool-call limit: the answer's ${count} tool calls would take the session past its ${cap.max} (${taken.used} used); the answer was withheld`,
    { headers: { "x-should-retry": "false" } },
  );
}

/** A withheld answer's tool calls never run: the session gets back what the cap took for them, and the settle charges none. */
async function withholdToolCalls(services: Services, state: CallState): Promise<void> {
  const cap = state.toolCap;
  const charged = state.toolCallsCharged;
  state.toolCallsTaken = true;
  state.toolCallsCharged = 0;
  if (cap === null || charged === 0) return;
  try {
    await services.store.takeToolCalls(cap.level, -charged, cap.max);
  } catch (error) {
    services.metrics.storeError();
    storeTrouble(services.log, "tool-call give-back", error);
  }
}

function isUsageRequested(body: Record<string, unknown>): boolean {
  const options = body.stream_options;
  return options !== null && typeof options === "object" && (options as { include_usage?: unknown }).include_usage === true;
}

/** The call's worst case, reserved at every level. */
function reserve(services: Services, plan: LimitPlan, estimate: Estimate, prices: ModelPrices | null): Promise<Reservation> {
  return reserveCharge(services, plan, {
    inputTokens: estimate.inputTokens,
    inputMicros: estimate.inputMicros,
    outputPricePer1M: prices?.outputPer1m ?? 0,
    outputTokens: estimate.outputTokens,
    choices: estimate.choices,
  });
}

function account(state: CallState, model: ModelConfig, rawUsage: Record<string, unknown> | null, text: string, calls: readonly ToolCall[]): void {
  state.accounted = true;
  const usage = (rawUsage === null ? null : usageFromOpenAI(rawUsage)) ?? ownCount(state, model, text, calls);
  state.draft.inputTokens = usage.input_tokens;
  state.draft.outputTokens = usage.output_tokens;
  state.draft.costMicros = state.prices === null ? 0 : costMicros(usage, state.prices);
}

/**
 * An answer's usage where the upstream reported none: the input as estimated, the output counted,
 * but never past the output limit the call was reserved with (the upstream was bound by it, and a
 * count of the text can exceed the model's own): what concurrent calls reserved must cover what they are charged.
 */
function ownCount(state: CallState, model: ModelConfig, text: string, calls: readonly ToolCall[]): { input_tokens: number; output_tokens: number; cached_input_tokens: number } {
  const estimate = lateEstimate(state);
  const counted = outputTokensOf(text, calls, model);
  const bound = state.reservation === null ? counted : state.reservation.outputTokens * (estimate?.choices ?? 1);
  return { input_tokens: estimate?.inputTokens ?? 0, output_tokens: Math.min(counted, bound), cached_input_tokens: 0 };
}

/** The output of an answer without a usage report: its text and the tool calls it made (what was streamed of them). */
function outputTokensOf(text: string, calls: readonly ToolCall[], model: ModelConfig): number {
  let tokens = text === "" ? 0 : countTextTokens(text, model.tokenizer);
  for (const call of calls) tokens += countTextTokens(call.name, model.tokenizer) + countTextTokens(call.arguments, model.tokenizer);
  return tokens;
}

/**
 * Replaces the call's reservation by its actual cost. Started in the same tick as the answer is
 * written, just after it: the client waits neither for the settle's work nor for a store round
 * trip, and no other call's reserve can run in between, so on one store connection the settle is
 * sent before any later call's reserve. Until it lands the store still holds the worst case, so no
 * later call can spend what this one did.
 */
async function finishSettle(services: Services, state: CallState): Promise<void> {
  const reservation = state.reservation;
  if (reservation === null || reservation.settled) return;
  const { draft } = state;
  services.leases.release(reservation);
  try {
    await settleAll(
      services.store,
      reservation,
      { micros: draft.costMicros, tokens: draft.inputTokens + draft.outputTokens, toolCalls: state.toolCallCount },
      services.clock(),
      { unanswered: state.status >= 500 && !state.delivered },
    );
  } catch (error) {
    services.metrics.storeError();
    storeTrouble(services.log, "settle", error);
  }
}

/** A non-streamed answer: read whole (it is one JSON document), its tool calls governed, then sent. */
async function relayJson(
  services: Services,
  state: CallState,
  facts: CallFacts,
  action: CallAction,
  status: number,
  upstreamHeaders: Record<string, string | string[] | undefined>,
  raw: Buffer,
  headers: string[],
  res: ServerResponse,
  principal: Principal,
  bodyHash: () => string,
  modelName: string,
  scrub: (text: string) => string,
  waitForDecision: ToolCallContext["waitForDecision"],
): Promise<void> {
  const runtime = services.current();
  const model = runtime.config.models[modelName]!;
  const text = raw.toString("utf8");
  // A byte order mark is dropped, as the clients' JSON readers drop it: the gateway judges what they read.
  const parsed = parseUpstreamJson(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  if (status >= 400) {
    state.status = status;
    const failed = upstreamFailure(status, parsed, text, scrub);
    state.error = failed.error;
    // An upstream's 429 is about the upstream's limits: its x-ratelimit-* explain it, the gateway's would contradict it.
    const upstreamLimited = status === 429;
    const errorHeaders = clientResponseHeaders(upstreamHeaders, "content-type", scrub, upstreamLimited);
    errorHeaders.push(...(upstreamLimited ? ["x-request-id", state.draft.id] : headers));
    const standing = approvalGivenBack(state);
    if (standing !== null) errorHeaders.push("x-approval-id", standing);
    writeJson(res, status, errorHeaders, failed.body);
    return;
  }
  // An answer the gateway cannot read (not JSON, not its endpoint's answer: an error under a 200, a
  // bare value) cannot be governed: never relayed as a success.
  if (parsed === undefined) throw new GatewayError(502, "upstream_error", `the upstream answered ${status} with a body that is not JSON`);
  if (!isAnswer(action, parsed)) {
    const said = isOpenAIError(parsed) ? upstreamErrorMessage(parsed, text) : null;
    throw new GatewayError(502, "upstream_error", scrub(`the upstream answered ${status} with ${said === null ? "a body that is not an answer" : `an error: ${said}`}`));
  }
  const summary = summarizeAnswer(parsed);
  state.draft.toolCalls = summary.toolCalls.map((c) => c.name);
  account(state, model, summary.usage, summary.text, summary.toolCalls);
  // Most answers call no tool, or have no session cap to take them from: nothing to wait for.
  const withinCap = () => (summary.toolCalls.length === 0 || state.toolCap === null ? Promise.resolve(null) : withinToolCap(services, state, summary.toolCalls.length));
  if (!runtime.policy.governs("tool.call")) {
    recordUngoverned(state.draft, summary.toolCalls);
    const capped = await withinCap();
    if (capped !== null) throw capped;
  } else if (summary.toolCalls.length > 0) {
    const verdict = await governToolCalls(services, runtime.policy, facts, summary.toolCalls, {
      requestId: state.draft.id,
      principal,
      bodyHash,
      action,
      model: modelName,
      held: { kind: "json", status, content_type: "application/json", body: scrub(text) },
      scrub,
      waitForDecision,
      withinCap,
    });
    applyToolVerdict(state, runtime, verdict);
    if (verdict.error !== null) {
      await withholdToolCalls(services, state);
      throw verdict.error;
    }
  }
  state.toolCallCount = state.toolCallsTaken ? 0 : summary.toolCalls.length;
  // Gone before its answer could be written, though its close may not have been reported yet (a half-close).
  if (res.destroyed) throw clientClosed();
  state.status = status;
  const answerHeaders = clientResponseHeaders(upstreamHeaders, "content-type", scrub);
  answerHeaders.push(...headers, "x-gateway-cost", microsToUsd(state.draft.costMicros).toFixed(6));
  state.delivered = true;
  const masked = scrub(text);
  writeJson(res, status, answerHeaders, masked === text ? raw : masked);
}

/**
 * Which streamed tool calls hold the rest of the answer until they are decided: every call while a
 * session's tool-call cap may withhold the answer; else every call some rule could judge. A search or
 * the code interpreter, run by the upstream, that no rule names lets the answer flow on live.
 */
function callsHeld(runtime: Runtime, capped: boolean): ((call: ToolCall) => boolean) | null {
  if (!capped && !runtime.policy.governs("tool.call")) return null;
  if (capped) return () => true;
  return (call) => call.ranUpstream !== true || runtime.policy.mayJudgeToolCall([call.name, ...(call.aliases ?? [])]);
}

/** An answer's tool calls where no rule governs `tool.call`: each audited as its evaluation would decide it. */
function recordUngoverned(draft: AuditDraft, calls: readonly ToolCall[]): void {
  if (calls.length > 0) draft.toolDecisions = [...draft.toolDecisions, ...calls.map((call) => ungoverned("tool.call", call.name).record)];
}

function applyToolVerdict(
  state: CallState,
  runtime: Runtime,
  verdict: ToolVerdict,
): void {
  const { draft } = state;
  draft.toolDecisions = [...draft.toolDecisions, ...verdict.decisions.map((d) => d.record)];
  if (draft.decision !== null) {
    const before = draft.decision.constraints.audit_bodies;
    const merged = mergeDecisions([draft.decision, ...verdict.decisions.map((d) => d.decision)], runtime.policy.rulesByName);
    // Approved while the client waited: audited as ALLOW, as a retry that redeems an approval is.
    draft.decision = verdict.approved && merged.effect === "REQUIRE_APPROVAL" ? approvedDecision(merged) : merged;
    // A tool call's rule may raise the body capture after the call's own was taken.
    if (draft.decision.constraints.audit_bodies !== before && state.bytes !== null) {
      const { bytes } = state;
      draft.body = captureAuditBody(runtime.config, () => sentBody(bytes), draft.decision, state.callerKey);
    }
  }
  if (verdict.approvalId !== null) draft.approvalId = verdict.approvalId;
}

/** Whether a 2xx body is its endpoint's answer, as the client's SDK would read it. */
function isAnswer(action: CallAction, parsed: unknown): parsed is Record<string, unknown> {
  if (!isRecord(parsed)) return false;
  if (action === "chat.completions") return Array.isArray(parsed.choices);
  if (action === "embeddings") return Array.isArray(parsed.data);
  return parsed.object === "response" || Array.isArray(parsed.output);
}

/** `x-approval-wait: N` (at most 300 s) holds the first call open until a human decides. */
async function waitIfAsked(services: Services, incoming: IncomingMessage, id: string, signal: CallSignal): Promise<WaitOutcome> {
  const raw = Number(incoming.headers["x-approval-wait"]);
  if (!Number.isFinite(raw) || raw <= 0) return "none";
  const approval = await services.approvals.waitForDecision(id, Math.min(300, raw), signal).catch((error: unknown) => {
    // The store went away while the client waited: the approval it was given still stands, and is
    // named in the answer, so the retry redeems it once the store is back rather than ask anew.
    if (error instanceof GatewayError && error.code === "store_unavailable") return null;
    throw error;
  });
  if (signal.aborted && signal.reason instanceof GatewayError) throw signal.reason;
  if (approval === null) return "pending";
  if (Date.parse(approval.expires_at) <= services.clock()) return "expired";
  if (approval.status === "approved") return "approved";
  if (approval.status === "denied") return "denied";
  return "pending";
}

function clientClosed(): GatewayError {
  return new GatewayError(499, "client_closed", "the client closed the connection");
}

/**
 * What a call that threw is recorded and answered as. A cancelled call is what cancelled it: a stop
 * (or shutdown) names itself, and a client gone before its answer (during an approval wait, say) is
 * 499 whatever the call met next, an upstream read it cut short included.
 */
function failureOf(services: Services, error: unknown, cancel: CallSignal, answered: boolean): GatewayError {
  if (cancel.aborted && cancel.reason instanceof GatewayError) return cancel.reason;
  if (cancel.aborted && !answered) return clientClosed();
  if (error instanceof GatewayError) return error;
  if (cancel.aborted) return clientClosed();
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code.startsWith("UND_ERR")) return upstreamError(error);
  services.log.error({ err: error }, "unexpected error in a governed call");
  return new GatewayError(500, "internal_error", "the gateway hit an unexpected error; the request was recorded");
}

