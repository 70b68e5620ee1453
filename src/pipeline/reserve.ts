import { GatewayError } from "../http/errors.js";
import { type CallCharge, type Reservation, reserveAll, unchargedReservation } from "../limits/enforce.js";
import type { LimitPlan } from "../limits/plan.js";
import { storeTrouble } from "../log/throttle.js";
import type { Services } from "./services.js";

/** The store could not be asked: 503, unless `store.on_error` is `fail_open`. */
function limitsUnavailable(): GatewayError {
  return new GatewayError(503, "store_unavailable", "the state store is unavailable; limits cannot be checked", { headers: { "retry-after": "1" } });
}

/**
 * A store that could not answer a limits step: counted and logged, then `store_unavailable`, or
 * null where `store.on_error: fail_open` lets the call go on.
 */
export function storeDown(services: Services, what: string, error: unknown): GatewayError | null {
  services.metrics.storeError();
  storeTrouble(services.log, what, error);
  return services.failOpen() ? null : limitsUnavailable();
}

/**
 * Reserves a call's charge at every level of its plan. A limit's refusal is counted and thrown; a
 * store that cannot answer is `store_unavailable`, or under `fail_open` (or for a call no limit
 * applies to) an uncharged admission, counted.
 */
export async function reserveCharge(services: Services, plan: LimitPlan, charge: CallCharge): Promise<Reservation> {
  const now = services.clock();
  try {
    return await reserveAll(services.store, plan, charge, now);
  } catch (error) {
    if (error instanceof GatewayError) {
      services.metrics.limitHit(error.code);
      throw error;
    }
    const refusal = storeDown(services, "reserve", error);
    // `store.on_error` covers limits and budgets: a call with none anywhere has nothing to check.
    if (refusal !== null && plan.limited) throw refusal;
    services.metrics.failedOpen();
    return unchargedReservation(charge.outputTokens, now);
  }
}
