/**
 * Settings that change how PostgreSQL's lexer reads SQL text. The gateway classifies SQL with the
 * parser's defaults (standard_conforming_strings on, one encoding that never hides an ASCII quote
 * or backslash in a multi-byte character); if an agent could change them, the same bytes would
 * mean one statement to the gateway and another to the target. So they cannot be changed through
 * the gateway, and a session whose target reports other values is refused.
 */
export const LEXER_SETTINGS = new Set(["standard_conforming_strings", "client_encoding", "backslash_quote"]);

/** PostgreSQL's spellings of UTF8 (encoding names are matched ignoring case and punctuation). */
const encodingName = (value: string): string => value.toLowerCase().replace(/[^a-z0-9]/g, "");
const isUtf8Name = (value: string): boolean => ["utf8", "unicode"].includes(encodingName(value));

/**
 * Whether a setting value keeps the gateway's reading of SQL valid. The gateway reads bytes as
 * UTF-8 only: under any other client or server encoding (even a single-byte one such as LATIN1,
 * where 0xFE and 0xFF are distinct characters that UTF-8 cannot tell apart) the same bytes could
 * be one statement to the gateway and another to the target, so every other encoding is refused.
 */
export function lexerSettingSafe(name: string, value: string): boolean {
  const n = name.toLowerCase();
  if (n === "standard_conforming_strings") return value.toLowerCase() === "on";
  if (n === "server_encoding") return isUtf8Name(value);
  // SQL_ASCII as the client's encoding means "no conversion": a UTF8 server then reads and
  // verifies the bytes as UTF-8, exactly as the gateway does (libpq sends it under the C locale).
  if (n === "client_encoding") return isUtf8Name(value) || encodingName(value) === "sqlascii";
  // The default; under UTF8 "on" reads the same, but the setting is protected, not reasoned about.
  if (n === "backslash_quote") return value.toLowerCase() === "safe_encoding";
  return true;
}
