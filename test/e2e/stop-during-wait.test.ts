import { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, auditRecords, type Harness, KEYS, keyEntry, MODELS, startHarness } from "./harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness(`${MODELS}
keys:
${keyEntry("alice-dev", KEYS.alice, "{ user: alice, role: developer, team: research }")}
policies:
  rules:
    - { name: gated_prompt, effect: REQUIRE_APPROVAL, conditions: { prompt_text: { contains: "gate me" } } }
    - { name: gated_deploy, effect: REQUIRE_APPROVAL, actions: [tool.call], conditions: { tool: { eq: deploy } } }
`);
});
afterAll(async () => h.close());

async function admin(path: string, body: unknown): Promise<number> {
  const response = await fetch(`${h.gateway.url}/admin${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.status;
}

async function stopAliceSoon(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(await admin("/stop", { key_id: "alice-dev", reason: "incident 42" })).toBe(201);
}

describe("an emergency stop while a call waits for its approval (x-approval-wait)", () => {
  it("ends a call-level wait with emergency_stop", async () => {
    const client = h.client(KEYS.alice, { headers: { "x-approval-wait": "30" } });
    const [error] = await Promise.all([
      client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "gate me please" }] }).catch((e: unknown) => e),
      stopAliceSoon(),
    ]);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).code).toBe("emergency_stop");
    expect((error as APIError).message).toContain("incident 42");
    expect(await admin("/stop/lift", { key_id: "alice-dev" })).toBe(200);
  });

  it("ends a held stream's wait with an emergency_stop SSE error event", async () => {
    const client = h.client(KEYS.alice, { headers: { "x-approval-wait": "30" } });
    const consume = async (): Promise<unknown> => {
      const stream = await client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: 'call_tool:deploy {"environment":"prod"}' }],
        tools: [{ type: "function", function: { name: "deploy", parameters: { type: "object" } } }],
        stream: true,
      });
      for await (const _chunk of stream) {
        // drained until the error event
      }
      return null;
    };
    const [error] = await Promise.all([consume().catch((e: unknown) => e), stopAliceSoon()]);
    expect(error).toBeInstanceOf(APIError);
    expect(JSON.stringify((error as APIError).error)).toContain("emergency_stop");
    expect(await admin("/stop/lift", { key_id: "alice-dev" })).toBe(200);
  });

  it("keeps in the record of a tool-call wait a stop ended the approval it made and the decisions (streamed or not)", async () => {
    const client = h.client(KEYS.alice, { headers: { "x-approval-wait": "30" } });
    for (const stream of [false, true]) {
      const call = async (): Promise<unknown> => {
        const answer = await client.chat.completions.create({
          model: "gpt-4o-mini",
          messages: [{ role: "user", content: `call_tool:deploy {"environment":"prod","stream":${stream}}` }],
          tools: [{ type: "function", function: { name: "deploy", parameters: { type: "object" } } }],
          stream,
        });
        if (Symbol.asyncIterator in Object(answer)) for await (const _chunk of answer as AsyncIterable<unknown>) void _chunk;
        return null;
      };
      const [error] = await Promise.all([call().catch((e: unknown) => e), stopAliceSoon()]);
      expect(JSON.stringify((error as APIError).error ?? (error as APIError).code)).toContain("emergency_stop");
      expect(await admin("/stop/lift", { key_id: "alice-dev" })).toBe(200);
      const record = (await auditRecords(h)).filter((r) => r.path === "/v1/chat/completions").at(-1);
      expect(record).toMatchObject({ error_code: "emergency_stop", approval_id: expect.stringMatching(/^apr_/), decision: { effect: "REQUIRE_APPROVAL", rule: "gated_deploy" } });
      expect(record?.tool_decisions).toContainEqual({ action: "tool.call", tool: "deploy", effect: "REQUIRE_APPROVAL", rule: "gated_deploy" });
    }
  });
});
