import { type ContentSource, contentSource, outputLimit, promptTokens, toolCallTokens } from "./content.js";
import type { DirectedToolCall } from "./directives.js";
import { sendJson, STREAM_ERROR } from "./errors.js";
import { arr, contentText, field, str } from "./json.js";
import type { Route } from "./route.js";
import { type FramePlan, sseEvent, writeStream } from "./sse.js";
import type { HandlerContext } from "./types.js";

/** POST /v1/responses, shaped after openai/resources/responses/responses. */
export const responsesRoute: Route = {
  inspect(body) {
    const input = field(body, "input");
    let promptChars = (str(field(body, "instructions")) ?? "").length;
    let lastUserText = "";
    if (typeof input === "string") {
      promptChars += input.length;
      lastUserText = input;
    }
    for (const item of arr(input)) {
      const text = contentText(field(item, "content")) || (str(field(item, "output")) ?? "");
      promptChars += text.length;
      if (field(item, "role") === "user") lastUserText = text;
    }
    return { lastUserText, promptChars, stream: field(body, "stream") === true };
  },
  handle(ctx, info) {
    const d = ctx.directives;
    const chunks = d.chunks ?? ctx.options.chunks;
    const calls = plannedCalls(ctx.body, d.toolCalls, d.useTool);
    const content = contentSource(d, info.lastUserText, chunks, outputLimit(ctx.body));
    const input = promptTokens(info.promptChars);
    const output = calls.length > 0 ? toolCallTokens(calls) : content.words;
    const usage = d.noUsage
      ? null
      : {
          input_tokens: input,
          input_tokens_details: { cached_tokens: Math.min(d.cachedTokens ?? 0, input) },
          output_tokens: output,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: input + output,
        };
    const r = new ResponseBuilder(ctx, calls, content, usage);
    if (!info.stream) {
      sendJson(ctx.res, 200, r.response("completed"), { "x-request-id": `req_mock_${ctx.seq}` });
      return;
    }
    writeStream(ctx, calls.length > 0 ? r.callPlan(chunks) : r.messagePlan(), sseEvent("error", { type: "error", ...STREAM_ERROR }));
  },
};

function plannedCalls(body: unknown, directed: DirectedToolCall[], useTool: boolean): DirectedToolCall[] {
  if (directed.length > 0 || !useTool) return directed;
  // Responses tools are flat ({type, name}); accept the chat nesting too, clients mix them up.
  const first = arr(field(body, "tools"))
    .map((t) => str(field(t, "name")) ?? str(field(field(t, "function"), "name")))
    .find((n) => n !== undefined);
  return first === undefined ? [] : [{ name: first, arguments: "{}" }];
}

type Status = "in_progress" | "completed";
type Payload = Record<string, unknown>;

class ResponseBuilder {
  private readonly id: string;
  private readonly createdAt = Math.floor(Date.now() / 1000);

  constructor(
    private readonly ctx: HandlerContext,
    private readonly calls: DirectedToolCall[],
    private readonly content: ContentSource,
    private readonly usage: Payload | null,
  ) {
    this.id = `resp_mock${ctx.seq}`;
  }

  private get msgId(): string {
    return `msg_mock${this.ctx.seq}`;
  }

  private textPart(text: string): Payload {
    return { type: "output_text", annotations: [], logprobs: [], text };
  }

  message(status: Status): Payload {
    const content = status === "completed" ? [this.textPart(this.content.full())] : [];
    return { id: this.msgId, type: "message", status, content, role: "assistant" };
  }

  call(i: number, status: Status): Payload {
    const c = this.calls[i];
    return {
      id: `fc_mock${this.ctx.seq}_${i}`,
      type: "function_call",
      status,
      arguments: status === "completed" ? (c?.arguments ?? "{}") : "",
      call_id: `call_mock${this.ctx.seq}_${i}`,
      name: c?.name ?? "",
    };
  }

  response(status: Status): Payload {
    const b = this.ctx.body;
    const done = status === "completed";
    const output = done ? (this.calls.length > 0 ? this.calls.map((_, i) => this.call(i, status)) : [this.message(status)]) : [];
    return {
      id: this.id,
      object: "response",
      created_at: this.createdAt,
      status,
      background: false,
      completed_at: done ? Math.floor(Date.now() / 1000) : null,
      error: null,
      incomplete_details: null,
      instructions: field(b, "instructions") ?? null,
      max_output_tokens: field(b, "max_output_tokens") ?? null,
      metadata: field(b, "metadata") ?? {},
      model: str(field(b, "model")) ?? "gpt-4o-mini",
      output,
      parallel_tool_calls: true,
      previous_response_id: field(b, "previous_response_id") ?? null,
      reasoning: { effort: null, summary: null },
      service_tier: "default",
      store: true,
      temperature: 1,
      text: { format: { type: "text" }, verbosity: "medium" },
      tool_choice: field(b, "tool_choice") ?? "auto",
      tools: field(b, "tools") ?? [],
      top_p: 1,
      truncation: "disabled",
      usage: done ? this.usage : null,
      user: null,
    };
  }

  private lifecycle(): Array<(seq: number) => string> {
    return [
      (seq) => sseEvent("response.created", { type: "response.created", sequence_number: seq, response: this.response("in_progress") }),
      (seq) =>
        sseEvent("response.in_progress", { type: "response.in_progress", sequence_number: seq, response: this.response("in_progress") }),
    ];
  }

  private completed(seq: number): string {
    return sseEvent("response.completed", { type: "response.completed", sequence_number: seq, response: this.response("completed") });
  }

  /** Text deltas are rendered lazily (see FramePlan) because slow streams may be huge. */
  messagePlan(): FramePlan {
    const ids = { item_id: this.msgId, output_index: 0 };
    const part = { ...ids, content_index: 0 };
    const ev = (type: string, seq: number, rest: Payload) => sseEvent(type, { type, sequence_number: seq, ...rest });
    const head = [
      ...this.lifecycle(),
      (seq: number) => ev("response.output_item.added", seq, { output_index: 0, item: this.message("in_progress") }),
      (seq: number) => ev("response.content_part.added", seq, { ...part, part: this.textPart("") }),
    ];
    const tail = [
      (seq: number) => ev("response.output_text.done", seq, { ...part, text: this.content.full(), logprobs: [] }),
      (seq: number) => ev("response.content_part.done", seq, { ...part, part: this.textPart(this.content.full()) }),
      (seq: number) => ev("response.output_item.done", seq, { output_index: 0, item: this.message("completed") }),
      (seq: number) => this.completed(seq),
    ];
    const n = this.content.count;
    return {
      count: head.length + n + tail.length,
      frame: (i) => {
        if (i < head.length) return head[i]?.(i) ?? "";
        if (i < head.length + n) {
          return ev("response.output_text.delta", i, { ...part, delta: this.content.piece(i - head.length), logprobs: [] });
        }
        return tail[i - head.length - n]?.(i) ?? "";
      },
    };
  }

  callPlan(chunks: number): FramePlan {
    const frames: Array<(seq: number) => string> = [...this.lifecycle()];
    const ev = (type: string, rest: Payload) => (seq: number) => sseEvent(type, { type, sequence_number: seq, ...rest });
    this.calls.forEach((c, i) => {
      const item_id = `fc_mock${this.ctx.seq}_${i}`;
      frames.push(ev("response.output_item.added", { output_index: i, item: this.call(i, "in_progress") }));
      const size = Math.max(1, Math.ceil(c.arguments.length / Math.max(1, chunks)));
      for (let at = 0; at < c.arguments.length; at += size) {
        const delta = c.arguments.slice(at, at + size);
        frames.push(ev("response.function_call_arguments.delta", { item_id, output_index: i, delta }));
      }
      frames.push(ev("response.function_call_arguments.done", { item_id, output_index: i, name: c.name, arguments: c.arguments }));
      frames.push(ev("response.output_item.done", { output_index: i, item: this.call(i, "completed") }));
    });
    frames.push((seq) => this.completed(seq));
    return { count: frames.length, frame: (i) => frames[i]?.(i) ?? "" };
  }
}
