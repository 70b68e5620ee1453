import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis, type RedisOptions } from "ioredis";
import { APPROVAL_TRANSITION_LUA, DELETE_AND_PUBLISH_LUA } from "./lua/approval.js";
import { PUT_KEY_LUA } from "./lua/keys.js";
import { ABANDON_LUA, RENEW_LEASE_LUA } from "./lua/lease.js";
import { RESERVE_LUA } from "./lua/reserve.js";
import { SETTLE_LUA } from "./lua/settle.js";
import { TAKE_TOOL_CALLS_LUA } from "./lua/tool-calls.js";
import { approvalFields, approvalFrom, type Decision, transitionFrom } from "./redis-approvals.js";
import { RedisKeys } from "./redis-keys.js";
import { reserveArgs, reserveResultFrom, settleArgs, windowTotals } from "./redis-level.js";
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
} from "./store.js";

type Script = (...keysThenArgs: string[]) => Promise<unknown>;

/** The commands defineCommand adds; ioredis runs them with EVALSHA and falls back to EVAL after a restart. */
interface Scripts {
  sparkReserve: Script;
  sparkSettle: Script;
  sparkApprovalTransition: Script;
  sparkDeleteAndPublish: Script;
  sparkPutKey: Script;
  sparkRenewLease: Script;
  sparkAbandon: Script;
  sparkTakeToolCalls: Script;
}

const LEVEL_KEYS = 10;
const QUIT_TIMEOUT_MS = 1000;

/** A write kept to retry in the background (see `settle` and `reserve`). */
interface Unsent {
  run: (now: number) => Promise<void>;
  /** The caller's clock when it was first tried. */
  now: number;
  since: number;
  /** Safe to run twice: retried whatever the failure, not only when it surely never reached Redis. */
  idempotent: boolean;
}

const SETTLE_RETRY_MS = 1000;
const SUBSCRIBE_RETRY_MS = 1000;
/** An outage longer than this leaves the reservations it caught charged (the audit still has the actual cost). */
const SETTLE_RETRY_FOR_MS = 30 * 60_000;
/** A bound on what waits, so a long outage under load cannot grow memory without end. */
const MAX_UNSENT = 100_000;

/** ioredis refused the command before sending it: the connection was down (offline queue off) or closed. */
function neverSent(error: unknown): boolean {
  const message = error instanceof Error ? error.message : "";
  return message.startsWith("Stream isn't writeable") || message === "Connection is closed.";
}
/**
 * A change announced on the channel; `from` lets a replica skip its own echo (it told its listeners
 * already); `id` names the count of replicas that have applied it.
 */
interface ChangeMessage {
  change: StateChange;
  from: string;
  id: string;
}

/** How long a key or stop write waits for every replica to apply it before it answers anyway. */
const APPLY_WAIT_MS = 1000;
const APPLY_POLL_MS = 5;
/** An applied count outlives any wait for it. */
const APPLIED_TTL_MS = 60_000;

/**
 * The shared store of several replicas. Every read-modify-write is one Lua script whose keys share one
 * hash tag; `now` always comes from the caller's clock, never the server's, so tests can inject time.
 */
export class RedisStore implements StateStore {
  readonly kind = "redis";
  private readonly names: RedisKeys;
  private readonly scripts: Scripts;
  private readonly listeners: Array<ChangeListener> = [];
  private readonly origin = randomUUID();
  private readonly subscription: Promise<void>;
  /** Settles Redis never received while it was away, and reserves to undo: retried until they land (see `settle`, `reserve`). */
  private readonly unsent: Unsent[] = [];
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    // Subscribed connections cannot run commands, hence a second one; it queues while offline so
    // the subscription is made as soon as the server is reachable.
    private readonly subscriber: Redis = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null }),
  ) {
    this.names = new RedisKeys(prefix);
    redis.defineCommand("sparkReserve", { numberOfKeys: LEVEL_KEYS, lua: RESERVE_LUA });
    redis.defineCommand("sparkSettle", { numberOfKeys: LEVEL_KEYS, lua: SETTLE_LUA });
    redis.defineCommand("sparkApprovalTransition", { numberOfKeys: 1, lua: APPROVAL_TRANSITION_LUA });
    redis.defineCommand("sparkDeleteAndPublish", { numberOfKeys: 1, lua: DELETE_AND_PUBLISH_LUA });
    redis.defineCommand("sparkPutKey", { numberOfKeys: 1, lua: PUT_KEY_LUA });
    redis.defineCommand("sparkRenewLease", { numberOfKeys: LEVEL_KEYS, lua: RENEW_LEASE_LUA });
    redis.defineCommand("sparkAbandon", { numberOfKeys: LEVEL_KEYS, lua: ABANDON_LUA });
    redis.defineCommand("sparkTakeToolCalls", { numberOfKeys: 1, lua: TAKE_TOOL_CALLS_LUA });
    this.scripts = redis as unknown as Scripts;
    subscriber.on("message", (channel: string, message: string) => this.received(channel, message));
    this.subscription = this.subscribeWhenReady();
    // Back after a lost connection: what changed while it was away was announced to no one here.
    this.subscription.then(() => subscriber.on("ready", () => void this.notify("keys").then(() => this.notify("stops")).catch(() => undefined)));
  }

  /**
   * Subscribes once the connection is ready, and again after a failure, until it holds (ioredis then
   * renews it on every reconnect). Sent while the connection was still being set up, a SUBSCRIBE
   * could race the client's own ready check, fail it, and leave the replica hearing of changes only
   * through its periodic refresh.
   */
  private async subscribeWhenReady(): Promise<void> {
    while (!this.closed) {
      // Not `events.once`, which would reject on the connection errors the client recovers from by itself.
      if (this.subscriber.status !== "ready") await new Promise((resolve) => this.subscriber.once("ready", resolve));
      try {
        await this.subscriber.subscribe(this.names.changes);
        return;
      } catch {
        await sleep(SUBSCRIBE_RETRY_MS, undefined, { ref: false });
      }
    }
  }

  /** Resolves once changes from other replicas are being received. */
  subscribed(): Promise<void> {
    return this.subscription;
  }

  /**
   * A reserve whose outcome is unknown (it timed out: Redis may have run it, or may yet, as after a
   * stall) is undone in the background: the call was refused for the store's sake, and what the
   * reserve took must not hold the level's budget until its lease lapses.
   */
  async reserve(request: ReserveRequest, now: number): Promise<ReserveResult> {
    const keys = this.names.level(request.level, now);
    try {
      return reserveResultFrom(await this.scripts.sparkReserve(...keys, ...reserveArgs(request, now)));
    } catch (error) {
      if (!neverSent(error)) {
        const { level, callId } = request;
        this.retryLater({ run: (at) => this.abandon(level, callId, at), now, since: Date.now(), idempotent: true });
      }
      throw error;
    }
  }

  private async abandon(level: string, callId: string, now: number): Promise<void> {
    await this.scripts.sparkAbandon(...this.names.level(level, now), callId);
  }

  /**
   * A settle that never reached Redis (it was down: the command was refused before it was sent) is
   * kept and retried in the background until it lands, so a level is not left charged the call's
   * worst case for good; the caller still hears of the failure. One whose outcome is unknown (a
   * timeout: it may have run) is not retried, since a settle applied twice would undercharge.
   */
  async settle(request: SettleRequest, now: number): Promise<void> {
    try {
      await this.runSettle(request, now);
    } catch (error) {
      if (neverSent(error)) this.retryLater({ run: (at) => this.runSettle(request, at), now, since: Date.now(), idempotent: false });
      throw error;
    }
  }

  private async runSettle(request: SettleRequest, now: number): Promise<void> {
    const keys = this.names.level(request.level, now);
    await this.scripts.sparkSettle(...keys, ...settleArgs(request, now));
  }

  private retryLater(write: Unsent): void {
    if (this.unsent.length < MAX_UNSENT) this.unsent.push(write);
    this.retryTimer ??= setTimeout(() => void this.retryUnsent(), SETTLE_RETRY_MS).unref();
  }

  private async retryUnsent(): Promise<void> {
    const due = this.unsent.splice(0);
    for (const write of due) {
      const elapsed = Date.now() - write.since;
      try {
        // The caller's clock, moved on by the time the write waited.
        await write.run(write.now + elapsed);
      } catch (error) {
        if ((write.idempotent || neverSent(error)) && elapsed < SETTLE_RETRY_FOR_MS) this.unsent.push(write);
      }
    }
    this.retryTimer = this.unsent.length === 0 || this.closed ? null : setTimeout(() => void this.retryUnsent(), SETTLE_RETRY_MS).unref();
  }

  async usage(level: string, now: number): Promise<Usage> {
    const { day, month, total, window, expiry } = this.names.levelNames(level, now);
    const results = await this.redis.multi().mget(day, month, total, expiry).hgetall(window).exec();
    const [spend, slots] = checked(results) as [Array<string | null>, Record<string, string>];
    // A session idle past its ttl starts afresh at its next call (the script deletes it then): nothing is its spend.
    if (spend[3] !== null && spend[3] !== undefined && Number(spend[3]) <= now) return { requestsLastMinute: 0, tokensLastMinute: 0, dailyMicros: 0, monthlyMicros: 0, totalMicros: 0 };
    const { requests, tokens } = windowTotals(slots, now);
    return {
      requestsLastMinute: requests,
      tokensLastMinute: tokens,
      dailyMicros: Number(spend[0] ?? 0),
      monthlyMicros: Number(spend[1] ?? 0),
      totalMicros: Number(spend[2] ?? 0),
    };
  }

  async renewLeases(leases: readonly LeaseRenewal[], now: number, leaseMs: number): Promise<void> {
    // One script per level: each level's keys share a hash tag, different levels need not.
    const pipeline = this.redis.pipeline();
    const scripts = pipeline as unknown as Scripts;
    for (const { level, callId, held } of leases) {
      const keep = held === undefined ? ["", ""] : [String(held.micros), String(held.tokens)];
      void scripts.sparkRenewLease(...this.names.level(level, now), String(now + leaseMs), callId, String(leaseMs), String(now), ...keep);
    }
    checked(await pipeline.exec());
  }

  async takeToolCalls(level: string, count: number, max: number): Promise<{ ok: boolean; used: number }> {
    const session = this.names.levelNames(level, Date.now()).session;
    const [ok, used] = (await this.scripts.sparkTakeToolCalls(session, String(count), String(max))) as [number, string];
    return { ok: ok === 1, used: Number(used) };
  }

  async listKeys(): Promise<RuntimeKey[]> {
    return (await this.redis.hvals(this.names.keys)).map((json) => upgradeKey(JSON.parse(json) as StoredKey));
  }

  async putKey(key: RuntimeKey): Promise<boolean> {
    const message = this.message("keys");
    const [stored, heard] = (await this.scripts.sparkPutKey(this.names.keys, key.id, String(key.revision - 1), JSON.stringify(key), this.names.changes, message.text)) as [
      number,
      number,
    ];
    if (stored !== 1) return false;
    this.notify("keys");
    await this.appliedEverywhere(message.id, heard);
    return true;
  }

  async listStops(): Promise<Stop[]> {
    return (await this.redis.hvals(this.names.stops)).map((json) => JSON.parse(json) as Stop);
  }

  async putStop(stop: Stop): Promise<void> {
    const field = `${stop.kind}:${stop.value}`;
    const message = this.message("stops");
    const [, heard] = checked(await this.redis.multi().hset(this.names.stops, field, JSON.stringify(stop)).publish(this.names.changes, message.text).exec()) as [number, number];
    this.notify("stops");
    await this.appliedEverywhere(message.id, heard);
  }

  async deleteStop(kind: Stop["kind"], value: string): Promise<boolean> {
    const message = this.message("stops");
    const [removed, heard] = (await this.scripts.sparkDeleteAndPublish(this.names.stops, `${kind}:${value}`, this.names.changes, message.text)) as [number, number];
    if (removed !== 1) return false;
    this.notify("stops");
    await this.appliedEverywhere(message.id, heard);
    return true;
  }

  /**
   * Waits until every replica that heard a change (`heard`, this one included) has applied it, so an
   * admin write answers once a revoked key or a stop is refused on every replica, not a refresh
   * later. A replica that does not answer within APPLY_WAIT_MS (stalled, or gone) is not waited for
   * longer: its periodic refresh still applies the change within a second.
   */
  private async appliedEverywhere(id: string, heard: number): Promise<void> {
    const deadline = Date.now() + APPLY_WAIT_MS;
    const counter = this.names.applied(id);
    while (heard > 0 && Date.now() < deadline) {
      const applied = Number((await this.redis.get(counter).catch(() => null)) ?? 0);
      if (applied >= heard) return;
      await sleep(APPLY_POLL_MS);
    }
  }

  private markApplied(id: string): void {
    const counter = this.names.applied(id);
    this.redis
      .multi()
      .incr(counter)
      .pexpire(counter, APPLIED_TTL_MS)
      .exec()
      .catch(() => undefined);
  }

  async createApproval(approval: Approval): Promise<void> {
    const key = this.names.approval(approval.id);
    const { fields, ttlMs } = approvalFields(approval);
    const created = Date.parse(approval.created_at);
    checked(
      await this.redis
        .multi()
        .del(key)
        .hset(key, fields)
        .pexpire(key, ttlMs)
        .zadd(this.names.approvalIndex, Number.isFinite(created) ? created : 0, approval.id)
        .exec(),
    );
  }

  async getApproval(id: string): Promise<Approval | null> {
    const [doc, status, decision] = await this.redis.hmget(this.names.approval(id), "doc", "status", "decision");
    return doc == null ? null : approvalFrom(doc, status ?? "pending", decision ?? "");
  }

  async listApprovals(status: ApprovalStatus | null): Promise<Approval[]> {
    const ids = await this.redis.zrange(this.names.approvalIndex, 0, -1);
    if (ids.length === 0) return [];
    const read = this.redis.pipeline();
    for (const id of ids) read.hmget(this.names.approval(id), "doc", "status", "decision");
    const rows = checked(await read.exec()) as Array<Array<string | null>>;
    const found: Approval[] = [];
    const gone: string[] = [];
    rows.forEach(([doc, current, decision], i) => {
      if (doc == null) gone.push(ids[i] ?? "");
      else found.push(approvalFrom(doc, current ?? "pending", decision ?? ""));
    });
    // Approvals Redis expired leave their id in the index; tidy it on the way.
    if (gone.length > 0) await this.redis.zrem(this.names.approvalIndex, ...gone);
    // The same order as the memory store (newest first by the created_at text), not the index's.
    return found.filter((a) => status === null || a.status === status).sort((a, b) => b.created_at.localeCompare(a.created_at));
  }

  async decideApproval(
    id: string,
    decision: { status: "approved" | "denied"; by: string; role: string; comment: string | null; at: string },
    now: number,
  ): Promise<ApprovalTransition> {
    const decided: Decision = { decided_by: decision.by, decided_role: decision.role, decided_at: decision.at, comment: decision.comment };
    const reply = await this.scripts.sparkApprovalTransition(this.names.approval(id), String(now), "decide", decision.status, JSON.stringify(decided));
    return transitionFrom(reply);
  }

  async consumeApproval(id: string, now: number): Promise<ApprovalTransition> {
    return transitionFrom(await this.scripts.sparkApprovalTransition(this.names.approval(id), String(now), "consume", "used", ""));
  }

  async restoreApproval(id: string, now: number): Promise<ApprovalTransition> {
    return transitionFrom(await this.scripts.sparkApprovalTransition(this.names.approval(id), String(now), "restore", "approved", ""));
  }

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === "PONG";
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await Promise.all([quitRedis(this.redis), quitRedis(this.subscriber)]);
  }

  private message(change: StateChange): { id: string; text: string } {
    const id = randomUUID();
    return { id, text: JSON.stringify({ change, from: this.origin, id } satisfies ChangeMessage) };
  }

  private notify(change: StateChange): Promise<unknown> {
    return Promise.all(this.listeners.map((listener) => listener(change)));
  }

  private received(channel: string, message: string): void {
    if (channel !== this.names.changes) return;
    let parsed: ChangeMessage;
    try {
      parsed = JSON.parse(message) as ChangeMessage;
    } catch {
      return;
    }
    if (parsed.change !== "keys" && parsed.change !== "stops") return;
    // This replica's own change was applied where it was written.
    const applied = parsed.from === this.origin ? Promise.resolve() : this.notify(parsed.change);
    if (typeof parsed.id === "string") {
      const id = parsed.id;
      applied.then(
        () => this.markApplied(id),
        () => undefined,
      );
    }
  }
}

/** Unwraps a MULTI or pipeline reply, throwing the first command error (or a discarded transaction). */
function checked(results: Array<[Error | null, unknown]> | null): unknown[] {
  if (results === null) throw new Error("redis transaction discarded");
  return results.map(([error, value]) => {
    if (error !== null) throw error;
    return value;
  });
}

/** Closes a connection: QUIT when it is up (bounded), else a plain disconnect. */
export async function quitRedis(connection: Redis): Promise<void> {
  // QUIT on a connection that is not up would wait in the offline queue for a server that may never come.
  if (connection.status === "ready") {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), QUIT_TIMEOUT_MS);
    });
    try {
      if ((await Promise.race([connection.quit(), gaveUp])) !== "late") return;
    } catch {
      // Fall through: the server went away meanwhile.
    } finally {
      clearTimeout(timer);
    }
  }
  connection.disconnect();
}

export interface RedisStoreOptions {
  /** Connection errors (the client reconnects by itself); default: ignored. */
  onError?: (error: Error) => void;
  /** How long the factory waits for the first connection before returning anyway; default 5000. */
  connectTimeoutMs?: number;
  /** A command the server does not answer within this fails; default 2000. */
  commandTimeoutMs?: number;
}

/**
 * Connects the store. Calls fail at once while the server is down (no offline queue, one retry) so the
 * gateway's `store.on_error` applies promptly, and the client keeps reconnecting in the background.
 */
export async function createRedisStore(url: string, prefix: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
  const reconnect: RedisOptions = { retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000) };
  const redis = new Redis(url, {
    ...reconnect,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs ?? 2000,
  });
  const subscriber = new Redis(url, { ...reconnect, maxRetriesPerRequest: null, enableOfflineQueue: true });
  const onError = options.onError ?? (() => undefined);
  redis.on("error", onError);
  subscriber.on("error", onError);
  await whenReady(redis, options.connectTimeoutMs ?? 5000);
  return new RedisStore(redis, prefix, subscriber);
}

function whenReady(connection: Redis, timeoutMs: number): Promise<void> {
  if (connection.status === "ready") return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      connection.off("ready", done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    connection.once("ready", done);
  });
}
