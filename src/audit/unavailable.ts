import { ReplyError } from "ioredis";

/** The audit's Redis stream cannot be reached, so a query over it cannot be answered now. */
export class AuditUnavailableError extends Error {
  constructor(cause: unknown) {
    super("the audit stream cannot be reached", { cause });
    this.name = "AuditUnavailableError";
  }
}

/**
 * One read of the stream. A connection failure (refused, closed, out of retries) becomes
 * `AuditUnavailableError`, which callers can answer as "try again"; an error reply from a reachable
 * server (a key of the wrong type) is a misconfiguration and stays as it is.
 */
export async function fromStream<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof ReplyError) throw error;
    throw new AuditUnavailableError(error);
  }
}
