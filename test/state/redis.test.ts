import { Redis } from "ioredis";
import { afterAll, beforeAll, describe } from "vitest";
import { RedisStore } from "../../src/state/redis.js";
import { type RedisServer, startRedis } from "./redis-server.js";
import { describeStoreContract } from "./store-contract.js";

let server: RedisServer | null = null;
let run = 0;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

/** Two replicas: separate connections (and pub/sub connections) to one server, one fresh prefix per test. */
async function makeStore() {
  if (server === null) throw new Error("no redis-server");
  const prefix = `test${++run}:`;
  const connections = [new Redis(server.url), new Redis(server.url)];
  const [store, replica] = connections.map((connection) => new RedisStore(connection, prefix)) as [RedisStore, RedisStore];
  await Promise.all([store.subscribed(), replica.subscribed()]);
  return {
    store,
    replica,
    cleanup: async () => {
      await Promise.all([store.close(), replica.close()]);
    },
  };
}

const available = await startRedis().then(async (probe) => {
  await probe?.stop();
  return probe !== null;
});

describe.skipIf(!available)("redis", () => {
  describeStoreContract("redis", makeStore);
});
