import { readFileSync, unlinkSync, writeFileSync } from "node:fs";

/**
 * Claims a snapshot for this process: `<snapshot>.lock` holds its pid. Two gateways on one snapshot
 * would each rotate the other's journal out from under it, and a `kill -9` of either would then
 * forget spend; a second start (even one that fails on its port) is refused before it touches the
 * files. A lock whose process is gone (killed) is taken over. The snapshot's directory must exist
 * (`ensureDir`: a recursive mkdir can spin on a dangling link); a store without one has no files to guard.
 */
export function lockSnapshot(snapshot: string): () => void {
  const lock = `${snapshot}.lock`;
  try {
    writeFileSync(lock, String(process.pid), { flag: "wx" });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return () => undefined;
    if (code !== "EEXIST") throw error;
    const holder = Number(readFileSync(lock, "utf8").trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new Error(
        `state snapshot \`${snapshot}\` is in use by process ${holder}: give each gateway its own snapshot, or share state through Redis (store.redis)`,
      );
    }
    writeFileSync(lock, String(process.pid));
  }
  return () => {
    try {
      if (readFileSync(lock, "utf8").trim() === String(process.pid)) unlinkSync(lock);
    } catch {
      // Already gone: nothing to release.
    }
  };
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
