import { setMaxListeners } from "node:events";
import { Pool } from "undici";
import type { RequestSpec } from "../driver.js";

export interface OpenStreams {
  /** Streams whose first body byte has arrived. */
  readonly flowing: number;
  readonly failed: number;
  close(): Promise<void>;
}

/**
 * Opens `count` concurrent streaming requests, each on its own connection, and resolves once all
 * have delivered their first body byte (or the timeout passed). The bodies keep being read.
 */
export async function openStreams(origin: string, spec: RequestSpec, count: number, timeoutMs: number): Promise<OpenStreams> {
  const pool = new Pool(origin, { connections: count, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });
  const abort = new AbortController();
  setMaxListeners(0, abort.signal);
  const state = { flowing: 0, failed: 0 };
  let notify: () => void = () => undefined;
  const settled = new Promise<void>((resolve) => {
    notify = () => {
      if (state.flowing + state.failed >= count) resolve();
    };
  });
  const one = async (_: unknown, i: number): Promise<void> => {
    try {
      const res = await pool.request({ path: spec.path, method: "POST", headers: spec.headers, body: spec.body(i), signal: abort.signal });
      let first = true;
      for await (const _chunk of res.body) {
        if (first) {
          first = false;
          state.flowing++;
          notify();
        }
      }
    } catch {
      if (!abort.signal.aborted) {
        state.failed++;
        notify();
      }
    }
  };
  const all = Array.from({ length: count }, one);
  await Promise.race([settled, new Promise((r) => setTimeout(r, timeoutMs))]);
  return {
    get flowing() {
      return state.flowing;
    },
    get failed() {
      return state.failed;
    },
    async close() {
      abort.abort();
      await Promise.allSettled(all);
      await pool.destroy();
    },
  };
}
