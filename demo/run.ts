import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { APIError } from "openai";
import pino from "pino";
import { startMockUpstream } from "../mock/upstream.js";
import { startGateway } from "../src/gateway.js";

/**
 * `npm run demo`: a mock upstream and the gateway on free ports, then a scripted tour with the
 * official openai SDK, and the audit trail of the tour. Runs offline in a few seconds.
 */
const ADMIN = "demo-admin-token";
const KEYS = { alice: "sk-spark-demo-alice", dave: "sk-spark-demo-dave", erin: "sk-spark-demo-erin" };
const hash = (key: string): string => `sha256:${createHash("sha256").update(key).digest("hex")}`;

const bold = (s: string): string => `\x1b[1m${s}\x1b[0m`;
const green = (s: string): string => `\x1b[32m${s}\x1b[0m`;
const red = (s: string): string => `\x1b[31m${s}\x1b[0m`;
const dim = (s: string): string => `\x1b[2m${s}\x1b[0m`;

function step(title: string): void {
  process.stdout.write(`\n${bold(`▸ ${title}`)}\n`);
}

function refused(error: unknown): void {
  if (error instanceof APIError) {
    process.stdout.write(`  ${red(`✗ ${error.status} ${String(error.code)}`)} ${dim(error.message)}\n`);
  } else throw error;
}

async function main(): Promise<void> {
  const mock = await startMockUpstream({ chunkDelayMs: 30 });
  const dir = mkdtempSync(join(tmpdir(), "spark-demo-"));
  const configPath = join(dir, "gateway.yaml");
  writeFileSync(
    configPath,
    `org: acme
server: { host: 127.0.0.1, port: 0, drain_seconds: 2 }
admin: { token: ${ADMIN} }
store: { memory: { snapshot: null } }
upstreams:
  openai: { base_url: "${mock.url}", api_key: sk-upstream-demo }
models:
  gpt-4o-mini: { upstream: openai, input_per_1m: 0.15, output_per_1m: 0.60 }
  gpt-4o: { upstream: openai, input_per_1m: 2.50, output_per_1m: 10.00 }
keys:
  - { id: alice-dev, key_hash: "${hash(KEYS.alice)}", subject: { user: alice, role: developer, team: research }, limits: { requests_per_minute: 100 } }
  - { id: dave-intern, key_hash: "${hash(KEYS.dave)}", subject: { user: dave, role: intern, team: research }, limits: { requests_per_minute: 2 } }
  - { id: erin-budget, key_hash: "${hash(KEYS.erin)}", subject: { user: erin, role: developer, team: research }, limits: { daily_cost: 0.0005 } }
policies:
  default_effect: ALLOW
  rules:
    - name: high_cost_model_restriction
      effect: DENY
      conditions: { model: { in: [gpt-4o] }, user_role: { not_in: [admin, power_user] } }
      description: Only admins can use expensive models
    - name: restricted_tool_access
      effect: DENY
      actions: [tool.register]
      conditions: { tool: { in: [execute_code, shell_command] }, user_role: { not_in: [admin, developer] } }
      description: Only developers can use potentially dangerous tools
    - name: production_tools_need_approval
      effect: REQUIRE_APPROVAL
      actions: [tool.call]
      conditions: { tool: { in: [deploy] }, tool_args.environment: { matches: "^prod" } }
      constraints: { approver_role: admin, approval_timeout_seconds: 600 }
      description: Production operations require admin approval
audit:
  sinks: [{ file: { dir: "${join(dir, "audit")}" } }]
`,
  );
  const gateway = await startGateway({ configPath, env: {}, logger: pino({ level: "silent" }) });
  const client = (key: string): OpenAI => new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
  process.stdout.write(`${bold("Spark Gateway demo")} — gateway ${gateway.url}, mock upstream ${mock.url}\n`);

  try {
    step("1. alice (developer) asks gpt-4o-mini: allowed");
    const { data, response } = await client(KEYS.alice)
      .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:Hello from behind the gateway" }] })
      .withResponse();
    process.stdout.write(`  ${green("✓")} "${data.choices[0]?.message.content}"  ${dim(`cost $${response.headers.get("x-gateway-cost")}, request ${response.headers.get("x-request-id")}`)}\n`);

    step("2. alice streams an answer: chunks arrive as the model writes");
    const stream = await client(KEYS.alice).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "chunks:6 say:tokens flow through as they are produced" }],
      stream: true,
    });
    process.stdout.write("  ");
    for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? "");
    process.stdout.write(`  ${green("✓")}\n`);

    step("3. alice asks gpt-4o: denied by policy (only admins may use expensive models)");
    await client(KEYS.alice)
      .chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
      .catch(refused);

    step("4. dave (2 requests/minute) sends three calls: the third is rate limited");
    for (let i = 1; i <= 3; i++) {
      await client(KEYS.dave)
        .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:ok" }] })
        .then(() => process.stdout.write(`  ${green(`✓ call ${i} admitted`)}\n`), refused);
    }

    step("5. erin has a $0.0005 daily budget: a call is refused once its worst case no longer fits what is left");
    for (let i = 1; i <= 4; i++) {
      const ok = await client(KEYS.erin)
        .chat.completions.create({ model: "gpt-4o-mini", max_completion_tokens: 300, messages: [{ role: "user", content: "tokens:300" }] })
        .then(
          () => true,
          (error: unknown) => {
            refused(error);
            return false;
          },
        );
      if (ok) process.stdout.write(`  ${green(`✓ call ${i} admitted`)}\n`);
      else break;
    }

    step("6. dave (intern) declares the execute_code tool: blocked");
    await client(KEYS.dave)
      .chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "run this" }],
        tools: [{ type: "function", function: { name: "execute_code", parameters: { type: "object" } } }],
      })
      .catch(refused);

    step("7. the model asks to deploy to production: held for a human");
    const request = {
      model: "gpt-4o-mini",
      messages: [{ role: "user" as const, content: 'call_tool:deploy {"environment":"production","service":"billing"}' }],
      tools: [{ type: "function" as const, function: { name: "deploy", parameters: { type: "object" } } }],
    };
    let approvalId = "";
    await client(KEYS.alice)
      .chat.completions.create(request)
      .catch((error: unknown) => {
        refused(error);
        approvalId = String((error as APIError & { error?: { approval_id?: string } }).error?.approval_id ?? "");
      });
    const pending = (await (await fetch(`${gateway.url}/admin/approvals?status=pending`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as {
      data: Array<{ id: string; reason: string }>;
    };
    process.stdout.write(`  ${dim(`pending approvals: ${pending.data.map((a) => `${a.id} (${a.reason})`).join(", ")}`)}\n`);
    const decided = await fetch(`${gateway.url}/admin/approvals/${approvalId}/approve`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ comment: "change window open" }),
    });
    process.stdout.write(`  ${green("✓")} admin approved ${approvalId} (${decided.status})\n`);
    const upstreamCalls = mock.requestCount;
    const held = await client(KEYS.alice).chat.completions.create(request, { headers: { "x-approval-id": approvalId } });
    const call = held.choices[0]?.message.tool_calls?.[0];
    const fn = call !== undefined && "function" in call ? call.function : undefined;
    process.stdout.write(
      `  ${green("✓")} retry with x-approval-id receives the held answer: ${fn?.name}(${fn?.arguments}) ${dim(`— upstream calls during retry: ${mock.requestCount - upstreamCalls}`)}\n`,
    );

    step("Audit trail of the tour (GET /admin/audit)");
    await gateway.audit.writer.flush();
    const audit = (await (await fetch(`${gateway.url}/admin/audit?limit=100`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as {
      data: Array<Record<string, unknown>>;
    };
    for (const record of audit.data.reverse()) {
      const decision = record.decision as { effect?: string; rule?: string | null } | null;
      const line = [
        String(record.ts).slice(11, 23),
        String(record.status).padEnd(3),
        String(record.user ?? "-").padEnd(6),
        String(record.path).padEnd(34),
        String(record.model ?? "").padEnd(12),
        (decision?.effect ?? "").padEnd(16),
        String(record.error_code ?? decision?.rule ?? "").padEnd(32),
        `$${Number(record.cost).toFixed(6)}`,
      ].join(" ");
      process.stdout.write(`  ${line}\n`);
    }
    const verify = (await (await fetch(`${gateway.url}/admin/audit/verify`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { ok: boolean; records?: number };
    process.stdout.write(`\n${bold("hash chain:")} ${verify.ok ? green(`intact (${verify.records} records: those above, and the audit query that listed them)`) : red("broken")}\n`);
  } finally {
    await gateway.shutdown();
    await mock.close();
    // The tour's config and audit trail were printed; nothing of it is kept.
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
