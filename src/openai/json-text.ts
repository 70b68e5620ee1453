/**
 * The end of the JSON string whose opening quote is at `at`: just past the first `"` after it not
 * escaped by an odd run of `\`, or the text's length where the string never closes.
 */
export function stringEnd(text: string, at: number): number {
  let quote = text.indexOf('"', at + 1);
  while (quote !== -1) {
    let slashes = 0;
    while (text.charCodeAt(quote - 1 - slashes) === 92) slashes++;
    if (slashes % 2 === 0) return quote + 1;
    quote = text.indexOf('"', quote + 1);
  }
  return text.length;
}
