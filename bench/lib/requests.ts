import type { RequestSpec } from "../driver.js";
import { BENCH_KEY } from "./gateway-config.js";

const PATH = "/v1/chat/completions";
const HEADERS = { "content-type": "application/json", authorization: `Bearer ${BENCH_KEY}`, "user-agent": "spark-bench/1" };

const SYSTEM = "You are a careful analyst for the research team. Answer concisely, cite the section you rely on, and say so when the document does not contain the answer.";
const TOOLS = ["search", "query_db"].map((name) => ({
  type: "function",
  function: { name, description: `${name} over the team's documents`, parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"] } },
}));

/**
 * The n-th call's body. Its user message differs on every call, as the newest turn of a real
 * conversation does, so nothing keyed by the message (the gateway's token-count cache) serves it;
 * the system prompt and the tools repeat, as a client sends them.
 */
function chatBody(userText: string, extra: Record<string, unknown> = {}): (n: number) => string {
  const head = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "system", content: SYSTEM }] }).slice(0, -2);
  const tail = JSON.stringify({ tools: TOOLS, max_tokens: 256, ...extra }).slice(1);
  return (n) => `${head},${JSON.stringify({ role: "user", content: `Call ${n}: summarise the quarterly report's risks for the board in five bullet points.\n${userText}` })}],${tail}`;
}

/** A typical non-streamed chat call with two declared tools; the mock answers 24 words. */
export function chatSpec(): RequestSpec {
  return { path: PATH, headers: HEADERS, body: chatBody("tokens:24") };
}

/** A streamed chat call: 8 content chunks 1 ms apart. */
export function streamSpec(): RequestSpec {
  return { path: PATH, headers: HEADERS, body: chatBody("tokens:16 chunks:8 delay:1", { stream: true }) };
}

/** A stream that stays open for minutes, one small chunk a second (the memory measurement). */
export function slowStreamSpec(): RequestSpec {
  return { path: PATH, headers: HEADERS, body: chatBody("tokens:600 chunks:600 delay:1000", { stream: true }) };
}

const WORDS = ("the gateway enforces budgets on every call and streams tokens back to clients while policies decide which tools may run; " +
  "approvals, audit records (hash-chained) Résumé naïve 日本語 {\"key\": \"value\"} x=42; https://example.com/a/b?c=d").split(" ");

/** About 20k o200k tokens of deterministic prose and code, the same on every run. */
export function bigPromptText(words = 11_000): string {
  let seed = 7;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    out.push(WORDS[seed % WORDS.length]!);
  }
  return out.join(" ");
}

/** The 20k-token prompt call (the mock still answers 24 words). */
export function bigPromptSpec(text = bigPromptText()): RequestSpec {
  return { path: PATH, headers: HEADERS, body: chatBody(`${text}\ntokens:24`) };
}
