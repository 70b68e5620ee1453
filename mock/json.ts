// Narrowing helpers: request bodies are untrusted `unknown`, and strict mode forbids `any`.

export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function field(v: unknown, key: string): unknown {
  return isObject(v) ? v[key] : undefined;
}

export function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** Text of an OpenAI content value: a string or an array of parts carrying `text`. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  const texts: string[] = [];
  for (const part of arr(content)) {
    const t = str(field(part, "text"));
    if (t !== undefined) texts.push(t);
  }
  return texts.join("\n");
}
