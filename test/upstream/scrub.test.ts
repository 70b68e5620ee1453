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

  it("masks a secret spelled with JSON escapes (any hex case, escaped slashes), which a client's parser decodes to it", () => {
    const scrub = secretScrubber(["sk/up+stream=0123456789"]);
    const spelled = ['"\\u0073k\\/up+str\\u0065am=0123456789"', '"sk\\/up+stream=0123456789"', '"\\u0073\\u006B/up+stream=0123456789"'];
    for (const text of spelled) {
      expect(JSON.parse(text)).toBe("sk/up+stream=0123456789");
      expect(scrub(text)).toBe(`"${REDACTED_SECRET}"`);
    }
    // Another string escaped the same way is left as it is.
    expect(scrub('"\\u0073k\\/down"')).toBe('"\\u0073k\\/down"');
  });
});

describe("secretScrubber's reuse", () => {
  it("gives one list of secrets the same scrubber, and lists that join to the same text their own", () => {
    expect(secretScrubber(["sk-upstream-1", "admin-token-1"])).toBe(secretScrubber(["sk-upstream-1", "admin-token-1"]));
    const split = secretScrubber(["sk-abcdefgh", "ijklmnop-x"]);
    const whole = secretScrubber(["sk-abcdefghijklmnop-x"]);
    expect(split).not.toBe(whole);
    expect(split("say sk-abcdefgh")).toBe("say [REDACTED_SECRET]");
    expect(whole("say sk-abcdefgh")).toBe("say sk-abcdefgh");
  });
});
