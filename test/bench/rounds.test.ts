import { describe, expect, it } from "vitest";
import type { TargetResult } from "../../bench/lib/measure.js";
import { medianResults } from "../../bench/lib/rounds.js";

/** A result with only the figures these tests read; the rest of the shape is carried as it is. */
function result(target: string, rps: number, p50: number, warmup: number[]): TargetResult {
  return { target, closed: { rps }, open: { latency: { p50 } }, light: null, warmup } as unknown as TargetResult;
}

describe("medianResults", () => {
  it("takes each target's median figure over the rounds, whatever order the rounds list the targets in", () => {
    const rounds = [
      [result("bare web", 3000, 900, [1]), result("gw full", 2400, 1000, [2])],
      [result("gw full", 2000, 1400, [3]), result("bare web", 3300, 800, [4])],
      [result("bare web", 2900, 1200, [5]), result("gw full", 2500, 950, [6])],
    ];
    const [bare, gw] = medianResults(rounds);
    expect(bare).toMatchObject({ target: "bare web", closed: { rps: 3000 }, open: { latency: { p50: 900 } }, light: null, warmup: [1] });
    expect(gw).toMatchObject({ target: "gw full", closed: { rps: 2400 }, open: { latency: { p50: 1000 } }, warmup: [2] });
  });

  it("averages the middle two of an even count, and leaves a single round as it was", () => {
    const [even] = medianResults([[result("gw", 100, 10, [])], [result("gw", 300, 30, [])]]);
    expect(even).toMatchObject({ closed: { rps: 200 }, open: { latency: { p50: 20 } } });
    const one = result("gw", 123, 45, [7]);
    expect(medianResults([[one]])).toEqual([one]);
  });
});
