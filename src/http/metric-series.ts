import type { Counter, LabelValues, Metric } from "prom-client";

/**
 * Counts added on the request path as plain numbers, one series per label set found by one string
 * key, and handed to a prom-client counter only when it is scraped (from its `collect`). prom-client
 * hashes the label set on every `inc`, even through a child from `labels()`: a few µs per call.
 */
export class PendingCounts<L extends string> {
  private readonly series = new Map<string, { labels: LabelValues<L>; pending: number }>();

  /** Adds `value` to the series `key` names; `labels` builds its label set the first time it is seen. */
  add(key: string, value: number, labels: () => LabelValues<L>): void {
    const series = this.series.get(key);
    if (series === undefined) this.series.set(key, { labels: labels(), pending: value });
    else series.pending += value;
  }

  /** Moves what was added since the last flush into `counter`. */
  flushInto(counter: Counter<L>): void {
    for (const series of this.series.values()) {
      if (series.pending === 0) continue;
      counter.inc(series.labels, series.pending);
      series.pending = 0;
    }
  }
}

/** One line of the exposition, in the shape prom-client's registry reads from its own metrics. */
interface ExposedValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
  sharedLabels?: Record<string, string>;
}

interface Exposed {
  name: string;
  help: string;
  type: "histogram";
  aggregator: "sum";
  values: ExposedValue[];
}

interface Buckets {
  /** Observations per bucket, not cumulative; the last slot is past the highest bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram with one label, kept as plain counts and registered in a prom-client registry as a
 * metric of its own: it exposes what prom-client's `Histogram` does (cumulative `_bucket` series
 * with `le` first, then `+Inf`, `_sum` and `_count`), without hashing a label set per observation.
 */
export class LabelledHistogram<L extends string> {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly series = new Map<string, Buckets>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly label: L,
    private readonly upperBounds: readonly number[],
  ) {}

  /** This histogram as the registry takes it (it reads `name`, `help`, `type`, `aggregator`, `get` and `reset`). */
  asMetric(): Metric<L> {
    return this as unknown as Metric<L>;
  }

  observe(labelValue: string, value: number): void {
    let buckets = this.series.get(labelValue);
    if (buckets === undefined) {
      buckets = { counts: new Float64Array(this.upperBounds.length + 1), sum: 0, count: 0 };
      this.series.set(labelValue, buckets);
    }
    let slot = 0;
    while (slot < this.upperBounds.length && value > (this.upperBounds[slot] as number)) slot++;
    buckets.counts[slot] = (buckets.counts[slot] ?? 0) + 1;
    buckets.sum += value;
    buckets.count++;
  }

  reset(): void {
    this.series.clear();
  }

  /** The exposition's values, the series' label after `le` as prom-client writes it. */
  getForPromString(): Exposed {
    const values: ExposedValue[] = [];
    for (const [labelValue, buckets] of this.series) {
      const shared = { [this.label]: labelValue };
      let cumulative = 0;
      this.upperBounds.forEach((bound, slot) => {
        cumulative += buckets.counts[slot] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: bound }, value: cumulative, sharedLabels: shared });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: "+Inf" }, value: buckets.count, sharedLabels: shared });
      values.push({ metricName: `${this.name}_sum`, labels: {}, value: buckets.sum, sharedLabels: shared });
      values.push({ metricName: `${this.name}_count`, labels: {}, value: buckets.count, sharedLabels: shared });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** The same values with each series' label merged into `labels`, as `getMetricsAsJSON` gives them. */
  get(): Exposed {
    const data = this.getForPromString();
    return { ...data, values: data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } })) };
  }
}
