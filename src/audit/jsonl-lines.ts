import { open } from "node:fs/promises";

export interface FileLine {
  text: string;
  /** Byte offset of the line's first byte. */
  offset: number;
  /** False for a last line without its newline: a write cut short (crash, full disk). */
  terminated: boolean;
}

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * Lines of a file from first to last, reading at most `end` bytes (a snapshot bound, so a write
 * racing the read is not mistaken for a truncated line). Splitting on the newline byte is safe in
 * UTF-8: it never occurs inside a multi-byte character.
 */
export async function* readLines(path: string, end?: number): AsyncGenerator<FileLine> {
  const handle = await open(path, "r");
  try {
    const limit = end ?? (await handle.stat()).size;
    let carry: Buffer = Buffer.alloc(0);
    let carryOffset = 0;
    let position = 0;
    while (position < limit) {
      const buffer = Buffer.allocUnsafe(Math.min(CHUNK, limit - position));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      let data = buffer.subarray(0, bytesRead);
      if (carry.length > 0) data = Buffer.concat([carry, data]);
      const dataOffset = carry.length > 0 ? carryOffset : position - bytesRead;
      let start = 0;
      for (let index = data.indexOf(NEWLINE); index !== -1; index = data.indexOf(NEWLINE, start)) {
        yield { text: data.toString("utf8", start, index), offset: dataOffset + start, terminated: true };
        start = index + 1;
      }
      carry = Buffer.from(data.subarray(start));
      carryOffset = dataOffset + start;
    }
    if (carry.length > 0) yield { text: carry.toString("utf8"), offset: carryOffset, terminated: false };
  } finally {
    await handle.close();
  }
}

/** Lines of a file from last to first, reading backwards in chunks (newest records first). */
export async function* readLinesReverse(path: string): AsyncGenerator<FileLine> {
  const handle = await open(path, "r");
  try {
    const size = (await handle.stat()).size;
    let position = size;
    // Bytes after the last newline seen so far (the start of a line whose beginning is still unread).
    let tail: Buffer = Buffer.alloc(0);
    let terminated = true;
    let first = true;
    while (position > 0) {
      const length = Math.min(CHUNK, position);
      position -= length;
      const buffer = Buffer.allocUnsafe(length);
      await handle.read(buffer, 0, length, position);
      let data = tail.length > 0 ? Buffer.concat([buffer, tail]) : buffer;
      if (first) {
        first = false;
        if (data[data.length - 1] === NEWLINE) data = data.subarray(0, data.length - 1);
        else terminated = false;
      }
      let end = data.length;
      for (let index = data.lastIndexOf(NEWLINE, end - 1); index !== -1; index = data.lastIndexOf(NEWLINE, end - 1)) {
        yield { text: data.toString("utf8", index + 1, end), offset: position + index + 1, terminated };
        terminated = true;
        end = index;
        if (end === 0) break;
      }
      tail = Buffer.from(data.subarray(0, end));
    }
    if (tail.length > 0) {
      yield { text: tail.toString("utf8"), offset: 0, terminated };
    }
  } finally {
    await handle.close();
  }
}
