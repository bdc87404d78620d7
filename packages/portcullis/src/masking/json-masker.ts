/**
 * Masks JSON by key and by value.
 *
 * - By key: a value under a key whose name matches one of `keys` (globs: `*` any run of
 *   characters, `?` one; whole name; case-insensitive: `ssn`, `*_token`, `card*`) is masked whole
 *   with `keyStrategy`, typed after the key as written (`[REDACTED:ssn]`). A string is masked as
 *   is; a number or boolean as its text (`1234567` → `***4567` with `partial`); `null` stays null;
 *   an object or array under such a key has every leaf masked that way, at any depth. With the
 *   `null` strategy every such leaf becomes null.
 * - By value: every other string runs through the detectors (a `TextMasker`); so does the text of
 *   every other number (a card number stored as a JSON number is masked, and becomes a string), and
 *   every object key (maps keyed by email address). A number the detectors mask with the `null`
 *   strategy becomes null.
 *
 * Two entry points with the same rules:
 * - the masker itself, `(value) → value`, over parsed values: returns the very same object when
 *   nothing was masked (and shares unchanged subtrees otherwise);
 * - `maskJsonText(text)`: rewrites only the tokens it masks and leaves every other byte of the
 *   document as it was (whitespace, key order, number spelling, escapes), so large integers keep
 *   their precision; undefined when nothing was masked. Text that is not JSON is masked as plain
 *   text by the detectors instead. Masking keys may produce duplicate keys (two emails both
 *   redacted), which JSON text allows.
 */
import { anyGlob } from "../policy/glob.js";
import { applyStrategy, isStrategy, type Strategy } from "./strategies.js";
import type { TextMasker } from "./text-masker.js";

export interface JsonMaskerOptions {
  /** Key-name globs, case-insensitive: values under matching keys are masked whole. */
  keys?: readonly string[];
  /** Strategy for values under matching keys. Default `redact`. */
  keyStrategy?: Strategy;
  /** The per-deployment HMAC key; required when `keyStrategy` is `hash`. */
  key?: Buffer;
  /** Detectors for every other string, number text and object key. */
  detectors?: TextMasker;
}

export interface JsonMasker {
  /** Masks a parsed JSON value; the same reference back when nothing was masked. */
  (value: unknown): unknown;
  /** Masks a JSON document's text; undefined when nothing was masked. */
  maskJsonText(text: string): string | undefined;
  /** The same masking over a document that arrives in pieces (json-stream.ts). */
  readonly tokens: TokenHandlers;
}

const EMPTY_KEY = Buffer.alloc(0);
/** Per-key results (glob match, detectors) are cached; documents repeat the same few keys. */
const KEY_CACHE_LIMIT = 4096;

export function compileJsonMasker(opts: JsonMaskerOptions): JsonMasker {
  const keyStrategy = opts.keyStrategy ?? "redact";
  if (!isStrategy(keyStrategy)) throw new Error(`unknown masking strategy "${String(keyStrategy)}"`);
  if (keyStrategy === "hash" && !opts.key) throw new Error("the hash strategy needs the masking key");
  const hmacKey = opts.key ?? EMPTY_KEY;
  const detectors = opts.detectors;
  const matcher = opts.keys && opts.keys.length ? anyGlob(opts.keys, { caseInsensitive: true }) : undefined;
  const matchCache = new Map<string, boolean>();
  const nameCache = new Map<string, string>();

  const keyMatches = (name: string): boolean => {
    if (!matcher) return false;
    let hit = matchCache.get(name);
    if (hit === undefined) {
      hit = matcher(name);
      if (matchCache.size >= KEY_CACHE_LIMIT) matchCache.clear();
      matchCache.set(name, hit);
    }
    return hit;
  };

  /** An object key after the detectors (the same string when nothing was found). */
  const keyName = (name: string): string => {
    if (!detectors) return name;
    let out = nameCache.get(name);
    if (out === undefined) {
      out = detectors.mask(name) ?? name;
      if (nameCache.size >= KEY_CACHE_LIMIT) nameCache.clear();
      nameCache.set(name, out);
    }
    return out;
  };

  /** A leaf under a masked key, as text (or null). */
  const maskLeaf = (text: string, type: string): string | null => applyStrategy(text, keyStrategy, type, hmacKey);

  /** A number (as written) outside masked keys: undefined when the detectors leave it alone. */
  const maskNumberText = (text: string): string | null | undefined => {
    if (!detectors) return undefined;
    const masked = detectors.mask(text);
    if (masked === undefined) return undefined;
    return detectors.strategy === "null" && masked === "" ? null : masked;
  };

  // ---- parsed values --------------------------------------------------------------------------

  const underKey = (v: unknown, type: string): unknown => {
    if (v === null || v === undefined) return v;
    if (typeof v === "string") return maskLeaf(v, type);
    if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return maskLeaf(String(v), type);
    if (Array.isArray(v)) return v.map((x) => underKey(x, type));
    if (typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[keyName(k)] = underKey(x, type);
      return out;
    }
    return v;
  };

  const byValue = (v: unknown): unknown => {
    if (typeof v === "string") return detectors?.mask(v) ?? v;
    if (typeof v === "number" || typeof v === "bigint") {
      const m = maskNumberText(String(v));
      return m === undefined ? v : m;
    }
    if (v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const x = byValue(v[i]);
        if (x !== v[i] && !out) out = v.slice(0, i);
        if (out) out.push(x);
      }
      return out ?? v;
    }
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const name = keyName(k);
      const y = keyMatches(k) ? underKey(x, k) : byValue(x);
      if (name !== k || y !== x) changed = true;
      out[name] = y;
    }
    return changed ? out : v;
  };

  // ---- JSON text ------------------------------------------------------------------------------

  const tokens: TokenHandlers = {
      key: (name) => {
        const m = keyName(name);
        return m === name ? undefined : JSON.stringify(m);
      },
      keyMatches,
      string: (value, masked) => {
        if (masked !== undefined) return JSON.stringify(maskLeaf(value, masked));
        const m = detectors?.mask(value);
        return m === undefined ? undefined : JSON.stringify(m);
      },
      scalar: (raw, masked) => {
        if (masked !== undefined) return raw === "null" ? undefined : JSON.stringify(maskLeaf(raw, masked));
        if (raw === "true" || raw === "false" || raw === "null") return undefined;
        const m = maskNumberText(raw);
        return m === undefined ? undefined : JSON.stringify(m);
      },
  };

  const maskJsonText = (text: string): string | undefined => {
    const edits = jsonEdits(text, tokens);
    if (edits === undefined) return detectors?.mask(text); // not JSON: mask it as text
    if (edits.length === 0) return undefined;
    let out = "";
    let last = 0;
    for (const [start, end, replacement] of edits) {
      out += text.slice(last, start) + replacement;
      last = end;
    }
    return out + text.slice(last);
  };

  return Object.assign((value: unknown) => byValue(value), { maskJsonText, tokens });
}

export interface TokenHandlers {
  /** An object key (decoded); the replacement token, or undefined to keep it. */
  key(name: string): string | undefined;
  keyMatches(name: string): boolean;
  /** A string value (decoded); `masked` is the governing masked key's name, if any. */
  string(value: string, masked: string | undefined): string | undefined;
  /** A number, `true`, `false` or `null`, as written. */
  scalar(raw: string, masked: string | undefined): string | undefined;
}

/** A JSON number token (sticky: set lastIndex). Shared with the streaming masker. */
export const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

/** The index of the first non-whitespace character at or after i. */
export function skipWs(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 10 || c === 13 || c === 9) i++;
    else return i;
  }
}

/** The end of the string token starting at i (exclusive), or -1 when it is not a valid one. */
function stringEnd(text: string, i: number): number {
  STRING.lastIndex = i;
  return STRING.test(text) ? STRING.lastIndex : -1;
}

/** A string token's value (throws on a bad escape). */
export function decode(token: string): string {
  return token.indexOf("\\") < 0 ? token.slice(1, -1) : (JSON.parse(token) as string);
}

/**
 * Walks a JSON document's tokens without building it, and collects [start, end, replacement]
 * edits in order. Undefined when the text is not a single valid JSON value. Iterative (an explicit
 * stack), so nesting depth is not limited by the call stack.
 */
export function jsonEdits(text: string, h: TokenHandlers): Array<[number, number, string]> | undefined {
  const edits: Array<[number, number, string]> = [];
  /** Per open container: is it an object, and the masked key governing its contents (if any). */
  const objects: boolean[] = [];
  const maskedBy: Array<string | undefined> = [];
  const n = text.length;
  let i = 0;
  /** The masked key governing the next value. */
  let masked: string | undefined;
  /** Set when the next token must be an object key (after `{` or `,` in an object). */
  let wantKey = false;

  for (;;) {
    i = skipWs(text, i);
    if (wantKey) {
      // `"key":` inside the innermost object.
      if (text.charCodeAt(i) !== 34) return undefined;
      const end = stringEnd(text, i);
      if (end < 0) return undefined;
      const name = decode(text.slice(i, end));
      const r = h.key(name);
      if (r !== undefined) edits.push([i, end, r]);
      i = skipWs(text, end);
      if (text.charCodeAt(i) !== 58 /* : */) return undefined;
      i = skipWs(text, i + 1);
      masked = maskedBy[maskedBy.length - 1] ?? (h.keyMatches(name) ? name : undefined);
      wantKey = false;
    }
    // A value.
    if (i >= n) return undefined;
    const c = text.charCodeAt(i);
    if (c === 123 /* { */ || c === 91 /* [ */) {
      const object = c === 123;
      objects.push(object);
      maskedBy.push(masked);
      i = skipWs(text, i + 1);
      if (text.charCodeAt(i) !== (object ? 125 : 93)) {
        wantKey = object;
        continue;
      }
      i++;
      objects.pop();
      maskedBy.pop();
    } else if (c === 34 /* " */) {
      const end = stringEnd(text, i);
      if (end < 0) return undefined;
      const r = h.string(decode(text.slice(i, end)), masked);
      if (r !== undefined) edits.push([i, end, r]);
      i = end;
    } else {
      let raw: string | undefined;
      if (c === 116 /* t */ && text.startsWith("true", i)) raw = "true";
      else if (c === 102 /* f */ && text.startsWith("false", i)) raw = "false";
      else if (c === 110 /* n */ && text.startsWith("null", i)) raw = "null";
      else {
        NUMBER.lastIndex = i;
        raw = NUMBER.exec(text)?.[0];
      }
      if (raw === undefined) return undefined;
      const r = h.scalar(raw, masked);
      if (r !== undefined) edits.push([i, i + raw.length, r]);
      i += raw.length;
    }
    // After a value: close containers, or move on to the next element.
    for (;;) {
      i = skipWs(text, i);
      const depth = objects.length;
      if (depth === 0) return i === n ? edits : undefined;
      const object = objects[depth - 1]!;
      const d = text.charCodeAt(i);
      if (d === 44 /* , */) {
        i++;
        if (object) wantKey = true;
        else masked = maskedBy[depth - 1];
        break;
      }
      if (d !== (object ? 125 : 93)) return undefined;
      i++;
      objects.pop();
      maskedBy.pop();
    }
  }
}
