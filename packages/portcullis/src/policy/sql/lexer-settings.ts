/**
 * Settings that change how PostgreSQL's lexer reads SQL text. The gateway classifies SQL with the
 * parser's defaults (standard_conforming_strings on, one encoding that never hides an ASCII quote
 * or backslash in a multi-byte character); if an agent could change them, the same bytes would
 * mean one statement to the gateway and another to the target. So they cannot be changed through
 * the gateway, and a session whose target reports other values is refused.
 */
export const LEXER_SETTINGS = new Set(["standard_conforming_strings", "client_encoding", "backslash_quote"]);

/** Client-only encodings whose multi-byte characters can end in 0x5c (backslash) or 0x27 (quote). */
const UNSAFE_ENCODINGS = new Set(["sjis", "shiftjis", "shiftjis2004", "big5", "gbk", "gb18030", "uhc", "johab", "windows932", "windows936", "windows949", "windows950", "mskanji", "shiftjis", "sjis2004"]);

export function isUnsafeClientEncoding(value: string): boolean {
  return UNSAFE_ENCODINGS.has(value.toLowerCase().replace(/[^a-z0-9]/g, ""));
}

/** Whether a setting value the target reports keeps the gateway's reading of SQL valid. */
export function lexerSettingSafe(name: string, value: string): boolean {
  const n = name.toLowerCase();
  if (n === "standard_conforming_strings") return value.toLowerCase() === "on";
  if (n === "client_encoding") return !isUnsafeClientEncoding(value);
  return true;
}
