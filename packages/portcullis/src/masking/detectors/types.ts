/**
 * What a detector is. Detectors are data; `compileTextMasker` combines a set of them into two
 * scans over the text (see text-masker.ts for why two and not one).
 *
 * A detector has *strict* patterns, which define what it matches, and *anchors*: cheap
 * expressions that occur in (or at the start of) every strict match. The scans look for anchors
 * only; the strict patterns run only where an anchor was found, either at the start(s) the anchor
 * implies (exact mode, `start`) or in a small window around it (window mode, `lead`/`maxLength`).
 *
 * Rules for pattern and anchor sources (they are compiled with the `g` or `y` flag only — no `i`,
 * `u`, `m`, `s` — and anchors are spliced into one RegExp per scan):
 * - anchors have no capturing groups; patterns have no numbered ones, and a named group (for a
 *   backreference) is prefixed with the detector's name in camel case (`ccSep`, `ssnSep`);
 * - never match the empty string;
 * - strict patterns carry their own boundaries (lookbehind / lookahead), so a match cannot start or
 *   end inside a longer token;
 * - `dense` anchors are built for V8's Boyer–Moore skipping: unrolled (`\d\d\d\d`, not `\d{4}`),
 *   at least 7 characters, every position drawn from digits and a few separators (`[\d .()+-]`),
 *   and any boundary check as a lookbehind at the *end* (see `denseAnchor`), so a scan over
 *   ordinary text, even digit-heavy rows, skips most positions without looking at them;
 * - `sparse` anchors start with a rare character or a literal (`@`, `-----BEGIN `, `J(?<=eyJ)`),
 *   so the scan rejects almost every position after one comparison.
 */
export interface Detector {
  /** The name used in config (`detectors: [...]`) and in `[REDACTED:<name>]`. */
  readonly name: string;
  /** For docs: what it matches, what it does not, and its false-positive behaviour. */
  readonly description: string;
  /** Strict RegExp source fragments, tried in order at a position. */
  readonly patterns: readonly string[];
  /** Anchor RegExp source fragments (see above). */
  readonly anchors: readonly string[];
  /** Which scan the anchors join. */
  readonly scan: "dense" | "sparse";
  /**
   * Exact mode: where a strict match can start, given the anchor's start (for `eyJ` anchored on
   * `J`: two characters earlier; for an IBAN: each country-code-and-check-digits head before its
   * digits). The strict patterns are tried only there, earliest first.
   */
  start?(text: string, anchor: number): number | readonly number[];
  /** Window mode (no `start`): how far before its anchor a match can start. */
  readonly lead?: number;
  /** Window mode: an upper bound on the length of a strict match (bounds the window). */
  readonly maxLength?: number;
  /** Confirms a candidate (checksum, structure); absent = every strict match counts. */
  confirm?(match: string): boolean;
  /**
   * The sensitive parts of a confirmed match as [start, end) offsets into it, when that is not
   * the whole match (a secret after its label; an access key id and the secret key next to it).
   */
  values?(match: string): ReadonlyArray<readonly [number, number]>;
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

/** `\d\d\d\d`: an unrolled run of one atom (V8 skips far better over these than over `\d{4}`). */
export function unroll(atom: string, n: number): string {
  return atom.repeat(n);
}

/**
 * `\d\d\d…(?<!\d\d\d\d…)`: an unrolled dense anchor that does not start right after a digit. The
 * check is a lookbehind at the end, which keeps V8's skipping intact (one at the start defeats it).
 */
export function denseAnchor(body: string): string {
  return `${body}(?<!\\d${body})`;
}

/** Dense anchors shared by several digit detectors. */
const D = "\\d";
export const DENSE = {
  /** A run of 8 or more digits (its start): contiguous card numbers, labelled SSNs, compact IBANs. */
  digits8: denseAnchor(unroll(D, 8)),
  /** Two groups of 4 digits around one space or dash: grouped card numbers, printed IBANs. */
  groups44: denseAnchor(`${unroll(D, 4)}[ -]${unroll(D, 4)}`),
} as const;
