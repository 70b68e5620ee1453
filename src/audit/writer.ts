import type { Logger } from "pino";
import type { AuditConfig } from "../config/schema.js";
import type { AuditSink } from "./sink.js";
import type { AuditRecord } from "./types.js";

export interface AuditWriterOptions {
  sinks: readonly AuditSink[];
  maxQueue: number;
  onFull: AuditConfig["on_full"];
  logger: Logger;
  /** Records per sink write (one file append, one Redis pipeline); at most `MAX_BATCH_SIZE`. */
  batchSize?: number;
  /**
   * With `on_full: reject`, the records of the 503 refusals themselves are kept past `max_queue` up
   * to this many more; past that they are dropped and counted. Every other record is kept: its
   * request was admitted while the queue had room, so there are at most as many as calls in flight.
   * Default: a tenth of `max_queue` (at least 1).
   */
  overflow?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  /**
   * Batches start at most this often (`audit.batch_linger_ms`; default 0, no limit): a record
   * that comes longer than this after the last batch started is written at once, one that comes
   * sooner waits for the period to end, gathering the others. A full batch, `flush` and
   * `caughtUp` do not wait.
   */
  lingerMs?: number;
}

/**
 * The largest (and default) batch. Readers of the Redis stream rely on this bound: a retried batch
 * can repeat at most this many records.
 */
export const MAX_BATCH_SIZE = 512;

/** How long a shutdown that ran out of time still gives the sinks that answer to take what is left. */
const SALVAGE_MS = 2000;

export interface AuditWriterStats {
  depth: number;
  dropped: number;
  written: number;
  sinkErrors: number;
}

interface Waiter {
  /** Resolves once this many records were written. */
  target: number;
  lenient: boolean;
  resolve: () => void;
}

interface InFlight {
  records: readonly AuditRecord[];
  /** Sinks that have not yet stored this batch: a retry goes to these only. */
  pending: Set<AuditSink>;
}

/**
 * The only way records reach the sinks. `enqueue` is synchronous and cheap (the request path never
 * waits for audit I/O); a background loop serialises and writes batches, one at a time, to every
 * sink. A batch leaves the queue only when every sink has stored it, so a failing sink holds
 * records (retried with backoff) instead of losing them, until the queue bound pushes back.
 */
export class AuditWriter {
  private readonly sinks: readonly AuditSink[];
  private readonly logger: Logger;
  private readonly onFull: AuditConfig["on_full"];
  private readonly maxQueue: number;
  private readonly hardLimit: number;
  private readonly batchSize: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private queue: AuditRecord[] = [];
  private head = 0;
  private inFlight: InFlight | null = null;
  private accepted = 0;
  private written = 0;
  private dropped = 0;
  private sinkErrors = 0;
  private draining = false;
  private retryTimer: NodeJS.Timeout | null = null;
  /** A sink's write failed and no batch has been stored since. */
  private failing = false;
  private retryDelay: number;
  private readonly lingerMs: number;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** When the last batch was taken (ms, monotonic). */
  private lastBatchAt = Number.NEGATIVE_INFINITY;
  /** Records up to this count are wanted now (a flush or a query waits): no lingering until written. */
  private urgentUpTo = 0;
  /** `lenient` waiters (queries) also resolve when a write fails: they read what the sinks hold. */
  private waiters: Waiter[] = [];
  private closed = false;

  constructor(options: AuditWriterOptions) {
    this.sinks = options.sinks;
    this.logger = options.logger;
    this.onFull = options.onFull;
    this.maxQueue = options.maxQueue;
    const overflow = options.overflow ?? Math.max(1, Math.ceil(options.maxQueue / 10));
    this.hardLimit = options.onFull === "reject" ? options.maxQueue + overflow : options.maxQueue;
    this.batchSize = Math.min(options.batchSize ?? MAX_BATCH_SIZE, MAX_BATCH_SIZE);
    this.retryMinMs = options.retryMinMs ?? 100;
    this.retryMaxMs = options.retryMaxMs ?? 5_000;
    this.retryDelay = this.retryMinMs;
    this.lingerMs = options.lingerMs ?? 0;
  }

  /** Admission check for `on_full: reject`: false means answer 503 `audit_unavailable`. */
  canAccept(): boolean {
    return this.onFull === "drop" || (!this.closed && this.depth < this.maxQueue);
  }

  /** Queues a record without waiting; false when it was dropped (queue full or writer closed). */
  enqueue(record: AuditRecord): boolean {
    const droppable = this.onFull === "drop" || record.error_code === "audit_unavailable";
    if (this.closed || (droppable && this.depth >= this.hardLimit)) {
      if (this.dropped === 0) this.logger.error({ depth: this.depth }, this.closed ? "audit writer closed: dropping records" : "audit queue full: dropping records");
      this.dropped += 1;
      return false;
    }
    this.queue.push(record);
    this.accepted += 1;
    this.schedule();
    return true;
  }

  /** False while a sink cannot store records (they wait in the queue, retried): the replica is not ready. */
  healthy(): boolean {
    return !this.failing;
  }

  stats(): AuditWriterStats {
    return { depth: this.depth, dropped: this.dropped, written: this.written, sinkErrors: this.sinkErrors };
  }

  /** Resolves once every record enqueued before the call is stored by every sink and fsynced. */
  async flush(): Promise<void> {
    await this.reach(this.accepted, false);
    await Promise.all(this.sinks.map((sink) => sink.flush()));
  }

  /**
   * Resolves once every record enqueued before the call is stored by every sink: on disk where the
   * file sink syncs each batch (`fsync: always`).
   */
  stored(): Promise<void> {
    return this.reach(this.accepted, false);
  }

  /** `stored`, or the end of `ms`, whichever comes first. */
  async storedWithin(ms: number): Promise<void> {
    await withinLimit(this.stored(), ms);
  }

  /**
   * Resolves once every record enqueued before the call was handed to every sink (not fsynced), or
   * once a write fails: a query then reads its own calls' records, or whatever a failing sink holds.
   */
  caughtUp(): Promise<void> {
    // A sink failing right now (a retry is pending) would only make the reader wait for the next failure.
    if (this.retryTimer !== null) return Promise.resolve();
    return this.reach(this.accepted, true);
  }

  /** `caughtUp`, or the end of `ms`, whichever comes first. */
  async caughtUpWithin(ms: number): Promise<void> {
    await withinLimit(this.caughtUp(), ms);
  }

  private reach(target: number, lenient: boolean): Promise<void> {
    if (this.written >= target) return Promise.resolve();
    this.urgentUpTo = Math.max(this.urgentUpTo, target);
    const reached = new Promise<void>((resolve) => this.waiters.push({ target, lenient, resolve }));
    this.schedule();
    return reached;
  }

  /**
   * Flushes everything (including records enqueued while flushing), then closes the sinks. A sink
   * that cannot take the records within `limitMs` (a Redis stream that is down) does not hold the
   * shutdown forever: what is left is counted and logged as lost.
   */
  async close(limitMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.closed) return;
    const flushed = async (): Promise<void> => {
      do await this.flush();
      while (this.written < this.accepted);
    };
    const inTime = await withinLimit(flushed(), limitMs);
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    if (!inTime) {
      this.dropped += this.accepted - this.written;
      await this.salvage(SALVAGE_MS);
    }
    await withinLimit(Promise.all(this.sinks.map((sink) => sink.close())), inTime ? limitMs : 0);
  }

  /**
   * At a shutdown that ran out of time, one sink down (a Redis stream) must not cost the others the
   * records it held back: each sink still answering gets what it has not stored, in order. Only the
   * sinks that cannot take them lose them, and the log says which.
   */
  private async salvage(limitMs: number): Promise<void> {
    const inFlight = this.inFlight;
    await Promise.all(
      this.sinks.map(async (sink) => {
        // A sink still owing the batch in flight is the one that is down: it is not waited on again.
        if (inFlight?.pending.has(sink) === true) return this.reportLost(sink, this.depth);
        const from = this.head + (inFlight === null ? 0 : inFlight.records.length);
        const left = this.queue.slice(from);
        if (left.length === 0) return;
        const stored = await withinLimit(this.writeAll(sink, left), limitMs).catch(() => false);
        if (!stored) this.reportLost(sink, left.length);
      }),
    );
  }

  private async writeAll(sink: AuditSink, records: readonly AuditRecord[]): Promise<void> {
    for (let at = 0; at < records.length; at += this.batchSize) await sink.write(records.slice(at, at + this.batchSize));
  }

  private reportLost(sink: AuditSink, unwritten: number): void {
    this.logger.error({ sink: sink.name, unwritten }, "audit sink did not take every record before shutdown; those records are lost from it");
  }

  private get depth(): number {
    return this.queue.length - this.head;
  }

  /** Writes now when a batch is full, wanted (flush, query) or retried, or the linger period has passed; else lingers. */
  private schedule(): void {
    // Closed, the writer writes nothing more itself (a retry whose timer had fired included): the close salvages what is left.
    if (this.closed || this.draining || this.retryTimer !== null) return;
    if (!this.writeNow()) {
      this.linger();
      return;
    }
    if (this.lingerTimer !== null) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    this.draining = true;
    setImmediate(() => void this.drain());
  }

  private writeNow(): boolean {
    return (
      this.inFlight !== null ||
      this.depth >= this.batchSize ||
      this.written < this.urgentUpTo ||
      performance.now() - this.lastBatchAt >= this.lingerMs
    );
  }

  /** Waits out the rest of the linger period since the last batch, then writes whatever came. */
  private linger(): void {
    this.lingerTimer ??= setTimeout(
      () => {
        this.lingerTimer = null;
        if (this.draining || this.retryTimer !== null) return;
        this.draining = true;
        void this.drain();
      },
      Math.max(1, this.lastBatchAt + this.lingerMs - performance.now()),
    );
  }

  /** Writes batches while there are records; a partial batch after the first lingers again. */
  private async drain(): Promise<void> {
    let first = true;
    try {
      while (this.depth > 0 && !this.closed) {
        if (!first && !this.writeNow()) {
          this.linger();
          return;
        }
        first = false;
        if (this.inFlight === null) {
          this.lastBatchAt = performance.now();
          const records = this.queue.slice(this.head, this.head + this.batchSize);
          this.inFlight = { records, pending: new Set(this.sinks) };
        }
        if (!(await this.writeInFlight(this.inFlight))) {
          this.retryLater();
          return;
        }
        this.retryDelay = this.retryMinMs;
        this.release(this.inFlight.records.length);
        this.inFlight = null;
      }
    } finally {
      this.draining = false;
    }
  }

  private async writeInFlight(batch: InFlight): Promise<boolean> {
    await Promise.all(
      [...batch.pending].map(async (sink) => {
        try {
          await sink.write(batch.records);
          batch.pending.delete(sink);
        } catch (error) {
          this.sinkErrors += 1;
          this.failing = true;
          this.logger.error(
            { err: error, sink: sink.name, records: batch.records.length, depth: this.depth },
            "audit sink write failed; will retry",
          );
        }
      }),
    );
    return batch.pending.size === 0;
  }

  private retryLater(): void {
    this.settleWaiters((waiter) => waiter.lenient || waiter.target <= this.written);
    if (this.closed) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.retryMaxMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.schedule();
    }, delay);
  }

  private release(count: number): void {
    this.failing = false;
    this.head += count;
    this.written += count;
    // Compact now and then so the array does not keep every record ever written.
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.settleWaiters((waiter) => waiter.target <= this.written);
  }

  private settleWaiters(done: (waiter: Waiter) => boolean): void {
    const ready = this.waiters.filter(done);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => !done(waiter));
    for (const waiter of ready) waiter.resolve();
  }
}

/** True when `work` ended within `limitMs`; false (and `work` left to finish or fail alone) when not. */
async function withinLimit(work: Promise<unknown>, limitMs: number): Promise<boolean> {
  if (limitMs === Number.POSITIVE_INFINITY) {
    await work;
    return true;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), limitMs);
  });
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
