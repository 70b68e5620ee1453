import type { Redis } from "ioredis";
import type { AuditSink } from "./sink.js";
import type { AuditRecord } from "./types.js";

export interface RedisStreamSinkOptions {
  key: string;
  /** Approximate trim (`MAXLEN ~`): Redis trims whole macro nodes, cheaply. */
  maxLen: number;
}

/** The field of each stream entry holding the record's JSON. */
export const STREAM_FIELD = "r";

/**
 * XADDs each record to a stream shared by every replica, one pipeline per batch. Delivery is at
 * least once: a pipeline that fails midway is retried whole, and readers drop repeated ids.
 * The caller owns the ioredis connection (and closes it after the writer is closed).
 */
export class RedisStreamSink implements AuditSink {
  readonly name = "redis_stream";
  private readonly redis: Redis;
  private readonly options: RedisStreamSinkOptions;

  constructor(redis: Redis, options: RedisStreamSinkOptions) {
    this.redis = redis;
    this.options = options;
  }

  async write(batch: readonly AuditRecord[]): Promise<void> {
    if (batch.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const record of batch) {
      pipeline.xadd(this.options.key, "MAXLEN", "~", this.options.maxLen, "*", STREAM_FIELD, JSON.stringify(record));
    }
    const results = await pipeline.exec();
    if (results === null) throw new Error("redis pipeline was discarded");
    const failed = results.find(([error]) => error !== null);
    if (failed?.[0]) throw failed[0];
  }

  /** Redis persistence is the server's own (appendfsync); nothing to do per client. */
  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
