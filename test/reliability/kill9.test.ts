import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startMockUpstream } from "../../mock/upstream.js";
import { verifyFiles } from "../../src/audit/verify.js";
import { ADMIN_TOKEN, type CallResult, chatCall, MAIN, sha256Ref, sleep, startGatewayProcess, UPSTREAM_KEY } from "./support.js";

/**
 * kill -9 of a gateway process under load with `fsync: interval`: the chain verifies up to the
 * tail (a torn last line is acceptable only there), and the acknowledged calls missing from the
 * audit all finished within the last `fsync_interval_ms` before the kill.
 */
const FSYNC_MS = 500;
const LOAD_MS = 5_000;
const KEY = "sk-rel-kill9";

interface Line {
  file: string;
  text: string;
  record: Record<string, unknown> | null;
}

function auditLines(dir: string): Line[] {
  const out: Line[] = [];
  for (const file of readdirSync(dir).sort()) {
    const text = readFileSync(join(dir, file), "utf8");
    const parts = text.split("\n");
    parts.forEach((line, i) => {
      if (line === "" && i === parts.length - 1) return;
      let record: Record<string, unknown> | null = null;
      try {
        record = i === parts.length - 1 ? null : (JSON.parse(line) as Record<string, unknown>);
      } catch {
        record = null;
      }
      out.push({ file, text: line, record });
    });
  }
  return out;
}

describe.skipIf(!existsSync(MAIN))("kill -9 under load", () => {
  it("the audit chain verifies up to the tail and at most fsync_interval_ms of acknowledged calls are lost", async () => {
    const mock = await startMockUpstream({ record: false, latencyMs: 2 });
    const auditDir = join(mkdtempSync(join(tmpdir(), "spark-rel-kill9-")), "audit");
    const gw = await startGatewayProcess(`
org: acme
server: { host: 127.0.0.1, port: 1, replica_id: k9 }
admin: { token: ${ADMIN_TOKEN} }
store: { memory: { snapshot: null } }
upstreams:
  openai: { base_url: "${mock.url}", api_key: ${UPSTREAM_KEY}, timeout_seconds: 30 }
models:
  gpt-4o-mini: { upstream: openai, input_per_1m: 0.15, output_per_1m: 0.60 }
keys:
  - { id: k9, key_hash: "${sha256Ref(KEY)}", subject: { user: kay, role: developer, team: t1 }, limits: { daily_cost: 100 } }
audit:
  sinks: [{ file: { dir: "${auditDir}" } }]
  fsync: interval
  fsync_interval_ms: ${FSYNC_MS}
`);
    const calls: Promise<CallResult>[] = [];
    let killAt = 0;
    try {
      const started = Date.now();
      let tick = 0;
      while (Date.now() - started < LOAD_MS) {
        for (let i = 0; i < 10; i++) {
          const stream = i % 2 === 1;
          calls.push(
            chatCall(gw.pool, KEY, {
              model: "gpt-4o-mini",
              messages: [{ role: "user", content: stream ? "tokens:20 chunks:5 delay:20" : "tokens:10" }],
              stream,
            }),
          );
        }
        tick += 1;
        await sleep(Math.max(0, started + tick * 50 - Date.now()));
      }
      killAt = Date.now();
      gw.proc.child.kill("SIGKILL");
      await gw.proc.waitForExit(10_000);
    } finally {
      await gw.pool.destroy().catch(() => undefined);
      await mock.close();
    }
    const results = await Promise.all(calls);
    const acknowledged = results.filter((r) => r.status === 200 && r.complete && r.id !== null);
    const lines = auditLines(auditDir);
    const recorded = new Set(lines.filter((l) => l.record !== null).map((l) => String(l.record!.id)));
    const lost = acknowledged.filter((r) => !recorded.has(r.id!));
    const inLastInterval = acknowledged.filter((r) => r.doneAt >= killAt - FSYNC_MS).length;

    // Chain: OK as a whole, or broken only by a torn last line; the prefix then verifies.
    const verified = await verifyFiles(auditDir);
    let tornTail = false;
    if (!verified.ok) {
      const last = lines.at(-1)!;
      expect(last.record, `broken before the tail: ${JSON.stringify(verified)}`).toBeNull();
      expect(verified.first_broken.reason).toBe("truncated record");
      tornTail = true;
      const copy = join(mkdtempSync(join(tmpdir(), "spark-rel-kill9-prefix-")), "audit");
      mkdirSync(copy);
      for (const file of new Set(lines.map((l) => l.file))) {
        const kept = lines.filter((l) => l.file === file && l.record !== null).map((l) => `${l.text}\n`);
        writeFileSync(join(copy, file), kept.join(""));
      }
      const prefix = await verifyFiles(copy);
      expect(prefix.ok, JSON.stringify(prefix)).toBe(true);
    }
    console.log(
      `kill -9: ${calls.length} sent, ${acknowledged.length} acknowledged, ${recorded.size} audited, lost ${lost.length} (acknowledged within the last ${FSYNC_MS} ms: ${inLastInterval}); chain ${verified.ok ? `ok (${verified.records} records)` : `ok up to a torn tail: ${tornTail}`}`,
    );
    for (const r of lost) expect(r.doneAt, `lost ${r.id} was acknowledged ${killAt - r.doneAt} ms before the kill`).toBeGreaterThanOrEqual(killAt - FSYNC_MS - 250);
    expect(lost.length).toBeLessThanOrEqual(inLastInterval);
    expect(acknowledged.length).toBeGreaterThan(500);
  }, 120_000);
});
