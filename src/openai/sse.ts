import { StringDecoder } from "node:string_decoder";

/** Splits a byte stream into complete SSE events (each with its terminating blank line). */
export class SseSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private buffer = "";

  push(chunk: Buffer): string[] {
    this.buffer += this.decoder.write(chunk);
    return this.drain();
  }

  end(): string[] {
    this.buffer += this.decoder.end();
    const events = this.drain();
    if (this.buffer.trim() !== "") events.push(this.buffer);
    this.buffer = "";
    return events;
  }

  private drain(): string[] {
    const events: string[] = [];
    for (;;) {
      const lf = this.buffer.indexOf("\n\n");
      const crlf = this.buffer.indexOf("\r\n\r\n");
      if (lf === -1 && crlf === -1) return events;
      const useCrlf = crlf !== -1 && (lf === -1 || crlf < lf);
      const end = useCrlf ? crlf + 4 : lf + 2;
      events.push(this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(end);
    }
  }
}

/** The event's `data:` payload (multi-line data joined), or null for comments and empty events. */
export function eventData(event: string): string | null {
  let data: string | null = null;
  for (const rawLine of event.split("\n")) {
    const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
    if (!line.startsWith("data:")) continue;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data;
}
