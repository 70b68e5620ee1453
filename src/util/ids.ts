import { randomBytes } from "node:crypto";

/** Sortable, unique request ids: time prefix for ordering in files, random suffix for uniqueness. */
export function newId(prefix: string, now: number): string {
  return `${prefix}_${now.toString(36).padStart(9, "0")}${randomBytes(8).toString("hex")}`;
}

export type Clock = () => number;
export const systemClock: Clock = () => Date.now();
