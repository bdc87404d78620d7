/**
 * Masking strategies (SPEC §5): what a sensitive value becomes. Pure and deterministic; `hash`
 * takes the per-deployment key (loaded elsewhere, from data_dir) as an argument.
 *
 *   redact  → `[REDACTED:<type>]`
 *   partial → the last 4 characters kept, every other character replaced by `*`
 *             (characters are Unicode code points; a value of 4 or fewer becomes all `*`)
 *   hash    → `hash:<first 16 hex digits of HMAC-SHA256(key, value)>`: stable for a key, so
 *             masked values still join and group; the type is not part of the input, so the
 *             same value hashes alike whichever column or detector found it
 *   null    → null (inside text, where null cannot stand, the caller removes the match)
 */
import { createHmac } from "node:crypto";

export const STRATEGIES = ["redact", "partial", "hash", "null"] as const;
export type Strategy = (typeof STRATEGIES)[number];

export function isStrategy(s: unknown): s is Strategy {
  return typeof s === "string" && (STRATEGIES as readonly string[]).includes(s);
}

/** How many trailing characters `partial` keeps. */
export const PARTIAL_KEEP = 4;

export function redact(type: string): string {
  return `[REDACTED:${type}]`;
}

/** Keeps the last 4 code points; every earlier code point becomes one `*`. */
export function partial(value: string): string {
  // Fast path for the common all-BMP-without-surrogates case: length in code units == code points.
  let surrogates = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      surrogates = true;
      break;
    }
  }
  if (!surrogates) {
    if (value.length <= PARTIAL_KEEP) return "*".repeat(value.length);
    return "*".repeat(value.length - PARTIAL_KEEP) + value.slice(value.length - PARTIAL_KEEP);
  }
  const cps = Array.from(value);
  if (cps.length <= PARTIAL_KEEP) return "*".repeat(cps.length);
  return "*".repeat(cps.length - PARTIAL_KEEP) + cps.slice(cps.length - PARTIAL_KEEP).join("");
}

/** `hash:` and the first 16 hex digits (64 bits) of HMAC-SHA256(key, UTF-8 value). */
export function hashValue(value: string, key: Buffer): string {
  return "hash:" + createHmac("sha256", key).update(value, "utf8").digest("hex").slice(0, 16);
}

/**
 * Applies a strategy to one sensitive value. `type` names what was found (a detector name, a
 * column pattern, a JSON key) and only shows in `redact`; `key` only matters for `hash`.
 */
export function applyStrategy(value: string, strategy: Strategy, type: string, key: Buffer): string | null {
  switch (strategy) {
    case "redact":
      return redact(type);
    case "partial":
      return partial(value);
    case "hash":
      return hashValue(value, key);
    case "null":
      return null;
    default:
      throw new Error(`unknown masking strategy "${String(strategy)}"`);
  }
}
