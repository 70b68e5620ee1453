import { setTimeout as sleep } from "node:timers/promises";
import type { Principal } from "../auth/keys.js";
import { GatewayError } from "../http/errors.js";
import type { Decision } from "../policy/types.js";
import type { Approval, StateStore } from "../state/store.js";
import { newId, type Clock } from "../util/ids.js";
import type { Notifier } from "./notify.js";

export interface ApprovalRequest {
  principal: Principal;
  bodyHash: string;
  action: string;
  model: string | null;
  decision: Decision;
  toolCall: Approval["tool_call"];
  toolCalls: Approval["tool_calls"];
  held: Approval["held"];
  context: Approval["context"];
}

/** What a retry carrying `x-approval-id` may do. */
export type Redemption = { kind: "pass"; approval: Approval } | { kind: "held"; approval: Approval };

const roles = (constraint: unknown): string[] | null =>
  typeof constraint === "string" ? [constraint] : Array.isArray(constraint) ? constraint.map(String) : null;

export class ApprovalService {
  /** Set when the gateway drains: waiting clients are answered with their approval id at once. */
  private waitsReleased = false;

  constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
    private readonly defaultTimeoutSeconds: () => number,
    private readonly notifier: Notifier,
  ) {}

  async create(request: ApprovalRequest): Promise<Approval> {
    const now = this.clock();
    const timeout = Number(request.decision.constraints.approval_timeout_seconds ?? this.defaultTimeoutSeconds());
    const approval: Approval = {
      id: newId("apr", now),
      status: "pending",
      key_id: request.principal.keyId,
      subject: request.principal.subject,
      body_hash: request.bodyHash,
      action: request.action,
      model: request.model,
      rule: request.decision.rule,
      reason: request.decision.reason,
      constraints: request.decision.constraints,
      tool_call: request.toolCall,
      tool_calls: request.toolCalls,
      created_at: new Date(now).toISOString(),
      expires_at: new Date(now + timeout * 1000).toISOString(),
      decided_by: null,
      decided_role: null,
      decided_at: null,
      comment: null,
      held: request.held,
      ...(request.context === undefined ? {} : { context: request.context }),
    };
    await fromStore(this.store.createApproval(approval));
    this.notifier.send("approval.created", publicApproval(approval, now));
    return approval;
  }

  /**
   * Ends every wait for a decision, now and from now on: a draining gateway answers its waiting
   * clients `approval_required` with the id (a retry redeems it on any replica, or after the
   * restart) rather than holding them until the drain cuts them off without it.
   */
  releaseWaits(): void {
    this.waitsReleased = true;
  }

  /** Long-polls the store until the approval is decided or `seconds` pass. */
  async waitForDecision(id: string, seconds: number, signal: { readonly aborted: boolean }): Promise<Approval | null> {
    let deadline = this.clock() + seconds * 1000;
    let approval = await fromStore(this.store.getApproval(id));
    // Past its expiry no decision can make it usable: the wait ends there.
    if (approval !== null) deadline = Math.min(deadline, Date.parse(approval.expires_at));
    while (approval !== null && approval.status === "pending" && this.clock() < deadline && !signal.aborted && !this.waitsReleased) {
      await sleep(Math.min(250, Math.max(1, deadline - this.clock())));
      approval = await fromStore(this.store.getApproval(id));
    }
    return approval;
  }

  /**
   * Checks a retry against its approval and uses it up: passes exactly once, same key, body and
   * endpoint (one body can be a valid call to two, and a held answer is in its endpoint's form).
   */
  async redeem(id: string, principal: Principal, bodyHash: string, action: string): Promise<Redemption> {
    const now = this.clock();
    const approval = await fromStore(this.store.getApproval(id));
    const endpoint = approval?.context?.endpoint ?? (approval?.action === "tool.call" ? undefined : approval?.action);
    const otherEndpoint = endpoint !== undefined && endpoint !== action;
    if (approval === null || approval.key_id !== principal.keyId || approval.body_hash !== bodyHash || otherEndpoint) {
      throw new GatewayError(403, "approval_invalid", `approval \`${id}\` is not valid for this key, endpoint and request body`, {
        extra: { approval_id: id },
      });
    }
    if (Date.parse(approval.expires_at) <= now) {
      throw new GatewayError(403, "approval_expired", `approval \`${id}\` expired at ${approval.expires_at}`, { extra: { approval_id: id } });
    }
    switch (approval.status) {
      case "pending":
        throw new GatewayError(403, "approval_pending", `approval \`${id}\` is still pending`, {
          extra: { approval_id: id },
          headers: { "retry-after": "5", "x-approval-id": id },
        });
      case "denied":
        throw new GatewayError(403, "approval_denied", `approval \`${id}\` was denied${approval.comment ? `: ${approval.comment}` : ""}`, {
          extra: { approval_id: id },
        });
      case "used":
        throw new GatewayError(403, "approval_used", `approval \`${id}\` was already used`, { extra: { approval_id: id } });
      case "approved": {
        const consumed = await fromStore(this.store.consumeApproval(id, now));
        if (!consumed.ok) {
          const code = consumed.reason === "expired" ? "approval_expired" : "approval_used";
          throw new GatewayError(403, code, `approval \`${id}\` can no longer be used`, { extra: { approval_id: id } });
        }
        return { kind: consumed.approval.held === null ? "pass" : "held", approval: consumed.approval };
      }
    }
  }

  /** used -> approved again: the call that used it was refused before it was served. */
  async restore(id: string): Promise<void> {
    await this.store.restoreApproval(id, this.clock());
  }

  async decide(
    id: string,
    actor: { name: string; role: string },
    status: "approved" | "denied",
    comment: string | null,
  ): Promise<Approval> {
    const now = this.clock();
    const approval = await fromStore(this.store.getApproval(id));
    if (approval === null) throw new GatewayError(404, "not_found", `no approval \`${id}\``);
    const allowed = roles(approval.constraints.approver_role);
    if (allowed !== null && !allowed.includes(actor.role)) {
      throw new GatewayError(403, "approver_role_mismatch", `approval \`${id}\` needs an approver with role ${allowed.map((r) => `\`${r}\``).join(" or ")}`);
    }
    const result = await fromStore(this.store.decideApproval(id, { status, by: actor.name, role: actor.role, comment, at: new Date(now).toISOString() }, now));
    if (!result.ok) {
      if (result.reason === "not_found") throw new GatewayError(404, "not_found", `no approval \`${id}\``);
      const why = result.reason === "expired" ? "expired" : `already ${result.approval?.status ?? "decided"}`;
      throw new GatewayError(409, "approval_not_pending", `approval \`${id}\` is not pending (${why})`);
    }
    this.notifier.send("approval.decided", publicApproval(result.approval, now));
    return result.approval;
  }
}

/**
 * A store operation outside limits and budgets (approvals, admin changes): a store that cannot be
 * reached is 503 `store_unavailable`, whatever `store.on_error` says, never an internal error.
 */
export async function fromStore<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    // A command sent and not answered in time may still have been carried out (a server that hung
    // and came back): the caller is not told it failed.
    const timedOut = error instanceof Error && /timed out/i.test(error.message);
    const message = timedOut
      ? "the state store did not answer in time; a change asked for may have been made: read it back before retrying"
      : "the state store is unavailable; try again shortly";
    throw new GatewayError(503, "store_unavailable", message, { headers: { "retry-after": "1" } });
  }
}

export type ApprovalView = Omit<Approval, "held" | "status"> & { status: Approval["status"] | "expired"; held: boolean };

/**
 * An approval as the admin API and webhooks show it: without the held answer's body, and `expired`
 * once its time is up while it could still have been decided or used.
 */
export function publicApproval(approval: Approval, now: number): ApprovalView {
  const { held, ...rest } = approval;
  const lapsed = (approval.status === "pending" || approval.status === "approved") && Date.parse(approval.expires_at) <= now;
  return { ...rest, status: lapsed ? "expired" : approval.status, held: held !== null };
}
