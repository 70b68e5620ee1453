import type { ToolDecision } from "../audit/types.js";
import type { Principal } from "../auth/keys.js";
import { GatewayError } from "../http/errors.js";
import type { ToolCall } from "../openai/answer.js";
import type { CompiledPolicy } from "../policy/compile.js";
import { evaluatePolicy, mergeDecisions, UNGOVERNED } from "../policy/evaluate.js";
import type { CallAction, Decision } from "../policy/types.js";
import { dialectOf, type ToolDialect, toolNames, visitDeclaredTools } from "../openai/declared-tools.js";
import { formatFieldPath } from "../util/field-path.js";
import { looseToolName, withLooseNames } from "../util/tool-name.js";
import type { Approval, ApprovalContext } from "../state/store.js";
import { approvalRequired, deniedError, type WaitOutcome } from "./refusals.js";
import type { CallFacts } from "./facts.js";
import type { Services } from "./services.js";

export interface EvaluatedTool {
  decision: Decision;
  record: ToolDecision;
  /** Where a declared tool a DENY refuses sits in the body (`tools[1]`), for the error's `param`. */
  param?: string;
}

export interface ToolGovernance {
  declared: string[];
  stripped: string[];
  decisions: EvaluatedTool[];
  /** The first tool whose DENY blocks the call (not stripped), and where it is declared. */
  deniedTool: { name: string; param: string } | null;
  /** The body's top-level members stripping changed. */
  edited: string[];
}

/**
 * A tool choice once `stripped` are gone: undefined where it forced one of them, an `allowed_tools`
 * choice (chat's `allowed_tools.tools`, Responses' `tools`) without them, or undefined where none is left.
 */
function choiceWithout(choice: unknown, stripped: readonly string[], dialect: ToolDialect): unknown {
  if (choice === null || typeof choice !== "object") return choice;
  const c = choice as { type?: unknown; tools?: unknown; allowed_tools?: { tools?: unknown } };
  if (c.type === "allowed_tools") {
    const nested = c.allowed_tools !== null && typeof c.allowed_tools === "object";
    const list = nested ? c.allowed_tools?.tools : c.tools;
    if (!Array.isArray(list)) return choice;
    const left = list.filter((tool) => !isStripped(tool, stripped, dialect));
    if (left.length === 0) return undefined;
    return nested ? { ...c, allowed_tools: { ...c.allowed_tools, tools: left } } : { ...c, tools: left };
  }
  return isStripped(choice, stripped, dialect) ? undefined : choice;
}

const isStripped = (tool: unknown, stripped: readonly string[], dialect: ToolDialect): boolean =>
  toolNames(tool, dialect)?.some((name) => stripped.includes(name)) === true;

function auditLevelOnly(constraints: Decision["constraints"]): Decision["constraints"] {
  return constraints.audit_bodies === undefined ? {} : { audit_bodies: constraints.audit_bodies };
}

/**
 * `tool.register`, once per tool the request declares. A DENY whose rule says `on_deny: strip`
 * removes the tool from the request instead of refusing the call; the audit lists it.
 */
export function governDeclaredTools(policy: CompiledPolicy, action: CallAction, body: Record<string, unknown>, facts: CallFacts): ToolGovernance {
  // The names the facts already hold (`tools`), found in the same order: one array for both.
  const result: ToolGovernance = { declared: facts.get("tools") as string[], stripped: [], decisions: [], deniedTool: null, edited: [] };
  if (!policy.governs("tool.register")) {
    // No rule to run: each tool is what evaluating it would give, the default ALLOW, and is audited so.
    result.decisions = result.declared.map((name) => ungoverned("tool.register", name));
    return result;
  }
  const edited = visitDeclaredTools(action, body, (declared, path) => {
    const { tool: name, decision } = judgeTool(policy, "tool.register", facts, [declared], null);
    if (decision.effect === "DENY" && decision.constraints.on_deny === "strip") {
      result.stripped.push(declared);
      // Allowed once stripped: it merges as an ALLOW, carrying no DENY constraint but its audit level.
      // Named by no rule, so the strip rule never names the call's decision.
      const allowed: Decision = { ...decision, effect: "ALLOW", rule: null, reason: `\`${name}\` stripped: ${decision.reason}`, constraints: auditLevelOnly(decision.constraints) };
      result.decisions.push({ decision: allowed, record: { action: "tool.register", tool: name, effect: "DENY", rule: decision.rule } });
      return false;
    }
    const evaluated: EvaluatedTool = { decision, record: { action: "tool.register", tool: name, effect: decision.effect, rule: decision.rule } };
    if (decision.effect === "DENY") {
      evaluated.param = formatFieldPath(path);
      result.deniedTool ??= { name, param: evaluated.param };
    }
    result.decisions.push(evaluated);
    return true;
  });
  result.edited = edited;
  for (const field of ["tools", "functions"] as const) {
    if (!edited.includes(field)) continue;
    const choiceField = field === "tools" ? "tool_choice" : "function_call";
    result.edited.push(choiceField, "parallel_tool_calls");
    const kept = body[field] as unknown[];
    // The upstream refuses fields about tools that are gone: a choice naming a stripped tool gives
    // way to the default (auto), and with no tool left neither a choice nor `parallel_tool_calls` stands.
    const choice = kept.length === 0 ? undefined : choiceWithout(body[choiceField], result.stripped, dialectOf(action));
    if (choice === undefined) delete body[choiceField];
    else body[choiceField] = choice;
    if (kept.length === 0) {
      delete body[field];
      if (field === "tools") delete body.parallel_tool_calls;
    }
  }
  return result;
}

/**
 * A tool that goes by several names (and the loose form of each, as a lenient framework matches it)
 * is judged under each; `tool` names the one that decided.
 */
function judgeTool(
  policy: CompiledPolicy,
  action: "tool.register" | "tool.call",
  facts: CallFacts,
  names: readonly string[],
  args: string | null,
): { tool: string; decision: Decision } {
  let tool = names[0]!;
  let decision = evaluatePolicy(policy, action, facts.forTool(action, tool, args));
  if (names.length === 1 && looseToolName(tool) === tool) return { tool, decision };
  for (const alias of withLooseNames(names).slice(1)) {
    const merged = mergeDecisions([decision, evaluatePolicy(policy, action, facts.forTool(action, alias, args))], policy.rulesByName);
    if (merged.effect !== decision.effect) tool = alias;
    decision = merged;
  }
  return { tool, decision };
}

/** Each of an answer's tool calls as the `tool.call` rules decide it (no approval is made here). */
export function judgeToolCalls(policy: CompiledPolicy, facts: CallFacts, calls: readonly Pick<ToolCall, "name" | "arguments" | "aliases">[]): EvaluatedTool[] {
  return calls.map((call) => {
    const { tool, decision } = judgeTool(policy, "tool.call", facts, [call.name, ...(call.aliases ?? [])], call.arguments);
    return { decision, record: { action: "tool.call", tool, effect: decision.effect, rule: decision.rule } };
  });
}

/** A tool action no rule governs, as its evaluation would decide it. */
export function ungoverned(action: "tool.register" | "tool.call", tool: string): EvaluatedTool {
  return { decision: UNGOVERNED, record: { action, tool, effect: "ALLOW", rule: null } };
}

/**
 * What an approver is shown of the call besides its rule: the tools it declares (and the one whose
 * rule asked), its size and worst-case cost, and what the PII scan found; never the prompt itself.
 */
export function approvalContext(facts: CallFacts, requestId: string, tool: string | null): ApprovalContext {
  const read = (attribute: string): unknown => {
    try {
      return facts.get(attribute);
    } catch {
      // A fact that cannot be had (a cost cap the call cannot meet) is left out, not raised here.
      return undefined;
    }
  };
  const number = (value: unknown): number | null => (typeof value === "number" ? value : null);
  const piiTypes = read("pii_types");
  return {
    request_id: requestId,
    endpoint: facts.get("action") as string,
    tools: facts.get("tools") as string[],
    tool,
    input_tokens: number(read("input_tokens")),
    estimated_cost: number(read("estimated_cost")),
    pii_types: Array.isArray(piiTypes) ? (piiTypes as string[]) : [],
  };
}

export interface ToolCallContext {
  /** The audit id of the call. */
  requestId: string;
  principal: Principal;
  /** The client's body hash, computed on first use. */
  bodyHash: () => string;
  action: CallAction;
  model: string;
  /** The answer as it would go out, the gateway's secrets masked: kept, listed and sent to the webhook as such. */
  held: NonNullable<Approval["held"]>;
  /** Masks the gateway's secrets in what the approval keeps of the answer (its tool calls' arguments). */
  scrub: (text: string) => string;
  /** `x-approval-wait`: waits (or not) for a human to decide the new approval before answering. */
  waitForDecision: (approvalId: string) => Promise<WaitOutcome>;
  /** Takes the calls from the session's tool-call cap, or the refusal when they do not fit: asked of calls no rule denies. */
  withinCap: () => Promise<GatewayError | null>;
}

export interface ToolVerdict {
  decisions: EvaluatedTool[];
  error: GatewayError | null;
  approvalId: string | null;
  /** A human approved the calls while the client waited: the answer goes out, the approval used. */
  approved: boolean;
}

/**
 * `tool.call`, once per tool call the model returned. A DENY refuses the answer; a
 * REQUIRE_APPROVAL holds it, whole, with a new approval that the client's retry redeems.
 */
export async function governToolCalls(
  services: Services,
  policy: CompiledPolicy,
  facts: CallFacts,
  calls: ToolCall[],
  context: ToolCallContext,
): Promise<ToolVerdict> {
  const decisions = judgeToolCalls(policy, facts, calls);
  const verdict: ToolVerdict = { decisions, error: null, approvalId: null, approved: false };
  const combined = mergeDecisions(decisions.map((d) => d.decision), policy.rulesByName);
  if (combined.effect === "DENY") {
    const denied = decisions.find((d) => d.decision.effect === "DENY");
    verdict.error = deniedError(combined, denied === undefined ? null : { name: denied.record.tool });
    return verdict;
  }
  // Judged first, so the record has every call's decision whether or not the session's cap then refuses them.
  verdict.error = await context.withinCap();
  if (verdict.error === null && combined.effect === "REQUIRE_APPROVAL") {
    const trigger = calls[decisions.findIndex((d) => d.decision.effect === "REQUIRE_APPROVAL")] ?? null;
    const approval = await services.approvals.create({
      principal: context.principal,
      bodyHash: context.bodyHash(),
      action: "tool.call",
      model: context.model,
      decision: combined,
      toolCall: trigger === null ? null : { ...trigger, arguments: context.scrub(trigger.arguments) },
      toolCalls: calls.map((call, i) => ({
        name: call.name,
        arguments: context.scrub(call.arguments),
        effect: decisions[i]!.record.effect,
        rule: decisions[i]!.record.rule,
        ...(call.variant === true ? { variant: true as const } : {}),
      })),
      held: context.held,
      context: approvalContext(facts, context.requestId, trigger?.name ?? null),
    });
    verdict.approvalId = approval.id;
    let waited: WaitOutcome;
    try {
      waited = await context.waitForDecision(approval.id);
    } catch (error) {
      // A stop that ended the wait ends the call, whose record still says what was judged and which approval it made.
      if (!(error instanceof GatewayError)) throw error;
      verdict.error = error;
      return verdict;
    }
    if (waited === "approved") {
      // Decided while the client waited: the held answer is delivered now, and the approval is used up.
      await services.approvals.redeem(approval.id, context.principal, approval.body_hash, context.action);
      verdict.approved = true;
    } else {
      verdict.error = approvalRequired(approval.id, combined, waited);
    }
  }
  return verdict;
}
