import type { AuditBodies, Config, RuleConfig } from "../config/schema.js";
import { TOOL_ARGS_PREFIX } from "./attributes.js";
import { type Predicate, compileConditions } from "./conditions.js";
import { checkConstraints, isAuditLevel } from "./constraints.js";
import { childPath, type IssueSink, PolicyConfigError, type PolicyIssue, report } from "./errors.js";
import { indexRules, type RuleIndexes } from "./rule-index.js";
import { ACTIONS, type Action, CALL_ACTIONS, type Effect } from "./types.js";

export { PolicyConfigError, type PolicyIssue } from "./errors.js";


/** A rule ready to evaluate: its conditions are one closure, its audit level precomputed. */
export interface CompiledRule {
  readonly name: string;
  readonly effect: Effect;
  readonly dryRun: boolean;
  readonly holds: Predicate;
  readonly constraints: Readonly<Record<string, unknown>>;
  readonly auditBodies: AuditBodies | undefined;
  /** The description, or a fallback naming the rule, so a decision always explains itself. */
  readonly reason: string;
}

/** What merging decisions needs of a rule a decision names. */
export interface RankedRule {
  readonly order: number;
  readonly effect: Effect;
  readonly constraints: Readonly<Record<string, unknown>>;
}

export interface CompiledPolicy {
  /** The enabled rules as configured, in order (for GET /admin/policies). */
  readonly rules: readonly RuleConfig[];
  readonly defaultEffect: Effect;
  /** Each enabled rule by name, with its place in config order, which names a merged decision's rule and orders its constraints. */
  readonly rulesByName: ReadonlyMap<string, RankedRule>;
  /** Every fact an enabled rule reads (`tool_args.x` reads `tool_args`), so the pipeline computes no others. */
  readonly attributes: ReadonlySet<string>;
  /**
   * False only when evaluating the action could not come out other than a plain default ALLOW (no
   * enabled rule, dry-run included, applies to it, and default_effect is ALLOW): callers may then skip it.
   * Under default_effect DENY every tool is judged, whether or not some rule names tools.
   */
  governs(action: Action): boolean;
  /**
   * Some `tool.call` rule (or default_effect) could judge a call going by one of these names: false
   * only when every enabled `tool.call` rule names its tools (`tool: {eq|in}`) and none of these.
   */
  mayJudgeToolCall(names: readonly string[]): boolean;
  /** The enabled rules that apply to each action, in config order. */
  readonly rulesByAction: Readonly<Record<Action, readonly CompiledRule[]>>;
  /** The same rules filed by the attribute that splits them best (`team`, `user`, …), for evaluation. */
  readonly indexes: RuleIndexes<CompiledRule>;
}

const RULES_PATH = "policies.rules";

/** Validates and compiles the policy section; throws `PolicyConfigError` listing every issue. */
export function compilePolicy(policies: Config["policies"]): CompiledPolicy {
  const issues: PolicyIssue[] = [];
  const attributes = new Set<string>();
  const withConditions: Record<Action, { rule: CompiledRule; conditions: unknown }[]> = {
    "chat.completions": [],
    responses: [],
    embeddings: [],
    "tool.register": [],
    "tool.call": [],
  };
  const enabled: RuleConfig[] = [];
  const seen = new Set<string>();

  policies.rules.forEach((rule, index) => {
    const path = childPath(RULES_PATH, index);
    const sink: IssueSink = { rule: rule.name, issues };
    if (seen.has(rule.name)) report(sink, childPath(path, "name"), `duplicate rule name \`${rule.name}\``);
    seen.add(rule.name);
    // Disabled rules are validated too, so enabling one later cannot surprise anyone.
    const ruleAttributes = new Set<string>();
    const holds = compileConditions(rule.conditions, childPath(path, "conditions"), sink, ruleAttributes);
    const actions = checkActions(rule.actions, childPath(path, "actions"), sink);
    checkToolConditionsReachable(rule.conditions, actions, childPath(path, "conditions"), sink);
    checkConstraints(rule.constraints, childPath(path, "constraints"), sink);
    if (!rule.enabled) return;

    enabled.push(rule);
    for (const attribute of ruleAttributes) attributes.add(attribute);
    const auditBodies = rule.constraints["audit_bodies"];
    const compiled: CompiledRule = {
      name: rule.name,
      effect: rule.effect,
      dryRun: rule.mode === "dry_run",
      holds,
      constraints: rule.constraints,
      auditBodies: isAuditLevel(auditBodies) ? auditBodies : undefined,
      reason: rule.description === "" ? `matched rule \`${rule.name}\`` : rule.description,
    };
    for (const action of actions) withConditions[action].push({ rule: compiled, conditions: rule.conditions });
  });

  if (issues.length > 0) throw new PolicyConfigError(issues);
  const perAction = <T>(f: (rules: { rule: CompiledRule; conditions: unknown }[]) => T): Record<Action, T> => {
    const out = {} as Record<Action, T>;
    for (const action of ACTIONS) out[action] = f(withConditions[action]);
    return out;
  };
  const rulesByAction = perAction((rules) => rules.map((r) => r.rule));
  const toolCallNames = withConditions["tool.call"].map(({ conditions }) => namedTools(conditions));
  return {
    rules: enabled,
    defaultEffect: policies.default_effect,
    rulesByName: new Map(enabled.map((rule, order) => [rule.name, { order, effect: rule.effect, constraints: rule.constraints }])),
    attributes,
    governs: (action) => policies.default_effect !== "ALLOW" || (rulesByAction[action]?.length ?? 0) > 0,
    mayJudgeToolCall: (names) => policies.default_effect !== "ALLOW" || toolCallNames.some((named) => named === null || names.some((name) => named.has(name))),
    rulesByAction,
    indexes: perAction(indexRules),
  };
}

/** A rule without `actions` applies to the call only: tool rules must say so, never by accident. */
function checkActions(actions: readonly string[] | undefined, path: string, sink: IssueSink): readonly Action[] {
  if (actions === undefined) return CALL_ACTIONS;
  if (actions.length === 0) {
    report(sink, path, `must name at least one action of ${ACTIONS.join(", ")}; omit it for the call actions`);
    return [];
  }
  const valid = new Set<Action>();
  actions.forEach((action, index) => {
    if (isAction(action)) valid.add(action);
    else report(sink, childPath(path, index), `unknown action \`${action}\`; expected one of ${ACTIONS.join(", ")}`);
  });
  return [...valid];
}

/** The tools a rule's top-level `tool: {eq}` or `tool: {in}` names, or null when it may match any tool. */
function namedTools(conditions: unknown): ReadonlySet<unknown> | null {
  const tool = conditions !== null && typeof conditions === "object" ? (conditions as { tool?: unknown }).tool : undefined;
  if (tool === null || typeof tool !== "object") return null;
  const { eq, in: members, ...others } = tool as { eq?: unknown; in?: unknown };
  if (Object.keys(others).length > 0) return null;
  if (eq !== undefined && members === undefined) return new Set([eq]);
  if (eq === undefined && Array.isArray(members)) return new Set(members);
  return null;
}

/** Operators that fail on a missing attribute, so a rule requiring one on an attribute it never sees never matches. */
const NEEDS_VALUE = new Set(["eq", "in", "gt", "gte", "lt", "lte", "matches", "contains"]);

const isToolOnly = (attribute: string): boolean => attribute === "tool" || attribute === "tool_args_json" || attribute.startsWith(TOOL_ARGS_PREFIX);

/**
 * `tool` and `tool_args…` are set on tool actions only. A rule applying to the call actions alone
 * (no `actions`: the seed's examples copied as they stand) that requires one of them can never
 * match: said at load, with the fix, rather than left to fail silently.
 */
function checkToolConditionsReachable(conditions: Readonly<Record<string, unknown>>, actions: readonly Action[], path: string, sink: IssueSink): void {
  if (actions.some((action) => action === "tool.register" || action === "tool.call")) return;
  const required = requiredToolAttribute(conditions, path);
  if (required === null) return;
  const toolActions = required.attribute === "tool" ? "[tool.register, tool.call]" : "[tool.call]";
  report(
    sink,
    required.path,
    `\`${required.attribute}\` is only set on tool actions, and this rule applies to the call actions, so it can never match; add \`actions: ${toolActions}\``,
  );
}

/**
 * A tool attribute the conditions cannot hold without, and where: one required at the top, in any
 * `all_of` branch, or in every `any_of` branch (`not` may hold on a missing one, so it is never here).
 */
function requiredToolAttribute(conditions: unknown, path: string): { attribute: string; path: string } | null {
  if (conditions === null || typeof conditions !== "object" || Array.isArray(conditions)) return null;
  for (const [key, value] of Object.entries(conditions)) {
    if (isToolOnly(key) && value !== null && typeof value === "object") {
      const needed = Object.entries(value).some(([op, operand]) => NEEDS_VALUE.has(op) || (op === "exists" && operand === true));
      if (needed) return { attribute: key, path: childPath(path, key) };
    }
    if (key === "all_of" && Array.isArray(value)) {
      for (const [index, branch] of value.entries()) {
        const found = requiredToolAttribute(branch, childPath(childPath(path, key), index));
        if (found !== null) return found;
      }
    }
    if (key === "any_of" && Array.isArray(value) && value.length > 0) {
      const found = value.map((branch, index) => requiredToolAttribute(branch, childPath(childPath(path, key), index)));
      if (found.every((f) => f !== null)) return found[0] ?? null;
    }
  }
  return null;
}

export function isAction(value: unknown): value is Action {
  return typeof value === "string" && (ACTIONS as readonly string[]).includes(value);
}
