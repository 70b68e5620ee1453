import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, DEFAULT_KEYS, errorCode, leaksOf, MODELS, SECRETS, type SecGateway, startSecGateway } from "./support.js";

/** Hostile prompts against `matches` rules and the PII scanner: each call is answered (a liveness bound only, no timing assertion). */
let g: SecGateway;

beforeAll(async () => {
  g = await startSecGateway({
    body: `${MODELS}${DEFAULT_KEYS}
policies:
  default_effect: ALLOW
  rules:
    - name: catastrophic_backtracking
      effect: DENY
      conditions: { model: { in: [gpt-4o-mini] }, prompt_text: { matches: "(a+)+$" } }
      description: a pattern that backtracks exponentially in a naive engine
    - name: nested_alternation
      effect: DENY
      conditions: { model: { in: [gpt-4o-mini] }, prompt_text: { matches: "^(a|aa)+b$" } }
    - name: many_dots
      effect: DENY
      conditions: { model: { in: [gpt-4o-mini] }, prompt_text: { matches: "(.*x){12}y" } }
    - name: no_pii
      effect: DENY
      conditions: { model: { in: [gpt-4o] }, data_classification: { eq: pii } }
      description: prompts with personal data are refused
`,
  });
});
afterAll(async () => {
  await g?.close();
});

async function ask(model: string, prompt: string): Promise<{ status: number; code: string | null; text: string }> {
  const res = await g.request("/v1/chat/completions", {
    method: "POST",
    headers: bearer(SECRETS.alice),
    body: JSON.stringify({ model, messages: [{ role: "user", content: prompt }] }),
    record: false,
  });
  return { status: res.status, code: errorCode(res.text), text: res.text.slice(0, 300) };
}

describe("policy abuse", () => {
  it("a 1 MB adversarial prompt against `(a+)+$` and friends is answered", async () => {
    const nearMiss = `${"a".repeat(1_000_000)}!`;
    const out = await ask("gpt-4o-mini", nearMiss);
    expect(out.status, out.text).toBe(200);
    const hit = await ask("gpt-4o-mini", "a".repeat(1_000_000));
    expect(hit.status, hit.text).toBe(403);
    expect(hit.code).toBe("policy_denied");
    expect(hit.text).toContain("catastrophic_backtracking");
    const xs = await ask("gpt-4o-mini", `${"x".repeat(1_000_000)}z`);
    expect(xs.status, xs.text).toBe(200);
  }, 60_000);

  it("the PII scanner on a 5 MB prompt completes (personal data found -> denied; none -> served)", async () => {
    const filler = "the quick brown fox jumps over 12 lazy dogs; 3.14 + 4111 1111 - call me maybe ".repeat(70_000);
    expect(filler.length).toBeGreaterThan(5_000_000);
    const clean = await ask("gpt-4o", filler);
    expect([200, 403], clean.text).toContain(clean.status);
    const withEmail = await ask("gpt-4o", `contact jane.doe@example.com about it. ${filler}`);
    expect(withEmail.status, withEmail.text).toBe(403);
    expect(withEmail.code).toBe("policy_denied");
    const digits = await ask("gpt-4o", "4".repeat(5_000_000));
    expect([200, 403]).toContain(digits.status);
    const ats = await ask("gpt-4o", "@.".repeat(2_500_000));
    expect([200, 403]).toContain(ats.status);
    expect((await g.request("/healthz")).status).toBe(200);
  }, 120_000);

  it("no secret leaked", () => {
    expect(leaksOf(g)).toEqual([]);
  });
});
