import { type ContentSource, contentSource, outputLimit, promptTokens, toolCallTokens } from "./content.js";
import type { DirectedToolCall, Directives } from "./directives.js";
import { sendJson, STREAM_ERROR } from "./errors.js";
import { arr, contentText, field, str } from "./json.js";
import type { Inspection, Route } from "./route.js";
import { type FramePlan, sseData, writeStream } from "./sse.js";

/** POST /v1/chat/completions, shaped after openai/resources/chat/completions. */
export const chatRoute: Route = {
  inspect(body) {
    let promptChars = 0;
    let lastUserText = "";
    for (const m of arr(field(body, "messages"))) {
      const text = contentText(field(m, "content"));
      promptChars += text.length;
      if (field(m, "role") === "user") lastUserText = text;
    }
    return { lastUserText, promptChars, stream: field(body, "stream") === true };
  },
  handle(ctx, info) {
    const chunks = ctx.directives.chunks ?? ctx.options.chunks;
    const content = contentSource(ctx.directives, info.lastUserText, chunks, outputLimit(ctx.body));
    const answer = planAnswer(ctx.body, ctx.directives, content.truncated);
    const usage = ctx.directives.noUsage ? undefined : chatUsage(info, ctx.directives, answer, content);
    const meta = {
      id: `chatcmpl-mock${ctx.seq}`,
      created: Math.floor(Date.now() / 1000),
      model: str(field(ctx.body, "model")) ?? "gpt-4o-mini",
    };
    if (!info.stream) {
      sendJson(ctx.res, 200, completion(meta, answer, content, usage), { "x-request-id": `req_mock_${ctx.seq}` });
      return;
    }
    const includeUsage = field(field(ctx.body, "stream_options"), "include_usage") === true;
    writeStream(ctx, streamPlan(meta, answer, content, chunks, includeUsage ? usage : undefined, includeUsage), sseData({ error: STREAM_ERROR }));
  },
};

type Answer =
  | { kind: "text"; finish: string }
  /** `preamble`: `say:` was given too, so text comes first, as a model explaining itself would send it. */
  | { kind: "tools"; calls: DirectedToolCall[]; finish: string; preamble: boolean }
  | { kind: "function_call"; call: DirectedToolCall; finish: string };

interface Meta {
  id: string;
  created: number;
  model: string;
}

function declaredNames(body: unknown): { tools: string[]; functions: string[] } {
  const tools = arr(field(body, "tools")).flatMap((t) => str(field(field(t, "function"), "name")) ?? []);
  const functions = arr(field(body, "functions")).flatMap((f) => str(field(f, "name")) ?? []);
  return { tools, functions };
}

function planAnswer(body: unknown, d: Directives, truncated: boolean): Answer {
  const declared = declaredNames(body);
  let calls = d.toolCalls;
  const firstDeclared = declared.tools[0] ?? declared.functions[0];
  if (calls.length === 0 && d.useTool && firstDeclared !== undefined) {
    calls = [{ name: firstDeclared, arguments: "{}" }];
  }
  if (calls.length === 0) return { kind: "text", finish: d.finishReason ?? (truncated ? "length" : "stop") };
  // A request that only declares legacy `functions` gets a legacy answer, as OpenAI does.
  const legacy = d.legacyFunctionCall || (declared.tools.length === 0 && declared.functions.length > 0);
  if (legacy && calls[0]) return { kind: "function_call", call: calls[0], finish: d.finishReason ?? "function_call" };
  return { kind: "tools", calls, finish: d.finishReason ?? "tool_calls", preamble: d.say !== undefined };
}

function toolCallId(meta: Meta, i: number): string {
  return `call_${meta.id.slice("chatcmpl-".length)}_${i}`;
}

function chatUsage(info: Inspection, d: Directives, answer: Answer, content: ContentSource) {
  const prompt = promptTokens(info.promptChars);
  const completion =
    answer.kind === "text"
      ? content.words
      : toolCallTokens(answer.kind === "tools" ? answer.calls : [answer.call]) + (answer.kind === "tools" && answer.preamble ? content.words : 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: Math.min(d.cachedTokens ?? 0, prompt), audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function completion(meta: Meta, answer: Answer, content: ContentSource, usage: unknown) {
  const message =
    answer.kind === "text"
      ? { role: "assistant", content: content.full(), refusal: null, annotations: [] }
      : answer.kind === "tools"
        ? {
            role: "assistant",
            content: answer.preamble ? content.full() : null,
            refusal: null,
            annotations: [],
            tool_calls: answer.calls.map((c, i) => ({
              id: toolCallId(meta, i),
              type: "function",
              function: { name: c.name, arguments: c.arguments },
            })),
          }
        : { role: "assistant", content: null, refusal: null, function_call: answer.call };
  return {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: answer.finish }],
    ...(usage === undefined ? {} : { usage }),
    service_tier: "default",
    system_fingerprint: "fp_mock",
  };
}

/**
 * Frame order matches OpenAI: a role-only first delta, content/argument deltas,
 * an empty delta carrying finish_reason, then (include_usage only) a chunk with
 * `choices: []` and the usage, then `[DONE]`. With include_usage every earlier
 * chunk carries `usage: null`, as the real API does.
 */
function streamPlan(
  meta: Meta,
  answer: Answer,
  content: ContentSource,
  chunks: number,
  usage: unknown,
  includeUsage: boolean,
): FramePlan {
  const chunk = (delta: unknown, finish: string | null) => ({
    id: meta.id,
    object: "chat.completion.chunk",
    created: meta.created,
    model: meta.model,
    service_tier: "default",
    system_fingerprint: "fp_mock",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  const body: { count: number; delta(i: number): unknown } =
    answer.kind === "text"
      ? {
          count: 1 + content.count,
          delta: (i) => (i === 0 ? { role: "assistant", content: "", refusal: null } : { content: content.piece(i - 1) }),
        }
      : callDeltas(meta, answer, chunks, content);
  const tail: string[] = [sseData(chunk({}, answer.finish))];
  if (usage !== undefined) tail.push(sseData({ ...chunk(null, null), choices: [], usage }));
  tail.push("data: [DONE]\n\n");
  return {
    count: body.count + tail.length,
    frame: (i) => (i < body.count ? sseData(chunk(body.delta(i), null)) : (tail[i - body.count] ?? "")),
  };
}

/** Tool streams are short, so their deltas are simply built up front. */
function callDeltas(meta: Meta, answer: Exclude<Answer, { kind: "text" }>, chunks: number, content: ContentSource) {
  const deltas: unknown[] = [];
  const preamble = answer.kind === "tools" && answer.preamble;
  if (preamble) {
    deltas.push({ role: "assistant", content: "", refusal: null });
    for (let i = 0; i < content.count; i++) deltas.push({ content: content.piece(i) });
  }
  if (answer.kind === "function_call") {
    const { name, arguments: args } = answer.call;
    deltas.push({ role: "assistant", content: null, refusal: null, function_call: { name, arguments: "" } });
    for (const piece of splitArgs(args, chunks)) deltas.push({ function_call: { arguments: piece } });
  } else {
    answer.calls.forEach((c, index) => {
      const head = { index, id: toolCallId(meta, index), type: "function", function: { name: c.name, arguments: "" } };
      deltas.push(index === 0 && !preamble ? { role: "assistant", content: null, refusal: null, tool_calls: [head] } : { tool_calls: [head] });
      for (const piece of splitArgs(c.arguments, chunks)) deltas.push({ tool_calls: [{ index, function: { arguments: piece } }] });
    });
  }
  return { count: deltas.length, delta: (i: number) => deltas[i] };
}

function splitArgs(args: string, chunks: number): string[] {
  const pieces: string[] = [];
  const size = Math.max(1, Math.ceil(args.length / Math.max(1, chunks)));
  for (let i = 0; i < args.length; i += size) pieces.push(args.slice(i, i + size));
  return pieces;
}
