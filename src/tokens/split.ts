/**
 * Cuts text into chunks that the BPE tokenizer can encode in linear time.
 *
 * BPE merging (tiktoken and gpt-tokenizer alike) is quadratic in the length of one pre-tokenizer piece, and a single long
 * piece (100k repeated letters takes ~9 s; 1 MB aborts the WASM module) would let one prompt
 * stall the gateway. Chunks end only where a piece boundary is certain — before a space that
 * follows a non-space, or before ASCII punctuation that follows an ASCII letter or digit — so
 * ordinary text counts exactly as if encoded whole. Where no such boundary appears for
 * `maxRun` UTF-8 bytes (CJK runs, unbroken blobs, repeated letters; merge cost grows with bytes,
 * so non-ASCII code units weigh 3), the chunk is cut anyway. That may shift the count by about one
 * token per cut, which is fine for an estimate.
 *
 * A chunk closes at the first certain boundary once it holds `chunkChars` characters: 1 (the
 * default) gives about one word per chunk.
 */
export const MAX_RUN = 128;

const SPACE = 0x20;

export function splitForEncoding(text: string, chunkChars = 1, maxRun = MAX_RUN): string[] {
  // Three bytes per code unit at most, so a text this short can hold no over-long run.
  if (text.length <= Math.min(chunkChars, maxRun / 3)) return [text];
  const chunks: string[] = [];
  let start = 0;
  let runBytes = text.charCodeAt(0) < 0x80 ? 1 : 3;
  for (let i = 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (isSafeCut(text.charCodeAt(i - 1), code)) {
      runBytes = 0;
      if (i - start >= chunkChars) {
        chunks.push(text.slice(start, i));
        start = i;
      }
    } else if (runBytes >= maxRun && !isLowSurrogate(code)) {
      chunks.push(text.slice(start, i));
      start = i;
      runBytes = 0;
    }
    runBytes += code < 0x80 ? 1 : 3;
  }
  chunks.push(text.slice(start));
  return chunks;
}

function isSafeCut(previous: number, current: number): boolean {
  if (current === SPACE) return !isWhitespace(previous);
  return isAsciiAlnum(previous) && isCuttablePunctuation(current);
}

function isAsciiAlnum(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

// Printable ASCII that is neither alphanumeric nor the apostrophe (o200k glues `'s`, `'re`...
// onto the preceding word).
function isCuttablePunctuation(code: number): boolean {
  return code >= 0x21 && code <= 0x7e && code !== 0x27 && !isAsciiAlnum(code);
}

// Unicode White_Space, as the tokenizer's `\s` sees it.
function isWhitespace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  if (code < 0x85) return false;
  return (
    code === 0x85 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000
  );
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
