import { z } from "zod";
import { GatewayError } from "../http/errors.js";
import type { CallAction } from "../policy/types.js";
import { formatFieldPath } from "../util/field-path.js";
import { isRecord } from "../util/is-record.js";

/**
 * Loose shapes of the fields the gateway reads; every other field passes through untouched.
 * Only what governance depends on is checked, so a new OpenAI field never breaks a client.
 */
const outputLimit = z.number().int().nonnegative().nullable().optional();

const functionTool = z.looseObject({
  type: z.string(),
  function: z.looseObject({ name: z.string() }).optional(),
  name: z.string().optional(),
});

/** A content part; its `text`, where it has one, is prompt text the rules read, so it must be a string. */
const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const content = z.union([z.string(), z.array(contentPart)], { error: "expected a string, null or an array of content parts" }).nullable().optional();
const chatMessage = z.looseObject({ role: z.string(), content });
/** Responses input items: messages (their content checked as a chat message's) or other items; apart, so an error names the item. */
const inputItems = z.array(z.looseObject({ content }));

export const chatBodySchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(chatMessage).min(1, "expected at least one message"),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullable().optional() }).nullable().optional(),
  max_tokens: outputLimit,
  max_completion_tokens: outputLimit,
  tools: z.array(functionTool).nullable().optional(),
  functions: z.array(z.looseObject({ name: z.string() })).nullable().optional(),
  n: z.number().int().positive().nullable().optional(),
});

export const responsesBodySchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.unknown())], { error: "expected a string or an array of input items" }).optional(),
  instructions: z.string().nullable().optional(),
  stream: z.boolean().nullable().optional(),
  max_output_tokens: outputLimit,
  tools: z.array(z.looseObject({ type: z.string(), name: z.string().optional() })).nullable().optional(),
  // A background response is produced after the call returns: no rule would judge its tool calls, no budget be charged its cost.
  background: z
    .literal(false, { error: "background responses are not served: the gateway must read the answer to judge its tool calls and charge its cost" })
    .nullable()
    .optional(),
});

/** A token array: token ids are whole numbers from zero, and an input has at least one. */
const tokenArray = z.array(z.number().int().nonnegative()).min(1);

export const embeddingsBodySchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string()).min(1), tokenArray, z.array(tokenArray).min(1)], {
    error: "expected a string, or a non-empty array of strings or of token arrays (non-empty, of whole numbers from 0)",
  }),
});

export type ChatBody = z.infer<typeof chatBodySchema>;
export type ResponsesBody = z.infer<typeof responsesBodySchema>;
export type EmbeddingsBody = z.infer<typeof embeddingsBodySchema>;

const schemas = {
  "chat.completions": chatBodySchema,
  responses: responsesBodySchema,
  embeddings: embeddingsBodySchema,
} as const;


/** Checks the body's shape for an action; a wrong shape is `invalid_body` naming the first bad field. */
export function validateBody(action: CallAction, body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new GatewayError(400, "invalid_body", "the request body must be a JSON object");
  }
  if (action === "chat.completions" && isPlainChatBody(body as Record<string, unknown>)) return body as Record<string, unknown>;
  const fields = body as Record<string, unknown>;
  check(schemas[action], fields, []);
  if (action === "responses" && Array.isArray(fields.input)) check(inputItems, fields.input, ["input"]);
  // The original object, not zod's copy: unknown fields and key order pass through as sent.
  return fields;
}

/** Parses `value` at `path` in the body; a wrong shape is `invalid_body` naming the first bad field. */
function check(schema: z.ZodType, value: unknown, path: PropertyKey[]): void {
  const parsed = schema.safeParse(value);
  if (parsed.success) return;
  const issue = parsed.error.issues[0];
  const param = issue === undefined ? null : formatFieldPath([...path, ...issue.path]);
  const message = issue === undefined ? "invalid body" : issue.message.toLowerCase();
  throw new GatewayError(400, "invalid_body", `invalid \`${param ?? "body"}\`: ${message}`, { param });
}

type Fields = Record<string, unknown>;

const absent = (value: unknown): boolean => value === undefined || value === null;
const isContent = (value: unknown): boolean =>
  absent(value) ||
  typeof value === "string" ||
  (Array.isArray(value) && value.every((part) => isRecord(part) && typeof part.type === "string" && (part.text === undefined || typeof part.text === "string")));
const isOutputLimit = (value: unknown): boolean => absent(value) || (Number.isSafeInteger(value) && (value as number) >= 0);

/**
 * A chat body `chatBodySchema` certainly accepts, checked without zod's copy of every message:
 * stricter than the schema where that is simpler (safe integers only), never looser, so a body it
 * refuses is still judged, and its error worded, by the schema.
 */
export function isPlainChatBody(body: Fields): boolean {
  if (typeof body.model !== "string" || body.model === "" || !Array.isArray(body.messages) || body.messages.length === 0) return false;
  for (const message of body.messages) if (!isRecord(message) || typeof message.role !== "string" || !isContent(message.content)) return false;
  if (!absent(body.stream) && typeof body.stream !== "boolean") return false;
  const options = body.stream_options;
  if (!absent(options) && (!isRecord(options) || (!absent(options.include_usage) && typeof options.include_usage !== "boolean"))) return false;
  if (!isOutputLimit(body.max_tokens) || !isOutputLimit(body.max_completion_tokens)) return false;
  if (!absent(body.n) && !(Number.isSafeInteger(body.n) && (body.n as number) > 0)) return false;
  if (!absent(body.tools)) {
    if (!Array.isArray(body.tools)) return false;
    for (const tool of body.tools) {
      if (!isRecord(tool) || typeof tool.type !== "string") return false;
      if (tool.function !== undefined && (!isRecord(tool.function) || typeof tool.function.name !== "string")) return false;
      if (tool.name !== undefined && typeof tool.name !== "string") return false;
    }
  }
  if (!absent(body.functions)) {
    if (!Array.isArray(body.functions)) return false;
    for (const fn of body.functions) if (!isRecord(fn) || typeof fn.name !== "string") return false;
  }
  return true;
}
