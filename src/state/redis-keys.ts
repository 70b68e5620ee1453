import { dayOf, monthOf } from "../limits/level-state.js";

/**
 * Key names of the Redis store. Every key of one level shares the hash tag `{<level>}` so the level's
 * script touches one Redis Cluster slot; approvals share `{approvals}` so an approval and the index
 * are written together.
 */
export class RedisKeys {
  constructor(private readonly prefix: string) {}

  /** One level's keys by name. */
  levelNames(level: string, now: number) {
    const base = `${this.prefix}{${level}}`;
    return {
      rpm: `${base}:rpm`,
      tpm: `${base}:tpm`,
      // A sorted set of leases (call id -> expiry); named anew so it never meets the old `:parallel` counter.
      leases: `${base}:leases`,
      day: `${base}:day:${dayOf(now)}`,
      month: `${base}:month:${monthOf(now)}`,
      total: `${base}:total`,
      session: `${base}:session`,
      expiry: `${base}:expiry`,
      window: `${base}:window`,
      // What each call in flight reserved (call id -> "micros day-key month-key tokens"), given back when its lease ends unsettled.
      held: `${base}:held`,
    };
  }

  /** The KEYS of the level scripts, in the order src/state/lua/common.ts documents. */
  level(level: string, now: number): string[] {
    const k = this.levelNames(level, now);
    return [k.rpm, k.tpm, k.leases, k.day, k.month, k.total, k.session, k.expiry, k.window, k.held];
  }

  get keys(): string {
    return `${this.prefix}keys`;
  }

  get stops(): string {
    return `${this.prefix}stops`;
  }

  get changes(): string {
    return `${this.prefix}changes`;
  }

  /** How many replicas have applied the change announced as `id`. */
  applied(id: string): string {
    return `${this.prefix}applied:${id}`;
  }

  approval(id: string): string {
    return `${this.prefix}{approvals}:id:${id}`;
  }

  get approvalIndex(): string {
    return `${this.prefix}{approvals}:index`;
  }
}
