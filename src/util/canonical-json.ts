import { hash } from "node:crypto";

/**
 * Canonical JSON: the bytes of an approval's body hash. Keys are sorted recursively (by UTF-16 code
 * units, as `Array.prototype.sort` does) and values follow `JSON.stringify` exactly (toJSON,
 * undefined members dropped, undefined/functions in arrays -> null, non-finite numbers -> null), so
 * the same body hashes the same whatever the key order the client sent it in.
 */
export function canonicalJson(value: unknown): string {
  return serialise(value) ?? "null";
}

function serialise(value: unknown): string | undefined {
  if (value !== null && typeof value === "object" && typeof (value as { toJSON?: unknown }).toJSON === "function") {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
      return JSON.stringify(value);
    case "bigint":
      // JSON.stringify throws here too; a record must never carry one.
      throw new TypeError("cannot serialise a bigint in an audit record");
    case "object": {
      if (Array.isArray(value)) {
        return `[${value.map((item) => serialise(item) ?? "null").join(",")}]`;
      }
      const entries: string[] = [];
      const source = value as Record<string, unknown>;
      for (const key of Object.keys(source).sort()) {
        const item = serialise(source[key]);
        if (item !== undefined) entries.push(`${JSON.stringify(key)}:${item}`);
      }
      return `{${entries.join(",")}}`;
    }
    default:
      return undefined;
  }
}

export function sha256Hex(text: string | Buffer): string {
  return hash("sha256", text, "hex");
}
