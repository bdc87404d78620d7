/**
 * Masks sensitive values inside free text with a set of detectors.
 *
 * How a text is scanned (compiled once per detector set, strategy and key):
 *
 * - Two anchor scans, each one global RegExp, each a single pass over the text:
 *   - the *dense* scan: digit shapes every digit-based detector needs (8 digits in a row, 4+4
 *     digits, 3-2-4, 3-3-4, a dotted quad, `+` and a country code...), written unrolled so that
 *     V8's Boyer–Moore lookahead skips most positions of ordinary text, even digit-heavy rows;
 *   - the *sparse* scan: anchors led by a rare character or a literal (`@`, `::`, `-----BEGIN `,
 *     `J(?<=eyJ)`, the `_`/`-` of token prefixes, `AKIA`...).
 *   Why not one RegExp for everything: V8 can only skip ahead when every alternative starts with
 *   rare characters; one alternative starting with a letter class makes it try every position
 *   against every alternative. Measured on customer rows, one combined RegExp of the detector
 *   patterns ran at 16–80 MB/s; the two anchor scans together run several times faster (see
 *   bench/masking-detectors.ts).
 * - Around an anchor, the strict patterns decide: most detectors try them (sticky) at the start(s)
 *   the anchor implies — the anchor itself, two characters before a `J` of `eyJ`, the country code
 *   before an IBAN's digits, the local part before an `@`; IPv6 searches a small window around its
 *   `::`. Strict matches are then confirmed (Luhn, mod 97, SSA ranges, JOSE header...).
 * - Texts too short to hold any match skip the scans (a 5-character field costs a length check).
 *
 * Overlaps: within a scan, anchors are taken in text order and a match never starts before the end
 * of the previous one; at one anchor the earliest-starting confirmed candidate wins, ties going to
 * the detector first in priority order (see `DETECTORS`); an anchor that leads nowhere lets the
 * other anchors matching at the same position, then later positions, try. Between the two scans,
 * overlapping matches are merged into one masked span typed after the one that starts first (the
 * longer one when both start together), so no part of either value survives.
 *
 * Strategies: `null` cannot stand inside text, so with `null` a match is removed (replaced by "").
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
  /** The spans `mask` replaces: confirmed matches, merged where they overlap, in order. */
  scan(text: string): TextMatch[];
}

/** Characters of left context kept for the strict patterns' lookbehinds (the SSN label needs ~35). */
const CONTEXT_BEFORE = 48;
/** Characters of right context kept for their lookaheads. */
const CONTEXT_AFTER = 4;

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

interface Hit {
  detector: Detector;
  start: number;
  end: number;
}

/** One RegExp of several detectors' strict patterns, searched in a window (window mode). */
class StrictUnion {
  private readonly re: RegExp;
  /** Per alternative: its top-level group, detector, and a sticky copy for same-position retries. */
  private readonly alts: { group: number; detector: Detector; sticky: RegExp }[] = [];
  readonly lead: number;
  readonly maxLength: number;

  constructor(detectors: readonly Detector[]) {
    for (const d of detectors) {
      if (!(d.lead !== undefined && d.lead >= 0 && Number.isFinite(d.maxLength))) throw new Error(`window-mode detector ${d.name} needs lead and a finite maxLength`);
    }
    const sources: string[] = [];
    let group = 1;
    for (const d of detectors) {
      for (const p of d.patterns) {
        this.alts.push({ group, detector: d, sticky: new RegExp(p, "y") });
        sources.push(`(${p})`);
        group += 1 + groupCount(p);
      }
    }
    this.re = new RegExp(sources.join("|"), "g");
    this.lead = Math.max(...detectors.map((d) => d.lead!));
    this.maxLength = Math.max(...detectors.map((d) => d.maxLength!));
  }

  /** The first confirmed match starting in [max(floor, p - lead), q). */
  find(text: string, p: number, q: number, floor: number): Hit | undefined {
    const lo = Math.max(floor, p - this.lead);
    const from = Math.max(0, lo - CONTEXT_BEFORE);
    const to = Math.min(text.length, q + this.maxLength + CONTEXT_AFTER);
    const sub = from === 0 && to === text.length ? text : text.slice(from, to);
    const limit = q - from;
    const re = this.re;
    re.lastIndex = lo - from;
    for (;;) {
      const m = re.exec(sub);
      if (m === null || m.index >= limit) return undefined;
      let i = 0;
      while (m[this.alts[i]!.group] === undefined) i++;
      const alt = this.alts[i]!;
      if (!alt.detector.confirm || alt.detector.confirm(m[0])) return { detector: alt.detector, start: from + m.index, end: from + m.index + m[0].length };
      // A failed confirmation: later alternatives at the same position (rare), then move on.
      for (let j = i + 1; j < this.alts.length; j++) {
        const a = this.alts[j]!;
        a.sticky.lastIndex = m.index;
        const s = a.sticky.exec(sub);
        if (s !== null && (!a.detector.confirm || a.detector.confirm(s[0]))) return { detector: a.detector, start: from + m.index, end: from + m.index + s[0].length };
      }
      re.lastIndex = m.index + 1;
    }
  }
}

/** Exact mode: a detector's strict patterns tried (sticky) at the start(s) its anchor implies. */
class StrictAt {
  private readonly sticky: RegExp[];
  constructor(readonly detector: Detector) {
    this.sticky = detector.patterns.map((p) => new RegExp(p, "y"));
  }

  /** Candidate starts for an anchor at p, earliest first. */
  starts(text: string, p: number): number | readonly number[] {
    return this.detector.start!(text, p);
  }

  findAt(text: string, start: number, floor: number): Hit | undefined {
    if (start < floor || start < 0) return undefined;
    for (const re of this.sticky) {
      re.lastIndex = start;
      const m = re.exec(text);
      if (m !== null && (!this.detector.confirm || this.detector.confirm(m[0]))) return { detector: this.detector, start, end: start + m[0].length };
    }
    return undefined;
  }
}

/** What one anchor leads to: window-mode detectors (as one union) and exact-mode detectors. */
interface AnchorTarget {
  sticky: RegExp;
  window?: StrictUnion;
  exact: StrictAt[];
}

/**
 * The earliest-starting confirmed match an anchor leads to; ties go to the detector first in
 * priority order. A candidate start no earlier than the best hit so far is not tried.
 */
function resolveAt(target: AnchorTarget, text: string, p: number, q: number, floor: number): Hit | undefined {
  let best = target.window?.find(text, p, q, floor);
  for (const e of target.exact) {
    const at = e.starts(text, p);
    if (typeof at === "number") {
      if (best === undefined || at < best.start) best = e.findAt(text, at, floor) ?? best;
      continue;
    }
    for (let k = 0; k < at.length; k++) {
      const start = at[k]!;
      if (best !== undefined && start >= best.start) break;
      const h = e.findAt(text, start, floor);
      if (h !== undefined) {
        best = h;
        break;
      }
    }
  }
  return best;
}

/** An anchor scan: one capturing group per anchor, each hit resolved against that anchor's detectors. */
class AnchorScan {
  private readonly re: RegExp;
  private readonly targets: AnchorTarget[];

  constructor(detectors: readonly Detector[]) {
    // Anchors, deduplicated, each with the detectors it serves (in priority order).
    const byAnchor = new Map<string, Detector[]>();
    for (const d of detectors) {
      for (const a of d.anchors) {
        if (groupCount(a) !== 0) throw new Error(`anchor of ${d.name} has a capturing group: ${a}`);
        byAnchor.set(a, [...(byAnchor.get(a) ?? []), d]);
      }
    }
    this.targets = [...byAnchor].map(([a, ds]) => {
      const win = ds.filter((d) => !d.start);
      return {
        sticky: new RegExp(a, "y"),
        ...(win.length ? { window: new StrictUnion(win) } : {}),
        exact: ds.filter((d) => d.start).map((d) => new StrictAt(d)),
      };
    });
    this.re = new RegExp([...byAnchor.keys()].map((a) => `(${a})`).join("|"), "g");
  }

  /** The confirmed hits, in order and non-overlapping; undefined when there are none. */
  run(text: string): Hit[] | undefined {
    let out: Hit[] | undefined;
    const re = this.re;
    const targets = this.targets;
    let floor = 0;
    re.lastIndex = 0;
    for (;;) {
      const m = re.exec(text);
      if (m === null) return out;
      const p = m.index;
      let i = 0;
      while (m[i + 1] === undefined) i++;
      let hit = resolveAt(targets[i]!, text, p, p + m[0].length, floor);
      // Another anchor may also match here (rare): give its detectors their chance.
      for (let j = i + 1; hit === undefined && j < targets.length; j++) {
        const t = targets[j]!;
        t.sticky.lastIndex = p;
        const s = t.sticky.exec(text);
        if (s !== null) hit = resolveAt(t, text, p, p + s[0].length, floor);
      }
      if (hit !== undefined) {
        (out ??= []).push(hit);
        floor = hit.end;
        re.lastIndex = Math.max(hit.end, p + 1);
      } else re.lastIndex = p + 1;
    }
  }
}

export function compileTextMasker(detectorNames: readonly string[], strategy: Strategy, key: Buffer): TextMasker {
  if (!isStrategy(strategy)) throw new Error(`unknown masking strategy "${String(strategy)}"`);
  const detectors = resolveDetectors(detectorNames);
  const names = detectors.map((d) => d.name);

  const denseDetectors = detectors.filter((d) => d.scan === "dense");
  const sparseDetectors = detectors.filter((d) => d.scan === "sparse");
  const dense = denseDetectors.length ? new AnchorScan(denseDetectors) : undefined;
  const sparse = sparseDetectors.length ? new AnchorScan(sparseDetectors) : undefined;

  const find = (text: string): TextMatch[] | undefined => {
    // Length floors: no dense match is shorter than 7 characters ("1.2.3.4"); the shortest sparse
    // ones are an email or IPv6 address (6, "a@b.co"); everything else sparse takes 14 or more.
    const n = text.length;
    if (n < 6) return undefined;
    const d = dense && n >= 7 ? dense.run(text) : undefined;
    const sp = sparse && (n >= 14 || text.indexOf("@") >= 0 || text.indexOf(":") >= 0) ? sparse.run(text) : undefined;
    if (d === undefined && sp === undefined) return undefined;
    return mergeSpans(d ? toSpans(d, text) : [], sp ? toSpans(sp, text) : []);
  };

  // `redact` does not depend on the value: one string per detector, built once.
  const redacted = new Map(names.map((n) => [n, applyStrategy("", "redact", n, key)!]));
  const replacement =
    strategy === "redact" ? (_value: string, type: string): string => redacted.get(type)! : (value: string, type: string): string => applyStrategy(value, strategy, type, key) ?? "";

  return {
    detectors: names,
    strategy,
    mask(text) {
      const found = find(text);
      if (found === undefined) return undefined;
      let out = "";
      let last = 0;
      for (const s of found) {
        out += text.slice(last, s.start) + replacement(text.slice(s.start, s.end), s.detector);
        last = s.end;
      }
      return out + text.slice(last);
    },
    scan(text) {
      return find(text) ?? [];
    },
  };
}

/** A scan's hits as value spans (a hit may hold several spans, or only part of itself); stays in order. */
function toSpans(hits: Hit[], text: string): TextMatch[] {
  const out: TextMatch[] = [];
  for (const h of hits) {
    if (h.detector.values) {
      for (const [s, e] of h.detector.values(text.slice(h.start, h.end))) out.push({ detector: h.detector.name, start: h.start + s, end: h.start + e });
    } else out.push({ detector: h.detector.name, start: h.start, end: h.end });
  }
  return out;
}

/**
 * Merges two ordered, internally non-overlapping span lists (reusing their objects); spans that
 * overlap become one span typed after the one that starts first (the longer one on a tie).
 */
function mergeSpans(a: TextMatch[], b: TextMatch[]): TextMatch[] {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const out: TextMatch[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    let next: TextMatch;
    if (y === undefined || (x !== undefined && (x.start < y.start || (x.start === y.start && x.end >= y.end)))) {
      next = x!;
      i++;
    } else {
      next = y;
      j++;
    }
    const last = out[out.length - 1];
    if (last !== undefined && next.start < last.end) {
      if (next.end > last.end) last.end = next.end;
    } else out.push(next);
  }
  return out;
}
