import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { queryStream, scanStream } from "../../src/audit/query-stream.js";
import { nextEntryId, previousEntryId, readStreamReverse } from "../../src/audit/redis-stream-reader.js";
import { RedisStreamSink } from "../../src/audit/redis-stream-sink.js";
import { verifyStream } from "../../src/audit/verify-stream.js";
import { chainLine, GENESIS_HASH, verifyChain } from "../../src/audit/chain.js";
import type { AuditRecord, ChainedRecord } from "../../src/audit/types.js";
import { AuditUnavailableError } from "../../src/audit/unavailable.js";
import { AuditWriter } from "../../src/audit/writer.js";
import { makeRecord, silentLogger } from "./fixtures.js";
import { allPages, ids, newestFirst, query, sampleRecords } from "./query-helpers.js";
import { startRedis } from "../helpers/index.js";

// Null only outside CI when redis-server is not installed; under CI a missing binary fails here.
const server = await startRedis();
const KEY = "test:audit";

function withoutChain(record: ChainedRecord): AuditRecord {
  const { prev_hash: _p, hash: _h, ...plain } = record;
  return plain as AuditRecord;
}

afterAll(async () => {
  await server?.stop();
});

describe.skipIf(server === null)("the audit stream against a real redis-server", () => {
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(server!.url);
  });
  afterAll(async () => {
    await redis?.quit();
  });
  beforeEach(async () => {
    await redis.del(KEY, `${KEY}:head:r1`, `${KEY}:head:r2`);
  });

describe("RedisStreamSink", () => {

  it("XADDs each record as JSON in field r and reads them back newest first across pages", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 1000, replica: "r1" });
    const records = Array.from({ length: 25 }, () => makeRecord());
    await sink.write(records.slice(0, 10));
    await sink.write(records.slice(10));
    const [[, fields] = ["", []]] = await redis.xrange(KEY, "-", "+", "COUNT", 1);
    expect(fields[0]).toBe("r");
    expect(JSON.parse(fields[1] ?? "null")).toMatchObject({ ...records[0], prev_hash: GENESIS_HASH });
    const read: AuditRecord[] = [];
    for await (const entry of readStreamReverse(redis, KEY, 4)) read.push(entry.record);
    expect(ids(read)).toEqual(ids(records).reverse());
  });

  it("chains each replica's records as its files do, across batches, replicas and a restart", async () => {
    const one = new RedisStreamSink(redis, { key: KEY, maxLen: 1000, replica: "r1" });
    const two = new RedisStreamSink(redis, { key: KEY, maxLen: 1000, replica: "r2" });
    await one.write([makeRecord(), makeRecord()]);
    await two.write([makeRecord()]);
    await one.write([makeRecord()]);
    // A restarted replica links on from the head its previous process stored.
    await new RedisStreamSink(redis, { key: KEY, maxLen: 1000, replica: "r1" }).write([makeRecord()]);
    const oldestFirst: ChainedRecord[] = [];
    for await (const entry of readStreamReverse(redis, KEY)) oldestFirst.unshift(entry.record as ChainedRecord);
    expect(oldestFirst).toHaveLength(5);
    const r1 = [0, 1, 3, 4].map((i) => oldestFirst[i]!);
    expect(verifyChain(r1, GENESIS_HASH)).toMatchObject({ ok: true, records: 4 });
    expect(verifyChain([oldestFirst[2]!], GENESIS_HASH)).toMatchObject({ ok: true, records: 1 });
    // The same lines a file sink writes: the record linked to its predecessor, hashed.
    expect(oldestFirst[1]).toEqual(JSON.parse(chainLine(withoutChain(oldestFirst[1]!), oldestFirst[0]!.hash).text));
    const tampered = { ...r1[2]!, cost: 99 };
    expect(verifyChain([r1[0]!, r1[1]!, tampered, r1[3]!], GENESIS_HASH)).toMatchObject({ ok: false, first_broken: { reason: "hash mismatch" } });
  });

  it("trims approximately to max_len", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 10, replica: "r1" });
    for (let batch = 0; batch < 20; batch += 1) await sink.write(Array.from({ length: 50 }, () => makeRecord()));
    const length = await redis.xlen(KEY);
    expect(length).toBeLessThan(1000);
    expect(length).toBeGreaterThanOrEqual(10);
  });

  it("serves queries with filters, shortcuts and cursor pages over every replica's records", async () => {
    const all = [...sampleRecords("r1"), ...sampleRecords("r2")];
    const writer = new AuditWriter({
      sinks: [new RedisStreamSink(redis, { key: KEY, maxLen: 10_000, replica: "r1" })],
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
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 1000, replica: "r1" });
    const records = [makeRecord(), makeRecord()];
    await sink.write(records);
    await sink.write(records);
    expect(ids((await queryStream(redis, KEY, query({}))).data)).toEqual(ids(newestFirst(records)));
  });

  it("stops reading once entries are older than a full page", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 100_000, replica: "r1" });
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

describe("scanStream", () => {

  async function scanned(range: Record<string, string>, options: Parameters<typeof scanStream>[3] = {}, client: Redis = redis): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    for await (const record of scanStream(client, KEY, query(range), options)) out.push(record);
    return out;
  }

  it("yields every record once, in stored order, across pages", async () => {
    const records = [...sampleRecords("r1"), ...sampleRecords("r2")];
    await new RedisStreamSink(redis, { key: KEY, maxLen: 10_000, replica: "r1" }).write(records);
    expect(ids(await scanned({}, { pageSize: 4 }))).toEqual(ids(records));
    expect(ids(await scanned({}, { pageSize: records.length }))).toEqual(ids(records));
  });

  it("takes `from` and `to` inclusive by each record's ts", async () => {
    const records = sampleRecords("r1");
    await new RedisStreamSink(redis, { key: KEY, maxLen: 10_000, replica: "r1" }).write(records);
    const range = { from: "2024-05-01T11:00:00Z", to: "2024-05-03T09:00:00Z" };
    const within = (r: AuditRecord) => r.ts >= "2024-05-01T11:00:00.000Z" && r.ts <= "2024-05-03T09:00:00.000Z";
    expect(ids(await scanned(range, { pageSize: 3 }))).toEqual(ids(records.filter(within)));
    expect(await scanned({ from: "2024-05-04" })).toEqual([]);
  });

  it("starts reading at entries stored at `from` less the clock skew", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 10_000, replica: "r1" });
    await sink.write(Array.from({ length: 50 }, () => makeRecord({ ts: new Date().toISOString() })));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const from = new Date().toISOString();
    const recent = Array.from({ length: 3 }, () => makeRecord({ ts: new Date().toISOString() }));
    await sink.write(recent);
    const fetched: string[] = [];
    const spy = new Proxy(redis, {
      get(target, property, receiver) {
        if (property === "xrange") {
          return async (...args: unknown[]) => {
            const page = (await (target.xrange as (...a: unknown[]) => Promise<[string, string[]][]>).apply(target, args)) ?? [];
            fetched.push(...page.map(([id]) => id));
            return page;
          };
        }
        return Reflect.get(target, property, receiver);
      },
    });
    expect(ids(await scanned({ from }, { clockSkewMs: 0 }, spy))).toEqual(ids(recent));
    expect(fetched).toHaveLength(3);
  });

  it("reads the entries present when it starts, not those added while it runs", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 10_000, replica: "r1" });
    const before = Array.from({ length: 10 }, () => makeRecord());
    await sink.write(before);
    const seen: AuditRecord[] = [];
    for await (const record of scanStream(redis, KEY, {}, { pageSize: 4 })) {
      if (seen.length === 0) await sink.write(Array.from({ length: 10 }, () => makeRecord()));
      seen.push(record);
    }
    expect(ids(seen)).toEqual(ids(before));
  });

  it("drops a record delivered twice (a retried pipeline), as queries do", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 1000, replica: "r1" });
    const records = [makeRecord(), makeRecord(), makeRecord({ replica: "r2" })];
    await sink.write(records.slice(0, 2));
    await sink.write(records);
    expect(ids(await scanned({}))).toEqual(ids(records));
  });
});

describe.skipIf(server === null)("an audit stream whose Redis is down", () => {
  it("fails queries and scans with AuditUnavailableError; a reply error stays as it is", async () => {
    const own = (await startRedis())!;
    // Few retries, so a command gives up quickly once the server is gone.
    const redis = new Redis(own.url, { maxRetriesPerRequest: 1, retryStrategy: () => 20 });
    redis.on("error", () => {});
    try {
      await new RedisStreamSink(redis, { key: KEY, maxLen: 100, replica: "r1" }).write([makeRecord()]);
      expect((await queryStream(redis, KEY, query({}))).data).toHaveLength(1);
      await redis.set(`${KEY}:plain`, "not a stream");
      const wrongType = queryStream(redis, `${KEY}:plain`, query({}));
      await expect(wrongType).rejects.toThrow(/WRONGTYPE/);
      await expect(wrongType).rejects.not.toBeInstanceOf(AuditUnavailableError);

      await own.kill9();
      await expect(queryStream(redis, KEY, query({}))).rejects.toBeInstanceOf(AuditUnavailableError);
      await expect(scanStream(redis, KEY, {}).next()).rejects.toBeInstanceOf(AuditUnavailableError);
    } finally {
      redis.disconnect();
      await own.stop();
    }
  });
});

describe("verifyStream", () => {
  /** r1 writes three records, r2 one, r1 one more; the stream's entry ids oldest first. */
  async function fiveRecords(): Promise<string[]> {
    const one = new RedisStreamSink(redis, { key: KEY, maxLen: 1000, replica: "r1" });
    const two = new RedisStreamSink(redis, { key: KEY, maxLen: 1000, replica: "r2" });
    await one.write([makeRecord({ replica: "r1" }), makeRecord({ replica: "r1" }), makeRecord({ replica: "r1" })]);
    await two.write([makeRecord({ replica: "r2" })]);
    await one.write([makeRecord({ replica: "r1" })]);
    return (await redis.xrange(KEY, "-", "+")).map(([id]) => id);
  }

  it("passes every replica's chain, a batch written twice (a retry) included, and counts each record once", async () => {
    await fiveRecords();
    expect(await verifyStream(redis, KEY, 2)).toEqual({ ok: true, records: 5 });
    const [, fields = []] = (await redis.xrange(KEY, "-", "+", "COUNT", 1))[0] ?? [];
    await redis.xadd(KEY, "*", ...fields);
    expect(await verifyStream(redis, KEY)).toEqual({ ok: true, records: 5 });
  });

  it("finds a record deleted from inside the stream, from a replica's start or end, and a forged or edited one", async () => {
    const ids = await fiveRecords();
    const recordAt = async (entry: string) => JSON.parse((await redis.xrange(KEY, entry, entry))[0]![1][1]!) as ChainedRecord;
    const second = await recordAt(ids[2]!);
    await redis.xdel(KEY, ids[1]!);
    expect(await verifyStream(redis, KEY)).toEqual({ ok: false, first_broken: { id: second.id, reason: "broken link" } });

    await redis.del(KEY, `${KEY}:head:r1`, `${KEY}:head:r2`);
    const again = await fiveRecords();
    const last = await recordAt(again[2]!);
    await redis.xdel(KEY, again[4]!);
    expect(await verifyStream(redis, KEY)).toMatchObject({ ok: false, first_broken: { reason: expect.stringMatching(/records missing/) } });

    await redis.del(KEY, `${KEY}:head:r1`, `${KEY}:head:r2`);
    await fiveRecords();
    // r2's only record: nothing links to it, and its head is not met.
    await redis.xdel(KEY, (await redis.xrange(KEY, "-", "+"))[3]![0]);
    expect(await verifyStream(redis, KEY)).toMatchObject({ ok: false, first_broken: { reason: "records missing before it" } });

    await redis.del(KEY, `${KEY}:head:r1`, `${KEY}:head:r2`);
    await fiveRecords();
    await redis.xadd(KEY, "*", "r", JSON.stringify({ ...last, id: "req-forged", cost: 99 }));
    expect(await verifyStream(redis, KEY)).toEqual({ ok: false, first_broken: { id: "req-forged", reason: "hash mismatch" } });

    // A copy of a record under its own id and hash, one field changed; and the oldest entry deleted.
    await redis.del(KEY, `${KEY}:head:r1`, `${KEY}:head:r2`);
    const fresh = await fiveRecords();
    const copied = await recordAt(fresh[1]!);
    await redis.xadd(KEY, "*", "r", JSON.stringify({ ...copied, status: 599 }));
    expect(await verifyStream(redis, KEY)).toEqual({ ok: false, first_broken: { id: copied.id, reason: "hash mismatch" } });
    await redis.del(KEY, `${KEY}:head:r1`, `${KEY}:head:r2`);
    const oldest = await fiveRecords();
    const next = await recordAt(oldest[1]!);
    await redis.xdel(KEY, oldest[0]!);
    expect(await verifyStream(redis, KEY)).toEqual({ ok: false, first_broken: { id: next.id, reason: "records missing before it" } });
  });

  it("starts each chain where a trim left it, and wants the genesis from a stream nothing was removed from", async () => {
    const sink = new RedisStreamSink(redis, { key: KEY, maxLen: 10, replica: "r1" });
    for (let batch = 0; batch < 10; batch += 1) await sink.write(Array.from({ length: 50 }, () => makeRecord({ replica: "r1" })));
    expect(await verifyStream(redis, KEY)).toEqual({ ok: true, records: await redis.xlen(KEY) });
    // The head read before a trim took its entry (writes go on while verifying): the chain passed it.
    await redis.del(KEY, `${KEY}:head:r1`);
    const fresh = new RedisStreamSink(redis, { key: KEY, maxLen: 1000, replica: "r1" });
    await redis.del(KEY);
    await fresh.write(Array.from({ length: 5 }, () => makeRecord({ replica: "r1" })));
    const third = JSON.parse((await redis.xrange(KEY, "-", "+"))[2]![1][1]!) as ChainedRecord;
    await redis.set(`${KEY}:head:r1`, third.hash);
    await redis.xtrim(KEY, "MAXLEN", 2);
    expect(await verifyStream(redis, KEY)).toEqual({ ok: true, records: 2 });
    // The stream removed whole (DEL) and written on from the stored head: its start is gone.
    await redis.del(KEY);
    await sink.write([makeRecord({ replica: "r1" })]);
    expect(await verifyStream(redis, KEY)).toMatchObject({ ok: false, first_broken: { reason: "records missing before it" } });
  });
});

describe("stream entry ids", () => {
  it("previousEntryId steps back one sequence, or to the previous millisecond", () => {
    expect(previousEntryId("1700000000000-5")).toBe("1700000000000-4");
    expect(previousEntryId("1700000000000-0")).toBe("1699999999999-18446744073709551615");
    expect(previousEntryId("0-0")).toBeNull();
  });

  it("nextEntryId steps on one sequence, or to the next millisecond", () => {
    expect(nextEntryId("1700000000000-4")).toBe("1700000000000-5");
    expect(nextEntryId("1699999999999-18446744073709551615")).toBe("1700000000000-0");
    expect(nextEntryId("0-0")).toBe("0-1");
  });
});
});
