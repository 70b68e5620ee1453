import type { StateStore } from "../state/store.js";
import type { Reservation } from "./enforce.js";

/**
 * A call holds its parallel slots under a short lease that its replica renews while the call runs:
 * the slots of a replica that dies mid-call come back within a lease, and a live stream keeps its
 * slot however long it runs.
 */
export const LEASE_MS = 60_000;
export const LEASE_RENEW_MS = 20_000;

/** The reservations of this replica's calls in flight that hold a parallel slot somewhere. */
export class LeaseKeeper {
  private readonly held = new Set<Reservation>();

  get size(): number {
    return this.held.size;
  }

  hold(reservation: Reservation): void {
    if (reservation.levels.some(({ request }) => request.limits.maxParallel !== null)) this.held.add(reservation);
  }

  release(reservation: Reservation): void {
    this.held.delete(reservation);
  }

  /** Extends every held lease to `now + LEASE_MS`; run every LEASE_RENEW_MS. */
  async renew(store: StateStore, now: number): Promise<void> {
    const leases: { level: string; callId: string }[] = [];
    for (const reservation of this.held) {
      if (reservation.settled) continue;
      for (const { request } of reservation.levels) {
        if (request.limits.maxParallel !== null) leases.push({ level: request.level, callId: request.callId });
      }
    }
    if (leases.length > 0) await store.renewLeases(leases, now, LEASE_MS);
  }
}
