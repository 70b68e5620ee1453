import { INVISIBLE } from "./invisible.js";

const ALREADY_LOOSE = /^[a-z0-9_.:-]*$/;

/**
 * A tool name as a lenient agent framework may match it: NFKC, without invisible characters or
 * surrounding space, in lower case. `Execute_Code`, `execute\u200b_code` and ` execute_code ` are
 * all `execute_code`; a tool is judged under this form too where it differs.
 */
export function looseToolName(name: string): string {
  // Most names are already loose: lower-case ASCII without spaces is its own NFKC form.
  if (ALREADY_LOOSE.test(name)) return name;
  return name.normalize("NFKC").replace(INVISIBLE, "").trim().toLowerCase();
}

/** The names, and the loose form of each that differs, without repeats. */
export function withLooseNames(names: readonly string[]): string[] {
  const all = [...names];
  for (const name of names) {
    const loose = looseToolName(name);
    if (!all.includes(loose)) all.push(loose);
  }
  return all;
}
