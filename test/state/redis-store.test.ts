import { Redis } from "ioredis";
import { afterAll, describe, expect, it, vi } from "vitest";
import { createRedisStore, RedisStore } from "../../src/state/redis.js";
import type { StateChange } from "../../src/state/store.js";
import { startRedis } from "../helpers/redis.js";
import { LEASE_GRACE_MS } from "../../src/limits/leases.js";
import { LEASE_MS, limits, reserveRequest, runtimeKey, settleRequest, T0 } from "./fixtures.js";

/** What only the Redis store has: key layout, expiry, and behaviour while the server is down. */

const server = await startRedis();
afterAll(async () => {
  await server?.stop();
});

const DAY = 86_400_000;

describe.skipIf(server === null)("redis store", () => {
  it("keeps a level's keys under one hash tag, each expiring when it stops mattering", async () => {
    const raw = new Redis(server!.url);
    const store = new RedisStore(raw.duplicate(), "layout:");
    try {
      const levelLimits = limits({ requestsPerMinute: 10, tokensPerMinute: 1000, maxParallel: 3, dailyMicros: 10_000 });
      const request = reserveRequest("key:alice-dev", levelLimits, { inputMicros: 10 });
      await store.reserve(request, T0);
      const keys = (await raw.keys("layout:*")).sort();
      expect(keys.every((key) => key.startsWith("layout:{key:alice-dev}:"))).toBe(true);
      const ttl = async (suffix: string) => raw.pttl(`layout:{key:alice-dev}:${suffix}`);
      expect(await ttl("rpm")).toBeLessThanOrEqual(61_000);
      expect(await ttl("tpm")).toBeGreaterThan(0);
      expect(await ttl("window")).toBeLessThanOrEqual(61_000);
      expect(await ttl("day:2025-01-15")).toBeGreaterThan(34 * DAY);
      expect(await ttl("month:2025-01")).toBeGreaterThan(399 * DAY);
      expect(await ttl("total")).toBe(-1);
      // Calls in flight are leases; a set guarding what its calls reserved is kept, with them, until
      // they settle or are given back (no expiry); one of parallel slots only lives as long as its longest lease.
      expect(await raw.type("layout:{key:alice-dev}:leases")).toBe("zset");
      expect(await ttl("leases")).toBe(-1);
      expect(await ttl("held")).toBe(-1);
      await store.reserve(reserveRequest("key:slots-only", limits({ maxParallel: 3 })), T0);
      expect(await raw.pttl("layout:{key:slots-only}:leases")).toBeGreaterThan(LEASE_MS - 60_000);

      const session = limits({ session: true, totalMicros: 1000 });
      await store.reserve(reserveRequest("session:alice-dev:s1", session, { ttlMs: 120_000 }), T0);
      const sessionKeys = await raw.keys("layout:{session:alice-dev:s1}:*");
      expect(sessionKeys.length).toBeGreaterThan(3);
      for (const key of sessionKeys) expect(await raw.pttl(key)).toBeLessThanOrEqual(180_000);
    } finally {
      await store.close();
      raw.disconnect();
    }
  });

  it("answers a key or stop write once every replica that heard it has applied it, a stalled one waited for a second", async () => {
    const writer = await createRedisStore(server!.url, "applied:");
    const other = await createRedisStore(server!.url, "applied:");
    const stalled = await createRedisStore(server!.url, "applied:");
    await Promise.all([writer.subscribed(), other.subscribed(), stalled.subscribed()]);
    const applied: StateChange[] = [];
    other.onChange(async (change) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      applied.push(change);
    });
    try {
      let started = Date.now();
      await writer.putKey(runtimeKey("k1"));
      // The other replica's slow refresh had run by the time the write answered.
      expect(applied).toEqual(["keys"]);
      expect(Date.now() - started).toBeLessThan(900);
      await writer.putStop({ kind: "key_id", value: "k1", reason: "r", by: "admin", at: new Date(T0).toISOString() });
      expect(await writer.deleteStop("key_id", "k1")).toBe(true);
      expect(applied).toEqual(["keys", "stops", "stops"]);
      // A replica whose refresh never ends holds a write back for a second, not for good.
      stalled.onChange(() => new Promise(() => undefined));
      started = Date.now();
      await writer.putKey(runtimeKey("k2"));
      expect(Date.now() - started).toBeGreaterThanOrEqual(990);
      expect(applied).toEqual(["keys", "stops", "stops", "keys"]);
    } finally {
      await Promise.all([writer.close(), other.close(), stalled.close()]);
    }
  });

  it("re-reads keys and stops once its lost subscription is back: a change made meanwhile was announced to no one there", async () => {
    const writer = await createRedisStore(server!.url, "resub:");
    const reader = await createRedisStore(server!.url, "resub:");
    const admin = new Redis(server!.url);
    try {
      await Promise.all([writer.subscribed(), reader.subscribed()]);
      const heard: StateChange[] = [];
      reader.onChange((change) => {
        heard.push(change);
      });
      await admin.client("KILL", "TYPE", "pubsub");
      // Announced while the reader's subscription is down (it reconnects after a backoff).
      await writer.putStop({ kind: "key_id", value: "k1", reason: "r", by: "admin", at: new Date(T0).toISOString() });
      // Only the re-read brings `keys`: the writer announced a stop.
      await vi.waitFor(() => expect(heard).toEqual(expect.arrayContaining(["keys", "stops"])), { timeout: 5_000, interval: 20 });
      // Both subscriptions are back before the stores close: a resubscription still in flight at the
      // QUIT would be rejected inside the client, where no caller can take the rejection.
      await vi.waitFor(async () => expect(await admin.pubsub("NUMSUB", "resub:changes")).toEqual(["resub:changes", 2]), { timeout: 5_000, interval: 20 });
    } finally {
      admin.disconnect();
      await writer.close();
      await reader.close();
    }
  });

  it("gives back a crashed replica's parallel slots when their leases end", async () => {
    const leaseMs = 120_000;
    const call = () => reserveRequest("key:crash", limits({ maxParallel: 2 }), { leaseMs });
    const [connection, subscriber] = [new Redis(server!.url), new Redis(server!.url)];
    const crashed = new RedisStore(connection, "crash:", subscriber);
    const survivor = new RedisStore(new Redis(server!.url), "crash:");
    try {
      for (let i = 0; i < 2; i++) expect((await crashed.reserve(call(), T0)).ok).toBe(true);
      // kill -9: the connections drop, nothing is settled.
      connection.disconnect();
      subscriber.disconnect();
      expect(await survivor.reserve(call(), T0 + leaseMs - 1)).toMatchObject({ ok: false, limit: "max_parallel_requests" });
      // Every lease of the level lapsed at once, as after an outage: their replicas get a grace to renew them first.
      expect(await survivor.reserve(call(), T0 + leaseMs)).toMatchObject({ ok: false, limit: "max_parallel_requests" });
      const after = T0 + leaseMs + LEASE_GRACE_MS;
      const own = call();
      const granted = await survivor.reserve(own, after);
      expect(granted.ok).toBe(true);
      expect((await survivor.reserve(call(), after)).ok).toBe(true);
      expect((await survivor.reserve(call(), after)).ok).toBe(false);
      await survivor.settle(settleRequest(own, granted, after), after + 10);
      expect((await survivor.reserve(call(), after + 20)).ok).toBe(true);
    } finally {
      await survivor.close();
    }
  });

  it("gives back a crashed replica's reservations at the level's next call, however long after their leases ended", async () => {
    const leaseMs = 200;
    const budget = limits({ dailyMicros: 1000, totalMicros: 1000 });
    const call = () => reserveRequest("key:idle", budget, { inputMicros: 600, leaseMs });
    const connection = new Redis(server!.url);
    const crashed = new RedisStore(connection, "idle:");
    const survivor = new RedisStore(new Redis(server!.url), "idle:");
    try {
      const start = Date.now();
      expect((await crashed.reserve(call(), start)).ok).toBe(true);
      connection.disconnect();
      // Nothing calls on the level for longer than the lease (Redis's own clock runs: a TTL set to it would have ended).
      await new Promise((resolve) => setTimeout(resolve, 3 * leaseMs));
      const now = Date.now();
      // Its lease lapsed with every other of the level: given back once the grace for renewing it ends.
      expect((await survivor.reserve(call(), now)).ok).toBe(false);
      expect((await survivor.reserve(call(), now + LEASE_GRACE_MS)).ok).toBe(true);
      expect(await survivor.usage("key:idle", now + LEASE_GRACE_MS)).toMatchObject({ dailyMicros: 600, totalMicros: 600 });
    } finally {
      await survivor.close();
    }
  });

  it("keeps a live call's reservation through an outage longer than its lease: its replica renews it within the grace", async () => {
    const budget = limits({ dailyMicros: 1000, totalMicros: 1000 });
    const call = () => reserveRequest("key:outage", budget, { inputMicros: 600 });
    const streaming = new RedisStore(new Redis(server!.url), "outage:");
    const other = new RedisStore(new Redis(server!.url), "outage:");
    try {
      const stream = call();
      const held = await streaming.reserve(stream, T0);
      expect(held.ok).toBe(true);
      // No renewal reached Redis for two leases; the first call after it finds every lease lapsed.
      const back = T0 + 2 * LEASE_MS;
      expect(await other.reserve(call(), back)).toMatchObject({ ok: false, limit: "daily_cost" });
      await streaming.renewLeases([{ level: "key:outage", callId: stream.callId }], back + 5_000, LEASE_MS);
      // Past the grace, the renewed lease holds: the stream's worst case is still reserved.
      expect(await other.reserve(call(), back + LEASE_GRACE_MS + 1)).toMatchObject({ ok: false, limit: "daily_cost" });
      expect(await other.usage("key:outage", back + LEASE_GRACE_MS + 1)).toMatchObject({ dailyMicros: 600 });
      await streaming.settle(settleRequest(stream, held, back + LEASE_GRACE_MS + 2, { actualMicros: 100 }), back + LEASE_GRACE_MS + 2);
      expect((await other.reserve(call(), back + LEASE_GRACE_MS + 3)).ok).toBe(true);
    } finally {
      await streaming.close();
      await other.close();
    }
  });

  it("subscribes to the change channel on every start, its SUBSCRIBE never racing the connection's setup", async () => {
    const own = await startRedis();
    if (own === null) return;
    const admin = new Redis(own.url);
    try {
      for (let start = 0; start < 20; start++) {
        const store = await createRedisStore(own.url, `start${start}:`);
        try {
          await store.subscribed();
          // Long enough for a ready check the SUBSCRIBE raced to fail and drop the connection (about 1 start in 40 did).
          await new Promise((resolve) => setTimeout(resolve, 250));
          const [, subscribers] = (await admin.pubsub("NUMSUB", `start${start}:changes`)) as [string, number];
          expect(Number(subscribers), `start ${start}`).toBe(1);
        } finally {
          await store.close();
        }
      }
    } finally {
      admin.disconnect();
      await own.stop();
    }
  });

  it("retries a settle Redis never received while it was down, so the level is not left charged the worst case", async () => {
    const own = await startRedis({ durable: true });
    if (own === null) return;
    const store = await createRedisStore(own.url, "unsent:");
    const request = reserveRequest("key:unsent", limits({ dailyMicros: 1_000_000 }), { inputMicros: 40, outputPricePer1M: 1_000_000, outputTokens: 100 });
    try {
      const granted = await store.reserve(request, T0);
      expect(granted.ok).toBe(true);
      const reserved = (await store.usage("key:unsent", T0)).dailyMicros;
      expect(reserved).toBeGreaterThan(40);
      // Killed, not stopped: the append-only file (fsynced on every write) keeps the data for the restart.
      await own.kill9();
      await expect(store.settle(settleRequest(request, granted, T0, { actualMicros: 40 }), T0)).rejects.toThrow();
      await own.restart();
      // Landed by itself once the server was back: the worst case replaced by the actual cost, once.
      await vi.waitFor(async () => expect((await store.usage("key:unsent", T0)).dailyMicros).toBe(40), { timeout: 10_000, interval: 200 });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect((await store.usage("key:unsent", T0)).dailyMicros).toBe(40);
    } finally {
      await store.close();
      await own.stop();
    }
  });

  it("brings back a running call's lease and reservation that a restart without its data lost, when its replica renews it", async () => {
    const own = await startRedis();
    if (own === null) return;
    const store = await createRedisStore(own.url, "lost:");
    const call = () => reserveRequest("key:lost", limits({ dailyMicros: 1000 }), { inputMicros: 600 });
    try {
      const running = call();
      const held = await store.reserve(running, T0);
      if (!held.ok) throw new Error("expected a reservation");
      await own.kill9();
      await own.restart();
      await vi.waitFor(async () => expect(await store.ping()).toBe(true), { timeout: 10_000, interval: 100 });
      // Empty now: the next call would be admitted against a budget the running call is spending.
      expect(await store.usage("key:lost", T0 + 1_000)).toMatchObject({ dailyMicros: 0 });
      await store.renewLeases([{ level: "key:lost", callId: running.callId, held: { micros: held.reservedMicros, tokens: held.reservedTokens } }], T0 + 1_000, LEASE_MS);
      expect(await store.usage("key:lost", T0 + 1_000)).toMatchObject({ dailyMicros: 600 });
      expect(await store.reserve(call(), T0 + 2_000)).toMatchObject({ ok: false, limit: "daily_cost" });
      // Renewed again, it is held once; its settle replaces it by the actual cost.
      await store.renewLeases([{ level: "key:lost", callId: running.callId, held: { micros: held.reservedMicros, tokens: held.reservedTokens } }], T0 + 3_000, LEASE_MS);
      await store.settle(settleRequest(running, held, T0, { actualMicros: 100 }), T0 + 4_000);
      expect(await store.usage("key:lost", T0 + 4_000)).toMatchObject({ dailyMicros: 100 });
      expect((await store.reserve(call(), T0 + 5_000)).ok).toBe(true);
    } finally {
      await store.close();
      await own.stop();
    }
  });

  it("undoes a reserve that timed out while the server stalled, once the server has run it", async () => {
    const own = await startRedis();
    if (own === null) return;
    const store = await createRedisStore(own.url, "stall:", { commandTimeoutMs: 150 });
    const call = () => reserveRequest("key:stall", limits({ dailyMicros: 1000, maxParallel: 1 }), { inputMicros: 600 });
    try {
      own.pause();
      await expect(store.reserve(call(), T0)).rejects.toThrow();
      own.resume();
      // Redis ran the reserve when it woke (its request stays counted); what it held is given back.
      await vi.waitFor(async () => expect(await store.usage("key:stall", T0)).toMatchObject({ dailyMicros: 0, requestsLastMinute: 1 }), {
        timeout: 5_000,
        interval: 50,
      });
      expect((await store.reserve(call(), T0 + 1)).ok).toBe(true);
    } finally {
      await store.close();
      await own.stop();
    }
  });

  it("fails fast while the server is down and recovers by itself after a restart", async () => {
    const own = await startRedis();
    if (own === null) return;
    const store = await createRedisStore(own.url, "outage:");
    const heard: StateChange[] = [];
    store.onChange((change) => {
      heard.push(change);
    });
    const request = reserveRequest("key:outage", limits({ requestsPerMinute: 1000 }));
    try {
      const granted = await store.reserve(request, T0);
      expect(granted.ok).toBe(true);
      await own.kill9();
      const started = Date.now();
      await expect(store.reserve(request, T0)).rejects.toThrow();
      await expect(store.settle(settleRequest(request, granted, T0), T0)).rejects.toThrow();
      expect(await store.ping()).toBe(false);
      expect(Date.now() - started).toBeLessThan(2000);

      await own.restart();
      await vi.waitFor(async () => expect((await store.reserve(request, T0)).ok).toBe(true), { timeout: 10_000, interval: 100 });
      expect(await store.ping()).toBe(true);

      // The subscription is back too: another replica's change arrives.
      const other = await createRedisStore(own.url, "outage:");
      await other.subscribed();
      let attempt = 0;
      await vi.waitFor(
        async () => {
          await other.putKey(runtimeKey(`k${attempt++}`));
          expect(heard).toContain("keys");
        },
        { timeout: 10_000, interval: 200 },
      );
      await other.close();
    } finally {
      await store.close();
      await own.stop();
    }
  });

  it("starts while the server is down, answering ping() false", async () => {
    const dead = `redis://127.0.0.1:${(server as NonNullable<typeof server>).port + 1}`;
    const started = Date.now();
    const store = await createRedisStore(dead, "down:", { connectTimeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await store.ping()).toBe(false);
    await expect(store.reserve(reserveRequest("key:down", limits()), T0)).rejects.toThrow();
    await store.close();
  });

  it("close() returns even when the server is gone", async () => {
    const own = await startRedis();
    if (own === null) return;
    const store = await createRedisStore(own.url, "gone:");
    await own.kill9();
    await store.close();
    await own.stop();
  });
});
