/**
 * A call's parsed body, and the client's bytes it was parsed from. Stages edit the parsed body
 * before it goes upstream; once it has gone, an open stream needs the body only for a fact a late
 * rule may read (a streamed tool call is judged at the stream's end). `release` lets the parsed
 * tree go, since the bytes are kept anyway: a stream then holds the kilobyte the client sent, not
 * the several the objects parsed from it take, and a late read parses the bytes again (the body
 * as the client sent it, which is what the call's own rules read too).
 */
export class RequestBody {
  private parsed: Record<string, unknown> | null;

  constructor(
    parsed: Record<string, unknown>,
    private readonly bytes: Buffer,
  ) {
    this.parsed = parsed;
  }

  get body(): Record<string, unknown> {
    this.parsed ??= JSON.parse(this.bytes.toString("utf8")) as Record<string, unknown>;
    return this.parsed;
  }

  release(): void {
    this.parsed = null;
  }
}
