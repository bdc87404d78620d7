import { iban97Valid } from "./checksums.js";
import { DENSE, type Detector } from "./types.js";

/** IBAN length per country (SWIFT IBAN registry). */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21, CR: 22,
  CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18, FR: 27, GB: 22,
  GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30,
  KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20,
  MR: 27, MT: 31, MU: 30, NI: 28, NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22,
  RU: 33, SA: 24, SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
  UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

export function ibanValid(compact: string): boolean {
  const len = IBAN_LENGTHS[compact.slice(0, 2)];
  return len !== undefined && compact.length === len && iban97Valid(compact);
}

const upper = (c: number) => c >= 65 && c <= 90;
const digit = (c: number) => c >= 48 && c <= 57;
const alnum = (c: number) => upper(c) || digit(c) || (c >= 97 && c <= 122);

/**
 * Where an IBAN holding the digits at `anchor` can start: every `[A-Z]{2}\d{2}` head not preceded by
 * a letter or digit, among the upper-case letters, digits and spaces up to 34 characters back.
 */
export function ibanStarts(text: string, anchor: number): number[] {
  const out: number[] = [];
  const stop = Math.max(0, anchor - 34);
  for (let i = anchor; i >= stop; i--) {
    if (i < anchor) {
      const c = text.charCodeAt(i);
      if (!(upper(c) || digit(c) || c === 32)) break;
    }
    if (upper(text.charCodeAt(i)) && upper(text.charCodeAt(i + 1)) && digit(text.charCodeAt(i + 2)) && digit(text.charCodeAt(i + 3)) && (i === 0 || !alnum(text.charCodeAt(i - 1)))) out.push(i);
  }
  return out.reverse();
}

export const iban: Detector = {
  name: "iban",
  description:
    "International Bank Account Numbers: a country code, two check digits and the account part, either compact " +
    "(`DE89370400440532013000`) or printed in groups of four separated by single spaces (`GB82 WEST 1234 5698 7654 32`); " +
    "confirmed by the ISO 7064 mod-97 checksum and by the exact length for the country (SWIFT registry, 89 countries; " +
    "other country codes are not matched). Upper-case letters only. False positives: an unrelated upper-case code of " +
    "exactly a country's IBAN length starting with that country code and two digits passes mod-97 1 time in 97 — rare " +
    "in practice. Not matched: lower-case IBANs, other separators (dashes, dots), a printed IBAN directly followed by " +
    "another upper-case/digit group of 1–4 characters (the match runs on and the length check fails), and an IBAN " +
    "with no 8 digits in a row (compact) or in two adjacent groups of 4 (printed) — the scan looks for those; every " +
    "format in the registry has them in practice.",
  patterns: ["(?<![A-Za-z0-9])[A-Z]{2}\\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"],
  anchors: [DENSE.digits8, DENSE.groups44],
  scan: "dense",
  start: ibanStarts,
  confirm(match) {
    return ibanValid(match.replace(/ /g, ""));
  },
};
