import { Counter, Gauge, Histogram, Registry } from "prom-client";

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
  const requests = new Counter({
    name: "spark_requests_total",
    help: "Requests by route, status, decision effect and deciding rule",
    labelNames: ["route", "status", "effect", "rule"],
    registers: [registry],
  });
  const durations = (name: string, help: string): Histogram<"route"> =>
    new Histogram({ name, help, labelNames: ["route"], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120], registers: [registry] });
  const latency = durations("spark_request_duration_seconds", "Total request latency");
  const upstreamLatency = durations("spark_upstream_duration_seconds", "Time to the upstream's response headers");
  const tokens = new Counter({ name: "spark_tokens_total", help: "Tokens by model, team and direction", labelNames: ["model", "team", "direction"], registers: [registry] });
  const cost = new Counter({ name: "spark_cost_usd_total", help: "Cost in USD by model and team", labelNames: ["model", "team"], registers: [registry] });
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
  // Each label set's series, found by one string key: prom-client would sort and join the labels on every call.
  const requestSeries = new Map<string, Counter.Internal>();
  const latencySeries = new Map<string, { total: Histogram.Internal<"route">; upstream: Histogram.Internal<"route"> }>();
  const usageSeries = new Map<string, { input: Counter.Internal; output: Counter.Internal; cost: Counter.Internal }>();
  return {
    registry,
    request(route, status, effect, rule, seconds, upstreamSeconds) {
      const key = `${route}\0${status}\0${effect}\0${rule}`;
      let counter = requestSeries.get(key);
      if (counter === undefined) {
        counter = requests.labels(route, String(status), effect, rule);
        requestSeries.set(key, counter);
      }
      counter.inc();
      let durations = latencySeries.get(route);
      if (durations === undefined) {
        durations = { total: latency.labels(route), upstream: upstreamLatency.labels(route) };
        latencySeries.set(route, durations);
      }
      durations.total.observe(seconds);
      if (upstreamSeconds !== null) durations.upstream.observe(upstreamSeconds);
    },
    usage(model, team, inputTokens, outputTokens, costUsd) {
      const key = `${model}\0${team}`;
      let series = usageSeries.get(key);
      if (series === undefined) {
        series = { input: tokens.labels(model, team, "input"), output: tokens.labels(model, team, "output"), cost: cost.labels(model, team) };
        usageSeries.set(key, series);
      }
      if (inputTokens > 0) series.input.inc(inputTokens);
      if (outputTokens > 0) series.output.inc(outputTokens);
      if (costUsd > 0) series.cost.inc(costUsd);
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

