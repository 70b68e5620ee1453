import type { MemoryResult } from "./memory.js";
import type { TargetResult } from "./measure.js";

/** A fixed-width text table. */
export function table(header: string[], rows: (string | number)[][], leftColumns = 1): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]): string => r.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

const us = (v: number): string => (Number.isNaN(v) ? "-" : v.toFixed(0));

export function resultsTable(results: readonly TargetResult[]): string {
  return table(
    ["target", "sat req/s", "open rate", "p50 µs", "p90 µs", "p99 µs", "max µs", "err", "lag p99", "ttfb p50", "ttfb p99", "stream p50", "cpu µs/req", "mock µs/req", "rss MB", "noise"],
    results.map((r) => [
      r.target,
      r.closed.rps,
      r.open.rate,
      us(r.open.latency.p50),
      us(r.open.latency.p90),
      us(r.open.latency.p99),
      us(r.open.latency.max),
      r.closed.errors + r.open.errors + (r.stream?.errors ?? 0),
      us(r.open.sendLag.p99),
      r.stream === null ? "-" : us(r.stream.ttfb.p50),
      r.stream === null ? "-" : us(r.stream.ttfb.p99),
      r.stream === null ? "-" : us(r.stream.latency.p50),
      r.cpuUsPerRequest.target ?? "-",
      r.cpuUsPerRequest.mock,
      r.rssAfterKb === null ? "-" : (r.rssAfterKb / 1024).toFixed(0),
      r.foreignCores.toFixed(2),
    ]),
  );
}

export function memoryTable(results: readonly MemoryResult[]): string {
  return table(
    ["target", "streams", "flowing", "failed", "idle MB", "open MB", "KB/stream"],
    results.map((m) => [m.target, m.streams, m.flowing, m.failed, (m.idleRssKb / 1024).toFixed(1), (m.openRssKb / 1024).toFixed(1), m.kbPerStream.toFixed(1)]),
  );
}

export function lightTable(results: readonly TargetResult[]): string {
  const rows = results.filter((r) => r.light !== null);
  return table(
    ["target", "rate", "p50 µs", "p90 µs", "p99 µs", "max µs", "err", "lag p99"],
    rows.map((r) => {
      const l = r.light!;
      return [r.target, l.rate, us(l.latency.p50), us(l.latency.p90), us(l.latency.p99), us(l.latency.max), l.errors, us(l.sendLag.p99)];
    }),
  );
}
