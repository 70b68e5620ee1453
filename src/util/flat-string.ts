/**
 * Makes V8 keep `text` as one sequential string. A string built by `+` is a tree of its pieces, and
 * a `slice` of 13 characters or more points into the string it was cut from, keeping all of it
 * alive; reading one character flattens the tree in place (V8 copies it once and drops the pieces).
 */
export function flatten(text: string): string {
  text.charCodeAt(0);
  return text;
}
