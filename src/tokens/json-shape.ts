import type { Measure } from "./measure.js";

export function measureString(value: unknown, measure: Measure): number {
  return typeof value === "string" ? measure(value) : 0;
}

/** Tool and function definitions are sent to the model as text, so their JSON approximates them. */
export function measureJson(value: unknown, measure: Measure): number {
  if (value === undefined || value === null) return 0;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    // Only non-JSON values (cycles, BigInt) get here; bodies parsed from JSON never do.
    return 0;
  }
  return typeof json === "string" ? measure(json) : 0;
}
