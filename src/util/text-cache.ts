/**
 * Something computed from a string (its token count, the PII it holds), for recent strings. Agents
 * resend their whole conversation on every turn, and clients the same system prompt and tool
 * definitions on every call, so most of a call's text was seen on an earlier call, and a lookup
 * costs a hash of the string where the work costs a pass over it.
 *
 * Two generations, each holding at most half of the bounds: new strings go into the young one; when
 * it is full it becomes the old one and the previous old one is dropped whole; a string found in the
 * old generation moves back into the young one. So what is used keeps its place, what is not goes
 * within two generations, and no insertion pays for an eviction (deleting the oldest key of a full
 * Map one at a time made V8 walk its deleted slots: several µs per insertion).
 */
export class TextCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  private youngChars = 0;
  private oldChars = 0;
  private readonly generationEntries: number;
  private readonly generationChars: number;

  /** At most `maxEntries` strings and `maxChars` characters in all; a string longer than half of `maxChars` is never kept. */
  constructor(maxEntries: number, maxChars: number) {
    this.generationEntries = Math.max(1, Math.floor(maxEntries / 2));
    this.generationChars = Math.floor(maxChars / 2);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  get keptChars(): number {
    return this.youngChars + this.oldChars;
  }

  /** The value kept for `text` (one found in the old generation moves back into the young one), or undefined. */
  get(text: string): V | undefined {
    const known = this.young.get(text);
    if (known !== undefined) return known;
    const aged = this.old.get(text);
    if (aged !== undefined) this.set(text, aged);
    return aged;
  }

  /** Keeps `value` for `text` when it fits the bounds. */
  set(text: string, value: V): void {
    if (text.length <= this.generationChars) this.keep(text, value);
  }

  /** The value for `text`, from the cache or from `compute` (then kept when it fits the bounds). */
  valueOf(text: string, compute: (text: string) => V): V {
    const known = this.get(text);
    if (known !== undefined) return known;
    const value = compute(text);
    this.set(text, value);
    return value;
  }

  private keep(text: string, value: V): void {
    if (this.young.size >= this.generationEntries || this.youngChars + text.length > this.generationChars) {
      this.old = this.young;
      this.oldChars = this.youngChars;
      this.young = new Map();
      this.youngChars = 0;
    }
    this.young.set(text, value);
    this.youngChars += text.length;
  }
}
