/** The paths the gateway itself serves and governs: never relayed by passthrough, however written. */
export const GOVERNED_PATHS: ReadonlySet<string> = new Set(["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/models"]);

/** A path without repeated or trailing slashes, as an upstream that tolerates them reads it. */
export function normalizedPath(path: string): string {
  const collapsed = path.replace(/\/{2,}/g, "/");
  return collapsed.length > 1 ? collapsed.replace(/\/+$/, "") : collapsed;
}
