import { afterAll, beforeAll, expect, it } from "vitest";
import { slowStreamRequest, startSlowStreamUpstream } from "../../mock/slow-stream.js";
import type { MockUpstream } from "../../mock/upstream.js";

let mock: MockUpstream;
beforeAll(async () => {
  mock = await startSlowStreamUpstream();
});
afterAll(() => mock.close());

it("holds many concurrent streams open, each trickling chunks", async () => {
  const body = JSON.stringify(slowStreamRequest({ chunks: 6, chunkDelayMs: 50, includeUsage: true }));
  const started = Date.now();
  const texts = await Promise.all(
    Array.from({ length: 100 }, () =>
      fetch(`${mock.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body }).then((r) =>
        r.text(),
      ),
    ),
  );
  const elapsed = Date.now() - started;
  // Concurrent, not serialised: 100 streams of ~250ms finish in well under 100 * 250ms.
  expect(elapsed).toBeGreaterThanOrEqual(250);
  expect(elapsed).toBeLessThan(5_000);
  for (const t of texts) {
    expect(t.match(/"content":"/g)).toHaveLength(7); // role chunk + 6 one-word chunks
    expect(t.endsWith("data: [DONE]\n\n")).toBe(true);
  }
  expect(mock.requests).toHaveLength(0); // recording off
  expect(mock.requestCount).toBe(100);
});
