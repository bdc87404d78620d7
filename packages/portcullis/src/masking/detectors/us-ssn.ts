import { ci, DENSE, denseAnchor, unroll, type Detector } from "./types.js";

/** SSA rules: area 000, 666 and 900–999, group 00 and serial 0000 are never issued. */
export function ssnValid(digits: string): boolean {
  if (digits.length !== 9) return false;
  const area = Number(digits.slice(0, 3));
  const group = Number(digits.slice(3, 5));
  const serial = Number(digits.slice(5));
  return area !== 0 && area !== 666 && area < 900 && group !== 0 && serial !== 0;
}

/** `ssn`, `SSN#`, `social security number`, `Social_Security_No` ... then up to 4 separator characters. */
const LABEL =
  `(?<![A-Za-z])(?:${ci("ssn")}|${ci("social")}[ _-]?${ci("security")}(?:[ _-]?(?:${ci("number")}|${ci("num")}|${ci("no")}))?)` +
  `[^\\w\\n]{0,4}`;

export const usSsn: Detector = {
  name: "us_ssn",
  description:
    "US Social Security numbers written `123-45-6789` or `123 45 6789` (one separator used consistently), and 9 " +
    "contiguous digits only right after a label (`SSN`, `ssn:`, `\"ssn\": \"`, `social security number`, any case, " +
    "then at most 4 spaces or punctuation characters). Numbers the SSA never issues are rejected: area 000, 666 and " +
    "900–999, group 00, serial 0000. False positives: any other 3-2-4 grouped number in a valid range (some part or " +
    "case numbers). Not matched: unlabelled 9-digit runs (indistinguishable from ids, zip+4 codes and amounts), " +
    "`123.45.6789`, and a label more than 4 characters before the digits.",
  patterns: [
    "(?<![\\d-])\\d{3}(?<ssnSep>[- ])\\d{2}\\k<ssnSep>\\d{4}(?!\\d|-\\d)",
    `(?<!\\d)\\d{9}(?!\\d)(?<=${LABEL}\\d{9})`,
  ],
  anchors: [denseAnchor(`${unroll("\\d", 3)}[- ]${unroll("\\d", 2)}[- ]${unroll("\\d", 4)}`), DENSE.digits8],
  scan: "dense",
  start: (_text, anchor) => anchor,
  confirm(match) {
    return ssnValid(match.replace(/[- ]/g, ""));
  },
};
