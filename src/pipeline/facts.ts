import JSON5 from "json5";
import type { Principal } from "../auth/keys.js";
import { ATTRIBUTE_NAMES } from "../policy/attributes.js";
import type { Action, Facts } from "../policy/types.js";

/** Values a call's facts start from; the expensive ones are thunks, computed on first read. */
export interface CallFactsInput {
  principal: Principal | null;
  org: string;
  action: Action;
  model: string | null;
  stream: boolean;
  tools: string[];
  sessionId: string | null;
  ip: string | null;
  userAgent: string | null;
  now: number;
  lazy: Partial<Record<LazyAttribute, () => unknown>>;
}

export type LazyAttribute =
  | "estimated_cost"
  | "input_tokens"
  | "max_output_tokens"
  | "prompt_text"
  | "data_classification"
  | "pii_types"
  | "requests_last_minute"
  | "tokens_last_minute"
  | "daily_spend"
  | "monthly_spend"
  | "total_spend"
  | "session_cost";

/** Every fact a call can hold: the attributes, plus `tool_args` whole (conditions read paths into it). */
const FACT_NAMES: readonly string[] = [...ATTRIBUTE_NAMES, "tool_args"];
const SLOT = new Map(FACT_NAMES.map((name, index) => [name, index]));
/** A slot not yet known; `undefined` is a value (the call does not have the attribute). */
const UNSET: unique symbol = Symbol("unset");
const UNSET_SLOTS: readonly unknown[] = FACT_NAMES.map(() => UNSET);

function slotOf(attribute: string): number {
  const slot = SLOT.get(attribute);
  if (slot === undefined) throw new Error(`unknown fact \`${attribute}\``);
  return slot;
}

/**
 * The attributes of one evaluation. Eager values are set at once; lazy ones are computed once, on
 * the first rule that reads them, so a call pays only for what its rules need. Values sit in a
 * fixed slot array, a third of the memory a Map of them took for as long as a stream is open.
 */
export class CallFacts implements Facts {
  private readonly slots: unknown[] = UNSET_SLOTS.slice();
  private readonly lazy: Partial<Record<string, () => unknown>>;

  constructor(input: CallFactsInput, private readonly parent: CallFacts | null = null) {
    this.lazy = input.lazy;
    if (parent !== null) return;
    const subject = input.principal?.subject;
    const date = new Date(input.now);
    const weekday = date.getUTCDay();
    this.set("key_id", input.principal?.keyId);
    this.set("user", subject?.user);
    this.set("user_role", subject?.role);
    this.set("team", subject?.team);
    this.set("purpose", subject?.purpose);
    this.set("org", input.org);
    this.set("action", input.action);
    this.set("model", input.model);
    this.set("stream", input.stream);
    this.set("tools", input.tools);
    this.set("session_id", input.sessionId);
    this.set("ip", input.ip);
    this.set("user_agent", input.userAgent);
    this.set("hour", date.getUTCHours());
    this.set("weekday", weekday === 0 ? 7 : weekday);
  }

  get(attribute: string): unknown {
    const slot = SLOT.get(attribute);
    if (slot === undefined) return undefined;
    const known = this.slots[slot];
    if (known !== UNSET) return known;
    const thunk = this.lazy[attribute];
    if (thunk !== undefined) {
      const value = thunk();
      this.slots[slot] = value;
      return value;
    }
    return this.parent?.get(attribute);
  }

  /** The facts of a `tool.register` or `tool.call` evaluation: this call's, plus the tool's own. */
  forTool(action: "tool.register" | "tool.call", tool: string, argsJson: string | null): CallFacts {
    const child = new CallFacts({ ...EMPTY_INPUT, lazy: {} }, this);
    child.set("action", action);
    child.set("tool", tool);
    if (argsJson !== null) {
      const { json, args } = toolArgsFacts(argsJson);
      child.set("tool_args_json", json);
      child.set("tool_args", args);
    }
    return child;
  }

  /** Makes a fact known, e.g. usage counters fetched from the store before evaluation. */
  set(attribute: string, value: unknown): void {
    this.slots[slotOf(attribute)] = value;
  }
}

const EMPTY_INPUT: CallFactsInput = {
  principal: null,
  org: "",
  action: "chat.completions",
  model: null,
  stream: false,
  tools: [],
  sessionId: null,
  ip: null,
  userAgent: null,
  now: 0,
  lazy: {},
};

/**
 * A tool call's arguments as its two facts. `tool_args_json` is the text as written, and where
 * escapes hide what it says (`\u0070roduction`), the arguments written plainly after it on a line of
 * their own: a rule matching the text sees what the tool will be given, as the escapes decode.
 */
export function toolArgsFacts(argsJson: string): { json: string; args: unknown } {
  const args = parseArgs(argsJson);
  if (!argsJson.includes("\\") || args === undefined) return { json: argsJson, args };
  const plain = JSON.stringify(args);
  return { json: plain === argsJson ? argsJson : `${argsJson}\n${plain}`, args };
}

/**
 * A tool call's arguments for `tool_args.<path>`. A model's JSON is sometimes not quite JSON (a
 * trailing comma, single quotes) or encoded twice (a JSON string holding the object): agent
 * frameworks repair it and run the call, so the rules read it as repaired (JSON5, decoded again)
 * rather than find no arguments and let the call through unjudged. Unparsable arguments are a fact
 * too: `tool_args` is then missing while `tool_args_json` holds the text.
 */
function parseArgs(json: string): unknown {
  const parsed = parseLenient(json);
  if (typeof parsed !== "string") return parsed;
  const inner = parseLenient(parsed);
  return inner !== null && typeof inner === "object" ? inner : parsed;
}

function parseLenient(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    try {
      return JSON5.parse(json);
    } catch {
      // Raw control characters (a line break) inside strings: Python's `json.loads(strict=False)`, which
      // LangChain's tool-call parser uses, reads them, so the call runs with them.
      const escaped = escapeControlsInStrings(json);
      if (escaped === json) return undefined;
      try {
        return JSON5.parse(escaped);
      } catch {
        return undefined;
      }
    }
  }
}

/** The text with each raw control character inside a string literal written as its escape. */
function escapeControlsInStrings(text: string): string {
  let out = "";
  let quote = 0;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (quote !== 0 && c === 92) {
      i++;
    } else if (quote === 0 && (c === 34 || c === 39)) {
      quote = c;
    } else if (c === quote) {
      quote = 0;
    } else if (quote !== 0 && c < 0x20) {
      out += `${text.slice(from, i)}\\u${c.toString(16).padStart(4, "0")}`;
      from = i + 1;
    }
  }
  return from === 0 ? text : out + text.slice(from);
}
