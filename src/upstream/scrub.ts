/** Shorter secrets are not searched for: masking every match of a short one would mangle ordinary text. */
const MIN_SECRET_CHARS = 8;

export const REDACTED_SECRET = "[REDACTED_SECRET]";

/**
 * Masks the given secrets wherever they appear in a text. The gateway relays what an upstream
 * says (an error's message, a header), and a careless upstream can echo the credential the
 * gateway sent it: that must not reach the client, the audit or the logs.
 */
export function secretScrubber(secrets: readonly string[]): (text: string) => string {
  const searched = [...new Set(secrets.filter((secret) => secret.length >= MIN_SECRET_CHARS))];
  if (searched.length === 0) return (text) => text;
  return (text) => {
    let result = text;
    for (const secret of searched) if (result.includes(secret)) result = result.replaceAll(secret, REDACTED_SECRET);
    return result;
  };
}
