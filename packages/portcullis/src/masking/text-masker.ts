/**
 * Masks sensitive values inside free text with a set of detectors, in one pass.
 *
 * Compiled once per (detector set, strategy, key):
 * - a prefilter: one RegExp of the characters and literals some match needs (`@`, a digit, `:`,
 *   `eyJ`, `-----BEGIN`, token prefixes...). A text without any is answered `undefined` after a
 *   single scan, without running anything else;
 * - one combined RegExp: every detector pattern as one top-level capturing alternative, in
 *   priority order (see `DETECTORS`). One `exec` loop walks the text; the alternative that matched
 *   is the first top-level group that is set.
 *
 * Overlaps: the leftmost match wins; at one position, the first detector in priority order whose
 * pattern matches *and* whose confirmation passes wins (a candidate that fails its checksum gives
 * the later alternatives their chance at the same position, then the scan resumes one character
 * later, so a failed candidate never hides a real one that starts inside it). Matches never
 * overlap: the scan resumes after a confirmed match.
 *
 * `null` cannot stand inside text: with the `null` strategy a match is removed (replaced by "").
 * `hash` hashes the match exactly as written (`4111 1111 1111 1111` and `4111111111111111` hash
 * differently).
 */
import { DETECTORS, getDetector, type Detector } from "./detectors/index.js";
import { applyStrategy, isStrategy, type Strategy } from "./strategies.js";

export interface TextMatch {
  detector: string;
  /** UTF-16 offsets into the text, end exclusive. */
  start: number;
  end: number;
}

export interface TextMasker {
  /** The detectors in effect, in priority order. */
  readonly detectors: readonly string[];
  readonly strategy: Strategy;
  /** The text with every confirmed match masked, or undefined when nothing matched. */
  mask(text: string): string | undefined;
  /** The confirmed matches, in order, non-overlapping (what `mask` replaces). */
  scan(text: string): TextMatch[];
}

interface Alternative {
  detector: Detector;
  /** Index of this alternative's top-level group in the combined RegExp's match array. */
  group: number;
  /** The same pattern, sticky, for retrying at one position after an earlier alternative failed. */
  sticky: RegExp;
}

/** Capturing groups in a RegExp source (named ones included). */
function groupCount(source: string): number {
  return new RegExp(`${source}|`).exec("")!.length - 1;
}

/** Resolves names to detectors in priority order; unknown names throw. Duplicates are ignored. */
export function resolveDetectors(names: readonly string[]): Detector[] {
  const wanted = new Set<string>();
  for (const n of names) {
    if (!getDetector(n)) throw new Error(`unknown masking detector "${n}" (known: ${DETECTORS.map((d) => d.name).join(", ")})`);
    wanted.add(n);
  }
  return DETECTORS.filter((d) => wanted.has(d.name));
}

/** The prefilter RegExp source for a detector set: one character class plus literal alternatives. */
export function prefilterSource(detectors: readonly Detector[]): string {
  const chars = new Set<string>();
  const literals: string[] = [];
  for (const d of detectors) {
    if (d.prefilter.chars) chars.add(d.prefilter.chars);
    if (d.prefilter.literals) literals.push(d.prefilter.literals);
  }
  const parts = [...(chars.size ? [`[${[...chars].join("")}]`] : []), ...literals];
  return parts.join("|");
}

export function compileTextMasker(detectorNames: readonly string[], strategy: Strategy, key: Buffer): TextMasker {
  if (!isStrategy(strategy)) throw new Error(`unknown masking strategy "${String(strategy)}"`);
  const detectors = resolveDetectors(detectorNames);
  const names = detectors.map((d) => d.name);
  if (detectors.length === 0) {
    return { detectors: names, strategy, mask: () => undefined, scan: () => [] };
  }

  const alts: Alternative[] = [];
  const sources: string[] = [];
  let group = 1;
  for (const d of detectors) {
    for (const p of d.patterns) {
      alts.push({ detector: d, group, sticky: new RegExp(p, "y") });
      sources.push(`(${p})`);
      group += 1 + groupCount(p);
    }
  }
  const combined = new RegExp(sources.join("|"), "g");
  const prefilter = new RegExp(prefilterSource(detectors));

  /** Which alternative produced the match. */
  const which = (m: RegExpExecArray): number => {
    for (let i = 0; i < alts.length; i++) if (m[alts[i]!.group] !== undefined) return i;
    return -1;
  };

  /**
   * Finds the next confirmed match at or after `from`; returns [altIndex, start, end] or
   * undefined. Mutates `combined.lastIndex`.
   */
  const next = (text: string, from: number): [Detector, number, number] | undefined => {
    combined.lastIndex = from;
    for (;;) {
      const m = combined.exec(text);
      if (m === null) return undefined;
      const start = m.index;
      const i = which(m);
      const alt = alts[i]!;
      if (!alt.detector.confirm || alt.detector.confirm(m[0])) return [alt.detector, start, start + m[0].length];
      // Later alternatives at the same position (rare: only after a failed confirmation).
      for (let j = i + 1; j < alts.length; j++) {
        const a = alts[j]!;
        a.sticky.lastIndex = start;
        const s = a.sticky.exec(text);
        if (s !== null && (!a.detector.confirm || a.detector.confirm(s[0]))) return [a.detector, start, start + s[0].length];
      }
      combined.lastIndex = start + 1;
    }
  };

  const replacement = (value: string, type: string): string => applyStrategy(value, strategy, type, key) ?? "";

  return {
    detectors: names,
    strategy,
    mask(text) {
      if (!prefilter.test(text)) return undefined;
      let out = "";
      let last = 0;
      let found = false;
      for (let hit = next(text, 0); hit !== undefined; hit = next(text, hit[2])) {
        const [d, start, end] = hit;
        out += text.slice(last, start) + replacement(text.slice(start, end), d.name);
        last = end;
        found = true;
      }
      if (!found) return undefined;
      return out + text.slice(last);
    },
    scan(text) {
      const out: TextMatch[] = [];
      if (!prefilter.test(text)) return out;
      for (let hit = next(text, 0); hit !== undefined; hit = next(text, hit[2])) out.push({ detector: hit[0].name, start: hit[1], end: hit[2] });
      return out;
    },
  };
}
