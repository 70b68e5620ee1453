import { type Document, parse as parseYaml, visit } from "yaml";
import { formatFieldPath } from "../util/field-path.js";
import type { ConfigIssue } from "./load.js";

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}/g;

/**
 * A whole unquoted scalar that was one variable, as `port: ${PORT:-8787}`: its value is read as
 * YAML reads a plain scalar, so a number or a boolean keeps its type.
 */
export class TypedVariable {
  constructor(readonly source: string) {}
}

/**
 * Hides every `${...}` behind a token that is a plain scalar anywhere. The contract's own example
 * puts `${OPENAI_API_KEY}` unquoted inside a flow mapping, where `{` would end the scalar.
 */
export function maskVariables(text: string): { masked: string; unmask: (text: string) => string; restore: (doc: Document) => void } {
  let prefix = "__spark_var";
  while (text.includes(prefix)) prefix += "_";
  const sources: string[] = [];
  const masked = text.replace(VARIABLE, (match) => `${prefix}${sources.push(match) - 1}__`);
  const token = new RegExp(`${prefix}(\\d+)__`, "g");
  const whole = new RegExp(`^${prefix}(\\d+)__$`);
  const unmask = (value: string): string => value.replace(token, (_match, index: string) => sources[Number(index)] as string);
  return {
    masked,
    unmask,
    restore(doc) {
      if (sources.length === 0) return;
      visit(doc, {
        Scalar(key, node) {
          if (typeof node.value !== "string") return;
          const one = key === "key" ? null : whole.exec(node.value);
          node.value = one !== null && node.type === "PLAIN" ? new TypedVariable(sources[Number(one[1])] as string) : unmask(node.value);
        },
      });
    },
  };
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string scalar, mapping keys included (a model,
 * team or upstream may be named by one); collects unset variables, and keys that become another's, as issues.
 */
export function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: Array<string | number>, issues: ConfigIssue[]): unknown {
  if (typeof value === "string") return substitute(value, env, path, issues);
  if (value instanceof TypedVariable) return plainScalar(substitute(value.source, env, path, issues));
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, env, [...path, index], issues));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const name = key.includes("${") ? substitute(key, env, [...path, key], issues) : key;
      if (Object.hasOwn(out, name)) issues.push({ path: formatFieldPath([...path, key]), message: `the key is \`${name}\` once its variables are replaced, as another key of this mapping is` });
      out[name] = interpolate(item, env, [...path, name], issues);
    }
    return out;
  }
  return value;
}

function substitute(text: string, env: NodeJS.ProcessEnv, path: Array<string | number>, issues: ConfigIssue[]): string {
  return text.replace(VARIABLE, (_match, name: string, hasDefault: string | undefined, fallback: string | undefined) => {
    const found = env[name];
    if (found !== undefined && found !== "") return found;
    if (hasDefault !== undefined) return fallback ?? "";
    if (found !== undefined) return found;
    issues.push({ path: formatFieldPath(path), message: `environment variable \`${name}\` is not set` });
    return "";
  });
}

/** A number or boolean as YAML would read it unquoted; anything else (an empty value too) stays the text. */
function plainScalar(text: string): unknown {
  if (text.trim() === "") return text;
  try {
    const value: unknown = parseYaml(text);
    return typeof value === "number" || typeof value === "boolean" ? value : text;
  } catch {
    return text;
  }
}
