import { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, KEYS, keyEntry, MODELS, startHarness } from "./harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness(`${MODELS}
keys:
${keyEntry("alice-dev", KEYS.alice, "{ user: alice, role: developer, team: research }", "{ tokens_per_minute: 2000 }")}
`);
});
afterAll(async () => h.close());

describe("a call larger than the whole tokens_per_minute allowance", () => {
  it("is refused with a message that says how to make it fit, and passes with a smaller output limit", async () => {
    const client = h.client(KEYS.alice);
    const error = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:hi" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBe(429);
    expect((error as APIError).message).toMatch(/reserves \d+ tokens \(input \+ output limit\) against 2000 per minute: set a lower max_completion_tokens/);
    const ok = await client.chat.completions.create({ model: "gpt-4o-mini", max_completion_tokens: 500, messages: [{ role: "user", content: "say:hi" }] });
    expect(ok.choices[0]?.message.content).toBe("hi");
  });
});
