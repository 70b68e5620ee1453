import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";

/** Who holds a snapshot: a process is named by its pid, its host and (on Linux) its start time, so a reused pid is not taken for it. */
interface Holder {
  pid: number;
  host: string;
  started: string | null;
}

/**
 * Claims a snapshot for this process: `<snapshot>.lock` names it. Two gateways on one snapshot
 * would each rotate the other's journal out from under it, and a `kill -9` of either would then
 * forget spend; a second start (even one that fails on its port) is refused before it touches the
 * files. A lock whose process is gone is taken over: a killed one, another host's or container's
 * (its processes cannot be seen from here), or a pid now reused by another process. The snapshot's
 * directory must exist (`ensureDir`: a recursive mkdir can spin on a dangling link); a store without
 * one has no files to guard.
 */
export function lockSnapshot(snapshot: string): () => void {
  const lock = `${snapshot}.lock`;
  const self: Holder = { pid: process.pid, host: hostname(), started: startTime(process.pid) };
  const text = JSON.stringify(self);
  try {
    writeFileSync(lock, text, { flag: "wx" });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return () => undefined;
    if (code !== "EEXIST") throw error;
    const holder = readHolder(lock);
    if (holder !== null && holds(holder, self)) {
      throw new Error(
        `state snapshot \`${snapshot}\` is in use by process ${holder.pid}: give each gateway its own snapshot, or share state through Redis (store.redis)`,
      );
    }
    writeFileSync(lock, text);
  }
  return () => {
    try {
      if (readFileSync(lock, "utf8") === text) unlinkSync(lock);
    } catch {
      // Already gone: nothing to release.
    }
  };
}

function holds(holder: Holder, self: Holder): boolean {
  if (holder.host !== self.host || holder.pid === self.pid || !isAlive(holder.pid)) return false;
  const stat = procStat(holder.pid);
  // A killed process stays a zombie until its parent reaps it, which may take a while: it holds nothing.
  if (stat?.state === "Z" || stat?.state === "X") return false;
  return holder.started === null || stat?.started === holder.started;
}

function readHolder(lock: string): Holder | null {
  try {
    const parsed = JSON.parse(readFileSync(lock, "utf8")) as Partial<Holder>;
    if (typeof parsed.pid !== "number" || typeof parsed.host !== "string") return null;
    return { pid: parsed.pid, host: parsed.host, started: typeof parsed.started === "string" ? parsed.started : null };
  } catch {
    // Unreadable: no holder to respect.
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A process's start time in clock ticks since boot; null where there is no procfs. */
function startTime(pid: number): string | null {
  return procStat(pid)?.started ?? null;
}

/** A process's state letter and start time (`/proc/<pid>/stat`, fields 3 and 22); null where there is no procfs. */
function procStat(pid: number): { state: string; started: string | null } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last `)`.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", started: fields[19] ?? null };
  } catch {
    return null;
  }
}
