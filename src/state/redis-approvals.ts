import { APPROVAL_KEPT_AFTER_EXPIRY_MS, type Approval, type ApprovalStatus, type ApprovalTransition, withToolCalls } from "./store.js";

/** What a decision changes in an approval; kept apart from the document so Lua never re-encodes it. */
export type Decision = Pick<Approval, "decided_by" | "decided_role" | "decided_at" | "comment">;

/** The hash fields an approval is stored as, and how long to keep it. */
export function approvalFields(approval: Approval): { fields: Record<string, string>; ttlMs: number } {
  const expires = Date.parse(approval.expires_at);
  const created = Date.parse(approval.created_at);
  // Relative to created_at, not the server clock: the caller's clock is the one that decides expiry.
  const lifetime = Number.isFinite(expires) && Number.isFinite(created) ? Math.max(0, expires - created) : 0;
  const fields = {
    doc: JSON.stringify(approval),
    status: approval.status,
    exp: Number.isFinite(expires) ? String(expires) : "",
    decision: "",
  };
  return { fields, ttlMs: lifetime + APPROVAL_KEPT_AFTER_EXPIRY_MS };
}

/** Rebuilds an approval from its stored document, current status and decision. */
export function approvalFrom(doc: string, status: string, decision: string): Approval {
  const approval = JSON.parse(doc) as Approval;
  approval.status = status as ApprovalStatus;
  if (decision !== "") Object.assign(approval, JSON.parse(decision) as Decision);
  return withToolCalls(approval);
}

/** Reads the reply of APPROVAL_TRANSITION_LUA. */
export function transitionFrom(reply: unknown): ApprovalTransition {
  const [outcome, doc, status, decision] = reply as [string, string, string, string];
  if (outcome === "not_found") return { ok: false, reason: "not_found", approval: null };
  const approval = approvalFrom(doc, status, decision);
  if (outcome === "ok") return { ok: true, approval };
  return { ok: false, reason: outcome as "not_pending" | "not_approved" | "not_used" | "expired", approval };
}
