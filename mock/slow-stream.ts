import type { MockUpstream, MockUpstreamOptions } from "./types.js";
import { startMockUpstream } from "./upstream.js";

// Memory benchmark support: thousands of concurrent chat streams that each stay
// open for a long time, trickling one small chunk every chunkDelayMs. The mock
// renders each frame on demand (see FramePlan), so its own footprint stays small
// and the measurement reflects the gateway.

export interface SlowStreamOptions {
  /** Content chunks per stream (one word each). */
  chunks?: number;
  /** Pause between chunks; a stream lasts about chunks * chunkDelayMs. */
  chunkDelayMs?: number;
}

/** The user-message text steering a mock (any options) into a slow stream. */
export function slowStreamPrompt({ chunks = 1000, chunkDelayMs = 100 }: SlowStreamOptions = {}): string {
  return `tokens:${chunks} chunks:${chunks} delay:${chunkDelayMs}`;
}

/** A complete streaming chat request body, ready to POST through the gateway. */
export function slowStreamRequest(opts: SlowStreamOptions & { model?: string; includeUsage?: boolean } = {}) {
  return {
    model: opts.model ?? "gpt-4o-mini",
    stream: true,
    ...(opts.includeUsage ? { stream_options: { include_usage: true } } : {}),
    messages: [{ role: "user", content: slowStreamPrompt(opts) }],
  };
}

/** A mock tuned for holding many open streams: recording off so memory stays flat. */
export function startSlowStreamUpstream(opts: MockUpstreamOptions = {}): Promise<MockUpstream> {
  return startMockUpstream({ record: false, chunkDelayMs: 100, chunks: 1000, ...opts });
}
