import { describe, expect, it } from "vitest";
import { distinctCalls, StreamAccumulator, summarizeAnswer } from "../../src/openai/answer.js";
import { eventData, SseSplitter } from "../../src/openai/sse.js";

describe("SSE splitting", () => {
  it("yields complete events across arbitrary chunk boundaries, multibyte characters included", () => {
    const text = 'data: {"a":"é"}\n\ndata: [DONE]\n\n';
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const splitter = new SseSplitter();
      const events = [...splitter.push(bytes.subarray(0, cut)), ...splitter.push(bytes.subarray(cut)), ...splitter.end()];
      expect(events).toEqual(['data: {"a":"é"}\n\n', "data: [DONE]\n\n"]);
    }
  });

  it("ends lines at CRLF, LF or a lone CR, split anywhere", () => {
    for (const eol of ["\r\n", "\r", "\n"]) {
      const bytes = Buffer.from(`event: x${eol}data: {"a":1}${eol}${eol}data: [DONE]${eol}${eol}`);
      for (let cut = 1; cut < bytes.length; cut++) {
        const splitter = new SseSplitter();
        const events = [...splitter.push(bytes.subarray(0, cut)), ...splitter.push(bytes.subarray(cut)), ...splitter.end()];
        expect(events).toEqual(['event: x\ndata: {"a":1}\n\n', "data: [DONE]\n\n"]);
      }
    }
  });

  it("reads data lines, including multi-line data", () => {
    expect(eventData("event: x\ndata: {}\n\n")).toBe("{}");
    expect(eventData("data: a\ndata: b\n\n")).toBe("a\nb");
    expect(eventData(": comment\n\n")).toBeNull();
  });
});

describe("answer inspection", () => {
  it("assembles streamed tool calls by index and flags the usage-only chunk", () => {
    const acc = new StreamAccumulator();
    acc.observe({ choices: [{ delta: { tool_calls: [{ index: 0, function: { name: "deploy", arguments: '{"env' } }] } }] });
    acc.observe({ choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: '":"prod"}' } }] } }] });
    expect(acc.observe({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 2 } })).toBe(true);
    expect(acc.toolCalls()).toEqual([{ name: "deploy", arguments: '{"env":"prod"}' }]);
    expect(acc.usage).toEqual({ prompt_tokens: 3, completion_tokens: 2 });
  });

  it("judges a name sent in parts both as Python's SDK reads it (joined) and as Node's does (the last part)", () => {
    const acc = new StreamAccumulator();
    acc.observe({ choices: [{ delta: { tool_calls: [{ index: 0, function: { name: "ok", arguments: "{" } }] } }] });
    acc.observe({ choices: [{ delta: { tool_calls: [{ index: 0, function: { name: "rm_rf", arguments: "}" } }] } }] });
    acc.observe({ choices: [{ delta: { function_call: { name: "a" } } }] });
    acc.observe({ choices: [{ delta: { function_call: { name: "b", arguments: "{}" } } }] });
    expect(acc.toolCalls()).toEqual([
      { name: "okrm_rf", arguments: "{}", aliases: ["rm_rf"] },
      { name: "ab", arguments: "{}", aliases: ["b"] },
    ]);
  });

  it("knows whether a stream carried its whole answer", () => {
    const chat = new StreamAccumulator();
    chat.observe({ choices: [{ index: 0, delta: { content: "a" }, finish_reason: null }, { index: 1, delta: { content: "b" }, finish_reason: null }] });
    expect(chat.complete).toBe(false);
    chat.observe({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
    expect(chat.complete).toBe(false);
    chat.observe({ choices: [{ index: 1, delta: {}, finish_reason: "length" }] });
    expect(chat.complete).toBe(true);
    const cut = new StreamAccumulator();
    cut.observe({ choices: [{ index: 0, delta: { content: "a" }, finish_reason: null }] });
    cut.markDone();
    expect(cut.complete).toBe(true);
    const responses = new StreamAccumulator();
    responses.observe({ type: "response.output_text.delta", delta: "x" });
    expect(responses.complete).toBe(false);
    responses.observe({ type: "response.completed", response: { output: [] } });
    expect(responses.complete).toBe(true);
    const failed = new StreamAccumulator();
    failed.observe({ error: { message: "overloaded" } });
    expect(failed.complete).toBe(true);
  });

  it("holds the answer from the first call its predicate names, and lets searches the upstream ran flow", () => {
    const acc = new StreamAccumulator((call) => call.ranUpstream !== true);
    acc.observe({ type: "response.output_item.added", output_index: 0, item: { type: "web_search_call", id: "ws", status: "in_progress" } });
    expect([acc.toolCallSeen, acc.holding]).toEqual([true, false]);
    acc.observe({ type: "response.output_item.added", output_index: 1, item: { type: "function_call", name: "deploy", arguments: "" } });
    expect(acc.holding).toBe(true);
    const chat = new StreamAccumulator(() => true);
    chat.observe({ choices: [{ delta: { tool_calls: [{ index: 0, function: { name: "de", arguments: "" } }] } }] });
    expect(chat.holding).toBe(true);
  });

  it("judges the calls of every lifecycle event's response, one after the final event included", () => {
    const acc = new StreamAccumulator();
    acc.observe({ type: "response.completed", response: { output: [{ type: "message", content: [] }] } });
    expect(acc.toolCallSeen).toBe(false);
    acc.observe({ type: "response.in_progress", response: { output: [{ type: "function_call", name: "deploy", arguments: "{}" }] } });
    expect(acc.toolCalls()).toEqual([{ name: "deploy", arguments: "{}" }]);
  });

  it("judges a Responses call that only the final event carries, or carries otherwise than its item events", () => {
    const acc = new StreamAccumulator();
    acc.observe({ type: "response.output_item.added", output_index: 0, item: { type: "function_call", name: "ok", arguments: "" } });
    acc.observe({ type: "response.output_item.done", output_index: 0, item: { type: "function_call", name: "ok", arguments: "{}" } });
    acc.observe({
      type: "response.completed",
      response: {
        output: [
          { type: "function_call", name: "rm_rf", arguments: "{}" },
          { type: "mcp_approval_request", name: "delete_repo", server_label: "gh", arguments: '{"repo":"x"}' },
        ],
      },
    });
    expect(acc.toolCalls()).toEqual([
      { name: "ok", arguments: "{}" },
      { name: "rm_rf", arguments: "{}", variant: true },
      { name: "delete_repo", arguments: '{"repo":"x"}' },
    ]);
  });

  it("keeps what the item events streamed where later events name or spell a call otherwise, and counts it once", () => {
    const acc = new StreamAccumulator();
    acc.observe({ type: "response.output_item.added", output_index: 0, item: { type: "function_call", name: "deploy", arguments: "" } });
    acc.observe({ type: "response.function_call_arguments.delta", output_index: 0, delta: '{"environment":"prod"}' });
    acc.observe({ type: "response.function_call_arguments.done", output_index: 0, arguments: '{"environment":"prod"}' });
    acc.observe({ type: "response.output_item.done", output_index: 0, item: { type: "function_call", name: "deploy", arguments: '{"environment":"dev"}' } });
    acc.observe({ type: "response.output_item.added", output_index: 1, item: { type: "function_call", name: "rm_rf", arguments: "{}" } });
    acc.observe({ type: "response.output_item.done", output_index: 1, item: { type: "function_call", name: "ok_tool", arguments: "{}" } });
    acc.observe({
      type: "response.completed",
      response: {
        output: [
          { type: "function_call", name: "deploy", arguments: '{"environment":"dev"}' },
          { type: "function_call", name: "ok_tool", arguments: "{}" },
        ],
      },
    });
    expect(acc.toolCalls()).toEqual([
      { name: "deploy", arguments: '{"environment":"prod"}' },
      { name: "deploy", arguments: '{"environment":"dev"}', variant: true },
      { name: "rm_rf", arguments: "{}" },
      { name: "ok_tool", arguments: "{}", variant: true },
    ]);
    expect(distinctCalls(acc.toolCalls()).map((call) => call.name)).toEqual(["deploy", "rm_rf"]);
  });

  it("judges the name a Responses `*.done` event gives a call where it differs", () => {
    const acc = new StreamAccumulator();
    acc.observe({ type: "response.output_item.added", output_index: 0, item: { type: "function_call", name: "read_file", arguments: "" } });
    acc.observe({ type: "response.function_call_arguments.done", output_index: 0, name: "execute_code", arguments: "{}" });
    expect(acc.toolCalls().map((call) => call.name)).toEqual(["read_file", "execute_code"]);
  });

  it("reads a Responses stream's text from its whole items where no delta carried it", () => {
    const message = { type: "message", content: [{ type: "output_text", text: "result secret" }] };
    const items = new StreamAccumulator();
    items.observe({ type: "response.output_item.done", output_index: 0, item: message });
    expect(items.text).toBe("result secret");
    const final = new StreamAccumulator();
    final.observe({ type: "response.output_text.delta", delta: "res" });
    final.observe({ type: "response.completed", response: { output: [message], usage: null } });
    expect(final.text).toBe("result secret");
  });

  it("reads Responses stream events", () => {
    const acc = new StreamAccumulator();
    acc.observe({ type: "response.output_text.delta", delta: "hi" });
    acc.observe({ type: "response.output_item.done", output_index: 1, item: { type: "function_call", name: "f", arguments: "{}" } });
    acc.observe({ type: "response.completed", response: { usage: { input_tokens: 1, output_tokens: 2 } } });
    expect(acc.text).toBe("hi");
    expect(acc.toolCalls()).toEqual([{ name: "f", arguments: "{}" }]);
    expect(acc.done).toBe(true);
  });

  it("keeps a Responses function call's arguments as they stream, so a stream cut short still has them", () => {
    const acc = new StreamAccumulator();
    acc.observe({ type: "response.output_item.added", output_index: 0, item: { type: "function_call", name: "deploy", arguments: "" } });
    acc.observe({ type: "response.function_call_arguments.delta", output_index: 0, delta: '{"env":' });
    acc.observe({ type: "response.function_call_arguments.delta", output_index: 0, delta: '"pro' });
    expect(acc.toolCalls()).toEqual([{ name: "deploy", arguments: '{"env":"pro' }]);
    acc.observe({ type: "response.output_item.done", output_index: 0, item: { type: "function_call", name: "deploy", arguments: '{"env":"prod"}' } });
    expect(acc.toolCalls()).toEqual([{ name: "deploy", arguments: '{"env":"prod"}' }]);
  });

  it("keeps a long stream's text whole and in order, read midway or at the end", () => {
    const acc = new StreamAccumulator();
    const deltas = Array.from({ length: 101 }, (_, i) => (i % 7 === 0 ? "" : ` w${i}`));
    for (const [i, delta] of deltas.entries()) {
      acc.observe({ choices: [{ delta: { content: delta } }] });
      if (i === 40) expect(acc.text).toBe(deltas.slice(0, 41).join(""));
    }
    acc.observe({ choices: [{ delta: { role: "assistant" } }] });
    expect(acc.text).toBe(deltas.join(""));
  });

  it("summarises chat, legacy function_call and Responses answers, tolerating junk", () => {
    expect(
      summarizeAnswer({
        choices: [{ message: { content: "a", tool_calls: [{ function: { name: "t", arguments: "{}" } }], function_call: { name: "old", arguments: "" } } }],
        usage: { prompt_tokens: 1 },
      }),
    ).toEqual({ usage: { prompt_tokens: 1 }, toolCalls: [{ name: "t", arguments: "{}" }, { name: "old", arguments: "" }], text: "a" });
    expect(summarizeAnswer({ output: [{ type: "function_call", name: "f", arguments: "x" }, null, 3] }).toolCalls).toEqual([{ name: "f", arguments: "x" }]);
    expect(summarizeAnswer("junk")).toEqual({ usage: null, toolCalls: [], text: "" });
  });

  it("reads custom tool calls (free-form input) in chat and Responses answers, streamed or not", () => {
    expect(summarizeAnswer({ choices: [{ message: { tool_calls: [{ type: "custom", custom: { name: "shell", input: "rm -rf /" } }] } }] }).toolCalls).toEqual([
      { name: "shell", arguments: "rm -rf /" },
    ]);
    expect(summarizeAnswer({ output: [{ type: "custom_tool_call", name: "shell", input: "ls" }] }).toolCalls).toEqual([{ name: "shell", arguments: "ls" }]);
    const chat = new StreamAccumulator();
    chat.observe({ choices: [{ delta: { tool_calls: [{ index: 0, type: "custom", custom: { name: "shell", input: "rm " } }] } }] });
    chat.observe({ choices: [{ delta: { tool_calls: [{ index: 0, custom: { input: "-rf /" } }] } }] });
    expect(chat.toolCalls()).toEqual([{ name: "shell", arguments: "rm -rf /" }]);
    const responses = new StreamAccumulator();
    responses.observe({ type: "response.output_item.added", output_index: 0, item: { type: "custom_tool_call", name: "shell" } });
    expect(responses.toolCallSeen).toBe(true);
    responses.observe({ type: "response.output_item.done", output_index: 0, item: { type: "custom_tool_call", name: "shell", input: "ls" } });
    expect(responses.toolCalls()).toEqual([{ name: "shell", arguments: "ls" }]);
  });

  it("keeps each choice's tool calls apart in an n > 1 stream, deltas interleaved", () => {
    const acc = new StreamAccumulator();
    const part = (choice: number, index: number, fn: { name?: string; arguments: string }) => ({ choices: [{ index: choice, delta: { tool_calls: [{ index, function: fn }] } }] });
    acc.observe(part(0, 0, { name: "ok", arguments: '{"a":' }));
    acc.observe(part(1, 0, { name: "danger", arguments: '{"b":' }));
    acc.observe(part(0, 0, { arguments: "1}" }));
    acc.observe(part(1, 0, { arguments: "2}" }));
    acc.observe(part(1, 1, { name: "deploy", arguments: "{}" }));
    acc.observe({ choices: [{ index: 1, delta: { function_call: { name: "legacy", arguments: "{}" } } }] });
    expect(acc.toolCalls()).toEqual([
      { name: "ok", arguments: '{"a":1}' },
      { name: "danger", arguments: '{"b":2}' },
      { name: "deploy", arguments: "{}" },
      { name: "legacy", arguments: "{}" },
    ]);
  });

  it("reads calls of the built-in tools, named by the tool type, arguments from their action, code or queries", () => {
    const action = { type: "exec", command: ["rm", "-rf", "/"] };
    const output = [
      { type: "local_shell_call", call_id: "c1", action },
      { type: "shell_call", call_id: "c2", action: { commands: ["ls"] } },
      { type: "computer_call", call_id: "c3", action: { type: "click", x: 1, y: 2 } },
      { type: "apply_patch_call", call_id: "c4", operation: { type: "delete_file", path: "a" } },
      // Run by the upstream itself: judged too, a DENY keeps the result from the client.
      { type: "web_search_call", id: "ws", status: "completed", action: { type: "search", query: "q" } },
      { type: "code_interpreter_call", id: "ci", code: "print(1)", container_id: "c" },
      { type: "file_search_call", id: "fs", queries: ["q"] },
      // A type the gateway does not know: by its name, and by its type.
      { type: "future_tool_call", name: "deploy", arguments: '{"env":"prod"}' },
      { type: "message", content: [] },
      { type: "mcp_list_tools", server_label: "gh", tools: [] },
    ];
    expect(summarizeAnswer({ output }).toolCalls).toEqual([
      { name: "local_shell", arguments: JSON.stringify(action) },
      { name: "shell", arguments: '{"commands":["ls"]}' },
      { name: "computer_use_preview", arguments: '{"type":"click","x":1,"y":2}', aliases: ["computer"] },
      { name: "apply_patch", arguments: '{"type":"delete_file","path":"a"}' },
      { name: "web_search", arguments: '{"type":"search","query":"q"}', ranUpstream: true },
      { name: "code_interpreter", arguments: '{"code":"print(1)"}', ranUpstream: true },
      { name: "file_search", arguments: '{"queries":["q"]}', ranUpstream: true },
      { name: "deploy", arguments: '{"env":"prod"}', aliases: ["future_tool", "future_tool_call"] },
    ]);
    const acc = new StreamAccumulator();
    acc.observe({ type: "response.output_item.added", output_index: 0, item: { type: "local_shell_call", action } });
    expect(acc.toolCallSeen).toBe(true);
    acc.observe({ type: "response.output_item.done", output_index: 0, item: { type: "local_shell_call", action } });
    expect(acc.toolCalls()).toEqual([{ name: "local_shell", arguments: JSON.stringify(action) }]);
  });

  it("notes an error event the upstream sent in the stream: chat's error chunk, Responses' error and response.failed", () => {
    const chat = new StreamAccumulator();
    chat.observe({ choices: [{ delta: { content: "hi" } }] });
    expect(chat.failure).toBeNull();
    chat.observe({ error: { message: "overloaded", type: "server_error" } });
    expect(chat.failure).toBe("overloaded");
    const errorEvent = new StreamAccumulator();
    errorEvent.observe({ type: "error", code: "server_error", message: "" });
    expect(errorEvent.failure).toBe("server_error");
    const failed = new StreamAccumulator();
    failed.observe({ type: "response.failed", response: { error: { code: "server_error", message: "boom" }, usage: { input_tokens: 3, output_tokens: 0 } } });
    expect([failed.failure, failed.done, failed.usage]).toEqual(["boom", true, { input_tokens: 3, output_tokens: 0 }]);
  });
});
