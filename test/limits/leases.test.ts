import { describe, expect, it } from "vitest";
import { reserveAll } from "../../src/limits/enforce.js";
import { LEASE_GRACE_MS, LEASE_MS, LEASE_RENEW_MS, LeaseKeeper } from "../../src/limits/leases.js";
import type { LeaseRenewal } from "../../src/state/store.js";
import type { LimitPlan } from "../../src/limits/plan.js";
import { MemoryStore } from "../../src/state/memory.js";
import { limitPlan, limits, T0 } from "../state/fixtures.js";

const plan = (maxParallel: number | null): LimitPlan => limitPlan([{ level: "key:k", limits: limits({ maxParallel }) }]);
const charge = { inputTokens: 1, inputMicros: 0, outputPricePer1M: 0, outputTokens: 1 };

describe("LeaseKeeper", () => {
  it("leases a parallel slot for longer than two renewal periods, so one missed renewal loses no slot", () => {
    expect(LEASE_MS).toBeGreaterThanOrEqual(2 * LEASE_RENEW_MS);
  });

  it("keeps a running call's parallel slot past its first lease, and lets it lapse a lease after renewal stops", async () => {
    const store = new MemoryStore(null, T0);
    const keeper = new LeaseKeeper();
    const running = await reserveAll(store, plan(1), charge, T0);
    keeper.hold(running);
    await keeper.renew(store, T0 + 50_000);
    await expect(reserveAll(store, plan(1), charge, T0 + LEASE_MS + 1)).rejects.toMatchObject({ code: "rate_limit_exceeded" });
    // Its replica died: no more renewals, and the slot is free a lease after the last one, and the
    // grace a lapse of every lease of the level gets (it looks like a store outage).
    await expect(reserveAll(store, plan(1), charge, T0 + 50_000 + LEASE_MS)).rejects.toMatchObject({ code: "rate_limit_exceeded" });
    expect((await reserveAll(store, plan(1), charge, T0 + 50_000 + LEASE_MS + LEASE_GRACE_MS)).levels).toHaveLength(1);
  });

  it("tells the store what each running call holds, so a lease the store lost comes back with its reservation", async () => {
    const store = new MemoryStore(null, T0);
    const renewed: LeaseRenewal[] = [];
    store.renewLeases = async (leases) => {
      renewed.push(...leases);
    };
    const keeper = new LeaseKeeper();
    const running = await reserveAll(store, plan(1), charge, T0);
    keeper.hold(running);
    await keeper.renew(store, T0 + 1);
    expect(renewed).toEqual(
      running.levels.map((level) => ({ level: level.request.level, callId: level.request.callId, held: { micros: level.reservedMicros, tokens: level.reservedTokens } })),
    );
  });

  it("holds only reservations with a parallel limit, and drops released or settled ones", async () => {
    const store = new MemoryStore(null, T0);
    const keeper = new LeaseKeeper();
    keeper.hold(await reserveAll(store, plan(null), charge, T0));
    expect(keeper.size).toBe(0);
    const parallel = await reserveAll(store, plan(5), charge, T0);
    keeper.hold(parallel);
    expect(keeper.size).toBe(1);
    keeper.release(parallel);
    expect(keeper.size).toBe(0);
  });
});
