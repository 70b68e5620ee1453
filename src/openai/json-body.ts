import { GatewayError } from "../http/errors.js";

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The deepest nesting of arrays and objects in a JSON text, found by one scan that skips strings.
 * Done before parsing so no later recursive walk can overflow the stack on a hostile body.
 */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 125 || c === 93) depth--;
  }
  return deepest;
}

/**
 * True when the bytes hold at most `limit` `{` and `[` in all: then no nesting can pass `limit`.
 * A native search per bracket instead of the exact scan, which most bodies never need.
 */
function fewBrackets(bytes: Buffer, limit: number): boolean {
  let count = 0;
  for (const bracket of [0x7b, 0x5b]) {
    for (let at = bytes.indexOf(bracket); at !== -1; at = bytes.indexOf(bracket, at + 1)) {
      if (++count > limit) return false;
    }
  }
  return true;
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
  if (!fewBrackets(bytes, maxDepth) && jsonDepth(text, maxDepth) > maxDepth) {
    throw new GatewayError(400, "invalid_body", `the request body is nested deeper than ${maxDepth} levels`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    const detail = error instanceof SyntaxError ? `: ${error.message}` : "";
    throw new GatewayError(400, "invalid_json", `the request body is not valid JSON${detail}`);
  }
}
