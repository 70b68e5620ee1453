import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { utcDay } from "../../src/audit/files.js";

describe("utcDay", () => {
  it("reads a record's ISO timestamp as the day its epoch milliseconds fall on", () => {
    const ms = fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) });
    fc.assert(fc.property(ms, (at) => utcDay(new Date(at).toISOString()) === utcDay(at)));
  });

  it("parses other timestamp forms and refuses what is not one", () => {
    expect(utcDay("2026-11-26T23:30:00+02:00")).toBe("2026-11-26");
    expect(utcDay("2026-11-26T23:30:00-02:00")).toBe("2026-11-27");
    expect(utcDay("2026-13-01T00:00:00.000Z")).toBeNull();
    expect(utcDay("yesterday")).toBeNull();
  });
});
