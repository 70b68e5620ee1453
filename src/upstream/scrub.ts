import type { Config } from "../config/schema.js";

/** Shorter secrets are not searched for: masking every match of a short one would mangle ordinary text. */
const MIN_SECRET_CHARS = 8;

export const REDACTED_SECRET = "[REDACTED_SECRET]";

/** What an API key looks like, the gateway's or another service's. */
export const KEY_SHAPED = /\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}\b/g;

/**
 * Masks the given secrets wherever they appear in a text. The gateway relays what an upstream
 * says (an error's message, a header), and a careless upstream can echo the credential the
 * gateway sent it: that must not reach the client, the audit or the logs. In JSON it may echo it
 * escaped (`\u0055`, `\/`), which the client's parser turns back into the secret: a text with a
 * backslash is searched for every escaped spelling too.
 */
export function secretScrubber(secrets: readonly string[]): (text: string) => string {
  // Every call builds one from the same few secrets (the upstream's key, the admin token, its caller's key).
  let key = "";
  // Each secret's length before it: no two lists of secrets share a key.
  for (const secret of secrets) key += `${secret.length}:${secret}`;
  let scrub = scrubbers.get(key);
  if (scrub === undefined) {
    scrub = buildScrubber(secrets);
    if (scrubbers.size >= MAX_SCRUBBERS) scrubbers.clear();
    scrubbers.set(key, scrub);
  }
  return scrub;
}

const scrubbers = new Map<string, (text: string) => string>();
const MAX_SCRUBBERS = 4096;

function buildScrubber(secrets: readonly string[]): (text: string) => string {
  const searched = [...new Set(secrets.filter((secret) => secret.length >= MIN_SECRET_CHARS))];
  if (searched.length === 0) return (text) => text;
  return (text) => {
    let result = text;
    for (const secret of searched) if (result.includes(secret)) result = result.replaceAll(secret, REDACTED_SECRET);
    if (!result.includes("\\")) return result;
    for (const secret of searched) result = result.replace(escapedSpellings(secret), REDACTED_SECRET);
    return result;
  };
}

/**
 * Masks the secrets the gateway holds: the caller's own key (where there is one), the admin token,
 * the upstreams' keys and the webhook's signing secret (whoever holds it signs approval events), and
 * `others` found among what the request sent (secrets the gateway knows only by their hashes:
 * another key, an approver's token).
 */
export function gatewaySecretScrubber(config: Config, callerKey: string | null, others: readonly string[] = []): (text: string) => string {
  return secretScrubber([
    callerKey ?? "",
    config.admin.token,
    config.approvals.notify_secret,
    ...Object.values(config.upstreams).map((upstream) => upstream.api_key),
    ...others,
  ]);
}

/** Patterns by secret: few secrets (the upstreams' keys, the admin token, the callers' keys) recur on every call. */
const spellings = new Map<string, RegExp>();
const MAX_PATTERNS = 4096;

/** Every JSON spelling of `secret`: each character as itself or as its escape. */
function escapedSpellings(secret: string): RegExp {
  let pattern = spellings.get(secret);
  if (pattern === undefined) {
    pattern = new RegExp([...secret].map(spellingsOf).join(""), "g");
    if (spellings.size >= MAX_PATTERNS) spellings.clear();
    spellings.set(secret, pattern);
  }
  return pattern;
}

function spellingsOf(char: string): string {
  const code = char.codePointAt(0) ?? 0;
  // Outside the BMP a character is escaped as its surrogate pair.
  const units = code > 0xffff ? [0xd800 + ((code - 0x10000) >> 10), 0xdc00 + ((code - 0x10000) & 0x3ff)] : [code];
  const unicode = units.map((unit) => `\\\\u${[...unit.toString(16).padStart(4, "0")].map((d) => (/[a-f]/.test(d) ? `[${d}${d.toUpperCase()}]` : d)).join("")}`).join("");
  const alternatives = [char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"), unicode];
  if (char === "/" || char === '"' || char === "\\") alternatives.push(`\\\\\\${char}`);
  return `(?:${alternatives.join("|")})`;
}
