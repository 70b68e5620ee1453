/**
 * The JSON text some parsed values were read from. A call's tool definitions come back on every
 * call as the same text but as new objects; what is worked out from them (their token count) can be
 * found by that text instead of serialising the objects again. A value edited since (stripped tools)
 * is a new object, with no text here.
 */
const texts = new WeakMap<object, string>();

export function rememberRawJson(value: object, text: string): void {
  texts.set(value, text);
}

export function rawJsonOf(value: unknown): string | undefined {
  return typeof value === "object" && value !== null ? texts.get(value) : undefined;
}
