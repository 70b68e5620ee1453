import type { Redis } from "ioredis";
import { chainLine, GENESIS_HASH } from "./chain.js";
import type { AuditSink } from "./sink.js";
import type { AuditRecord } from "./types.js";

export interface RedisStreamSinkOptions {
  key: string;
  /** Approximate trim (`MAXLEN ~`): Redis trims whole macro nodes, cheaply. */
  maxLen: number;
  /** Names this replica's chain: its head is kept in `<key>:head:<replica>`. */
  replica: string;
}

/** The field of each stream entry holding the record's JSON. */
export const STREAM_FIELD = "r";

/** Between the stream's key and a replica's name in the key holding that replica's chain head. */
export const STREAM_HEAD_INFIX = ":head:";

/**
 * XADDs each record to a stream shared by every replica, one pipeline per batch. Delivery is at
 * least once: a pipeline that fails midway is retried whole, and readers drop repeated ids.
 * Each replica's records form one hash chain, as in its files; the head is stored with each
 * batch, so a restarted replica links on. The caller owns the ioredis connection (and closes it
 * after the writer is closed).
 */
export class RedisStreamSink implements AuditSink {
  readonly name = "redis_stream";
  private readonly redis: Redis;
  private readonly options: RedisStreamSinkOptions;
  private readonly headKey: string;
  /** The hash the next record links to; read from Redis before the first batch. */
  private lastHash: string | null = null;

  constructor(redis: Redis, options: RedisStreamSinkOptions) {
    this.redis = redis;
    this.options = options;
    this.headKey = `${options.key}${STREAM_HEAD_INFIX}${options.replica}`;
  }

  async write(batch: readonly AuditRecord[]): Promise<void> {
    if (batch.length === 0) return;
    this.lastHash ??= (await this.redis.get(this.headKey)) ?? GENESIS_HASH;
    // A retried batch is chained again from the same head: the same lines, which readers dedupe by id.
    let prev = this.lastHash;
    const pipeline = this.redis.pipeline();
    for (const record of batch) {
      const chained = chainLine(record, prev);
      prev = chained.hash;
      pipeline.xadd(this.options.key, "MAXLEN", "~", this.options.maxLen, "*", STREAM_FIELD, chained.text);
    }
    pipeline.set(this.headKey, prev);
    const results = await pipeline.exec();
    if (results === null) throw new Error("redis pipeline was discarded");
    const failed = results.find(([error]) => error !== null);
    if (failed?.[0]) throw failed[0];
    this.lastHash = prev;
  }

  /** Redis persistence is the server's own (appendfsync); nothing to do per client. */
  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
