import type { Logger } from "./logger.js";

const INTERVAL_MS = 10_000;
/** Per logger (one a gateway), so two gateways in one process do not silence each other. */
const lastByLogger = new WeakMap<Logger, Map<string, { at: number; suppressed: number }>>();

/**
 * Logs a state-store failure at most once per 10 s per operation, with how many were suppressed:
 * an outage fails every call, and one stack trace per call would flood the log.
 */
export function storeTrouble(log: Logger, operation: string, error: unknown, now: number = Date.now()): void {
  let last = lastByLogger.get(log);
  if (last === undefined) {
    last = new Map();
    lastByLogger.set(log, last);
  }
  const seen = last.get(operation);
  if (seen !== undefined && now - seen.at < INTERVAL_MS) {
    seen.suppressed++;
    return;
  }
  last.set(operation, { at: now, suppressed: 0 });
  log.error({ err: withoutCommand(error), operation, suppressed: seen?.suppressed ?? 0 }, "state store failed");
}

/**
 * A Redis client's error carries the command it failed on, arguments included: an AUTH's argument is
 * the password. The error is logged without it, whatever the logger's serializers.
 */
export function withoutCommand(error: unknown): unknown {
  if (!(error instanceof Error) || !("command" in error)) return error;
  const plain = new Error(error.message);
  plain.name = error.name;
  if (error.stack !== undefined) plain.stack = error.stack;
  return plain;
}
