import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { queryStream } from "../../src/audit/query-stream.js";
import { previousEntryId, readStreamReverse } from "../../src/audit/redis-stream-reader.js";
import { RedisStreamSink } from "../../src/audit/redis-stream-sink.js";
import type { AuditRecord } from "../../src/audit/types.js";
import { AuditUnavailableError } from "../../src/audit/unavailable.js";
import { AuditWriter } from "../../src/audit/writer.js";
import { makeRecord, silentLogger } from "./fixtures.js";
import { allPages, ids, newestFirst, query, sampleRecords } from "./query-helpers.js";
import { startRedis } from "../helpers/index.js";

// Null only outside CI when redis-server is not installed; under CI a missing binary fails here.
const server = await startRedis();
const KEY = "test:audit";

afterAll(async () => {
  await server?.stop();
});

describe.skipIf(server === null)("RedisStreamSink against a real redis-server", () => {
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(server!.url);
  });
  afterAll(async () => {
    await redis?.quit();
  });
  beforeEach(async () => {
    await redis.del(KEY);
  });

  it("XADDs each record as JSON in field r and reads them back newest first across pages", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 1000 });
    const records = Array.from({ length: 25 }, () => makeRecord());
    await sink.write(records.slice(0, 10));
    await sink.write(records.slice(10));
    const [[, fields] = ["", []]] = await redis.xrange(KEY, "-", "+", "COUNT", 1);
    expect(fields[0]).toBe("r");
    expect(JSON.parse(fields[1] ?? "null")).toEqual(records[0]);
    const read: AuditRecord[] = [];
    for await (const entry of readStreamReverse(redis, KEY, 4)) read.push(entry.record);
    expect(ids(read)).toEqual(ids(records).reverse());
  });

  it("trims approximately to max_len", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 10 });
    for (let batch = 0; batch < 20; batch += 1) await sink.write(Array.from({ length: 50 }, () => makeRecord()));
    const length = await redis.xlen(KEY);
    expect(length).toBeLessThan(1000);
    expect(length).toBeGreaterThanOrEqual(10);
  });

  it("serves queries with filters, shortcuts and cursor pages over every replica's records", async () => {
    const all = [...sampleRecords("r1"), ...sampleRecords("r2")];
    const writer = new AuditWriter({
      sinks: [new RedisStreamSink(redis, { key: KEY, maxLen: 10_000 })],
      maxQueue: 1000,
      onFull: "reject",
      logger: silentLogger,
      batchSize: 3,
    });
    for (const record of all) writer.enqueue(record);
    await writer.close();

    expect(ids((await queryStream(redis, KEY, query({}))).data)).toEqual(ids(newestFirst(all)));
    expect(ids((await queryStream(redis, KEY, query({ user: "bob" }))).data)).toEqual(
      ids(newestFirst(all.filter((r) => r.user === "bob"))),
    );
    expect((await queryStream(redis, KEY, query({}, "violations"))).data).toHaveLength(8);
    expect(ids((await queryStream(redis, KEY, query({}, "high-cost"))).data)).toEqual(
      ids(newestFirst(all.filter((r) => r.cost >= 1))),
    );
    for (const limit of [1, 3, 6]) {
      const pages = await allPages(
        (cursor) => queryStream(redis, KEY, query({ limit: String(limit), ...(cursor ? { cursor } : {}) }), { pageSize: 4 }),
        limit,
      );
      expect(ids(pages.flat())).toEqual(ids(newestFirst(all)));
    }
  });

  it("drops a record delivered twice (a retried pipeline)", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 1000 });
    const records = [makeRecord(), makeRecord()];
    await sink.write(records);
    await sink.write(records);
    expect(ids((await queryStream(redis, KEY, query({}))).data)).toEqual(ids(newestFirst(records)));
  });

  it("stops reading once entries are older than a full page", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 100_000 });
    await sink.write(Array.from({ length: 2000 }, () => makeRecord({ ts: new Date().toISOString() })));
    await new Promise((resolve) => setTimeout(resolve, 30));
    await sink.write(Array.from({ length: 3 }, () => makeRecord({ ts: new Date().toISOString() })));
    const calls: unknown[] = [];
    const spy = new Proxy(redis, {
      get(target, property, receiver) {
        if (property === "xrevrange") {
          return (...args: unknown[]) => {
            calls.push(args);
            return (target.xrevrange as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return Reflect.get(target, property, receiver);
      },
    });
    const page = await queryStream(spy, KEY, query({ limit: "1" }), { pageSize: 100, clockSkewMs: 0 });
    expect(page.data).toHaveLength(1);
    expect(calls.length).toBeLessThanOrEqual(1);
  });
});

describe.skipIf(server === null)("an audit stream whose Redis is down", () => {
  it("fails queries with AuditUnavailableError; a reply error stays as it is", async () => {
    const own = (await startRedis())!;
    // Few retries, so a command gives up quickly once the server is gone.
    const redis = new Redis(own.url, { maxRetriesPerRequest: 1, retryStrategy: () => 20 });
    redis.on("error", () => {});
    try {
      await new RedisStreamSink(redis, { key: KEY, maxLen: 100 }).write([makeRecord()]);
      expect((await queryStream(redis, KEY, query({}))).data).toHaveLength(1);
      await redis.set(`${KEY}:plain`, "not a stream");
      const wrongType = queryStream(redis, `${KEY}:plain`, query({}));
      await expect(wrongType).rejects.toThrow(/WRONGTYPE/);
      await expect(wrongType).rejects.not.toBeInstanceOf(AuditUnavailableError);

      await own.kill9();
      await expect(queryStream(redis, KEY, query({}))).rejects.toBeInstanceOf(AuditUnavailableError);
    } finally {
      redis.disconnect();
      await own.stop();
    }
  });
});

describe("previousEntryId", () => {
  it("steps back one sequence, or to the previous millisecond", () => {
    expect(previousEntryId("1700000000000-5")).toBe("1700000000000-4");
    expect(previousEntryId("1700000000000-0")).toBe("1699999999999-18446744073709551615");
    expect(previousEntryId("0-0")).toBeNull();
  });
});
