import { mkdtempSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AuditSink } from "../../src/audit/sink.js";
import type { AuditRecord } from "../../src/audit/types.js";
import { AuditWriter, type AuditWriterOptions, MAX_BATCH_SIZE } from "../../src/audit/writer.js";
import { openSink, readRecords } from "./file-helpers.js";
import { makeRecord, silentLogger } from "./fixtures.js";

/** Stores batches; `failures` makes the next N writes reject; `gate` holds writes until released. */
class MemorySink implements AuditSink {
  readonly name: string;
  readonly records: AuditRecord[] = [];
  failures = 0;
  flushes = 0;
  closed = false;
  gate: Promise<void> | null = null;

  constructor(name = "memory") {
    this.name = name;
  }

  async write(batch: readonly AuditRecord[]): Promise<void> {
    if (this.gate !== null) await this.gate;
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error("sink down");
    }
    this.records.push(...batch);
  }

  async flush(): Promise<void> {
    this.flushes += 1;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function makeWriter(sinks: AuditSink[], overrides: Partial<AuditWriterOptions> = {}): AuditWriter {
  return new AuditWriter({ sinks, maxQueue: 10, onFull: "reject", logger: silentLogger, retryMinMs: 1, retryMaxMs: 5, ...overrides });
}

function gated(sink: MemorySink): () => void {
  let release = () => {};
  sink.gate = new Promise((resolve) => {
    release = resolve;
  });
  return () => {
    sink.gate = null;
    release();
  };
}

/** The size of every batch the sink is handed, as it is handed. */
function batchSizes(sink: MemorySink): number[] {
  const sizes: number[] = [];
  const write = sink.write.bind(sink);
  sink.write = (batch) => {
    sizes.push(batch.length);
    return write(batch);
  };
  return sizes;
}

describe("AuditWriter", () => {
  it("never writes a batch larger than MAX_BATCH_SIZE (stream readers rely on it)", async () => {
    const sink = new MemorySink();
    const sizes = batchSizes(sink);
    const writer = makeWriter([sink], { maxQueue: 2000, batchSize: 100_000 });
    for (let index = 0; index < MAX_BATCH_SIZE + 10; index += 1) writer.enqueue(makeRecord());
    await writer.flush();
    expect(sizes).toEqual([MAX_BATCH_SIZE, 10]);
  });

  it("writes every enqueued record to every sink, in order, in batches", async () => {
    const a = new MemorySink("a");
    const b = new MemorySink("b");
    const writer = makeWriter([a, b], { maxQueue: 1000, batchSize: 7 });
    const records = Array.from({ length: 50 }, () => makeRecord());
    for (const record of records) expect(writer.enqueue(record)).toBe(true);
    await writer.flush();
    expect(a.records).toEqual(records);
    expect(b.records).toEqual(records);
    expect(writer.stats()).toEqual({ depth: 0, dropped: 0, written: 50, sinkErrors: 0 });
    expect(a.flushes).toBe(1);
  });

  it("on_full reject: canAccept turns false at max_queue, admitted records are still kept", async () => {
    const sink = new MemorySink();
    const release = gated(sink);
    const writer = makeWriter([sink], { maxQueue: 10, overflow: 3 });
    for (let index = 0; index < 10; index += 1) writer.enqueue(makeRecord());
    expect(writer.canAccept()).toBe(false);
    // The 503 refusals' own records fit in the overflow; past it they are dropped and counted.
    const refusal = () => makeRecord({ status: 503, error_code: "audit_unavailable" });
    expect([writer.enqueue(refusal()), writer.enqueue(refusal()), writer.enqueue(refusal())]).toEqual([true, true, true]);
    expect(writer.enqueue(refusal())).toBe(false);
    // A call admitted while the queue had room keeps its record however full the queue is now.
    expect([writer.enqueue(makeRecord()), writer.enqueue(makeRecord({ status: 401, error_code: "invalid_api_key" }))]).toEqual([true, true]);
    expect(writer.stats()).toMatchObject({ depth: 15, dropped: 1 });
    release();
    await writer.flush();
    expect(writer.canAccept()).toBe(true);
    expect(sink.records).toHaveLength(15);
  });

  it("on_full drop: always accepts calls and counts the records it drops", async () => {
    const sink = new MemorySink();
    const release = gated(sink);
    const writer = makeWriter([sink], { maxQueue: 5, onFull: "drop" });
    const accepted = Array.from({ length: 8 }, () => writer.enqueue(makeRecord()));
    expect(accepted.filter(Boolean)).toHaveLength(5);
    expect(writer.canAccept()).toBe(true);
    expect(writer.stats()).toMatchObject({ depth: 5, dropped: 3 });
    release();
    await writer.close();
    expect(sink.records).toHaveLength(5);
  });

  it("close() waits for everything enqueued, flushes and closes the sinks", async () => {
    const sink = new MemorySink();
    const writer = makeWriter([sink], { maxQueue: 100_000, batchSize: 100 });
    for (let index = 0; index < 5000; index += 1) writer.enqueue(makeRecord());
    await writer.close();
    expect(sink.records).toHaveLength(5000);
    expect(sink.flushes).toBeGreaterThan(0);
    expect(sink.closed).toBe(true);
    expect(writer.enqueue(makeRecord())).toBe(false);
    expect(writer.stats()).toMatchObject({ depth: 0, written: 5000, dropped: 1 });
  });

  it("close(limit) gives up on a sink that stays down: counts the records as dropped and still closes", async () => {
    const sink = new MemorySink();
    sink.failures = Number.POSITIVE_INFINITY;
    const writer = makeWriter([sink], { maxQueue: 100 });
    for (let index = 0; index < 4; index += 1) writer.enqueue(makeRecord());
    // Without the limit this close would never resolve (the test's timeout would fail it).
    await writer.close(80);
    expect(sink.closed).toBe(true);
    expect(writer.stats()).toMatchObject({ written: 0, dropped: 4 });
    const errorsAtClose = writer.stats().sinkErrors;
    await new Promise((resolve) => setTimeout(resolve, 30));
    // No retry keeps running after the close.
    expect(writer.stats().sinkErrors).toBe(errorsAtClose);
  });

  it("close(limit) still hands a healthy sink what a down sink held back: only the down sink loses them", async () => {
    for (const hang of [false, true]) {
      const healthy = new MemorySink("file");
      const down = new MemorySink("stream");
      if (hang) gated(down);
      else down.failures = Number.POSITIVE_INFINITY;
      const writer = makeWriter([healthy, down], { maxQueue: 100, batchSize: 2 });
      const records = Array.from({ length: 5 }, () => makeRecord());
      for (const record of records) writer.enqueue(record);
      await writer.close(60);
      expect(healthy.records.map((r) => r.id), `hanging: ${hang}`).toEqual(records.map((r) => r.id));
      expect(down.records).toEqual([]);
      expect(healthy.closed).toBe(true);
    }
  });

  it("retries a failing sink without losing or duplicating records, counting the errors", async () => {
    const healthy = new MemorySink("healthy");
    const failing = new MemorySink("failing");
    failing.failures = 3;
    const writer = makeWriter([healthy, failing], { maxQueue: 100, batchSize: 4 });
    const records = Array.from({ length: 10 }, () => makeRecord());
    for (const record of records) writer.enqueue(record);
    await writer.flush();
    expect(failing.records).toEqual(records);
    // The sink that succeeded is not written twice while the other is retried.
    expect(healthy.records).toEqual(records);
    expect(writer.stats()).toEqual({ depth: 0, dropped: 0, written: 10, sinkErrors: 3 });
  });

  it("lets no sink that is down hold back another: the healthy one stores each record as it comes, the other catches up in order", async () => {
    const file = new MemorySink("file");
    const stream = new MemorySink("stream");
    stream.failures = Number.POSITIVE_INFINITY;
    const writer = makeWriter([file, stream], { maxQueue: 100, batchSize: 3, retryMinMs: 2, retryMaxMs: 2 });
    const records = Array.from({ length: 7 }, () => makeRecord());
    for (const record of records.slice(0, 4)) writer.enqueue(record);
    await writer.caughtUp();
    expect(file.records).toEqual(records.slice(0, 4));
    for (const record of records.slice(4)) writer.enqueue(record);
    await writer.caughtUp();
    expect(file.records).toEqual(records);
    expect(stream.records).toEqual([]);
    // Still owed to the stream: the records stay queued and count against the bound.
    expect(writer.stats()).toMatchObject({ depth: 7, written: 0 });
    expect(writer.healthy()).toBe(false);
    stream.failures = 0;
    await writer.flush();
    expect(stream.records).toEqual(records);
    expect(file.records).toEqual(records);
    expect(writer.stats()).toMatchObject({ depth: 0, written: 7 });
    expect(writer.healthy()).toBe(true);
  });

  it("stored() waits for the sinks on this machine's disk only, and for every sink where none is", async () => {
    const dir = mkdtempSync(join(tmpdir(), "spark-writer-"));
    const file = await openSink(dir);
    const stream = new MemorySink("stream");
    stream.failures = Number.POSITIVE_INFINITY;
    const writer = makeWriter([file, stream], { maxQueue: 100 });
    const record = makeRecord();
    writer.enqueue(record);
    await writer.stored();
    expect((await readRecords(join(dir, (await readdir(dir)).find((f) => f.endsWith(".jsonl"))!))).map((r) => r.id)).toEqual([record.id]);
    expect(stream.records).toEqual([]);
    await writer.close(20);

    const remote = new MemorySink("stream");
    const release = gated(remote);
    const remoteOnly = makeWriter([remote], { maxQueue: 100 });
    remoteOnly.enqueue(makeRecord());
    let stored = false;
    const waiting = remoteOnly.stored().then(() => {
      stored = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stored).toBe(false);
    release();
    await waiting;
    expect(remote.records).toHaveLength(1);
  });

  it("is unhealthy while a sink cannot store records, healthy again once a batch is stored", async () => {
    const failing = new MemorySink("failing");
    failing.failures = 1_000_000;
    const writer = makeWriter([failing], { maxQueue: 100, retryMinMs: 5, retryMaxMs: 5 });
    expect(writer.healthy()).toBe(true);
    writer.enqueue(makeRecord());
    await writer.caughtUp();
    expect(writer.healthy()).toBe(false);
    failing.failures = 0;
    await writer.flush();
    expect(writer.healthy()).toBe(true);
  });

  it("keeps records queued while a sink is down, so the bound pushes back", async () => {
    const sink = new MemorySink();
    sink.failures = Number.POSITIVE_INFINITY;
    const writer = makeWriter([sink], { maxQueue: 3, retryMinMs: 1, retryMaxMs: 2 });
    for (let index = 0; index < 3; index += 1) writer.enqueue(makeRecord());
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(writer.canAccept()).toBe(false);
    expect(writer.stats().sinkErrors).toBeGreaterThan(1);
    sink.failures = 0;
    await writer.flush();
    expect(sink.records).toHaveLength(3);
    expect(writer.canAccept()).toBe(true);
  });

  it("enqueue returns before any sink is called", () => {
    const sink = new MemorySink();
    const writer = makeWriter([sink]);
    writer.enqueue(makeRecord());
    expect(sink.records).toHaveLength(0);
    expect(writer.stats().depth).toBe(1);
  });

  it("writes a record at once after a quiet spell, and gathers those that follow within the linger", async () => {
    const sink = new MemorySink();
    const sizes = batchSizes(sink);
    const writer = makeWriter([sink], { maxQueue: 100, lingerMs: 40 });
    writer.enqueue(makeRecord());
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(sizes).toEqual([1]);
    writer.enqueue(makeRecord());
    writer.enqueue(makeRecord());
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(sink.records).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(sizes).toEqual([1, 2]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    writer.enqueue(makeRecord());
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(sizes).toEqual([1, 2, 1]);
  });

  it("writes a full batch, a flush and a query's wait at once, without lingering", async () => {
    const sink = new MemorySink();
    const writer = makeWriter([sink], { maxQueue: 100, batchSize: 4, lingerMs: 60_000 });
    writer.enqueue(makeRecord());
    await writer.caughtUp();
    for (let index = 0; index < 4; index += 1) writer.enqueue(makeRecord());
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(sink.records).toHaveLength(5);
    writer.enqueue(makeRecord());
    await writer.caughtUp();
    expect(sink.records).toHaveLength(6);
    writer.enqueue(makeRecord());
    await writer.flush();
    expect(sink.records).toHaveLength(7);
    await writer.close();
  });

  it("caughtUp gives up on a failing sink instead of waiting for it, while flush keeps waiting", async () => {
    const sink = new MemorySink();
    sink.failures = Number.POSITIVE_INFINITY;
    const writer = makeWriter([sink], { maxQueue: 100, retryMinMs: 20, retryMaxMs: 20 });
    writer.enqueue(makeRecord());
    await writer.caughtUp();
    expect(sink.records).toHaveLength(0);
    await writer.caughtUp();
    let flushed = false;
    const flushing = writer.flush().then(() => {
      flushed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(flushed).toBe(false);
    sink.failures = 0;
    await flushing;
    expect(sink.records).toHaveLength(1);
  });
});
