import { JoinedText } from "../util/joined-text.js";
import { isRecord } from "../util/is-record.js";

/** What the gateway reads from a model's answer: its tool calls, usage and text (for counting). */
export interface ToolCall {
  name: string;
  arguments: string;
  /** Other names a client may take the call by: each is judged too, and a DENY of any refuses it. */
  aliases?: string[];
  /** A built-in tool the upstream ran itself (a search, the code interpreter): nothing waits on the client. */
  ranUpstream?: boolean;
  /**
   * Another version of a call already listed (a stream's events named or spelled it otherwise): judged
   * as a call of its own, since a client may act on either, but not counted as one more call.
   */
  variant?: true;
}

export interface AnswerSummary {
  usage: Record<string, unknown> | null;
  toolCalls: ToolCall[];
  text: string;
}

type Json = Record<string, unknown>;

const str = (value: unknown): string => (typeof value === "string" ? value : "");

/**
 * A call's arguments as text: the string OpenAI sends, or the JSON of an object a lenient upstream
 * sends in its place, which a client's framework hands its tool as it came (rules must read it too).
 */
const argumentsOf = (value: unknown): string => (typeof value === "object" && value !== null ? JSON.stringify(value) : str(value));

/** A chat tool call's (or delta's) name and arguments: `function.arguments`, or a custom tool's free-form `custom.input`. */
function callParts(call: Json): { name?: unknown; arguments?: unknown } | null {
  if (isRecord(call.function)) return call.function;
  if (isRecord(call.custom)) return { name: call.custom.name, arguments: call.custom.input };
  return null;
}

/**
 * Responses calls of built-in tools, named by the tool type a request declares, so one rule on `tool`
 * governs the declaration and the call (the computer tool by both of its types). Those the client
 * runs (shell, computer, patches) are judged before anything runs; those the upstream runs
 * (searches, code, images) have run, and a DENY keeps their result from the client.
 */
const BUILT_IN_CALLS: Readonly<Record<string, readonly string[]>> = {
  local_shell_call: ["local_shell"],
  shell_call: ["shell"],
  computer_call: ["computer_use_preview", "computer"],
  apply_patch_call: ["apply_patch"],
  web_search_call: ["web_search"],
  file_search_call: ["file_search"],
  code_interpreter_call: ["code_interpreter"],
  image_generation_call: ["image_generation"],
  tool_search_call: ["tool_search"],
};

/**
 * Calls of an MCP server's tools, named by the MCP tool: one the client is asked to approve
 * (`mcp_approval_request`), and one the upstream made (`mcp_call`), whose result a DENY keeps from
 * the client and whose record says what ran.
 */
const MCP_CALLS = new Set(["mcp_call", "mcp_approval_request"]);

const UPSTREAM_RUN = new Set(["web_search_call", "file_search_call", "code_interpreter_call", "image_generation_call", "tool_search_call"]);

/** Output items that call nothing. Any other item that has a name, or whose type ends in `_call`, is a call. */
const NOT_CALLS = new Set(["message", "reasoning", "mcp_list_tools", "compaction"]);

const isToolCallItem = (item: unknown): item is Json =>
  isRecord(item) && typeof item.type === "string" && !NOT_CALLS.has(item.type) && (typeof item.name === "string" || item.type.endsWith("_call") || Object.hasOwn(BUILT_IN_CALLS, item.type));

/**
 * A Responses output item that calls a tool: a function's (or an MCP tool's) `arguments`, a custom
 * tool's `input`, or a built-in tool's `action` (or `operation`, or its code and queries) as JSON,
 * which `tool_args` rules read. An item of a type the gateway does not know is named by its `name`,
 * and by its type too, so a rule on either applies.
 */
function outputItemCall(item: Json): ToolCall {
  const type = item.type as string;
  if (type === "function_call" || MCP_CALLS.has(type)) return { name: str(item.name), arguments: argumentsOf(item.arguments) };
  if (type === "custom_tool_call") return { name: str(item.name), arguments: str(item.input) };
  const builtIn = Object.hasOwn(BUILT_IN_CALLS, type) ? BUILT_IN_CALLS[type] : undefined;
  const base = type.replace(/_call$/, "");
  const [primary, ...others] = builtIn ?? [typeof item.name === "string" ? item.name : base, base, type];
  const text = argumentsOf(item.arguments) || str(item.input);
  const aliases = [...new Set(others)].filter((alias) => alias !== primary);
  return {
    name: primary as string,
    arguments: text !== "" ? text : JSON.stringify(item.action ?? item.operation ?? builtInInput(item)),
    ...(aliases.length > 0 ? { aliases } : {}),
    ...(UPSTREAM_RUN.has(type) ? { ranUpstream: true } : {}),
  };
}

/** What a built-in call without an `action` was given: the code it runs, the queries it makes. */
function builtInInput(item: Json): Json {
  const input: Json = {};
  for (const name of ["code", "queries", "query", "prompt"]) if (item[name] !== undefined) input[name] = item[name];
  return input;
}

/** The text of a Responses `message` item's content parts (empty for any other item). */
function messageText(item: Json): string {
  if (item.type !== "message" || !Array.isArray(item.content)) return "";
  let text = "";
  for (const part of item.content) if (isRecord(part)) text += str(part.text);
  return text;
}

/** The calls an answer makes, without the other versions of them a stream carried: what runs, and counts. */
export function distinctCalls<T extends { variant?: true }>(calls: readonly T[]): T[] {
  return calls.filter((call) => call.variant !== true);
}

/** Tool calls and usage of a non-streamed chat completion or Responses answer. */
export function summarizeAnswer(answer: unknown): AnswerSummary {
  const summary: AnswerSummary = { usage: null, toolCalls: [], text: "" };
  if (!isRecord(answer)) return summary;
  if (isRecord(answer.usage)) summary.usage = answer.usage;
  if (Array.isArray(answer.choices)) {
    for (const choice of answer.choices) {
      const message = isRecord(choice) && isRecord(choice.message) ? choice.message : null;
      if (message === null) continue;
      summary.text += str(message.content);
      if (Array.isArray(message.tool_calls)) {
        for (const call of message.tool_calls) {
          const named = isRecord(call) ? callParts(call) : null;
          if (named !== null) summary.toolCalls.push({ name: str(named.name), arguments: argumentsOf(named.arguments) });
        }
      }
      if (isRecord(message.function_call)) {
        summary.toolCalls.push({ name: str(message.function_call.name), arguments: argumentsOf(message.function_call.arguments) });
      }
    }
  }
  if (Array.isArray(answer.output)) {
    for (const item of answer.output) {
      if (!isRecord(item)) continue;
      if (isToolCallItem(item)) summary.toolCalls.push(outputItemCall(item));
      summary.text += messageText(item);
    }
  }
  return summary;
}

/** An upstream error's message, its code where it has none. */
function errorMessage(error: Json): string {
  return str(error.message) || str(error.code) || "no message";
}

/** Choice indexes past this are not tracked for completeness (`n` is at most 128). */
const MAX_CHOICES = 128;

/** A Responses event's call key: its output index, or `fallback` for an event without one. */
function responsesKey(event: Json, fallback: number): string {
  return `output:${typeof event.output_index === "number" ? event.output_index : fallback}`;
}

/**
 * A fold over a stream's events (chat chunks or Responses events): accumulates usage, text and tool
 * calls, and says whether an event is the usage-only chunk the client did not ask for.
 */
export class StreamAccumulator {
  usage: Record<string, unknown> | null = null;
  private readonly deltas = new JoinedText();
  /**
   * Tool calls as their deltas arrive, in the order they start: a chat call by its choice and its
   * index in that choice (`n` > 1 streams every choice's calls side by side), a Responses call by its output index.
   */
  private readonly calls = new Map<string, ToolCall>();
  /**
   * A chat call whose name came in more than one delta, by its key: the last part. Clients read
   * that differently (Python's SDK joins the parts, Node's keeps the last), so both names are judged.
   */
  private lastNameParts: Map<string, string> | null = null;
  /** Chunks seen carrying a whole `message`. */
  private wholeMessages = 0;
  /** Chat choices seen, by index, and whether each has its `finish_reason` (a hole: not seen). */
  private readonly choicesFinished: boolean[] = [];
  toolCallSeen = false;
  /** A call was seen that `holds` says the events from it on must wait for. */
  holding = false;
  /** The stream's end was announced: `[DONE]`, or a Responses stream's final event. */
  done = false;
  /** The message of an error event the upstream sent in the stream (it reaches the client as sent). */
  failure: string | null = null;
  /**
   * The failure is a `response.failed` whose output calls tools: SDKs do not raise on that event but
   * hand its response to the client as the final answer, calls and all, so they must be judged.
   */
  failedWithCalls = false;

  /** `holds` says which calls the events from them on wait for (the rest of the answer flows live). */
  constructor(private readonly holds: (call: ToolCall) => boolean = () => false) {}

  /** Text of Responses message items in their `output_item.done` events. */
  private readonly itemText = new JoinedText();
  /** The longest text of messages in a Responses event's whole `response.output`. */
  private outputText = "";

  /**
   * The text the stream carried so far (needed only when the upstream sends no usage): its deltas, or
   * where a Responses stream carried more in its whole items, that.
   */
  get text(): string {
    let text = this.deltas.toString();
    const items = this.itemText.toString();
    if (items.length > text.length) text = items;
    return this.outputText.length > text.length ? this.outputText : text;
  }

  /** Returns true when the event is a usage-only chunk (empty `choices`). */
  observe(data: unknown): boolean {
    if (!isRecord(data)) return false;
    if (typeof data.type === "string") {
      this.observeResponsesEvent(data);
      return false;
    }
    if (isRecord(data.usage)) this.usage = data.usage;
    if (isRecord(data.error)) this.failure = errorMessage(data.error);
    const choices = data.choices;
    if (!Array.isArray(choices)) return false;
    for (const choice of choices) {
      if (isRecord(choice) && isRecord(choice.message)) this.observeWholeMessage(choice.message);
      const delta = isRecord(choice) && isRecord(choice.delta) ? choice.delta : null;
      if (delta === null) continue;
      const choiceIndex = typeof choice.index === "number" ? choice.index : 0;
      if (Number.isInteger(choiceIndex) && choiceIndex >= 0 && choiceIndex < MAX_CHOICES && this.choicesFinished[choiceIndex] !== true) {
        this.choicesFinished[choiceIndex] = typeof choice.finish_reason === "string";
      }
      if (typeof delta.content === "string") this.deltas.add(delta.content);
      if (Array.isArray(delta.tool_calls)) {
        for (const part of delta.tool_calls) {
          if (isRecord(part)) this.extend(`${choiceIndex}:${typeof part.index === "number" ? part.index : 0}`, callParts(part) ?? {});
        }
      }
      if (isRecord(delta.function_call)) this.extend(`${choiceIndex}:function_call`, delta.function_call);
    }
    return choices.length === 0 && isRecord(data.usage);
  }

  /**
   * A chunk whose choice carries a whole `message` is not OpenAI's shape, but SDKs merge a chunk
   * choice's other fields into the answer they build: its calls are calls too, each message's
   * judged on its own (a later one does not hide an earlier one's).
   */
  private observeWholeMessage(message: Json): void {
    const occurrence = this.wholeMessages++;
    if (Array.isArray(message.tool_calls)) {
      message.tool_calls.forEach((part, i) => {
        const parts = isRecord(part) ? callParts(part) : null;
        if (parts !== null) this.note(`message:${occurrence}:${i}`, { name: str(parts.name), arguments: argumentsOf(parts.arguments) });
      });
    }
    if (isRecord(message.function_call)) {
      this.note(`message:${occurrence}:function_call`, { name: str(message.function_call.name), arguments: argumentsOf(message.function_call.arguments) });
    }
  }

  private extend(key: string, part: { name?: unknown; arguments?: unknown }): void {
    const call = this.calls.get(key) ?? { name: "", arguments: "" };
    const name = str(part.name);
    if (name !== "" && call.name !== "") {
      this.lastNameParts ??= new Map();
      this.lastNameParts.set(key, name);
    }
    call.name += name;
    call.arguments += argumentsOf(part.arguments);
    this.note(key, call);
  }

  private note(key: string, call: ToolCall): void {
    this.calls.set(key, call);
    this.toolCallSeen = true;
    if (!this.holding && this.holds(call)) this.holding = true;
  }

  private observeResponsesEvent(event: Json): void {
    // Every lifecycle event (created, in progress, completed, even one after the end) carries the
    // response as it stands, and an SDK's final answer is the last one it saw: each one's calls are judged.
    if (isRecord(event.response) && Array.isArray(event.response.output)) this.observeOutput(event.response.output);
    switch (event.type) {
      case "response.output_text.delta":
        this.deltas.add(str(event.delta));
        break;
      case "response.output_item.added":
        if (isToolCallItem(event.item)) {
          // Kept from its first event, so a stream cut short still counts the arguments it carried.
          this.note(responsesKey(event, this.calls.size), outputItemCall(event.item));
        }
        break;
      case "response.function_call_arguments.delta": {
        const call = typeof event.output_index === "number" ? this.calls.get(responsesKey(event, -1)) : undefined;
        if (call !== undefined) call.arguments += str(event.delta);
        break;
      }
      case "response.output_item.done":
        if (isToolCallItem(event.item)) this.noteVersion(responsesKey(event, this.calls.size), outputItemCall(event.item));
        else if (isRecord(event.item)) this.itemText.add(messageText(event.item));
        break;
      case "response.function_call_arguments.done":
      case "response.mcp_call_arguments.done":
      case "response.custom_tool_call_input.done":
        this.observeDoneArguments(event, argumentsOf(event.type === "response.custom_tool_call_input.done" ? event.input : event.arguments));
        break;
      case "error":
        this.failure = errorMessage(event);
        break;
      case "response.failed":
        this.failure = errorMessage(isRecord(event.response) && isRecord(event.response.error) ? event.response.error : {});
        this.failedWithCalls = isRecord(event.response) && Array.isArray(event.response.output) && event.response.output.some(isToolCallItem);
        this.finish(event);
        break;
      case "response.completed":
      case "response.incomplete":
        this.finish(event);
        break;
    }
  }

  /**
   * An SDK hands a client the arguments a `*.done` event carries as they are: where they differ from
   * what the deltas built, the call is judged with them too.
   */
  private observeDoneArguments(event: Json, args: string): void {
    if (typeof event.output_index !== "number") return;
    const key = responsesKey(event, -1);
    const call = this.calls.get(key);
    // The event may name the call too (an SDK hands the client that name with these arguments).
    const name = str(event.name);
    if (call !== undefined) this.noteVersion(key, { ...call, name: name === "" ? call.name : name, arguments: args });
  }

  /**
   * A call in a response's output is judged too where the item events did not carry it or carried it
   * otherwise; the text of its messages is what the answer said where no delta carried it.
   */
  private observeOutput(output: unknown[]): void {
    let text = "";
    output.forEach((item, i) => {
      if (isToolCallItem(item)) this.noteVersion(`output:${i}`, outputItemCall(item));
      else if (isRecord(item)) text += messageText(item);
    });
    if (text.length > this.outputText.length) this.outputText = text;
  }

  /**
   * Another event's version of the call at `key`. One that completes it (the same name, or a first
   * name; arguments that go on from what streamed so far) takes its place; one that names or spells it
   * otherwise is a variant, judged on its own and kept, so a later event cannot replace what the client
   * already saw (an SDK hands out the deltas, the `*.done` events and the final output alike).
   */
  private noteVersion(key: string, call: ToolCall): void {
    const seen = this.calls.get(key);
    if (seen !== undefined && seen.name === call.name && seen.arguments === call.arguments) return;
    if (seen === undefined || ((seen.name === "" || seen.name === call.name) && call.arguments.startsWith(seen.arguments))) {
      this.note(key, call);
      return;
    }
    const variantKey = `variant:${key}:${call.name}:${call.arguments}`;
    if (!this.calls.has(variantKey)) this.note(variantKey, { ...call, variant: true });
  }

  private finish(event: Json): void {
    if (isRecord(event.response) && isRecord(event.response.usage)) this.usage = event.response.usage;
    this.done = true;
  }

  /** `data: [DONE]`, which ends a chat stream. */
  markDone(): void {
    this.done = true;
  }

  /**
   * The stream carried its whole answer: its end was announced, or every chat choice has its
   * `finish_reason`, or the upstream reported an error in it. A stream cut short without any of
   * these is incomplete, however cleanly its connection closed.
   */
  get complete(): boolean {
    if (this.done || this.failure !== null) return true;
    if (this.choicesFinished.length === 0) return false;
    for (const finished of this.choicesFinished) if (finished === false) return false;
    return true;
  }

  /** Every call the answer makes; one whose name came in parts goes by its last part too. */
  toolCalls(): ToolCall[] {
    const calls: ToolCall[] = [];
    for (const [key, call] of this.calls) {
      const last = this.lastNameParts?.get(key);
      calls.push(last === undefined || last === call.name ? call : { ...call, aliases: [...(call.aliases ?? []), last] });
    }
    return calls;
  }
}
