/** The paths the gateway itself serves and governs. */
export const GOVERNED_PATHS: ReadonlySet<string> = new Set(["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/models"]);

/**
 * Never relayed by passthrough: the governed paths and what is under them (a stored chat completion
 * or response, read back by id, would return an answer the gateway refused or never saw), and stored
 * conversations.
 */
const CLOSED_TREES = [...GOVERNED_PATHS, "/v1/conversations"];

/**
 * A path as a lenient upstream may read it: percent-escapes decoded, lower case, `;parameters` and
 * trailing dots dropped from each segment, without empty segments or a trailing slash.
 */
export function canonicalPath(path: string): string {
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // A malformed escape: read as written.
  }
  const segments = decoded
    .toLowerCase()
    .split("/")
    .map((segment) => segment.replace(/;.*$/, "").replace(/[.\s]+$/, ""))
    .filter((segment) => segment !== "");
  return `/${segments.join("/")}`;
}

/** The path, however written, is a governed path or lies under one (or under stored conversations). */
export function isClosedToPassthrough(path: string): boolean {
  const canonical = canonicalPath(path);
  return CLOSED_TREES.some((tree) => canonical === tree || canonical.startsWith(`${tree}/`));
}
