import { mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";

/**
 * Creates `dir` and its missing parents, one level at a time. Node's own `mkdir(…, { recursive:
 * true })` retries forever where a parent cannot be made yet looks absent (a path under /proc, a
 * dangling symlink): startup hung there, spinning. Here every failure is an error naming the path.
 */
export async function ensureDir(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let current = resolve(dir); ; ) {
    const found = await stat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return null;
      throw error;
    });
    if (found !== null) {
      if (!found.isDirectory()) throw new Error(`\`${current}\` is not a directory`);
      break;
    }
    missing.push(current);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const path of missing.reverse()) {
    await mkdir(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw new Error(`cannot create the directory \`${path}\`: ${error.code ?? error.message}`);
    });
  }
  const made = await stat(dir).catch(() => null);
  if (made === null || !made.isDirectory()) throw new Error(`cannot create the directory \`${resolve(dir)}\` (a dangling link on its path?)`);
}
