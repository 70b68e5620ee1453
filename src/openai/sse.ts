import { StringDecoder } from "node:string_decoder";

/**
 * Splits a byte stream into complete SSE events (each with its terminating blank line). SSE ends a
 * line with CRLF, LF or a lone CR: each is made LF here, so an upstream's choice of line ending
 * cannot hide an event (a tool call) from the gateway that its client's parser would still read.
 */
export class SseSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private buffer = "";
  /** The text so far ended with a CR: the next text says whether an LF completes it. */
  private pendingCr = false;
  /** No text has come yet: a byte order mark before the first event is dropped, as SSE parsers drop it. */
  private atStart = true;

  push(chunk: Buffer): string[] {
    this.append(this.decoder.write(chunk));
    return this.drain();
  }

  end(): string[] {
    this.append(this.decoder.end());
    if (this.pendingCr) this.buffer += "\n";
    this.pendingCr = false;
    const events = this.drain();
    // The last event, unterminated, is ended here: what the gateway writes after it (its error event,
    // the cost comment) must not run on into its last line.
    if (this.buffer.trim() !== "") events.push(this.buffer.endsWith("\n") ? `${this.buffer}\n` : `${this.buffer}\n\n`);
    this.buffer = "";
    return events;
  }

  private append(decoded: string): void {
    let text = decoded;
    if (this.atStart && text !== "") {
      this.atStart = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let next = this.pendingCr ? `\r${text}` : text;
    this.pendingCr = false;
    if (next.includes("\r")) {
      if (next.endsWith("\r")) {
        this.pendingCr = true;
        next = next.slice(0, -1);
      }
      next = next.replace(CR_LINE_END, "\n");
    }
    this.buffer += next;
  }

  private drain(): string[] {
    const events: string[] = [];
    for (let end = this.buffer.indexOf("\n\n"); end !== -1; end = this.buffer.indexOf("\n\n")) {
      events.push(this.buffer.slice(0, end + 2));
      this.buffer = this.buffer.slice(end + 2);
    }
    return events;
  }
}

const CR_LINE_END = /\r\n?/g;

/** The `data:` payload of an event from `SseSplitter` (multi-line data joined), or null for comments and empty events. */
export function eventData(event: string): string | null {
  let data: string | null = null;
  for (const line of event.split("\n")) {
    if (!line.startsWith("data:")) continue;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data;
}

/** The event with its data replaced by `data` (one `data:` line where the first one was); its other fields kept. */
export function withEventData(event: string, data: string): string {
  const lines: string[] = [];
  let placed = false;
  for (const line of event.split("\n")) {
    if (!line.startsWith("data:")) lines.push(line);
    else if (!placed) {
      lines.push(`data: ${data}`);
      placed = true;
    }
  }
  return lines.join("\n");
}
