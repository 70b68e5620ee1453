import { randomBytes } from "node:crypto";

// Unique per process: 8 random bytes drawn once, plus a counter, instead of a CSPRNG call per id.
const processTag = randomBytes(8).toString("hex");
let sequence = 0;

/**
 * Sortable, unique ids: a time prefix for ordering in files, then this process's random tag and a
 * counter, so ids from replicas and restarts never collide. Not secrets: approval ids are checked
 * against the key and body they were issued for.
 */
export function newId(prefix: string, now: number): string {
  sequence = (sequence + 1) % 0x100000000;
  return `${prefix}_${now.toString(36).padStart(9, "0")}${processTag}${sequence.toString(16).padStart(8, "0")}`;
}

export type Clock = () => number;
export const systemClock: Clock = () => Date.now();
