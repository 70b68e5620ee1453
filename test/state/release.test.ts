import { afterAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../../src/state/memory.js";
import { createRedisStore } from "../../src/state/redis.js";
import type { StateStore } from "../../src/state/store.js";
import { startRedis } from "../helpers/redis.js";
import { limits, reserveRequest, settleRequest, T0 } from "./fixtures.js";

/**
 * A reservation released because a later level refused the call gives its request back: the
 * request-per-minute token, its count in the last minute and its session call — on both stores.
 */

const server = await startRedis();
afterAll(async () => {
  await server?.stop();
});

const stores: Array<[string, () => Promise<StateStore>]> = [["memory", async () => new MemoryStore(null, T0)]];
if (server !== null) stores.push(["redis", async () => createRedisStore(server.url, `release-${Math.random().toString(36).slice(2)}:`)]);

describe.each(stores)("%s store: released reservations", (_name, make) => {
  it("gives back the request token and the request count; a normal settle does not", async () => {
    const store = await make();
    try {
      const level = limits({ requestsPerMinute: 2 });
      const request = reserveRequest("key:r", level);
      const first = await store.reserve(request, T0);
      await store.settle({ ...settleRequest(request, first, T0, { actualMicros: 0, actualTokens: 0 }), released: true }, T0);
      expect((await store.usage("key:r", T0)).requestsLastMinute).toBe(0);
      // Both requests of the burst are still there.
      const a = await store.reserve(request, T0);
      const b = await store.reserve(request, T0);
      expect(a.ok && b.ok).toBe(true);
      await store.settle(settleRequest(request, a, T0), T0);
      await store.settle(settleRequest(request, b, T0), T0);
      expect((await store.usage("key:r", T0)).requestsLastMinute).toBe(2);
      const third = await store.reserve(request, T0);
      expect(third.ok ? "ok" : third.limit).toBe("requests_per_minute");
    } finally {
      await store.close();
    }
  });

  it("gives back a session's call", async () => {
    const store = await make();
    try {
      const session = limits({ session: true, sessionMaxLlmCalls: 1 });
      const request = reserveRequest("session:k:s", session, { ttlMs: 60_000 });
      const first = await store.reserve(request, T0);
      await store.settle({ ...settleRequest(request, first, T0, { actualMicros: 0, actualTokens: 0 }), released: true }, T0);
      const second = await store.reserve(request, T0 + 10);
      expect(second.ok).toBe(true);
      await store.settle(settleRequest(request, second, T0 + 10), T0 + 10);
      const third = await store.reserve(request, T0 + 20);
      expect(third.ok ? "ok" : third.limit).toBe("session_llm_calls");
    } finally {
      await store.close();
    }
  });
});
