import { GatewayError } from "../http/errors.js";
import type { Decision } from "../policy/types.js";

/** A DENY; about a tool, it names the tool, and `param` where the request declared it. */
export function deniedError(decision: Decision, tool: { name: string; param?: string } | null): GatewayError {
  const target = tool === null ? "" : ` for tool \`${tool.name}\``;
  const message = decision.rule === null ? `denied by default_effect DENY${target}: no rule allows it` : `denied by rule \`${decision.rule}\`${target}: ${decision.reason}`;
  return new GatewayError(403, "policy_denied", message, {
    extra: { rule: decision.rule },
    param: tool?.param ?? null,
  });
}

/** How an `x-approval-wait` ended: no wait asked, no decision in time, decided, or the approval expired first. */
export type WaitOutcome = "approved" | "pending" | "denied" | "expired" | "none";

export function approvalRequired(id: string, decision: Decision, waited: Exclude<WaitOutcome, "approved">): GatewayError {
  if (waited === "denied") return new GatewayError(403, "approval_denied", `approval \`${id}\` was denied`, { extra: { approval_id: id } });
  if (waited === "expired") {
    return new GatewayError(403, "approval_expired", `approval \`${id}\` expired before anyone decided`, { extra: { approval_id: id } });
  }
  return new GatewayError(
    403,
    "approval_required",
    `approval required by rule \`${decision.rule ?? "?"}\`: ${decision.reason}; retry with header x-approval-id: ${id} once approved`,
    { extra: { approval_id: id, rule: decision.rule }, headers: { "x-approval-id": id } },
  );
}

