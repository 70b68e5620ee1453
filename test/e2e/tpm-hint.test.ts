import { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditRecords, type Harness, KEYS, keyEntry, MODELS, startHarness } from "./harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness(`${MODELS}
keys:
${keyEntry("alice-dev", KEYS.alice, "{ user: alice, role: developer, team: research }", "{ tokens_per_minute: 2000 }")}
`);
});
afterAll(async () => h.close());

describe("a call larger than the whole tokens_per_minute allowance", () => {
  it("is refused at once, not retried by the SDK, with a message that says how to make it fit", async () => {
    // The SDK's default: two retries, each after the answer's retry-after.
    const client = h.client(KEYS.alice, { maxRetries: 2 });
    const error = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:hi" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBe(429);
    expect((error as APIError).headers?.get("x-should-retry")).toBe("false");
    expect((error as APIError).message).toMatch(/can never admit this call: it reserves \d+ tokens \(input \+ output limit\) against 2000 per minute; set a lower max_completion_tokens/);
    expect((await auditRecords(h)).filter((r) => r.status === 429)).toHaveLength(1);
    const ok = await client.chat.completions.create({ model: "gpt-4o-mini", max_completion_tokens: 500, messages: [{ role: "user", content: "say:hi" }] });
    expect(ok.choices[0]?.message.content).toBe("hi");
  });
});
