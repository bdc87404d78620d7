/**
 * Glob patterns of the rule language: `*` matches any run of characters except the separator
 * (when one is given), `**` matches across separators, `?` one character. Compiled once per
 * rule into a RegExp.
 */
export interface GlobOptions {
  /** `*` stops at this character ("/" for paths); none: `*` matches anything. */
  separator?: string;
  caseInsensitive?: boolean;
}

const escapeRe = (s: string) => s.replace(/[.+^${}()|[\]\\]/g, "\\$&");

export function globToRegExp(pattern: string, opts: GlobOptions = {}): RegExp {
  const sep = opts.separator ? escapeRe(opts.separator) : undefined;
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === "*") {
      if (pattern[i + 1] === "*") {
        i++;
        // "/**/" also matches "/": `/v1/**/refunds` covers `/v1/refunds`.
        if (sep && pattern[i + 1] === opts.separator && pattern[i - 2] === opts.separator) {
          i++;
          re += `(?:.*${sep})?`;
        } else re += ".*";
      } else re += sep ? `[^${sep}]*` : ".*";
    } else if (ch === "?") re += sep ? `[^${sep}]` : ".";
    else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`, opts.caseInsensitive ? "is" : "s");
}

export type Matcher = (value: string) => boolean;

/** A matcher that is true when any of the patterns matches. */
export function anyGlob(patterns: readonly string[], opts: GlobOptions = {}): Matcher {
  const res = patterns.map((p) => globToRegExp(p, opts));
  return (value) => res.some((r) => r.test(value));
}
