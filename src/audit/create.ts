import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { AuditConfig } from "../config/schema.js";
import { FileSink } from "./file-sink.js";
import { LogSink } from "./log-sink.js";
import type { AuditPage, AuditQuery, AuditRange } from "./query.js";
import { queryFiles, scanFiles } from "./query-files.js";
import { queryStream, scanStream } from "./query-stream.js";
import { RedisStreamSink } from "./redis-stream-sink.js";
import type { AuditSink } from "./sink.js";
import type { AuditRecord } from "./types.js";
import { type VerifyResult, verifyFiles } from "./verify.js";
import { verifyStream } from "./verify-stream.js";
import { AuditWriter } from "./writer.js";

export interface AuditDeps {
  replica: string;
  logger: Logger;
  /** Builds the connection for a `redis_stream` sink (its `url`, else the store's); the caller closes it. */
  redisFor?: (url: string | undefined) => Redis;
  now?: () => number;
}

export interface Audit {
  writer: AuditWriter;
  /** `GET /admin/audit` and its shortcuts: the Redis stream when configured (every replica), else this replica's files. */
  query(query: AuditQuery): Promise<AuditPage>;
  /**
   * Every record with `ts` in the range, from the same source as `query`, in storage order (not
   * `ts` order): each file or stream entry is read once, so a report over a long range is linear.
   */
  scan(range: AuditRange): AsyncIterable<AuditRecord>;
  /**
   * `GET /admin/audit/verify` over the first file sink's directory (every replica's files in it),
   * then the Redis stream sink's entries (every replica's chain in it).
   */
  verify(): Promise<VerifyResult>;
  /** Flushes and closes the writer and its sinks (not the Redis connections), giving up after `limitMs`. */
  close(limitMs?: number): Promise<void>;
}

/** How long an audit read waits for the records still being written before it reads what is stored. */
const READ_WAIT_MS = 2000;

/** Builds and starts the configured sinks and the writer in front of them. */
export async function createAudit(config: AuditConfig, deps: AuditDeps): Promise<Audit> {
  const sinks: AuditSink[] = [];
  let files: { dir: string; sink: FileSink } | null = null;
  let stream: { redis: Redis; key: string } | null = null;
  try {
    for (const entry of config.sinks) {
      if ("file" in entry) {
        const sink = new FileSink({
          dir: entry.file.dir,
          replica: deps.replica,
          retentionDays: entry.file.retention_days,
          fsync: config.fsync,
          fsyncIntervalMs: config.fsync_interval_ms,
          logger: deps.logger,
          ...(deps.now === undefined ? {} : { now: deps.now }),
        });
        await sink.start();
        sinks.push(sink);
        files ??= { dir: entry.file.dir, sink };
      } else if ("redis_stream" in entry) {
        if (deps.redisFor === undefined) throw new Error("audit sink `redis_stream` needs a Redis connection");
        const redis = deps.redisFor(entry.redis_stream.url);
        sinks.push(new RedisStreamSink(redis, { key: entry.redis_stream.key, maxLen: entry.redis_stream.max_len, replica: deps.replica }));
        stream ??= { redis, key: entry.redis_stream.key };
      } else {
        sinks.push(new LogSink(deps.logger));
      }
    }
  } catch (error) {
    await Promise.allSettled(sinks.map((sink) => sink.close()));
    throw error;
  }
  const writer = new AuditWriter({ sinks, maxQueue: config.max_queue, onFull: config.on_full, logger: deps.logger, lingerMs: config.batch_linger_ms });
  const chosenFiles = files;
  const chosenStream = stream;
  // Reads first wait for the records of calls already answered, which the writer may still hold
  // (behind a batch in flight, or `batch_linger_ms`), but not for a sink that hangs: past a short
  // wait they read what is stored.
  const caughtUp = (): Promise<void> => writer.caughtUpWithin(READ_WAIT_MS);
  return {
    writer,
    query: async (query) => {
      await caughtUp();
      if (chosenStream !== null) return queryStream(chosenStream.redis, chosenStream.key, query);
      if (chosenFiles !== null) return queryFiles(chosenFiles.dir, deps.replica, query);
      return { data: [], next_cursor: null };
    },
    scan: async function* (range) {
      await caughtUp();
      if (chosenStream !== null) yield* scanStream(chosenStream.redis, chosenStream.key, range);
      else if (chosenFiles !== null) yield* scanFiles(chosenFiles.dir, deps.replica, range);
    },
    verify: async () => {
      await caughtUp();
      // Taken together: the bytes to read and the heads they must end at.
      const files = chosenFiles === null ? null : await verifyFiles(chosenFiles.dir, undefined, { sizes: chosenFiles.sink.committedSizes(), heads: chosenFiles.sink.heads() });
      if (files !== null && !files.ok) return files;
      // The stream holds every replica's records, as queries read them: its count is the one given.
      if (chosenStream !== null) return verifyStream(chosenStream.redis, chosenStream.key);
      return files ?? { ok: true, records: 0 };
    },
    close: (limitMs) => writer.close(limitMs),
  };
}
