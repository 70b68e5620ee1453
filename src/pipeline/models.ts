import type { Principal } from "../auth/keys.js";
import { evaluatePolicy } from "../policy/evaluate.js";
import { CallFacts } from "./facts.js";
import type { Runtime } from "./runtime.js";

export interface ModelEntry {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

/** The models this key may use: those a call by it would not be denied, judged on its subject alone. */
export function listModels(runtime: Runtime, principal: Principal): ModelEntry[] {
  const now = Date.now();
  const out: ModelEntry[] = [];
  for (const [id, model] of Object.entries(runtime.config.models)) {
    const action = model.kind === "embedding" ? "embeddings" : "chat.completions";
    const facts = new CallFacts({
      principal,
      org: runtime.config.org,
      action,
      model: id,
      stream: false,
      tools: [],
      sessionId: null,
      ip: null,
      userAgent: null,
      now,
      lazy: {},
    });
    if (evaluatePolicy(runtime.policy, action, facts).effect === "DENY") continue;
    out.push({ id, object: "model", created: 0, owned_by: model.upstream });
  }
  return out;
}
