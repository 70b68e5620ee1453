import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { encryptBody } from "../../src/audit/bodies.js";
import { runCli } from "../../src/cli.js";
import { writeThrough } from "../audit/file-helpers.js";
import { makeRecord, makeTempDir } from "../audit/fixtures.js";
import { type Harness, KEYS, keyEntry, MODELS, startHarness } from "../e2e/harness.js";

let h: Harness;

async function run(args: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err: err.join("\n") };
}

beforeAll(async () => {
  h = await startHarness(`${MODELS}
keys:
${keyEntry("alice-dev", KEYS.alice, "{ user: alice, role: developer, team: research }")}
${keyEntry("bob-admin", KEYS.bob, "{ user: bob, role: admin, team: platform }")}
`);
  for (const key of [KEYS.alice, KEYS.bob, KEYS.alice]) {
    await h.client(key).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:hi" }] });
  }
  await h.gateway.shutdown();
});
afterAll(async () => h.mock.close());

describe("audit CLI, offline on the files", () => {
  it("opens encrypted bodies with the key named by --key-env, and says which it cannot", async () => {
    const { dir, cleanup } = await makeTempDir();
    try {
      const key = randomBytes(32);
      const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "the secret plan" }] };
      await writeThrough(dir, [makeRecord({ body_enc: encryptBody(body, key), body_key_id: "k1" }), makeRecord({ body_enc: encryptBody(body, randomBytes(32)), body_key_id: "old" })]);
      process.env.SPARK_TEST_AUDIT_KEY = key.toString("base64");
      const opened = await run(["audit", "query", "--dir", dir, "--key-env", "SPARK_TEST_AUDIT_KEY"]);
      expect(opened.code).toBe(0);
      const [newest, oldest] = opened.out.map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(oldest).toMatchObject({ body });
      expect(oldest).not.toHaveProperty("body_enc");
      expect(newest).toMatchObject({ body_key_id: "old" });
      expect(opened.err).toContain("key id old) does not open with this key");
      process.env.SPARK_TEST_AUDIT_KEY = "c2hvcnQ=";
      const bad = await run(["audit", "query", "--dir", dir, "--key-env", "SPARK_TEST_AUDIT_KEY"]);
      expect(bad.code).toBe(2);
      expect(bad.err).toContain("must be base64 of 32 bytes");
    } finally {
      delete process.env.SPARK_TEST_AUDIT_KEY;
      await cleanup();
    }
  });

  it("queries with filters, newest first", async () => {
    const all = await run(["audit", "query", "--dir", h.auditDir]);
    expect(all.code).toBe(0);
    expect(all.out).toHaveLength(3);
    const alice = await run(["audit", "query", "--dir", h.auditDir, "--user", "alice"]);
    const records = alice.out.map((line) => JSON.parse(line) as { user: string; ts: string });
    expect(records.map((r) => r.user)).toEqual(["alice", "alice"]);
    expect(records[0]!.ts >= records[1]!.ts).toBe(true);
    const bad = await run(["audit", "query", "--dir", h.auditDir, "--min_cost", "lots"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("--min_cost");
  });

  it("names a mistaken command line instead of answering as if it were right", async () => {
    const unknown = await run(["audit", "query", "--dir", h.auditDir, "--usr", "alice"]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("invalid --usr: `usr` is not a filter; the filters are user, key_id");
    const proto = await run(["audit", "query", "--dir", h.auditDir, "--__proto__", "1"]);
    expect(proto.code).toBe(2);
    expect(proto.err).toContain("invalid --__proto__: `__proto__` is not a filter");
    const dangling = await run(["audit", "query", "--dir", h.auditDir, "--user"]);
    expect(dangling.code).toBe(2);
    expect(dangling.err).toContain("--user needs a value");
    const stray = await run(["audit", "query", "alice"]);
    expect(stray.code).toBe(2);
    expect(stray.err).toContain("unexpected argument `alice`");
    for (const sub of ["verify", "query"]) {
      const missing = await run(["audit", sub, "--dir", join(h.auditDir, "no-such-dir")]);
      expect(missing.code, sub).toBe(1);
      expect(missing.err).toContain("no audit directory at");
      expect(missing.out).toEqual([]);
    }
    const typo = await run(["audit", "verify", "--dir", h.auditDir, "--replica", "no-such-replica"]);
    expect(typo.code).toBe(1);
    expect(typo.err).toContain("no audit files of replica `no-such-replica`");
    const empty = await run(["audit", "verify", "--dir", mkdtempSync(join(tmpdir(), "spark-empty-audit-"))]);
    expect(empty.code).toBe(1);
    expect(empty.err).toContain("no audit files in");
    // A misspelt --dir, or a filter verify does not take, is named rather than the default directory verified.
    for (const args of [["--dri", h.auditDir], ["--dir", h.auditDir, "--user", "alice"]]) {
      const wrong = await run(["audit", "verify", ...args]);
      expect(wrong.code, args.join(" ")).toBe(2);
      expect(wrong.err).toMatch(/^audit verify takes --dir and --replica only, not --(dri|user)/);
      expect(wrong.out).toEqual([]);
    }
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.out[0]).toMatch(/^usage:/);
  });

  it("verifies the chain and reports an edited record", async () => {
    const ok = await run(["audit", "verify", "--dir", h.auditDir]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out.join("\n"))).toMatchObject({ ok: true, records: 3 });
    const file = join(h.auditDir, readdirSync(h.auditDir)[0]!);
    const lines = readFileSync(file, "utf8").split("\n");
    const edited = JSON.parse(lines[1]!) as { id: string; user: string };
    lines[1] = JSON.stringify({ ...edited, user: "mallory" });
    writeFileSync(file, lines.join("\n"));
    const broken = await run(["audit", "verify", "--dir", h.auditDir]);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.out.join("\n"))).toMatchObject({ ok: false, first_broken: { id: edited.id, reason: "hash mismatch" } });
  });
});
