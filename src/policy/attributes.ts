import type { Facts } from "./types.js";

/** What a config value compared with an attribute must look like; `free` is for free-form tool arguments. */
export type AttributeKind = "string" | "number" | "boolean" | "list" | "free";

const KINDS = {
  key_id: "string",
  user: "string",
  user_role: "string",
  team: "string",
  purpose: "string",
  org: "string",
  action: "string",
  model: "string",
  stream: "boolean",
  tool: "string",
  tools: "list",
  tool_args_json: "string",
  estimated_cost: "number",
  input_tokens: "number",
  max_output_tokens: "number",
  prompt_text: "string",
  data_classification: "string",
  pii_types: "list",
  requests_last_minute: "number",
  tokens_last_minute: "number",
  daily_spend: "number",
  monthly_spend: "number",
  total_spend: "number",
  user_daily_spend: "number",
  user_monthly_spend: "number",
  user_total_spend: "number",
  team_daily_spend: "number",
  team_monthly_spend: "number",
  team_total_spend: "number",
  session_id: "string",
  session_cost: "number",
  ip: "string",
  user_agent: "string",
  hour: "number",
  weekday: "number",
} as const satisfies Record<string, AttributeKind>;

/**
 * What an attribute of `kind` must be, where `value` is not one it can have; null where it is (null
 * itself stands for an attribute the call does not have, and a free-form kind takes anything).
 */
export function kindMismatch(kind: AttributeKind, value: unknown): string | null {
  if (value === null) return null;
  switch (kind) {
    case "number":
      return typeof value === "number" && Number.isFinite(value) ? null : "a number";
    case "list":
      return Array.isArray(value) && value.every((item) => typeof item === "string") ? null : "a list of strings";
    case "boolean":
      return typeof value === "boolean" ? null : "true or false";
    case "string":
      return typeof value === "string" ? null : "a string";
    default:
      return null;
  }
}

/** The flat attribute names of CONTRACT.md §2, in its order (`tool_args.<path>` aside), and the user's and team's spend. */
export const ATTRIBUTE_NAMES: readonly string[] = Object.keys(KINDS);

export const TOOL_ARGS_PREFIX = "tool_args.";

export interface AttributeRef {
  /** The fact the value comes from: the attribute itself, or `tool_args` for a path into it. */
  readonly fact: string;
  readonly kind: AttributeKind;
  /** Reads the value; null is folded into undefined because both mean "the call does not have it". */
  readonly read: (facts: Facts) => unknown;
}

/** Resolves a condition key to an attribute, or returns an error message. */
export function resolveAttribute(name: string): AttributeRef | string {
  if (Object.hasOwn(KINDS, name)) {
    const kind: AttributeKind = KINDS[name as keyof typeof KINDS];
    return { fact: name, kind, read: (facts) => facts.get(name) ?? undefined };
  }
  if (name.startsWith(TOOL_ARGS_PREFIX)) {
    const segments = name.slice(TOOL_ARGS_PREFIX.length).split(".");
    if (segments.some((segment) => segment === "")) return `attribute \`${name}\` has an empty path segment`;
    return { fact: "tool_args", kind: "free", read: (facts) => readPath(facts.get("tool_args"), segments) };
  }
  if (name === "tool_args") return "attribute `tool_args` needs a path, e.g. `tool_args.environment`; or use `tool_args_json`";
  return `unknown attribute \`${name}\``;
}

/** Own properties only, so a path like `constructor` cannot reach into prototypes. */
function readPath(root: unknown, segments: readonly string[]): unknown {
  let current = root;
  for (const segment of segments) {
    if (typeof current !== "object" || current === null || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current ?? undefined;
}
