import { digitsOf, luhnValid } from "./checksums.js";
import { DENSE, type Detector } from "./types.js";

/**
 * Whether a 13–19 digit number starts with an issuer range of a card network, at a length that
 * network issues: Visa 4, Maestro / Mastercard / Discover / UnionPay / RuPay 5x and 6x (any length
 * 13–19), Mastercard 2221–2720 (16), Mir 2200–2204 (16–19), Amex 34 / 37 (15), Diners 300–305,
 * 309, 36, 38, 39 (14–19), JCB 3528–3589 (16–19).
 */
export function knownIssuer(d: string): boolean {
  const len = d.length;
  if (len < 13 || len > 19) return false;
  const first = d.charCodeAt(0) - 48;
  const n2 = first * 10 + d.charCodeAt(1) - 48;
  const n3 = n2 * 10 + d.charCodeAt(2) - 48;
  const n4 = n3 * 10 + d.charCodeAt(3) - 48;
  switch (first) {
    case 4:
    case 5:
    case 6:
      return true;
    case 2:
      return (n4 >= 2221 && n4 <= 2720 && len === 16) || (n4 >= 2200 && n4 <= 2204 && len >= 16);
    case 3:
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
    "Payment card numbers (PANs): 13–19 contiguous digits, or the printed groupings 4-4-4-4, 4-4-4-4-3 (16 and 19 " +
    "digits), 4-6-5 (Amex) and 4-6-4 (Diners) separated by one space or one dash used consistently; confirmed by the " +
    "Luhn checksum and by a known issuer range (first digits 2–6, at a length that network issues). Not part of a " +
    "longer digit run, of a decimal number, or of a token of letters and digits (hex strings, UUIDs). False positives: a random number of that shape passes about 1 time in " +
    "10, so 13–19 digit identifiers starting with 2–6 (order numbers, some account or tracking numbers) are sometimes " +
    "masked; millisecond timestamps and snowflake ids (starting with 1) are not. Not matched: other separators (dots, " +
    "slashes), mixed separators, numbers with a typo (they fail Luhn), numbers glued to letters (`cc4111…`).",
  patterns: [
    "(?<![A-Za-z0-9]|\\d[.,])\\d{4}(?:\\d{9,15}|(?<ccSep>[ -])\\d{4}\\k<ccSep>\\d{4}\\k<ccSep>\\d{4}(?:\\k<ccSep>\\d{3})?|(?<ccSep2>[ -])\\d{6}\\k<ccSep2>\\d{4,5})(?![A-Za-z0-9]|[.,]\\d)",
  ],
  anchors: [DENSE.digits8, DENSE.groups44],
  scan: "dense",
  start: (_text, anchor) => anchor,
  confirm(match) {
    const d = digitsOf(match);
    return knownIssuer(d) && luhnValid(d);
  },
};
