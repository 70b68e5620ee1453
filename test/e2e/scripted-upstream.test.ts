import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway } from "../../src/gateway.js";
import { oneKeyConfig } from "../helpers/index.js";

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

const SHELL_ANSWER = {
  id: "resp_1",
  object: "response",
  status: "completed",
  model: "m",
  output: [{ type: "local_shell_call", id: "ls_1", call_id: "c1", status: "completed", action: { type: "exec", command: ["rm", "-rf", "/"], env: {} } }],
  usage: { input_tokens: 5, output_tokens: 5, total_tokens: 10 },
};

let upstream: Server;
let gateway: Gateway;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (part: Buffer) => parts.push(part));
    req.on("end", () => {
      if (req.url?.endsWith("/chat/completions")) {
        const asked = (JSON.parse(Buffer.concat(parts).toString()) as { messages: { content: string }[] }).messages[0]?.content ?? "";
        res.writeHead(200, { "content-type": "text/event-stream" }).end(STREAMS[asked] ?? N_STREAM);
      } else {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(SHELL_ANSWER));
      }
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const dir = mkdtempSync(join(tmpdir(), "spark-scripted-"));
  const path = join(dir, "gateway.yaml");
  writeFileSync(
    path,
    `${oneKeyConfig({ admin: ADMIN, upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`, key: KEY })}policies:
  rules:
    - { name: no_danger, effect: DENY, actions: [tool.call], conditions: { tool: { eq: danger } }, description: Dangerous tool }
    - { name: no_local_shell, effect: DENY, actions: [tool.call], conditions: { tool: { eq: local_shell }, tool_args_json: { contains: "rm" } }, description: No rm in a shell }
audit: { sinks: [{ file: { dir: "${join(dir, "audit")}" } }] }
`,
  );
  gateway = await startGateway({ configPath: path, env: {}, logger: pino({ level: "silent" }) });
});
afterAll(async () => {
  await gateway?.shutdown();
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
