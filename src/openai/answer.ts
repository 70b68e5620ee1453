import { JoinedText } from "../util/joined-text.js";

/** What the gateway reads from a model's answer: its tool calls, usage and text (for counting). */
export interface ToolCall {
  name: string;
  arguments: string;
}

export interface AnswerSummary {
  usage: Record<string, unknown> | null;
  toolCalls: ToolCall[];
  text: string;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => value !== null && typeof value === "object" && !Array.isArray(value);
const str = (value: unknown): string => (typeof value === "string" ? value : "");

/** A chat tool call's (or delta's) name and arguments: `function.arguments`, or a custom tool's free-form `custom.input`. */
function callParts(call: Json): { name?: unknown; arguments?: unknown } | null {
  if (isObject(call.function)) return call.function;
  if (isObject(call.custom)) return { name: call.custom.name, arguments: call.custom.input };
  return null;
}

const isToolCallItem = (item: unknown): item is Json => isObject(item) && (item.type === "function_call" || item.type === "custom_tool_call");

/** A Responses output item that calls a tool: a function's `arguments`, or a custom tool's `input`. */
function outputItemCall(item: Json): ToolCall {
  return { name: str(item.name), arguments: str(item.type === "custom_tool_call" ? item.input : item.arguments) };
}

/** Tool calls and usage of a non-streamed chat completion or Responses answer. */
export function summarizeAnswer(answer: unknown): AnswerSummary {
  const summary: AnswerSummary = { usage: null, toolCalls: [], text: "" };
  if (!isObject(answer)) return summary;
  if (isObject(answer.usage)) summary.usage = answer.usage;
  if (Array.isArray(answer.choices)) {
    for (const choice of answer.choices) {
      const message = isObject(choice) && isObject(choice.message) ? choice.message : null;
      if (message === null) continue;
      summary.text += str(message.content);
      if (Array.isArray(message.tool_calls)) {
        for (const call of message.tool_calls) {
          const named = isObject(call) ? callParts(call) : null;
          if (named !== null) summary.toolCalls.push({ name: str(named.name), arguments: str(named.arguments) });
        }
      }
      if (isObject(message.function_call)) {
        summary.toolCalls.push({ name: str(message.function_call.name), arguments: str(message.function_call.arguments) });
      }
    }
  }
  if (Array.isArray(answer.output)) {
    for (const item of answer.output) {
      if (!isObject(item)) continue;
      if (item.type === "function_call" || item.type === "custom_tool_call") summary.toolCalls.push(outputItemCall(item));
      if (item.type === "message" && Array.isArray(item.content)) {
        for (const part of item.content) if (isObject(part)) summary.text += str(part.text);
      }
    }
  }
  return summary;
}

/**
 * A fold over a stream's events (chat chunks or Responses events): accumulates usage, text and tool
 * calls, and says whether an event is the usage-only chunk the client did not ask for.
 */
export class StreamAccumulator {
  usage: Record<string, unknown> | null = null;
  private readonly deltas = new JoinedText();
  /** Tool calls by index as their deltas arrive. */
  private readonly calls = new Map<number, ToolCall>();
  toolCallSeen = false;
  done = false;

  /** The text the stream carried so far (needed only when the upstream sends no usage). */
  get text(): string {
    return this.deltas.toString();
  }

  /** Returns true when the event is a usage-only chunk (empty `choices`). */
  observe(data: unknown): boolean {
    if (!isObject(data)) return false;
    if (typeof data.type === "string") {
      this.observeResponsesEvent(data);
      return false;
    }
    if (isObject(data.usage)) this.usage = data.usage;
    const choices = data.choices;
    if (!Array.isArray(choices)) return false;
    for (const choice of choices) {
      const delta = isObject(choice) && isObject(choice.delta) ? choice.delta : null;
      if (delta === null) continue;
      if (typeof delta.content === "string") this.deltas.add(delta.content);
      if (Array.isArray(delta.tool_calls)) {
        for (const part of delta.tool_calls) {
          if (!isObject(part)) continue;
          const index = typeof part.index === "number" ? part.index : 0;
          const call = this.calls.get(index) ?? { name: "", arguments: "" };
          const named = callParts(part) ?? {};
          call.name += str(named.name);
          call.arguments += str(named.arguments);
          this.calls.set(index, call);
          this.toolCallSeen = true;
        }
      }
      if (isObject(delta.function_call)) {
        const call = this.calls.get(0) ?? { name: "", arguments: "" };
        call.name += str(delta.function_call.name);
        call.arguments += str(delta.function_call.arguments);
        this.calls.set(0, call);
        this.toolCallSeen = true;
      }
    }
    return choices.length === 0 && isObject(data.usage);
  }

  private observeResponsesEvent(event: Json): void {
    switch (event.type) {
      case "response.output_text.delta":
        this.deltas.add(str(event.delta));
        break;
      case "response.output_item.added":
        if (isToolCallItem(event.item)) {
          // Kept from its first event, so a stream cut short still counts the arguments it carried.
          this.calls.set(typeof event.output_index === "number" ? event.output_index : this.calls.size, outputItemCall(event.item));
          this.toolCallSeen = true;
        }
        break;
      case "response.function_call_arguments.delta": {
        const call = typeof event.output_index === "number" ? this.calls.get(event.output_index) : undefined;
        if (call !== undefined) call.arguments += str(event.delta);
        break;
      }
      case "response.output_item.done":
        if (isToolCallItem(event.item)) {
          const index = typeof event.output_index === "number" ? event.output_index : this.calls.size;
          this.calls.set(index, outputItemCall(event.item));
          this.toolCallSeen = true;
        }
        break;
      case "response.completed":
      case "response.incomplete":
      case "response.failed":
        if (isObject(event.response) && isObject(event.response.usage)) this.usage = event.response.usage;
        this.done = true;
        break;
    }
  }

  toolCalls(): ToolCall[] {
    return [...this.calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
  }
}
