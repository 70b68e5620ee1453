import { CALL_ACTIONS } from "../policy/types.js";
import { canonicalPath, isUnder } from "./governed-paths.js";
import { compileModelPrices, isPriced } from "../pricing/index.js";
import { isRecord } from "../util/is-record.js";
import type { ConfigIssue } from "./load.js";
import type { Config, RuleConfig } from "./schema.js";

/** Combinators whose operands are conditions, not attributes. */
const COMBINATORS = new Set(["any_of", "all_of", "not"]);

/** Each attribute a rule's conditions name, with its operand (`{ op: value }`), through any_of / all_of / not. */
function conditionsOf(conditions: unknown, visit: (attribute: string, operand: Record<string, unknown>) => void): void {
  if (Array.isArray(conditions)) {
    for (const item of conditions) conditionsOf(item, visit);
    return;
  }
  if (!isRecord(conditions)) return;
  for (const [name, value] of Object.entries(conditions)) {
    if (COMBINATORS.has(name)) conditionsOf(value, visit);
    else if (isRecord(value)) visit(name, value);
  }
}

/** The values an operand's `eq` or `in` names. */
function namedValues(operand: Record<string, unknown>): string[] {
  return [operand.eq, ...(Array.isArray(operand.in) ? operand.in : [])].filter((value): value is string => typeof value === "string");
}

const APPROVAL_CONSTRAINTS = ["approver_role", "approval_timeout_seconds"];

/** OpenAI endpoints besides the governed ones that make a model work: relayed by passthrough, nothing judges them. */
const MODEL_ENDPOINTS = ["/v1/completions", "/v1/batches", "/v1/realtime", "/v1/images", "/v1/audio", "/v1/assistants", "/v1/threads", "/v1/fine_tuning"];

/**
 * What a config may say that is valid but most likely not meant: a rule part that can never act, or
 * a condition no call can meet. Not errors (a policy file may be shared by deployments that serve
 * other models or have other approvers); the gateway logs them at start and reload, `check` prints them.
 */
export function configWarnings(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const roles = new Set(["admin", ...config.admin.approvers.map((approver) => approver.role)]);
  const unpriced = Object.entries(config.models)
    .filter(([, model]) => model.kind !== "embedding" && !isPriced(compileModelPrices(model)))
    .map(([name]) => name);
  config.admin.approvers.forEach((approver, index) => {
    // The superuser acts, decides and is audited as `admin`: an approver so named cannot be told from it.
    if (approver.name === "admin") issues.push({ path: `admin.approvers[${index}].name`, message: "`admin` is the admin token's name too: records and decisions by either read the same" });
  });
  if (config.admin.token === "") {
    // The admin API is off as a whole, approval routes included: nobody can decide what waits.
    if (config.admin.approvers.length > 0) issues.push({ path: "admin.token", message: "empty: the admin API is off, and the approvers cannot use it either" });
    config.policies.rules.forEach((rule, index) => {
      if (rule.effect !== "REQUIRE_APPROVAL" || !rule.enabled || rule.mode !== "enforce") return;
      issues.push({ path: `policies.rules[${index}]`, rule: rule.name, message: "REQUIRE_APPROVAL with an empty admin.token: the admin API is off, so no approval can be decided and each call it gates is refused" });
    });
  }
  if (!("redis" in config.store)) {
    config.audit.sinks.forEach((sink, index) => {
      if ("redis_stream" in sink && sink.redis_stream.url === undefined) {
        issues.push({ path: `audit.sinks[${index}].redis_stream.url`, message: "not set beside the memory store: the stream goes to redis://127.0.0.1:6379, whatever listens there" });
      }
    });
  }
  config.passthrough.paths.forEach((path, index) => {
    const listed = canonicalPath(path);
    const runs = MODEL_ENDPOINTS.filter((endpoint) => isUnder(endpoint, listed));
    if (runs.length > 0) {
      issues.push({ path: `passthrough.paths[${index}]`, message: `relays endpoints that run models (${runs.join(", ")}) with no rule, budget or tool check` });
    }
  });
  config.policies.rules.forEach((rule, index) => {
    const warn = (where: string, message: string): void => {
      issues.push({ path: `policies.rules[${index}]${where}`, rule: rule.name, message });
    };
    checkConstraints(rule, warn, roles);
    conditionsOf(rule.conditions, (attribute, operand) => {
      if (Array.isArray(operand.in) && operand.in.length === 0) warn(`.conditions.${attribute}`, "`in: []` holds for no value");
      if (attribute === "action") {
        const named = namedValues(operand);
        const actions: readonly string[] = rule.actions ?? CALL_ACTIONS;
        if (named.length > 0 && !named.some((action) => actions.includes(action))) {
          warn(".conditions.action", `names only actions this rule does not apply to (${named.join(", ")}; it applies to ${actions.join(", ")})`);
        }
      }
      if (attribute === "model") {
        const named = namedValues(operand);
        const served = named.filter((name) => Object.hasOwn(config.models, name));
        if (named.length > 0 && served.length === 0) warn(".conditions.model", `names no served model (${named.join(", ")}): no call's model is ever one of them`);
      }
      if (attribute === "estimated_cost" && unpriced.length > 0) {
        warn(".conditions.estimated_cost", `models without prices (${unpriced.join(", ")}) have no estimated_cost: this condition never holds for their calls`);
      }
    });
  });
  return issues;
}

function checkConstraints(rule: RuleConfig, warn: (where: string, message: string) => void, roles: ReadonlySet<string>): void {
  const { constraints } = rule;
  if (constraints.on_deny !== undefined && (rule.effect !== "DENY" || !(rule.actions ?? []).includes("tool.register"))) {
    warn(".constraints.on_deny", "`on_deny: strip` acts only on a DENY rule for `tool.register` (a declared tool); here it never applies");
  }
  for (const name of APPROVAL_CONSTRAINTS) {
    if (constraints[name] !== undefined && rule.effect !== "REQUIRE_APPROVAL") warn(`.constraints.${name}`, `only a REQUIRE_APPROVAL rule's approvals use it; this rule is ${rule.effect}`);
  }
  const wanted = constraints.approver_role;
  const asked = (Array.isArray(wanted) ? wanted : [wanted]).filter((role): role is string => typeof role === "string");
  if (asked.length > 0 && !asked.some((role) => roles.has(role))) {
    warn(".constraints.approver_role", `no approver has role ${asked.map((role) => `\`${role}\``).join(" or ")} (roles: ${[...roles].join(", ")}): its approvals can never be decided`);
  }
}
