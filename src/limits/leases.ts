import type { LeaseRenewal, StateStore } from "../state/store.js";
import type { Reservation } from "./enforce.js";

/**
 * A call holds its parallel slots and its reservations under a short lease that its replica renews
 * while the call runs: the slots of a replica that dies mid-call, and the worst cases it reserved,
 * come back within a lease, and a live stream keeps its own however long it runs.
 */
export const LEASE_MS = 60_000;
export const LEASE_RENEW_MS = 20_000;
/**
 * After a store outage longer than a lease, every lease of a level has lapsed, the live ones with the
 * rest: replicas get this long (a renewal period and then some) to renew theirs before the lapsed
 * ones are taken back (src/state/lua/common.ts).
 */
export const LEASE_GRACE_MS = LEASE_RENEW_MS + 10_000;

/** Whether a level of a call holds a lease: a parallel slot, or money reserved. */
const leased = (level: Reservation["levels"][number]): boolean => level.request.limits.maxParallel !== null || level.reservedMicros > 0;

/** The reservations of this replica's calls in flight that hold a lease somewhere. */
export class LeaseKeeper {
  private readonly held = new Set<Reservation>();

  get size(): number {
    return this.held.size;
  }

  hold(reservation: Reservation): void {
    if (reservation.levels.some(leased)) this.held.add(reservation);
  }

  release(reservation: Reservation): void {
    this.held.delete(reservation);
  }

  /** Extends every held lease to `now + LEASE_MS`; run every LEASE_RENEW_MS. */
  async renew(store: StateStore, now: number): Promise<void> {
    const leases: LeaseRenewal[] = [];
    for (const reservation of this.held) {
      // Unsettled now, so its settle, if it comes, is sent after this renewal: a lease brought back here cannot outlive it.
      if (reservation.settled) continue;
      for (const level of reservation.levels) {
        if (!leased(level)) continue;
        leases.push({ level: level.request.level, callId: level.request.callId, held: { micros: level.reservedMicros, tokens: level.reservedTokens } });
      }
    }
    if (leases.length > 0) await store.renewLeases(leases, now, LEASE_MS);
  }
}
