import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { LabelledHistogram, PendingCounts } from "../../src/http/metric-series.js";

const BOUNDS = [0.001, 0.01, 0.1, 1, 30];

describe("LabelledHistogram", () => {
  it("exposes what prom-client's Histogram exposes for the same observations", async () => {
    const theirs = new Registry();
    const reference = new Histogram({ name: "h_seconds", help: "help text", labelNames: ["route"], buckets: BOUNDS, registers: [theirs] });
    const ours = new Registry();
    const histogram = new LabelledHistogram("h_seconds", "help text", "route", BOUNDS);
    ours.registerMetric(histogram.asMetric());
    const observations: [string, number][] = [
      ["/v1/a", 0.0005],
      ["/v1/a", 0.001],
      ["/v1/b", 0.05],
      ["/v1/a", 31],
      ["/v1/b", 1],
      ["/v1/a", 0.2],
    ];
    for (const [route, value] of observations) {
      reference.observe({ route }, value);
      histogram.observe(route, value);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('h_seconds_bucket{le="0.001",route="/v1/a"} 2');
  });

  it("reset empties every series", async () => {
    const registry = new Registry();
    const histogram = new LabelledHistogram("h_seconds", "help", "route", BOUNDS);
    registry.registerMetric(histogram.asMetric());
    histogram.observe("/v1/a", 0.5);
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain("route=");
  });
});

describe("PendingCounts", () => {
  it("hands what was added to the counter when it is scraped, once", async () => {
    const registry = new Registry();
    const counts = new PendingCounts<"model">();
    let built = 0;
    new Counter({
      name: "c_total",
      help: "help",
      labelNames: ["model"],
      registers: [registry],
      collect() {
        counts.flushInto(this);
      },
    });
    const labels = (model: string) => () => {
      built++;
      return { model };
    };
    counts.add("a", 2, labels("a"));
    counts.add("a", 3, labels("a"));
    counts.add("b", 0.25, labels("b"));
    expect(await registry.metrics()).toContain('c_total{model="a"} 5');
    // A second scrape adds nothing new: the pending figures were moved, not copied.
    counts.add("b", 0.5, labels("b"));
    const second = await registry.metrics();
    expect(second).toContain('c_total{model="a"} 5');
    expect(second).toContain('c_total{model="b"} 0.75');
    // Each series' labels were built once, when it was first seen.
    expect(built).toBe(2);
  });
});
