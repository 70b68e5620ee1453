/**
 * Times input token counting on a ~20k-token chat prompt: the exact count (the tokenizer) against the
 * byte upper bound the pipeline uses to skip it. Run after `npm run build`:
 *   node dist/bench/tokens.js
 * Prints one JSON object; medians over RUNS runs after a warm-up that builds the encoders.
 */
import { getEncoder } from "../src/tokens/encoding.js";
import { countChatInput, type Encoding, inputByteUpperBound } from "../src/tokens/index.js";

const RUNS = 20;
const WORDS = [
  "the", "gateway", "enforces", "budgets", "on", "every", "call", "and", "streams", "tokens", "back", "to", "clients",
  "while", "policies", "decide", "which", "tools", "may", "run;", "approvals,", "audit", "records", "(hash-chained)",
  "Résumé", "naïve", "日本語", "{\"key\":", "\"value\"}", "x=42;", "https://example.com/a/b?c=d", "\n", "\n\n",
];

/** Deterministic prose-and-code mix, so runs are comparable across machines and commits. */
function buildPrompt(wordCount: number): string {
  let seed = 1;
  const words: string[] = [];
  for (let i = 0; i < wordCount; i++) {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    words.push(WORDS[seed % WORDS.length] ?? "");
  }
  return words.join(" ");
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function time(run: () => void): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

function medianMs(run: (i: number) => void): number {
  return Number(median(Array.from({ length: RUNS }, (_, i) => time(() => run(i)))).toFixed(3));
}

const body = {
  model: "gpt-4o-mini",
  messages: Array.from({ length: 10 }, (_, i) => ({
    role: i % 2 === 0 ? "user" : "assistant",
    content: buildPrompt(1_100),
  })),
};

/** The body with every message made new (the gateway caches counts of strings it has seen). */
let fresh = 0;
const freshBody = (): typeof body => ({ ...body, messages: body.messages.map((m) => ({ ...m, content: `${fresh++} ${m.content}` })) });

const encodings: Encoding[] = ["o200k_base", "cl100k_base"];
const result: Record<string, unknown> = {
  runs: RUNS,
  chars: body.messages.reduce((sum, message) => sum + message.content.length, 0),
};
for (const encoding of encodings) {
  const firstMs = time(() => countChatInput(body, encoding));
  result[encoding] = {
    tokens: countChatInput(body, encoding),
    first_call_ms_including_encoder_build: Number(firstMs.toFixed(1)),
    count_chat_input_median_ms: medianMs(() => countChatInput(freshBody(), encoding)),
    // The same conversation resent, as agents do on every turn: served by the count cache.
    resent_median_ms: medianMs(() => countChatInput(body, encoding)),
    // The same text through the tokenizer whole, without the splitter that guards against long runs.
    raw_encode_median_ms: medianMs(() => {
      for (const message of body.messages) getEncoder(encoding).countOrdinary(message.content);
    }),
  };
}
result.byte_upper_bound = inputByteUpperBound(body, "chat");
result.byte_upper_bound_median_ms = medianMs(() => inputByteUpperBound(body, "chat"));
console.log(JSON.stringify(result, null, 2));
