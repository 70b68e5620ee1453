/**
 * A call's parsed body, and the client's bytes it was parsed from. Stages edit the parsed body
 * before it goes upstream (stripped tools, redaction, limits), but the rules judge the call as the
 * client sent it, however late they read it (a tool call in the answer is judged once the answer
 * is in): `asSent` is the parsed body until the edits begin, then the bytes parsed again.
 *
 * Once the call is forwarded an open stream needs the body only for such a late fact. `release`
 * lets the parsed trees go, since the bytes are kept anyway: a stream then holds the kilobyte the
 * client sent, not the several the objects parsed from it take.
 */
export class RequestBody {
  private parsed: Record<string, unknown> | null;
  private sent: Record<string, unknown> | null = null;
  private edited = false;

  constructor(
    parsed: Record<string, unknown>,
    private readonly bytes: Buffer,
  ) {
    this.parsed = parsed;
  }

  /** The body the stages edit and send upstream (as sent, parsed again, once released). */
  get body(): Record<string, unknown> {
    this.parsed ??= this.parse();
    return this.parsed;
  }

  /** The body as the client sent it. */
  get asSent(): Record<string, unknown> {
    if (!this.edited) return this.body;
    this.sent ??= this.parse();
    return this.sent;
  }

  /** Stages are about to edit `body`. */
  beginEdits(): void {
    this.edited = true;
  }

  release(): void {
    this.parsed = null;
    this.sent = null;
    this.edited = true;
  }

  private parse(): Record<string, unknown> {
    return sentBody(this.bytes) as Record<string, unknown>;
  }
}

/** The request body as the client sent it, parsed again from its bytes (stages edit the parsed one). */
export function sentBody(bytes: Buffer): unknown {
  return JSON.parse(bytes.toString("utf8"));
}
