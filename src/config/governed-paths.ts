/** The paths the gateway itself serves and governs. */
export const GOVERNED_PATHS: ReadonlySet<string> = new Set(["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/models"]);

/**
 * Never relayed by passthrough: the governed paths and what is under them (a stored chat completion
 * or response, read back by id, would return an answer the gateway refused or never saw), and stored
 * conversations.
 */
const CLOSED_TREES = [...GOVERNED_PATHS, "/v1/conversations"];

/**
 * A path as a lenient upstream (or a proxy before it) may read it: percent-escapes decoded, twice
 * over included, lower case, `;parameters` dropped from each segment, `.` and `..` segments resolved
 * (`/v1/files/..;/responses` is `/v1/responses`), trailing dots dropped, without empty segments or a
 * trailing slash.
 */
export function canonicalPath(path: string): string {
  let decoded = path;
  for (let round = 0; round < 3 && decoded.includes("%"); round++) {
    try {
      decoded = decodeURIComponent(decoded);
    } catch {
      // A malformed escape: read as written.
      break;
    }
  }
  const segments: string[] = [];
  for (const raw of decoded.toLowerCase().split("/")) {
    const segment = raw.replace(/;.*$/, "").trim();
    if (segment === "..") segments.pop();
    else if (segment !== "." && segment !== "") {
      const undotted = segment.replace(/\.+$/, "");
      if (undotted !== "") segments.push(undotted);
    }
  }
  return `/${segments.join("/")}`;
}

/** A canonical path is `prefix` or lies under it. */
export function isUnder(canonical: string, prefix: string): boolean {
  return canonical === prefix || canonical.startsWith(prefix === "/" ? "/" : `${prefix}/`);
}

/** The path, however written (`canonical`: its `canonicalPath`), is a governed path or lies under one (or under stored conversations). */
export function isClosedToPassthrough(path: string, canonical: string = canonicalPath(path)): boolean {
  // A suffix some frameworks strip or route on (`.json`, `:verb`) does not make it another endpoint.
  return CLOSED_TREES.some((tree) => canonical === tree || (canonical.startsWith(tree) && !/^[a-z0-9_-]/.test(canonical.slice(tree.length))));
}
