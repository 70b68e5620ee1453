import type { IncomingMessage } from "node:http";
import type { Config } from "../config/schema.js";

/** The session a request names in `sessions.header` (at most 256 characters), or null. */
export function sessionIdOf(incoming: IncomingMessage, config: Config): string | null {
  const header = incoming.headers[config.sessions.header];
  return typeof header === "string" && header !== "" ? header.slice(0, 256) : null;
}
