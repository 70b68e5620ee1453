import { hashKey } from "../auth/keys.js";
import { gatewaySecretScrubber, KEY_SHAPED, REDACTED_SECRET } from "../upstream/scrub.js";
import type { Services } from "./services.js";


/**
 * A name the client sent (the model it asked for), as the gateway's errors and records show it. A
 * served model is shown as it is; any other name is masked where it holds a secret: the caller's key,
 * the admin token, an upstream's key, a key the gateway issued or an approver's token (known only by
 * their hashes, so the whole name is looked up), or anything shaped like an API key. A client pasting
 * a key into the wrong field must not put it into the audit, the logs or an error.
 */
export function shownName(services: Services, name: string, callerKey: string | null): string {
  const runtime = services.current();
  const { config } = runtime;
  if (Object.hasOwn(config.models, name)) return name;
  const shown = gatewaySecretScrubber(config, callerKey)(name).replace(KEY_SHAPED, REDACTED_SECRET);
  if (shown !== name) return shown;
  return isIssuedSecret(services, name) ? REDACTED_SECRET : name;
}

/** Whether `text` is, whole, a key the gateway issued (whatever its state) or an approver's token: known only by their hashes. */
export function isIssuedSecret(services: Services, text: string): boolean {
  // One hash for both: keys and approvers' tokens are held by the same `sha256:<hex>` form.
  const hash = hashKey(text);
  return services.shared.keys.holdsHash(hash) || services.current().adminPrincipals.has(hash);
}

/**
 * The values among `sent` (headers the records and errors echo) that are issued secrets. Only a
 * value that could be one is looked up (no spaces, as a user agent has; of a secret's length), so a
 * request pays a hash for these only when it sends such a header.
 */
export function issuedSecretsAmong(services: Services, sent: readonly string[]): string[] {
  const found: string[] = [];
  for (const value of sent) {
    if (value.length >= 8 && value.length <= 512 && !/\s/.test(value) && isIssuedSecret(services, value)) found.push(value);
  }
  return found;
}

/** Characters a pasted secret may sit between in free text: quotes, brackets, markup, a sentence's end. */
const AROUND = /^["'`([{<*]+|["'`)\]}>*.,;:!?]+$/g;

/** What may hold a pasted secret whole: a word, without what surrounds it, and what follows its first `=` or `:` (`k=<key>`, `eve:<token>`). */
function pieces(text: string): Set<string> {
  const found = new Set<string>(text.match(/[A-Za-z0-9_-]+/g) ?? []);
  for (const word of text.split(/\s+/)) {
    for (const whole of [word, word.replace(AROUND, "")]) {
      found.add(whole);
      const cut = whole.search(/[=:]/);
      if (cut !== -1) {
        found.add(whole.slice(cut + 1));
        found.add(whole.slice(cut + 1).replace(AROUND, ""));
      }
    }
  }
  return found;
}

/**
 * Free text (an approver's comment, a stop's reason) with every secret in it masked: the gateway's
 * own and the request's (`mask`), anything shaped like an API key, and each piece that is an issued
 * key or an approver's token, known only by their hashes.
 */
export function maskedText(services: Services, text: string, mask: (text: string) => string): string {
  const issued = issuedSecretsAmong(services, [...pieces(text)]);
  const masked = mask(text).replace(KEY_SHAPED, REDACTED_SECRET);
  return issued.length === 0 ? masked : gatewaySecretScrubber(services.current().config, null, issued)(masked);
}
