import type { AuditRecord } from "./types.js";

/**
 * A destination for audit records. The writer calls `write` with one batch at a time, never
 * concurrently, and calls it again with the very same array after a rejection, so a sink that
 * stored part of a batch can skip what it already has.
 */
export interface AuditSink {
  readonly name: string;
  /** Stores records on this machine's disk: what an answer under `fsync: always` waits for. */
  readonly local?: boolean;
  /** Resolves once the batch is stored as durably as the sink's settings promise. */
  write(batch: readonly AuditRecord[]): Promise<void>;
  /** Makes everything written so far durable (fsync), whatever the sink's settings. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
