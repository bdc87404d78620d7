/** Checksums that confirm detector candidates. Pure functions over digit / alphanumeric strings. */

/** Luhn (mod 10) over the digits of a string; other characters (separators) are skipped. */
export function luhnValid(s: string): boolean {
  let sum = 0;
  let double = false;
  let n = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    let d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) continue;
    n++;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return n > 0 && sum % 10 === 0;
}

/** The value of an IBAN character in the mod-97 computation (0–9, A/a = 10 … Z/z = 35), or -1. */
function ibanValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 90) return c - 55;
  if (c >= 97 && c <= 122) return c - 87;
  return -1;
}

/**
 * ISO 13616 / ISO 7064 MOD 97-10 over an IBAN without spaces: the first four characters moved to
 * the end, letters as 10..35, the number mod 97 must be 1.
 */
export function iban97Valid(iban: string): boolean {
  const n = iban.length;
  if (n < 5) return false;
  let rem = 0;
  for (let k = 0; k < n; k++) {
    const v = ibanValue(iban.charCodeAt((k + 4) % n));
    if (v < 0) return false;
    rem = v < 10 ? (rem * 10 + v) % 97 : (rem * 100 + v) % 97;
  }
  return rem === 1;
}

/** The digits of a string, separators dropped. */
export function digitsOf(s: string): string {
  return s.replace(/\D+/g, "");
}

/** How many digits a string holds. */
export function digitCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}
