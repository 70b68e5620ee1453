import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryStore } from "../../src/state/memory.js";
import { approval, limits, reserveRequest, runtimeKey, settleRequest, T0 } from "./fixtures.js";
import { describeStoreContract } from "./store-contract.js";

describeStoreContract("memory", async () => {
  const store = new MemoryStore(null, T0);
  return { store, replica: store, cleanup: () => store.close() };
});

describe("memory store snapshot", () => {
  const dirs: string[] = [];
  const snapshotPath = () => {
    const dir = mkdtempSync(join(tmpdir(), "spark-gw-snapshot-"));
    dirs.push(dir);
    return join(dir, "state.json");
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  const call = () => reserveRequest("key:snap", limits({ maxParallel: 1 }), { inputMicros: 40 });

  it("forgets approvals a week past their expiry, as Redis does, so the snapshot does not keep every held answer", async () => {
    const path = snapshotPath();
    const store = new MemoryStore(path, T0);
    const week = 7 * 86_400_000;
    await store.createApproval(approval("apr_old", T0, { held: { kind: "json", status: 200, content_type: "application/json", body: "{}" } }));
    await store.createApproval(approval("apr_recent", T0 + week));
    // apr_old expired an hour after T0: a week and a minute after that, the next change forgets it.
    await store.createApproval(approval("apr_new", T0 + week + 3_600_000 + 60_000));
    expect((await store.listApprovals(null)).map((a) => a.id).sort()).toEqual(["apr_new", "apr_recent"]);
    await store.saveNow();
    expect(readFileSync(path, "utf8")).not.toContain("apr_old");
    await store.close();
  });

  it("forgets sessions idle past their ttl, so the snapshot does not keep every session id ever used", async () => {
    const path = snapshotPath();
    const store = new MemoryStore(path, T0);
    const ttlMs = 60_000;
    for (const id of ["a", "b"]) {
      const request = reserveRequest(`session:alice-dev:${id}`, limits({ session: true, sessionMaxLlmCalls: 5 }), { ttlMs });
      await store.settle(settleRequest(request, await store.reserve(request, T0), T0), T0);
    }
    await store.saveNow();
    const saved = () => Object.keys((JSON.parse(readFileSync(path, "utf8")) as { levels: Record<string, unknown> }).levels);
    expect(saved()).toEqual(expect.arrayContaining(["session:alice-dev:a", "session:alice-dev:b"]));
    // Session b goes on; a is idle past its ttl by b's next call a minute later.
    const later = T0 + ttlMs + 1;
    const b = reserveRequest("session:alice-dev:b", limits({ session: true, sessionMaxLlmCalls: 5 }), { ttlMs });
    expect((await store.reserve(b, later)).ok).toBe(true);
    await store.saveNow();
    expect(saved()).toContain("session:alice-dev:b");
    expect(saved()).not.toContain("session:alice-dev:a");
    await store.close();
  });

  it("is claimed by one process: another gateway on the snapshot is refused before it touches it, a gone one's claim taken over", async () => {
    const path = snapshotPath();
    const lockModule = join(import.meta.dirname, "..", "..", "dist", "src", "state", "snapshot-lock.js");
    const holder = spawn(process.execPath, ["-e", `import(${JSON.stringify(lockModule)}).then((m) => m.lockSnapshot(${JSON.stringify(path)})); setInterval(() => {}, 1000)`]);
    await vi.waitFor(() => expect(readdirSync(dirname(path))).toContain("state.json.lock"), { timeout: 5000 });
    expect(() => new MemoryStore(path, T0)).toThrow(`state snapshot \`${path}\` is in use by process ${holder.pid}`);
    expect(readdirSync(dirname(path))).toEqual(["state.json.lock"]);
    // The same pid started at another time (reused), or a process on another host: not holders.
    const held = JSON.parse(readFileSync(`${path}.lock`, "utf8")) as { pid: number; host: string; started: string };
    for (const stale of [{ ...held, started: "1" }, { ...held, host: "another-host" }]) {
      writeFileSync(`${path}.lock`, JSON.stringify(stale));
      await new MemoryStore(path, T0).close();
    }
    writeFileSync(`${path}.lock`, JSON.stringify(held));
    holder.kill("SIGKILL");
    await once(holder, "exit");
    const store = new MemoryStore(path, T0);
    expect(JSON.parse(readFileSync(`${path}.lock`, "utf8"))).toMatchObject({ pid: process.pid });
    await store.close();
    expect(readdirSync(dirname(path))).not.toContain("state.json.lock");
  });

  it("is taken over from a killed holder its parent has not reaped yet (a zombie still answers kill 0)", async () => {
    const path = snapshotPath();
    const lockModule = join(import.meta.dirname, "..", "..", "dist", "src", "state", "snapshot-lock.js");
    const script = `import(${JSON.stringify(lockModule)}).then((m) => m.lockSnapshot(${JSON.stringify(path)})); setInterval(() => {}, 1000)`;
    // The holder's parent becomes `sleep`, which never waits for its children.
    const parent = spawn("sh", ["-c", `"${process.execPath}" -e '${script}' & exec sleep 30`]);
    try {
      await vi.waitFor(() => expect(readdirSync(dirname(path))).toContain("state.json.lock"), { timeout: 5000 });
      const { pid } = JSON.parse(readFileSync(`${path}.lock`, "utf8")) as { pid: number };
      expect(() => new MemoryStore(path, T0)).toThrow(`is in use by process ${pid}`);
      process.kill(pid, "SIGKILL");
      await vi.waitFor(() => expect(readFileSync(`/proc/${pid}/stat`, "utf8")).toMatch(/\) Z /), { timeout: 5000 });
      const store = new MemoryStore(path, T0);
      expect(JSON.parse(readFileSync(`${path}.lock`, "utf8"))).toMatchObject({ pid: process.pid });
      await store.close();
    } finally {
      parent.kill("SIGKILL");
    }
  });

  it("is claimed by the file, not the name: a gateway given a link to another's snapshot is refused too", async () => {
    const path = snapshotPath();
    const first = new MemoryStore(path, T0);
    await first.saveNow();
    await first.close();
    const other = snapshotPath();
    symlinkSync(path, other);
    const lockModule = join(import.meta.dirname, "..", "..", "dist", "src", "state", "snapshot-lock.js");
    const holder = spawn(process.execPath, ["-e", `import(${JSON.stringify(lockModule)}).then((m) => m.lockSnapshot(${JSON.stringify(path)})); setInterval(() => {}, 1000)`]);
    try {
      await vi.waitFor(() => expect(readdirSync(dirname(path))).toContain("state.json.lock"), { timeout: 5000 });
      expect(() => new MemoryStore(other, T0)).toThrow(`is in use by process ${holder.pid}`);
      expect(lstatSync(other).isSymbolicLink()).toBe(true);
    } finally {
      holder.kill("SIGKILL");
      await once(holder, "exit");
    }
  });

  it("brings the spend back but no calls in flight, nor what they reserved: their process is gone", async () => {
    const path = snapshotPath();
    const before = new MemoryStore(path, T0);
    const settled = call();
    const result = await before.reserve(settled, T0);
    await before.settle(settleRequest(settled, result, T0, { actualMicros: 25 }), T0);
    expect((await before.reserve(call(), T0)).ok).toBe(true);
    expect((await before.reserve(call(), T0)).ok).toBe(false);
    expect((await before.usage("key:snap", T0)).dailyMicros).toBe(65);
    await before.close();

    const after = new MemoryStore(path, T0 + 1000);
    try {
      expect(await after.usage("key:snap", T0 + 1000)).toMatchObject({ dailyMicros: 25, monthlyMicros: 25, totalMicros: 25 });
      expect((await after.reserve(call(), T0 + 1000)).ok).toBe(true);
    } finally {
      await after.close();
    }
  });

  it("keeps no worst case a process killed mid-call had reserved: the journal has the spend without it", async () => {
    const path = snapshotPath();
    const killed = new MemoryStore(path, T0);
    await killed.saveNow();
    const budget = reserveRequest("key:crash", limits({ totalMicros: 100 }), { inputMicros: 60 });
    const first = await killed.reserve(budget, T0);
    await killed.settle(settleRequest(budget, first, T0, { actualMicros: 10 }), T0);
    expect((await killed.reserve({ ...budget, callId: "in-flight" }, T0)).ok).toBe(true);
    // The journal is written at the end of the turn; the process dies without a snapshot or a close.
    await new Promise((resolve) => setTimeout(resolve, 50));

    const after = new MemoryStore(path, T0 + 1000);
    try {
      expect((await after.usage("key:crash", T0 + 1000)).totalMicros).toBe(10);
      expect((await after.reserve({ ...budget, callId: "next" }, T0 + 1000)).ok).toBe(true);
    } finally {
      await after.close();
    }
  });

  it("has a settle's spend in the journal file by the time the settle returns, before the process goes on to anything else", async () => {
    const path = snapshotPath();
    const store = new MemoryStore(path, T0);
    try {
      await store.saveNow();
      const request = reserveRequest("key:written", limits({ dailyMicros: 10_000 }), { inputMicros: 10 });
      const result = await store.reserve(request, T0);
      await store.settle(settleRequest(request, result, T0, { actualMicros: 321 }), T0);
      // Still before any I/O or timer could run: what a crash could interrupt.
      await new Promise((resolve) => process.nextTick(resolve));
      const journals = readdirSync(dirname(path)).filter((name) => name.includes(".journal."));
      const lines = journals.flatMap((name) => readFileSync(join(dirname(path), name), "utf8").split("\n").filter((line) => line !== ""));
      expect(lines.map((line) => JSON.parse(line) as [string, { dayMicros: number }]).findLast(([level]) => level === "key:written")?.[1].dayMicros).toBe(321);
    } finally {
      await store.close();
    }
  });

  it("forgets no spend of a process killed between two snapshots: the journal since the last one is read back", async () => {
    const path = snapshotPath();
    const dir = join(path, "..");
    const killed = new MemoryStore(path, T0);
    await killed.saveNow();
    const spend = async (store: MemoryStore, micros: number, at: number) => {
      const request = reserveRequest("key:journal", limits({ dailyMicros: 10_000 }), { inputMicros: 10 });
      const result = await store.reserve(request, at);
      await store.settle(settleRequest(request, result, at, { actualMicros: micros }), at);
    };
    await spend(killed, 700, T0);
    await spend(killed, 300, T0);
    // The journal is written at the end of the turn; no snapshot is taken before the "kill".
    await new Promise((resolve) => setTimeout(resolve, 50));
    const restarted = new MemoryStore(path, T0 + 1000);
    try {
      expect((await restarted.usage("key:journal", T0 + 1000)).dailyMicros).toBe(1000);
      // A snapshot starts a new journal and deletes the ones it covers; spend after it is journaled anew.
      await restarted.saveNow();
      await spend(restarted, 50, T0 + 1000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(readdirSync(dir).filter((name) => name.includes(".journal."))).toHaveLength(1);
      const again = new MemoryStore(path, T0 + 2000);
      expect((await again.usage("key:journal", T0 + 2000)).dailyMicros).toBe(1050);
      await again.close();
    } finally {
      await restarted.close();
      await killed.close();
    }
  });

  it("reads a journal left without its snapshot (killed before the first snapshot was written)", async () => {
    const path = snapshotPath();
    const killed = new MemoryStore(path, T0);
    await killed.saveNow();
    await killed.saveNow();
    const request = reserveRequest("key:orphan", limits({ dailyMicros: 10_000 }), { inputMicros: 10 });
    await killed.settle(settleRequest(request, await killed.reserve(request, T0), T0, { actualMicros: 400 }), T0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    renameSync(path, `${path}.aside`);
    const restarted = new MemoryStore(path, T0);
    try {
      expect((await restarted.usage("key:orphan", T0)).dailyMicros).toBe(400);
    } finally {
      await restarted.close();
      await killed.close();
    }
  });

  it("refuses calls with budgets, and is not ready, while its snapshot cannot be written; recovers once it can", async () => {
    const path = snapshotPath();
    const store = new MemoryStore(path, T0);
    try {
      await store.saveNow();
      // The temporary file the snapshot is written to is taken by a directory: every write fails.
      const blocker = `${path}.${process.pid}.tmp`;
      mkdirSync(blocker);
      await expect(store.saveNow()).rejects.toThrow();
      expect(await store.ping()).toBe(false);
      const budgeted = reserveRequest("key:full-disk", limits({ dailyMicros: 10_000 }));
      await expect(store.reserve(budgeted, T0)).rejects.toThrow(/snapshot cannot be written/);
      expect((await store.reserve(reserveRequest("key:rate-only", limits({ requestsPerMinute: 10 })), T0)).ok).toBe(true);
      rmSync(blocker, { recursive: true });
      await store.saveNow();
      expect(await store.ping()).toBe(true);
      expect((await store.reserve(budgeted, T0)).ok).toBe(true);
    } finally {
      await store.close();
    }
  });

  it("reports a journal it cannot open (its directory gone) as a failed save, never as an unhandled rejection", async () => {
    const path = snapshotPath();
    const errors: unknown[] = [];
    const store = new MemoryStore(path, T0, (error) => errors.push(error));
    try {
      await store.saveNow();
      rmSync(join(path, ".."), { recursive: true, force: true });
      expect((await store.reserve(reserveRequest("key:gone", limits({ dailyMicros: 10_000 })), T0)).ok).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(errors.length).toBeGreaterThan(0);
      expect(await store.ping()).toBe(false);
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  it("does not put in force a governance write it could not save: the writer hears of the failure and nothing changed", async () => {
    const path = snapshotPath();
    const store = new MemoryStore(path, T0);
    try {
      await store.saveNow();
      expect(await store.putKey(runtimeKey("kept"))).toBe(true);
      const blocker = `${path}.${process.pid}.tmp`;
      mkdirSync(blocker);
      await expect(store.putKey(runtimeKey("orphan"))).rejects.toThrow();
      await expect(store.putKey({ ...runtimeKey("kept"), revoked: true, revision: 1 })).rejects.toThrow();
      await expect(store.putStop({ kind: "key_id", value: "kept", reason: "halt", by: "admin", at: new Date(T0).toISOString() })).rejects.toThrow();
      await expect(store.createApproval(approval("apr_lost", T0))).rejects.toThrow();
      expect((await store.listKeys()).map((key) => [key.id, key.revoked])).toEqual([["kept", false]]);
      expect(await store.listStops()).toEqual([]);
      expect(await store.getApproval("apr_lost")).toBeNull();
      rmSync(blocker, { recursive: true });
      expect(await store.putKey(runtimeKey("orphan"))).toBe(true);
    } finally {
      await store.close();
    }
  });

  it("has a governance write on disk when it answers: a crash right after cannot undo a revoke or reuse an approval", async () => {
    const path = snapshotPath();
    const store = new MemoryStore(path, T0);
    const onDisk = () => JSON.parse(readFileSync(path, "utf8")) as { keys: { id: string; revoked: boolean }[]; approvals: { id: string; status: string }[]; stops: unknown[] };
    try {
      await store.createApproval(approval("apr_1", T0));
      expect(onDisk().approvals).toMatchObject([{ id: "apr_1", status: "pending" }]);
      await store.decideApproval("apr_1", { status: "approved", by: "dana", role: "security", comment: null, at: new Date(T0).toISOString() }, T0);
      expect(onDisk().approvals).toMatchObject([{ status: "approved" }]);
      expect((await store.consumeApproval("apr_1", T0)).ok).toBe(true);
      // Read back as a restarted process would, before any timed save: used.
      expect(onDisk().approvals).toMatchObject([{ status: "used" }]);
      expect(await store.putKey(runtimeKey("k1"))).toBe(true);
      expect(await store.putKey({ ...runtimeKey("k1"), revoked: true, revision: 1 })).toBe(true);
      expect(onDisk().keys).toMatchObject([{ id: "k1", revoked: true }]);
      await store.putStop({ kind: "key_id", value: "k1", reason: "halt", by: "admin", at: new Date(T0).toISOString() });
      expect(onDisk().stops).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it("reads an approval saved before tool_calls existed with its one tool call listed", async () => {
    const path = snapshotPath();
    const { tool_calls: _gone, ...old } = approval("apr_old", T0, { tool_call: { name: "deploy", arguments: "{}" } });
    const { tool_calls: _none, ...plain } = approval("apr_plain", T0);
    writeFileSync(path, JSON.stringify({ version: 1, levels: {}, sessionExpiry: {}, keys: [], stops: [], approvals: [old, plain] }));
    const store = new MemoryStore(path, T0);
    try {
      expect((await store.getApproval("apr_old"))?.tool_calls).toEqual([{ name: "deploy", arguments: "{}", effect: "REQUIRE_APPROVAL", rule: "big_spend" }]);
      expect((await store.getApproval("apr_plain"))?.tool_calls).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("reads a key saved with one previous secret and no revision in today's shape, and writes on it", async () => {
    const path = snapshotPath();
    const { previous: _p, revision: _r, ...base } = runtimeKey("k-old");
    const graceEnds = new Date(T0 + 60_000).toISOString();
    const old = { ...base, previous_hash: "sha256:before", previous_expires_at: graceEnds };
    writeFileSync(path, JSON.stringify({ version: 1, levels: {}, sessionExpiry: {}, keys: [old], stops: [], approvals: [] }));
    const store = new MemoryStore(path, T0);
    try {
      const [key] = await store.listKeys();
      expect(key).toEqual({ ...base, previous: [{ hash: "sha256:before", expires_at: graceEnds }], revision: 0 });
      expect(await store.putKey({ ...key!, disabled: true, revision: 1 })).toBe(true);
    } finally {
      await store.close();
    }
  });

  it("ignores a count of calls in flight a snapshot may hold", async () => {
    const path = snapshotPath();
    const saved = { day: "2025-01-15", dayMicros: 7, month: "2025-01", monthMicros: 7, totalMicros: 7, session: null };
    const levels = { "key:snap": { ...saved, parallel: 5, leases: { "call-x": T0 + 60_000 } } };
    writeFileSync(path, JSON.stringify({ version: 1, levels, sessionExpiry: {}, keys: [], stops: [], approvals: [] }));
    const store = new MemoryStore(path, T0);
    try {
      expect((await store.reserve(call(), T0)).ok).toBe(true);
      expect(await store.usage("key:snap", T0)).toMatchObject({ dailyMicros: 47, totalMicros: 47 });
    } finally {
      await store.close();
    }
  });

  it("refuses a file that is not its snapshot, naming the file and what is wrong, rather than failing on it", () => {
    for (const [content, why] of [
      ["{}", "version"],
      ["[]", "expected object"],
      ['{"version":2}', "version"],
      ["null", "expected object"],
      ['{"version":1,"levels":{},"stops":[],"approvals":[]}', "keys"],
      ['{"version":1,"levels":{', "JSON"],
    ] as const) {
      const path = snapshotPath();
      writeFileSync(path, content);
      expect(() => new MemoryStore(path, T0), content).toThrow(new RegExp(`snapshot \`${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\`.*${why}.*move it aside`));
    }
  });
});
