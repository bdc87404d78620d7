import { digitCount } from "./checksums.js";
import { denseAnchor, unroll, type Detector } from "./types.js";

const d = (n: number) => unroll("\\d", n);

/** The anchor's start, and one or two characters earlier for a North American `1-` / `1(` prefix. */
export function phoneStarts(text: string, anchor: number): number[] {
  const out: number[] = [];
  const c1 = text.charCodeAt(anchor - 1);
  if (text.charCodeAt(anchor - 2) === 49 /* 1 */ && (c1 === 32 || c1 === 45 || c1 === 46)) out.push(anchor - 2);
  else if (c1 === 49 && text.charCodeAt(anchor) === 40 /* ( */) out.push(anchor - 1);
  out.push(anchor);
  return out;
}

export const phone: Detector = {
  name: "phone",
  description:
    "Phone numbers in three shapes. (1) International: `+`, a country code and 8–15 digits in all, optionally grouped " +
    "by spaces, dots, dashes or a parenthesised group (`+14155552671`, `+44 20 7946 0958`, `+44 (0)20 7946 0958`, " +
    "`+1 (555) 123-4567`). (2) North American: `(555) 123-4567`, `555-123-4567`, `555.123.4567`, optionally preceded " +
    "by `1-`/`1 `/`1.` (dashes or dots used consistently). (3) National numbers with a trunk 0 grouped by one repeated " +
    "separator, 10–12 digits in all (`020 7946 0958`, `06 12 34 56 78`, `030-1234-5678`). Deliberately not matched, to " +
    "keep false positives down: a plain run of digits without `+` (indistinguishable from ids and amounts), " +
    "space-separated North American numbers without parentheses (`555 123 4567`), dates (`2024-03-12`, `12.03.2024`, " +
    "`03/12/2024`), times and UTC offsets (`+05:30`), version numbers (`1.2.3`, `10.0.19041`), IPv4 addresses and " +
    "arithmetic (`3+4`). False positives: other numbers grouped exactly like a phone number (`555-123-4567`-shaped " +
    "part numbers, `+` followed by 8 or more grouped digits). A phone number directly followed by more digit groups " +
    "in the same style may be masked together with them, or, past 15 digits, not at all.",
  patterns: [
    "(?<![\\w+])\\+[1-9]\\d{0,2}(?:[ .-]?(?:\\(\\d{1,4}\\)|\\d{1,5})){1,6}(?!\\d)",
    "(?<![\\w+.-])(?:1[ .-]|1(?=\\())?(?:\\(\\d{3}\\)[ .-]?\\d{3}[.-]\\d{4}|\\d{3}(?<phoneSep>[.-])\\d{3}\\k<phoneSep>\\d{4})(?!\\d|[.-]\\d)",
    "(?<![\\w+.-])0[1-9]\\d{0,3}(?<phoneSep2>[ .-])\\d{2,8}(?:\\k<phoneSep2>\\d{2,8}){0,3}(?!\\d|[.-]\\d)",
  ],
  anchors: [
    denseAnchor(`${d(3)}[.-]${d(3)}[.-]${d(4)}`),
    `\\(${d(3)}\\)[ .-]?${d(3)}[.-]${d(4)}`,
    `\\+[1-9]${unroll("[\\d .()-]", 6)}`,
    `0[1-9]${unroll("[\\d .-]", 8)}(?<![\\d.-]0[1-9]${unroll("[\\d .-]", 8)})`,
  ],
  scan: "dense",
  start: phoneStarts,
  confirm(match) {
    const n = digitCount(match);
    if (match.charCodeAt(0) === 43 /* + */) return n >= 8 && n <= 15;
    if (match.charCodeAt(0) === 48 /* 0 */) return n >= 10 && n <= 12;
    return n === 10 || n === 11;
  },
};
