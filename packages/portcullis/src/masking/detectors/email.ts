import type { Detector } from "./types.js";

/** Letters beyond ASCII allowed in a local part (SMTPUTF8): Latin-1 and Latin Extended, Greek, Cyrillic. */
const INTL = "\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u024F\\u0370-\\u03FF\\u0400-\\u04FF";
const LOCAL = `[\\w.%+${INTL}-]`;
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";

const isIntl = (c: number) => c >= 0xc0 && c <= 0x4ff && c !== 0xd7 && c !== 0xf7 && (c <= 0x24f || c >= 0x370);
const isLead = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || isIntl(c);
const isLocal = (c: number) => isLead(c) || c === 46 || c === 37 || c === 43 || c === 45;

/** From the `@`, back over at most 64 local-part characters, then forward to a letter, digit or `_`. */
export function localPartStart(text: string, at: number): number {
  let i = at;
  const stop = Math.max(0, at - 64);
  while (i > stop && isLocal(text.charCodeAt(i - 1))) i--;
  while (i < at && !isLead(text.charCodeAt(i))) i++;
  return i;
}

export const email: Detector = {
  name: "email",
  description:
    "Email addresses: a local part of letters, digits and `._%+-` (up to 64 characters, starting with a letter, digit " +
    "or `_`; letters include accented Latin, Greek and Cyrillic), `@`, one to ten DNS labels and an alphabetic top-level domain of 2–24 letters. Shape only, no " +
    "confirmation. False positives: anything address-shaped is masked, including role accounts (`noreply@example.com`), " +
    "scp-style git remotes (`git@github.com:org/repo`) and the `password@host` part of a URL's user info (masking that " +
    "password is intended). Not matched: quoted local parts, IP-literal domains (`a@[10.0.0.1]`), hosts without a dot " +
    "(`root@localhost`), non-ASCII (IDN) domains unless written in punycode, and local-part characters of other scripts " +
    "(only the part after them is masked).",
  patterns: [`(?<![\\w%+${INTL}-])[A-Za-z0-9_${INTL}]${LOCAL}{0,63}@(?:${LABEL}\\.){1,10}[A-Za-z]{2,24}(?![A-Za-z0-9])`],
  anchors: [`@(?<=${LOCAL}@)(?=[A-Za-z0-9])`],
  scan: "sparse",
  start: localPartStart,
};
