import { Counter, Gauge, Registry } from "prom-client";
import { LabelledHistogram, PendingCounts } from "./metric-series.js";

export interface Metrics {
  registry: Registry;
  request(route: string, status: number, effect: string, rule: string, seconds: number, upstreamSeconds: number | null): void;
  usage(model: string, team: string, inputTokens: number, outputTokens: number, costUsd: number): void;
  limitHit(code: string): void;
  storeError(): void;
  /** A call admitted uncharged because the store was down and `on_error` is `fail_open` (or no limit applied to it). */
  failedOpen(): void;
  setGauges(values: { auditDepth: number; auditDropped: number; openStreams: number }): void;
}

/**
 * Prometheus metrics; label values are bounded (routes, codes, rule names from config).
 * `pendingApprovals` is read from the store when the metrics are scraped, so it is every replica's.
 */
export function createMetrics(pendingApprovals: () => Promise<number>): Metrics {
  const registry = new Registry();
  // The per-call series are counted as plain numbers and handed to prom-client when scraped.
  const requestCounts = new PendingCounts<"route" | "status" | "effect" | "rule">();
  const tokenCounts = new PendingCounts<"model" | "team" | "direction">();
  const costCounts = new PendingCounts<"model" | "team">();
  new Counter({
    name: "spark_requests_total",
    help: "Requests by route, status, decision effect and deciding rule",
    labelNames: ["route", "status", "effect", "rule"],
    registers: [registry],
    collect() {
      requestCounts.flushInto(this);
    },
  });
  const buckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120];
  const latency = new LabelledHistogram("spark_request_duration_seconds", "Total request latency", "route", buckets);
  const upstreamLatency = new LabelledHistogram("spark_upstream_duration_seconds", "Time to the upstream's response headers", "route", buckets);
  registry.registerMetric(latency.asMetric());
  registry.registerMetric(upstreamLatency.asMetric());
  new Counter({
    name: "spark_tokens_total",
    help: "Tokens by model, team and direction",
    labelNames: ["model", "team", "direction"],
    registers: [registry],
    collect() {
      tokenCounts.flushInto(this);
    },
  });
  new Counter({
    name: "spark_cost_usd_total",
    help: "Cost in USD by model and team",
    labelNames: ["model", "team"],
    registers: [registry],
    collect() {
      costCounts.flushInto(this);
    },
  });
  const limitHits = new Counter({ name: "spark_limit_hits_total", help: "Calls refused by a limit, by error code", labelNames: ["code"], registers: [registry] });
  const storeErrors = new Counter({ name: "spark_store_errors_total", help: "State store failures", registers: [registry] });
  const failedOpen = new Counter({
    name: "spark_calls_uncharged_total",
    help: "Calls admitted uncharged while the store was down (store.on_error: fail_open, or no limit applied to them)",
    registers: [registry],
  });
  new Gauge({
    name: "spark_approvals_pending",
    help: "Approvals waiting for a decision (not expired), on every replica",
    registers: [registry],
    async collect() {
      // A store that cannot answer leaves the last figure rather than failing the scrape.
      const count = await pendingApprovals().catch(() => null);
      if (count !== null) this.set(count);
    },
  });
  const auditDepth = new Gauge({ name: "spark_audit_queue_depth", help: "Audit records waiting to be written", registers: [registry] });
  const auditDropped = new Counter({ name: "spark_audit_dropped_total", help: "Audit records dropped: every one past max_queue with on_full: drop; with reject, only refusals past its overflow", registers: [registry] });
  let droppedSoFar = 0;
  const openStreams = new Gauge({ name: "spark_open_calls", help: "Governed calls in flight", registers: [registry] });
  return {
    registry,
    request(route, status, effect, rule, seconds, upstreamSeconds) {
      requestCounts.add(`${route}\0${status}\0${effect}\0${rule}`, 1, () => ({ route, status: String(status), effect, rule }));
      latency.observe(route, seconds);
      if (upstreamSeconds !== null) upstreamLatency.observe(route, upstreamSeconds);
    },
    usage(model, team, inputTokens, outputTokens, costUsd) {
      const key = `${model}\0${team}`;
      if (inputTokens > 0) tokenCounts.add(`${key}\0input`, inputTokens, () => ({ model, team, direction: "input" }));
      if (outputTokens > 0) tokenCounts.add(`${key}\0output`, outputTokens, () => ({ model, team, direction: "output" }));
      if (costUsd > 0) costCounts.add(key, costUsd, () => ({ model, team }));
    },
    limitHit(code) {
      limitHits.inc({ code });
    },
    storeError() {
      storeErrors.inc();
    },
    failedOpen() {
      failedOpen.inc();
    },
    setGauges(values) {
      auditDepth.set(values.auditDepth);
      // The writer counts drops from its start: the counter takes what is new since the last look.
      if (values.auditDropped > droppedSoFar) auditDropped.inc(values.auditDropped - droppedSoFar);
      droppedSoFar = values.auditDropped;
      openStreams.set(values.openStreams);
    },
  };
}

