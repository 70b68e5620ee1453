import type { Logger } from "pino";
import type { AuditSink } from "./sink.js";
import type { AuditRecord } from "./types.js";

/** One pino line per record (`msg: "audit"`, the record under `audit`), for log shippers. */
export class LogSink implements AuditSink {
  readonly name = "log";
  private readonly logger: Logger;

  constructor(logger: Logger) {
    // Records are not chatter: `LOG_LEVEL=warn` must not silence the audit.
    this.logger = logger.child({}, { level: "info" });
  }

  async write(batch: readonly AuditRecord[]): Promise<void> {
    for (const record of batch) this.logger.info({ audit: record }, "audit");
  }

  flush(): Promise<void> {
    return new Promise((resolve, reject) => {
      // pino.flush throws on a synchronous destination that needs no flushing.
      try {
        this.logger.flush((error) => (error ? reject(error) : resolve()));
      } catch {
        resolve();
      }
    });
  }

  close(): Promise<void> {
    return this.flush();
  }
}
