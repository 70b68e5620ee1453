import { Hono } from "hono";
import { z } from "zod";
import type { Principal } from "../auth/keys.js";
import type { ModelConfig, Subject } from "../config/schema.js";
import type { Env } from "../http/app.js";
import { clipped, GatewayError } from "../http/errors.js";
import { planLimits } from "../limits/plan.js";
import { detectPii, lazyPrompt, type PiiType } from "../pii/index.js";
import { tokenDecoder } from "../tokens/encoding.js";
import { ATTRIBUTE_NAMES, kindMismatch, resolveAttribute } from "../policy/attributes.js";
import type { PolicyCase } from "../policy/cases.js";
import { type CompiledPolicy, isAction } from "../policy/compile.js";
import { ACTIONS } from "../policy/types.js";
import { evaluatePolicy, mergeDecisions } from "../policy/evaluate.js";
import { type Action, CALL_ACTIONS, type CallAction, type Decision } from "../policy/types.js";
import { compileModelPrices, microsToUsd } from "../pricing/index.js";
import { prefetchUsage, USAGE_ATTRIBUTES } from "../pipeline/call-facts.js";
import { declaredToolNames } from "../openai/declared-tools.js";
import { validateBody } from "../openai/schemas.js";
import { type Estimate, estimateCall } from "../pipeline/estimate.js";
import { CallFacts, toolArgsFacts } from "../pipeline/facts.js";
import type { Runtime } from "../pipeline/runtime.js";
import { governDeclaredTools } from "../pipeline/tools.js";
import { type AdminContext, allowOnly, authorize, list, noQuery, readJson } from "./http.js";
import type { AdminDeps } from "./routes.js";

/** What evaluation needs of the runtime; `{ config }` alone will do, so the CLI need not build upstreams. */
export type EvaluationContext = Pick<Runtime, "config">;
export type EvaluationRequest = Record<string, unknown>;
export type FactOverrides = Record<string, unknown>;

const isCallAction = (action: Action): action is CallAction => (CALL_ACTIONS as readonly string[]).includes(action);

/**
 * The call action an OpenAI body is for: `messages` means chat, `input` to an embedding model means
 * embeddings, anything else the Responses API (whose `input` may be text or items).
 */
export function deriveAction(runtime: EvaluationContext, request: EvaluationRequest | undefined): CallAction {
  if (request === undefined || request.messages !== undefined) return "chat.completions";
  const model = typeof request.model === "string" ? (Object.hasOwn(runtime.config.models, request.model) ? runtime.config.models[request.model] : undefined) : undefined;
  if (request.input !== undefined && model?.kind === "embedding") return "embeddings";
  return "responses";
}

// `tool_args` is set whole here, although conditions may only name paths into it.
const OVERRIDABLE = new Set([...ATTRIBUTE_NAMES, "tool_args"]);

function checkOverrides(overrides: FactOverrides): void {
  for (const [name, value] of Object.entries(overrides)) {
    if (!OVERRIDABLE.has(name)) {
      throw new GatewayError(400, "invalid_body", `unknown attribute \`${name}\` in \`facts\``, { param: `facts.${name}` });
    }
    // A value of the wrong kind would quietly hold for no rule (`daily_spend: "lots"` reads as no spend).
    const attribute = resolveAttribute(name);
    const expected = typeof attribute === "string" ? null : kindMismatch(attribute.kind, value);
    if (expected !== null) throw new GatewayError(400, "invalid_body", `\`facts.${name}\` must be ${expected} (or null)`, { param: `facts.${name}` });
  }
  if (overrides.action !== undefined && !isAction(overrides.action)) {
    throw new GatewayError(400, "invalid_body", "`facts.action` is not an action", { param: "facts.action" });
  }
}

/** Sets the given facts over the derived ones; tool arguments are kept consistent in both forms. */
export function applyFactOverrides(facts: CallFacts, overrides: FactOverrides, detectors: readonly PiiType[]): void {
  for (const [name, value] of Object.entries(overrides)) facts.set(name, value);
  // A prompt given as a fact is scanned as a request's would be, unless its classification is given too.
  if (typeof overrides.prompt_text === "string" && overrides.data_classification === undefined && overrides.pii_types === undefined) {
    const found = detectPii(overrides.prompt_text, detectors);
    facts.set("data_classification", found.classification);
    facts.set("pii_types", found.types);
  }
  const args = overrides.tool_args;
  const argsJson = overrides.tool_args_json;
  if (args !== undefined && argsJson === undefined) facts.set("tool_args_json", JSON.stringify(args));
  if (args === undefined && typeof argsJson === "string") {
    // As the pipeline reads a tool call's arguments; unparsable ones leave `tool_args` missing.
    const read = toolArgsFacts(argsJson);
    facts.set("tool_args_json", read.json);
    if (read.args !== undefined) facts.set("tool_args", read.args);
  }
}

/** The worst case as the pipeline computes it; a per-call cap that cannot be met is judged uncapped. */
function estimateFor(runtime: EvaluationContext, principal: Principal, action: CallAction, request: EvaluationRequest, model: ModelConfig): Estimate {
  const prices = compileModelPrices(model);
  const plan = planLimits(runtime.config, principal, null);
  try {
    return estimateCall(action, request, model, prices, plan, true);
  } catch (error) {
    if (!(error instanceof GatewayError) || error.code !== "cost_cap_exceeded") throw error;
    return estimateCall(action, request, model, prices, { ...plan, perCallCapMicros: null }, true);
  }
}

/**
 * The facts of an evaluation without a live call: from a key (or a bare subject, for `policy test`)
 * and an OpenAI request body, with `overrides` setting or adding attributes (`tool`, `tool_args`,
 * `daily_spend`, ...). Usage attributes are not read from the store here; see `evaluateForKey`.
 * `get("action")` is the action to evaluate: the given one, else the one the body implies.
 */
export function buildEvaluationFacts(
  runtime: EvaluationContext,
  who: Principal | Subject,
  request: EvaluationRequest | undefined,
  action: Action | undefined,
  overrides: FactOverrides | undefined,
  now: number = Date.now(),
): CallFacts {
  if (overrides !== undefined) checkOverrides(overrides);
  const principal: Principal = "keyId" in who ? who : { keyId: "", subject: who, limits: {}, source: "config" };
  const overriddenAction = overrides?.action;
  const resolved = action ?? (isAction(overriddenAction) ? overriddenAction : deriveAction(runtime, request));
  const body = request ?? {};
  const callAction = isCallAction(resolved) ? resolved : deriveAction(runtime, request);
  const modelName = typeof body.model === "string" ? body.model : null;
  const model = modelName !== null && Object.hasOwn(runtime.config.models, modelName) ? runtime.config.models[modelName] : undefined;
  let estimate: Estimate | null | undefined;
  const estimated = (): Estimate | null => {
    if (estimate === undefined) estimate = request === undefined || model === undefined ? null : estimateFor(runtime, principal, callAction, body, model);
    return estimate;
  };
  const prompt = lazyPrompt(() => body, runtime.config.pii.detectors, model === undefined ? undefined : tokenDecoder(model));
  const facts = new CallFacts({
    principal,
    org: runtime.config.org,
    action: resolved,
    model: modelName,
    // An embeddings answer is never a stream, whatever the body says, as the live call has it.
    stream: body.stream === true && callAction !== "embeddings",
    tools: declaredToolNames(callAction, body),
    sessionId: null,
    ip: null,
    userAgent: null,
    now,
    lazy: {
      estimated_cost: () => {
        const worst = estimated()?.worstMicros;
        return worst === undefined ? undefined : microsToUsd(worst);
      },
      input_tokens: () => estimated()?.inputTokens,
      max_output_tokens: () => estimated()?.outputTokens,
      prompt_text: () => (request === undefined ? undefined : prompt.text()),
      data_classification: () => (request === undefined ? undefined : prompt.pii().classification),
      pii_types: () => (request === undefined ? undefined : prompt.pii().types),
    },
  });
  // A bare subject has no key: `key_id` conditions must see it missing, not empty.
  if (!("keyId" in who)) facts.set("key_id", undefined);
  if (overrides !== undefined) applyFactOverrides(facts, overrides, runtime.config.pii.detectors);
  facts.set("action", resolved);
  return facts;
}

/** A `policy test` case's facts: its subject is given, or taken from a config key named by `key_id`. */
export function buildCaseFacts(
  runtime: EvaluationContext,
  testCase: Pick<PolicyCase, "key_id" | "subject" | "request" | "action" | "facts">,
  now: number = Date.now(),
): CallFacts {
  let who: Principal | Subject | undefined = testCase.subject;
  if (testCase.key_id !== undefined) {
    const key = runtime.config.keys.find((candidate) => candidate.id === testCase.key_id);
    if (key === undefined) throw new Error(`no key \`${testCase.key_id}\` in the config`);
    who = { keyId: key.id, subject: key.subject, limits: key.limits, source: "config" };
  }
  if (who === undefined) throw new Error("give `key_id` or `subject`");
  if (testCase.request !== undefined) checkRequest(runtime, testCase.request, testCase.action);
  const facts = buildEvaluationFacts(runtime, who, testCase.request, testCase.action, testCase.facts, now);
  // Offline there is no store: the case's key has used nothing, unless its `facts` say otherwise.
  const action = facts.get("action");
  for (const attribute of USAGE_ATTRIBUTES) facts.set(attribute, 0);
  if (testCase.facts !== undefined) applyFactOverrides(facts, testCase.facts, runtime.config.pii.detectors);
  facts.set("action", action);
  return facts;
}

/**
 * Decides as the pipeline would: for a call, the call's decision merged with each declared tool's
 * `tool.register` decision; for a tool action, that action alone.
 */
export function evaluateFacts(runtime: EvaluationContext, policy: CompiledPolicy, action: Action, facts: CallFacts, request: EvaluationRequest | undefined): Decision {
  if (action === "tool.register" && request !== undefined && facts.get("tool") === undefined) {
    // No tool named: each tool the request declares is judged, as the live call judges them.
    const tools = governDeclaredTools(policy, deriveAction(runtime, request), structuredClone(request), facts);
    if (tools.decisions.length > 0) return mergeDecisions(tools.decisions.map((tool) => tool.decision), policy.rulesByName);
  }
  const decision = evaluatePolicy(policy, action, facts);
  if (!isCallAction(action) || request === undefined) return decision;
  const tools = governDeclaredTools(policy, action, structuredClone(request), facts);
  return mergeDecisions([decision, ...tools.decisions.map((tool) => tool.decision)], policy.rulesByName);
}

/** A request the live call would refuse as malformed is refused here too, its `param` under `request`. */
/**
 * Refuses what a live call would refuse before any rule is read: a model not served, or served on
 * the other endpoint (404 `model_not_found`), and a body of the wrong shape (400 `invalid_body`), each
 * named under `request`. `POST /admin/policies/evaluate` answers so; `policy test` fails the case so.
 */
export function checkRequest(runtime: EvaluationContext, request: EvaluationRequest, action: Action | undefined): void {
  const callAction = action !== undefined && isCallAction(action) ? action : deriveAction(runtime, request);
  const { models } = runtime.config;
  const model = typeof request.model === "string" ? request.model : null;
  if (model !== null && !Object.hasOwn(models, model)) {
    throw new GatewayError(404, "model_not_found", `the model \`${clipped(model)}\` is not served (not in \`models\`): a call to it gets 404 before any rule`, {
      param: "request.model",
    });
  }
  if (model !== null && (models[model]!.kind === "embedding") !== (callAction === "embeddings")) {
    const served = models[model]!.kind === "embedding" ? "an embedding model, served on /v1/embeddings" : "a chat model, not served on /v1/embeddings";
    throw new GatewayError(404, "model_not_found", `the model \`${clipped(model)}\` is ${served}`, { param: "request.model" });
  }
  try {
    validateBody(callAction, structuredClone(request));
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    const param = error.options.param;
    throw new GatewayError(400, "invalid_body", `\`request\`: ${error.message}`, { param: param === undefined ? "request" : `request.${param}` });
  }
}

const evaluateSchema = z
  .strictObject({
    key_id: z.string().min(1),
    request: z.record(z.string(), z.unknown()).optional(),
    action: z.enum(ACTIONS).optional(),
    facts: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((body) => body.request !== undefined || body.facts !== undefined, {
    path: ["request"],
    message: "give `request`, `facts` or both",
  });

async function evaluateRoute(c: AdminContext, deps: AdminDeps): Promise<Response> {
  const { services } = deps;
  authorize(c, services, "admin", "admin.policies.evaluate");
  const body = await readJson(c, services, evaluateSchema);
  const principal = services.shared.keys.byId.get(body.key_id);
  if (principal === undefined) throw new GatewayError(404, "not_found", `no key \`${body.key_id}\``, { param: "key_id" });
  const runtime = services.current();
  if (body.request !== undefined) checkRequest(runtime, body.request, body.action);
  const facts = buildEvaluationFacts(runtime, principal, body.request, body.action, body.facts, services.clock());
  // The key's real usage, as a live call would see it; explicit `facts` still win.
  await prefetchUsage(services, runtime.policy.attributes, facts, principal, null);
  // buildEvaluationFacts always leaves a valid action here (the given, overridden or derived one).
  const action = facts.get("action") as Action;
  if (body.facts !== undefined) applyFactOverrides(facts, body.facts, runtime.config.pii.detectors);
  facts.set("action", action);
  return c.json(evaluateFacts(runtime, runtime.policy, action, facts, body.request));
}

export function policyRoutes(deps: AdminDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.get("/", (c) => {
    authorize(c, deps.services, "admin", "admin.policies.list");
    noQuery(c);
    const { policy } = deps.services.current();
    return c.json({ ...list([...policy.rules]), default_effect: policy.defaultEffect });
  });
  app.post("/evaluate", (c) => evaluateRoute(c, deps));
  allowOnly(app, deps.services, "/", ["GET"]);
  allowOnly(app, deps.services, "/evaluate", ["POST"]);
  return app;
}
