import { rawJsonOf } from "../util/raw-json.js";
import { TextCache } from "../util/text-cache.js";
import type { Measure } from "./measure.js";

export function measureString(value: unknown, measure: Measure): number {
  return typeof value === "string" ? measure(value) : 0;
}

/** Counts by the JSON text a value was parsed from, per measure: a client's tool definitions recur on every call. */
const byRawText = new WeakMap<Measure, TextCache<number>>();

/** Tool and function definitions are sent to the model as text, so their JSON approximates them. */
export function measureJson(value: unknown, measure: Measure): number {
  if (value === undefined || value === null) return 0;
  const raw = rawJsonOf(value);
  if (raw === undefined) return measureSerialised(value, measure);
  let counts = byRawText.get(measure);
  if (counts === undefined) {
    counts = new TextCache<number>(1024, 1024 * 1024);
    byRawText.set(measure, counts);
  }
  const known = counts.get(raw);
  if (known !== undefined) return known;
  const measured = measureSerialised(value, measure);
  // A copy: the text is a slice of the whole request body, which the cache must not keep.
  counts.set(Buffer.from(raw, "utf8").toString("utf8"), measured);
  return measured;
}

function measureSerialised(value: unknown, measure: Measure): number {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    // Only non-JSON values (cycles, BigInt) get here; bodies parsed from JSON never do.
    return 0;
  }
  return typeof json === "string" ? measure(json) : 0;
}
