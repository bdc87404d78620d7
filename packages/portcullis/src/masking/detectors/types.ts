/**
 * What a detector is: a regular-expression fragment that finds candidates, an optional check that
 * confirms them (a checksum where one exists), and a prefilter that any text holding a match must
 * satisfy. Detectors are data; `compileTextMasker` combines a set of them into one pass.
 *
 * Rules for `patterns` (they are spliced into one combined RegExp, compiled without flags other
 * than `g`, no `i`, no `u`, no `m`):
 * - no numbered capturing groups; a named group (for a backreference) must be prefixed with the
 *   detector's name in camel case (`ccSep`, `ssnSep`) so names stay unique in the combination;
 * - never match the empty string;
 * - carry their own boundaries (lookbehind / lookahead), so a match cannot start or end inside a
 *   longer token, and so a failed candidate is cheap to retry one character later;
 * - start with something cheap to reject (a literal, a digit, a lookbehind on the previous
 *   character): the combined expression is tried at many positions.
 */
export interface Detector {
  /** The name used in config (`detectors: [...]`) and in `[REDACTED:<name>]`. */
  readonly name: string;
  /** For docs: what it matches, what it does not, and its false-positive behaviour. */
  readonly description: string;
  /** Alternative RegExp source fragments, tried in order at a position. */
  readonly patterns: readonly string[];
  /**
   * A cheap necessary condition: any text holding a match of `patterns` contains one of these
   * characters (`chars`, the inside of a character class) or matches `literals` (a RegExp source
   * fragment of literal-prefixed alternatives). A text with none of them is skipped whole.
   */
  readonly prefilter: { readonly chars?: string; readonly literals?: string };
  /** Confirms a candidate (checksum, structure); absent = every pattern match counts. */
  confirm?(match: string): boolean;
}

/** `[Ss][Ee][Cc]...`: a case-insensitive literal inside a RegExp compiled without the `i` flag. */
export function ci(word: string): string {
  let out = "";
  for (const ch of word) {
    const lo = ch.toLowerCase();
    const up = ch.toUpperCase();
    out += lo === up ? ch.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&") : `[${up}${lo}]`;
  }
  return out;
}
