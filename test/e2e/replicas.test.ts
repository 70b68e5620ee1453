import { Redis } from "ioredis";
import { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileModelPrices, worstCaseMicros } from "../../src/pricing/index.js";
import { createRedisStore } from "../../src/state/redis.js";
import { countChatInput } from "../../src/tokens/index.js";
import { type RedisHandle, startRedis } from "../helpers/index.js";
import { chat, type Cluster, eventually, keyEntry, MODELS, micros, outcomeOf, type Replica, startCluster } from "./replicas/cluster.js";

/**
 * Two gateway processes (replica ids `a` and `b`) sharing one real redis-server: limits, budgets,
 * runtime keys, emergency stops, approvals and the audit stream are one state, whichever replica
 * a call lands on (CONTRACT.md §1 state, §2 store and limits, §4 approvals, §5 admin API).
 */

const K = {
  budget: "sk-rep-budget",
  rpm: "sk-rep-rpm",
  stop: "sk-rep-stop",
  approval: "sk-rep-approval",
  audit: "sk-rep-audit",
} as const;

// gpt-4o: 2.5 micro-USD per input token, 10 per output token. The mock answers `tokens:N` with N
// words (completion_tokens = N) and counts ceil(chars / 4) prompt tokens, never more than the
// gateway's own count, so each admitted call costs a little less than its reserved worst case.
const BUDGET_USD = 1.0;
const BUDGET_OUTPUT = 2500;
const BUDGET_BODY = {
  model: "gpt-4o",
  messages: [{ role: "user" as const, content: `tokens:${BUDGET_OUTPUT}` }],
  max_completion_tokens: BUDGET_OUTPUT,
};
const GPT4O = compileModelPrices({
  upstream: "openai",
  kind: "chat",
  tokenizer: "o200k_base",
  max_output_tokens: 16384,
  output_limit_param: "max_completion_tokens",
  input_per_1m: 2.5,
  output_per_1m: 10,
} as Parameters<typeof compileModelPrices>[0]);
const BUDGET_WORST = worstCaseMicros(countChatInput(BUDGET_BODY, "o200k_base"), BUDGET_OUTPUT, GPT4O);

const APPROVAL_RULES = `
policies:
  default_effect: ALLOW
  rules:
    - name: production_tools_need_approval
      effect: REQUIRE_APPROVAL
      actions: [tool.call]
      conditions:
        tool: { in: [deploy] }
        tool_args.environment: { matches: "^prod" }
      constraints: { approver_role: admin, approval_timeout_seconds: 600 }
      description: Production operations require admin approval
`;

const redis: RedisHandle | null = await startRedis();
let cluster: Cluster;

beforeAll(async () => {
  if (redis === null) return;
  cluster = await startCluster(
    redis,
    `${MODELS}
keys:
${keyEntry("budget", K.budget, "{ user: u-budget, role: developer, team: t-budget }", `{ daily_cost: ${BUDGET_USD}, cost_cap_mode: reject }`)}
${keyEntry("rpm", K.rpm, "{ user: u-rpm, role: developer, team: t-rpm }", "{ requests_per_minute: 30 }")}
${keyEntry("stop", K.stop, "{ user: u-stop, role: developer, team: t-stop }", "{ daily_cost: 5 }")}
${keyEntry("approval", K.approval, "{ user: u-approval, role: developer, team: t-approval }", "{ daily_cost: 5 }")}
${keyEntry("audit", K.audit, "{ user: u-audit, role: developer, team: t-audit }", "{ daily_cost: 5 }")}
${APPROVAL_RULES}`,
  );
}, 60_000);

afterAll(async () => {
  await cluster?.close();
  await redis?.stop();
});

/** Both replicas are still running: a crash would hide behind passing assertions otherwise. */
function expectAlive(): void {
  for (const replica of cluster.replicas) expect(replica.proc.exited, `replica ${replica.id} exited:\n${replica.proc.output()}`).toBe(false);
}

const smallCall = (content = "say:ok") => ({ model: "gpt-4o-mini", messages: [{ role: "user" as const, content }] });


describe.skipIf(redis === null)("two replicas, one Redis", () => {
  it("200 concurrent calls across both replicas never spend more than the shared daily budget", async () => {
    const clients = [cluster.a.client(K.budget), cluster.b.client(K.budget)];
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => chat(clients[i % 2]!, BUDGET_BODY)));

    const admitted = outcomes.filter((o) => o.status === 200);
    const refused = outcomes.filter((o) => o.status !== 200);
    for (const o of refused) {
      expect({ status: o.status, code: o.code }).toEqual({ status: 429, code: "budget_exceeded" });
      expect(o.headers?.get("x-should-retry")).toBe("false");
    }
    // Never more than fits; and at least as many as fit at the worst case (a refusal means the
    // worst case did not fit what was spent and reserved then).
    const costs = admitted.map((o) => micros(Number(o.headers?.get("x-gateway-cost"))));
    const charged = costs.reduce((sum, c) => sum + c, 0);
    expect(charged).toBeLessThanOrEqual(micros(BUDGET_USD));
    expect(admitted.length).toBeGreaterThanOrEqual(Math.floor(micros(BUDGET_USD) / BUDGET_WORST));
    expect(refused.length).toBeGreaterThan(0);

    // One budget for both: after the burst, neither replica admits another call of the key.
    for (const replica of cluster.replicas) {
      expect(await chat(replica.client(K.budget), BUDGET_BODY)).toMatchObject({ status: 429, code: "budget_exceeded" });
    }

    // The audit (shared stream: every replica's records) agrees, read from either replica.
    // Spend counts the calls that reached the upstream: the admitted ones.
    const spend = await eventually("every admitted call in the spend", async () => {
      const { status, body } = await cluster.b.admin("GET", "/admin/spend?group_by=key");
      expect(status).toBe(200);
      const row = body.data?.find((r) => r.group === "budget");
      return row !== undefined && row.requests === admitted.length ? row : undefined;
    });
    expect(micros(spend.cost as number)).toBe(charged);
    expect(micros(spend.cost as number)).toBeLessThanOrEqual(micros(BUDGET_USD));
    const records = await eventually("all 202 calls in the audit", async () => {
      const all = await auditRecords(cluster.a, "budget");
      return all.length === 202 ? all : undefined;
    });
    expect(new Set(records.map((r) => r.replica))).toEqual(new Set(["a", "b"]));
    const audited = records.reduce((sum, r) => sum + micros(r.cost as number), 0);
    expect(audited).toBe(charged);
    for (const r of records.filter((r) => r.status !== 200)) expect(r.error_code).toBe("budget_exceeded");

    // And the store itself: settled spend, no reservation left behind.
    const store = await createRedisStore(cluster.redis.url, "spark:");
    try {
      const usage = await store.usage("key:budget", Date.now());
      expect(usage.dailyMicros).toBe(charged);
    } finally {
      await store.close();
    }
    expectAlive();
  }, 120_000);

  it("requests_per_minute: 30 is one bucket across replicas: exactly 30 of 60 concurrent calls pass", async () => {
    const clients = [cluster.a.client(K.rpm), cluster.b.client(K.rpm)];
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => chat(clients[i % 2]!, smallCall())));
    const admitted = outcomes.filter((o) => o.status === 200);
    const refused = outcomes.filter((o) => o.status !== 200);
    expect(admitted).toHaveLength(30);
    for (const o of refused) {
      expect({ status: o.status, code: o.code }).toEqual({ status: 429, code: "rate_limit_exceeded" });
      expect(Number(o.headers?.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(o.headers?.get("x-ratelimit-limit-requests")).toBe("30");
    }
    expectAlive();
  }, 60_000);

  it("a runtime key created on a works on b; revoked on b it is refused on a at once", async () => {
    const created = await cluster.a.admin("POST", "/admin/keys", {
      id: "rt-replicas",
      subject: { user: "u-runtime", role: "developer", team: "t-runtime" },
      limits: { daily_cost: 1 },
    });
    expect(created.status, created.text).toBe(201);
    const clear = created.body.key as string;
    expect(clear).toMatch(/\S{20,}/);

    // a knows it at once (it stored it); b within about a second (pushed, else polled).
    expect((await chat(cluster.a.client(clear), smallCall())).status).toBe(200);
    await eventually(
      "the new key accepted on b",
      async () => ((await chat(cluster.b.client(clear), smallCall())).status === 200 ? true : undefined),
      5_000,
    );
    const listed = await cluster.b.admin("GET", "/admin/keys/rt-replicas");
    expect(listed.status).toBe(200);
    expect(listed.body).toMatchObject({ id: "rt-replicas", source: "runtime", revoked: false });
    expect(JSON.stringify(listed.body)).not.toContain(clear);

    const revoked = await cluster.b.admin("POST", "/admin/keys/rt-replicas/revoke");
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body).toMatchObject({ id: "rt-replicas", revoked: true });
    // The revoke answered once both replicas had applied it: refused at once on each.
    expect(await chat(cluster.a.client(clear), smallCall())).toMatchObject({ status: 401, code: "invalid_api_key" });
    expect(await chat(cluster.b.client(clear), smallCall())).toMatchObject({ status: 401, code: "invalid_api_key" });
    // And it stays refused on both.
    expect(await chat(cluster.a.client(clear), smallCall())).toMatchObject({ status: 401, code: "invalid_api_key" });
    expect(await chat(cluster.b.client(clear), smallCall())).toMatchObject({ status: 401, code: "invalid_api_key" });
    expectAlive();
  }, 60_000);

  it("admin writes to one key at once on both replicas: none is lost, a revoke always holds, an id is created once", async () => {
    const subject = { user: "u-race", role: "developer", team: "t-race" };
    for (let round = 0; round < 8; round++) {
      const id = `race-${round}`;
      const [first, second] = await Promise.all([
        cluster.a.admin("POST", "/admin/keys", { id, subject }),
        cluster.b.admin("POST", "/admin/keys", { id, subject: { ...subject, role: "admin" } }),
      ]);
      // Exactly one create lands, and the stored key is that one's.
      expect([first.status, second.status].sort()).toEqual([201, 409]);
      const winner = first.status === 201 ? first : second;
      expect((await cluster.a.admin("GET", `/admin/keys/${id}`)).body.subject).toEqual(winner.body.subject);

      // A revoke and a PATCH at once: the revoke answered 200, so the key ends revoked, whatever the order.
      const [revoke, patch] = await Promise.all([
        cluster.a.admin("POST", `/admin/keys/${id}/revoke`),
        cluster.b.admin("PATCH", `/admin/keys/${id}`, { limits: { daily_cost: 5 } }),
      ]);
      expect(revoke.status, revoke.text).toBe(200);
      expect([200, 409]).toContain(patch.status);
      expect((await cluster.b.admin("GET", `/admin/keys/${id}`)).body).toMatchObject({ revoked: true });
      expect(await chat(cluster.a.client(winner.body.key as string), smallCall())).toMatchObject({ status: 401 });
    }
    // Two PATCHes at once: both changes are kept.
    await cluster.a.admin("POST", "/admin/keys", { id: "race-patch", subject });
    const [disable, limit] = await Promise.all([
      cluster.a.admin("PATCH", "/admin/keys/race-patch", { disabled: true }),
      cluster.b.admin("PATCH", "/admin/keys/race-patch", { limits: { daily_cost: 1 } }),
    ]);
    expect([disable.status, limit.status]).toEqual([200, 200]);
    expect((await cluster.a.admin("GET", "/admin/keys/race-patch")).body).toMatchObject({ disabled: true, limits: { daily_cost: 1 } });
    expectAlive();
  }, 60_000);

  it("an emergency stop on a halts the key on b, ends its open stream on b, and lifts", async () => {
    const onB = cluster.b.client(K.stop);
    expect((await chat(onB, smallCall())).status).toBe(200);

    // A long stream on b (200 chunks, 100 ms apart), read until the stop ends it.
    const stream = await onB.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      messages: [{ role: "user", content: "tokens:200 chunks:200 delay:100" }],
    });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    const rest = (async (): Promise<{ chunks: number; error: unknown }> => {
      let chunks = 0;
      try {
        for (;;) {
          const next = await iterator.next();
          if (next.done === true) return { chunks, error: null };
          chunks++;
        }
      } catch (error) {
        return { chunks, error };
      }
    })();

    const stopped = await cluster.a.admin("POST", "/admin/stop", { key_id: "stop", reason: "runaway agent" });
    expect(stopped.status, stopped.text).toBe(201);

    const ended = await rest;
    expect(ended.error, `the stream ended without an error after ${ended.chunks} chunks`).toBeInstanceOf(APIError);
    const streamError = ended.error as APIError;
    expect(streamError.code).toBe("emergency_stop");
    expect(streamError.message).toContain("runaway agent");
    expect(ended.chunks).toBeLessThan(199);

    // b refuses new calls of the key (it ended the stream because it knows of the stop).
    const refused = await chat(onB, smallCall());
    expect(refused).toMatchObject({ status: 403, code: "emergency_stop" });
    expect(await chat(cluster.a.client(K.stop), smallCall())).toMatchObject({ status: 403, code: "emergency_stop" });
    // Other keys are untouched.
    expect((await chat(cluster.b.client(K.audit), smallCall())).status).toBe(200);
    const listed = await cluster.b.admin("GET", "/admin/stop");
    expect(listed.status).toBe(200);
    expect(listed.body.data).toEqual([expect.objectContaining({ kind: "key_id", value: "stop", reason: "runaway agent" })]);

    const lifted = await cluster.a.admin("POST", "/admin/stop/lift", { key_id: "stop" });
    expect(lifted.status, lifted.text).toBe(200);
    expect((await chat(cluster.a.client(K.stop), smallCall())).status).toBe(200);
    await eventually("b admits the key again", async () => ((await chat(onB, smallCall())).status === 200 ? true : undefined), 5_000);
    expect((await cluster.b.admin("GET", "/admin/stop")).body.data).toEqual([]);
    expectAlive();
  }, 60_000);

  it("an approval made by a call on a is listed and decided on b, and the retry on b gets the held answer", async () => {
    const marker = `approval-${Date.now()}`;
    const body = {
      model: "gpt-4o-mini",
      messages: [{ role: "user" as const, content: `${marker} call_tool:deploy {"environment":"production"}` }],
      tools: [
        {
          type: "function" as const,
          function: { name: "deploy", parameters: { type: "object", properties: { environment: { type: "string" } } } },
        },
      ],
    };
    const upstreamCalls = (): number =>
      cluster.mock.requests.filter((r) => r.path === "/v1/chat/completions" && JSON.stringify(r.body).includes(marker)).length;

    let approvalId = "";
    try {
      await cluster.a.client(K.approval).chat.completions.create(body);
      expect.unreachable("a production deploy must need an approval");
    } catch (error) {
      expect(error).toBeInstanceOf(APIError);
      const refusal = error as APIError;
      expect({ status: refusal.status, code: refusal.code }).toEqual({ status: 403, code: "approval_required" });
      approvalId = String((refusal.error as { approval_id?: unknown } | undefined)?.approval_id);
      expect(refusal.headers?.get("x-approval-id")).toBe(approvalId);
    }
    expect(approvalId).toMatch(/^apr/);
    expect(upstreamCalls()).toBe(1);

    // Listed on b (the store is shared), with the held answer flagged but not shown.
    const pending = await cluster.b.admin("GET", "/admin/approvals?status=pending");
    expect(pending.status).toBe(200);
    const listed = pending.body.data?.find((a) => a.id === approvalId);
    expect(listed).toMatchObject({ id: approvalId, status: "pending", key_id: "approval", held: true, rule: "production_tools_need_approval" });
    expect(listed?.tool_call).toMatchObject({ name: "deploy" });

    // Before the decision the retry is pending, on either replica.
    const early = await outcomeOf(() =>
      cluster.b.client(K.approval).chat.completions.create(body, { headers: { "x-approval-id": approvalId } }).withResponse(),
    );
    expect(early).toMatchObject({ status: 403, code: "approval_pending" });

    const decided = await cluster.b.admin("POST", `/admin/approvals/${approvalId}/approve`, { comment: "ship it" });
    expect(decided.status, decided.text).toBe(200);
    expect(decided.body).toMatchObject({ id: approvalId, status: "approved", decided_by: "admin", comment: "ship it" });
    expect((await cluster.a.admin("GET", `/admin/approvals/${approvalId}`)).body).toMatchObject({ status: "approved" });

    // The retry on b is the held answer: the model's tool call, and no new upstream call.
    const { data, response } = await cluster.b.client(K.approval).chat.completions.create(body, { headers: { "x-approval-id": approvalId } }).withResponse();
    expect(response.status).toBe(200);
    expect(response.headers.get("x-approval-id")).toBe(approvalId);
    const call = data.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" ? call.function.name : null).toBe("deploy");
    expect(call?.type === "function" ? JSON.parse(call.function.arguments) : null).toEqual({ environment: "production" });
    expect(upstreamCalls()).toBe(1);

    // Used once, on every replica.
    const again = await outcomeOf(() =>
      cluster.a.client(K.approval).chat.completions.create(body, { headers: { "x-approval-id": approvalId } }).withResponse(),
    );
    expect(again).toMatchObject({ status: 403, code: "approval_used" });
    expect(upstreamCalls()).toBe(1);
    expectAlive();
  }, 60_000);

  it("GET /admin/audit on b returns the records a wrote (the redis_stream sink)", async () => {
    const onA = await cluster.a.client(K.audit).chat.completions.create(smallCall("say:from a")).withResponse();
    const onB = await cluster.b.client(K.audit).chat.completions.create(smallCall("say:from b")).withResponse();
    const idA = onA.response.headers.get("x-request-id");
    const idB = onB.response.headers.get("x-request-id");
    expect(idA).toBeTruthy();
    expect(idB).toBeTruthy();

    for (const [reader, other] of [
      [cluster.b, "a"],
      [cluster.a, "b"],
    ] as const) {
      const records = await eventually(`both records visible on ${reader.id}`, async () => {
        const found = await auditRecords(reader, "audit");
        return found.some((r) => r.id === idA) && found.some((r) => r.id === idB) ? found : undefined;
      });
      const fromOther = records.find((r) => r.id === (other === "a" ? idA : idB));
      expect(fromOther).toMatchObject({ replica: other, key_id: "audit", user: "u-audit", path: "/v1/chat/completions", status: 200 });
      expect(fromOther?.cost as number).toBeGreaterThan(0);
    }
    // Admin actions of one replica are visible on the other too.
    const adminActions = await eventually("a's admin.stop.create record visible on b", async () => {
      const { body } = await cluster.b.admin("GET", "/admin/audit?limit=500");
      const found = body.data?.filter((r) => r.action === "admin.stop.create" && r.replica === "a");
      return found !== undefined && found.length > 0 ? found : undefined;
    });
    expect(adminActions[0]).toMatchObject({ user: "admin", status: 201 });
    expectAlive();
  }, 60_000);

  it("GET /admin/audit/verify on either replica checks every replica's chain in the stream, and finds an entry deleted from it", async () => {
    const redis = new Redis(cluster.redis.url);
    const streamed = await redis.xlen("spark:audit");
    for (const replica of [cluster.a, cluster.b]) {
      const { status, body } = await replica.admin("GET", "/admin/audit/verify");
      expect(status).toBe(200);
      expect(body.records as number).toBeGreaterThanOrEqual(streamed);
    }
    const entries = await redis.xrange("spark:audit", "-", "+");
    const ofA = entries.filter(([, fields]) => (JSON.parse(fields[1] ?? "{}") as { replica?: string }).replica === "a");
    const [removed] = ofA[Math.floor(ofA.length / 2)] ?? [];
    await redis.xdel("spark:audit", removed as string);
    await redis.quit();
    const { status, body } = await cluster.b.admin("GET", "/admin/audit/verify");
    expect(status).toBe(409);
    expect(body).toMatchObject({ ok: false, first_broken: { reason: expect.stringMatching(/broken link|records missing/) } });
  }, 30_000);
});

/** Every audit record of a key, read through a replica's `GET /admin/audit` (all pages). */
async function auditRecords(replica: Replica, keyId: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  let cursor: string | null = null;
  for (let page = 0; page < 50; page++) {
    const query: string = `/admin/audit?key_id=${keyId}&limit=100${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
    const { status, body, text } = await replica.admin("GET", query);
    expect(status, text).toBe(200);
    out.push(...(body.data ?? []));
    cursor = (body.next_cursor as string | null | undefined) ?? null;
    if (cursor === null) return out;
  }
  throw new Error("audit paging did not end");
}
