/**
 * Test steering: the last user message carries `key:value` directives so every
 * scenario is reproducible from the request alone (no shared mock state).
 * The full list is documented in mock/README.md.
 */

export interface DirectedToolCall {
  name: string;
  /** JSON text, exactly as it will appear in `arguments`. */
  arguments: string;
}

export interface Directives {
  say: string | undefined;
  echoPrompt: boolean;
  tokens: number | undefined;
  chunks: number | undefined;
  delayMs: number | undefined;
  error: number | undefined;
  errorRaw: number | undefined;
  retryAfter: number | undefined;
  slowHeadersMs: number | undefined;
  stallAfter: number | undefined;
  resetAfter: number | undefined;
  truncateAfter: number | undefined;
  errorAfter: number | undefined;
  malformedSse: boolean;
  noUsage: boolean;
  legacyFunctionCall: boolean;
  useTool: boolean;
  toolCalls: DirectedToolCall[];
  finishReason: string | undefined;
  cachedTokens: number | undefined;
}

export function emptyDirectives(): Directives {
  return {
    say: undefined,
    echoPrompt: false,
    tokens: undefined,
    chunks: undefined,
    delayMs: undefined,
    error: undefined,
    errorRaw: undefined,
    retryAfter: undefined,
    slowHeadersMs: undefined,
    stallAfter: undefined,
    resetAfter: undefined,
    truncateAfter: undefined,
    errorAfter: undefined,
    malformedSse: false,
    noUsage: false,
    legacyFunctionCall: false,
    useTool: false,
    toolCalls: [],
    finishReason: undefined,
    cachedTokens: undefined,
  };
}

const NUMERIC = {
  tokens: "tokens",
  chunks: "chunks",
  delay: "delayMs",
  error: "error",
  error_raw: "errorRaw",
  retry_after: "retryAfter",
  slow_headers: "slowHeadersMs",
  stall_after: "stallAfter",
  reset_after: "resetAfter",
  truncate_after: "truncateAfter",
  error_after: "errorAfter",
  cached: "cachedTokens",
} as const satisfies Record<string, keyof Directives>;

const FLAGS = {
  malformed_sse: "malformedSse",
  no_usage: "noUsage",
  legacy_function_call: "legacyFunctionCall",
  echo_prompt: "echoPrompt",
} as const satisfies Record<string, keyof Directives>;

// Keys are anchored to a word start so prose like "the error: foo" is not
// mistaken for a directive unless it really is `error:NNN`.
const TOKEN = /(?<![\w-])([a-z_]+)(?::(\S*))?/g;

export function parseDirectives(text: string): Directives {
  const d = emptyDirectives();
  if (/\buse a tool\b/i.test(text)) d.useTool = true;
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m !== null; m = TOKEN.exec(text)) {
    const key = m[1] ?? "";
    const value = m[2];
    if (value === undefined) {
      if (key in FLAGS) d[FLAGS[key as keyof typeof FLAGS]] = true;
      continue;
    }
    if (key === "say") {
      // `say:` owns the rest of its line so the text may contain spaces.
      const start = m.index + key.length + 1;
      const nl = text.indexOf("\n", start);
      const end = nl === -1 ? text.length : nl;
      d.say = text.slice(start, end).trim();
      TOKEN.lastIndex = end;
    } else if (key === "call_tool" && value !== "") {
      const after = m.index + m[0].length;
      const json = readJsonObject(text, after);
      d.toolCalls.push({ name: value, arguments: json?.text ?? "{}" });
      if (json) TOKEN.lastIndex = json.end;
    } else if (key === "finish" && value !== "") {
      d.finishReason = value;
    } else if (key in NUMERIC) {
      const n = Number.parseInt(value, 10);
      if (Number.isFinite(n) && n >= 0) d[NUMERIC[key as keyof typeof NUMERIC]] = n;
    }
  }
  return d;
}

/**
 * Reads a balanced `{...}` starting after optional spaces at `from`, re-serialised
 * compactly so `arguments` is canonical JSON regardless of how the test wrote it (text that is
 * not JSON stays as written).
 */
function readJsonObject(text: string, from: number): { text: string; end: number } | undefined {
  let i = from;
  while (text[i] === " " || text[i] === "\t") i++;
  if (text[i] !== "{") return undefined;
  let depth = 0;
  let inString = false;
  for (let j = i; j < text.length; j++) {
    const c = text[j];
    if (inString) {
      if (c === "\\") j++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) {
      try {
        return { text: JSON.stringify(JSON.parse(text.slice(i, j + 1))), end: j + 1 };
      } catch {
        // Near-JSON (a trailing comma), as models sometimes write it: passed on as written.
        return { text: text.slice(i, j + 1), end: j + 1 };
      }
    }
  }
  return undefined;
}
