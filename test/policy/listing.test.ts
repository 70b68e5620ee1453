import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ruleSchema } from "../../src/config/schema.js";
import { compilePolicy } from "../../src/policy/compile.js";
import { evaluatePolicy } from "../../src/policy/evaluate.js";
import { listingRules } from "../../src/policy/listing.js";
import { factsOf, type RawRule } from "./helpers.js";

const KNOWN = new Set(["key_id", "user", "user_role", "team", "purpose", "org", "action", "model", "hour", "weekday", "session_id", "ip", "user_agent"]);

/** The listing's effect for alice asking about `model`: DENY hides it. */
function listed(rules: RawRule[], model: string, defaultEffect: "ALLOW" | "DENY" = "ALLOW"): boolean {
  const parsed = z.array(ruleSchema).parse(rules);
  const policy = compilePolicy({ default_effect: defaultEffect, rules: listingRules(parsed, KNOWN) });
  return evaluatePolicy(policy, "chat.completions", factsOf({ user: "alice", model, action: "chat.completions" })).effect !== "DENY";
}

describe("listingRules", () => {
  it("hides a model a DENY refuses whatever a call carries, and lists one some call may be spared on", () => {
    const rules: RawRule[] = [
      { name: "alice_or_streams", effect: "DENY", conditions: { model: { eq: "gpt-4o" }, any_of: [{ user: { eq: "alice" } }, { stream: { eq: true } }] } },
      { name: "no_tool_gpt4", effect: "DENY", conditions: { model: { eq: "gpt-4" }, tool: { exists: false } } },
      { name: "big_prompts", effect: "DENY", conditions: { model: { eq: "o1" }, input_tokens: { gt: 1000 } } },
      { name: "not_streams", effect: "DENY", conditions: { model: { eq: "o3" }, not: { stream: { eq: true } } } },
      { name: "not_bob", effect: "DENY", conditions: { model: { eq: "o4" }, not: { user: { eq: "bob" } } } },
    ];
    expect(listed(rules, "gpt-4o")).toBe(false);
    expect(listed(rules, "gpt-4")).toBe(false);
    expect(listed(rules, "o1")).toBe(true);
    expect(listed(rules, "o3")).toBe(true);
    expect(listed(rules, "o4")).toBe(false);
    expect(listed(rules, "gpt-4o-mini")).toBe(true);
  });

  it("under default DENY, lists a model an ALLOW may hold for on some call, not one it never can", () => {
    const rules: RawRule[] = [
      { name: "streams_allowed", effect: "ALLOW", conditions: { model: { eq: "gpt-4o" }, stream: { eq: true } } },
      { name: "bob_only", effect: "ALLOW", conditions: { model: { eq: "o1" }, user: { eq: "bob" } } },
      { name: "tool_only", effect: "ALLOW", conditions: { model: { eq: "o3" }, tool: { eq: "x" } } },
    ];
    expect(listed(rules, "gpt-4o", "DENY")).toBe(true);
    expect(listed(rules, "o1", "DENY")).toBe(false);
    expect(listed(rules, "o3", "DENY")).toBe(false);
  });
});
