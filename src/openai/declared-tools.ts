import { GatewayError } from "../http/errors.js";
import type { CallAction } from "../policy/types.js";
import { formatFieldPath } from "../util/field-path.js";
import { isRecord } from "../util/is-record.js";

/** Chat names a function in `function.name` (a custom tool in `custom.name`); Responses in `name`. */
export type ToolDialect = "chat" | "responses";

export const dialectOf = (action: CallAction): ToolDialect => (action === "responses" ? "responses" : "chat");

/** A built-in tool's dated variant (`web_search_preview_2025_03_11`) is governed by its base name too. */
const DATED = /_\d{4}_\d{2}_\d{2}$/;

/**
 * A declared tool's name, read where the upstream reads it for the tool's `type`, never from a
 * member the upstream ignores (a Responses function's `function.name`, a web search's `name`): a
 * function or custom tool by its name, a legacy `functions` entry (no type) by `name`, a built-in
 * tool (`web_search`, `file_search`, `mcp`...) by its type. Null when a function or custom tool has none.
 */
export function toolName(tool: unknown, dialect: ToolDialect): string | null {
  if (!isRecord(tool)) return null;
  const { type } = tool;
  if (type === undefined) return nameOf(tool.name);
  if (typeof type !== "string") return null;
  if (type === "function" || type === "custom") {
    const holder = dialect === "chat" ? tool[type] : tool;
    return isRecord(holder) ? nameOf(holder.name) : null;
  }
  return type.replace(DATED, "");
}

/** An empty name names nothing a rule could match (and OpenAI refuses it). */
const nameOf = (value: unknown): string | null => (typeof value === "string" && value !== "" ? value : null);

/**
 * Every name a declared tool goes by: `toolName`, then the names it also carries (`name`,
 * `function.name`, `custom.name`) and a built-in tool's dated type. An upstream that takes an
 * unknown type (`"Function"`) may read any of them, and a lenient framework a function's flat
 * `name` where chat has it in `function.name`: each is judged and a DENY of any refuses the tool.
 * Null when `toolName` is.
 */
export function toolNames(tool: unknown, dialect: ToolDialect): string[] | null {
  const name = toolName(tool, dialect);
  if (name === null || !isRecord(tool) || tool.type === undefined) return name === null ? null : [name];
  const names = [name];
  const dated = tool.type === "function" || tool.type === "custom" ? undefined : tool.type;
  for (const carried of [dated, tool.name, isRecord(tool.function) ? tool.function.name : undefined, isRecord(tool.custom) ? tool.custom.name : undefined]) {
    if (typeof carried === "string" && !names.includes(carried)) names.push(carried);
  }
  return names;
}

type Path = (string | number)[];

/** Sees one declared tool; false drops it from its list. */
export type ToolVisitor = (name: string, path: Path) => boolean;

/**
 * Visits every tool a request declares, in order: chat's `tools` and legacy `functions`; Responses'
 * `tools`, the tools an `additional_tools` or `tool_search_output` input item adds, and the tools
 * inside each `namespace`. Tools the visitor drops leave their list (a namespace left with none
 * goes too). Returns the top-level members it changed. A function or custom tool without a name is
 * `invalid_body`: nothing could govern it.
 */
export function visitDeclaredTools(action: CallAction, body: Record<string, unknown>, visit: ToolVisitor): string[] {
  if (action === "embeddings") return [];
  const dialect = dialectOf(action);
  const edited: string[] = [];
  const fields = dialect === "chat" ? ["tools", "functions"] : ["tools"];
  for (const field of fields) {
    if (visitList(body, field, [field], dialect, visit)) edited.push(field);
  }
  if (dialect === "responses" && Array.isArray(body.input)) {
    let changed = false;
    body.input.forEach((item, i) => {
      if (isRecord(item) && (item.type === "additional_tools" || item.type === "tool_search_output")) {
        changed = visitList(item, "tools", ["input", i, "tools"], dialect, visit) || changed;
      }
    });
    if (changed) edited.push("input");
  }
  return edited;
}

/** Visits `owner[field]` when it is a list of tools; true when some were dropped from it or from a namespace in it. */
function visitList(owner: Record<string, unknown>, field: string, path: Path, dialect: ToolDialect, visit: ToolVisitor): boolean {
  const list = owner[field];
  if (!Array.isArray(list)) return false;
  const kept: unknown[] = [];
  let changed = false;
  list.forEach((tool, i) => {
    if (dialect === "responses" && isRecord(tool) && tool.type === "namespace") {
      const before = Array.isArray(tool.tools) ? tool.tools.length : 0;
      changed = visitList(tool, "tools", [...path, i, "tools"], dialect, visit) || changed;
      if (before === 0 || (tool.tools as unknown[]).length > 0) kept.push(tool);
      return;
    }
    const names = toolNames(tool, dialect);
    if (names === null) throw unnamed([...path, i], tool, dialect);
    let keep = true;
    for (const name of names) keep = visit(name, [...path, i]) && keep;
    if (keep) kept.push(tool);
  });
  if (kept.length === list.length && !changed) return false;
  // A new list wherever anything in it changed (a namespace's own list included): what was worked
  // out from the list as sent (its token count, by its text) must not stand for the edited one.
  owner[field] = kept;
  return true;
}

/** A tool `toolName` cannot name: the error points at its `type` when that is not a string, else at where its name belongs. */
function unnamed(path: Path, tool: unknown, dialect: ToolDialect): GatewayError {
  const type = isRecord(tool) ? tool.type : undefined;
  const nameHolder = dialect === "chat" && (type === "function" || type === "custom") ? [type] : [];
  const at = type === undefined || typeof type === "string" ? [...path, ...nameHolder, "name"] : [...path, "type"];
  const param = formatFieldPath(at);
  return new GatewayError(400, "invalid_body", `invalid \`${param}\`: every declared tool needs a non-empty name (a built-in tool, its type)`, { param });
}

/** The names of the tools a request declares, in `visitDeclaredTools`' order. */
export function declaredToolNames(action: CallAction, body: Record<string, unknown>): string[] {
  const names: string[] = [];
  visitDeclaredTools(action, body, (name) => {
    names.push(name);
    return true;
  });
  return names;
}
