/**
 * The cache key of a SQL text: the text with numeric constants replaced by `?`, so statements
 * that differ only in numbers (`WHERE aid = 123` / `WHERE aid = 456`) share one classification.
 * Numbers do not change what a statement does to which table (EXPLAIN's option values aside, which
 * are left alone), so the classification is the same; a property test over the policy corpus checks it.
 * The scanner keeps string literals, quoted identifiers, dollar-quoted bodies, comments,
 * parameters (`$1`) and identifiers (`t1`) exactly as written, following PostgreSQL's lexer on
 * where each of those begins and ends; on anything it does not understand it returns the text
 * unchanged, which only costs a cache miss.
 */

const isIdentChar = (c: number) =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c >= 128;
const isDigit = (c: number) => c >= 48 && c <= 57;

export function literalFreeKey(sql: string): string {
  // In EXPLAIN (ANALYZE 0) a number decides whether the statement runs: such texts keep their numbers.
  if (/explain/i.test(sql)) return sql;
  let out = "";
  let last = 0;
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 39 /* ' */) {
      // E'..' strings honour backslash escapes; standard strings do not (standard_conforming_strings).
      const prev = i > 0 ? sql.charCodeAt(i - 1) : 0;
      const escapes = (prev === 69 || prev === 101) && (i < 2 || !isIdentChar(sql.charCodeAt(i - 2)));
      let j = i + 1;
      for (;;) {
        if (j >= n) return sql;
        const d = sql.charCodeAt(j);
        if (escapes && d === 92) { j += 2; continue; }
        if (d === 39) {
          if (sql.charCodeAt(j + 1) === 39) { j += 2; continue; }
          break;
        }
        j++;
      }
      i = j + 1;
    } else if (c === 34 /* " */) {
      const end = sql.indexOf('"', i + 1);
      if (end < 0) return sql;
      i = end + 1;
      while (sql.charCodeAt(i) === 34) {
        const next = sql.indexOf('"', i + 1);
        if (next < 0) return sql;
        i = next + 1;
      }
    } else if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? n : end + 1;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      let depth = 1;
      let j = i + 2;
      while (depth > 0) {
        if (j >= n) return sql;
        if (sql.charCodeAt(j) === 47 && sql.charCodeAt(j + 1) === 42) { depth++; j += 2; }
        else if (sql.charCodeAt(j) === 42 && sql.charCodeAt(j + 1) === 47) { depth--; j += 2; }
        else j++;
      }
      i = j;
    } else if (c === 36 /* $ */ && !(i > 0 && isIdentChar(sql.charCodeAt(i - 1)))) {
      if (isDigit(sql.charCodeAt(i + 1))) {
        // $1: a parameter, kept.
        i++;
        while (isDigit(sql.charCodeAt(i))) i++;
        continue;
      }
      const m = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 64));
      if (!m) { i++; continue; }
      const end = sql.indexOf(m[0], i + m[0].length);
      if (end < 0) return sql;
      i = end + m[0].length;
    } else if (isDigit(c) && !(i > 0 && (isIdentChar(sql.charCodeAt(i - 1)) || sql.charCodeAt(i - 1) === 46))) {
      // A plain numeric constant: digits, an optional fraction, an optional exponent. Anything else
      // glued to it (`1from`, `0x1F`, `1_000`) is left to the parser: no key for this text.
      let j = i;
      while (isDigit(sql.charCodeAt(j))) j++;
      if (sql.charCodeAt(j) === 46) { j++; while (isDigit(sql.charCodeAt(j))) j++; }
      const e = sql.charCodeAt(j);
      if (e === 101 || e === 69) {
        let k = j + 1;
        if (sql.charCodeAt(k) === 43 || sql.charCodeAt(k) === 45) k++;
        if (!isDigit(sql.charCodeAt(k))) return sql;
        while (isDigit(sql.charCodeAt(k))) k++;
        j = k;
      }
      if (j < n && (isIdentChar(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46)) return sql;
      out += sql.slice(last, i) + "?";
      last = j;
      i = j;
    } else {
      i++;
    }
  }
  return last === 0 ? sql : out + sql.slice(last);
}
