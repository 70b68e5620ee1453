import { closeSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { basename, dirname } from "node:path";
import { unlink } from "node:fs/promises";
import { type LevelState, type SavedLevel, savedLevel } from "../limits/level-state.js";

export type { SavedLevel };

/** One journal line: a level as it stood after a change, and its session's expiry where it has one. */
type Entry = [level: string, saved: SavedLevel, sessionExpiry: number | null];

const journalPath = (snapshotPath: string, generation: number): string => `${snapshotPath}.journal.${generation}`;

/**
 * The spend between two snapshots, so a crash (kill -9, a power cut of the process) forgets none of
 * it: every level a call changes is appended, as it then stood, to the journal that follows the last
 * snapshot, before the JavaScript that changed it yields (a settle runs just after its answer is
 * written: an answer the client has is journaled unless the process dies within that same step). The
 * write is synchronous, one per step however many levels changed: the kernel has it once it returns,
 * which is what a process's death cannot undo. A snapshot names the journal generation that continues
 * it and starts a new one; a restart reads the snapshot, then that journal and any later one, line by
 * line, the last line of a level winning.
 */
export class SpendJournal {
  private generation: number;
  /** The oldest journal that may still be on disk. */
  private oldest: number;
  private pending = new Map<string, Entry>();
  private scheduled = false;
  private fd: number | null = null;

  constructor(
    private readonly snapshotPath: string,
    /** The generation the restored snapshot named (0 without one): replay starts there. */
    private readonly firstGeneration: number,
    private readonly onError: (error: unknown) => void,
  ) {
    this.generation = firstGeneration;
    this.oldest = firstGeneration;
  }

  /** The entries of every journal from the snapshot's on, in order; a torn line is skipped. */
  replay(apply: (level: string, saved: SavedLevel, sessionExpiry: number | null) => void): void {
    for (const generation of this.generationsOnDisk()) {
      for (const line of readFileSync(journalPath(this.snapshotPath, generation), "utf8").split("\n")) {
        if (line === "") continue;
        try {
          const [level, saved, expiry] = JSON.parse(line) as Entry;
          if (typeof level === "string") apply(level, saved, typeof expiry === "number" ? expiry : null);
        } catch {
          // A line cut by the crash: the change before it stands.
        }
      }
      this.oldest = Math.min(this.oldest, generation);
      this.generation = Math.max(this.generation, generation + 1);
    }
  }

  /** The journals next to the snapshot from its generation on, oldest first. */
  private generationsOnDisk(): number[] {
    const prefix = `${basename(this.snapshotPath)}.journal.`;
    let names: string[];
    try {
      names = readdirSync(dirname(this.snapshotPath));
    } catch {
      return [];
    }
    return names
      .filter((name) => name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length)))
      .map((name) => Number(name.slice(prefix.length)))
      .filter((generation) => generation >= this.firstGeneration)
      .sort((a, b) => a - b);
  }

  /** Notes a level's state after a change; written once the current step of JavaScript is done. */
  record(level: string, state: LevelState, sessionExpiry: number | null): void {
    this.pending.set(level, [level, savedLevel(state), sessionExpiry]);
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(() => this.flush());
  }

  /** Starts the journal that follows a snapshot being taken now; returns its generation, which the snapshot names. */
  rotate(): number {
    // What is pending is in the snapshot too, but goes to the journal it follows: should that
    // snapshot fail to be written, the one before it and its journal still tell the whole story.
    this.flush();
    this.closeFile();
    this.generation += 1;
    return this.generation;
  }

  /** Deletes the journals a written snapshot made useless: those before `generation`. */
  async prune(generation: number): Promise<void> {
    for (; this.oldest < generation; this.oldest++) await unlink(journalPath(this.snapshotPath, this.oldest)).catch(() => undefined);
  }

  /** Writes what is pending and closes the file. */
  async close(): Promise<void> {
    this.flush();
    this.closeFile();
  }

  private closeFile(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch (error) {
      this.onError(error);
    }
    this.fd = null;
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    let text = "";
    for (const entry of this.pending.values()) text += `${JSON.stringify(entry)}\n`;
    this.pending.clear();
    try {
      this.fd ??= openSync(journalPath(this.snapshotPath, this.generation), "a");
      const data = Buffer.from(text, "utf8");
      for (let written = 0; written < data.length; ) written += writeSync(this.fd, data, written);
    } catch (error) {
      this.onError(error);
    }
  }
}
