import { stringEnd } from "./json-text.js";

/**
 * A request body the gateway edited, as JSON text that keeps every member it did not edit exactly
 * as the client wrote it. `JSON.stringify` of the parsed body would round an integer past 2^53 (a
 * `seed`, an id in an unknown field) and rewrite every number and escape; here only the edited
 * top-level members are serialised again.
 */
export function spliceEdited(text: string, body: Record<string, unknown>, edited: ReadonlySet<string>): string {
  const parts: string[] = [];
  const written = new Set<string>();
  for (const member of topLevelMembers(text)) {
    if (!edited.has(member.key)) {
      parts.push(text.slice(member.start, member.end));
      continue;
    }
    // A key sent twice parsed to its last value; the edited value takes the first place, once.
    if (written.has(member.key)) continue;
    written.add(member.key);
    pushMember(parts, body, member.key);
  }
  for (const key of edited) if (!written.has(key)) pushMember(parts, body, key);
  return `{${parts.join(",")}}`;
}

function pushMember(parts: string[], body: Record<string, unknown>, key: string): void {
  const value = Object.hasOwn(body, key) ? body[key] : undefined;
  if (value !== undefined) parts.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
}

interface Member {
  key: string;
  /** The member's text, key through value: `text.slice(start, end)`. */
  start: number;
  end: number;
}

const SPACE = /[ \t\n\r]*/y;
const SCALAR_END = /[^,}\]\s]*/y;

/** The members of a JSON object text that `JSON.parse` accepted (so no syntax is checked here). */
function topLevelMembers(text: string): Member[] {
  const members: Member[] = [];
  let at = skipSpace(text, skipSpace(text, 0) + 1);
  while (text.charCodeAt(at) === 34) {
    const start = at;
    const keyEnd = stringEnd(text, at);
    const key = JSON.parse(text.slice(at, keyEnd)) as string;
    at = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const end = valueEnd(text, at);
    members.push({ key, start, end });
    at = skipSpace(text, end);
    if (text.charCodeAt(at) !== 44) break;
    at = skipSpace(text, at + 1);
  }
  return members;
}

function valueEnd(text: string, at: number): number {
  const c = text.charCodeAt(at);
  if (c === 34) return stringEnd(text, at);
  if (c !== 123 && c !== 91) return matchEnd(SCALAR_END, text, at);
  let depth = 0;
  let i = at;
  while (i < text.length) {
    const d = text.charCodeAt(i);
    if (d === 34) {
      i = stringEnd(text, i);
      continue;
    }
    if (d === 123 || d === 91) depth++;
    else if (d === 125 || d === 93) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return i;
}

function skipSpace(text: string, at: number): number {
  return matchEnd(SPACE, text, at);
}

function matchEnd(pattern: RegExp, text: string, at: number): number {
  pattern.lastIndex = at;
  return pattern.test(text) ? pattern.lastIndex : at;
}
