import type { Decision } from "../policy/types.js";

export interface ToolDecision {
  action: "tool.register" | "tool.call";
  tool: string;
  effect: Decision["effect"];
  rule: string | null;
}

/** One audit record per `/v1` or `/admin` request (CONTRACT.md §6), schema 1. */
export interface AuditRecord {
  schema: 1;
  id: string;
  ts: string;
  key_id: string | null;
  user: string | null;
  team: string | null;
  role: string | null;
  ip: string | null;
  user_agent: string | null;
  method: string;
  path: string;
  action: string | null;
  model: string | null;
  stream: boolean;
  decision: Decision | null;
  approval_id: string | null;
  status: number;
  error_code: string | null;
  error_type: string | null;
  error_message: string | null;
  input_tokens: number;
  output_tokens: number;
  cost: number;
  latency_ms: number;
  upstream_ms: number | null;
  tools_declared: string[];
  tools_stripped: string[];
  tool_calls: string[];
  tool_decisions: ToolDecision[];
  session_id: string | null;
  client_request_id: string | null;
  replica: string;
  body?: unknown;
  body_enc?: string;
  body_key_id?: string;
}

/** A record as stored: the chain fields are added by the file sink's writer. */
export interface ChainedRecord extends AuditRecord {
  prev_hash: string;
  hash: string;
}
