import { constants, statSync, writeSync } from "node:fs";
import { access, type FileHandle, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { AuditConfig } from "../config/schema.js";
import { ensureDir } from "../util/ensure-dir.js";
import { chainLine, GENESIS_HASH } from "./chain.js";
import { type AuditFile, addDays, anchorFileName, auditFileName, type ChainAnchor, fileReplica, listAuditFiles, utcDay } from "./files.js";
import { readLinesReverse } from "./jsonl-lines.js";
import type { AuditSink } from "./sink.js";
import type { AuditRecord } from "./types.js";

export interface FileSinkOptions {
  dir: string;
  replica: string;
  retentionDays: number | null;
  fsync: AuditConfig["fsync"];
  fsyncIntervalMs: number;
  logger: Logger;
  /** Wall clock for retention only; file names follow the records' own `ts`. */
  now?: () => number;
  /** How often to look for a new day to apply retention when idle. */
  retentionCheckMs?: number;
}

interface OpenFile {
  day: string;
  path: string;
  handle: FileHandle;
  /** Bytes known to be complete records: a failed append is cut back to this. */
  size: number;
  /** The file the handle holds, told apart from another one put at `path` since. */
  dev: number;
  ino: number;
}

/**
 * Appends hash-chained JSONL to one file per UTC day for one replica. One chain runs across the
 * replica's days, so the newest file's last hash is recovered on start. Operations run one at a
 * time (writes, timed fsyncs, rotation, retention) through a promise chain.
 */
export class FileSink implements AuditSink {
  readonly name = "file";
  readonly local = true;
  private readonly options: FileSinkOptions;
  private readonly now: () => number;
  private lastHash = GENESIS_HASH;
  /** Days only move forward: a record whose ts is older than the open day goes to the open day. */
  private day: string | null = null;
  private file: OpenFile | null = null;
  private dirty = false;
  private tail: Promise<unknown> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private retentionDoneFor: string | null = null;
  private partial: { batch: readonly AuditRecord[]; done: number } | null = null;
  private closed = false;

  constructor(options: FileSinkOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    await ensureDir(this.options.dir);
    // A directory that cannot be written (a read-only mount) would take records into a queue that never drains.
    await access(this.options.dir, constants.W_OK).catch((error: Error) => {
      throw new Error(`the audit directory \`${this.options.dir}\` cannot be written: ${error.message}`);
    });
    await this.exclusive(async () => {
      await this.recover();
      await this.applyRetention();
    });
    if (this.options.fsync === "interval") {
      this.timers.push(setInterval(() => void this.syncInBackground(), this.options.fsyncIntervalMs).unref());
    }
    if (this.options.retentionDays !== null) {
      const every = this.options.retentionCheckMs ?? 3_600_000;
      this.timers.push(setInterval(() => void this.retentionInBackground(), every).unref());
    }
  }

  /** The chain head: the hash the next record will link to. */
  get headHash(): string {
    return this.lastHash;
  }

  /** This replica's chain head by its file name's replica part, for `VerifyOptions.heads`. */
  heads(): ReadonlyMap<string, string> {
    return new Map([[fileReplica(this.options.replica), this.lastHash]]);
  }

  /** Byte length of complete records in the open file, to bound a reader racing this writer. */
  committedSizes(): ReadonlyMap<string, number> {
    return this.file === null ? new Map() : new Map([[this.file.path, this.file.size]]);
  }

  write(batch: readonly AuditRecord[]): Promise<void> {
    return this.exclusive(() => this.writeBatch(batch));
  }

  flush(): Promise<void> {
    return this.exclusive(() => this.sync());
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.exclusive(async () => {
      await this.closeFile(true);
      this.closed = true;
    });
  }

  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.tail.then(operation, operation);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async writeBatch(batch: readonly AuditRecord[]): Promise<void> {
    if (this.closed) throw new Error("audit file sink is closed");
    // A retried batch that partly reached disk (a rollover between two files) resumes after it.
    const skip = this.partial?.batch === batch ? this.partial.done : 0;
    this.partial = null;
    let done = skip;
    for (const segment of this.segment(batch, skip)) {
      try {
        await this.append(segment.day, segment.lines);
      } catch (error) {
        this.partial = { batch, done };
        throw error;
      }
      this.lastHash = segment.lastHash;
      done += segment.count;
    }
    if (this.options.fsync === "always") await this.sync();
  }

  /** Chains the records and cuts them into runs of one day each, in order. */
  private segment(batch: readonly AuditRecord[], skip: number) {
    const segments: { day: string; lines: string; count: number; lastHash: string }[] = [];
    let prev = this.lastHash;
    let day = this.day;
    for (const record of batch.slice(skip)) {
      const recordDay = utcDay(record.ts) ?? utcDay(this.now()) ?? "1970-01-01";
      if (day === null || recordDay > day) day = recordDay;
      const chained = chainLine(record, prev);
      prev = chained.hash;
      const line = `${chained.text}\n`;
      const last = segments[segments.length - 1];
      if (last !== undefined && last.day === day) {
        last.lines += line;
        last.count += 1;
        last.lastHash = prev;
      } else {
        segments.push({ day, lines: line, count: 1, lastHash: prev });
      }
    }
    return segments;
  }

  /**
   * The lines are written with write(2) on the event loop, not through libuv's thread pool: an
   * append to the page cache takes microseconds, and each trip through the pool (two per batch,
   * with the check below) woke a thread and then the loop, which cost more CPU on a 2-vCPU VM than
   * the governance of the call (bench/README, fifteenth pass). The fsyncs stay off the loop.
   */
  private async append(day: string, lines: string): Promise<void> {
    const file = await this.openDay(day);
    const data = Buffer.from(lines, "utf8");
    try {
      let written = 0;
      while (written < data.length) written += writeSync(file.handle.fd, data, written, data.length - written);
    } catch (error) {
      // Cut a half-written batch back so the retry does not follow a torn line.
      await file.handle.truncate(file.size).catch(() => undefined);
      throw error;
    }
    file.size += data.length;
    this.dirty = true;
  }

  private async openDay(day: string): Promise<OpenFile> {
    if (this.file !== null && this.file.day === day && this.stillAtPath(this.file)) return this.file;
    // Leaving a day for good: make it durable unless told never to fsync.
    await this.closeFile(this.options.fsync !== "never");
    const path = join(this.options.dir, auditFileName(this.options.replica, day));
    const handle = await open(path, "a");
    const { size, dev, ino } = await handle.stat();
    this.file = { day, path, handle, size, dev, ino };
    this.day = day;
    if (this.options.fsync !== "never") await syncDirectory(this.options.dir);
    await this.applyRetention();
    return this.file;
  }

  /**
   * Whether the open file is still the one at its path. One replaced there (an editor's or `sed -i`'s
   * rewrite, a restore, logrotate without copytruncate) or removed would take every later record
   * into a file no one can read: the sink opens whatever is at the path now. One cut shorter in place
   * (copytruncate) is still the file: appends go to its end.
   */
  private stillAtPath(file: OpenFile): boolean {
    const current = statSync(file.path, { throwIfNoEntry: false });
    if (current !== undefined && current.dev === file.dev && current.ino === file.ino) return true;
    this.options.logger.warn({ path: file.path }, "the audit file was replaced or removed on disk; writing to the file now at its path");
    return false;
  }

  private async closeFile(durable: boolean): Promise<void> {
    if (this.file === null) return;
    if (durable) await this.sync();
    await this.file.handle.close();
    this.file = null;
  }

  private async sync(): Promise<void> {
    if (this.file === null || !this.dirty) return;
    await this.file.handle.datasync();
    this.dirty = false;
  }

  private async syncInBackground(): Promise<void> {
    try {
      await this.exclusive(() => this.sync());
    } catch (error) {
      this.options.logger.error({ err: error }, "audit file fsync failed");
    }
  }

  private async retentionInBackground(): Promise<void> {
    try {
      await this.exclusive(() => this.applyRetention());
    } catch (error) {
      this.options.logger.error({ err: error }, "audit retention failed");
    }
  }

  /** Deletes this replica's day files that ended more than `retention_days` ago, once a day. */
  private async applyRetention(): Promise<void> {
    const days = this.options.retentionDays;
    const today = utcDay(this.now());
    if (days === null || today === null || this.retentionDoneFor === today) return;
    this.retentionDoneFor = today;
    const cutoff = addDays(today, -days);
    const doomed = (await listAuditFiles(this.options.dir, this.options.replica)).filter((file) => file.day < cutoff && file.path !== this.file?.path);
    const last = doomed.at(-1);
    if (last === undefined) return;
    // The anchor is durable before any file goes: a crash in between leaves files it already covers.
    const anchor = await lastHashIn(doomed);
    if (anchor !== null) await writeAnchor(this.options.dir, this.options.replica, { prev_hash: anchor, through: last.day });
    for (const file of doomed) {
      await unlink(file.path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") throw error;
      });
      this.options.logger.info({ file: file.name }, "audit retention deleted a day file");
    }
  }

  /** Finds the chain head in the newest file holding a record; a torn last line is cut off. */
  private async recover(): Promise<void> {
    const files = (await listAuditFiles(this.options.dir, this.options.replica)).reverse();
    const newest = files[0];
    if (newest === undefined) return;
    this.day = newest.day;
    for (const file of files) {
      for await (const line of readLinesReverse(file.path)) {
        if (!line.terminated) {
          if (file === newest) await cutTornTail(file.path, line.offset, this.options.logger);
          continue;
        }
        const hash = hashOf(line.text);
        if (hash !== null) {
          this.lastHash = hash;
          return;
        }
      }
    }
  }
}

/** The hash of the last record in `files` (oldest first), or null when they hold none. */
async function lastHashIn(files: readonly AuditFile[]): Promise<string | null> {
  for (const file of [...files].reverse()) {
    for await (const line of readLinesReverse(file.path)) {
      const hash = line.terminated ? hashOf(line.text) : null;
      if (hash !== null) return hash;
    }
  }
  return null;
}

async function writeAnchor(dir: string, replica: string, anchor: ChainAnchor): Promise<void> {
  const path = join(dir, anchorFileName(replica));
  const tmp = `${path}.${process.pid}.tmp`;
  const handle = await open(tmp, "w");
  try {
    await handle.writeFile(`${JSON.stringify(anchor)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  await syncDirectory(dir);
}

function hashOf(line: string): string | null {
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed !== null && typeof parsed === "object" && "hash" in parsed && typeof parsed.hash === "string") {
      return parsed.hash;
    }
  } catch {
    // An unreadable line is not a chain head; verification reports it.
  }
  return null;
}

/**
 * A crash mid-write leaves a partial line; appending after it would glue the next record onto it.
 * The partial record was never acknowledged as durable, so it is dropped (and logged).
 */
async function cutTornTail(path: string, offset: number, logger: Logger): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const { size } = await handle.stat();
    await handle.truncate(offset);
    await handle.datasync();
    logger.warn({ file: path, bytes: size - offset }, "audit file ended in a partial record; it was cut off");
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes a new day file's directory entry durable; some platforms cannot open a directory.
  const handle = await open(dir, "r").catch(() => null);
  if (handle === null) return;
  try {
    await handle.sync().catch(() => undefined);
  } finally {
    await handle.close();
  }
}
