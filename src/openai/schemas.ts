import { z } from "zod";
import { GatewayError } from "../http/errors.js";
import type { CallAction } from "../policy/types.js";
import { formatFieldPath } from "../util/field-path.js";

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

const chatMessage = z.looseObject({ role: z.string() });

export const chatBodySchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(chatMessage),
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
  input: z.union([z.string(), z.array(z.unknown())]).optional(),
  instructions: z.string().nullable().optional(),
  stream: z.boolean().nullable().optional(),
  max_output_tokens: outputLimit,
  tools: z.array(z.looseObject({ type: z.string(), name: z.string().optional() })).nullable().optional(),
});

export const embeddingsBodySchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string()), z.array(z.number()), z.array(z.array(z.number()))]),
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
  const parsed = schemas[action].safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue === undefined ? null : formatFieldPath(issue.path);
    const message = issue === undefined ? "invalid body" : issue.message.toLowerCase();
    throw new GatewayError(400, "invalid_body", `invalid \`${param ?? "body"}\`: ${message}`, { param });
  }
  // The original object, not zod's copy: unknown fields and key order pass through as sent.
  return body as Record<string, unknown>;
}
