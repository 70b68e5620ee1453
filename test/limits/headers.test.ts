import { describe, expect, it } from "vitest";
import { formatResetDuration, pushRateHeaders, rateHeaders } from "../../src/limits/headers.js";

describe("rate-limit headers", () => {
  it("writes durations the way OpenAI does", () => {
    expect(formatResetDuration(20)).toBe("20ms");
    expect(formatResetDuration(1000)).toBe("1s");
    expect(formatResetDuration(1001)).toBe("2s");
    expect(formatResetDuration(360_000)).toBe("6m0s");
    expect(formatResetDuration(3_723_000)).toBe("1h2m3s");
  });

  it("reports requests and tokens only for the limits that exist", () => {
    expect(rateHeaders({ requests: { limit: 60, remaining: 59, resetMs: 1000 } })).toEqual({
      "x-ratelimit-limit-requests": "60",
      "x-ratelimit-remaining-requests": "59",
      "x-ratelimit-reset-requests": "1s",
    });
    expect(rateHeaders({})).toEqual({});
  });

  it("appends both kinds to a flat list in OpenAI's order", () => {
    const list = pushRateHeaders(["x-request-id", "req_1"], {
      requests: { limit: 60, remaining: 59, resetMs: 1000 },
      tokens: { limit: 1000, remaining: 10, resetMs: 20 },
    });
    expect(list).toEqual([
      "x-request-id",
      "req_1",
      "x-ratelimit-limit-requests",
      "60",
      "x-ratelimit-remaining-requests",
      "59",
      "x-ratelimit-reset-requests",
      "1s",
      "x-ratelimit-limit-tokens",
      "1000",
      "x-ratelimit-remaining-tokens",
      "10",
      "x-ratelimit-reset-tokens",
      "20ms",
    ]);
  });
});
