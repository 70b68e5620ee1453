import { z } from "zod";

export type QueryParams = URLSearchParams | Readonly<Record<string, string | undefined>>;

export type ParsedParams<T> = { ok: true; data: T } | { ok: false; param: string | null; message: string };

/**
 * Parameters as a record; a repeated one keeps its first value. The record has no prototype: on a
 * plain object, `__proto__` would set the prototype rather than a key, and the parameter would
 * vanish instead of being refused by name like every other unknown one.
 */
export function paramRecord(entries: Iterable<readonly [string, string]>): Record<string, string> {
  const params = Object.create(null) as Record<string, string>;
  for (const [name, value] of entries) if (!Object.hasOwn(params, name)) params[name] = value;
  return params;
}

/**
 * Parses query-string parameters with a strict object schema. Empty values count as absent
 * (`?user=&model=gpt-4o`); an unknown parameter is refused by name, listing the known ones, so a
 * typo does not silently widen a search.
 */
export function parseParams<S extends z.ZodObject>(schema: S, params: QueryParams, noun: string): ParsedParams<z.output<S>> {
  const entries = params instanceof URLSearchParams ? [...params.entries()] : Object.entries(params);
  // A known parameter left empty is as if absent; an unknown one, empty or not, is named below.
  const known = schema.shape as Record<string, unknown>;
  const present = Object.fromEntries(entries.filter(([name, value]) => value !== undefined && (value !== "" || !Object.hasOwn(known, name))));
  const parsed = schema.safeParse(present);
  if (parsed.success) return { ok: true, data: parsed.data };
  const issue = parsed.error.issues[0];
  if (issue?.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    const names = Object.keys(known);
    return { ok: false, param: key, message: `\`${key}\` is not a ${noun}; ${names.length === 0 ? `this route takes no ${noun}` : `the ${noun}s are ${names.join(", ")}`}` };
  }
  const param = issue?.path[0];
  const name = typeof param === "string" ? param : null;
  const message = issue === undefined ? "invalid query" : `${name === null ? "" : `\`${name}\` `}${issue.message}`.trim();
  return { ok: false, param: name, message };
}

/** A whole number as a query writes it, in decimal digits: `1e2`, `0x10` or ` 5` are not one. */
export function wholeNumberParam(min: number, max: number) {
  return z
    .string()
    .regex(/^\d{1,15}$/, "must be a whole number in decimal digits")
    .transform(Number)
    .pipe(z.number().min(min).max(max));
}

/** An amount as a query writes it: decimal digits with an optional fraction (`0.25`). */
export const amountParam = z
  .string()
  .regex(/^\d{1,15}(\.\d{1,15})?$/, "must be a decimal number such as 0.25")
  .transform(Number);
