import type { Detector } from "./types.js";

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const V4 = `(?:${OCTET}\\.){3}${OCTET}`;
/** 1–3 digits and a dot, unrolled as alternatives (V8 skips better over these than over `\d{1,3}`). */
const Q = "(?:\\d\\.|\\d\\d\\.|\\d\\d\\d\\.)";

export const ipv4: Detector = {
  name: "ipv4",
  description:
    "IPv4 addresses in dotted-quad form, each octet 0–255 without leading zeros (`10.0.0.1`, `192.168.1.20:5432`, the " +
    "address part of `10.0.0.0/8`). Not matched when part of a longer dotted sequence (`1.3.6.1.4.1`, SNMP OIDs) or " +
    "preceded by a letter, digit or dot (`v1.2.3.4`). False positives: four-part version numbers whose parts are all " +
    "0–255 and that are not prefixed by a letter (`1.2.3.4`). Private, loopback and documentation addresses are masked " +
    "like any other.",
  patterns: [`(?<![\\w.])${V4}(?!\\w|\\.\\d)`],
  anchors: [`${Q}${Q}${Q}\\d`],
  scan: "dense",
  start: (_text, anchor) => anchor,
};

const H = "[0-9A-Fa-f]{1,4}";
const V6_FORMS = [
  `(?:${H}:){7}${H}`,
  `(?:${H}:){6}${V4}`,
  `(?:${H}:){1,7}:`,
  `(?:${H}:){1,6}:${H}`,
  `(?:${H}:){1,5}(?::${H}){1,2}`,
  `(?:${H}:){1,4}(?::${H}){1,3}`,
  `(?:${H}:){1,3}(?::${H}){1,4}`,
  `(?:${H}:){1,2}(?::${H}){1,5}`,
  `${H}:(?::${H}){1,6}`,
  `(?:${H}:){1,5}:${V4}`,
  `::(?:[Ff]{4}(?::0{1,4})?:)?${V4}`,
  `:(?::${H}){1,7}`,
];

/**
 * Structure beyond the pattern: at least two 16-bit groups (an embedded IPv4 counts as two), so
 * `::1`-style shorthands and `a::b` are out, and at least one decimal digit somewhere, so
 * hex-only identifiers with `::` (`add::bad`, C++/Rust paths) are out.
 */
export function ipv6Plausible(match: string): boolean {
  const addr = match.split("%")[0]!;
  if (!/\d/.test(addr)) return false;
  let groups = 0;
  for (const part of addr.split(":")) if (part !== "") groups += part.includes(".") ? 2 : 1;
  return groups >= 2;
}

export const ipv6: Detector = {
  name: "ipv6",
  description:
    "IPv6 addresses: the full 8-group form, every `::`-compressed form, embedded IPv4 (`::ffff:192.0.2.1`, " +
    "`64:ff9b::192.0.2.33`) and a zone suffix (`fe80::1%eth0`). A match needs at least two groups and at least one " +
    "decimal digit, so `::`, `::1` and hex-only `::` paths in code (`dead::beef`) are not matched; nor are MAC addresses " +
    "or times (no `::` and fewer than 8 groups). False positives: a token of hex groups joined by `:` that contains " +
    "`::` and a digit, or exactly 8 hex groups — rare outside addresses.",
  patterns: [`(?<![\\w.])(?<![0-9A-Fa-f:.]:)(?=[0-9A-Fa-f]{0,4}:)(?:${V6_FORMS.join("|")})(?:%[0-9A-Za-z_.-]{1,32})?(?![\\w]|:[0-9A-Fa-f:]|\\.\\d)`],
  // Every compressed form contains "::"; every full form contains three groups between colons.
  anchors: ["::", ":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:"],
  scan: "sparse",
  lead: 40,
  maxLength: 45 + 33,
  confirm: ipv6Plausible,
};
