import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatCount, errorBody, expectApiError, raw } from "./governance.js";
import { ADMIN_TOKEN, auditRecords, type Harness, keyEntry, MODELS, startHarness } from "./harness.js";

const KEY = {
  dev: "sk-pol-dev",
  admin: "sk-pol-admin",
  analyst: "sk-pol-analyst",
  support: "sk-pol-support",
  financeCapped: "sk-pol-fin-capped",
  financeRejecting: "sk-pol-fin-reject",
  finance: "sk-pol-fin",
  umaOne: "sk-pol-uma-1",
  umaTwo: "sk-pol-uma-2",
} as const;

// The seed's examples (high_cost_model_restriction, restricted_tool_access, pii_access_restriction) plus
// a dry-run rule, a call-level approval and a strip-on-deny tool rule.
const POLICIES = `
policies:
  default_effect: ALLOW
  rules:
    - name: high_cost_model_restriction
      effect: DENY
      conditions:
        model: { in: [gpt-4o] }
        user_role: { not_in: [admin, power_user] }
      description: Only admins can use expensive models
    - name: watch_free_model
      effect: DENY
      mode: dry_run
      conditions: { model: { in: [free-model] } }
      description: Trial of a future restriction
    - name: pii_access_restriction
      effect: REQUIRE_APPROVAL
      conditions:
        data_classification: { eq: pii }
        purpose: { not_in: [authorized_support] }
      description: PII access requires approval unless for authorized support
    - name: wire_transfers_need_approval
      effect: REQUIRE_APPROVAL
      conditions: { prompt_text: { matches: "(?i)wire transfer" } }
      constraints: { approver_role: admin }
      description: Payments need a human
    - name: finance_costly_calls
      effect: DENY
      conditions: { team: { eq: finance }, estimated_cost: { gt: 0.004 } }
      description: Finance calls over $0.004 worst case are refused
    - name: restricted_tool_access
      effect: DENY
      actions: [tool.register]
      conditions:
        tool: { in: [execute_code, shell_command, file_write] }
        user_role: { not_in: [admin, developer] }
      description: Only developers can use potentially dangerous tools
    - name: uma_daily_budget
      effect: DENY
      conditions: { user: { eq: uma }, user_daily_spend: { gt: 0.00001 }, user_role: { not_in: [admin] } }
      description: The seed's per-user daily budget, over all of the user's keys
    - name: emailing_needs_approval
      effect: REQUIRE_APPROVAL
      actions: [tool.register]
      conditions: { tool: { eq: send_email } }
      description: Offering email to the model needs a human
    - name: no_web_search
      effect: DENY
      actions: [tool.register]
      conditions: { tool: { eq: web_search } }
      constraints: { on_deny: strip, audit_bodies: redacted }
      description: Web search is not offered to the model
`;

const tool = (name: string) => ({
  type: "function" as const,
  function: { name, description: name, parameters: { type: "object", properties: {} } },
});

let h: Harness;

beforeAll(async () => {
  h = await startHarness(`${MODELS}
keys:
${keyEntry("dev", KEY.dev, "{ user: dave, role: developer, team: research }")}
${keyEntry("admin", KEY.admin, "{ user: ada, role: admin, team: platform }")}
${keyEntry("analyst", KEY.analyst, "{ user: ann, role: analyst, team: research }")}
${keyEntry("support", KEY.support, "{ user: sue, role: support, team: help, purpose: authorized_support }")}
${keyEntry("fin-capped", KEY.financeCapped, "{ user: fay, role: admin, team: finance }", "{ max_cost_per_call: 0.003 }")}
${keyEntry("fin-reject", KEY.financeRejecting, "{ user: fiona, role: admin, team: finance }", "{ max_cost_per_call: 0.003, cost_cap_mode: reject }")}
${keyEntry("fin", KEY.finance, "{ user: fred, role: admin, team: finance }")}
${keyEntry("uma-1", KEY.umaOne, "{ user: uma, role: developer, team: labs }")}
${keyEntry("uma-2", KEY.umaTwo, "{ user: uma, role: developer, team: labs }")}
${POLICIES}`);
});
afterAll(async () => h.close());

describe("the seed's per-user daily budget (user_daily_spend)", () => {
  it("counts what the user spent through every key: a second key is refused once the first spent the budget", async () => {
    await h.client(KEY.umaOne).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "tokens:100" }] });
    const error = await expectApiError(
      h.client(KEY.umaTwo).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:more" }] }),
      403,
      "policy_denied",
    );
    expect(error.message).toContain("uma_daily_budget");
    const evaluated = await fetch(`${h.gateway.url}/admin/policies/evaluate`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ key_id: "uma-2", request: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] } }),
    });
    expect(await evaluated.json()).toMatchObject({ effect: "DENY", rule: "uma_daily_budget" });
  });
});

describe("a key without token or money limits", () => {
  it("keeps its body as sent, though rules read the worst case (estimated_cost) or spend", async () => {
    await h.client(KEY.dev).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:as sent" }] });
    const seen = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(seen.max_completion_tokens).toBeUndefined();
    expect(seen.max_tokens).toBeUndefined();
  });
});

describe("call-level policy", () => {
  it("denies the seed's expensive model to a developer, naming the rule and its description", async () => {
    const before = chatCount(h);
    const error = await expectApiError(
      h.client(KEY.dev).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "say:hi" }] }),
      403,
      "policy_denied",
    );
    expect(error.type).toBe("permission_error");
    expect(error.message).toContain("high_cost_model_restriction");
    expect(error.message).toContain("Only admins can use expensive models");
    expect(chatCount(h)).toBe(before);
    const record = (await auditRecords(h)).at(-1)!;
    expect(record).toMatchObject({ status: 403, error_code: "policy_denied", key_id: "dev", model: "gpt-4o" });
    expect(record.decision).toMatchObject({ effect: "DENY", rule: "high_cost_model_restriction" });
  });

  it("lets an admin use the same model", async () => {
    const answer = await h.client(KEY.admin).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "say:granted" }] });
    expect(answer.choices[0]?.message.content).toBe("granted");
  });

  it("never blocks on a dry_run rule but audits it in decision.dry_run_rules", async () => {
    const answer = await h.client(KEY.dev).chat.completions.create({ model: "free-model", messages: [{ role: "user", content: "say:free" }] });
    expect(answer.choices[0]?.message.content).toBe("free");
    const record = (await auditRecords(h)).at(-1)!;
    expect(record.status).toBe(200);
    const decision = record.decision as { effect: string; dry_run_rules: string[]; matched: string[] };
    expect(decision.effect).toBe("ALLOW");
    expect(decision.dry_run_rules).toEqual(["watch_free_model"]);
    expect(decision.matched).not.toContain("watch_free_model");
  });

  it("hides from /v1/models a model the key is denied, and shows it to a key that may use it", async () => {
    const devModels = (await h.client(KEY.dev).models.list()).data.map((m) => m.id);
    expect(devModels).not.toContain("gpt-4o");
    expect(devModels).toContain("gpt-4o-mini");
    // A dry_run DENY does not hide the model.
    expect(devModels).toContain("free-model");
    const adminModels = (await h.client(KEY.admin).models.list()).data.map((m) => m.id);
    expect(adminModels).toContain("gpt-4o");
    await expectApiError(h.client(KEY.dev).models.retrieve("gpt-4o"), 404, "model_not_found");
  });

  it("answers REQUIRE_APPROVAL at call level with approval_required, error.approval_id and x-approval-id", async () => {
    const before = chatCount(h);
    const error = await expectApiError(
      h.client(KEY.dev).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "please send a wire transfer of $5" }] }),
      403,
      "approval_required",
    );
    const approvalId = errorBody(error).approval_id;
    expect(approvalId).toMatch(/^apr_/);
    expect(error.headers?.get("x-approval-id")).toBe(approvalId);
    expect(error.message).toContain("wire_transfers_need_approval");
    expect(chatCount(h)).toBe(before);
    const approval = await h.gateway.services.store.getApproval(approvalId as string);
    expect(approval).toMatchObject({ status: "pending", key_id: "dev", rule: "wire_transfers_need_approval", held: null });
    const record = (await auditRecords(h)).at(-1)!;
    expect(record).toMatchObject({ status: 403, error_code: "approval_required", approval_id: approvalId });
  });

  it("reads text parts joined as the model reads them: a phrase or an address cut across parts is caught", async () => {
    const parts = (...texts: string[]) => texts.map((text) => ({ type: "text" as const, text }));
    const wire = await expectApiError(
      h.client(KEY.dev).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: parts("send a wire trans", "fer of $5") }] }),
      403,
      "approval_required",
    );
    expect(wire.message).toContain("wire_transfers_need_approval");
    const pii = await expectApiError(
      h.client(KEY.dev).responses.create({ model: "gpt-4o-mini", input: [{ role: "user", content: [{ type: "input_text", text: "look up jane.doe@" }, { type: "input_text", text: "example.com" }] }] }),
      403,
      "approval_required",
    );
    expect(pii.message).toContain("pii_access_restriction");
  });
});

describe("/v1/models and session rules", () => {
  it("judges the listing in the session it is asked in, as a call in that session would be", async () => {
    const own = await startHarness(`${MODELS}
keys:
${keyEntry("dev", KEY.dev, "{ user: dana, role: developer, team: research }")}
policies:
  rules:
    - name: gpt4o_only_in_sessions
      effect: DENY
      conditions: { model: { eq: gpt-4o }, session_id: { exists: false } }
    - name: free_model_streams_only
      effect: DENY
      conditions: { model: { eq: free-model }, stream: { eq: false } }
    - name: embeddings_from_the_office
      effect: DENY
      conditions: { model: { eq: text-embedding-3-small }, ip: { not_in: ["127.0.0.1", "::1"] } }
    - name: no_scripts_on_gpt4o_mini
      effect: DENY
      conditions: { model: { eq: gpt-4o-mini }, user_agent: { contains: curl } }
    - name: no_batch_embeddings
      effect: DENY
      conditions: { model: { eq: text-embedding-3-small }, user_agent: { contains: batch }, stream: { eq: false } }
`);
    try {
      const ids = async (headers: Record<string, string>) => (await own.client(KEY.dev, { headers }).models.list()).data.map((m) => m.id);
      expect(await ids({})).not.toContain("gpt-4o");
      // A DENY that turns on what only a call carries (here, not streaming) spares some call: the model is listed.
      expect(await ids({})).toContain("free-model");
      await expectApiError(own.client(KEY.dev).chat.completions.create({ model: "free-model", messages: [{ role: "user", content: "say:x" }] }), 403, "policy_denied");
      expect(await ids({ "x-session-id": "run-7" })).toContain("gpt-4o");
      // The listing's own address and user agent are judged, as a call's from it would be.
      expect(await ids({})).toContain("text-embedding-3-small");
      expect(await ids({})).toContain("gpt-4o-mini");
      expect(await ids({ "user-agent": "curl/8.5" })).not.toContain("gpt-4o-mini");
      // An embeddings call is never a stream: a DENY of non-streamed calls covers every one of them.
      expect(await ids({ "user-agent": "batch/2" })).not.toContain("text-embedding-3-small");
      const inSession = await own.client(KEY.dev, { headers: { "x-session-id": "run-7" } }).models.retrieve("gpt-4o");
      expect(inSession.id).toBe("gpt-4o");
    } finally {
      await own.close();
    }
  });
});

describe("estimated_cost", () => {
  const body = { model: "gpt-4o", messages: [{ role: "user" as const, content: "say:priced" }], max_completion_tokens: 2000 };

  it("is the worst case of the request's own output limit", async () => {
    // 2000 output tokens of gpt-4o: over $0.02.
    const error = await expectApiError(h.client(KEY.finance).chat.completions.create(body), 403, "policy_denied");
    expect(error.message).toContain("finance_costly_calls");
  });

  it("is judged after the per-call cap's clamp", async () => {
    const { data, response } = await h.client(KEY.financeCapped).chat.completions.create(body).withResponse();
    expect(data.choices[0]?.message.content).toBe("priced");
    expect(Number(response.headers.get("x-gateway-max-tokens"))).toBeLessThan(300);
  });

  it("is the uncapped worst case where the cap refuses the call, and a DENY it meets comes before the cap's refusal", async () => {
    const denied = await expectApiError(h.client(KEY.financeRejecting).chat.completions.create(body), 403, "policy_denied");
    expect(denied.message).toContain("finance_costly_calls");
    const record = (await auditRecords(h)).at(-1)!;
    expect(record).toMatchObject({ status: 403, error_code: "policy_denied", decision: { effect: "DENY", rule: "finance_costly_calls" } });
    expect(record.input_tokens).toBeGreaterThan(0);
    // 350 output tokens: $0.0035 worst case, over the $0.003 cap but under the rule's $0.004.
    await expectApiError(h.client(KEY.financeRejecting).chat.completions.create({ ...body, max_completion_tokens: 350 }), 400, "cost_cap_exceeded");
    expect((await auditRecords(h)).at(-1)).toMatchObject({ status: 400, error_code: "cost_cap_exceeded", decision: { effect: "ALLOW" } });
  });
});

describe("the seed's PII rule (data_classification pii, purpose not_in [authorized_support])", () => {
  const pii = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "say:ok\nlook up jane.doe@example.com please" }] };

  it("requires approval for a key without a purpose (fails closed)", async () => {
    const error = await expectApiError(h.client(KEY.dev).chat.completions.create(pii), 403, "approval_required");
    expect(error.message).toContain("pii_access_restriction");
    expect(errorBody(error).approval_id).toMatch(/^apr_/);
    // The approver is told what the call is, never its prompt.
    const approval = await h.gateway.services.store.getApproval(errorBody(error).approval_id as string);
    expect(approval?.context).toMatchObject({ request_id: error.headers?.get("x-request-id"), tools: [], tool: null, pii_types: ["email"] });
    expect(approval?.context?.input_tokens).toBeGreaterThan(0);
    expect(JSON.stringify(approval)).not.toContain("jane.doe");
  });

  it("passes for a key whose purpose is authorized_support", async () => {
    const answer = await h.client(KEY.support).chat.completions.create(pii);
    expect(answer.choices[0]?.message.content).toBe("ok");
  });

  it("does not apply to a prompt without PII", async () => {
    const answer = await h.client(KEY.dev).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:clean" }] });
    expect(answer.choices[0]?.message.content).toBe("clean");
  });

  it("reads embeddings sent as token arrays, and PII after megabytes of filler", async () => {
    // The model's tokenizer (cl100k) spelling "contact jane.doe@example.com ssn 123-45-6789".
    const tokens = [6421, 99706, 962, 4748, 36587, 916, 274, 9810, 220, 4513, 12, 1774, 12, 17458, 24];
    await expectApiError(h.client(KEY.dev).embeddings.create({ model: "text-embedding-3-small", input: [tokens] }), 403, "approval_required");
    await expect(h.client(KEY.dev).embeddings.create({ model: "text-embedding-3-small", input: [[1, 2, 3]] })).resolves.toBeTruthy();
    const long = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: `say:ok\n${"filler ".repeat(200_000)}jane.doe@example.com` }] };
    await expectApiError(h.client(KEY.dev).chat.completions.create(long), 403, "approval_required");
  });

  it("reads PII in an inline text file, in chat and Responses", async () => {
    const fileData = `data:text/plain;base64,${Buffer.from("mail me jane.doe@example.com").toString("base64")}`;
    const chat = h.client(KEY.dev).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: [{ type: "text", text: "say:ok" }, { type: "file", file: { filename: "a.txt", file_data: fileData } }] }],
    });
    await expectApiError(chat, 403, "approval_required");
    const responses = h.client(KEY.dev).responses.create({
      model: "gpt-4o-mini",
      input: [{ role: "user", content: [{ type: "input_text", text: "say:ok" }, { type: "input_file", filename: "a.txt", file_data: fileData }] }],
    });
    await expectApiError(responses, 403, "approval_required");
  });
});

describe("tool.register", () => {
  it("tells the approver which declared tool asked for the approval", async () => {
    const error = await expectApiError(
      h.client(KEY.dev).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:hi" }], tools: [tool("read_file"), tool("send_email")] }),
      403,
      "approval_required",
    );
    const approval = await h.gateway.services.store.getApproval(errorBody(error).approval_id as string);
    expect(approval).toMatchObject({ rule: "emailing_needs_approval", context: { tools: ["read_file", "send_email"], tool: "send_email" } });
  });

  it("refuses a call declaring a tool the key may not register, naming the tool", async () => {
    const before = chatCount(h);
    const error = await expectApiError(
      h.client(KEY.analyst).chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "say:hi" }],
        tools: [tool("read_file"), tool("execute_code")],
      }),
      403,
      "policy_denied",
    );
    expect(error.message).toContain("execute_code");
    expect(error.message).toContain("restricted_tool_access");
    expect(error.param).toBe("tools[1]");
    expect(chatCount(h)).toBe(before);
    const record = (await auditRecords(h)).at(-1)!;
    expect(record.tools_declared).toEqual(["read_file", "execute_code"]);
    expect(record.tool_decisions).toContainEqual({ action: "tool.register", tool: "execute_code", effect: "DENY", rule: "restricted_tool_access" });
  });

  it("judges a declared tool under its loose name too, as a lenient framework would run it", async () => {
    const error = await expectApiError(
      h.client(KEY.analyst).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:hi" }], tools: [tool(" Execute_\u200bCode")] }),
      403,
      "policy_denied",
    );
    expect(error.param).toBe("tools[0]");
    const record = (await auditRecords(h)).at(-1)!;
    expect(record.tool_decisions).toContainEqual({ action: "tool.register", tool: "execute_code", effect: "DENY", rule: "restricted_tool_access" });
    // A stripped tool goes by the name it was declared under, with its tool_choice.
    await h.client(KEY.dev).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "say:stripped" }],
      tools: [tool("Web_Search"), tool("read_file")],
      tool_choice: { type: "function", function: { name: "Web_Search" } },
    });
    const seen = h.mock.requests.at(-1)!.body as { tools?: Array<{ function: { name: string } }>; tool_choice?: unknown };
    expect(seen.tools?.map((t) => t.function.name)).toEqual(["read_file"]);
    expect(seen.tool_choice).toBeUndefined();
    expect((await auditRecords(h)).at(-1)!.tools_stripped).toEqual(["Web_Search"]);
  });

  it("lets a developer declare the same tool", async () => {
    const answer = await h.client(KEY.dev).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "say:fine" }],
      tools: [tool("execute_code")],
    });
    expect(answer.choices[0]?.message.content).toBe("fine");
  });

  it("strips a tool whose rule says on_deny: strip; the upstream never sees it", async () => {
    const answer = await h.client(KEY.dev).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "say:stripped" }],
      tools: [tool("web_search"), tool("read_file")],
    });
    expect(answer.choices[0]?.message.content).toBe("stripped");
    const seen = h.mock.requests.at(-1)!.body as { tools?: Array<{ function: { name: string } }> };
    expect(seen.tools?.map((t) => t.function.name)).toEqual(["read_file"]);
    const record = (await auditRecords(h)).at(-1)!;
    expect(record.status).toBe(200);
    expect(record.tools_declared).toEqual(["web_search", "read_file"]);
    expect(record.tools_stripped).toEqual(["web_search"]);
    // The body the rule has captured is the one the client sent, the stripped tool in it.
    expect((record.body as { tools: Array<{ function: { name: string } }> }).tools.map((t) => t.function.name)).toEqual(["web_search", "read_file"]);
    // Stripped, the tool's DENY does not shape the call: its constraints are not the decision's.
    // The default decided: the reason says no ALLOW rule matched, not that no rule did (the strip rule did).
    expect(record.decision).toMatchObject({ effect: "ALLOW", rule: null, reason: "no ALLOW rule matched; default_effect ALLOW", matched: ["no_web_search"] });
    expect((record.decision as { constraints: Record<string, unknown> }).constraints.on_deny).toBeUndefined();
    expect(record.tool_decisions).toContainEqual(expect.objectContaining({ action: "tool.register", tool: "web_search", effect: "DENY" }));
  });

  it("drops tools and tool_choice entirely when every declared tool is stripped", async () => {
    await h.client(KEY.dev).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "say:none left" }],
      tools: [tool("web_search")],
      tool_choice: "auto",
      parallel_tool_calls: true,
    });
    const seen = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(seen.tools).toBeUndefined();
    expect(seen.tool_choice).toBeUndefined();
    // OpenAI refuses parallel_tool_calls without tools.
    expect(seen.parallel_tool_calls).toBeUndefined();
    expect(seen.messages).toEqual([{ role: "user", content: "say:none left" }]);
  });

  it("takes a stripped tool out of an allowed_tools choice (chat and Responses), and drops the choice when none is left", async () => {
    const allowed = (names: string[]) => ({
      type: "allowed_tools" as const,
      allowed_tools: { mode: "required" as const, tools: names.map((name) => ({ type: "function" as const, function: { name } })) },
    });
    const chat = (names: string[]) =>
      h.client(KEY.dev).chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "say:allowed" }],
        tools: [tool("web_search"), tool("read_file")],
        tool_choice: allowed(names),
        parallel_tool_calls: false,
      });
    await chat(["web_search", "read_file"]);
    let seen = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(seen.tool_choice).toEqual(allowed(["read_file"]));
    expect(seen.parallel_tool_calls).toBe(false);
    await chat(["web_search"]);
    seen = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(seen.tool_choice).toBeUndefined();
    expect((seen.tools as unknown[]).length).toBe(1);

    await h.client(KEY.dev).responses.create({
      model: "gpt-4o-mini",
      input: "say:allowed",
      tools: [
        { type: "function", name: "web_search", parameters: { type: "object", properties: {} }, strict: false },
        { type: "function", name: "read_file", parameters: { type: "object", properties: {} }, strict: false },
      ],
      tool_choice: { type: "allowed_tools", mode: "auto", tools: [{ type: "function", name: "web_search" }, { type: "function", name: "read_file" }] },
    });
    seen = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(seen.tool_choice).toEqual({ type: "allowed_tools", mode: "auto", tools: [{ type: "function", name: "read_file" }] });
  });

  it("drops a tool_choice that forces a stripped tool, and keeps one that forces a kept tool", async () => {
    const forcing = (name: string) => ({
      model: "gpt-4o-mini",
      messages: [{ role: "user" as const, content: "say:forced" }],
      tools: [tool("web_search"), tool("read_file")],
      tool_choice: { type: "function" as const, function: { name } },
    });
    await h.client(KEY.dev).chat.completions.create(forcing("web_search"));
    const gone = h.mock.requests.at(-1)!.body as Record<string, unknown>;
    expect(gone.tool_choice).toBeUndefined();
    expect((gone.tools as unknown[]).length).toBe(1);
    await h.client(KEY.dev).chat.completions.create(forcing("read_file"));
    expect((h.mock.requests.at(-1)!.body as Record<string, unknown>).tool_choice).toEqual({ type: "function", function: { name: "read_file" } });
  });

  it("governs Responses API function tools the same way", async () => {
    await expectApiError(
      h.client(KEY.analyst).responses.create({
        model: "gpt-4o-mini",
        input: "say:hi",
        tools: [{ type: "function", name: "shell_command", parameters: { type: "object", properties: {} }, strict: false }],
      }),
      403,
      "policy_denied",
    );
  });

  it("governs Responses tools declared in a namespace or added by an input item", async () => {
    const fn = (name: string) => ({ type: "function" as const, name, parameters: { type: "object", properties: {} }, strict: false });
    const namespaced = { model: "gpt-4o-mini", input: "say:hi", tools: [{ type: "namespace" as const, name: "utils", description: "u", tools: [fn("shell_command")] }] };
    await expectApiError(h.client(KEY.analyst).responses.create(namespaced), 403, "policy_denied");
    expect((await auditRecords(h)).at(-1)?.tools_declared).toEqual(["shell_command"]);
    const added = {
      model: "gpt-4o-mini",
      input: [
        { type: "additional_tools" as const, role: "developer" as const, tools: [fn("execute_code")] },
        { role: "user" as const, content: "say:hi" },
      ],
    };
    expect((await expectApiError(h.client(KEY.analyst).responses.create(added), 403, "policy_denied")).param).toBe("input[0].tools[0]");
    await expectApiError(
      h.client(KEY.analyst).responses.create({ model: "gpt-4o-mini", input: "say:hi", tools: [{ type: "function", name: "shell_command", function: { name: "read_file" } } as never] }),
      403,
      "policy_denied",
    );
  });

  it("strips a tool from a namespace, and the namespace with its last tool", async () => {
    const fn = (name: string) => ({ type: "function" as const, name, parameters: { type: "object", properties: {} }, strict: false });
    await h.client(KEY.dev).responses.create({
      model: "gpt-4o-mini",
      input: "say:hi",
      tools: [
        { type: "namespace", name: "web", description: "w", tools: [fn("web_search")] },
        { type: "namespace", name: "files", description: "f", tools: [fn("web_search"), fn("read_file")] },
        { type: "web_search_2025_08_26" as "web_search" },
      ],
    });
    const seen = h.mock.requests.at(-1)!.body as { tools: { name: string; tools: { name: string }[] }[] };
    expect(seen.tools).toHaveLength(1);
    expect(seen.tools[0]?.name).toBe("files");
    expect(seen.tools[0]?.tools.map((t) => t.name)).toEqual(["read_file"]);
  });

  it("refuses a declared function without a name with 400 invalid_body naming it", async () => {
    const error = await expectApiError(
      h.client(KEY.dev).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:hi" }], tools: [{ type: "function" } as never] }),
      400,
      "invalid_body",
    );
    expect(errorBody(error).param).toBe("tools[0].function.name");
  });
});

describe("default_effect DENY (least privilege)", () => {
  let strict: Harness;
  beforeAll(async () => {
    strict = await startHarness(`${MODELS}
keys:
${keyEntry("dev", KEY.dev, "{ user: dave, role: developer, team: research }")}
policies:
  default_effect: DENY
  rules:
    - name: research_may_use_mini
      effect: ALLOW
      conditions: { team: { eq: research }, model: { in: [gpt-4o-mini, text-embedding-3-small] } }
      description: Research uses the small model
`);
  });
  afterAll(async () => strict.close());

  it("allows only what a rule allows and refuses the rest with policy_denied naming default_effect", async () => {
    const ok = await strict.client(KEY.dev).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:ok" }] });
    expect(ok.choices[0]?.message.content).toBe("ok");
    const error = await expectApiError(
      strict.client(KEY.dev).chat.completions.create({ model: "free-model", messages: [{ role: "user", content: "say:no" }] }),
      403,
      "policy_denied",
    );
    expect(error.message).toContain("default_effect");
    const models = (await strict.client(KEY.dev).models.list()).data.map((m) => m.id).sort();
    expect(models).toEqual(["gpt-4o-mini", "text-embedding-3-small"]);
  });

  it("judges every declared tool by default_effect DENY too, though no rule names tools", async () => {
    const error = await expectApiError(
      strict.client(KEY.dev).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:no" }], tools: [tool("get_weather")] }),
      403,
      "policy_denied",
    );
    expect(error.message).toBe("403 denied by default_effect DENY for tool `get_weather`: no rule allows it");
    // The call itself denied: the refusal is the call's, not the tool's.
    const both = await expectApiError(
      strict.client(KEY.dev).chat.completions.create({ model: "free-model", messages: [{ role: "user", content: "say:no" }], tools: [tool("get_weather")] }),
      403,
      "policy_denied",
    );
    expect(both.message).not.toContain("for tool");
  });

  it("refuses a raw request the same way (OpenAI error shape)", async () => {
    const result = await raw(strict, "/v1/chat/completions", KEY.dev, { model: "gpt-4o", messages: [{ role: "user", content: "x" }] });
    expect(result.status).toBe(403);
    expect(result.json().error).toMatchObject({ type: "permission_error", code: "policy_denied", param: null });
    expect(result.headers.get("x-request-id")).toMatch(/^req_/);
  });
});
