import { isClosedToPassthrough } from "./governed-paths.js";
import { isIP } from "node:net";
import { resolve } from "node:path";
import { z } from "zod";
import { hashKey } from "../auth/keys.js";
import { MAX_APPROVAL_TIMEOUT_SECONDS } from "../policy/constraints.js";

const money = z.number().nonnegative();
const positiveInt = z.number().int().positive();
const nullable = <T extends z.ZodType>(schema: T) => schema.nullable().optional();

export const sessionLimitsSchema = z.strictObject({
  max_cost: nullable(money),
  max_tokens: nullable(positiveInt),
  max_seconds: nullable(positiveInt),
  max_llm_calls: nullable(positiveInt),
  max_tool_calls: nullable(z.number().int().nonnegative()),
});

const limitFields = {
  requests_per_minute: nullable(positiveInt),
  tokens_per_minute: nullable(positiveInt),
  max_parallel_requests: nullable(positiveInt),
  max_cost_per_call: nullable(money),
  daily_cost: nullable(money),
  monthly_cost: nullable(money),
  total_cost: nullable(money),
  cost_cap_mode: z.enum(["clamp", "reject"]).optional(),
  min_output_tokens: nullable(positiveInt),
};

export const limitsSchema = z.strictObject(limitFields);
export const keyLimitsSchema = z.strictObject({ ...limitFields, session: sessionLimitsSchema.optional() });

export const subjectSchema = z.strictObject({
  user: z.string().min(1),
  role: z.string().min(1).default("user"),
  team: z.string().min(1).nullable().default(null),
  purpose: z.string().nullable().default(null),
});

const isoDate = z.iso.datetime({ offset: true }).or(z.iso.date());

/** An IP address or CIDR (`10.0.0.0/8`, `::1`, `fd00::/8`), checked here: a bad one would fail on a request. */
const proxyAddress = z.string().refine(
  (text) => {
    const [address = "", prefix, extra] = text.split("/");
    const version = isIP(address);
    if (version === 0 || extra !== undefined) return false;
    if (prefix === undefined) return true;
    const bits = Number(prefix);
    return /^\d{1,3}$/.test(prefix) && bits <= (version === 4 ? 32 : 128);
  },
  { message: "must be an IP address or a CIDR such as 10.0.0.0/8" },
);

export const keyHashSchema = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, "must be `sha256:` followed by 64 lowercase hex digits");

export const keySchema = z.strictObject({
  id: z.string().min(1),
  key_hash: keyHashSchema,
  subject: subjectSchema,
  expires_at: isoDate.nullable().default(null),
  disabled: z.boolean().default(false),
  limits: keyLimitsSchema.default({}),
});

const upstreamSchema = z.strictObject({
  base_url: z.url({ protocol: /^https?$/ }),
  api_key: z.string().default(""),
  connect_timeout_seconds: z.number().positive().default(10),
  timeout_seconds: z.number().positive().default(600),
});

export const modelSchema = z.strictObject({
  upstream: z.string().min(1),
  kind: z.enum(["chat", "embedding"]).default("chat"),
  input_per_1m: nullable(money),
  output_per_1m: nullable(money),
  cached_input_per_1m: nullable(money),
  tokenizer: z.enum(["o200k_base", "cl100k_base"]).default("o200k_base"),
  max_output_tokens: positiveInt.default(16384),
  /**
   * The most tokens the model reads: a Responses call continuing stored context (`previous_response_id`,
   * `conversation`), whose size the gateway cannot see, is reserved this much input. Null: the input
   * the request itself carries (the settle still charges what the upstream reports).
   */
  context_window: positiveInt.nullable().default(null),
  output_limit_param: z.enum(["max_completion_tokens", "max_tokens"]).default("max_completion_tokens"),
  // null, like the fields around it, means "the same name".
  upstream_model: z
    .string()
    .min(1)
    .nullish()
    .transform((name) => name ?? undefined)
    .optional(),
});

const approverSchema = z.strictObject({
  name: z.string().min(1),
  role: z.string().min(1),
  token_hash: keyHashSchema,
});

const redisStoreSchema = z.strictObject({
  redis: z.strictObject({
    url: z
      .string()
      .regex(/^rediss?:\/\/\S+$/, "must be a redis:// or rediss:// URL")
      .default("redis://127.0.0.1:6379"),
    prefix: z.string().default("spark:"),
  }),
  on_error: z.enum(["fail_closed", "fail_open"]).default("fail_closed"),
});

const memoryStoreSchema = z.strictObject({
  memory: z
    .strictObject({ snapshot: z.string().min(1, "must be a file path (null keeps no snapshot)").nullable().default("./data/state.json") })
    .default({ snapshot: "./data/state.json" }),
  on_error: z.enum(["fail_closed", "fail_open"]).default("fail_closed"),
});

const storeSchema = z
  .union([z.literal("memory"), z.literal("redis"), memoryStoreSchema, redisStoreSchema])
  .default("memory")
  .transform((store) => {
    if (store === "memory") return memoryStoreSchema.parse({});
    if (store === "redis") return redisStoreSchema.parse({ redis: {} });
    return store;
  });

const fileSinkSchema = z.strictObject({
  file: z.strictObject({
    dir: z.string().min(1, "must be a directory path").default("./data/audit"),
    retention_days: positiveInt.nullable().default(90),
  }),
});
const redisStreamSinkSchema = z.strictObject({
  redis_stream: z.strictObject({
    key: z.string().default("spark:audit"),
    max_len: positiveInt.default(10_000_000),
    url: z.string().optional(),
  }),
});
const logSinkSchema = z.strictObject({ log: z.strictObject({}).default({}) });

/** The sections written in one of several forms, each named by its one key (`store`, each audit sink): the forms at `path`, or null. */
export function formsAt(path: readonly PropertyKey[]): Readonly<Record<string, z.ZodType>> | null {
  if (path.length === 1 && path[0] === "store") return { memory: memoryStoreSchema, redis: redisStoreSchema };
  if (path.length === 3 && path[0] === "audit" && path[1] === "sinks" && typeof path[2] === "number") {
    return { file: fileSinkSchema, redis_stream: redisStreamSinkSchema, log: logSinkSchema };
  }
  return null;
}

const bodiesSchema = z.enum(["none", "redacted", "full"]);

const auditSchema = z.strictObject({
  sinks: z
    .array(z.union([fileSinkSchema, redisStreamSinkSchema, logSinkSchema]))
    .min(1, "at least one sink: every request is recorded")
    .default([{ file: { dir: "./data/audit", retention_days: 90 } }]),
  bodies: bodiesSchema.default("none"),
  encryption_key: z.string().default(""),
  encryption_key_id: z.string().default("k1"),
  fsync: z.enum(["always", "interval", "never"]).default("interval"),
  fsync_interval_ms: positiveInt.default(1000),
  /**
   * The least time between two audit batches (0: none, the default). A record arriving sooner after
   * a batch waits for the rest of the period, so a busy gateway appends a few dozen records at a
   * time instead of one per call. Off by default: the timer cost the calls more latency at 200–500
   * calls/s (bench/README, third pass) than the appends it saved.
   */
  batch_linger_ms: z.number().int().min(0).max(1000).default(0),
  max_queue: positiveInt.default(100_000),
  on_full: z.enum(["reject", "drop"]).default("reject"),
});

/** Rules are shape-checked here; their conditions are validated when the policy is compiled. */
export const ruleSchema = z.strictObject({
  name: z.string().min(1),
  effect: z.enum(["ALLOW", "DENY", "REQUIRE_APPROVAL"]),
  conditions: z.record(z.string(), z.unknown()).default({}),
  actions: z.array(z.string()).optional(),
  constraints: z.record(z.string(), z.unknown()).default({}),
  description: z.string().default(""),
  enabled: z.boolean().default(true),
  mode: z.enum(["enforce", "dry_run"]).default("enforce"),
});

export const policiesSchema = z
  .strictObject({
    default_effect: z.enum(["ALLOW", "DENY"]).default("ALLOW"),
    rules: z.array(ruleSchema).default([]),
  })
  .default({ default_effect: "ALLOW", rules: [] });

const pathPattern = z.string().regex(/^\/v1\/[A-Za-z0-9_\-/.]*$/, "must start with /v1/");

const configShape = z
  .strictObject({
    org: z.string().default("acme"),
    server: z
      .strictObject({
        host: z.string().default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(8787),
        max_body_bytes: positiveInt.default(10_485_760),
        max_json_depth: positiveInt.default(64),
        header_timeout_seconds: z.number().positive().default(10),
        // Beyond the contract: the whole request (headers and body) must have arrived by then.
        body_timeout_seconds: z.number().positive().default(120),
        drain_seconds: z.number().nonnegative().default(30),
        trusted_proxies: z.array(proxyAddress).default([]),
        // An empty value (an unset `${REPLICA_ID:-}`) means the default name.
        replica_id: z
          .string()
          .nullable()
          .default(null)
          .transform((id) => (id === "" ? null : id)),
      })
      .default({
        host: "127.0.0.1",
        port: 8787,
        max_body_bytes: 10_485_760,
        max_json_depth: 64,
        header_timeout_seconds: 10,
        body_timeout_seconds: 120,
        drain_seconds: 30,
        trusted_proxies: [],
        replica_id: null,
      }),
    admin: z
      .strictObject({
        token: z.string().default(""),
        approvers: z.array(approverSchema).default([]),
        public_metrics: z.boolean().default(false),
      })
      .default({ token: "", approvers: [], public_metrics: false }),
    store: storeSchema,
    upstreams: z.record(z.string(), upstreamSchema),
    passthrough: z
      .strictObject({ upstream: z.string().optional(), paths: z.array(pathPattern).default([]) })
      .default({ paths: [] }),
    models: z.record(z.string(), modelSchema),
    keys: z.array(keySchema).default([]),
    limits: limitsSchema.default({}),
    teams: z.record(z.string(), z.strictObject({ limits: limitsSchema.default({}) })).default({}),
    users: z.record(z.string(), z.strictObject({ limits: limitsSchema.default({}) })).default({}),
    sessions: z
      .strictObject({
        // Node lower-cases the names of the headers it receives.
        header: z
          .string()
          .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be an HTTP header name (letters, digits and !#$%&'*+.^_`|~-)")
          .default("x-session-id")
          .transform((name) => name.toLowerCase()),
        ttl_seconds: positiveInt.default(86_400),
        limits: sessionLimitsSchema.default({}),
      })
      .default({ header: "x-session-id", ttl_seconds: 86_400, limits: {} }),
    approvals: z
      .strictObject({
        notify_url: z.url({ protocol: /^https?$/ }).nullable().default(null),
        notify_secret: z.string().default(""),
        default_timeout_seconds: positiveInt.max(MAX_APPROVAL_TIMEOUT_SECONDS, "at most 315360000 (ten years)").default(3600),
      })
      .default({ notify_url: null, notify_secret: "", default_timeout_seconds: 3600 }),
    pii: z
      .strictObject({
        redact: z.boolean().default(false),
        detectors: z
          .array(z.enum(["email", "phone", "credit_card", "iban", "us_ssn", "secret", "ip"]))
          .default(["email", "phone", "credit_card", "iban", "us_ssn", "secret", "ip"]),
      })
      .default({ redact: false, detectors: ["email", "phone", "credit_card", "iban", "us_ssn", "secret", "ip"] }),
    policies: policiesSchema,
    audit: auditSchema.default({
      sinks: [{ file: { dir: "./data/audit", retention_days: 90 } }],
      bodies: "none",
      encryption_key: "",
      encryption_key_id: "k1",
      fsync: "interval",
      fsync_interval_ms: 1000,
      batch_linger_ms: 0,
      max_queue: 100_000,
      on_full: "reject",
    }),
  });

type ConfigSections = z.output<typeof configShape>;
/** The sections that parsed; a broken key entry is null, so the others keep their index; of models, their upstreams. */
type CheckedSections = Omit<Partial<ConfigSections>, "keys" | "models"> & {
  keys?: { id?: unknown; key_hash?: unknown }[];
  models?: Record<string, { upstream: string }>;
};
type Report = (path: PropertyKey[], message: string) => void;

export const configSchema = configShape.superRefine((config, ctx) =>
  crossCheck(config, (path, message) => ctx.addIssue({ code: "custom", path, message })),
);

/**
 * The cross-section checks of a config whose whole parse failed, on the sections that parse alone:
 * one run of `check` reports an unknown upstream next to a bad price.
 */
export function crossCheckSections(raw: Readonly<Record<string, unknown>>, report: Report): void {
  const sections: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(configShape.shape)) {
    const parsed = schema.safeParse(raw[name]);
    if (parsed.success) sections[name] = parsed.data;
  }
  // The entries of a broken section still take part with what they have (indexes and names kept).
  const models = raw.models;
  if (sections.models === undefined && models !== null && typeof models === "object" && !Array.isArray(models)) {
    const named = Object.entries(models).map(([name, model]) => [name, (model as { upstream?: unknown } | null)?.upstream] as const);
    sections.models = Object.fromEntries(named.filter(([, upstream]) => typeof upstream === "string").map(([name, upstream]) => [name, { upstream }]));
  }
  if (sections.keys === undefined && Array.isArray(raw.keys)) {
    sections.keys = raw.keys.map((key) => (key !== null && typeof key === "object" ? (key as { id?: unknown; key_hash?: unknown }) : {}));
  }
  crossCheck(sections as CheckedSections, report);
}

/** What no single section can check: references between sections, duplicates, clashing secrets. */
function crossCheck(config: CheckedSections, report: Report): void {
  const { models, upstreams, passthrough, keys, admin, policies, audit, server } = config;
  if (server !== undefined && server.header_timeout_seconds > server.body_timeout_seconds) {
    // Node refuses to listen so: the headers are part of the request the body timeout bounds.
    report(["server", "header_timeout_seconds"], `must not exceed server.body_timeout_seconds (${server.body_timeout_seconds}): the whole request, headers included, must arrive by then`);
  }
  if (models !== undefined && upstreams !== undefined) {
    for (const [name, model] of Object.entries(models)) {
      if (!(model.upstream in upstreams)) report(["models", name, "upstream"], `unknown upstream \`${model.upstream}\``);
    }
  }
  passthrough?.paths?.forEach((path, index) => {
    if (isClosedToPassthrough(path)) {
      report(["passthrough", "paths", index], `\`${path}\` is governed by the gateway (or holds its stored answers) and cannot be passed through`);
    }
  });
  const passthroughUpstream = passthrough?.upstream;
  if (passthroughUpstream !== undefined && upstreams !== undefined && !(passthroughUpstream in upstreams)) {
    report(["passthrough", "upstream"], `unknown upstream \`${passthroughUpstream}\``);
  }
  const seenKeys = new Set<string>();
  const seenHashes = new Map<string, string>();
  (keys ?? []).forEach((key, index) => {
    const id = typeof key.id === "string" ? key.id : null;
    if (id !== null && seenKeys.has(id)) report(["keys", index, "id"], `duplicate key id \`${id}\``);
    if (id !== null) seenKeys.add(id);
    if (typeof key.key_hash !== "string") return;
    // One clear key would authenticate as whichever entry came first.
    const other = seenHashes.get(key.key_hash);
    if (other !== undefined) report(["keys", index, "key_hash"], `the same key_hash as key \`${other}\``);
    else seenHashes.set(key.key_hash, id ?? `#${index}`);
  });
  if (admin !== undefined) checkCredentials(admin, seenHashes, report);
  const seenRules = new Set<string>();
  (policies?.rules ?? []).forEach((rule, index) => {
    if (seenRules.has(rule.name)) report(["policies", "rules", index, "name"], `duplicate rule name \`${rule.name}\``);
    seenRules.add(rule.name);
  });
  if (audit !== undefined) {
    const dirs = new Map<string, number>();
    audit.sinks.forEach((sink, index) => {
      if (!("file" in sink)) return;
      const dir = resolve(sink.file.dir);
      const first = dirs.get(dir);
      // Two writers of one replica's files would interleave a single chain and break it.
      if (first !== undefined) report(["audit", "sinks", index, "file", "dir"], `the same directory as audit.sinks[${first}]: one file sink a directory`);
      else dirs.set(dir, index);
    });
    if (audit.encryption_key !== "" && Buffer.from(audit.encryption_key, "base64").length !== 32) {
      report(["audit", "encryption_key"], "must be base64 of exactly 32 bytes");
    }
    if (audit.bodies === "full" && audit.encryption_key === "") report(["audit", "encryption_key"], "required when audit.bodies is `full`");
    if (audit.encryption_key === "") {
      // A rule raising capture to `full` would otherwise capture it redacted, in the clear, without a word.
      (policies?.rules ?? []).forEach((rule, index) => {
        if ((rule.constraints as { audit_bodies?: unknown } | undefined)?.audit_bodies === "full") {
          report(["policies", "rules", index, "constraints", "audit_bodies"], "`full` needs audit.encryption_key (full bodies are stored encrypted)");
        }
      });
    }
  }
}

/**
 * One secret, one identity: a virtual key is never an admin credential, and two approvers with the
 * same token would act as whichever came first.
 */
function checkCredentials(
  admin: { token: string; approvers: { name: string; token_hash: string }[] },
  keyHashes: ReadonlyMap<string, string>,
  report: Report,
): void {
  const adminHash = admin.token === "" ? null : hashKey(admin.token);
  if (adminHash !== null && keyHashes.has(adminHash)) {
    report(["admin", "token"], `is also the virtual key \`${keyHashes.get(adminHash)}\``);
  }
  const names = new Set<string>();
  const hashes = new Map<string, string>();
  admin.approvers.forEach((approver, index) => {
    if (names.has(approver.name)) report(["admin", "approvers", index, "name"], `duplicate approver name \`${approver.name}\``);
    names.add(approver.name);
    const clash = hashes.get(approver.token_hash) ?? (keyHashes.has(approver.token_hash) ? `virtual key \`${keyHashes.get(approver.token_hash)}\`` : null) ?? (approver.token_hash === adminHash ? "admin token" : null);
    if (clash !== null) report(["admin", "approvers", index, "token_hash"], `the same token as ${clash}`);
    else hashes.set(approver.token_hash, `approver \`${approver.name}\``);
  });
}

export type Config = z.infer<typeof configSchema>;
export type RawConfig = z.input<typeof configSchema>;
export type Limits = z.infer<typeof limitsSchema>;
export type KeyLimits = z.infer<typeof keyLimitsSchema>;
export type SessionLimits = z.infer<typeof sessionLimitsSchema>;
export type KeyConfig = z.infer<typeof keySchema>;
export type Subject = z.infer<typeof subjectSchema>;
export type ModelConfig = z.infer<typeof modelSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type RuleConfig = z.infer<typeof ruleSchema>;
export type AuditConfig = z.infer<typeof auditSchema>;
export type AuditBodies = z.infer<typeof bodiesSchema>;
