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
 * (a DENY that turns on what only a call carries, its prompt or tools, may spare some call),
 * and for a key with cost limits only priced ones (an unpriced one would answer `model_not_priced`).
 */
export function listModels(runtime: Runtime, principal: Principal, incoming: IncomingMessage): ModelEntry[] {
  // Rules may read the session the listing is asked in, as they would read a call's.
  const sessionId = sessionIdOf(incoming, runtime.config);
  const now = Date.now();
  const needsPrices = planLimits(runtime.config, principal, null).needsPrices;
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
      ip: null,
      userAgent: null,
      now,
      lazy: {},
    });
    if (evaluatePolicy(runtime.listingPolicy, action, facts).effect === "DENY") continue;
    out.push({ id, object: "model", created: 0, owned_by: model.upstream });
  }
  return out;
}
