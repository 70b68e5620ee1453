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
  /**
   * Masks the secrets the gateway holds (the key or token the request presented, the admin token,
   * the upstreams' keys) in text the client chose: a header, a path, a tool name, an error quoting them.
   */
  mask: (text: string) => string;
  finished: boolean;
}

export function startDraft(fields: Pick<AuditDraft, "id" | "startedAt" | "method" | "path" | "ip" | "userAgent" | "clientRequestId" | "replica" | "mask">): AuditDraft {
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
    mask: fields.mask,
    finished: false,
  };
}

/** Builds the record (pure): status and error come from how the request ended; the client's text is masked. */
export function buildRecord(draft: AuditDraft, status: number, error: GatewayError | null, now: number): AuditRecord {
  const subject = draft.principal?.subject;
  const { mask } = draft;
  return {
    schema: 1,
    id: draft.id,
    ts: new Date(draft.startedAt).toISOString(),
    key_id: draft.principal?.keyId ?? null,
    user: subject?.user ?? draft.actor?.name ?? null,
    team: subject?.team ?? null,
    role: subject?.role ?? draft.actor?.role ?? null,
    ip: draft.ip,
    user_agent: maskOrNull(draft.userAgent, mask),
    method: draft.method,
    path: mask(draft.path),
    action: draft.action,
    model: maskOrNull(draft.model, mask),
    stream: draft.stream,
    decision: draft.decision,
    approval_id: maskOrNull(draft.approvalId, mask),
    status,
    error_code: error?.code ?? null,
    error_type: error?.type ?? null,
    error_message: error === null ? null : mask(error.message),
    input_tokens: draft.inputTokens,
    output_tokens: draft.outputTokens,
    cost: draft.costMicros / 1_000_000,
    latency_ms: Math.max(0, now - draft.startedAt),
    upstream_ms: draft.upstreamMs,
    tools_declared: maskAll(draft.toolsDeclared, mask),
    tools_stripped: maskAll(draft.toolsStripped, mask),
    tool_calls: maskAll(draft.toolCalls, mask),
    tool_decisions: maskTools(draft.toolDecisions, mask),
    session_id: maskOrNull(draft.sessionId, mask),
    client_request_id: maskOrNull(draft.clientRequestId, mask),
    replica: draft.replica,
    ...draft.body,
  };
}

function maskOrNull(text: string | null, mask: (text: string) => string): string | null {
  return text === null ? null : mask(text);
}

/** The list itself where nothing in it is masked: most calls name no secret. */
function maskAll(texts: string[], mask: (text: string) => string): string[] {
  return texts.some((text) => mask(text) !== text) ? texts.map(mask) : texts;
}

function maskTools(decisions: ToolDecision[], mask: (text: string) => string): ToolDecision[] {
  return decisions.some((d) => mask(d.tool) !== d.tool) ? decisions.map((d) => ({ ...d, tool: mask(d.tool) })) : decisions;
}
