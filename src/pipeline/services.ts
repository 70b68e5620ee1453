import type { ApprovalService } from "../approvals/service.js";
import type { AuditWriter } from "../audit/writer.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../http/metrics.js";
import type { StateStore } from "../state/store.js";
import type { Clock } from "../util/ids.js";
import type { LeaseKeeper } from "../limits/leases.js";
import type { ActiveStreams } from "./active-streams.js";
import type { AuditDraft } from "./audit-draft.js";
import type { Runtime, SharedState } from "./runtime.js";
import type { GatewayError } from "../http/errors.js";

/** Everything a request handler needs; built once in main.ts and swapped in part on reload. */
export interface Services {
  current(): Runtime;
  shared: SharedState;
  store: StateStore;
  audit: AuditWriter;
  approvals: ApprovalService;
  streams: ActiveStreams;
  /** The parallel-slot leases of this replica's calls in flight, renewed while they run. */
  leases: LeaseKeeper;
  metrics: Metrics;
  clock: Clock;
  log: Logger;
  /** Counts a request's draft as open until `finish`, so a drain can wait for its record. */
  begin(draft: AuditDraft): void;
  /** Ends a request's audit draft: builds the record and enqueues it, exactly once. */
  finish(draft: AuditDraft, status: number, error: GatewayError | null): void;
  /**
   * Store work that follows a request's answer and record (its settle, an approval given back):
   * a drain waits for it before it closes the store. Resolves when the work does.
   */
  afterAnswer(work: Promise<void>): Promise<void>;
  /** Store failures in limits are admitted uncharged under `store.on_error: fail_open`. */
  failOpen(): boolean;
}
