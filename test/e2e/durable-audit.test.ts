import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, KEYS, keyEntry, MODELS, startHarness } from "./harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness(
    `${MODELS}
keys:
${keyEntry("alice-dev", KEYS.alice, "{ user: alice, role: developer, team: research }")}
policies:
  rules:
    - { name: no_gpt4o, effect: DENY, conditions: { model: { eq: gpt-4o } } }
`,
    { fsync: "always" },
  );
});
afterAll(async () => h.close());

/** The ids of the records in the audit files now, read straight off the disk. */
function idsOnDisk(): string[] {
  return readdirSync(h.auditDir)
    .filter((name) => name.endsWith(".jsonl"))
    .flatMap((name) => readFileSync(join(h.auditDir, name), "utf8").split("\n"))
    .filter((line) => line !== "")
    .map((line) => (JSON.parse(line) as { id: string }).id);
}

async function post(body: unknown): Promise<{ id: string; text: string }> {
  const response = await fetch(`${h.gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEYS.alice}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { id: response.headers.get("x-request-id") ?? "", text };
}

describe("audit.fsync: always", () => {
  it("has an answer's record on disk by the time the client has the whole answer: a crash then loses none", async () => {
    const ask = (content: string) => [{ role: "user", content }];
    for (const body of [
      { model: "gpt-4o-mini", messages: ask("say:kept") },
      { model: "gpt-4o-mini", messages: ask("say:kept too"), stream: true },
      { model: "gpt-4o", messages: ask("say:refused") },
    ]) {
      const { id, text } = await post(body);
      expect(text.length).toBeGreaterThan(0);
      expect(idsOnDisk(), JSON.stringify(body)).toContain(id);
    }
  });
});

describe("audit.fsync: always, for a client that stops reading at the end of the answer", () => {
  it("sends [DONE] only once the record is on disk", async () => {
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${h.gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEYS.alice}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `say:done ${i}` }], stream: true }),
      });
      const id = response.headers.get("x-request-id") ?? "";
      const reader = response.body?.getReader();
      if (reader === undefined) throw new Error("no body");
      let text = "";
      while (!text.includes("[DONE]")) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      expect(idsOnDisk()).toContain(id);
      await reader.cancel();
    }
  });
});

describe("an audit sink that cannot store records", () => {
  it("turns /readyz 503 audit_unavailable until it can again; the records wait and are then written", async () => {
    const ready = async () => {
      const response = await fetch(`${h.gateway.url}/readyz`);
      return { status: response.status, body: (await response.json()) as { status: string } };
    };
    expect((await ready()).status).toBe(200);
    // The directory's place taken by a file: every append fails.
    renameSync(h.auditDir, `${h.auditDir}.away`);
    writeFileSync(h.auditDir, "not a directory");
    const { id } = await post({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:while down" }] });
    let seen = await ready();
    for (let i = 0; i < 50 && seen.status === 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      seen = await ready();
    }
    expect(seen).toEqual({ status: 503, body: { status: "audit_unavailable" } });
    renameSync(h.auditDir, `${h.auditDir}.file`);
    renameSync(`${h.auditDir}.away`, h.auditDir);
    mkdirSync(h.auditDir, { recursive: true });
    await h.gateway.services.audit.flush();
    expect((await ready()).status).toBe(200);
    expect(idsOnDisk()).toContain(id);
  });
});
