import type { Measure } from "./measure.js";

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

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
  return typeof json === "string" ? measureDefinitions(json, measure) : 0;
}

/**
 * The sizes of recent definitions per measure: a client sends the same tools on every call, and
 * counting their JSON was most of a call's token count. Bounded in entries and in text kept.
 */
const definitionSizes = new WeakMap<Measure, Map<string, number>>();
const MAX_DEFINITIONS = 128;
const MAX_DEFINITION_CHARS = 32_768;

function measureDefinitions(json: string, measure: Measure): number {
  if (json.length > MAX_DEFINITION_CHARS) return measure(json);
  let sizes = definitionSizes.get(measure);
  if (sizes === undefined) {
    sizes = new Map();
    definitionSizes.set(measure, sizes);
  }
  const known = sizes.get(json);
  if (known !== undefined) return known;
  const size = measure(json);
  // Maps iterate in insertion order: the first key is the oldest.
  if (sizes.size >= MAX_DEFINITIONS) sizes.delete(sizes.keys().next().value as string);
  sizes.set(json, size);
  return size;
}
