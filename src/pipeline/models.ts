import type { IncomingMessage } from "node:http";
import type { Principal } from "../auth/keys.js";
import { planLimits } from "../limits/plan.js";
import { evaluatePolicy } from "../policy/evaluate.js";
import { isPriced } from "../pricing/index.js";
import { CallFacts } from "./facts.js";
import { sessionIdOf } from "./session-id.js";
import type { Runtime } from "./runtime.js";

export interface ModelEntry {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

/**
 * The models this key may use: those a call by it would not be denied, judged on its subject alone
 * and on what the listing request itself carries, as a call from it would (its address, user agent
 * and session) — a DENY that turns on what only a call carries, its prompt or tools, may spare some
 * call — and for a key with cost limits only priced ones (an unpriced one would answer
 * `model_not_priced`), the limits of the session it is asked in included.
 */
export function listModels(runtime: Runtime, principal: Principal, incoming: IncomingMessage, ip: string | null): ModelEntry[] {
  const sessionId = sessionIdOf(incoming, runtime.config);
  const userAgent = incoming.headers["user-agent"] ?? null;
  const now = Date.now();
  const needsPrices = planLimits(runtime.config, principal, sessionId).needsPrices;
  const out: ModelEntry[] = [];
  for (const [id, model] of Object.entries(runtime.config.models)) {
    if (needsPrices) {
      const prices = runtime.prices.get(id);
      if (prices === undefined || !isPriced(prices)) continue;
    }
    const action = model.kind === "embedding" ? "embeddings" : "chat.completions";
    const facts = new CallFacts({
      principal,
      org: runtime.config.org,
      action,
      model: id,
      stream: false,
      tools: [],
      sessionId,
      ip,
      userAgent,
      now,
      lazy: {},
    });
    if (evaluatePolicy(runtime.listingPolicy[model.kind === "embedding" ? "embedding" : "chat"], action, facts).effect === "DENY") continue;
    out.push({ id, object: "model", created: 0, owned_by: model.upstream });
  }
  return out;
}
