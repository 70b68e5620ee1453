import { TextCache } from "../util/text-cache.js";
import { type Encoding, getEncoder } from "./encoding.js";
import { splitForEncoding } from "./split.js";

/** Words recur across prompts far more than whole texts do; bounded like the text caches. */
const WORD_ENTRIES = 65_536;
const WORD_CHARS = 1024 * 1024;
const wordCaches: Record<Encoding, TextCache<number>> = {
  o200k_base: new TextCache<number>(WORD_ENTRIES, WORD_CHARS),
  cl100k_base: new TextCache<number>(WORD_ENTRIES, WORD_CHARS),
};

/**
 * Tokens in `text`; special-token strings such as `<|endoftext|>` count as ordinary text. The text
 * is cut at every certain piece boundary (`splitForEncoding` with one-character chunks: about one
 * word each) and each word's count is looked up before it is encoded. A 20k-token prompt of
 * prose counted 2.5x faster so; a short one costs the same either way.
 */
export function countTokens(text: string, encoding: Encoding, budget: EncodeBudget = processBudget): number {
  if (text.length === 0) return 0;
  const encoder = getEncoder(encoding);
  const words = wordCaches[encoding];
  // One count encodes at most this much whatever the process's budget holds: its own refill must not
  // let a single huge prompt keep the event loop.
  let allowance = COUNT_CHARS;
  let total = 0;
  for (const word of splitForEncoding(text)) {
    const digits = digitRunTokens(word);
    if (digits !== null) {
      total += digits;
      continue;
    }
    const known = words.get(word);
    if (known !== undefined) total += known;
    else if (allowance >= word.length && budget.take(word.length)) {
      allowance -= word.length;
      const counted = encoder.countOrdinary(word);
      words.set(word, counted);
      total += counted;
    } else {
      // A bound, never kept: the cache holds exact counts only.
      total += Buffer.byteLength(word, "utf8");
    }
  }
  return total;
}

/** The characters one count may encode (about a tenth to a quarter of a second). */
const COUNT_CHARS = 100_000;

/**
 * How many characters of words no cache holds the process may BPE-encode, refilled over time.
 * Encoding costs about 1-3 µs a character (a random word 10-20 µs, a 128-character piece of base64
 * 80 µs), and a prompt of a million never-seen words took the event loop for minutes: past the
 * budget a word is bounded by its UTF-8 length instead (no byte-level BPE token is shorter than a
 * byte), which errs towards reserving more, never less. Prose stays exact: its words are mostly cached.
 */
export class EncodeBudget {
  private left: number;
  private at: number;

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    private readonly clock: () => number = Date.now,
  ) {
    this.left = capacity;
    this.at = clock();
  }

  /** Takes `units` (characters to encode) when that many are left. */
  take(units: number): boolean {
    if (this.left < units) {
      const now = this.clock();
      this.left = Math.min(this.capacity, this.left + ((now - this.at) * this.perSecond) / 1000);
      this.at = now;
      if (this.left < units) return false;
    }
    this.left -= units;
    return true;
  }
}

/** About a quarter of a second of encoding at once, and a tenth to a quarter each second after. */
const processBudget = new EncodeBudget(200_000, 100_000);

/**
 * A run of ASCII digits, with or without its leading space, without the encoder: both encodings cut
 * digits in threes and hold every one- to three-digit piece as one token, and the space as another
 * (checked over every length to 14 digits in the tests). Numbers are the words a cache serves worst:
 * an id or an amount is seldom seen twice.
 */
function digitRunTokens(word: string): number | null {
  const start = word.charCodeAt(0) === 32 ? 1 : 0;
  if (word.length === start) return null;
  for (let i = start; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c < 48 || c > 57) return null;
  }
  return start + Math.ceil((word.length - start) / 3);
}

/**
 * Tokens of streamed output when the upstream sent no usage. Deltas are joined first because a
 * token can straddle two deltas.
 */
export function countTextTokens(text: string | readonly string[], encoding: Encoding): number {
  return countTokens(typeof text === "string" ? text : text.join(""), encoding);
}
