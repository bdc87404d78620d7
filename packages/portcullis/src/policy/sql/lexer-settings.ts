/**
 * Settings that change how PostgreSQL's lexer reads SQL text. The gateway classifies SQL with the
 * parser's defaults (standard_conforming_strings on, one encoding that never hides an ASCII quote
 * or backslash in a multi-byte character); if an agent could change them, the same bytes would
 * mean one statement to the gateway and another to the target. So they cannot be changed through
 * the gateway, and a session whose target reports other values is refused.
 */
import { type Node, stringConstant } from "./ast.js";

export const LEXER_SETTINGS = new Set(["standard_conforming_strings", "client_encoding", "backslash_quote"]);

/** PostgreSQL's spellings of boolean true (parse_bool: a unique prefix of true or yes, on, 1). */
const TRUE_SPELLINGS = new Set(["t", "tr", "tru", "true", "y", "ye", "yes", "on", "1"]);

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
  if (n === "standard_conforming_strings") return TRUE_SPELLINGS.has(value.trim().toLowerCase());
  if (n === "server_encoding") return isUtf8Name(value);
  // SQL_ASCII as the client's encoding means "no conversion": a UTF8 server then reads and
  // verifies the bytes as UTF-8, exactly as the gateway does (libpq sends it under the C locale).
  if (n === "client_encoding") return isUtf8Name(value) || encodingName(value) === "sqlascii";
  // The default; under UTF8 "on" reads the same, but the setting is protected, not reasoned about.
  if (n === "backslash_quote") return value.toLowerCase() === "safe_encoding";
  return true;
}

/**
 * Whether a SET (or the SET of ALTER ROLE/DATABASE/SYSTEM, or of a function) leaves every lexer
 * setting as the gateway reads it: it names another setting, or gives a lexer setting the one value
 * it must have anyway (`SET client_encoding = 'UTF8'` in every dump, libpq's PQsetClientEncoding,
 * `SET standard_conforming_strings = on`). RESET and DEFAULT go back to a value the gateway did not
 * read, and count as a change.
 */
export function setKeepsLexing(set: Node): boolean {
  const name = typeof set.name === "string" ? set.name.toLowerCase() : "";
  if (!LEXER_SETTINGS.has(name)) return true;
  if (set.kind !== "VAR_SET_VALUE" || !Array.isArray(set.args) || set.args.length !== 1) return false;
  const value = stringConstant(set.args[0]);
  return value !== undefined && lexerSettingSafe(name, value);
}

/**
 * Values of restrict_nonsystem_relation_kind that pg_dump (15.8+) sets with
 * `SELECT set_config(name, '<value>', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'`.
 * PostgreSQL accepts neither for any lexer setting (no encoding is named so, neither is a boolean
 * or a backslash_quote value), so whatever `name` turns out to be (a CTE or a temp view can shadow
 * pg_settings, an operator can shadow `=`), such a call cannot change how SQL is read.
 */
const NO_LEXER_SETTING_ACCEPTS = new Set(["view, foreign-table", "view"]);

/**
 * Whether a set_config call leaves every lexer setting as the gateway reads it: it names another
 * setting as a string constant; or it gives a lexer setting its safe value; or, whatever it names,
 * it gives a value no lexer setting accepts (pg_dump's). Decided by what the call can set, never
 * by the query around it.
 */
export function setConfigKeepsLexing(args: unknown): boolean {
  const list = Array.isArray(args) ? args : [];
  const name = stringConstant(list[0]);
  const value = stringConstant(list[1]);
  if (name === undefined) return value !== undefined && NO_LEXER_SETTING_ACCEPTS.has(value);
  if (!LEXER_SETTINGS.has(name.toLowerCase())) return true;
  return value !== undefined && lexerSettingSafe(name, value);
}
