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
  /** Resolves once the `lanes` have stored this many records. */
  target: number;
  lanes: readonly Lane[];
  /** A lane whose write failed (a retry is pending) counts as done: a query reads what the sinks hold. */
  lenient: boolean;
  resolve: () => void;
}

/** One sink's progress through the queue: every sink takes the records at its own pace. */
interface Lane {
  sink: AuditSink;
  /** How many records (counted from the first ever accepted) this sink has stored. */
  stored: number;
  /** The batch being written or retried: the very same array on every try (see `AuditSink`). */
  batch: readonly AuditRecord[] | null;
  draining: boolean;
  /** A write failed and no batch has been stored since. */
  failing: boolean;
  retryTimer: NodeJS.Timeout | null;
  retryDelay: number;
  lingerTimer: NodeJS.Timeout | null;
  /** When this lane's last batch was taken (ms, monotonic). */
  lastBatchAt: number;
}

/**
 * The only way records reach the sinks. `enqueue` is synchronous and cheap (the request path never
 * waits for audit I/O); each sink has a lane of its own that serialises and writes batches, one at
 * a time, in order. A record leaves the queue only when every sink has stored it, so a failing sink
 * holds records (retried with backoff) instead of losing them, until the queue bound pushes back;
 * and a sink that is down (a Redis stream while Redis is away) holds back no other: the file goes on
 * taking every record as it comes, so a crash meanwhile loses no more from it than it would anyway.
 */
export class AuditWriter {
  private readonly logger: Logger;
  private readonly onFull: AuditConfig["on_full"];
  private readonly maxQueue: number;
  private readonly hardLimit: number;
  private readonly batchSize: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly lanes: Lane[];
  /** The sinks on this machine's disk: what an answer under `fsync: always` waits for (all, where none is). */
  private readonly durableLanes: Lane[];
  /** Records not yet stored by every sink; `queue[0]` is the `base`-th record ever accepted. */
  private queue: AuditRecord[] = [];
  private base = 0;
  private accepted = 0;
  private dropped = 0;
  private sinkErrors = 0;
  private readonly lingerMs: number;
  /** Records up to this count are wanted now (a flush or a query waits): no lingering until written. */
  private urgentUpTo = 0;
  private waiters: Waiter[] = [];
  private closed = false;

  constructor(options: AuditWriterOptions) {
    this.logger = options.logger;
    this.onFull = options.onFull;
    this.maxQueue = options.maxQueue;
    const overflow = options.overflow ?? Math.max(1, Math.ceil(options.maxQueue / 10));
    this.hardLimit = options.onFull === "reject" ? options.maxQueue + overflow : options.maxQueue;
    this.batchSize = Math.min(options.batchSize ?? MAX_BATCH_SIZE, MAX_BATCH_SIZE);
    this.retryMinMs = options.retryMinMs ?? 100;
    this.retryMaxMs = options.retryMaxMs ?? 5_000;
    this.lingerMs = options.lingerMs ?? 0;
    this.lanes = options.sinks.map((sink) => ({
      sink,
      stored: 0,
      batch: null,
      draining: false,
      failing: false,
      retryTimer: null,
      retryDelay: this.retryMinMs,
      lingerTimer: null,
      lastBatchAt: Number.NEGATIVE_INFINITY,
    }));
    const local = this.lanes.filter((lane) => lane.sink.local === true);
    this.durableLanes = local.length > 0 ? local : this.lanes;
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
    return !this.lanes.some((lane) => lane.failing);
  }

  stats(): AuditWriterStats {
    return { depth: this.depth, dropped: this.dropped, written: this.written, sinkErrors: this.sinkErrors };
  }

  /** Resolves once every record enqueued before the call is stored by every sink and fsynced. */
  async flush(): Promise<void> {
    await this.reach(this.accepted, this.lanes, false);
    await Promise.all(this.lanes.map((lane) => lane.sink.flush()));
  }

  /**
   * Resolves once every record enqueued before the call is stored by the sinks on this machine's
   * disk (every sink, where none is): on disk where the file sink syncs each batch (`fsync: always`).
   * A Redis stream that is down does not hold answers back; it gets the records once it is back.
   */
  stored(): Promise<void> {
    return this.reach(this.accepted, this.durableLanes, false);
  }

  /** `stored`, or the end of `ms`, whichever comes first. */
  async storedWithin(ms: number): Promise<void> {
    await withinLimit(this.stored(), ms);
  }

  /**
   * Resolves once every record enqueued before the call was handed to every sink (not fsynced) that
   * is taking records: a query then reads its own calls' records, or whatever a failing sink holds.
   */
  caughtUp(): Promise<void> {
    return this.reach(this.accepted, this.lanes, true);
  }

  /** `caughtUp`, or the end of `ms`, whichever comes first. */
  async caughtUpWithin(ms: number): Promise<void> {
    await withinLimit(this.caughtUp(), ms);
  }

  private reach(target: number, lanes: readonly Lane[], lenient: boolean): Promise<void> {
    const waiter: Waiter = { target, lanes, lenient, resolve: () => undefined };
    if (reached(waiter)) return Promise.resolve();
    this.urgentUpTo = Math.max(this.urgentUpTo, target);
    const done = new Promise<void>((resolve) => {
      waiter.resolve = resolve;
    });
    this.waiters.push(waiter);
    this.schedule();
    return done;
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
    for (const lane of this.lanes) {
      if (lane.retryTimer !== null) clearTimeout(lane.retryTimer);
      if (lane.lingerTimer !== null) clearTimeout(lane.lingerTimer);
    }
    if (!inTime) {
      this.dropped += this.accepted - this.written;
      await this.salvage(SALVAGE_MS);
    }
    await withinLimit(Promise.all(this.lanes.map((lane) => lane.sink.close())), inTime ? limitMs : 0);
  }

  /**
   * At a shutdown that ran out of time, each sink still answering gets what it has not stored, in
   * order. Only the sinks that cannot take them lose them, and the log says which.
   */
  private async salvage(limitMs: number): Promise<void> {
    await Promise.all(
      this.lanes.map(async (lane) => {
        const owed = this.accepted - lane.stored;
        if (owed === 0) return;
        // A sink still owing a batch it was given is the one that is down: it is not waited on again.
        if (lane.batch !== null) return this.reportLost(lane.sink, owed);
        const left = this.queue.slice(lane.stored - this.base);
        const stored = await withinLimit(this.writeAll(lane.sink, left), limitMs).catch(() => false);
        if (!stored) this.reportLost(lane.sink, left.length);
      }),
    );
  }

  private async writeAll(sink: AuditSink, records: readonly AuditRecord[]): Promise<void> {
    for (let at = 0; at < records.length; at += this.batchSize) await sink.write(records.slice(at, at + this.batchSize));
  }

  private reportLost(sink: AuditSink, unwritten: number): void {
    this.logger.error({ sink: sink.name, unwritten }, "audit sink did not take every record before shutdown; those records are lost from it");
  }

  /** Records every sink has stored. */
  private get written(): number {
    let least = this.accepted;
    for (const lane of this.lanes) least = Math.min(least, lane.stored);
    return least;
  }

  private get depth(): number {
    return this.accepted - this.written;
  }

  private schedule(): void {
    for (const lane of this.lanes) this.scheduleLane(lane);
  }

  /** Writes now when a batch is full, wanted (flush, query) or retried, or the linger period has passed; else lingers. */
  private scheduleLane(lane: Lane): void {
    // Closed, the writer writes nothing more itself (a retry whose timer had fired included): the close salvages what is left.
    if (this.closed || lane.draining || lane.retryTimer !== null || lane.stored === this.accepted) return;
    if (!this.writeNow(lane)) {
      this.linger(lane);
      return;
    }
    if (lane.lingerTimer !== null) {
      clearTimeout(lane.lingerTimer);
      lane.lingerTimer = null;
    }
    lane.draining = true;
    setImmediate(() => void this.drain(lane));
  }

  private writeNow(lane: Lane): boolean {
    return (
      lane.batch !== null ||
      this.accepted - lane.stored >= this.batchSize ||
      lane.stored < this.urgentUpTo ||
      performance.now() - lane.lastBatchAt >= this.lingerMs
    );
  }

  /** Waits out the rest of the linger period since the lane's last batch, then writes whatever came. */
  private linger(lane: Lane): void {
    lane.lingerTimer ??= setTimeout(
      () => {
        lane.lingerTimer = null;
        if (lane.draining || lane.retryTimer !== null) return;
        lane.draining = true;
        void this.drain(lane);
      },
      Math.max(1, lane.lastBatchAt + this.lingerMs - performance.now()),
    );
  }

  /** Writes the lane's batches while it owes records; a partial batch after the first lingers again. */
  private async drain(lane: Lane): Promise<void> {
    let first = true;
    try {
      while (lane.stored < this.accepted && !this.closed) {
        if (!first && !this.writeNow(lane)) {
          this.linger(lane);
          return;
        }
        first = false;
        if (lane.batch === null) {
          lane.lastBatchAt = performance.now();
          const from = lane.stored - this.base;
          lane.batch = this.queue.slice(from, from + this.batchSize);
        }
        if (!(await this.write(lane, lane.batch))) {
          this.retryLater(lane);
          return;
        }
        lane.retryDelay = this.retryMinMs;
        lane.failing = false;
        lane.stored += lane.batch.length;
        lane.batch = null;
        this.release();
      }
    } finally {
      lane.draining = false;
    }
  }

  private async write(lane: Lane, batch: readonly AuditRecord[]): Promise<boolean> {
    try {
      await lane.sink.write(batch);
      return true;
    } catch (error) {
      this.sinkErrors += 1;
      lane.failing = true;
      this.logger.error({ err: error, sink: lane.sink.name, records: batch.length, depth: this.depth }, "audit sink write failed; will retry");
      return false;
    }
  }

  private retryLater(lane: Lane): void {
    this.settleWaiters();
    if (this.closed) return;
    const delay = lane.retryDelay;
    lane.retryDelay = Math.min(lane.retryDelay * 2, this.retryMaxMs);
    lane.retryTimer = setTimeout(() => {
      lane.retryTimer = null;
      this.scheduleLane(lane);
    }, delay);
  }

  /** Lets go of the records every sink has stored, and wakes whoever waited for them. */
  private release(): void {
    const done = this.written - this.base;
    // Compact now and then so the array does not keep every record ever written.
    if (done > 4096 && done * 2 > this.queue.length) {
      this.queue = this.queue.slice(done);
      this.base += done;
    }
    this.settleWaiters();
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    const ready: Waiter[] = [];
    const waiting: Waiter[] = [];
    for (const waiter of this.waiters) (reached(waiter) ? ready : waiting).push(waiter);
    this.waiters = waiting;
    for (const waiter of ready) waiter.resolve();
  }
}

function reached(waiter: Waiter): boolean {
  return waiter.lanes.every((lane) => lane.stored >= waiter.target || (waiter.lenient && lane.failing));
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
