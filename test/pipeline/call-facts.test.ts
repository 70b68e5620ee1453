import pino from "pino";
import { describe, expect, it } from "vitest";
import type { Principal } from "../../src/auth/keys.js";
import { GatewayError } from "../../src/http/errors.js";
import { prefetchUsage } from "../../src/pipeline/call-facts.js";
import { CallFacts } from "../../src/pipeline/facts.js";
import type { Services } from "../../src/pipeline/services.js";

const principal = { keyId: "key_1", subject: { user: "ana", role: "developer", team: "research" } } as unknown as Principal;

const facts = () =>
  new CallFacts({ principal, org: "acme", action: "chat.completions", model: "m", stream: false, tools: [], sessionId: null, ip: null, userAgent: null, now: 0, lazy: {} });

/** A store that is down, as ioredis reports it with its offline queue off. */
function servicesWithStoreDown(failOpen: boolean): { services: Services; failedOpen: () => number } {
  let opened = 0;
  const services = {
    clock: () => 0,
    store: {
      usage: async () => {
        throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
      },
    },
    metrics: { storeError: () => undefined, failedOpen: () => opened++ },
    log: pino({ level: "silent" }),
    failOpen: () => failOpen,
  } as unknown as Services;
  return { services, failedOpen: () => opened };
}

describe("prefetchUsage while the store is down", () => {
  const read = new Set(["daily_spend", "user_daily_spend", "session_cost"]);

  it("answers 503 store_unavailable under fail_closed, as a limit would, never an internal error", async () => {
    const error = await prefetchUsage(servicesWithStoreDown(false).services, read, facts(), principal, "s1").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ status: 503, code: "store_unavailable" });
  });

  it("lets the call be judged without the usage it could not read under fail_open, counted", async () => {
    const { services, failedOpen } = servicesWithStoreDown(true);
    const judged = facts();
    await prefetchUsage(services, read, judged, principal, "s1");
    expect(judged.get("daily_spend")).toBeUndefined();
    expect(failedOpen()).toBe(1);
  });
});
