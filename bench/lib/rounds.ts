import type { Headline } from "./headline.js";
import type { TargetResult } from "./measure.js";
import { median } from "./stats.js";

/**
 * Per target, the median of every figure over several rounds, each round measuring every target
 * in turn. On a shared host the machine's speed drifts over minutes; rounds that take the targets
 * in turn expose each one to the same drift, and the median drops the round a burst of foreign
 * load spoiled. Lists (the warm-up's windows) are the first round's.
 */
export function medianResults(rounds: readonly (readonly TargetResult[])[]): TargetResult[] {
  const [first = []] = rounds;
  return first.map((result) => medianOf(rounds.map((round) => round.find((r) => r.target === result.target))) as TargetResult);
}

function medianOf(values: readonly unknown[]): unknown {
  const [first] = values;
  if (typeof first === "number") return median(values.filter((v): v is number => typeof v === "number"));
  if (first === null || typeof first !== "object" || Array.isArray(first)) return first;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(first)) out[key] = medianOf(values.map((v) => (v as Record<string, unknown> | undefined)?.[key]));
  return out;
}

/** Each headline check's measured figure, round by round: the spread behind the medians. */
export function roundSpread(headlines: readonly (Headline | null)[]): string[] {
  const checks = headlines[0]?.checks ?? [];
  return checks.map((check, i) => `${check.target}: ${headlines.map((h) => `${h?.checks[i]?.met === true ? "" : "✗ "}${h?.checks[i]?.measured.split(";")[0] ?? "-"}`).join(" | ")}`);
}
