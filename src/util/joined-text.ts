/**
 * A string built piece by piece over a long stream. `+=` per piece keeps every piece (and a rope
 * node per piece, or the original a piece was cut from) alive until the end; joining every `batch`
 * pieces keeps a few flat strings instead.
 */
export class JoinedText {
  private readonly parts: string[] = [];
  private joined = "";

  constructor(private readonly batch = 32) {}

  add(piece: string): void {
    if (piece === "") return;
    this.parts.push(piece);
    if (this.parts.length >= this.batch) this.join();
  }

  toString(): string {
    if (this.parts.length > 0) this.join();
    return this.joined;
  }

  private join(): void {
    this.joined += this.parts.join("");
    this.parts.length = 0;
  }
}
