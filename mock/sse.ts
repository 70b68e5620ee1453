import type { HandlerContext } from "./types.js";

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
} as const;

/** A broken frame: valid SSE framing, invalid JSON, as a flaky upstream might send. */
export const MALFORMED_FRAME = 'data: {"id":"broken","choices":[{"delta":{"content":"unterminated\n\n';

/**
 * Frames are produced lazily by index so thousands of long-lived slow streams
 * (memory benchmark) do not each hold every pre-rendered frame.
 */
export interface FramePlan {
  count: number;
  frame(i: number): string;
}

export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

export function sseEvent(type: string, payload: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(payload)}\n\n`;
}

/**
 * Writes the frames honouring the chunk delay and the fault directives.
 * stall_after / reset_after / error_after count frames already written; `failure` is the error
 * event this API ends a stream with (error_after).
 */
export function writeStream(ctx: HandlerContext, plan: FramePlan, failure: string): void {
  const { res, directives: d } = ctx;
  const delay = d.delayMs ?? ctx.options.chunkDelayMs;
  const malformedAt = d.malformedSse ? Math.min(1, plan.count) : -1;
  res.writeHead(200, { ...SSE_HEADERS, "x-request-id": `req_mock_${ctx.seq}` });

  const plain = delay === 0 && d.stallAfter === undefined && d.resetAfter === undefined && d.errorAfter === undefined;
  if (plain) {
    // Fast path for benchmarks: one write, one syscall.
    let out = "";
    for (let i = 0; i < plan.count; i++) out += (i === malformedAt ? MALFORMED_FRAME : "") + plan.frame(i);
    res.end(out);
    return;
  }

  // Headers must reach the client even if we stall before the first frame.
  res.flushHeaders();
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  ctx.onCancel(() => clearTimeout(timer));
  const reset = (): void => {
    ctx.markReset();
    res.socket?.destroy();
  };
  const step = (): void => {
    while (i < plan.count) {
      if (i === d.stallAfter) return; // stall forever; the socket stays open until the client leaves
      if (i === d.errorAfter) {
        res.end(failure);
        return;
      }
      if (i === d.resetAfter) {
        reset();
        return;
      }
      const out = (i === malformedAt ? MALFORMED_FRAME : "") + plan.frame(i);
      i++;
      if (i === d.resetAfter) {
        // destroy() discards unflushed data, so wait until frame N is on the wire.
        res.write(out, reset);
        return;
      }
      res.write(out);
      if (delay > 0 && i < plan.count) {
        timer = setTimeout(step, delay);
        return;
      }
    }
    res.end();
  };
  step();
}
