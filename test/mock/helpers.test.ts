import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, ping, type RedisHandle, startProcess, startRedis, writeTempConfig } from "../helpers/index.js";

describe("startRedis", () => {
  let redis: RedisHandle | null = null;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it("answers PING, survives kill9 + restart empty", async (ctx) => {
    // startRedis returns null only when the binary is missing outside CI.
    if (!redis) return ctx.skip();
    expect(await ping(redis.port)).toBe(true);
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    try {
      await client.connect();
      await client.set("k", "v");
      expect(await client.get("k")).toBe("v");
    } finally {
      client.disconnect();
    }
    await redis.kill9();
    expect(await ping(redis.port)).toBe(false);
    await redis.restart();
    expect(await ping(redis.port)).toBe(true);
  });
});

describe("startProcess", () => {
  it("waits for the URL, captures output lines and returns the exit code on stop", async () => {
    const port = await freePort();
    const script = `
      const http = require("node:http");
      console.log("token=" + process.env.SECRET_TOKEN);
      console.error("to stderr");
      http.createServer((_, res) => res.end("ok")).listen(${port}, "127.0.0.1", () => console.log("listening"));
      process.on("SIGTERM", () => process.exit(0));`;
    const proc = await startProcess(process.execPath, ["-e", script], {
      env: { SECRET_TOKEN: "s3cret" },
      waitForUrl: `http://127.0.0.1:${port}/`,
    });
    await proc.waitForLine(/listening/);
    expect(proc.stdout).toContain("token=s3cret");
    expect(proc.stderr).toEqual(["to stderr"]);
    expect(await proc.stop()).toBe(0);
    expect(proc.exited).toBe(true);
  });

  it("fails fast with the output when the process dies before the URL answers", async () => {
    const port = await freePort();
    await expect(
      startProcess(process.execPath, ["-e", "console.error('boom'); process.exit(3)"], { waitForUrl: `http://127.0.0.1:${port}/` }),
    ).rejects.toThrow(/boom/);
  });
});

describe("writeTempConfig", () => {
  it("writes the YAML to a fresh file", () => {
    const path = writeTempConfig("a: 1\n");
    expect(readFileSync(path, "utf8")).toBe("a: 1\n");
    expect(writeTempConfig("b: 2\n")).not.toBe(path);
  });
});
