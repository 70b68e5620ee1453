import type { HandlerContext } from "./types.js";

/** What the generic request pipeline needs to know about a body before answering. */
export interface Inspection {
  /** Text of the last user message; directives are read from here. */
  lastUserText: string;
  /** Characters counted for prompt_tokens. */
  promptChars: number;
  stream: boolean;
}

export interface Route {
  inspect(body: unknown): Inspection;
  handle(ctx: HandlerContext, info: Inspection): void;
}
