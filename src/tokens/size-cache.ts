/**
 * Token counts of recent strings for one encoding. Agents resend their whole conversation on every
 * turn, and clients the same system prompt and tool definitions on every call, so most of a call's
 * text was already counted on an earlier one; a lookup costs a hash of the string, a count a BPE pass.
 * Bounded in entries and in characters kept; the oldest entry goes first.
 */
export class SizeCache {
  private readonly sizes = new Map<string, number>();
  private chars = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxChars: number,
  ) {}

  get size(): number {
    return this.sizes.size;
  }

  get keptChars(): number {
    return this.chars;
  }

  /** The size of `text`, from the cache or from `count` (then kept when it fits the bounds). */
  sizeOf(text: string, count: (text: string) => number): number {
    const known = this.sizes.get(text);
    if (known !== undefined) return known;
    const size = count(text);
    if (text.length > this.maxChars) return size;
    // Maps iterate in insertion order: the first key is the oldest.
    while (this.sizes.size >= this.maxEntries || this.chars + text.length > this.maxChars) {
      const oldest = this.sizes.keys().next().value as string;
      this.sizes.delete(oldest);
      this.chars -= oldest.length;
    }
    this.sizes.set(text, size);
    this.chars += text.length;
    return size;
  }
}
