import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decide, raw } from "./governance.js";
import { ADMIN_TOKEN, type Harness, KEYS, keyEntry, MODELS, startHarness } from "./harness.js";

/**
 * A call's record is queued as its answer goes out, not after the store work that follows it (the
 * settle, an approval given back). Here that work writes the memory store's snapshot file first, so
 * an audit query sent the moment the answer arrives would otherwise race it.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness(
    `${MODELS}
keys:
${keyEntry("alice-dev", KEYS.alice, "{ user: alice, role: developer, team: research }", "{ daily_cost: 5 }")}
policies:
  rules:
    - { name: gpt4o_needs_approval, effect: REQUIRE_APPROVAL, conditions: { model: { eq: gpt-4o } } }
`,
    { store: "{ memory: { snapshot: $DIR/state.json } }" },
  );
});
afterAll(async () => h.close());

describe("a call's record and the store work after its answer", () => {
  it("is in the audit the moment an approved call's failed retry is answered, though its approval is still being given back", async () => {
    const body = { model: "gpt-4o", messages: [{ role: "user", content: "error:500" }] };
    for (let round = 0; round < 5; round++) {
      const first = await raw(h, "/v1/chat/completions", KEYS.alice, body);
      const id = (first.json().error as { approval_id: string }).approval_id;
      expect((await decide(h, id, "approve")).status).toBe(200);
      const retry = await raw(h, "/v1/chat/completions", KEYS.alice, body, { "x-approval-id": id });
      expect(retry.status).toBe(500);
      const audit = await fetch(`${h.gateway.url}/admin/audit?approval_id=${id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      const records = ((await audit.json()) as { data: Array<{ id: string; status: number }> }).data;
      expect(records.map((r) => r.id)).toContain(retry.headers.get("x-request-id"));
    }
  });
});
