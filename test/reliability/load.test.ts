import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startMockUpstream } from "../../mock/upstream.js";
import { verifyFiles } from "../../src/audit/verify.js";
import { createRedisStore } from "../../src/state/redis.js";
import { startRedis } from "../helpers/index.js";
import { readAudit } from "../security/support.js";
import { ADMIN_TOKEN, type CallResult, chatCall, type GatewayProcess, MAIN, mb, sha256Ref, sleep, startGatewayProcess, UPSTREAM_KEY } from "./support.js";

/**
 * 60 s of mixed streaming / non-streaming traffic at a steady rate through two gateway processes
 * sharing one Redis. Figures are printed for the README's "Reliability" section.
 */
const DURATION_MS = Number(process.env.RELIABILITY_SECONDS ?? 60) * 1000;
const TICK_MS = 50;
/** Main traffic per tick (half streamed): 5 per 50 ms = 100 requests/s. */
const PER_TICK = 5;
const CAP_MICROS = 10_000;
const RPM = 120;

const KEYS = { a: "sk-rel-load-a", b: "sk-rel-load-b", capped: "sk-rel-capped", rpm: "sk-rel-rpm" } as const;

const redis = await startRedis();
afterAll(async () => {
  await redis?.stop();
});

describe.skipIf(redis === null || !existsSync(MAIN))("sustained load through two replicas on one Redis", () => {
  it("60 s: error rate 0, RSS flat, every call audited, chains verify, budgets and limits exact", async () => {
    const mock = await startMockUpstream({ record: false, latencyMs: 2 });
    const auditDir = join(mkdtempSync(join(tmpdir(), "spark-rel-load-")), "audit");
    const yaml = (replica: string): string => `
org: acme
server: { host: 127.0.0.1, port: 1, drain_seconds: 30, replica_id: ${replica} }
admin: { token: ${ADMIN_TOKEN} }
store: { redis: { url: "${redis!.url}", prefix: "rel:" }, on_error: fail_closed }
upstreams:
  openai: { base_url: "${mock.url}", api_key: ${UPSTREAM_KEY}, timeout_seconds: 30 }
models:
  gpt-4o-mini: { upstream: openai, input_per_1m: 0.15, output_per_1m: 0.60 }
  gpt-4o: { upstream: openai, input_per_1m: 2.50, output_per_1m: 10.00 }
keys:
  - { id: load-a, key_hash: "${sha256Ref(KEYS.a)}", subject: { user: ua, role: developer, team: t1 }, limits: { daily_cost: 100 } }
  - { id: load-b, key_hash: "${sha256Ref(KEYS.b)}", subject: { user: ub, role: developer, team: t1 }, limits: { max_parallel_requests: 200 } }
  - { id: capped, key_hash: "${sha256Ref(KEYS.capped)}", subject: { user: uc, role: developer, team: t2 }, limits: { total_cost: ${CAP_MICROS / 1e6}, min_output_tokens: 1 } }
  - { id: rpm, key_hash: "${sha256Ref(KEYS.rpm)}", subject: { user: ur, role: developer, team: t2 }, limits: { requests_per_minute: ${RPM} } }
teams: { t1: { limits: { daily_cost: 1000 } } }
audit:
  sinks: [{ file: { dir: "${auditDir}" } }]
  fsync: interval
  fsync_interval_ms: 1000
`;
    const gateways: GatewayProcess[] = [await startGatewayProcess(yaml("rel-1")), await startGatewayProcess(yaml("rel-2"))];
    const main: Promise<CallResult>[] = [];
    const capped: Promise<CallResult>[] = [];
    const rpm: Array<Promise<CallResult>> = [];
    const samples: Array<{ t: number; rss: number[] }> = [];
    try {
      const started = Date.now();
      let tick = 0;
      let nextSample = started;
      let rpmFirst = 0;
      let rpmLast = 0;
      while (Date.now() - started < DURATION_MS) {
        const now = Date.now();
        if (now >= nextSample) {
          samples.push({ t: Math.round((now - started) / 1000), rss: gateways.map((gw) => gw.rss()) });
          nextSample += 5_000;
        }
        for (let i = 0; i < PER_TICK; i++) {
          const n = tick * PER_TICK + i;
          const gw = gateways[n % 2]!;
          const stream = n % 4 >= 2;
          const key = n % 3 === 0 ? KEYS.b : KEYS.a;
          main.push(
            chatCall(gw.pool, key, {
              model: "gpt-4o-mini",
              messages: [{ role: "user", content: stream ? "tokens:20 chunks:5 delay:10" : "tokens:20" }],
              stream,
            }),
          );
        }
        // The capped key is spent by both replicas at once (2 calls per tick, one each).
        if (tick % 2 === 0) {
          for (const gw of gateways) {
            capped.push(chatCall(gw.pool, KEYS.capped, { model: "gpt-4o", max_tokens: 40, messages: [{ role: "user", content: "tokens:20" }] }));
          }
        }
        // The rpm key asks 5 times a second (300/min) for a limit of 120/min.
        if (tick % 4 === 0) {
          if (rpmFirst === 0) rpmFirst = Date.now();
          rpmLast = Date.now();
          rpm.push(chatCall(gateways[tick % 8 === 0 ? 0 : 1]!.pool, KEYS.rpm, { model: "gpt-4o-mini", messages: [{ role: "user", content: "tokens:3" }] }));
        }
        tick += 1;
        const due = started + tick * TICK_MS;
        await sleep(Math.max(0, due - Date.now()));
      }
      const elapsed = Date.now() - started;
      const results = await Promise.all(main);
      const cappedResults = await Promise.all(capped);
      const rpmResults = await Promise.all(rpm);
      samples.push({ t: Math.round((Date.now() - started) / 1000), rss: gateways.map((gw) => gw.rss()) });

      // Errors: anything but a complete 200 in the main traffic.
      const errors = results.filter((r) => r.status !== 200 || !r.complete);
      const streamed = results.filter((_, i) => i % 4 >= 2).length;
      console.log(
        `load: ${results.length} main requests in ${(elapsed / 1000).toFixed(1)} s (${(results.length / (elapsed / 1000)).toFixed(1)}/s, ${streamed} streamed) + ${cappedResults.length} capped + ${rpmResults.length} rpm; errors ${errors.length}`,
      );
      expect(errors.slice(0, 5)).toEqual([]);

      // Memory: every sample, first (after start) and last, per replica.
      for (let i = 0; i < gateways.length; i++) {
        const series = samples.map((s) => s.rss[i]!);
        const warm = samples.find((s) => s.t >= 10)?.rss[i] ?? series[0]!;
        console.log(`rss replica ${i + 1}: first ${mb(series[0]!)}, after 10 s ${mb(warm)}, last ${mb(series.at(-1)!)}, max ${mb(Math.max(...series))}; samples ${series.map(mb).join(" ")}`);
        expect(series.at(-1)!).toBeLessThan(warm * 1.5 + 32 * 1024 * 1024);
      }

      // Rate limit exact across both replicas: a bucket of RPM, refilled at RPM per minute.
      const rpmAdmitted = rpmResults.filter((r) => r.status === 200).length;
      const rpmOther = rpmResults.filter((r) => r.status !== 200 && r.code !== "rate_limit_exceeded");
      const window = (rpmLast - rpmFirst) / 60_000;
      const allowed = RPM + RPM * window;
      console.log(`rpm: ${rpmAdmitted} of ${rpmResults.length} admitted over ${(window * 60).toFixed(1)} s; the bucket allows ${allowed.toFixed(1)}`);
      expect(rpmOther).toEqual([]);
      expect(rpmAdmitted).toBeLessThanOrEqual(Math.floor(allowed) + 1);
      expect(rpmAdmitted).toBeGreaterThanOrEqual(Math.min(rpmResults.length, Math.floor(allowed) - 5));

      // Drain both, then the books.
      const codes = await Promise.all(gateways.map((gw) => gw.proc.stop("SIGTERM", 30_000)));
      expect(codes).toEqual([0, 0]);
      const records = readAudit(auditDir);
      const verified = await verifyFiles(auditDir);
      console.log(`audit: ${records.length} records, chains ${JSON.stringify(verified)}`);
      expect(verified).toEqual({ ok: true, records: records.length });
      const sent = [...results, ...cappedResults, ...rpmResults];
      const ids = new Set(records.map((r) => String(r.id)));
      expect(sent.filter((r) => r.id === null || !ids.has(r.id)).length).toBe(0);
      expect(records.length).toBe(sent.length);

      const store = await createRedisStore(redis!.url, "rel:");
      try {
        const micros = (filter: (r: Record<string, unknown>) => boolean): number =>
          records.filter(filter).reduce((sum, r) => sum + Math.round(Number(r.cost ?? 0) * 1e6), 0);
        const now = Date.now();
        for (const [level, filter] of [
          ["key:load-a", (r: Record<string, unknown>) => r.key_id === "load-a"],
          ["key:load-b", (r: Record<string, unknown>) => r.key_id === "load-b"],
          ["team:t1", (r: Record<string, unknown>) => r.team === "t1"],
          ["key:capped", (r: Record<string, unknown>) => r.key_id === "capped"],
        ] as const) {
          const usage = await store.usage(level, now);
          const audited = micros(filter);
          console.log(`budget ${level}: store ${usage.totalMicros} µUSD total / ${usage.dailyMicros} daily, audit ${audited} µUSD`);
          expect(usage.totalMicros).toBe(audited);
          expect(usage.dailyMicros).toBe(audited);
        }
        const cappedUsage = await store.usage("key:capped", now);
        const cappedAdmitted = cappedResults.filter((r) => r.status === 200).length;
        const cappedRefused = cappedResults.filter((r) => r.code === "budget_exceeded").length;
        console.log(`capped: ${cappedAdmitted} admitted, ${cappedRefused} budget_exceeded, spent ${cappedUsage.totalMicros} of ${CAP_MICROS} µUSD`);
        expect(cappedAdmitted + cappedRefused).toBe(cappedResults.length);
        expect(cappedUsage.totalMicros).toBeLessThanOrEqual(CAP_MICROS);
        // Used up to within one call's worst case (≈ 425 µUSD): nothing left stranded in reservations.
        expect(CAP_MICROS - cappedUsage.totalMicros).toBeLessThan(1_000);
      } finally {
        await store.close();
      }
    } finally {
      for (const gw of gateways) await gw.close();
      await mock.close();
    }
  }, 240_000);
});
