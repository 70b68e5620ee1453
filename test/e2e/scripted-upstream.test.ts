import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway } from "../../src/gateway.js";
import { oneKeyConfig } from "../helpers/index.js";
import { sseEvents } from "./governance.js";

/**
 * Answers the bundled mock cannot give, played from a script: a chat stream whose `n` choices each
 * call tools (deltas interleaved), and a Responses answer calling a built-in tool the client runs.
 */
const KEY = "sk-scripted";
const ADMIN = "scripted-admin";

const chunk = (choice: number, index: number, fn: { name?: string; arguments: string }): string =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: choice, delta: { tool_calls: [{ index, ...(fn.name === undefined ? {} : { id: `call_${choice}`, type: "function" }), function: fn }] }, finish_reason: null }] })}\n\n`;

const N_STREAM = [
  chunk(0, 0, { name: "ok_tool", arguments: '{"a":' }),
  chunk(1, 0, { name: "danger", arguments: '{"b":' }),
  chunk(0, 0, { arguments: "1}" }),
  chunk(1, 0, { arguments: "2}" }),
  "data: [DONE]\n\n",
].join("");

/** The same denied call, its data after extra spaces (SDKs still parse it). */
const SPACED_STREAM = [chunk(0, 0, { name: "danger", arguments: "{}" }).replace("data: ", "data:    "), "data: [DONE]\n\n"].join("");

/** A whole stream with lone-CR line ends, which SSE allows. */
const CR_STREAM = N_STREAM.replaceAll("\n", "\r");

const STREAMS: Record<string, string> = { spaced: SPACED_STREAM, cr: CR_STREAM };

const SHELL_ANSWER_BASE = { id: "resp_1", object: "response", status: "completed", model: "m", usage: { input_tokens: 5, output_tokens: 5, total_tokens: 10 } };

const UPSTREAM_KEY = "sk-UPSTREAM-secret-0123456789";

interface Scripted {
  status?: number;
  headers?: Record<string, string>;
  body: string | Buffer;
  /** Sent, then the answer is left open, as an upstream that does not close its stream. */
  open?: boolean;
}

const SSE = { "content-type": "text/event-stream" };
const JSON_TYPE = { "content-type": "application/json" };
const BOM = "\uFEFF";
const completion = (fn: { name: string; arguments: string }) =>
  JSON.stringify({
    id: "c1",
    object: "chat.completion",
    created: 1,
    model: "m",
    choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: fn }] }, finish_reason: "tool_calls" }],
    usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
  });
const textChunk = (text: string, finish: string | null) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: text }, finish_reason: finish }] })}\n\n`;
const DENIED_STREAM = `${chunk(0, 0, { name: "danger", arguments: "{}" })}data: [DONE]\n\n`;
const event = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
/** Every character as its JSON escape, as an upstream may write a string: the parsed text is the same. */
const escapedEvery = (text: string): string => [...text].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");

/** Answers an upstream should not give, each one asked for by the request's first message (or Responses input). */
const SCRIPTS: Record<string, Scripted> = {
  "bom json": { headers: JSON_TYPE, body: BOM + completion({ name: "danger", arguments: "{}" }) },
  html: { headers: { "content-type": "text/html" }, body: "<html><body>proxy login</body></html>" },
  "broken json": { headers: JSON_TYPE, body: '{"id":"x","choices":[' },
  gzip: { headers: { ...JSON_TYPE, "content-encoding": "gzip" }, body: gzipSync(completion({ name: "danger", arguments: "{}" })) },
  "bom sse": { headers: SSE, body: BOM + DENIED_STREAM },
  "sse labelled json": { headers: JSON_TYPE, body: DENIED_STREAM },
  "cut text": { headers: SSE, body: textChunk("partial", null) },
  "cut tool": { headers: SSE, body: chunk(0, 0, { name: "ok_tool", arguments: '{"a":' }) },
  "finished without done": { headers: SSE, body: textChunk("whole", null) + textChunk("", "stop") },
  "contradicting done": {
    headers: SSE,
    body: [
      { type: "response.created", response: { id: "r1", output: [] } },
      { type: "response.output_item.added", output_index: 0, item: { type: "function_call", id: "fc1", call_id: "c1", name: "ok_tool", arguments: "" } },
      { type: "response.function_call_arguments.delta", output_index: 0, item_id: "fc1", delta: '{"env":"dev"}' },
      { type: "response.function_call_arguments.done", output_index: 0, item_id: "fc1", arguments: '{"env":"prod"}' },
      { type: "response.output_item.done", output_index: 0, item: { type: "function_call", id: "fc1", call_id: "c1", name: "ok_tool", arguments: '{"env":"dev"}' } },
      { type: "response.completed", response: { id: "r1", status: "completed", output: [{ type: "function_call", id: "fc1", call_id: "c1", name: "ok_tool", arguments: '{"env":"dev"}' }], usage: { input_tokens: 5, output_tokens: 5, total_tokens: 10 } } },
    ]
      .map(event)
      .join(""),
  },
  "done undoes deltas": {
    headers: SSE,
    body: [
      { type: "response.output_item.added", output_index: 0, item: { type: "function_call", id: "fc1", call_id: "c1", name: "ok_tool", arguments: "" } },
      { type: "response.function_call_arguments.delta", output_index: 0, item_id: "fc1", delta: '{"env":"prod"}' },
      { type: "response.function_call_arguments.done", output_index: 0, item_id: "fc1", arguments: '{"env":"prod"}' },
      { type: "response.output_item.done", output_index: 0, item: { type: "function_call", id: "fc1", call_id: "c1", name: "ok_tool", arguments: '{"env":"dev"}' } },
      { type: "response.output_item.added", output_index: 1, item: { type: "function_call", id: "fc2", call_id: "c2", name: "danger", arguments: "{}" } },
      { type: "response.output_item.done", output_index: 1, item: { type: "function_call", id: "fc2", call_id: "c2", name: "safe_tool", arguments: "{}" } },
      { type: "response.completed", response: { id: "r1", status: "completed", output: [{ type: "function_call", id: "fc1", call_id: "c1", name: "ok_tool", arguments: '{"env":"dev"}' }, { type: "function_call", id: "fc2", call_id: "c2", name: "safe_tool", arguments: "{}" }], usage: { input_tokens: 5, output_tokens: 5, total_tokens: 10 } } },
    ]
      .map(event)
      .join(""),
  },
  "text in items only": {
    headers: SSE,
    body: [
      { type: "response.output_item.done", output_index: 0, item: { type: "message", id: "m1", role: "assistant", content: [{ type: "output_text", text: "the whole answer arrives here at once" }] } },
      { type: "response.completed", response: { id: "r1", status: "completed", output: [{ type: "message", id: "m1", role: "assistant", content: [{ type: "output_text", text: "the whole answer arrives here at once" }] }], usage: null } },
    ]
      .map(event)
      .join(""),
  },
  "after done": { headers: SSE, body: `${textChunk("hi", null)}${textChunk("", "stop")}data: [DONE]\n\n${chunk(0, 0, { name: "danger", arguments: "{}" })}` },
  "after done with more": { headers: SSE, body: `${textChunk("hi", null)}${textChunk("", "stop")}data: [DONE]xyz\ndata: more\n\n${chunk(0, 0, { name: "danger", arguments: "{}" })}` },
  "usage on the last choice": {
    headers: SSE,
    body: `${textChunk("hi", null)}${event({ id: "c1", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 } })}data: [DONE]\n\n`,
  },
  "whole message in stream": {
    headers: SSE,
    body: `${textChunk("hi", null)}${event({ id: "c1", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: {}, message: { role: "assistant", tool_calls: [{ id: "t1", type: "function", function: { name: "danger", arguments: "{}" } }] }, finish_reason: null }] })}data: [DONE]\n\n`,
  },
  renamed: { headers: SSE, body: `${chunk(0, 0, { name: "ok_tool", arguments: "{" })}${chunk(0, 0, { name: "danger", arguments: "}" })}data: [DONE]\n\n` },
  leak: {
    status: 401,
    headers: { ...JSON_TYPE, "x-echo-auth": `Bearer ${UPSTREAM_KEY}` },
    body: JSON.stringify({ error: { message: `Incorrect API key provided: ${UPSTREAM_KEY}.`, type: "invalid_request_error", code: "invalid_api_key" } }),
  },
  "completed only": {
    headers: SSE,
    body:
      event({ type: "response.created", response: { id: "r1", output: [] } }) +
      event({ type: "response.completed", response: { id: "r1", status: "completed", output: [{ type: "function_call", id: "fc1", call_id: "c1", name: "danger", arguments: "{}" }], usage: { input_tokens: 5, output_tokens: 5, total_tokens: 10 } } }),
  },
  "failed with call": {
    headers: SSE,
    body:
      event({ type: "response.created", response: { id: "r1", output: [] } }) +
      event({
        type: "response.failed",
        response: { id: "r1", status: "failed", error: { code: "server_error", message: "boom" }, output: [{ type: "function_call", id: "fc1", call_id: "c1", name: "danger", arguments: "{}" }] },
      }),
  },
  "failed after items": {
    headers: SSE,
    body: [
      { type: "response.output_item.added", output_index: 0, item: { type: "function_call", id: "fc1", call_id: "c1", name: "danger", arguments: "" } },
      { type: "response.output_item.done", output_index: 0, item: { type: "function_call", id: "fc1", call_id: "c1", name: "danger", arguments: "{}" } },
      { type: "response.failed", response: { id: "r1", status: "failed", error: { code: "server_error", message: "boom" }, output: [{ type: "function_call", id: "fc1", call_id: "c1", name: "danger", arguments: "{}" }] } },
    ]
      .map(event)
      .join(""),
  },
  "failed with allowed call": {
    headers: SSE,
    body: event({
      type: "response.failed",
      response: { id: "r1", status: "failed", error: { code: "server_error", message: "boom" }, output: [{ type: "function_call", id: "fc1", call_id: "c1", name: "ok_tool", arguments: '{"env":"dev"}' }] },
    }),
  },
  "escaped leak": {
    status: 401,
    headers: JSON_TYPE,
    body: `{"error":{"message":"Incorrect API key provided: ${escapedEvery(UPSTREAM_KEY)}","type":"invalid_request_error","code":"invalid_api_key"}}`,
  },
  "escaped leak in stream": { headers: SSE, body: `${textChunk("hi", null)}data: {"error":{"message":"bad key ${escapedEvery(UPSTREAM_KEY)}","type":"server_error"}}\n\n` },
  "object arguments": { headers: JSON_TYPE, body: completion({ name: "ok_tool", arguments: { env: "prod" } as unknown as string }) },
  "object arguments item": {
    headers: JSON_TYPE,
    body: JSON.stringify({ ...SHELL_ANSWER_BASE, output: [{ type: "function_call", id: "fc1", call_id: "c1", name: "ok_tool", arguments: { env: "prod" } }] }),
  },
  "loose name": { headers: JSON_TYPE, body: completion({ name: " Dan\u200bger ", arguments: "{}" }) },
  "echo secrets": {
    status: 400,
    headers: JSON_TYPE,
    body: JSON.stringify({ error: { message: `your body held ${ADMIN} and ${KEY}`, type: "invalid_request_error", code: null } }),
  },
  computer: {
    headers: JSON_TYPE,
    body: JSON.stringify({ ...SHELL_ANSWER_BASE, output: [{ type: "computer_call", id: "cc1", call_id: "c1", action: { type: "click", x: 1, y: 2 } }] }),
  },
  "after completed": {
    headers: SSE,
    body:
      event({ type: "response.completed", response: { id: "r1", status: "completed", output: [], usage: { input_tokens: 5, output_tokens: 5, total_tokens: 10 } } }) +
      event({ type: "response.in_progress", response: { id: "r1", output: [{ type: "function_call", id: "fc1", call_id: "c1", name: "danger", arguments: "{}" }] } }),
  },
  "error as text": { status: 503, headers: JSON_TYPE, body: JSON.stringify({ error: "Model is overloaded" }) },
  "error null": { status: 503, headers: JSON_TYPE, body: JSON.stringify({ error: null }) },
  detail: { status: 422, headers: JSON_TYPE, body: JSON.stringify({ detail: "max_tokens is too large" }) },
  "plain text error": { status: 502, headers: { "content-type": "text/plain" }, body: "Bad Gateway: no healthy backend" },
  "error under 200": { headers: JSON_TYPE, body: JSON.stringify({ error: { message: "quota exhausted", type: "server_error", code: null } }) },
  "bare array": { headers: JSON_TYPE, body: "[]" },
  "empty object": { headers: JSON_TYPE, body: "{}" },
  "huge error": { status: 500, headers: JSON_TYPE, body: JSON.stringify({ error: { message: "x".repeat(100_000), type: "server_error", code: null } }) },
  "unterminated end": { headers: SSE, body: `${textChunk("whole", null)}${textChunk("", "stop").trimEnd()}` },
  "error then open": { headers: SSE, open: true, body: `${textChunk("hi", null)}data: {"error":{"message":"overloaded mid-answer","type":"server_error"}}\n\n` },
  redirect: { status: 307, headers: { ...JSON_TYPE, location: "http://127.0.0.1:9/elsewhere/v1/chat/completions" }, body: completion({ name: "danger", arguments: "{}" }) },
  "open after done": { headers: SSE, open: true, body: `${textChunk("whole", null)}${textChunk("", "stop")}data: [DONE]\n\n` },
  "open after completed": {
    headers: SSE,
    open: true,
    body: event({ type: "response.completed", response: { id: "r1", status: "completed", output: [], usage: { input_tokens: 5, output_tokens: 5, total_tokens: 10 } } }),
  },
  mcp: {
    headers: JSON_TYPE,
    body: JSON.stringify({ ...SHELL_ANSWER_BASE, output: [{ type: "mcp_approval_request", id: "m1", server_label: "gh", name: "danger", arguments: "{}" }] }),
  },
};

const SHELL_ANSWER = {
  ...SHELL_ANSWER_BASE,
  output: [{ type: "local_shell_call", id: "ls_1", call_id: "c1", status: "completed", action: { type: "exec", command: ["rm", "-rf", "/"], env: {} } }],
};

const SLOW_SEARCH_START =
  event({ type: "response.created", response: { id: "r1", output: [] } }) +
  event({ type: "response.output_item.added", output_index: 0, item: { type: "web_search_call", id: "ws1", status: "in_progress" } }) +
  event({ type: "response.output_item.done", output_index: 0, item: { type: "web_search_call", id: "ws1", status: "completed", action: { type: "search", query: "q" } } }) +
  event({ type: "response.output_text.delta", output_index: 1, delta: "found it" });
const SLOW_SEARCH_END = event({
  type: "response.completed",
  response: {
    id: "r1",
    status: "completed",
    output: [{ type: "web_search_call", id: "ws1", status: "completed", action: { type: "search", query: "q" } }],
    usage: { input_tokens: 5, output_tokens: 5, total_tokens: 10 },
  },
});
let slowSearchEndSent = false;

let upstream: Server;
let gateway: Gateway;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    // Passthrough downloads and failures, asked for by the query.
    if (req.url?.startsWith("/v1/files") === true) {
      const mode = new URL(req.url, "http://x").searchParams.get("mode");
      if (mode === "html") res.writeHead(502, { "content-type": "text/html" }).end("<html><body>Bad Gateway</body></html>");
      else if (mode === "limited") res.writeHead(429, { ...JSON_TYPE, "x-ratelimit-remaining-requests": "0", "retry-after": "7" }).end(JSON.stringify({ error: "slow down" }));
      else res.writeHead(200, { "content-type": "application/octet-stream", "content-length": "5000" }).end(Buffer.alloc(5000, 1));
      return;
    }
    const parts: Buffer[] = [];
    req.on("data", (part: Buffer) => parts.push(part));
    req.on("end", () => {
      const sent = JSON.parse(Buffer.concat(parts).toString()) as { messages?: { content: string }[]; input?: unknown };
      const asked = req.url?.endsWith("/chat/completions") ? (sent.messages?.[0]?.content ?? "") : String(sent.input);
      const script = Object.hasOwn(SCRIPTS, asked) ? SCRIPTS[asked] : undefined;
      if (asked === "slow search") {
        // The search and the first text now, the end a moment later: the client must see the text before the end is sent.
        res.writeHead(200, SSE).write(SLOW_SEARCH_START);
        setTimeout(() => {
          slowSearchEndSent = true;
          res.end(SLOW_SEARCH_END);
        }, 300);
      } else if (script?.open === true) res.writeHead(200, script.headers).write(script.body);
      else if (script !== undefined) res.writeHead(script.status ?? 200, script.headers).end(script.body);
      else if (req.url?.endsWith("/chat/completions")) res.writeHead(200, SSE).end(STREAMS[asked] ?? N_STREAM);
      else res.writeHead(200, JSON_TYPE).end(JSON.stringify(SHELL_ANSWER));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const dir = mkdtempSync(join(tmpdir(), "spark-scripted-"));
  const path = join(dir, "gateway.yaml");
  writeFileSync(
    path,
    `${oneKeyConfig({ admin: ADMIN, upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`, key: KEY, upstreamKey: UPSTREAM_KEY })}passthrough: { paths: [/v1/files] }
policies:
  rules:
    - { name: no_danger, effect: DENY, actions: [tool.call], conditions: { tool: { eq: danger } }, description: Dangerous tool }
    - { name: no_computer, effect: DENY, actions: [tool.call], conditions: { tool: { eq: computer } }, description: No computer use }
    - { name: no_prod_args, effect: DENY, actions: [tool.call], conditions: { tool: { eq: ok_tool }, tool_args.env: { eq: prod } }, description: Not on that environment }
    - { name: no_local_shell, effect: DENY, actions: [tool.call], conditions: { tool: { eq: local_shell }, tool_args_json: { contains: "rm" } }, description: No rm in a shell }
audit: { sinks: [{ file: { dir: "${join(dir, "audit")}" } }] }
`,
  );
  gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
});
afterAll(async () => {
  await gateway?.shutdown();
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

const post = (path: string, body: unknown) =>
  fetch(`${gateway.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify(body) });

async function lastRecord(): Promise<Record<string, unknown>> {
  const res = await fetch(`${gateway.url}/admin/audit?limit=5`, { headers: { authorization: `Bearer ${ADMIN}` } });
  const { data } = (await res.json()) as { data: Record<string, unknown>[] };
  return data.find((r) => String(r.path).startsWith("/v1/")) as Record<string, unknown>;
}

describe("tool calls an upstream answer makes, whatever their shape", () => {
  it("judges each choice's calls in an n > 1 stream apart: one choice's denied call ends the stream", async () => {
    const res = await post("/v1/chat/completions", { model: "gpt-4o-mini", n: 2, stream: true, messages: [{ role: "user", content: "go" }] });
    const text = await res.text();
    expect(text).toContain('"code":"policy_denied"');
    // Held until decided, neither choice's call reached the client.
    expect(text).not.toContain('"tool_calls"');
    const record = await lastRecord();
    expect(record.tool_calls).toEqual(["ok_tool", "danger"]);
    expect(record).toMatchObject({ error_code: "policy_denied", decision: { effect: "DENY", rule: "no_danger" } });
  });

  it("reads an event whose data follows extra spaces, and a stream with lone-CR line ends", async () => {
    for (const shape of ["spaced", "cr"]) {
      const res = await post("/v1/chat/completions", { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: shape }] });
      const text = await res.text();
      expect(text).toContain('"code":"policy_denied"');
      expect(text).not.toContain('"tool_calls"');
      expect(await lastRecord()).toMatchObject({ error_code: "policy_denied", decision: { rule: "no_danger" } });
    }
  });

  it("governs a Responses call of a built-in tool the client runs, by the tool's type and its action", async () => {
    const res = await post("/v1/responses", { model: "gpt-4o-mini", input: "go", tools: [{ type: "local_shell" }] });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("policy_denied");
    expect(await lastRecord()).toMatchObject({ tool_calls: ["local_shell"], decision: { rule: "no_local_shell" } });
  });
});

const chat = (content: string, stream: boolean) => post("/v1/chat/completions", { model: "gpt-4o-mini", stream, messages: [{ role: "user", content }] });

describe("answers the gateway cannot read whole are never relayed as successes", () => {
  it("reads a JSON answer after a byte order mark, as clients do, and judges its tool calls", async () => {
    const res = await chat("bom json", false);
    expect(res.status).toBe(403);
    expect(await lastRecord()).toMatchObject({ error_code: "policy_denied", tool_calls: ["danger"] });
  });

  it("answers 502 for a success whose body is not JSON or not an answer, or is compressed against the gateway's asking", async () => {
    for (const script of ["html", "broken json", "gzip", "error under 200", "bare array", "empty object"]) {
      const res = await chat(script, false);
      expect(res.status, script).toBe(502);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("upstream_error");
      expect(await lastRecord()).toMatchObject({ status: 502, error_code: "upstream_error" });
    }
  });

  it("reads a stream after a byte order mark, and a stream labelled JSON, as the client's SDK reads them", async () => {
    for (const script of ["bom sse", "sse labelled json"]) {
      const text = await (await chat(script, true)).text();
      expect(text, script).toContain('"code":"policy_denied"');
      expect(text).not.toContain('"tool_calls"');
    }
  });

  it("ends a stream cut short without an error with one, and never releases its half-written tool call", async () => {
    for (const script of ["cut text", "cut tool"]) {
      const text = await (await chat(script, true)).text();
      expect(text, script).toContain('"code":"upstream_error"');
      // The stream's head had gone out as 200: the record says so, and why it failed.
      expect(await lastRecord()).toMatchObject({ status: 200, error_code: "upstream_error" });
    }
    expect(await (await chat("cut tool", true)).text()).not.toContain('"tool_calls"');
    const whole = await (await chat("finished without done", true)).text();
    expect(whole).not.toContain('"error"');
    expect(await lastRecord()).toMatchObject({ status: 200, error_code: null });
  });

  it("judges the calls of a whole `message` a stream chunk carries, which SDKs merge into their answer", async () => {
    const text = await (await chat("whole message in stream", true)).text();
    expect(text).toContain('"code":"policy_denied"');
    expect(text).not.toContain('"tool_calls"');
    expect(await lastRecord()).toMatchObject({ tool_calls: ["danger"], decision: { rule: "no_danger" } });
  });

  it("judges a Responses call with the arguments its `.done` event carries where they differ from the deltas'", async () => {
    const streamed = await (await post("/v1/responses", { model: "gpt-4o-mini", stream: true, input: "contradicting done" })).text();
    expect(streamed).toContain('"code":"policy_denied"');
    expect(streamed).not.toContain("function_call_arguments");
    expect(await lastRecord()).toMatchObject({ decision: { rule: "no_prod_args" } });
  });

  it("keeps judging what a Responses stream's deltas and first events said once later events say otherwise, and counts each call once", async () => {
    const streamed = await (await post("/v1/responses", { model: "gpt-4o-mini", stream: true, input: "done undoes deltas" })).text();
    expect(streamed).toContain('"code":"policy_denied"');
    const record = await lastRecord();
    expect(record).toMatchObject({ tool_calls: ["ok_tool", "danger"], decision: { effect: "DENY" } });
    expect(record.tool_decisions).toEqual(
      expect.arrayContaining([
        { action: "tool.call", tool: "ok_tool", effect: "DENY", rule: "no_prod_args" },
        { action: "tool.call", tool: "danger", effect: "DENY", rule: "no_danger" },
        { action: "tool.call", tool: "safe_tool", effect: "ALLOW", rule: null },
      ]),
    );
  });

  it("charges a Responses stream without usage for the text its whole items carried", async () => {
    const streamed = await (await post("/v1/responses", { model: "gpt-4o-mini", stream: true, input: "text in items only" })).text();
    expect(streamed).toContain("the whole answer");
    const record = await lastRecord();
    expect(record.output_tokens).toBeGreaterThanOrEqual(7);
  });

  it("relays and judges nothing after [DONE], which SDKs do not read: the stream ends as the answer did, with its cost", async () => {
    const text = await (await chat("after done", true)).text();
    expect(text).not.toContain("danger");
    expect(text).not.toContain('"error"');
    expect(text).toMatch(/data: \[DONE\]\n\n: gateway-cost \d+\.\d{6}\n\n$/);
    expect(await lastRecord()).toMatchObject({ status: 200, error_code: null, tool_calls: [] });
    // Data that only starts with [DONE] ends the stream for SDKs too.
    const more = await (await chat("after done with more", true)).text();
    expect(more).not.toContain("danger");
    expect(await lastRecord()).toMatchObject({ status: 200, error_code: null, tool_calls: [] });
  });

  it("takes usage the client did not ask for off a chunk that also carries a choice, and still charges it", async () => {
    const text = await (await chat("usage on the last choice", true)).text();
    expect(text).toContain('"finish_reason":"stop"');
    expect(text).not.toContain('"usage"');
    expect(await lastRecord()).toMatchObject({ input_tokens: 10, output_tokens: 1 });
  });

  it("judges a tool name sent in parts under each name a client may read", async () => {
    const text = await (await chat("renamed", true)).text();
    expect(text).toContain('"code":"policy_denied"');
    const record = await lastRecord();
    expect(record).toMatchObject({ tool_calls: ["ok_tooldanger"], decision: { rule: "no_danger" } });
    expect(record.tool_decisions).toEqual([{ action: "tool.call", tool: "danger", effect: "DENY", rule: "no_danger" }]);
  });

  it("judges a Responses call only the final event carries, and an MCP tool the model asks to call", async () => {
    const streamed = await (await post("/v1/responses", { model: "gpt-4o-mini", stream: true, input: "completed only" })).text();
    expect(streamed).toContain('"code":"policy_denied"');
    expect(streamed).not.toContain('"function_call"');
    const mcp = await post("/v1/responses", { model: "gpt-4o-mini", input: "mcp", tools: [{ type: "mcp", server_label: "gh", server_url: "https://example.com" }] });
    expect(mcp.status).toBe(403);
    expect(await lastRecord()).toMatchObject({ tool_calls: ["danger"], decision: { rule: "no_danger" } });
  });

  it("judges the calls a Responses stream's response.failed carries, which SDKs hand on as the final answer", async () => {
    for (const input of ["failed with call", "failed after items"]) {
      const streamed = await (await post("/v1/responses", { model: "gpt-4o-mini", stream: true, input })).text();
      expect(streamed).toContain('"code":"policy_denied"');
      expect(streamed).not.toContain('"function_call"');
      expect(await lastRecord()).toMatchObject({ error_code: "policy_denied", tool_calls: ["danger"], decision: { rule: "no_danger" } });
    }
    const allowed = await (await post("/v1/responses", { model: "gpt-4o-mini", stream: true, input: "failed with allowed call" })).text();
    expect(allowed).toContain("response.failed");
    expect(allowed).toContain('"function_call"');
    expect(await lastRecord()).toMatchObject({ error_code: "upstream_error", tool_decisions: [{ action: "tool.call", tool: "ok_tool", effect: "ALLOW" }] });
  });

  it("judges a computer call under both of the computer tool's types, and a call sent after the final event", async () => {
    const computer = await post("/v1/responses", { model: "gpt-4o-mini", input: "computer", tools: [{ type: "computer", display_width: 1, display_height: 1 }] });
    expect(computer.status).toBe(403);
    expect(await lastRecord()).toMatchObject({ tool_calls: ["computer_use_preview"], decision: { rule: "no_computer" } });
    // A call sent after the final event is neither relayed nor judged: no client reads past that event.
    const late = await (await post("/v1/responses", { model: "gpt-4o-mini", stream: true, input: "after completed" })).text();
    expect(late).toContain("response.completed");
    expect(late).not.toContain('"function_call"');
    expect(late).not.toContain('"error"');
    expect(await lastRecord()).toMatchObject({ status: 200, error_code: null, tool_calls: [] });
  });

  it("ends the client's stream at the answer's end though the upstream leaves its own open", async () => {
    for (const [path, script] of [["/v1/chat/completions", "open after done"], ["/v1/responses", "open after completed"]] as const) {
      const started = Date.now();
      const body = path === "/v1/responses" ? { model: "gpt-4o-mini", stream: true, input: script } : { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: script }] };
      const text = await (await post(path, body)).text();
      expect(text, script).not.toContain('"error"');
      expect(text).toMatch(/: gateway-cost \d+\.\d{6}\n\n$/);
      // Long before the upstream's 600 s timeout would have ended it.
      expect(Date.now() - started).toBeLessThan(3000);
      expect(await lastRecord()).toMatchObject({ status: 200, error_code: null });
    }
  });

  it("wraps an upstream error not in OpenAI's shape in it, with the upstream's status and what it said", async () => {
    const cases = [
      ["error as text", 503, "Model is overloaded"],
      ["error null", 503, "the upstream answered 503"],
      ["detail", 422, "max_tokens is too large"],
      ["plain text error", 502, "Bad Gateway: no healthy backend"],
    ] as const;
    for (const [script, status, said] of cases) {
      for (const stream of [false, true]) {
        const res = await chat(script, stream);
        expect(res.status, script).toBe(status);
        const { error } = (await res.json()) as { error: Record<string, unknown> };
        expect(error).toMatchObject({ code: "upstream_error", type: status < 500 ? "invalid_request_error" : "api_error", param: null });
        expect(error.message).toContain(said);
        expect(await lastRecord()).toMatchObject({ status, error_code: "upstream_error", error_message: expect.stringContaining(said) });
      }
    }
  });

  it("ends an upstream's unterminated last event before writing after it, so every SDK reads the stream", async () => {
    // A JSON answer to a streamed request, and a stream whose last event lacks its blank line.
    const asJson = await (await chat("error under 200", true)).text();
    expect(asJson).toMatch(/\}\n\ndata: \{"error":\{[^\n]*"code":"upstream_error"[^\n]*\}\}\n\n/);
    const cut = await (await chat("unterminated end", true)).text();
    expect(cut).toMatch(/"finish_reason":"stop"\}\]\}\n\n: gateway-cost \d+\.\d{6}\n\n$/);
    expect(await lastRecord()).toMatchObject({ status: 200, error_code: null });
  });

  it("ends the client's stream at an upstream's error event though the upstream leaves its connection open", async () => {
    const started = Date.now();
    const text = await (await chat("error then open", true)).text();
    expect(text).toContain("overloaded mid-answer");
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await lastRecord()).toMatchObject({ status: 200, error_code: "upstream_error", error_message: expect.stringContaining("overloaded mid-answer") });
  });

  it("relays a long upstream error as sent, and records its message clipped", async () => {
    const res = await chat("huge error", false);
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { message: string } }).error.message).toHaveLength(100_000);
    const record = await lastRecord();
    expect(record.error_code).toBe("upstream_error");
    expect(String(record.error_message).length).toBeLessThan(400);
  });

  it("relays a passthrough download with its length, and wraps a passthrough error not in OpenAI's shape, recording it", async () => {
    const get = (query: string) => fetch(`${gateway.url}/v1/files${query}`, { headers: { authorization: `Bearer ${KEY}` } });
    const download = await get("");
    expect(download.headers.get("content-length")).toBe("5000");
    expect((await download.arrayBuffer()).byteLength).toBe(5000);
    const html = await get("?mode=html");
    expect(html.status).toBe(502);
    expect(((await html.json()) as { error: Record<string, unknown> }).error).toMatchObject({ code: "upstream_error", type: "api_error" });
    expect(await lastRecord()).toMatchObject({ action: "passthrough", status: 502, error_code: "upstream_error" });
    const limited = await get("?mode=limited");
    expect(limited.status).toBe(429);
    // The upstream's own limits explain its 429, not the gateway's.
    expect(limited.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(limited.headers.get("retry-after")).toBe("7");
    expect(((await limited.json()) as { error: Record<string, unknown> }).error).toMatchObject({ code: "upstream_error", message: "the upstream answered 429: slow down" });
  });

  it("answers 502 for an upstream's redirect, which it neither follows nor relays (its client would follow it around the gateway)", async () => {
    for (const stream of [false, true]) {
      const res = await chat("redirect", stream);
      expect(res.status).toBe(502);
      expect(res.headers.get("location")).toBeNull();
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error).toMatchObject({ code: "upstream_error", message: expect.stringContaining("307") });
      expect(await lastRecord()).toMatchObject({ status: 502, error_code: "upstream_error", tool_calls: [] });
    }
  });

  it("lets the answer after a search the upstream ran flow live when no rule names the search; still judges it", async () => {
    const res = await post("/v1/responses", { model: "gpt-4o-mini", stream: true, input: "slow search", tools: [{ type: "web_search" }] });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    let endSentWhenTextSeen: boolean | null = null;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (endSentWhenTextSeen === null && text.includes("found it")) endSentWhenTextSeen = slowSearchEndSent;
    }
    expect(endSentWhenTextSeen).toBe(false);
    expect(text).toContain("response.completed");
    const record = await lastRecord();
    expect(record).toMatchObject({ status: 200, tool_calls: ["web_search"] });
    expect(record.tool_decisions).toContainEqual({ action: "tool.call", tool: "web_search", effect: "ALLOW", rule: null });
  });

  it("judges a tool call under its loose name too (case, invisible characters, spaces), as lenient frameworks match it", async () => {
    const res = await chat("loose name", false);
    expect(res.status).toBe(403);
    expect(await lastRecord()).toMatchObject({ decision: { rule: "no_danger" } });
  });

  it("reads a call's arguments sent as an object, not a string, as a lenient upstream may (frameworks hand them on)", async () => {
    expect((await chat("object arguments", false)).status).toBe(403);
    expect(await lastRecord()).toMatchObject({ decision: { rule: "no_prod_args" } });
    expect((await post("/v1/responses", { model: "gpt-4o-mini", input: "object arguments item" })).status).toBe(403);
    expect(await lastRecord()).toMatchObject({ decision: { rule: "no_prod_args" } });
  });

  it("masks the admin token and the caller's key an upstream error echoes, in the answer and the audit", async () => {
    const res = await chat("echo secrets", false);
    expect(res.status).toBe(400);
    const text = await res.text();
    const record = JSON.stringify(await lastRecord());
    for (const secret of [ADMIN, KEY]) {
      expect(text).not.toContain(secret);
      expect(record).not.toContain(secret);
    }
    expect(record).toContain("your body held [REDACTED_SECRET] and [REDACTED_SECRET]");
  });

  it("masks the upstream's key where the upstream echoes it: error body, headers, audit", async () => {
    const res = await chat("leak", false);
    expect(res.status).toBe(401);
    expect(res.headers.get("x-echo-auth")).toBe("Bearer [REDACTED_SECRET]");
    const text = await res.text();
    expect(text).not.toContain(UPSTREAM_KEY);
    expect(text).toContain("[REDACTED_SECRET]");
    const record = await lastRecord();
    expect(JSON.stringify(record)).not.toContain(UPSTREAM_KEY);
    expect(record).toMatchObject({ status: 401, error_code: "upstream_error" });
  });

  it("masks the upstream's key echoed in JSON escapes, which the client would decode: error, stream event, audit", async () => {
    const res = await chat("escaped leak", false);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toBe("Incorrect API key provided: [REDACTED_SECRET]");
    expect(JSON.stringify(await lastRecord())).not.toContain(UPSTREAM_KEY);
    const stream = await chat("escaped leak in stream", true);
    const events = sseEvents(await stream.text()).data.map((data) => JSON.parse(data) as unknown);
    expect(JSON.stringify(events)).not.toContain(UPSTREAM_KEY);
    expect(JSON.stringify(events)).toContain("[REDACTED_SECRET]");
    const record = await lastRecord();
    expect(JSON.stringify(record)).not.toContain(UPSTREAM_KEY);
    expect(record).toMatchObject({ error_code: "upstream_error", error_message: "the upstream ended the stream with an error: bad key [REDACTED_SECRET]" });
  });
});
