/**
 * Something computed from a string (its token count, the PII it holds), for recent strings. Agents
 * resend their whole conversation on every turn, and clients the same system prompt and tool
 * definitions on every call, so most of a call's text was seen on an earlier call, and a lookup
 * costs a hash of the string where the work costs a pass over it. Bounded in entries and in
 * characters kept; the oldest entry goes first.
 */
export class TextCache<V> {
  private readonly values = new Map<string, V>();
  private chars = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxChars: number,
  ) {}

  get size(): number {
    return this.values.size;
  }

  get keptChars(): number {
    return this.chars;
  }

  /** The value for `text`, from the cache or from `compute` (then kept when it fits the bounds). */
  valueOf(text: string, compute: (text: string) => V): V {
    const known = this.values.get(text);
    if (known !== undefined) return known;
    const value = compute(text);
    if (text.length > this.maxChars) return value;
    // Maps iterate in insertion order: the first key is the oldest.
    while (this.values.size >= this.maxEntries || this.chars + text.length > this.maxChars) {
      const oldest = this.values.keys().next().value as string;
      this.values.delete(oldest);
      this.chars -= oldest.length;
    }
    this.values.set(text, value);
    this.chars += text.length;
    return value;
  }
}
