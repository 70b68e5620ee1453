import { isRecord } from "../util/is-record.js";
import { measureString } from "./json-shape.js";
import { IMAGE_TOKENS, type Measure } from "./measure.js";

const IMAGE_PART_TYPES = new Set(["image_url", "input_image", "image"]);

/** Message content: a string, or an array of parts of which text, refusals and images count. */
export function measureContent(content: unknown, measure: Measure): number {
  if (typeof content === "string") return measure(content);
  if (!Array.isArray(content)) return 0;
  let total = 0;
  for (const part of content) total += measurePart(part, measure);
  return total;
}

function measurePart(part: unknown, measure: Measure): number {
  if (typeof part === "string") return measure(part);
  if (!isRecord(part)) return 0;
  if (typeof part.type === "string" && IMAGE_PART_TYPES.has(part.type)) return IMAGE_TOKENS;
  return measureString(part.text, measure) + measureString(part.refusal, measure);
}
