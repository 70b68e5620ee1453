import { clipped, GatewayError } from "../http/errors.js";
import { formatFieldPath } from "../util/field-path.js";
import { stringEnd } from "./json-text.js";
import { rememberRawJson } from "../util/raw-json.js";

const decoder = new TextDecoder("utf-8", { fatal: true });

/** One open object or array of the scan: an object's keys so far and the member being read, an array's index. */
interface Frame {
  object: boolean;
  /** Null until the first key: most frames of a call body are arrays or small objects. */
  keys: string[] | null;
  /** The keys as a set once an object has many (a long schema's `properties`): no quadratic search. */
  seen: Set<string> | null;
  key: string;
  expectKey: boolean;
  index: number;
}

export interface JsonScan {
  /** The deepest nesting of arrays and objects, counted up to `limit + 1`. */
  depth: number;
  /** The path of the first key that repeats an earlier key of its object, or null. */
  duplicate: (string | number)[] | null;
  /** Where the text nests past the limit: the path of the first object or array too deep, or null. */
  tooDeep: (string | number)[] | null;
}

const MANY_KEYS = 16;

/** A key as JSON.parse reads it; an invalid escape is left to that parse to refuse. */
function keyText(raw: string): string {
  if (!raw.includes("\\")) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}

/** Records `key` in its object; true when the object already had it. */
function repeats(frame: Frame, key: string): boolean {
  if (frame.seen !== null) {
    if (frame.seen.has(key)) return true;
    frame.seen.add(key);
    return false;
  }
  if (frame.keys === null) {
    frame.keys = [key];
    return false;
  }
  if (frame.keys.includes(key)) return true;
  frame.keys.push(key);
  if (frame.keys.length > MANY_KEYS) frame.seen = new Set(frame.keys);
  return false;
}

/**
 * One pass over a JSON text, before it is parsed: how deep it nests (so no later recursive walk can
 * overflow the stack on a hostile body) and whether an object repeats a key. JSON.parse keeps the
 * last of two equal keys, an upstream's parser may keep the first: the gateway would judge one
 * value and the upstream act on another. Never throws; an invalid text is left to JSON.parse.
 */
export function scanJson(text: string, limit: number): JsonScan {
  const stack: Frame[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // Just past the closing quote (the text's end for a string never closed, which JSON.parse refuses).
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (top?.expectKey === true) {
        const key = keyText(text.slice(i + 1, end - 1));
        if (repeats(top, key)) return { depth, duplicate: [...pathOf(stack.slice(0, -1)), key], tooDeep: null };
        top.key = key;
        top.expectKey = false;
      }
      i = end - 1;
    } else if (c === 123 || c === 91) {
      stack.push({ object: c === 123, keys: null, seen: null, key: "", expectKey: c === 123, index: 0 });
      if (stack.length > depth) {
        depth = stack.length;
        if (depth > limit) return { depth, duplicate: null, tooDeep: pathOf(stack.slice(0, -1)) };
      }
    } else if (c === 125 || c === 93) {
      stack.pop();
    } else if (c === 44) {
      const top = stack[stack.length - 1];
      if (top === undefined) continue;
      if (top.object) top.expectKey = true;
      else top.index++;
    }
  }
  return { depth, duplicate: null, tooDeep: null };
}

/** Where the scan is: each open object's current key, each open array's index. */
function pathOf(frames: readonly Frame[]): (string | number)[] {
  return frames.map((frame) => (frame.object ? frame.key : frame.index));
}

/** An object's or array's kind at each depth of `countKeys`' pass, reused (grown for a deeper limit). */
let kinds = new Uint8Array(128);
const OBJECT = 1;

/**
 * How deep a JSON text nests and how many members its objects have, without allocating: the first
 * pass over every call's body. Only a body that nests too deep or holds fewer members once parsed
 * (an object repeated a key) is scanned again by `scanJson` for the path to name.
 */
function countKeys(text: string, limit: number): { depth: number; keys: number; toolsStart: number; toolsEnd: number } {
  if (kinds.length < limit + 2) kinds = new Uint8Array(limit + 2);
  let depth = 0;
  let deepest = 0;
  let keys = 0;
  let expectKey = false;
  // The span of the top-level `tools` member's value, when it is an array or object.
  let toolsNext = false;
  let toolsStart = -1;
  let toolsEnd = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      if (expectKey) {
        keys++;
        expectKey = false;
        toolsNext = depth === 1 && toolsStart === -1 && text.startsWith(TOOLS_KEY, i);
      }
      i = stringEnd(text, i) - 1;
    } else if (c === 123 || c === 91) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (depth > limit) break;
      }
      kinds[depth] = c === 123 ? OBJECT : 0;
      expectKey = c === 123;
      if (toolsNext && depth === 2) toolsStart = i;
      toolsNext = false;
    } else if (c === 125 || c === 93) {
      if (depth === 2 && toolsStart !== -1 && toolsEnd === -1) toolsEnd = i + 1;
      if (depth > 0) depth--;
      expectKey = false;
    } else if (c === 44) {
      expectKey = depth > 0 && kinds[depth] === OBJECT;
      if (depth === 1) toolsNext = false;
    }
  }
  return { depth: deepest, keys, toolsStart, toolsEnd };
}

const TOOLS_KEY = '"tools"';

/** Members of every object in a parsed value (its depth was checked first). */
function membersOf(value: unknown): number {
  if (typeof value !== "object" || value === null) return 0;
  let count = 0;
  if (Array.isArray(value)) {
    for (const item of value) count += membersOf(item);
    return count;
  }
  for (const key in value) count += 1 + membersOf((value as Record<string, unknown>)[key]);
  return count;
}

/** Decodes and parses a request body: invalid UTF-8 or JSON is `invalid_json`, too deep is `invalid_body`. */
export function parseJsonBody(bytes: Buffer, maxDepth: number): unknown {
  // The decoder would drop a BOM silently, but the body goes upstream (and into an approval's hash)
  // as the bytes sent: refused, as OpenAI's API refuses it, rather than judged on other text than it sees.
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw new GatewayError(400, "invalid_json", "the request body starts with a UTF-8 byte order mark; send the JSON without one");
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new GatewayError(400, "invalid_json", "the request body is not valid UTF-8");
  }
  const counted = countKeys(text, maxDepth);
  if (counted.depth > maxDepth) {
    const param = clipped(formatFieldPath(scanJson(text, maxDepth).tooDeep ?? []));
    throw new GatewayError(400, "invalid_body", `the request body is nested deeper than ${maxDepth} levels (at \`${param}\`)`, { param });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof SyntaxError ? `: ${error.message}` : "";
    throw new GatewayError(400, "invalid_json", `the request body is not valid JSON${detail}`);
  }
  // JSON.parse keeps one member of a repeated key: fewer members than the text has keys.
  const duplicate = membersOf(body) === counted.keys ? null : scanJson(text, maxDepth).duplicate;
  if (duplicate !== null) {
    const param = formatFieldPath(duplicate);
    throw new GatewayError(400, "invalid_body", `\`${clipped(param)}\` appears twice in one object: send each member once`, { param: clipped(param) });
  }
  if (counted.toolsEnd !== -1) {
    const tools = (body as { tools?: unknown }).tools;
    if (typeof tools === "object" && tools !== null) rememberRawJson(tools, text.slice(counted.toolsStart, counted.toolsEnd));
  }
  return body;
}
