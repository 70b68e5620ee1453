import { configWarnings } from "./config/warnings.js";
import { GOVERNED_PATHS } from "./config/governed-paths.js";
import { watch, type FSWatcher } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { basename, dirname } from "node:path";
import { ensureDir } from "./util/ensure-dir.js";
import { setTimeout as sleep } from "node:timers/promises";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import type { AdminDeps } from "./admin/routes.js";
import { createNotifier } from "./approvals/notify.js";
import { ApprovalService } from "./approvals/service.js";
import { type Audit, createAudit } from "./audit/create.js";
import { ConfigError, formatIssues, readConfigFile } from "./config/load.js";
import type { Config } from "./config/schema.js";
import { createApp, failInFlight, recordMalformed, requestListener } from "./http/app.js";
import { GatewayError } from "./http/errors.js";
import { createMetrics } from "./http/metrics.js";
import { installClientErrorHandler } from "./http/client-error.js";
import { createLogger, type Logger } from "./log/logger.js";
import { storeTrouble } from "./log/throttle.js";
import { LEASE_RENEW_MS, LeaseKeeper } from "./limits/leases.js";
import { ActiveStreams } from "./pipeline/active-streams.js";
import { type AuditDraft, buildRecord } from "./pipeline/audit-draft.js";
import { buildRuntime, restartOnlyChanges, type Runtime, SharedState } from "./pipeline/runtime.js";
import type { Services } from "./pipeline/services.js";
import { MemoryStore } from "./state/memory.js";
import { createRedisStore, quitRedis } from "./state/redis.js";
import type { StateStore } from "./state/store.js";
import { type Clock, systemClock } from "./util/ids.js";

export interface GatewayOptions {
  configPath: string;
  env: NodeJS.ProcessEnv;
  /** Overrides `server.port` (the `PORT` variable). */
  port?: number;
  clock?: Clock;
  logger?: Logger;
  /** Watch the config file and reload on change (SIGHUP always reloads). */
  watchConfig?: boolean;
}

export interface Gateway {
  url: string;
  port: number;
  services: Services;
  audit: Audit;
  /** Re-reads the config; a bad new config is rejected and the old one stays. */
  reload(): boolean;
  /** Drains: /readyz turns 503, no new connections, in-flight calls finish (bounded), audit flushed. */
  shutdown(): Promise<void>;
}

async function createStore(config: Config, clock: Clock, log: Logger): Promise<StateStore> {
  const store = config.store;
  // The connection's own errors (a refused connection, a wrong password) are logged, throttled: the
  // failed commands alone would only say the stream was not writeable.
  if ("redis" in store) return createRedisStore(store.redis.url, store.redis.prefix, { onError: (error) => storeTrouble(log, "state store connection", error) });
  const snapshot = store.memory.snapshot;
  // Made before the store claims the snapshot with a lock file beside it.
  if (snapshot !== null) await ensureDir(dirname(snapshot));
  const memory = new MemoryStore(snapshot, clock(), (error) => log.error({ err: error, snapshot }, "the state snapshot could not be written; retrying"));
  if (snapshot !== null) {
    // A path it cannot write refuses the start, rather than every admin write and the shutdown later.
    await memory.saveNow().catch((error: unknown) => {
      throw new Error(`cannot write the state snapshot \`${snapshot}\`: ${(error as Error).message}`);
    });
  }
  return memory;
}

const REFRESH_MS = 1000;
/** An audit stream command (a batch's XADD, a read's page) the server does not answer within this fails. */
const AUDIT_COMMAND_TIMEOUT_MS = 3000;

/** Logs what the config says that is valid but most likely not meant. */
function warnAbout(log: Logger, config: Config): void {
  const warnings = configWarnings(config);
  if (warnings.length > 0) log.warn({ warnings: warnings.map((issue) => issue.path) }, `the config has parts that never act:\n${formatIssues(warnings)}`);
}

/** A bounded metrics label: a hostile client's paths must not create a series each. */
function routeLabel(path: string, action: string | null): string {
  if (GOVERNED_PATHS.has(path)) return path;
  if (path.startsWith("/v1/models/")) return "/v1/models/{id}";
  if (path.startsWith("/admin")) return "admin";
  return action === "passthrough" ? "passthrough" : "other";
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const clock = options.clock ?? systemClock;
  const log = options.logger ?? createLogger(options.env.LOG_LEVEL ?? "info");
  const initial = readConfigFile(options.configPath, options.env);
  const port = options.port ?? initial.server.port;
  let runtime: Runtime = buildRuntime(initial, port, null);
  const store = await createStore(initial, clock, log);
  const shared = new SharedState(initial, clock());
  const streams = new ActiveStreams();
  const metrics = createMetrics(async () => {
    const now = clock();
    return (await store.listApprovals("pending")).filter((approval) => Date.parse(approval.expires_at) > now).length;
  });
  const redisConnections: Redis[] = [];
  const audit = await createAudit(initial.audit, {
    replica: runtime.replica,
    logger: log,
    redisFor: (url) => {
      const fallback = "redis" in initial.store ? initial.store.redis.url : "redis://127.0.0.1:6379";
      // A server that hangs fails commands rather than hold the writer's batch and every audit read forever.
      const redis = new Redis(url ?? fallback, { maxRetriesPerRequest: 3, commandTimeout: AUDIT_COMMAND_TIMEOUT_MS });
      // The writer retries failed batches; the connection's own errors are only worth a throttled line.
      redis.on("error", (error: Error) => storeTrouble(log, "audit stream connection", error));
      redisConnections.push(redis);
      return redis;
    },
    now: clock,
  });
  const notifier = createNotifier(() => ({ url: runtime.config.approvals.notify_url, secret: runtime.config.approvals.notify_secret }), log);
  const approvals = new ApprovalService(store, clock, () => runtime.config.approvals.default_timeout_seconds, notifier);

  // The config is read after the store answers: a reload during the read must not bring the old keys back.
  const refreshKeys = async (): Promise<void> => {
    const runtimeKeys = await store.listKeys();
    const now = clock();
    shared.setKeys(runtime.config, runtimeKeys, now);
    streams.endUnserved((keyId) => shared.keys.serves(keyId, now));
  };
  const refreshStops = async (): Promise<void> => {
    shared.setStops(await store.listStops());
    streams.halt(shared.listStops());
  };
  // A store that is down at startup does not keep the replica down: config keys serve, /readyz
  // answers 503, and the poll below reads runtime keys and stops as soon as the store answers.
  await Promise.all([refreshKeys(), refreshStops()]).catch((error: unknown) => storeTrouble(log, "startup read of keys and stops", error));
  const shadowed = shared.shadowed(runtime.config);
  if (shadowed.length > 0) log.warn({ keys: shadowed.map((issue) => issue.path) }, `config keys clash with runtime keys: ${formatIssues(shadowed)}`);
  warnAbout(log, runtime.config);
  store.onChange((change) => {
    const refresh = change === "keys" ? refreshKeys : refreshStops;
    // A refresh that failed is not reported applied: the replica that wrote the change stops waiting on it at its deadline.
    return refresh().catch((error: unknown) => {
      log.warn({ err: error }, "state refresh failed");
      throw error;
    });
  });
  // Changes are pushed, but a missed message (store restart) is caught by this poll within a second.
  const poll = setInterval(() => {
    Promise.all([refreshKeys(), refreshStops()]).catch(() => undefined);
    const stats = audit.writer.stats();
    metrics.setGauges({ auditDepth: stats.depth, auditDropped: stats.dropped, openStreams: streams.size });
  }, REFRESH_MS);
  poll.unref();
  const leases = new LeaseKeeper();
  // A call's parallel slots are leased for a minute at a time, renewed here while it runs.
  const renewal = setInterval(() => {
    leases.renew(store, clock()).catch((error: unknown) => storeTrouble(log, "lease renewal", error));
  }, LEASE_RENEW_MS);
  renewal.unref();

  // Requests whose audit record is not yet written: a drain waits for them before closing the audit.
  const unfinished = new Set<AuditDraft>();
  // Store work that follows answers already recorded (settles, approvals given back): a drain waits for it too.
  const storeWork = new Set<Promise<void>>();
  const services: Services = {
    current: () => runtime,
    shared,
    store,
    audit: audit.writer,
    approvals,
    streams,
    leases,
    metrics,
    clock,
    log,
    begin(draft) {
      unfinished.add(draft);
    },
    finish(draft, status, error) {
      if (draft.finished) return;
      draft.finished = true;
      unfinished.delete(draft);
      const now = clock();
      const record = buildRecord(draft, status, error, now);
      audit.writer.enqueue(record);
      const effect = record.decision?.effect ?? "none";
      const upstreamSeconds = record.upstream_ms === null ? null : record.upstream_ms / 1000;
      metrics.request(routeLabel(draft.path, draft.action), status, effect, record.decision?.rule ?? "", record.latency_ms / 1000, upstreamSeconds);
      // Tokens and cost the upstream was sent or billed: a refusal's estimate is in its record, not here.
      if (record.model !== null && record.upstream_ms !== null) metrics.usage(record.model, record.team ?? "", record.input_tokens, record.output_tokens, record.cost);
      // One child logger per request, made only when its line will be written: never the body, only ids.
      if (log.isLevelEnabled("debug")) {
        log.child({ request_id: record.id, key_id: record.key_id }).debug({ status, error_code: record.error_code, latency_ms: record.latency_ms }, "request finished");
      }
    },
    afterAnswer(work) {
      const tracked = work.finally(() => storeWork.delete(tracked));
      storeWork.add(tracked);
      return tracked;
    },
    failOpen: () => runtime.config.store.on_error === "fail_open",
  };

  let draining = false;
  const adminDeps: AdminDeps = {
    services,
    audit,
    onKeysChanged: refreshKeys,
    onStopsChanged: refreshStops,
  };
  const appState = { draining: () => draining };
  const app = createApp(services, appState, adminDeps);
  const listener = requestListener(services, app, appState);
  let inFlight = 0;
  const settled = (): void => {
    inFlight--;
  };
  const config = runtime.config;
  let noteRequest: (outgoing: ServerResponse) => void = () => undefined;
  function handle(incoming: IncomingMessage, outgoing: ServerResponse): void {
    inFlight++;
    noteRequest(outgoing);
    // `on`, not `once`: a response closes once, and a shared listener costs no wrapper per request.
    outgoing.on("close", settled);
    listener(incoming, outgoing);
  }
  const server = createServer(
    {
      maxHeaderSize: 16 * 1024,
      headersTimeout: Math.round(config.server.header_timeout_seconds * 1000),
      // Node only checks the header timeout this often (default 30 s): keep it near the timeout so a slow client is cut in time.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.round(config.server.header_timeout_seconds * 500))),
      // A body still arriving after this is cut (a slowloris on the body); calls already received may take their time.
      requestTimeout: Math.round(config.server.body_timeout_seconds * 1000),
      keepAliveTimeout: 5000,
      // Nothing is routed by Host (the upstream URL comes from the config alone): a request without
      // one is answered, and audited, like any other rather than with Node's bare 400.
      requireHostHeader: false,
    },
    handle,
  );
  // An `Expect` other than 100-continue would get Node's bare 417: served as if it were absent.
  server.on("checkExpectation", handle);
  server.listen(port, config.server.host);
  noteRequest = installClientErrorHandler(server, { record: recordMalformed(services), failInFlight: failInFlight(services) });
  await new Promise<void>((resolve, reject) => {
    if (server.listening) resolve();
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  const startedWith = runtime.config;
  const reload = (): boolean => {
    try {
      const next = readConfigFile(options.configPath, options.env);
      // A config key taking a runtime key's id or secret is refused, unless the running config already had it.
      const shadowing = shared.shadowed(next, runtime.config);
      if (shadowing.length > 0) throw new ConfigError(options.configPath, shadowing);
      // Against the config the process started with: what it runs on until it restarts.
      const waiting = restartOnlyChanges(startedWith, next);
      runtime = buildRuntime(next, port, runtime);
      shared.setConfig(next, clock());
      void refreshKeys();
      log.info({ rules: next.policies.rules.length, models: Object.keys(next.models).length }, "config reloaded");
      warnAbout(log, next);
      if (waiting.length > 0) log.warn({ settings: waiting }, `config reloaded, but these settings take effect only at restart: ${waiting.join(", ")}`);
      return true;
    } catch (error) {
      log.error({ err: error }, "config reload rejected; the previous config stays in force");
      return false;
    }
  };
  let watcher: FSWatcher | null = null;
  if (options.watchConfig === true) {
    let timer: NodeJS.Timeout | null = null;
    // The directory, not the file: an editor, `mv` or a Kubernetes ConfigMap (a `..data` symlink
    // swap) replaces the file, and a watch on the file would follow the old one.
    const name = basename(options.configPath);
    watcher = watch(dirname(options.configPath), (_event, changed) => {
      if (changed !== null && changed !== name && !changed.startsWith("..data")) return;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(reload, 200);
    });
  }

  const shutdown = async (): Promise<void> => {
    if (draining) return;
    draining = true;
    approvals.releaseWaits();
    watcher?.close();
    clearInterval(poll);
    // Still listening while calls are in flight: load balancers read /readyz's 503 and new requests
    // get a 503 `shutting_down` with `connection: close`, rather than a refused connection.
    const deadline = Date.now() + runtime.config.server.drain_seconds * 1000;
    while (inFlight > 0 && Date.now() < deadline) await sleep(25);
    clearInterval(renewal);
    // Past the deadline each open call ends with `shutting_down` (a stream with an SSE error event),
    // so its client sees an error rather than a short answer, and its record is written.
    if (streams.endAll(cutAtDeadline()) > 0) await whileOpen(unfinished, CUT_GRACE_MS);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    // Calls cut with their connection (passthrough) write their records as they unwind.
    await whileOpen(unfinished, CUT_GRACE_MS);
    await whileOpen(storeWork, CUT_GRACE_MS);
    // A sink or store that is down does not hold the exit: a few seconds, then what is left is logged as lost.
    await audit.close(SHUTDOWN_FLUSH_MS);
    await store.close();
    await Promise.all(redisConnections.map((r) => quitRedis(r)));
  };

  return { url: `http://${host}:${address.port}`, port: address.port, services, audit, reload, shutdown };
}

/** How long a drain waits for the records of the calls it cut. */
const CUT_GRACE_MS = 2000;

function cutAtDeadline(): GatewayError {
  return new GatewayError(503, "shutting_down", "the gateway shut down before the call ended (server.drain_seconds passed); retry it", {
    // The process is about to exit: the client must not keep the connection for its retry.
    headers: { "retry-after": "1", connection: "close" },
  });
}

async function whileOpen(open: ReadonlySet<unknown>, limitMs: number): Promise<void> {
  const until = Date.now() + limitMs;
  while (open.size > 0 && Date.now() < until) await sleep(10);
}

const SHUTDOWN_FLUSH_MS = 5_000;

export { GatewayError };
