import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { AuditRecord } from "../../src/audit/types.js";

export const silentLogger = pino({ level: "silent" });

let counter = 0;

export function makeRecord(overrides: Partial<AuditRecord> = {}): AuditRecord {
  counter += 1;
  return {
    schema: 1,
    id: `req-${String(counter).padStart(6, "0")}`,
    ts: "2024-05-01T12:00:00.000Z",
    key_id: "alice-dev",
    user: "alice",
    team: "research",
    role: "developer",
    ip: "127.0.0.1",
    user_agent: "test",
    method: "POST",
    path: "/v1/chat/completions",
    action: "chat.completions",
    model: "gpt-4o-mini",
    stream: false,
    decision: { effect: "ALLOW", rule: null, reason: "default", matched: [], constraints: {}, dry_run_rules: [] },
    approval_id: null,
    status: 200,
    error_code: null,
    error_type: null,
    error_message: null,
    input_tokens: 10,
    output_tokens: 20,
    cost: 0.000015,
    latency_ms: 12,
    upstream_ms: 10,
    tools_declared: [],
    tools_stripped: [],
    tool_calls: [],
    tool_decisions: [],
    session_id: null,
    client_request_id: null,
    replica: "r1",
    ...overrides,
  };
}

/** A temp dir removed by the returned cleanup. */
export async function makeTempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "audit-test-"));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
