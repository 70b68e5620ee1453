import { describe, expect, test } from "vitest";
import { detectPii, detectPiiInParts, extractPromptText, lazyPrompt, PII_TYPES, promptParts } from "../../src/pii/index.js";

const conversation = {
  model: "gpt-4o",
  messages: [
    { role: "system", content: "You are a support agent. Never repeat card numbers back." },
    { role: "user", content: "My card 4111 1111 1111 1111 was charged twice." },
    { role: "assistant", content: "Sorry about that. Could you confirm your email?" },
    { role: "user", content: [{ type: "text", text: "It is alice@example.com" }] },
  ],
};

describe("PII detection piece by piece", () => {
  test("finds what the joined prompt text holds", () => {
    const parts = promptParts(conversation);
    expect(parts.join("\n")).toBe(extractPromptText(conversation));
    expect(detectPiiInParts(parts, PII_TYPES)).toEqual(detectPii(extractPromptText(conversation), PII_TYPES));
    expect(detectPiiInParts(parts, PII_TYPES).types).toEqual(["credit_card", "email"]);
  });

  test("answers a repeated piece as the first time, with another detector list kept apart", () => {
    const parts = ["call me on +44 20 7946 0958 tomorrow"];
    expect(detectPiiInParts(parts, ["phone"]).types).toEqual(["phone"]);
    expect(detectPiiInParts([...parts], ["phone"]).types).toEqual(["phone"]);
    expect(detectPiiInParts(parts, ["email"]).types).toEqual([]);
  });

  test("lazyPrompt works each fact out once, on demand", () => {
    let reads = 0;
    const body = {
      get messages() {
        reads++;
        return conversation.messages;
      },
    };
    const prompt = lazyPrompt(() => body, PII_TYPES);
    expect(reads).toBe(0);
    expect(prompt.pii().classification).toBe("pii");
    const afterFirst = reads;
    expect(afterFirst).toBeGreaterThan(0);
    expect(prompt.text()).toContain("alice@example.com");
    expect(prompt.pii().types).toEqual(["credit_card", "email"]);
    expect(reads).toBe(afterFirst);
  });
});

describe("PII written to look like something else", () => {
  test("is found in its compatibility form: fullwidth characters, no-break and zero-width spaces", () => {
    expect(detectPii("write to jane.doe＠example.com", PII_TYPES).types).toEqual(["email"]);
    expect(detectPii("ssn 123\u200b-45-6789", PII_TYPES).types).toEqual(["us_ssn"]);
    expect(detectPii("ssn １２３-４５-６７８９", PII_TYPES).types).toEqual(["us_ssn"]);
    expect(detectPii("call +44\u00a020\u00a07946\u00a00958", PII_TYPES).types).toEqual(["phone"]);
    expect(detectPiiInParts(["plain", "jane.doe＠example.com"], PII_TYPES).classification).toBe("pii");
    expect(detectPii("café au lait, naïve résumé", PII_TYPES).classification).toBe("none");
  });
});
