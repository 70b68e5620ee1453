import type { MemoryResult } from "./memory.js";
import type { TargetResult } from "./measure.js";
import { round1 } from "./stats.js";

export interface Check {
  target: string;
  goal: string;
  measured: string;
  met: boolean;
}

export interface Headline {
  governed: string;
  /** The pass-through the issue measured and set its targets against (`bare web`), when it ran. */
  reference: string;
  saturationVsReference: number;
  addedP50VsReferenceUs: number;
  saturationVsBare: number;
  saturationVsDirect: number;
  addedP50VsDirectUs: number;
  addedP99VsDirectUs: number;
  addedP50VsBareUs: number;
  addedP99VsBareUs: number;
  ttfbAddedVsDirectUs: number | null;
  ttfbAddedVsBareUs: number | null;
  kbPerStream: number | null;
  /** The same differences at the lighter fixed rate (not a target: where the gateway is not saturated). */
  light: { rate: number; addedP50VsBareUs: number; addedP99VsBareUs: number; addedP50VsDirectUs: number; addedP99VsDirectUs: number } | null;
  checks: Check[];
}

const ratio = (a: number, b: number): number => Math.round((a / b) * 1000) / 1000;
const signed = (n: number): string => (n < 0 ? `− ${-n}` : `+ ${n}`);

/** The issue's pass-through: hono + @hono/node-server + undici, the body re-wrapped in a Web `Response`. */
const REFERENCE = "bare web";

/**
 * Ratios of the governed gateway to direct and to the bare pass-throughs, and the issue's targets.
 * The issue's own pass-through re-wraps the upstream body in a Web `Response` (its ~10,000 req/s,
 * of which 80 % is its "4 × Portkey"): that is `bare web`, the reference the targets are judged
 * against. `bare` (the body piped, as the gateway does) is a stricter floor, shown beside it.
 */
export function buildHeadline(results: readonly TargetResult[], memory: readonly MemoryResult[], governed: string): Headline | null {
  const find = (name: string): TargetResult | undefined => results.find((r) => r.target === name);
  const direct = find("direct");
  const bare = find("bare");
  const gw = find(governed);
  if (direct === undefined || bare === undefined || gw === undefined) return null;
  const refName = find(REFERENCE) === undefined ? "bare" : REFERENCE;
  const ref = find(refName) ?? bare;
  const ttfb = (r: TargetResult): number | null => r.stream?.ttfb.p50 ?? null;
  const diff = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : round1(a - b));
  const mine = memory.filter((m) => m.target === governed).sort((a, b) => b.streams - a.streams);
  const mem = mine[0];
  const few = mine.length > 1 ? mine[mine.length - 1] : undefined;
  const bareMem = memory.find((m) => m.target === "bare");
  const h: Omit<Headline, "checks"> = {
    governed,
    reference: refName,
    saturationVsReference: ratio(gw.closed.rps, ref.closed.rps),
    addedP50VsReferenceUs: round1(gw.open.latency.p50 - ref.open.latency.p50),
    saturationVsBare: ratio(gw.closed.rps, bare.closed.rps),
    saturationVsDirect: ratio(gw.closed.rps, direct.closed.rps),
    addedP50VsDirectUs: round1(gw.open.latency.p50 - direct.open.latency.p50),
    addedP99VsDirectUs: round1(gw.open.latency.p99 - direct.open.latency.p99),
    addedP50VsBareUs: round1(gw.open.latency.p50 - bare.open.latency.p50),
    addedP99VsBareUs: round1(gw.open.latency.p99 - bare.open.latency.p99),
    ttfbAddedVsDirectUs: diff(ttfb(gw), ttfb(direct)),
    ttfbAddedVsBareUs: diff(ttfb(gw), ttfb(bare)),
    kbPerStream: mem?.kbPerStream ?? null,
    light:
      gw.light === null || bare.light === null || direct.light === null
        ? null
        : {
            rate: gw.light.rate,
            addedP50VsBareUs: round1(gw.light.latency.p50 - bare.light.latency.p50),
            addedP99VsBareUs: round1(gw.light.latency.p99 - bare.light.latency.p99),
            addedP50VsDirectUs: round1(gw.light.latency.p50 - direct.light.latency.p50),
            addedP99VsDirectUs: round1(gw.light.latency.p99 - direct.light.latency.p99),
          },
  };
  const checks: Check[] = [
    {
      target: "saturation",
      goal: `≥ 0.80 × ${refName}`,
      measured: `${h.saturationVsReference} × ${refName} (${gw.closed.rps} vs ${ref.closed.rps} req/s); ${h.saturationVsBare} × bare (${bare.closed.rps})`,
      met: h.saturationVsReference >= 0.8,
    },
    {
      target: "p50 at 500 req/s",
      goal: `≤ ${refName} + 100 µs`,
      measured: `${refName} ${signed(h.addedP50VsReferenceUs)} µs; bare ${signed(h.addedP50VsBareUs)} µs`,
      met: h.addedP50VsReferenceUs <= 100,
    },
    { target: "p99 at 500 req/s", goal: "≤ direct + 2000 µs", measured: `direct + ${h.addedP99VsDirectUs} µs`, met: h.addedP99VsDirectUs <= 2000 },
    {
      target: "stream first byte",
      goal: "≤ direct + 1000 µs",
      measured: h.ttfbAddedVsDirectUs === null ? "-" : `direct + ${h.ttfbAddedVsDirectUs} µs`,
      met: h.ttfbAddedVsDirectUs !== null && h.ttfbAddedVsDirectUs <= 1000,
    },
    {
      target: "memory per open stream",
      goal: "≤ 40 KB",
      measured:
        mem === undefined
          ? "-"
          : `${mem.kbPerStream} KB at ${mem.flowing}/${mem.streams} flowing${few === undefined ? "" : `; ${few.kbPerStream} KB at ${few.flowing}/${few.streams}`}; bare ${bareMem?.kbPerStream ?? "-"} KB`,
      met: mem !== undefined && mem.flowing === mem.streams && mem.kbPerStream <= 40,
    },
  ];
  return { ...h, checks };
}
