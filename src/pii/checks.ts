import { isIPv6 } from "node:net";

/** Card numbers: Luhn checksum plus a known issuer prefix, so random 16-digit ids rarely pass. */
export function isCardNumber(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  return CARD_PREFIX.test(digits) && passesLuhn(digits);
}

// Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37, Diners 30/36/38, JCB 35, Discover/UnionPay 6.
const CARD_PREFIX = /^(?:4|5[1-5]|2[2-7]|3[0456789]|6)/;

export function passesLuhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let digit = digits.charCodeAt(i) - 48;
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    double = !double;
  }
  return sum % 10 === 0;
}

/** ISO 13616: country, check digits, then an account part; valid when the mod-97 remainder is 1. */
export function isIban(compact: string): boolean {
  if (compact.length < 15 || compact.length > 34) return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const code = rearranged.charCodeAt(i);
    // Letters become two digits (A = 10 ... Z = 35); the remainder is folded per digit so it
    // never grows past a few hundred.
    const value = code <= 57 ? code - 48 : code - 55;
    remainder = value >= 10 ? (remainder * 100 + value) % 97 : (remainder * 10 + value) % 97;
  }
  return remainder === 1;
}

/** SSA never issues area 000, 666 or 9xx, group 00 or serial 0000. */
export function isUsSsn(area: string, group: string, serial: string): boolean {
  return area !== "000" && area !== "666" && !area.startsWith("9") && group !== "00" && serial !== "0000";
}

export function isIpv4(text: string): boolean {
  return text.split(".").every((octet) => Number(octet) <= 255);
}

/** `::` alone, `::1` and the like say nothing about a person; require two non-empty groups. */
export function isIpv6Address(text: string): boolean {
  return isIPv6(text) && text.split(":").filter((group) => group !== "").length >= 2;
}

export function countDigits(text: string): number {
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 48 && code <= 57) digits++;
  }
  return digits;
}

export function stripSeparators(text: string): string {
  return text.replace(/[ -]/g, "");
}
