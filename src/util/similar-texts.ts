import { flatten } from "./flat-string.js";
import { JoinedText } from "./joined-text.js";

/**
 * A sequence of similar strings, such as a stream's SSE events, kept as what each one changes in the
 * one before it: an event repeats its id, model and framing, so a long stream kept this way takes
 * about a tenth of the memory. Reading it back rebuilds the exact concatenation.
 */
export class SimilarTexts {
  private previous = "";
  /** One entry per text: `<shared prefix> <shared suffix> <length>\n<middle>`. */
  private readonly log = new JoinedText();

  add(text: string): void {
    const before = this.previous;
    const shortest = Math.min(before.length, text.length);
    let prefix = 0;
    while (prefix < shortest && before.charCodeAt(prefix) === text.charCodeAt(prefix)) prefix++;
    let suffix = 0;
    while (suffix < shortest - prefix && before.charCodeAt(before.length - 1 - suffix) === text.charCodeAt(text.length - 1 - suffix)) suffix++;
    const middle = text.slice(prefix, text.length - suffix);
    // Flat, so the entry does not keep the whole text alive through its middle's slice.
    this.log.add(flatten(`${prefix} ${suffix} ${middle.length}\n${middle}`));
    this.previous = text;
  }

  /** Every text added, concatenated. */
  toString(): string {
    const log = this.log.toString();
    const texts: string[] = [];
    let before = "";
    let at = 0;
    while (at < log.length) {
      const space = log.indexOf(" ", at);
      const second = log.indexOf(" ", space + 1);
      const newline = log.indexOf("\n", second + 1);
      const prefix = Number(log.slice(at, space));
      const suffix = Number(log.slice(space + 1, second));
      const length = Number(log.slice(second + 1, newline));
      const middle = log.slice(newline + 1, newline + 1 + length);
      at = newline + 1 + length;
      const text = before.slice(0, prefix) + middle + before.slice(before.length - suffix);
      texts.push(text);
      before = text;
    }
    return texts.join("");
  }
}
