import type { Principal } from "../auth/keys.js";
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

/**
 * The attributes of one evaluation. Eager values are plain fields; lazy ones are computed once, on
 * the first rule that reads them, so a call pays only for what its rules need.
 */
export class CallFacts implements Facts {
  private readonly values = new Map<string, unknown>();
  private readonly lazy: Partial<Record<string, () => unknown>>;

  constructor(input: CallFactsInput, private readonly parent: CallFacts | null = null) {
    this.lazy = input.lazy;
    if (parent !== null) return;
    const subject = input.principal?.subject;
    const date = new Date(input.now);
    const weekday = date.getUTCDay();
    this.values.set("key_id", input.principal?.keyId);
    this.values.set("user", subject?.user);
    this.values.set("user_role", subject?.role);
    this.values.set("team", subject?.team);
    this.values.set("purpose", subject?.purpose);
    this.values.set("org", input.org);
    this.values.set("action", input.action);
    this.values.set("model", input.model);
    this.values.set("stream", input.stream);
    this.values.set("tools", input.tools);
    this.values.set("session_id", input.sessionId);
    this.values.set("ip", input.ip);
    this.values.set("user_agent", input.userAgent);
    this.values.set("hour", date.getUTCHours());
    this.values.set("weekday", weekday === 0 ? 7 : weekday);
  }

  get(attribute: string): unknown {
    const known = this.values.get(attribute);
    if (known !== undefined || this.values.has(attribute)) return known;
    const thunk = this.lazy[attribute];
    if (thunk !== undefined) {
      const value = thunk();
      this.values.set(attribute, value);
      return value;
    }
    return this.parent?.get(attribute);
  }

  /** The facts of a `tool.register` or `tool.call` evaluation: this call's, plus the tool's own. */
  forTool(action: "tool.register" | "tool.call", tool: string, argsJson: string | null): CallFacts {
    const child = new CallFacts({ ...EMPTY_INPUT, lazy: {} }, this);
    child.values.set("action", action);
    child.values.set("tool", tool);
    if (argsJson !== null) {
      child.values.set("tool_args_json", argsJson);
      child.values.set("tool_args", parseArgs(argsJson));
    }
    return child;
  }

  /** Makes a fact known, e.g. usage counters fetched from the store before evaluation. */
  set(attribute: string, value: unknown): void {
    this.values.set(attribute, value);
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

/** Unparsable arguments are a fact too: `tool_args` is then missing while `tool_args_json` holds the text. */
function parseArgs(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}
