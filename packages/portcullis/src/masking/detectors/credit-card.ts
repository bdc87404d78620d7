import { digitsOf, luhnValid } from "./checksums.js";
import type { Detector } from "./types.js";

/**
 * Whether a 13–19 digit number starts with an issuer range of a card network, at a length that
 * network issues: Visa 4 (13–19), Mastercard 51–55 / 2221–2720 (16), Mir 2200–2204 (16–19),
 * Maestro / Discover / UnionPay / RuPay 5x and 6x (13–19), Amex 34 / 37 (15), Diners 300–305,
 * 309, 36, 38, 39 (14–19), JCB 3528–3589 (16–19).
 */
export function knownIssuer(d: string): boolean {
  const len = d.length;
  if (len < 13 || len > 19) return false;
  const n2 = Number(d.slice(0, 2));
  const n3 = Number(d.slice(0, 3));
  const n4 = Number(d.slice(0, 4));
  switch (d[0]) {
    case "4":
    case "5":
    case "6":
      return true;
    case "2":
      return (n4 >= 2221 && n4 <= 2720 && len === 16) || (n4 >= 2200 && n4 <= 2204 && len >= 16);
    case "3":
      if (n2 === 34 || n2 === 37) return len === 15;
      if ((n3 >= 300 && n3 <= 305) || n3 === 309 || n2 === 36 || n2 === 38 || n2 === 39) return len >= 14;
      return n4 >= 3528 && n4 <= 3589 && len >= 16;
    default:
      return false;
  }
}

export const creditCard: Detector = {
  name: "credit_card",
  description:
    "Payment card numbers (PANs): 13–19 contiguous digits, or the printed groupings 4-4-4-4, 4-4-4-4-3 (16 and 19 digits), " +
    "4-6-5 (Amex) and 4-6-4 (Diners) separated by one space or one dash used consistently; confirmed by the Luhn " +
    "checksum and by a known issuer range (first digits 2, 3, 4, 5 or 6 at a length that network issues). Not part of " +
    "a longer digit run or a decimal number. False positives: a random number of that shape passes about 1 time in 10, so " +
    "13–19 digit identifiers starting with 2–6 (order numbers, some account or tracking numbers) are sometimes masked; " +
    "millisecond timestamps and snowflake ids (starting with 1) are not. Not matched: other separators (dots, slashes), " +
    "mixed separators, card numbers with a typo (they fail Luhn).",
  patterns: [
    "(?<!\\d|\\d[.,])\\d{4}(?:\\d{9,15}|(?<ccSep>[ -])\\d{4}\\k<ccSep>\\d{4}\\k<ccSep>\\d{4}(?:\\k<ccSep>\\d{3})?|(?<ccSep2>[ -])\\d{6}\\k<ccSep2>\\d{4,5})(?!\\d|[.,]\\d)",
  ],
  prefilter: { chars: "0-9" },
  confirm(match) {
    const d = digitsOf(match);
    return knownIssuer(d) && luhnValid(d);
  },
};
