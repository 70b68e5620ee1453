import { Redis } from "ioredis";
import { afterAll, describe } from "vitest";
import { RedisStore } from "../../src/state/redis.js";
import { startRedis } from "../helpers/redis.js";
import { describeStoreContract } from "./store-contract.js";

// Null (tests skipped) only when redis-server is missing outside CI.
const server = await startRedis();
afterAll(async () => {
  await server?.stop();
});

let run = 0;

/** Two replicas: separate connections (and pub/sub connections) to one server, a fresh prefix per test. */
async function makeStore() {
  if (server === null) throw new Error("no redis-server");
  const prefix = `test${++run}:`;
  const [store, replica] = [0, 1].map(() => new RedisStore(new Redis(server.url), prefix)) as [RedisStore, RedisStore];
  await Promise.all([store.subscribed(), replica.subscribed()]);
  return {
    store,
    replica,
    cleanup: async () => {
      await Promise.all([store.close(), replica.close()]);
    },
  };
}

describe.skipIf(server === null)("redis", () => {
  describeStoreContract("redis", makeStore);
});
