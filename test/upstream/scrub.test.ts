import { describe, expect, it } from "vitest";
import { REDACTED_SECRET, secretScrubber } from "../../src/upstream/scrub.js";

describe("secretScrubber", () => {
  it("masks every occurrence of each secret", () => {
    const scrub = secretScrubber(["sk-upstream-0123456789", "admin-token-xyz"]);
    expect(scrub('{"error":{"message":"Incorrect API key provided: sk-upstream-0123456789 (sk-upstream-0123456789)"}} admin-token-xyz')).toBe(
      `{"error":{"message":"Incorrect API key provided: ${REDACTED_SECRET} (${REDACTED_SECRET})"}} ${REDACTED_SECRET}`,
    );
  });

  it("leaves text alone where no secret is, and ignores secrets too short to search for", () => {
    const scrub = secretScrubber(["", "short", "sk-upstream-0123456789"]);
    expect(scrub("a short text")).toBe("a short text");
  });
});
