import {
  countDigits,
  isCardNumber,
  isIban,
  isIpv4,
  isIpv6Address,
  isUsSsn,
  stripSeparators,
} from "./checks.js";
import type { PiiType } from "./types.js";

/**
 * One way a PII type shows up. `regex` finds candidates; `accept` returns how many code units of
 * the candidate are really PII (0 to reject), which lets a check trim a greedy tail.
 *
 * Every regex is built once, here, and is safe on hostile input: each starts with a lookbehind
 * that lets a match begin only at the start of a run of its own characters, and every quantifier
 * is bounded over a simple character class (no nested unbounded repetition). A failed attempt
 * therefore costs at most its bounded length, and a scan is linear in the text.
 */
export interface Pattern {
  regex: RegExp;
  accept: (match: RegExpExecArray) => number;
  /**
   * What every match contains: a text without it is skipped before the regex runs, whose
   * lookbehind at the start otherwise tries every position. A regex (without lookbehind, so the
   * engine can scan for it) is what every match must contain.
   */
  needs?: string | RegExp;
  /** The fewest ASCII digits a match holds: a text with fewer is skipped the same way. */
  minDigits?: number;
}

const whole = (match: RegExpExecArray): number => match[0].length;
const wholeIf =
  (check: (text: string) => boolean) =>
  (match: RegExpExecArray): number =>
    check(match[0]) ? match[0].length : 0;

const email: Pattern = {
  regex: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])/g,
  accept: whole,
  needs: "@",
};

// International numbers start with `+`; without it only NANP layouts with separators count, so
// plain digit runs (order ids, card numbers) are never phones.
const internationalPhone: Pattern = {
  regex: /(?<![\w+])\+[1-9][\d ().-]{6,20}\d(?!\d)/g,
  accept: wholeIf((text) => {
    const digits = countDigits(text);
    return digits >= 10 && digits <= 15;
  }),
  needs: "+",
};

const nanpPhone: Pattern = {
  regex: /(?<![\w+.-])(?:1[ .-]?)?(?:\([2-9]\d\d\)[ .-]?|[2-9]\d\d[ .-])\d{3}[ .-]\d{4}(?![\w-]|\.\d)/g,
  accept: whole,
  minDigits: 10,
};

// Grouped 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4 with one consistent separator, or 13-19 bare digits.
const creditCard: Pattern = {
  regex:
    /(?<![\d-])(?:\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{4}([ -])\d{6}\2\d{4,5}|\d{13,19})(?!\d)/g,
  accept: wholeIf((text) => isCardNumber(stripSeparators(text))),
  minDigits: 13,
};

// Any other grouping with one consistent separator (8-4-4, 4-12, 6-10...): a number a zero-width
// character or an odd grouping would otherwise hide. 13-19 digits, and the card checks, still apply.
const creditCardGrouped: Pattern = {
  regex: /(?<![\d-])\d{2,}([ -])\d{2,}(?:\1\d{2,}){0,7}(?![\d-])/g,
  accept: wholeIf((text) => {
    const digits = stripSeparators(text);
    return digits.length >= 13 && digits.length <= 19 && isCardNumber(digits);
  }),
  minDigits: 13,
};

const iban: Pattern = {
  regex: /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])/g,
  accept: acceptIban,
  minDigits: 2,
};

// The greedy match may swallow a following uppercase word ("... 3000 OK"): drop trailing
// space-separated groups until the checksum holds.
function acceptIban(match: RegExpExecArray): number {
  let candidate = match[0];
  for (;;) {
    if (isIban(candidate.replaceAll(" ", ""))) return candidate.length;
    const lastSpace = candidate.lastIndexOf(" ");
    if (lastSpace < 15) return 0;
    candidate = candidate.slice(0, lastSpace);
  }
}

// Dashes, or spaces, used alike between the three groups.
const usSsn: Pattern = {
  regex: /(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])/g,
  accept: (match) => (isUsSsn(match[1] ?? "", match[3] ?? "", match[4] ?? "") ? match[0].length : 0),
  minDigits: 9,
};

const ipv4: Pattern = {
  regex: /(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)/g,
  accept: wholeIf(isIpv4),
  needs: ".",
};

const ipv6: Pattern = {
  regex: /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:.])/g,
  accept: wholeIf(isIpv6Address),
  // Two of the colons, at most four hex digits apart: a text whose colons are all far apart (`Note:`,
  // `12:30`, a URL's scheme) has no candidate, and the scan that tries every position is skipped.
  needs: /:[0-9A-Fa-f]{0,4}:/,
};

const hasDigit = (text: string): boolean => /\d/.test(text);

const secrets: Pattern[] = [
  // OpenAI and Anthropic style keys (sk-, sk-proj-, sk-ant-...); a digit rules out prose like "sk-learn-...".
  { regex: /(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,512}/g, accept: wholeIf(hasDigit), needs: "sk-" },
  { regex: /(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])/g, accept: whole, needs: "IA" },
  { regex: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})/g, accept: whole, needs: "_" },
  { regex: /(?<![A-Za-z0-9])xox[baprs]-[A-Za-z0-9-]{10,255}/g, accept: whole, needs: "xox" },
  // Google API keys, and Stripe's live and test keys.
  { regex: /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/g, accept: whole, needs: "AIza" },
  { regex: /(?<![A-Za-z0-9_])(?:sk|rk)_live_[0-9A-Za-z]{16,255}/g, accept: whole, needs: "_live_" },
  { regex: /(?<![A-Za-z0-9_])(?:sk|rk)_test_[0-9A-Za-z]{16,255}/g, accept: whole, needs: "_test_" },
  // The header, the base64 body and the footer when present; a truncated key still loses its body.
  {
    regex:
      /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s:,]{0,16384}(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----)?/g,
    accept: whole,
    needs: "-----BEGIN ",
  },
  // JWT: base64url JSON header and payload (both start `{"` = `eyJ`) and a signature.
  {
    regex: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,4096}\.eyJ[A-Za-z0-9_-]{5,16384}\.[A-Za-z0-9_-]{10,2048}/g,
    accept: whole,
    needs: "eyJ",
  },
  { regex: /(?<![A-Za-z0-9])[Bb]earer[ \t]{1,4}[A-Za-z0-9._~+/-]{16,2048}={0,2}/g, accept: wholeIf(hasDigit), needs: "earer" },
];

export const PATTERNS: Readonly<Record<PiiType, readonly Pattern[]>> = {
  email: [email],
  phone: [internationalPhone, nanpPhone],
  credit_card: [creditCard, creditCardGrouped],
  iban: [iban],
  us_ssn: [usSsn],
  secret: secrets,
  ip: [ipv4, ipv6],
};
