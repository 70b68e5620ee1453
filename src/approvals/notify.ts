import { createHmac } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import type { Logger } from "../log/logger.js";

export interface Notifier {
  send(type: "approval.created" | "approval.decided", approval: unknown): void;
}

/** Attempts over about three minutes (waits doubling from 0.4 s, at most a minute): a receiver restarting meanwhile still gets the event. */
const ATTEMPTS = 10;
const backoff = (attempt: number): number => Math.min(60_000, 200 * 2 ** attempt);

export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * Posts approval events to `approvals.notify_url`, signed with HMAC-SHA256, retried with
 * exponential backoff in the background: a slow or broken receiver never delays a call. One
 * approval's events go in the order they happened (a `decided` waits for its `created` to be
 * delivered or given up), so a receiver never learns of a decision before its approval.
 */
export function createNotifier(settings: () => { url: string | null; secret: string }, log: Logger, waitMs: (attempt: number) => number = backoff): Notifier {
  const inFlight = new Map<string, Promise<void>>();
  return {
    send(type, approval) {
      const { url, secret } = settings();
      if (url === null) return;
      const body = JSON.stringify({ type, approval });
      const id = String((approval as { id?: unknown } | null)?.id ?? "");
      const delivered = (inFlight.get(id) ?? Promise.resolve()).then(() => deliver(url, body, secret, log.child({ approval_id: id, event: type }), waitMs));
      inFlight.set(id, delivered);
      void delivered.then(() => {
        if (inFlight.get(id) === delivered) inFlight.delete(id);
      });
    },
  };
}

async function deliver(url: string, body: string, secret: string, log: Logger, waitMs: (attempt: number) => number): Promise<void> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      const response = await request(url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-spark-signature": signBody(body, secret) },
        body,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      await response.body.dump();
      if (response.statusCode < 300) return;
      log.warn({ status: response.statusCode, attempt }, "approval webhook refused");
    } catch (error) {
      log.warn({ err: error, attempt }, "approval webhook failed");
    }
    if (attempt < ATTEMPTS) await sleep(waitMs(attempt), undefined, { ref: false });
  }
  log.error({ attempts: ATTEMPTS }, "approval webhook given up: the event was not delivered");
}
