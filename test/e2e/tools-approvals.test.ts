import { readFileSync, writeFileSync } from "node:fs";
import { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { adminFetch, chatCount, decide, errorBody, expectApiError, getApproval, liftKey, raw, responsesEvents, sseEvents, stopKey, streamApiError } from "./governance.js";
import { ADMIN_TOKEN, auditRecords, type Harness, keyEntry, MODELS, sha256Ref, startHarness } from "./harness.js";

const KEY = { dev: "sk-ta-dev", other: "sk-ta-other", halted: "sk-ta-halted", agent: "sk-ta-agent" } as const;
const SECURITY = { token: "approver-dana-token", name: "dana", role: "security" };
const OPS_ADMIN = { token: "approver-olly-token", name: "olly", role: "admin" };

const POLICIES = `
policies:
  default_effect: ALLOW
  rules:
    - name: no_shell
      effect: DENY
      actions: [tool.call]
      conditions: { tool: { eq: shell_command } }
      description: The model may not run shell commands
    - name: production_tools_need_approval
      effect: REQUIRE_APPROVAL
      actions: [tool.call]
      conditions:
        tool: { in: [deploy, delete_records] }
        tool_args.environment: { matches: "^prod" }
      constraints: { approver_role: admin, approval_timeout_seconds: 3600 }
      description: Production operations require admin approval
    - name: no_mail_from_pii_prompts
      effect: DENY
      actions: [tool.call]
      conditions: { tool: { eq: send_email }, data_classification: { eq: pii } }
      description: A prompt carrying personal data may not be mailed out
    - name: no_production_migrations
      effect: DENY
      actions: [tool.call]
      conditions: { tool: { eq: migrate }, tool_args_json: { matches: ".*production.*" } }
      description: Migrations never touch production
    - name: auto_approved_tools
      effect: ALLOW
      actions: [tool.call]
      conditions: { tool: { in: [read_file, search_docs] } }
      description: Safe tools
    - name: secrets_rotation_needs_approval
      effect: REQUIRE_APPROVAL
      actions: [tool.call]
      conditions: { tool: { eq: rotate_secrets } }
      constraints: { approval_timeout_seconds: 60 }
      description: Rotating secrets needs a human
    - name: wire_transfers_need_approval
      effect: REQUIRE_APPROVAL
      conditions: { prompt_text: { matches: "(?i)wire transfer" } }
      description: Payments need a human
    - name: audit_marked_clients
      effect: ALLOW
      conditions: { user_agent: { contains: audit-me } }
      constraints: { audit_bodies: redacted }
      description: Marked clients are audited in detail
    - name: blocked_clients
      effect: DENY
      conditions: { user_agent: { contains: blocked-agent } }
      description: This client is blocked
`;

// The gateway's clock runs ahead of the wall clock by `offset` ms, so approvals can expire on demand.
let offset = 0;
let h: Harness;

beforeAll(async () => {
  h = await startHarness(
    `${MODELS}
keys:
${keyEntry("dev", KEY.dev, "{ user: dave, role: developer, team: research }")}
${keyEntry("other", KEY.other, "{ user: otto, role: developer, team: research }")}
${keyEntry("halted", KEY.halted, "{ user: hal, role: developer, team: ops }")}
${keyEntry("agent", KEY.agent, "{ user: ada, role: developer, team: research }", "{ session: { max_tool_calls: 1 } }")}
${POLICIES}`,
    {
      clock: () => Date.now() + offset,
      admin: `{ token: ${ADMIN_TOKEN}, approvers: [{ name: dana, role: security, token_hash: "${sha256Ref(SECURITY.token)}" }, { name: olly, role: admin, token_hash: "${sha256Ref(OPS_ADMIN.token)}" }] }`,
    },
  );
});
afterAll(async () => h.close());

const ask = (content: string) => ({ model: "gpt-4o-mini", messages: [{ role: "user" as const, content }] });
const askStream = (content: string) => ({ ...ask(content), stream: true as const });

async function approvalFrom(promise: Promise<unknown>): Promise<string> {
  const error = await expectApiError(promise, 403, "approval_required");
  const id = errorBody(error).approval_id;
  expect(typeof id).toBe("string");
  expect(error.headers?.get("x-approval-id")).toBe(id);
  return id as string;
}

describe("tool.call on non-streamed answers", () => {
  it("refuses an answer calling a denied tool with 403 policy_denied naming the tool", async () => {
    const before = chatCount(h);
    const error = await expectApiError(
      h.client(KEY.dev).chat.completions.create(ask('call_tool:shell_command {"cmd":"rm -rf /"}')),
      403,
      "policy_denied",
    );
    expect(error.message).toContain("shell_command");
    expect(error.message).toContain("no_shell");
    expect(error.message).toContain("The model may not run shell commands");
    expect(chatCount(h)).toBe(before + 1);
    const record = (await auditRecords(h)).at(-1)!;
    expect(record).toMatchObject({ status: 403, error_code: "policy_denied", tool_calls: ["shell_command"] });
    expect(record.tool_decisions).toEqual([{ action: "tool.call", tool: "shell_command", effect: "DENY", rule: "no_shell" }]);
    expect(record.decision).toMatchObject({ effect: "DENY", rule: "no_shell" });
    // The model's answer was used: its tokens are charged, audited and reported as the call's cost.
    expect(record.output_tokens).toBeGreaterThan(0);
    expect(record.cost).toBeGreaterThan(0);
    expect(Number(error.headers?.get("x-gateway-cost"))).toBe(record.cost);
  });

  it("passes auto-approved safe tools (read_file) untouched", async () => {
    const answer = await h.client(KEY.dev).chat.completions.create(ask('call_tool:read_file {"path":"README.md"}'));
    const call = answer.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" ? call.function : null).toEqual({ name: "read_file", arguments: '{"path":"README.md"}' });
    const record = (await auditRecords(h)).at(-1)!;
    expect(record.tool_decisions).toEqual([{ action: "tool.call", tool: "read_file", effect: "ALLOW", rule: "auto_approved_tools" }]);
  });

  it("lets a deploy to staging through; only ^prod environments need approval", async () => {
    const answer = await h.client(KEY.dev).chat.completions.create(ask('call_tool:deploy {"environment":"staging"}'));
    expect(answer.choices[0]?.finish_reason).toBe("tool_calls");
  });

  it("judges arguments that are almost JSON (a trailing comma) as a framework would repair them", async () => {
    const id = await approvalFrom(h.client(KEY.dev).chat.completions.create(ask(`call_tool:deploy {"environment": "production",}`)));
    // Decided, so later tests waiting for this rule's pending approval find their own.
    expect((await decide(h, id, "deny", OPS_ADMIN)).status).toBe(200);
  });

  it("sees through escapes in the arguments a rule matches as text, streamed or not", async () => {
    // Written almost as JSON (a trailing comma), the mock relays the arguments as they are; the client's parser decodes `\u0070`.
    const escaped = String.raw`call_tool:migrate {"target":"\u0070roduction-db",}`;
    await expectApiError(h.client(KEY.dev).chat.completions.create(ask(escaped)), 403, "policy_denied");
    await streamApiError(await h.client(KEY.dev).chat.completions.create(askStream(escaped)), "policy_denied");
    const staging = await h.client(KEY.dev).chat.completions.create(ask(String.raw`call_tool:migrate {"target":"\u0073taging-db",}`));
    expect(staging.choices[0]?.message.tool_calls?.[0]).toMatchObject({ function: { name: "migrate" } });
  });
});

describe("tool.call on streamed answers", () => {
  it("sends the text that came before the tool call, then ends with an SSE error event the SDK raises", async () => {
    const stream = await h.client(KEY.dev).chat.completions.create(askStream('call_tool:shell_command {"cmd":"ls"} say:Let me look at the disk.'));
    let text = "";
    let toolDeltas = 0;
    let caught: unknown = null;
    try {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        if (chunk.choices[0]?.delta.tool_calls) toolDeltas++;
      }
    } catch (error) {
      caught = error;
    }
    expect(text).toBe("Let me look at the disk.");
    expect(toolDeltas).toBe(0);
    expect(caught).toBeInstanceOf(APIError);
    expect((caught as APIError).code).toBe("policy_denied");
    expect((caught as APIError).message).toContain("shell_command");
    const record = (await auditRecords(h)).at(-1)!;
    expect(record).toMatchObject({ stream: true, error_code: "policy_denied", tool_calls: ["shell_command"] });
  });

  it("ends a stream whose decision failed unexpectedly with an internal_error event the SDK raises, not a silent end", async () => {
    const approvals = h.gateway.services.approvals;
    const create = approvals.create.bind(approvals);
    approvals.create = () => Promise.reject(new Error("unexpected"));
    try {
      const stream = await h.client(KEY.dev).chat.completions.create(askStream('call_tool:deploy {"environment":"prod"} say:Deploying now.'));
      await streamApiError(stream, "internal_error");
      expect((await auditRecords(h)).at(-1)).toMatchObject({ stream: true, error_code: "internal_error" });
    } finally {
      approvals.create = create;
    }
  });

  it("judges a streamed tool call at the stream's end on the prompt's facts, however long the stream ran", async () => {
    const drain = async (content: string): Promise<unknown> => {
      const stream = await h.client(KEY.dev).chat.completions.create(askStream(content));
      try {
        for await (const _chunk of stream) {
          // read to the end
        }
        return null;
      } catch (error) {
        return error;
      }
    };
    const denied = await drain('call_tool:send_email {"to":"team"} say:Mailing bob@example.com now.');
    expect((denied as APIError).code).toBe("policy_denied");
    expect((denied as APIError).message).toContain("send_email");
    expect(await drain('call_tool:send_email {"to":"team"} say:Mailing the team now.')).toBeNull();
  });

  it("streams an allowed tool call through whole", async () => {
    const stream = await h.client(KEY.dev).chat.completions.create(askStream('call_tool:search_docs {"q":"budgets"}'));
    let args = "";
    let name = "";
    for await (const chunk of stream) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
        name += call.function?.name ?? "";
        args += call.function?.arguments ?? "";
      }
    }
    expect(name).toBe("search_docs");
    expect(JSON.parse(args)).toEqual({ q: "budgets" });
  });
});

describe("tool.call on Responses API streams", () => {
  it("ends a Responses stream calling a denied tool with an SSE error event the SDK raises", async () => {
    const stream = await h.client(KEY.dev).responses.create({ model: "gpt-4o-mini", input: 'call_tool:shell_command {"cmd":"id"}', stream: true });
    const { types: seen, raised: caught } = await responsesEvents(stream);
    expect(seen).toContain("response.created");
    expect(seen.some((t) => t.startsWith("response.function_call") || t === "response.output_item.added")).toBe(false);
    expect(caught).toBeInstanceOf(APIError);
    expect((caught as APIError).code).toBe("policy_denied");
  });
});

describe("a call-level approval", () => {
  it("passes the approved retry once (a new upstream call); the tool calls in its answer need their own approval", async () => {
    const body = ask('wire transfer call_tool:deploy {"environment":"prod"}');
    const id = await approvalFrom(h.client(KEY.dev).chat.completions.create(body));
    expect((await getApproval(h, id))?.held).toBeNull();
    expect((await decide(h, id, "approve")).status).toBe(200);
    const before = chatCount(h);
    // The approver saw a wire transfer, not the deploy the answer asks for: that is held for its own approver.
    const toolApproval = await approvalFrom(h.client(KEY.dev, { headers: { "x-approval-id": id } }).chat.completions.create(body));
    expect(toolApproval).not.toBe(id);
    expect(chatCount(h)).toBe(before + 1);
    expect(await getApproval(h, toolApproval)).toMatchObject({ action: "tool.call", rule: "production_tools_need_approval", status: "pending" });
    await expectApiError(h.client(KEY.dev, { headers: { "x-approval-id": id } }).chat.completions.create(body), 403, "approval_used");
    expect((await decide(h, toolApproval, "approve")).status).toBe(200);
    const answer = await h.client(KEY.dev, { headers: { "x-approval-id": toolApproval } }).chat.completions.create(body);
    const call = answer.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" ? call.function.name : null).toBe("deploy");
    expect(chatCount(h)).toBe(before + 1);
  });

  it("audits an approved call as ALLOW, not as a violation", async () => {
    const body = ask("wire transfer say:sent");
    const id = await approvalFrom(h.client(KEY.dev).chat.completions.create(body));
    expect((await decide(h, id, "approve")).status).toBe(200);
    const { response } = await h.client(KEY.dev, { headers: { "x-approval-id": id } }).chat.completions.create(body).withResponse();
    const record = (await auditRecords(h)).find((r) => r.id === response.headers.get("x-request-id"));
    expect(record?.status).toBe(200);
    expect(record?.decision).toMatchObject({ effect: "ALLOW", rule: "wire_transfers_need_approval" });
    expect((record?.decision as { reason?: string } | undefined)?.reason).toMatch(/^approved by a human; /);
  });

  it("gives an approval back when its call is refused for a reason a retry outlives (upstream 5xx)", async () => {
    const body = ask("wire transfer error:503 busy");
    const id = await approvalFrom(h.client(KEY.dev).chat.completions.create(body));
    expect((await decide(h, id, "approve")).status).toBe(200);
    const noRetry = h.client(KEY.dev, { headers: { "x-approval-id": id }, maxRetries: 0 });
    const status = (): Promise<number> => noRetry.chat.completions.create(body).then(
      () => 200,
      (error: { status?: number }) => error.status ?? 0,
    );
    expect(await status()).toBe(503);
    expect((await getApproval(h, id))?.status).toBe("approved");
    expect(await status()).toBe(503);
    expect((await getApproval(h, id))?.status).toBe("approved");
  });

  it("keeps an approval used when its client read part of the answer and then left (499)", async () => {
    const body = askStream("wire transfer tokens:40 chunks:20 delay:30");
    const id = await approvalFrom(h.client(KEY.dev).chat.completions.create(body));
    expect((await decide(h, id, "approve")).status).toBe(200);
    const controller = new AbortController();
    const stream = await h.client(KEY.dev, { headers: { "x-approval-id": id }, maxRetries: 0 }).chat.completions.create(body, { signal: controller.signal });
    let seen = "";
    let chunks = 0;
    // The SDK ends an aborted stream's iteration quietly or with an abort error, by version.
    await (async () => {
      for await (const chunk of stream) {
        chunks += 1;
        seen += chunk.choices[0]?.delta.content ?? "";
        if (seen !== "") controller.abort();
      }
    })().catch(() => undefined);
    expect(seen).not.toBe("");
    expect(chunks).toBeLessThan(10);
    await expect.poll(async () => (await auditRecords(h)).find((r) => r.approval_id === id && r.status === 499)).toBeDefined();
    expect((await getApproval(h, id))?.status).toBe("used");
    await expectApiError(h.client(KEY.dev, { headers: { "x-approval-id": id }, maxRetries: 0 }).chat.completions.create(body), 403, "approval_used");
  });
});

describe("approvals of a held non-streamed answer", () => {
  const body = {
    ...ask('call_tool:deploy {"environment":"production","service":"billing"}'),
    tools: [{ type: "function" as const, function: { name: "deploy", parameters: { type: "object" } } }],
  };
  let id = "";
  let upstreamCalls = 0;
  let mockSeq = 0;

  it("holds a production deploy: 403 approval_required, the upstream called once", async () => {
    const before = chatCount(h);
    id = await approvalFrom(h.client(KEY.dev).chat.completions.create(body));
    upstreamCalls = chatCount(h);
    mockSeq = h.mock.requests.length;
    expect(upstreamCalls).toBe(before + 1);
    const approval = await getApproval(h, id);
    expect(approval).toMatchObject({ status: "pending", key_id: "dev", rule: "production_tools_need_approval", action: "tool.call" });
    expect(approval?.tool_call?.name).toBe("deploy");
    expect(approval?.context).toMatchObject({ tools: ["deploy"], tool: "deploy", pii_types: [] });
    expect(approval?.tool_calls).toEqual([
      { name: "deploy", arguments: '{"environment":"production","service":"billing"}', effect: "REQUIRE_APPROVAL", rule: "production_tools_need_approval" },
    ]);
    expect(approval?.held?.kind).toBe("json");
    const record = (await auditRecords(h)).at(-1)!;
    expect(record).toMatchObject({ error_code: "approval_required", approval_id: id });
  });

  it("answers a retry before the decision with approval_pending", async () => {
    const error = await expectApiError(h.client(KEY.dev, { headers: { "x-approval-id": id } }).chat.completions.create(body), 403, "approval_pending");
    expect(errorBody(error).approval_id).toBe(id);
    expect(Number(error.headers?.get("retry-after"))).toBeGreaterThan(0);
  });

  it("refuses an approver whose role does not satisfy approver_role", async () => {
    expect(await decide(h, id, "approve", SECURITY)).toEqual({ status: 403, code: "approver_role_mismatch" });
    expect((await getApproval(h, id))?.status).toBe("pending");
  });

  it("after approval, the retry with the same body gets the held answer, without a second upstream call", async () => {
    expect((await decide(h, id, "approve", OPS_ADMIN)).status).toBe(200);
    // Another key or another body cannot redeem it (and does not use it up).
    await expectApiError(h.client(KEY.other, { headers: { "x-approval-id": id } }).chat.completions.create(body), 403, "approval_invalid");
    await expectApiError(
      h.client(KEY.dev, { headers: { "x-approval-id": id } }).chat.completions.create(ask('call_tool:deploy {"environment":"production","service":"payroll"}')),
      403,
      "approval_invalid",
    );
    const held = (await getApproval(h, id))?.held?.body;
    const result = await raw(h, "/v1/chat/completions", KEY.dev, body, { "x-approval-id": id });
    expect(result.status).toBe(200);
    expect(result.text).toBe(held);
    // This call reached no upstream: it costs nothing (the held call was charged).
    expect(result.headers.get("x-gateway-cost")).toBe("0.000000");
    const answer = result.json() as { id: string; choices: Array<{ message: { tool_calls: Array<{ function: { name: string; arguments: string } }> } }> };
    expect(answer.id).toBe(`chatcmpl-mock${mockSeq}`);
    expect(answer.choices[0]?.message.tool_calls[0]?.function).toEqual({ name: "deploy", arguments: '{"environment":"production","service":"billing"}' });
    expect(chatCount(h)).toBe(upstreamCalls);
    const record = (await auditRecords(h)).at(-1)!;
    expect(record).toMatchObject({ status: 200, approval_id: id, key_id: "dev" });
    // The record says what was approved: the rule, its constraints and the tool call it held.
    expect(record.decision).toMatchObject({ effect: "ALLOW", rule: "production_tools_need_approval", constraints: { approver_role: "admin", approval_timeout_seconds: 3600 } });
    expect(record.tool_calls).toEqual(["deploy"]);
    expect(record.tools_declared).toEqual(["deploy"]);
    // The declared tool as the rules in force judge it, then the held call as its approval did.
    expect(record.tool_decisions).toEqual([
      expect.objectContaining({ action: "tool.register", tool: "deploy" }),
      { action: "tool.call", tool: "deploy", effect: "REQUIRE_APPROVAL", rule: "production_tools_need_approval" },
    ]);
  });

  it("refuses a second use with approval_used", async () => {
    await expectApiError(h.client(KEY.dev, { headers: { "x-approval-id": id } }).chat.completions.create(body), 403, "approval_used");
    expect(chatCount(h)).toBe(upstreamCalls);
  });

  it("shows the approver every tool call of the held answer, and audits each one when the approved retry delivers it", async () => {
    const two = ask('call_tool:deploy {"environment":"prod"} call_tool:deploy {"environment":"staging"} call_tool:deploy {"environment":"production"}');
    const held = await approvalFrom(h.client(KEY.dev).chat.completions.create(two));
    const approval = await getApproval(h, held);
    expect(approval?.tool_call).toEqual({ name: "deploy", arguments: '{"environment":"prod"}' });
    expect(approval?.tool_calls?.map((c) => [c.arguments, c.effect])).toEqual([
      ['{"environment":"prod"}', "REQUIRE_APPROVAL"],
      ['{"environment":"staging"}', "ALLOW"],
      ['{"environment":"production"}', "REQUIRE_APPROVAL"],
    ]);
    expect((await decide(h, held, "approve", OPS_ADMIN)).status).toBe(200);
    const result = await raw(h, "/v1/chat/completions", KEY.dev, two, { "x-approval-id": held });
    expect(result.status).toBe(200);
    const record = (await auditRecords(h)).at(-1)!;
    expect(record).toMatchObject({ status: 200, approval_id: held, tool_calls: ["deploy", "deploy", "deploy"] });
    expect((record.tool_decisions as Array<{ effect: string }>).map((d) => d.effect)).toEqual(["REQUIRE_APPROVAL", "ALLOW", "REQUIRE_APPROVAL"]);
  });

  it("delivers a held answer under the rules in force: their body capture applies, and a DENY refuses it", async () => {
    const deploy = ask('call_tool:deploy {"environment":"prod-us","note":"mail ops@example.com"}');
    for (const [agent, status] of [["audit-me/1", 200], ["blocked-agent/1", 403]] as const) {
      const held = await approvalFrom(h.client(KEY.dev).chat.completions.create(deploy));
      expect((await decide(h, held, "approve", OPS_ADMIN)).status).toBe(200);
      const result = await raw(h, "/v1/chat/completions", KEY.dev, deploy, { "x-approval-id": held, "user-agent": agent });
      expect(result.status, agent).toBe(status);
      const record = (await auditRecords(h)).at(-1)!;
      if (status === 200) {
        expect(record).toMatchObject({ status: 200, approval_id: held, decision: { effect: "ALLOW", rule: "production_tools_need_approval" } });
        // The call's own matched rules are listed beside the approval's, their constraints merged with its.
        expect(record.decision).toMatchObject({
          matched: ["production_tools_need_approval", "audit_marked_clients"],
          constraints: { approver_role: "admin", approval_timeout_seconds: 3600, audit_bodies: "redacted" },
        });
        // Captured, redacted, as the rule that matched this delivery asks.
        expect(JSON.stringify(record.body)).toContain("[REDACTED:email]");
      } else {
        expect(record).toMatchObject({ status: 403, error_code: "policy_denied", decision: { effect: "DENY", rule: "blocked_clients" } });
      }
    }
  });

  it("keeps, shows and delivers a held answer with the gateway's secrets masked, as any answer goes out", async () => {
    const leaky = ask(`call_tool:deploy {"environment":"prod","t":"${ADMIN_TOKEN}","k":"${KEY.dev}"}`);
    const id = await approvalFrom(h.client(KEY.dev).chat.completions.create(leaky));
    const stored = JSON.stringify(await getApproval(h, id));
    const decided = await adminFetch(h, "POST", `/admin/approvals/${id}/approve`, OPS_ADMIN.token, { comment: `ok, token ${ADMIN_TOKEN}` });
    expect(decided.status).toBe(200);
    const shown = await (await adminFetch(h, "GET", `/admin/approvals/${id}`, ADMIN_TOKEN)).text();
    const delivered = await raw(h, "/v1/chat/completions", KEY.dev, leaky, { "x-approval-id": id });
    expect(delivered.status).toBe(200);
    for (const text of [stored, shown, delivered.text]) {
      expect(text).toContain("[REDACTED_SECRET]");
      expect(text).not.toContain(ADMIN_TOKEN);
      expect(text).not.toContain(KEY.dev);
    }
  });

  it("masks every secret an approver's comment holds: its own token, another's, an issued key; in the approval and the record", async () => {
    const secrets = [OPS_ADMIN.token, SECURITY.token, KEY.other];
    const comment = `mine ${secrets[0]}, dana's "${secrets[1]}", a key ${secrets[2]}.`;
    // Each secret only within other characters, as a pasted config line or markup holds it.
    const glued = `dana:${secrets[1]}. k=${secrets[2]}, **${secrets[0]}**.`;
    for (const [text, id] of [
      [comment, await approvalFrom(h.client(KEY.dev).chat.completions.create(ask('call_tool:deploy {"environment":"prod","n":"comment 1"}')))],
      [glued, await approvalFrom(h.client(KEY.dev).chat.completions.create(ask('call_tool:deploy {"environment":"prod","n":"comment 2"}')))],
    ]) {
      const decided = await adminFetch(h, "POST", `/admin/approvals/${id}/approve`, OPS_ADMIN.token, { comment: text });
      expect(decided.status).toBe(200);
      const shown = await (await adminFetch(h, "GET", `/admin/approvals/${id}`, ADMIN_TOKEN)).text();
      const record = (await auditRecords(h)).find((r) => r.action === "admin.approvals.approve" && r.approval_id === id);
      expect(JSON.stringify(record?.body)).toContain("[REDACTED");
      for (const seen of [await decided.text(), shown, JSON.stringify(record)]) {
        for (const secret of secrets) expect(seen).not.toContain(secret);
      }
    }
  });

  it("answers a denied approval with approval_denied", async () => {
    const denied = await approvalFrom(h.client(KEY.dev).chat.completions.create(ask('call_tool:delete_records {"environment":"prod","table":"users"}')));
    expect((await decide(h, denied, "deny")).status).toBe(200);
    await expectApiError(
      h.client(KEY.dev, { headers: { "x-approval-id": denied } }).chat.completions.create(ask('call_tool:delete_records {"environment":"prod","table":"users"}')),
      403,
      "approval_denied",
    );
  });
});

describe("approvals of a held stream", () => {
  it("ends the stream with approval_required carrying approval_id; the approved retry replays the same events", async () => {
    const body = askStream('call_tool:deploy {"environment":"prod-eu"} say:Deploying now.');
    const first = await raw(h, "/v1/chat/completions", KEY.dev, body);
    expect(first.status).toBe(200);
    const firstEvents = sseEvents(first.text).data;
    const errorEvent = JSON.parse(firstEvents.at(-1)!) as { error: { code: string; approval_id: string } };
    expect(errorEvent.error.code).toBe("approval_required");
    const id = errorEvent.error.approval_id;
    expect(id).toMatch(/^apr_/);
    const sent = firstEvents.slice(0, -1);
    const text = sent.map((e) => (JSON.parse(e) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? "").join("");
    expect(text).toBe("Deploying now.");
    expect(sent.some((e) => e.includes("tool_calls"))).toBe(false);
    const upstreamCalls = chatCount(h);

    expect((await decide(h, id, "approve")).status).toBe(200);
    const retry = await raw(h, "/v1/chat/completions", KEY.dev, body, { "x-approval-id": id });
    expect(retry.status).toBe(200);
    // Sent as the live stream was: its content type, and not to be cached.
    expect(retry.headers.get("content-type")).toBe(first.headers.get("content-type"));
    expect(retry.headers.get("content-type")).toContain("text/event-stream");
    expect(retry.headers.get("cache-control")).toBe("no-cache");
    const replay = sseEvents(retry.text).data;
    // The same events, from the same upstream answer: what the first attempt sent, then what it held.
    expect(replay.slice(0, sent.length)).toEqual(sent);
    expect(replay.at(-1)).toBe("[DONE]");
    expect(replay.some((e) => e.includes('"name":"deploy"'))).toBe(true);
    // The client did not ask for usage: the chunk the gateway asked for is not replayed either.
    expect(replay.some((e) => e.includes('"choices":[]'))).toBe(false);
    expect(chatCount(h)).toBe(upstreamCalls);
    // Like every stream it ends with its cost: nothing, since it reached no upstream.
    expect(retry.text.endsWith(": gateway-cost 0.000000\n\n")).toBe(true);
  });

  it("delivers the replay to the SDK as a normal stream", async () => {
    const body = askStream('call_tool:deploy {"environment":"prod"}');
    let id = "";
    try {
      for await (const _chunk of await h.client(KEY.dev).chat.completions.create(body)) {
        // nothing before the tool call
      }
    } catch (error) {
      expect(error).toBeInstanceOf(APIError);
      expect((error as APIError).code).toBe("approval_required");
      id = errorBody(error as APIError).approval_id as string;
    }
    expect(id).toMatch(/^apr_/);
    expect((await decide(h, id, "approve")).status).toBe(200);
    let args = "";
    for await (const chunk of await h.client(KEY.dev, { headers: { "x-approval-id": id } }).chat.completions.create(body)) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) args += call.function?.arguments ?? "";
    }
    expect(JSON.parse(args)).toEqual({ environment: "prod" });
  });
});

describe("a held answer approved, then a tool.call rule that DENYs its call", () => {
  it("is refused at the retry (the approval is used up), as the rules in force then decide", async () => {
    const body = ask('call_tool:deploy {"environment":"production","service":"search"}');
    const id = await approvalFrom(h.client(KEY.dev).chat.completions.create(body));
    expect((await decide(h, id, "approve", OPS_ADMIN)).status).toBe(200);
    const original = readFileSync(h.configPath, "utf8");
    const frozen = "  rules:\n    - name: deploys_frozen\n      effect: DENY\n      actions: [tool.call]\n      conditions: { tool: { eq: deploy } }\n";
    writeFileSync(h.configPath, original.replace("  rules:\n", frozen));
    try {
      expect(h.gateway.reload()).toBe(true);
      const upstreamCalls = chatCount(h);
      const error = await expectApiError(h.client(KEY.dev, { headers: { "x-approval-id": id } }).chat.completions.create(body), 403, "policy_denied");
      expect(error.message).toContain("deploys_frozen");
      expect(chatCount(h)).toBe(upstreamCalls);
      const record = (await auditRecords(h)).at(-1)!;
      expect(record).toMatchObject({ error_code: "policy_denied", approval_id: id, tool_calls: ["deploy"] });
      expect(record.tool_decisions).toContainEqual({ action: "tool.call", tool: "deploy", effect: "DENY", rule: "deploys_frozen" });
      // Used up: the same approval does not pass once the rule is gone again.
      writeFileSync(h.configPath, original);
      expect(h.gateway.reload()).toBe(true);
      await expectApiError(h.client(KEY.dev, { headers: { "x-approval-id": id } }).chat.completions.create(body), 403, "approval_used");
    } finally {
      writeFileSync(h.configPath, original);
      h.gateway.reload();
    }
  });
});

describe("a held stream the upstream fails", () => {
  // The whole call to deploy to prod, then the upstream's own error, with no finish_reason or [DONE].
  const failing = 'call_tool:deploy {"environment":"prod"} chunks:4 error_after:5';

  it("is not held for approval: the upstream's error ends it, the call is never released, and no approval is made", async () => {
    const first = await raw(h, "/v1/chat/completions", KEY.dev, askStream(failing));
    const events = sseEvents(first.text).data;
    expect(events.some((e) => e.includes('"name":"deploy"'))).toBe(false);
    expect(JSON.parse(events.at(-1)!)).toMatchObject({ error: { code: "server_error" } });
    expect(first.text).not.toContain("approval_required");
    const record = (await auditRecords(h)).find((r) => r.id === first.headers.get("x-request-id"))!;
    expect(record).toMatchObject({ error_code: "upstream_error", approval_id: null, tool_calls: ["deploy"] });
    // The SDK raises the upstream's error, as for any stream the upstream fails.
    await streamApiError(await h.client(KEY.dev).chat.completions.create(askStream(failing)), "server_error");
  });

  it("is not held for approval on the Responses API either", async () => {
    const stream = await h.client(KEY.dev).responses.create({ model: "gpt-4o-mini", input: failing, stream: true });
    const { types: seen, raised: caught } = await responsesEvents(stream);
    expect(seen.some((t) => t.startsWith("response.function_call"))).toBe(false);
    expect(caught).toBeInstanceOf(APIError);
    expect((caught as APIError).code).not.toBe("approval_required");
    expect((await auditRecords(h)).at(-1)).toMatchObject({ error_code: "upstream_error", approval_id: null });
  });
});

describe("approval expiry and long-poll", () => {
  it("expires approval_timeout_seconds after creation, decided or not", async () => {
    const body = ask('call_tool:rotate_secrets {"scope":"all"}');
    const pending = await approvalFrom(h.client(KEY.dev).chat.completions.create(body));
    const approved = await approvalFrom(h.client(KEY.dev).chat.completions.create(ask('call_tool:rotate_secrets {"scope":"db"}')));
    expect((await decide(h, approved, "approve")).status).toBe(200);
    offset += 61_000;
    try {
      await expectApiError(h.client(KEY.dev, { headers: { "x-approval-id": pending } }).chat.completions.create(body), 403, "approval_expired");
      await expectApiError(
        h.client(KEY.dev, { headers: { "x-approval-id": approved } }).chat.completions.create(ask('call_tool:rotate_secrets {"scope":"db"}')),
        403,
        "approval_expired",
      );
    } finally {
      offset -= 61_000;
    }
  });

  it("x-approval-wait holds a call-level approval until an approver decides, then serves the call", async () => {
    const before = chatCount(h);
    const call = h.client(KEY.dev, { headers: { "x-approval-wait": "30" } }).chat.completions.create(ask("say:sent\nplease make a wire transfer"));
    const id = await waitForPending(h, "dev", "wire_transfers_need_approval");
    expect(chatCount(h)).toBe(before);
    expect((await decide(h, id, "approve")).status).toBe(200);
    const answer = await call;
    expect(answer.choices[0]?.message.content).toBe("sent");
    expect(chatCount(h)).toBe(before + 1);
    expect((await getApproval(h, id))?.status).toBe("used");
  });

  it("names a waited-for approval that a failed call gives back, so the retry can redeem it", async () => {
    for (const failure of ["error:503", "error_raw:502"]) {
      const prompt = ask(`${failure}\nplease make a wire transfer`);
      const call = h.client(KEY.dev, { headers: { "x-approval-wait": "30" } }).chat.completions.create(prompt);
      const id = await waitForPending(h, "dev", "wire_transfers_need_approval");
      expect((await decide(h, id, "approve")).status).toBe(200);
      const error = await call.then(
        () => null,
        (e: unknown) => e as APIError,
      );
      expect(error?.status, failure).toBeGreaterThanOrEqual(500);
      expect(error?.headers?.get("x-approval-id")).toBe(id);
      await vi.waitFor(async () => expect((await getApproval(h, id))?.status).toBe("approved"));
      // The retry with it is served by the same approval, not asked for a new one.
      const retried = await raw(h, "/v1/chat/completions", KEY.dev, ask(`say:done\nplease make a wire transfer`), { "x-approval-id": id });
      expect(retried.status).toBe(403);
      expect(retried.text).toContain("approval_invalid");
      const again = await raw(h, "/v1/chat/completions", KEY.dev, prompt, { "x-approval-id": id });
      expect(again.status).toBeGreaterThanOrEqual(500);
      expect(again.headers.get("x-approval-id")).toBe(id);
    }
  });

  it("gives back the approval of a streamed retry whose upstream failed before any of its answer, and names it in the error event", async () => {
    const prompt = askStream("reset_after:0\nplease make a wire transfer");
    const id = await approvalFrom(h.client(KEY.dev).chat.completions.create(prompt));
    expect((await decide(h, id, "approve")).status).toBe(200);
    const failed = await raw(h, "/v1/chat/completions", KEY.dev, prompt, { "x-approval-id": id });
    expect(failed.text).toContain('"code":"upstream_error"');
    expect(failed.text).toContain(`"approval_id":"${id}"`);
    await vi.waitFor(async () => expect((await getApproval(h, id))?.status).toBe("approved"));
  });

  it("x-approval-wait holds a tool-call approval and then delivers the held answer", async () => {
    const call = h.client(KEY.dev, { headers: { "x-approval-wait": "30" } }).chat.completions.create(ask('call_tool:deploy {"environment":"prod","service":"search"}'));
    const id = await waitForPending(h, "dev", "production_tools_need_approval");
    const upstreamCalls = chatCount(h);
    expect((await decide(h, id, "approve", OPS_ADMIN)).status).toBe(200);
    const answer = await call;
    const toolCall = answer.choices[0]?.message.tool_calls?.[0];
    expect(toolCall?.type === "function" ? toolCall.function.name : null).toBe("deploy");
    expect(chatCount(h)).toBe(upstreamCalls);
    expect((await getApproval(h, id))?.status).toBe("used");
    // Audited as the approved call it was, as a retry redeeming the approval would be: not a violation.
    const record = (await auditRecords(h)).filter((r) => r.approval_id === id).at(-1)!;
    expect(record).toMatchObject({ status: 200, decision: { effect: "ALLOW", rule: "production_tools_need_approval" } });
  });

  it("x-approval-wait ends at the approval's expiry with approval_expired, not a stale approval_required", async () => {
    // An earlier test left a pending approval of the same rule: wait for this call's own.
    const earlier = new Set((await h.gateway.services.store.listApprovals("pending")).map((a) => a.id));
    const call = h.client(KEY.dev, { headers: { "x-approval-wait": "300" } }).chat.completions.create(ask('call_tool:rotate_secrets {"scope":"cache"}'));
    await waitForPending(h, "dev", "secrets_rotation_needs_approval", earlier);
    offset += 61_000;
    try {
      await expectApiError(call, 403, "approval_expired");
    } finally {
      offset -= 61_000;
    }
  });

  it("names the approval when the store goes away during x-approval-wait, so the retry redeems it rather than ask anew", async () => {
    const known = new Set((await h.gateway.services.store.listApprovals("pending")).map((a) => a.id));
    const store = h.gateway.services.store;
    const call = h.client(KEY.dev, { headers: { "x-approval-wait": "30" } }).chat.completions.create(ask("say:x\nwire transfer while the store fails"));
    const id = await waitForPending(h, "dev", "wire_transfers_need_approval", known);
    const getApproval = store.getApproval.bind(store);
    store.getApproval = () => Promise.reject(new Error("Stream isn't writeable"));
    try {
      const error = await expectApiError(call, 403, "approval_required");
      expect(errorBody(error).approval_id).toBe(id);
    } finally {
      store.getApproval = getApproval;
    }
    expect((await decide(h, id, "deny")).status).toBe(200);
  });

  it("a client that leaves during x-approval-wait is audited as 499 client_closed", async () => {
    const known = new Set((await h.gateway.services.store.listApprovals("pending")).map((a) => a.id));
    const controller = new AbortController();
    const call = h
      .client(KEY.dev, { headers: { "x-approval-wait": "30" } })
      .chat.completions.create(ask("say:x\nwire transfer, then leave"), { signal: controller.signal })
      .catch((error: unknown) => error);
    const id = await waitForPending(h, "dev", "wire_transfers_need_approval", known);
    controller.abort();
    await call;
    const record = await recordOfApproval(id);
    expect(record).toMatchObject({ status: 499, error_code: "client_closed" });
    // Decided, so the tests after this one do not find it pending.
    expect((await decide(h, id, "deny")).status).toBe(200);
  });

  it("a streaming client that leaves while its answer's tool call waits (x-approval-wait) is audited as 499 client_closed", async () => {
    const known = new Set((await h.gateway.services.store.listApprovals("pending")).map((a) => a.id));
    const controller = new AbortController();
    const call = (async () => {
      const stream = await h
        .client(KEY.dev, { headers: { "x-approval-wait": "30" } })
        .chat.completions.create(askStream('call_tool:deploy {"environment":"prod","service":"leaving"}'), { signal: controller.signal });
      for await (const _ of stream);
    })().catch((error: unknown) => error);
    const id = await waitForPending(h, "dev", "production_tools_need_approval", known);
    controller.abort();
    await call;
    const record = await recordOfApproval(id);
    expect(record).toMatchObject({ status: 499, error_code: "client_closed", stream: true });
    expect((await decide(h, id, "deny")).status).toBe(200);
  });

  it("binds a call's approval to its endpoint: the same body on another endpoint is approval_invalid", async () => {
    // One body that is a valid call to both endpoints (each reads its own fields).
    const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "say:x\nwire transfer to carol" }], input: "wire transfer to carol" };
    const asked = await raw(h, "/v1/chat/completions", KEY.dev, body);
    expect(asked.status).toBe(403);
    const id = (JSON.parse(asked.text) as { error: { approval_id: string } }).error.approval_id;
    expect((await decide(h, id, "approve")).status).toBe(200);
    const elsewhere = await raw(h, "/v1/responses", KEY.dev, body, { "x-approval-id": id });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.text).toContain("approval_invalid");
    expect((await raw(h, "/v1/chat/completions", KEY.dev, body, { "x-approval-id": id })).status).toBe(200);
    // A held tool call's approval too: its answer is in its endpoint's form.
    const deploy = { model: "gpt-4o-mini", messages: [{ role: "user", content: 'call_tool:deploy {"environment":"prod","service":"ends"}' }], input: "deploy" };
    const held = await raw(h, "/v1/chat/completions", KEY.dev, deploy);
    const heldId = (JSON.parse(held.text) as { error: { approval_id: string } }).error.approval_id;
    expect((await decide(h, heldId, "approve")).status).toBe(200);
    expect((await raw(h, "/v1/responses", KEY.dev, deploy, { "x-approval-id": heldId })).text).toContain("approval_invalid");
    expect((await raw(h, "/v1/chat/completions", KEY.dev, deploy, { "x-approval-id": heldId })).status).toBe(200);
  });

  it("x-approval-wait answers approval_denied when the approver denies during the wait", async () => {
    const call = h.client(KEY.dev, { headers: { "x-approval-wait": "30" } }).chat.completions.create(ask("say:x\nwire transfer to mallory"));
    const id = await waitForPending(h, "dev", "wire_transfers_need_approval");
    expect((await decide(h, id, "deny")).status).toBe(200);
    await expectApiError(call, 403, "approval_denied");
  });
});

/** The record of the call that asked for approval `id`, once written (it ends after its client left). */
async function recordOfApproval(id: string): Promise<Record<string, unknown> | undefined> {
  let record: Record<string, unknown> | undefined;
  for (let i = 0; i < 100 && record === undefined; i++) {
    record = (await auditRecords(h)).find((r) => r.approval_id === id);
    if (record === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  return record;
}

async function waitForPending(harness: Harness, keyId: string, rule: string, known: ReadonlySet<string> = new Set()): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const pending = (await harness.gateway.services.store.listApprovals("pending")).filter((a) => a.key_id === keyId && a.rule === rule && !known.has(a.id));
    // Newest first: the call just made, not one an earlier test left pending.
    if (pending.length > 0) return pending[0]!.id;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no pending approval for ${keyId} / ${rule}`);
}

describe("emergency stop", () => {
  it("refuses the next call, ends an open stream of the key with an SSE error event, and lifts", async () => {
    const stream = await h.client(KEY.halted).chat.completions.create(askStream("tokens:200 chunks:200 delay:20"));
    let received = 0;
    let caught: unknown = null;
    try {
      for await (const _chunk of stream) {
        received++;
        if (received === 3) await stopKey(h, "halted", "runaway agent");
      }
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(APIError);
    expect((caught as APIError).code).toBe("emergency_stop");
    expect(received).toBeLessThan(200);
    const error = await expectApiError(h.client(KEY.halted).chat.completions.create(ask("say:hello")), 403, "emergency_stop");
    expect(error.message).toContain("runaway agent");
    // Other keys are not affected.
    await h.client(KEY.dev).chat.completions.create(ask("say:still fine"));
    await liftKey(h, "halted");
    const answer = await h.client(KEY.halted).chat.completions.create(ask("say:back"));
    expect(answer.choices[0]?.message.content).toBe("back");
    const stopped = (await auditRecords(h)).filter((r) => r.key_id === "halted" && r.error_code === "emergency_stop");
    expect(stopped.length).toBe(2);
    // The refused call's record names the model it asked for, as every call's does.
    expect(stopped.map((r) => r.model)).toEqual(["gpt-4o-mini", "gpt-4o-mini"]);
  });
});

describe("a session's max_tool_calls and governed tool calls", () => {
  const inSession = (session: string, extra: Record<string, string> = {}) => h.client(KEY.agent, { headers: { "x-session-id": session, ...extra }, maxRetries: 0 });
  const readFile = ask('call_tool:read_file {"path":"a"}');

  it("gives a denied answer's tool calls back to the session, streamed or not", async () => {
    await expectApiError(inSession("deny-1").chat.completions.create(ask('call_tool:shell_command {"cmd":"ls"}')), 403, "policy_denied");
    const stream = await inSession("deny-1").chat.completions.create(askStream('call_tool:shell_command {"cmd":"ls"}'));
    const caught = await (async () => {
      for await (const _ of stream);
    })().catch((error: unknown) => error);
    expect((caught as { code?: string }).code).toBe("policy_denied");
    // Neither denied call runs, so the session's one call is still there, and then spent.
    expect((await inSession("deny-1").chat.completions.create(readFile)).choices[0]?.message.tool_calls?.length).toBe(1);
    await expectApiError(inSession("deny-1").chat.completions.create(readFile), 429, "budget_exceeded");
  });

  it("judges every call before the cap: a DENY is refused as such, and a capped answer's record keeps each call's decision", async () => {
    const two = (second: string) => ask(`call_tool:read_file {"path":"a"} call_tool:${second}`);
    // Two calls against a cap of one, one of them denied: the DENY is the answer, as without a session.
    await expectApiError(inSession("judged-1").chat.completions.create(two('shell_command {"cmd":"ls"}')), 403, "policy_denied");
    const denied = (await auditRecords(h)).at(-1)!;
    expect(denied.tool_decisions).toEqual([
      { action: "tool.call", tool: "read_file", effect: "ALLOW", rule: "auto_approved_tools" },
      { action: "tool.call", tool: "shell_command", effect: "DENY", rule: "no_shell" },
    ]);
    // Two allowed calls against a cap of one: refused by the cap, each call's decision still on record.
    for (const stream of [false, true]) {
      const session = inSession(`judged-${stream ? 3 : 2}`);
      const body = two('search_docs {"q":"b"}');
      if (stream) await streamApiError(await session.chat.completions.create({ ...body, stream: true }), "budget_exceeded");
      else await expectApiError(session.chat.completions.create(body), 429, "budget_exceeded");
      const capped = (await auditRecords(h)).at(-1)!;
      expect(capped.error_code).toBe("budget_exceeded");
      expect(capped.tool_decisions).toEqual([
        { action: "tool.call", tool: "read_file", effect: "ALLOW", rule: "auto_approved_tools" },
        { action: "tool.call", tool: "search_docs", effect: "ALLOW", rule: "auto_approved_tools" },
      ]);
      expect(capped.decision).toMatchObject({ matched: ["auto_approved_tools"] });
    }
  });

  it("charges a held answer's tool calls when it is delivered, not while it waits or once it is denied", async () => {
    const rotate = ask('call_tool:rotate_secrets {"scope":"db"}');
    const denied = await approvalFrom(inSession("held-1").chat.completions.create(rotate));
    expect((await decide(h, denied, "deny")).status).toBe(200);
    const approved = await approvalFrom(inSession("held-1").chat.completions.create(rotate));
    expect((await decide(h, approved, "approve")).status).toBe(200);
    const delivered = await inSession("held-1", { "x-approval-id": approved }).chat.completions.create(rotate);
    expect(delivered.choices[0]?.message.tool_calls?.[0]).toMatchObject({ function: { name: "rotate_secrets" } });
    // The delivered call took the session's one call.
    await expectApiError(inSession("held-1").chat.completions.create(readFile), 429, "budget_exceeded");
  });

  it("withholds an approved answer whose calls no longer fit the session, and keeps the approval for a retry", async () => {
    const rotate = ask('call_tool:rotate_secrets {"scope":"cache"}');
    const id = await approvalFrom(inSession("held-2").chat.completions.create(rotate));
    // While it waits, the session spends its one call elsewhere.
    expect((await inSession("held-2").chat.completions.create(readFile)).choices[0]?.message.tool_calls?.length).toBe(1);
    expect((await decide(h, id, "approve")).status).toBe(200);
    const error = await expectApiError(inSession("held-2", { "x-approval-id": id }).chat.completions.create(rotate), 429, "budget_exceeded");
    expect(error.message).toContain("past its 1 (1 used)");
    expect((await getApproval(h, id))?.status).toBe("approved");
    // In a session with room the same approval delivers.
    const delivered = await inSession("held-3", { "x-approval-id": id }).chat.completions.create(rotate);
    expect(delivered.choices[0]?.message.tool_calls?.[0]).toMatchObject({ function: { name: "rotate_secrets" } });
  });
});
