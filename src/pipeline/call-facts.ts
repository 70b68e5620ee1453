import type { Principal } from "../auth/keys.js";
import type { ModelConfig } from "../config/schema.js";
import type { LimitPlan } from "../limits/plan.js";
import { keyLevel, sessionLevel, teamLevel, userLevel } from "../limits/plan.js";
import type { Usage } from "../state/store.js";
import { storeDown } from "./reserve.js";
import { lazyPrompt } from "../pii/index.js";
import { tokenDecoder } from "../tokens/encoding.js";
import type { CallAction } from "../policy/types.js";
import { type ModelPrices, microsToUsd } from "../pricing/index.js";
import type { Estimate } from "./estimate.js";
import { CallFacts } from "./facts.js";
import type { Runtime } from "./runtime.js";
import type { Services } from "./services.js";
import { declaredToolNames } from "../openai/declared-tools.js";

export interface CallFactsSource {
  principal: Principal;
  action: CallAction;
  /** Read when a fact needs it, perhaps after the call went upstream (see `RequestBody`). */
  body: () => Record<string, unknown>;
  model: ModelConfig;
  modelName: string;
  prices: ModelPrices | null;
  plan: LimitPlan;
  sessionId: string | null;
  /** The client's address and user agent, as the audit draft already has them. */
  ip: string | null;
  userAgent: string | null;
  estimate: () => Estimate;
}

export function buildCallFacts(services: Services, runtime: Runtime, source: CallFactsSource): CallFacts {
  const { config } = runtime;
  const prompt = lazyPrompt(source.body, config.pii.detectors, tokenDecoder(source.model));
  const body = source.body();
  return new CallFacts({
    principal: source.principal,
    org: config.org,
    action: source.action,
    model: source.modelName,
    stream: body.stream === true && source.action !== "embeddings",
    tools: declaredToolNames(source.action, body),
    sessionId: source.sessionId,
    ip: source.ip,
    userAgent: source.userAgent,
    now: services.clock(),
    lazy: {
      estimated_cost: () => microsToUsd(source.estimate().worstMicros),
      input_tokens: () => source.estimate().inputTokens,
      max_output_tokens: () => source.estimate().outputTokens,
      prompt_text: prompt.text,
      data_classification: () => prompt.pii().classification,
      pii_types: () => prompt.pii().types,
    },
  });
}

type SpendNames = readonly [daily: string, monthly: string, total: string];
export const USER_SPEND: SpendNames = ["user_daily_spend", "user_monthly_spend", "user_total_spend"];
export const TEAM_SPEND: SpendNames = ["team_daily_spend", "team_monthly_spend", "team_total_spend"];
const KEY_SPEND: SpendNames = ["daily_spend", "monthly_spend", "total_spend"];
const KEY_USAGE = ["requests_last_minute", "tokens_last_minute", ...KEY_SPEND];
export const USAGE_ATTRIBUTES = [...KEY_USAGE, ...USER_SPEND, ...TEAM_SPEND];

/** A level's spend in USD as its daily, monthly and total spend facts (the key's, the user's or the team's names). */
function setSpend(facts: CallFacts, names: SpendNames, usage: Usage): void {
  facts.set(names[0], microsToUsd(usage.dailyMicros));
  facts.set(names[1], microsToUsd(usage.monthlyMicros));
  facts.set(names[2], microsToUsd(usage.totalMicros));
}

/** Usage attributes come from the store, so they are fetched before evaluation, and only when a rule reads them. */
export async function prefetchUsage(
  services: Services,
  attributes: ReadonlySet<string>,
  facts: CallFacts,
  principal: Principal,
  sessionId: string | null,
): Promise<void> {
  const now = services.clock();
  try {
    if (KEY_USAGE.some((a) => attributes.has(a))) {
      const usage = await services.store.usage(keyLevel(principal.keyId), now);
      facts.set("requests_last_minute", usage.requestsLastMinute);
      facts.set("tokens_last_minute", usage.tokensLastMinute);
      setSpend(facts, KEY_SPEND, usage);
    }
    const { user, team } = principal.subject;
    if (USER_SPEND.some((a) => attributes.has(a))) setSpend(facts, USER_SPEND, await services.store.usage(userLevel(user), now));
    if (team !== null && TEAM_SPEND.some((a) => attributes.has(a))) setSpend(facts, TEAM_SPEND, await services.store.usage(teamLevel(team), now));
    if (attributes.has("session_cost") && sessionId !== null) {
      const usage = await services.store.usage(sessionLevel(principal.keyId, sessionId), now);
      facts.set("session_cost", microsToUsd(usage.totalMicros));
    }
  } catch (error) {
    // As for limits: `store_unavailable`, or under `fail_open` the call judged without the usage it could not read.
    const refusal = storeDown(services, "usage for the rules", error);
    if (refusal !== null) throw refusal;
    services.metrics.failedOpen();
  }
}
