import { isRecord } from "../util/is-record.js";

type Json = Record<string, unknown>;

/** What a walk does with each piece of prompt text: returns it, or the text to put in its place. */
export interface PromptVisitor {
  /** Text the model reads as written. */
  text(text: string): string;
  /** JSON text (a tool call's arguments), whose escapes (`\u0040`) may hide what it says. */
  json(text: string): string;
}

/** Turns an embeddings input's token array into its text, or null when it cannot. */
export type TokenDecoder = (tokens: number[]) => string | null;

/**
 * Walks every piece of text a request sends the model, in this order, and puts back what the
 * visitor returns: chat messages (content strings and text parts, refusals, the arguments and
 * inputs of earlier tool calls, the author `name`, inline files of text), `prediction`; Responses `instructions` and
 * `input` (its items' content and output, tool calls' arguments, inputs and commands, shell
 * output, reasoning summaries), the `prompt` template's variables; the declared tools'
 * descriptions and parameter schemas; the schema of a structured answer (chat `response_format`,
 * Responses `text.format`); an embeddings `input` (token arrays through `decode`: read, never replaced).
 * Copy on write: an object whose text changes is replaced by a copy, the client's objects are left
 * as they are. Returns the body's top-level members that changed.
 */
export function walkPromptText(body: Json, visitor: PromptVisitor, decode?: TokenDecoder): string[] {
  let walk = walks.get(visitor);
  if (walk === undefined) {
    walk = new Walk(visitor);
    walks.set(visitor, walk);
  }
  walk.decode = decode;
  const changed: string[] = [];
  const rewrite = (name: string, next: unknown): void => {
    if (next === body[name]) return;
    body[name] = next;
    changed.push(name);
  };
  if (Array.isArray(body.messages)) rewrite("messages", walk.list(body.messages, walk.message));
  if (isRecord(body.prediction)) rewrite("prediction", walk.field(body.prediction, "content", walk.content));
  if (typeof body.instructions === "string") rewrite("instructions", visitor.text(body.instructions));
  if (typeof body.input === "string") rewrite("input", visitor.text(body.input));
  else if (Array.isArray(body.input)) {
    // One embeddings token array is one input; a list of them, or of strings, is several.
    if (body.input.length > 0 && body.input.every(Number.isInteger)) walk.tokens(body.input);
    else rewrite("input", walk.list(body.input, walk.inputItem));
  }
  if (isRecord(body.prompt) && isRecord(body.prompt.variables)) rewrite("prompt", walk.field(body.prompt, "variables", walk.variables));
  if (Array.isArray(body.tools)) rewrite("tools", walk.list(body.tools, walk.tool));
  if (Array.isArray(body.functions)) rewrite("functions", walk.list(body.functions, walk.tool));
  if (isRecord(body.response_format)) rewrite("response_format", walk.field(body.response_format, "json_schema", walk.described));
  if (isRecord(body.text)) rewrite("text", walk.field(body.text, "format", walk.described));
  return changed;
}

/** One walker per visitor, its rewrites made once: a walk runs on every governed call. */
const walks = new WeakMap<PromptVisitor, Walk>();

type Rewrite = (value: unknown) => unknown;

class Walk {
  /** The current walk's token decoder (walks are synchronous, one at a time). */
  decode: TokenDecoder | undefined = undefined;

  constructor(private readonly visitor: PromptVisitor) {}

  /** The list, or a copy with the items `rewrite` changed. */
  list(list: unknown[], rewrite: Rewrite): unknown[] {
    let out: unknown[] | null = null;
    for (let i = 0; i < list.length; i++) {
      const next = rewrite(list[i]);
      if (next !== list[i]) {
        out ??= list.slice();
        out[i] = next;
      }
    }
    return out ?? list;
  }

  /** The record, or a copy with `record[name]` as `rewrite` changed it. */
  field(record: Json, name: string, rewrite: Rewrite): Json {
    const value = record[name];
    if (value === undefined || value === null) return record;
    const next = rewrite(value);
    return next === value ? record : { ...record, [name]: next };
  }

  readonly text = (value: unknown): unknown => (typeof value === "string" ? this.visitor.text(value) : value);

  /**
   * Arguments as JSON text; arguments sent as an object (a lenient upstream reads those too) are read
   * as their JSON text, and put back as an object where rewritten.
   */
  readonly json = (value: unknown): unknown => {
    if (typeof value === "string") return this.visitor.json(value);
    if (value === null || typeof value !== "object") return value;
    const text = JSON.stringify(value);
    const seen = this.visitor.json(text);
    if (seen === text) return value;
    try {
      return JSON.parse(seen);
    } catch {
      return seen;
    }
  };

  readonly texts = (value: unknown): unknown => (Array.isArray(value) ? this.list(value, this.text) : value);

  /**
   * A content string, or its parts' text (and refusals, and shell output's streams). Text parts are
   * also read joined, as the model reads them: `forbid` + `den phrase`, or an address cut in two,
   * must not pass where one part would not. The parts are joined as each was rewritten (a redaction
   * keeps what it masked in each: joined raw, an address at a part's end runs into the next part's
   * first word and is no longer found); where the joined text is rewritten further, the text parts
   * become one part holding it.
   */
  readonly content = (content: unknown): unknown => {
    if (typeof content === "string") return this.visitor.text(content);
    if (!Array.isArray(content)) return content;
    const out = this.list(content, this.part);
    const joined = joinedText(out);
    if (joined === null) return out;
    const seen = this.visitor.text(joined);
    return seen === joined ? out : withTextMerged(out, seen);
  };

  readonly part = (part: unknown): unknown => {
    if (!isRecord(part)) return part;
    let out = part;
    for (const name of PART_TEXTS) out = this.field(out, name, this.text);
    // A file sent inline: chat's `file` part holds it in `file`, a Responses `input_file` part itself.
    if (part.type === "file") return this.field(out, "file", this.file);
    return part.type === "input_file" ? this.file(out) : out;
  };

  /** An inline file whose data is text (a text type, or a text file's name): the model reads that text. */
  readonly file = (file: unknown): unknown => {
    if (!isRecord(file) || typeof file.file_data !== "string") return file;
    const inline = inlineText(file.file_data, typeof file.filename === "string" ? file.filename : "");
    if (inline === null) return file;
    const seen = this.visitor.text(inline.text);
    return seen === inline.text ? file : { ...file, file_data: inline.encode(seen) };
  };

  readonly calls = (calls: unknown): unknown => (Array.isArray(calls) ? this.list(calls, this.toolCall) : calls);

  readonly functionCall = (call: unknown): unknown => (isRecord(call) ? this.field(call, "arguments", this.json) : call);

  /** A built-in call's action or operation: its commands, a search's query, a patch's diff. */
  readonly action = (action: unknown): unknown => {
    if (!isRecord(action)) return action;
    let out = this.field(this.field(this.field(action, "command", this.texts), "commands", this.texts), "queries", this.texts);
    for (const name of ACTION_TEXTS) out = this.field(out, name, this.text);
    return out;
  };

  /** A built-in call's results or outputs: each one's text or logs. */
  readonly builtInOutputs = (value: unknown): unknown =>
    Array.isArray(value) ? this.list(value, (item) => (isRecord(item) ? this.field(this.field(item, "text", this.text), "logs", this.text) : item)) : value;

  readonly variable = (value: unknown): unknown => (isRecord(value) ? this.field(value, "text", this.text) : this.text(value));

  /** Something with a description and a JSON schema: a function, a structured answer's format. */
  readonly described = (holder: unknown): unknown => {
    if (!isRecord(holder)) return holder;
    const out = this.field(this.field(holder, "description", this.text), "parameters", this.schema);
    return this.field(out, "schema", this.schema);
  };

  /**
   * A JSON schema: the model reads its descriptions, titles and example values, at any depth, and
   * the names of its properties (read, never rewritten: a renamed property would break the schema).
   */
  readonly schema = (schema: unknown): unknown => {
    if (Array.isArray(schema)) return this.list(schema, this.schema);
    if (!isRecord(schema)) return schema;
    for (const holder of NAMED_SCHEMAS) {
      const named = schema[holder];
      if (isRecord(named)) for (const name of Object.keys(named)) this.visitor.text(name);
    }
    let out = schema;
    for (const name of Object.keys(schema)) {
      if (SCHEMA_TEXTS.has(name)) out = this.field(out, name, this.schemaText);
      else if (typeof schema[name] === "object") out = this.field(out, name, this.schema);
    }
    return out;
  };

  /** A schema's text member; a member so named that holds a schema (a property called `title`) is walked as one. */
  readonly schemaText = (value: unknown): unknown => {
    if (typeof value === "string") return this.visitor.text(value);
    if (Array.isArray(value)) return this.list(value, this.schemaText);
    return isRecord(value) ? this.schema(value) : value;
  };

  readonly tools = (tools: unknown): unknown => (Array.isArray(tools) ? this.list(tools, this.tool) : tools);

  readonly toolCall = (call: unknown): unknown => {
    if (!isRecord(call)) return call;
    let out = call;
    if (isRecord(call.function)) out = { ...out, function: this.field(call.function, "arguments", this.json) };
    if (isRecord(call.custom)) out = { ...out, custom: this.field(call.custom, "input", this.text) };
    return out.function === call.function && out.custom === call.custom ? call : out;
  };

  readonly message = (message: unknown): unknown => {
    if (!isRecord(message)) return message;
    let out = this.field(message, "content", this.content);
    out = this.field(out, "refusal", this.text);
    out = this.field(out, "function_call", this.functionCall);
    out = this.field(out, "tool_calls", this.calls);
    return this.field(out, "name", this.text);
  };

  /** A Responses input item: content, output, a tool call's arguments, input and commands, a reasoning summary; an embeddings input. */
  readonly inputItem = (item: unknown): unknown => {
    if (typeof item === "string") return this.visitor.text(item);
    if (Array.isArray(item)) {
      if (item.every(Number.isInteger)) this.tokens(item);
      return item;
    }
    if (!isRecord(item)) return item;
    let out = this.field(item, "content", this.content);
    out = this.field(out, "output", this.content);
    out = this.field(out, "arguments", this.json);
    out = this.field(out, "input", this.text);
    out = this.field(out, "summary", this.content);
    out = this.field(out, "operation", this.action);
    // A built-in call the upstream ran in an earlier turn, as sent back: a file search's queries and
    // results, the code an interpreter ran and the logs it printed.
    out = this.field(out, "queries", this.texts);
    out = this.field(out, "code", this.text);
    out = this.field(out, "results", this.builtInOutputs);
    out = this.field(out, "outputs", this.builtInOutputs);
    // An MCP server's tool list, as an earlier turn got it: the model reads their descriptions and schemas.
    out = this.field(out, "tools", this.tools);
    return this.field(out, "action", this.action);
  };

  /** An embeddings token array: its text is read; the tokens go on as sent (nothing re-encodes them). */
  tokens(tokens: unknown[]): void {
    const text = this.decode === undefined ? null : this.decode(tokens as number[]);
    if (text !== null) this.visitor.text(text);
  }

  /** A prompt template's variables: strings and text parts. */
  readonly variables = (variables: unknown): unknown => {
    if (!isRecord(variables)) return variables;
    let out = variables;
    for (const name of Object.keys(variables)) out = this.field(out, name, this.variable);
    return out;
  };

  /** A declared tool's description and parameters, which the model reads (chat's inside `function` or `custom`; a namespace's tools' too). */
  readonly tool = (tool: unknown): unknown => {
    if (!isRecord(tool)) return tool;
    let out = this.described(tool) as Json;
    // An MCP tool's server description, and an MCP server's listed tool's input schema.
    out = this.field(out, "server_description", this.text);
    out = this.field(out, "input_schema", this.schema);
    out = this.field(out, "function", this.described);
    out = this.field(out, "custom", this.described);
    return tool.type === "namespace" ? this.field(out, "tools", this.tools) : out;
  };
}

/** Media types whose data is text. */
const TEXT_TYPE = /^(?:text\/|application\/(?:[\w.-]+\+)?(?:json|xml|yaml|x-yaml|csv|javascript|x-ndjson|sql|x-sh)\b)/i;

/** File names of text files, for data sent without a text type (raw base64, `application/octet-stream`). */
const TEXT_FILE = /\.(?:txt|md|markdown|csv|tsv|json|jsonl|ndjson|xml|ya?ml|html?|log|ini|toml|sql|sh|py|js|ts|java|c|h|cpp|go|rs|rb)$/i;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The text of an inline file's data: a data URL (`data:text/plain;base64,…`, or percent-encoded) of a
 * text type, or any data of a file named as a text file, raw base64 included. Null for binary data (a
 * PDF, an image), which the gateway cannot read. `encode` writes a rewritten text back the same way.
 */
function inlineText(data: string, filename: string): { text: string; encode: (text: string) => string } | null {
  const textFile = TEXT_FILE.test(filename);
  let header = "";
  let payload = data;
  let base64 = true;
  if (data.startsWith("data:")) {
    const comma = data.indexOf(",");
    if (comma === -1) return null;
    header = data.slice(0, comma + 1);
    payload = data.slice(comma + 1);
    const params = header.slice(5, -1).split(";");
    base64 = params.includes("base64");
    if (!TEXT_TYPE.test(params[0] ?? "") && !textFile) return null;
  } else if (!textFile) return null;
  try {
    if (!base64) {
      const text = decodeURIComponent(payload);
      return { text, encode: (next) => header + encodeURIComponent(next) };
    }
    const charset = /;\s*charset=([^;,]+)/i.exec(header)?.[1]?.trim().toLowerCase() ?? null;
    const { text, encoding, bom } = decodeText(Buffer.from(payload, "base64"), charset);
    return { text, encode: (next) => header + Buffer.concat([bom, Buffer.from(next, encoding)]).toString("base64") };
  } catch {
    return null;
  }
}

/**
 * A text file's bytes read as text: in its declared charset, else UTF-16 after its byte order mark,
 * else UTF-8 where they are valid UTF-8, else Latin-1 (every byte a character): a file in an older
 * encoding is still read, not skipped. `encoding` and `bom` write a rewritten text back the same way.
 */
function decodeText(bytes: Buffer, charset: string | null): { text: string; encoding: "utf8" | "latin1" | "utf16le"; bom: Buffer } {
  const none = bytes.subarray(0, 0);
  const latin1 = () => ({ text: bytes.toString("latin1"), encoding: "latin1" as const, bom: none });
  if (charset !== null && /^(?:iso-?8859-1|latin-?1|us-ascii|ascii|windows-1252|cp1252)$/.test(charset)) return latin1();
  const marked = bytes[0] === 0xff && bytes[1] === 0xfe;
  if (marked || (charset !== null && /^utf-?16(?:le)?$/.test(charset))) {
    const bom = bytes.subarray(0, marked ? 2 : 0);
    return { text: bytes.subarray(bom.length).toString("utf16le"), encoding: "utf16le", bom };
  }
  try {
    return { text: strictUtf8.decode(bytes), encoding: "utf8", bom: none };
  } catch {
    return latin1();
  }
}

/** The members of a JSON schema that map names the model reads to schemas. */
const NAMED_SCHEMAS = ["properties", "patternProperties", "$defs", "definitions"];

/** The members of a JSON schema whose text the model reads. */
const SCHEMA_TEXTS = new Set(["description", "title", "enum", "const", "default", "examples", "pattern"]);

/** The text members of a built-in call's action or operation: a search's query, a patch's diff, a page's URL. */
const ACTION_TEXTS = ["query", "diff", "url", "pattern", "text"];

/** The members of a content part that hold text: text, a refusal, a shell command's output streams. */
const PART_TEXTS = ["text", "refusal", "stdout", "stderr"];

/** The `text` of a content's text parts joined with nothing between them, or null with fewer than two. */
function joinedText(parts: readonly unknown[]): string | null {
  let count = 0;
  let joined = "";
  for (const part of parts) {
    if (isRecord(part) && typeof part.text === "string") {
      count++;
      joined += part.text;
    }
  }
  return count < 2 ? null : joined;
}

/** The parts with every text part replaced by one holding `text`, where the first of them was. */
function withTextMerged(parts: readonly unknown[], text: string): unknown[] {
  const out: unknown[] = [];
  let merged = false;
  for (const part of parts) {
    if (!isRecord(part) || typeof part.text !== "string") out.push(part);
    else if (!merged) {
      out.push({ ...part, text });
      merged = true;
    }
  }
  return out;
}
