export type Effect = "ALLOW" | "DENY" | "REQUIRE_APPROVAL";

export const CALL_ACTIONS = ["chat.completions", "responses", "embeddings"] as const;
export type CallAction = (typeof CALL_ACTIONS)[number];
export type Action = CallAction | "tool.register" | "tool.call";
export const ACTIONS = [...CALL_ACTIONS, "tool.register", "tool.call"] as const satisfies readonly Action[];

/** What a policy decided, as returned by `policy test` and `POST /admin/policies/evaluate`. */
export interface Decision {
  effect: Effect;
  /** The first rule (config order) of the winning effect; null when `default_effect` decided. */
  rule: string | null;
  reason: string;
  matched: readonly string[];
  constraints: Readonly<Record<string, unknown>>;
  dry_run_rules: readonly string[];
}

/**
 * The attributes of one evaluation. `get` may compute lazily (token counts, PII scan) and must be
 * memoised by the implementer; `undefined` and `null` both mean the call does not have the attribute.
 * `tool_args.<path>` is resolved by the policy engine from `get("tool_args")`.
 */
export interface Facts {
  get(attribute: string): unknown;
}
