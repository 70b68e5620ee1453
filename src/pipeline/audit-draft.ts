import type { AuditRecord, ToolDecision } from "../audit/types.js";
import type { Principal } from "../auth/keys.js";
import type { GatewayError } from "../http/errors.js";
import type { Decision } from "../policy/types.js";

/** The facts of one request as they become known; turned into its audit record exactly once. */
export interface AuditDraft {
  id: string;
  startedAt: number;
  method: string;
  path: string;
  ip: string | null;
  userAgent: string | null;
  clientRequestId: string | null;
  replica: string;
  principal: Principal | null;
  /** Admin routes: the token's name and role. */
  actor: { name: string; role: string } | null;
  action: string | null;
  model: string | null;
  stream: boolean;
  decision: Decision | null;
  approvalId: string | null;
  inputTokens: number;
  outputTokens: number;
  costMicros: number;
  upstreamMs: number | null;
  toolsDeclared: string[];
  toolsStripped: string[];
  toolCalls: string[];
  toolDecisions: ToolDecision[];
  sessionId: string | null;
  body: Pick<AuditRecord, "body" | "body_enc" | "body_key_id"> | null;
  finished: boolean;
}

export function startDraft(fields: Pick<AuditDraft, "id" | "startedAt" | "method" | "path" | "ip" | "userAgent" | "clientRequestId" | "replica">): AuditDraft {
  // Written out rather than spread: a spread followed by more fields builds the object slowly.
  return {
    id: fields.id,
    startedAt: fields.startedAt,
    method: fields.method,
    path: fields.path,
    ip: fields.ip,
    userAgent: fields.userAgent,
    clientRequestId: fields.clientRequestId,
    replica: fields.replica,
    principal: null,
    actor: null,
    action: null,
    model: null,
    stream: false,
    decision: null,
    approvalId: null,
    inputTokens: 0,
    outputTokens: 0,
    costMicros: 0,
    upstreamMs: null,
    toolsDeclared: [],
    toolsStripped: [],
    toolCalls: [],
    toolDecisions: [],
    sessionId: null,
    body: null,
    finished: false,
  };
}

/** Builds the record (pure): status and error come from how the request ended. */
export function buildRecord(draft: AuditDraft, status: number, error: GatewayError | null, now: number): AuditRecord {
  const subject = draft.principal?.subject;
  return {
    schema: 1,
    id: draft.id,
    ts: new Date(draft.startedAt).toISOString(),
    key_id: draft.principal?.keyId ?? null,
    user: subject?.user ?? draft.actor?.name ?? null,
    team: subject?.team ?? null,
    role: subject?.role ?? draft.actor?.role ?? null,
    ip: draft.ip,
    user_agent: draft.userAgent,
    method: draft.method,
    path: draft.path,
    action: draft.action,
    model: draft.model,
    stream: draft.stream,
    decision: draft.decision,
    approval_id: draft.approvalId,
    status,
    error_code: error?.code ?? null,
    error_type: error?.type ?? null,
    error_message: error?.message ?? null,
    input_tokens: draft.inputTokens,
    output_tokens: draft.outputTokens,
    cost: draft.costMicros / 1_000_000,
    latency_ms: Math.max(0, now - draft.startedAt),
    upstream_ms: draft.upstreamMs,
    tools_declared: draft.toolsDeclared,
    tools_stripped: draft.toolsStripped,
    tool_calls: draft.toolCalls,
    tool_decisions: draft.toolDecisions,
    session_id: draft.sessionId,
    client_request_id: draft.clientRequestId,
    replica: draft.replica,
    ...draft.body,
  };
}
