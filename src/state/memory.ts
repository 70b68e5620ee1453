import { rename, writeFile } from "node:fs/promises";
import { readFileSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ensureDir } from "../util/ensure-dir.js";
import { z } from "zod";
import { emptyLevelState, reserveLevel, savedLevel, settleLevel, startGraceIfLapsed, usageOf, type LevelState } from "../limits/level-state.js";
import { lockSnapshot } from "./snapshot-lock.js";
import { type SavedLevel, SpendJournal } from "./spend-journal.js";
import {
  type Approval,
  type ApprovalStatus,
  type ApprovalTransition,
  type LeaseRenewal,
  type ReserveRequest,
  type ReserveResult,
  type RuntimeKey,
  type SettleRequest,
  type ChangeListener,
  type StateChange,
  type StateStore,
  type Stop,
  type StoredKey,
  type Usage,
  upgradeKey,
  withToolCalls,
  APPROVAL_KEPT_AFTER_EXPIRY_MS,
} from "./store.js";

interface Snapshot {
  version: 1;
  levels: Record<string, SavedLevel>;
  /** The journal generation that continues this snapshot (absent in snapshots written before journals). */
  journal?: number;
  sessionExpiry: Record<string, number>;
  keys: StoredKey[];
  stops: Stop[];
  approvals: Approval[];
}

/** The snapshot's outline, checked before it is read: a wrong file fails with its name, not a TypeError. */
const savedLevelShape = z.looseObject({
  day: z.string(),
  dayMicros: z.number(),
  month: z.string(),
  monthMicros: z.number(),
  totalMicros: z.number(),
  session: z.looseObject({ startedAt: z.number(), micros: z.number(), tokens: z.number(), llmCalls: z.number(), toolCalls: z.number() }).nullable(),
});

const snapshotShape = z.object({
  version: z.literal(1),
  levels: z.record(z.string(), savedLevelShape),
  sessionExpiry: z.record(z.string(), z.number()).optional(),
  keys: z.array(z.looseObject({ id: z.string() })),
  stops: z.array(z.looseObject({ kind: z.string(), value: z.string() })),
  approvals: z.array(z.looseObject({ id: z.string() })),
});

const SNAPSHOT_EVERY_MS = 2000;
const SWEEP_MS = 60_000;

/**
 * A level as the snapshot left it: its spend and session only, picked field by field. Calls in flight
 * belonged to the process that wrote the snapshot, which is gone and will never settle them, so every
 * level starts with none, whatever else the file holds.
 */
function restoredLevel(saved: SavedLevel, now: number): LevelState {
  const { day, dayMicros, month, monthMicros, totalMicros, session } = saved;
  return { ...emptyLevelState(now), day, dayMicros, month, monthMicros, totalMicros, session };
}

/** Puts back what a map held under `id` before a change: the value, or nothing. */
function restore<V>(map: Map<string, V>, id: string, before: V | undefined): void {
  if (before === undefined) map.delete(id);
  else map.set(id, before);
}

/** Where a snapshot path leads once links are followed (its directory's, for a snapshot not written yet). */
function realSnapshotPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    try {
      return join(realpathSync(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}

/** The embedded store: one process, state kept in a snapshot file so a restart forgets no spend. */
export class MemoryStore implements StateStore {
  readonly kind = "memory";
  private readonly levels = new Map<string, LevelState>();
  private readonly sessionExpiry = new Map<string, number>();
  private nextSweep = 0;
  private readonly keys = new Map<string, RuntimeKey>();
  private readonly stops = new Map<string, Stop>();
  private readonly approvals = new Map<string, Approval>();
  private readonly listeners: Array<ChangeListener> = [];
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  /** The spend since the last snapshot, kept as it changes; null without a snapshot file. */
  private journal: SpendJournal | null = null;
  /**
   * Why the snapshot or the journal could not be written (a full disk), until a snapshot is written
   * again: meanwhile spend would be forgotten by a restart, so calls with budgets are refused.
   */
  private unsaved: Error | null = null;
  /** Gives up the claim on the snapshot file (see `lockSnapshot`). */
  private unlock: () => void = () => undefined;

  private readonly snapshotPath: string | null;

  constructor(
    snapshot: string | null,
    now: number,
    /** A timed save that failed (it is tried again at the next one). */
    private readonly onSaveError: (error: unknown) => void = () => undefined,
  ) {
    // The file itself, not a link to it: two gateways given two names of one file must meet at one lock.
    const snapshotPath = snapshot === null ? null : realSnapshotPath(snapshot);
    this.snapshotPath = snapshotPath;
    if (snapshotPath !== null) {
      this.unlock = lockSnapshot(snapshotPath);
      this.restore(snapshotPath, now);
      this.timer = setInterval(() => void this.saveIfDirty().catch(this.saveFailed), SNAPSHOT_EVERY_MS);
      this.timer.unref();
    }
  }

  private restore(path: string, now: number): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new Error(`cannot read state snapshot \`${path}\`: ${(error as Error).message}; move it aside to start with empty state`);
      }
      // No snapshot yet (a first start, or one killed before its first snapshot): its journal, if any.
      this.replayJournal(path, 0, now);
      return;
    }
    const checked = snapshotShape.safeParse(parsed);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      const where = issue === undefined || issue.path.length === 0 ? "" : `${issue.path.join(".")}: `;
      throw new Error(`state snapshot \`${path}\` is not one this gateway writes (${where}${issue?.message ?? "invalid"}); move it aside to start with empty state`);
    }
    const snapshot = parsed as Snapshot;
    for (const [level, saved] of Object.entries(snapshot.levels)) this.levels.set(level, restoredLevel(saved, now));
    for (const [level, expiry] of Object.entries(snapshot.sessionExpiry ?? {})) this.sessionExpiry.set(level, expiry);
    for (const key of snapshot.keys) this.keys.set(key.id, upgradeKey(key));
    for (const stop of snapshot.stops) this.stops.set(`${stop.kind}:${stop.value}`, stop);
    for (const approval of snapshot.approvals) this.approvals.set(approval.id, withToolCalls(approval));
    this.replayJournal(path, snapshot.journal ?? 0, now);
  }

  /** The spend journaled after the snapshot, from `generation` on, over what it restored. */
  private replayJournal(path: string, generation: number, now: number): void {
    this.journal = new SpendJournal(path, generation, this.saveFailed);
    this.journal.replay((level, saved, expiry) => {
      if (!savedLevelShape.safeParse(saved).success) return;
      this.levels.set(level, restoredLevel(saved, now));
      if (expiry !== null) this.sessionExpiry.set(level, expiry);
    });
  }

  private readonly saveFailed = (error: unknown): void => {
    this.unsaved = error instanceof Error ? error : new Error(String(error));
    this.onSaveError(error);
  };

  /** Budgets, session limits: what a restart must not forget, so what is refused while it could be. */
  private refuseUnsaved(request: ReserveRequest): void {
    const { limits } = request;
    if (this.unsaved === null || (limits.dailyMicros === null && limits.monthlyMicros === null && limits.totalMicros === null && !limits.session)) return;
    throw new Error(`the state snapshot cannot be written (${this.unsaved.message}): spend would not survive a restart`);
  }

  /** A level's spend changed: journaled at once, snapshotted with the rest. */
  private spent(id: string, state: LevelState): void {
    this.dirty = true;
    this.journal?.record(id, state, this.sessionExpiry.get(id) ?? null);
  }

  private level(id: string, now: number, ttlMs: number | null): LevelState {
    const expiry = this.sessionExpiry.get(id);
    let state = this.levels.get(id);
    if (state === undefined || (expiry !== undefined && expiry <= now)) {
      state = emptyLevelState(now);
      this.levels.set(id, state);
    }
    if (ttlMs !== null && ttlMs > 0 && id.startsWith("session:")) this.sessionExpiry.set(id, now + ttlMs);
    return state;
  }

  /**
   * A governance write (a key, a stop, an approval) is in the snapshot file before it is answered:
   * a crash must not undo a revoke, lift a stop or let a used approval pass again. Spend, written on
   * every call, is saved every few seconds instead.
   */
  private async changed(change: StateChange | null, undo: () => void): Promise<void> {
    this.dirty = true;
    if (this.snapshotPath !== null) {
      try {
        await this.saveIfDirty();
      } catch (error) {
        // Not on disk, not done: the writer hears of the failure, and the change is not in force either.
        undo();
        throw error;
      }
    }
    if (change !== null) for (const listener of this.listeners) listener(change);
  }

  /**
   * Sessions idle past their ttl, and approvals a week past their expiry (as Redis drops them), forgotten
   * at most once a minute: a session id is used for a while, then never again; an approval, with the
   * answer it may hold, would otherwise stay in the snapshot, rewritten whole at every change, for good.
   */
  private forgetExpired(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + SWEEP_MS;
    for (const [id, expiry] of this.sessionExpiry) {
      if (expiry > now) continue;
      this.sessionExpiry.delete(id);
      this.levels.delete(id);
      this.dirty = true;
    }
    for (const [id, approval] of this.approvals) {
      if (!(Date.parse(approval.expires_at) + APPROVAL_KEPT_AFTER_EXPIRY_MS <= now)) continue;
      this.approvals.delete(id);
      this.dirty = true;
    }
  }

  async reserve(request: ReserveRequest, now: number): Promise<ReserveResult> {
    this.refuseUnsaved(request);
    this.forgetExpired(now);
    const state = this.level(request.level, now, request.ttlMs);
    const result = reserveLevel(state, request, now);
    if (result.ok) this.spent(request.level, state);
    return result;
  }

  async settle(request: SettleRequest, now: number): Promise<void> {
    const state = this.level(request.level, now, request.ttlMs);
    settleLevel(state, request, now);
    this.spent(request.level, state);
  }

  async usage(level: string, now: number): Promise<Usage> {
    const state = this.levels.get(level);
    // A session idle past its ttl starts afresh at its next call: what it spent before is no longer its spend.
    const expiry = this.sessionExpiry.get(level);
    return usageOf(state === undefined || (expiry !== undefined && expiry <= now) ? emptyLevelState(now) : state, now);
  }

  /** A running call's lease is never lost here but by lapsing: what it holds (`held`) is not needed. */
  async renewLeases(leases: readonly LeaseRenewal[], now: number, leaseMs: number): Promise<void> {
    for (const { level, callId } of leases) {
      const state = this.levels.get(level);
      if (state === undefined || !state.leases.has(callId)) continue;
      startGraceIfLapsed(state, now);
      state.leases.set(callId, now + leaseMs);
    }
  }

  async takeToolCalls(level: string, count: number, max: number): Promise<{ ok: boolean; used: number }> {
    const state = this.levels.get(level);
    const session = state?.session ?? null;
    const used = session?.toolCalls ?? 0;
    if (state === undefined || session === null || (count > 0 && used + count > max)) return { ok: false, used };
    session.toolCalls = Math.max(0, used + count);
    this.spent(level, state);
    return { ok: true, used };
  }

  async listKeys(): Promise<RuntimeKey[]> {
    return [...this.keys.values()];
  }

  async putKey(key: RuntimeKey): Promise<boolean> {
    const before = this.keys.get(key.id);
    if ((before?.revision ?? -1) !== key.revision - 1) return false;
    this.keys.set(key.id, key);
    await this.changed("keys", () => restore(this.keys, key.id, before));
    return true;
  }

  async listStops(): Promise<Stop[]> {
    return [...this.stops.values()];
  }

  async putStop(stop: Stop): Promise<void> {
    const id = `${stop.kind}:${stop.value}`;
    const before = this.stops.get(id);
    this.stops.set(id, stop);
    await this.changed("stops", () => restore(this.stops, id, before));
  }

  async deleteStop(kind: Stop["kind"], value: string): Promise<boolean> {
    const id = `${kind}:${value}`;
    const before = this.stops.get(id);
    if (before === undefined) return false;
    this.stops.delete(id);
    await this.changed("stops", () => restore(this.stops, id, before));
    return true;
  }

  async createApproval(approval: Approval): Promise<void> {
    this.forgetExpired(Date.parse(approval.created_at));
    this.approvals.set(approval.id, structuredClone(approval));
    await this.changed(null, () => this.approvals.delete(approval.id));
  }

  async getApproval(id: string): Promise<Approval | null> {
    const approval = this.approvals.get(id);
    return approval === undefined ? null : structuredClone(approval);
  }

  async listApprovals(status: ApprovalStatus | null): Promise<Approval[]> {
    const all = [...this.approvals.values()].filter((a) => status === null || a.status === status);
    return all.sort((a, b) => b.created_at.localeCompare(a.created_at)).map((a) => structuredClone(a));
  }

  async decideApproval(
    id: string,
    decision: { status: "approved" | "denied"; by: string; role: string; comment: string | null; at: string },
    now: number,
  ): Promise<ApprovalTransition> {
    return this.transition(id, now, "pending", "not_pending", (approval) => {
      approval.status = decision.status;
      approval.decided_by = decision.by;
      approval.decided_role = decision.role;
      approval.decided_at = decision.at;
      approval.comment = decision.comment;
    });
  }

  async consumeApproval(id: string, now: number): Promise<ApprovalTransition> {
    return this.transition(id, now, "approved", "not_approved", (approval) => {
      approval.status = "used";
    });
  }

  async restoreApproval(id: string, now: number): Promise<ApprovalTransition> {
    return this.transition(id, now, "used", "not_used", (approval) => {
      approval.status = "approved";
    });
  }

  /** One approval state change, checked in the Lua script's order: found, not expired, in state `from`. */
  private async transition(
    id: string,
    now: number,
    from: ApprovalStatus,
    refusal: "not_pending" | "not_approved" | "not_used",
    apply: (approval: Approval) => void,
  ): Promise<ApprovalTransition> {
    const approval = this.approvals.get(id);
    if (approval === undefined) return { ok: false, reason: "not_found", approval: null };
    if (Date.parse(approval.expires_at) <= now) return { ok: false, reason: "expired", approval: structuredClone(approval) };
    if (approval.status !== from) return { ok: false, reason: refusal, approval: structuredClone(approval) };
    const before = structuredClone(approval);
    apply(approval);
    const result: ApprovalTransition = { ok: true, approval: structuredClone(approval) };
    await this.changed(null, () => this.approvals.set(id, before));
    return result;
  }

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  async ping(): Promise<boolean> {
    return this.unsaved === null;
  }

  private snapshot(): Snapshot {
    const levels: Snapshot["levels"] = {};
    for (const [id, state] of this.levels) levels[id] = savedLevel(state);
    return {
      version: 1,
      levels,
      sessionExpiry: Object.fromEntries(this.sessionExpiry),
      keys: [...this.keys.values()],
      stops: [...this.stops.values()],
      approvals: [...this.approvals.values()],
    };
  }

  /**
   * Writes the snapshot now, whatever changed: at start, so a path it cannot write refuses the
   * start rather than fail every admin write later.
   */
  async saveNow(): Promise<void> {
    this.dirty = true;
    await this.saveIfDirty();
  }

  private saveIfDirty(): Promise<void> {
    if (!this.dirty || this.snapshotPath === null) return this.writing;
    this.dirty = false;
    const path = this.snapshotPath;
    const journal = this.journal;
    // In the same turn as the snapshot is taken: the new journal holds exactly what comes after it.
    const generation = journal?.rotate();
    const text = JSON.stringify({ ...this.snapshot(), ...(generation === undefined ? {} : { journal: generation }) });
    // Written to a temporary file and renamed so a crash mid-write never leaves a torn snapshot.
    const write = this.writing.then(async () => {
      await ensureDir(dirname(path));
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, path);
      this.unsaved = null;
      if (journal !== null && generation !== undefined) await journal.prune(generation);
    });
    // A failed write leaves the state to write again, and the next write does not inherit the failure.
    this.writing = write.catch((error: unknown) => {
      this.dirty = true;
      this.unsaved = error instanceof Error ? error : new Error(String(error));
    });
    return write;
  }

  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.dirty = this.dirty || this.snapshotPath !== null;
    try {
      await this.saveIfDirty();
      await this.journal?.close();
    } finally {
      this.unlock();
    }
  }
}
