import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APIError } from "openai";
import { auditRecords, type Harness, keyEntry, MODELS, startHarness } from "./harness.js";

const KEY = "sk-late-facts";

// No rule reads the prompt before the answer is in: the tool-call rules read it first, after the
// gateway stripped a tool and redacted the prompt it sent upstream.
const CONFIG = `${MODELS}
keys:
${keyEntry("late", KEY, "{ user: lee, role: developer, team: research }")}
pii: { redact: true }
policies:
  rules:
    - name: strip_zebra
      effect: DENY
      actions: [tool.register]
      conditions: { tool: { eq: zebra_tool } }
      constraints: { on_deny: strip }
    - name: no_zebra_lookups
      effect: DENY
      actions: [tool.call]
      conditions: { tool: { eq: zebra_lookup }, prompt_text: { matches: "(?i)project zebra" } }
    - name: no_long_prompt_lookups
      effect: DENY
      actions: [tool.call]
      conditions: { tool: { eq: long_lookup }, input_tokens: { gt: 30 } }
    - name: no_mail_from_pii
      effect: DENY
      actions: [tool.call]
      conditions: { tool: { eq: send_email }, data_classification: { eq: pii } }
`;

let h: Harness;
beforeAll(async () => {
  h = await startHarness(CONFIG);
});
afterAll(async () => h.close());

const fn = (name: string, description: string) => ({ type: "function" as const, function: { name, description, parameters: { type: "object", properties: {} } } });

describe("tool-call rules reading the prompt once the answer is in", () => {
  for (const stream of [false, true]) {
    const drain = async (body: Record<string, unknown>): Promise<void> => {
      const client = h.client(KEY);
      if (!stream) {
        await client.chat.completions.create({ model: "gpt-4o-mini", ...body } as never);
        return;
      }
      const events = await client.chat.completions.create({ model: "gpt-4o-mini", ...body, stream: true } as never);
      for await (const _event of events as unknown as AsyncIterable<unknown>) {
        // read to the end
      }
    };

    const refused = async (body: Record<string, unknown>): Promise<APIError> => {
      const caught = await drain(body).then(
        () => null,
        (error: unknown) => error,
      );
      expect(caught).toBeInstanceOf(APIError);
      const error = caught as APIError;
      expect(error.code).toBe("policy_denied");
      if (!stream) expect(error.status).toBe(403);
      return error;
    };

    it(`read the description of a tool the gateway stripped (${stream ? "streamed" : "JSON"})`, async () => {
      const body = {
        messages: [{ role: "user", content: 'call_tool:zebra_lookup {"q":1}' }],
        tools: [fn("zebra_tool", "the secret Project Zebra tool"), fn("zebra_lookup", "looks things up")],
      };
      const error = await refused(body);
      expect(error.message).toContain("zebra_lookup");
    });

    it(`leave the record the tokens the upstream reported, not the estimate they read (${stream ? "streamed" : "JSON"})`, async () => {
      await refused({
        messages: [{ role: "user", content: 'call_tool:long_lookup {"q":1}' }],
        tools: [fn("long_lookup", "looks things up in the long archive of every document the team has ever written down")],
      });
      const record = (await auditRecords(h)).at(-1) as { input_tokens: number; error_code: string };
      expect(record.error_code).toBe("policy_denied");
      // The estimate counts the tool definition (over 30 tokens); the mock bills the messages alone.
      expect(record.input_tokens).toBeLessThan(30);
    });

    it(`read the PII the gateway redacted before sending (${stream ? "streamed" : "JSON"})`, async () => {
      const body = { messages: [{ role: "user", content: 'call_tool:send_email {"to":"team"} say:Mailing bob@example.com now.' }] };
      await refused(body);
      await expect(drain({ messages: [{ role: "user", content: 'call_tool:send_email {"to":"team"} say:Mailing the team now.' }] })).resolves.toBeUndefined();
    });
  }
});
