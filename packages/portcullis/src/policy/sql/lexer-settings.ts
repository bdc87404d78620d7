/**
 * Settings that change how PostgreSQL's lexer reads SQL text. The gateway classifies SQL with the
 * parser's defaults (standard_conforming_strings on, one encoding that never hides an ASCII quote
 * or backslash in a multi-byte character); if an agent could change them, the same bytes would
 * mean one statement to the gateway and another to the target. So they cannot be changed through
 * the gateway, and a session whose target reports other values is refused.
 */
import { type Node, isObj, stringConstant, strings, unwrap } from "./ast.js";

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
 * Whether a set_config call leaves every lexer setting as the gateway reads it: the setting it
 * names is known (a string constant, or `name` pinned by the WHERE of a query over pg_settings,
 * `pinnedName`) and is not a lexer setting, or the value is a string constant safe for it.
 */
export function setConfigKeepsLexing(args: unknown, pinned: PinnedSetting | undefined): boolean {
  const list = Array.isArray(args) ? args : [];
  const first = unwrap(list[0]);
  const name = stringConstant(list[0]) ?? (first?.[0] === "ColumnRef" && pinned && settingsNameColumn(first[1].fields, pinned.relation) ? pinned.name : undefined);
  if (name === undefined) return false;
  if (!LEXER_SETTINGS.has(name.toLowerCase())) return true;
  const value = stringConstant(list[1]);
  return value !== undefined && lexerSettingSafe(name, value);
}

/** `name`, or `<relation>.name` where relation is how the query names pg_settings (not an outer query's relation). */
function settingsNameColumn(fields: unknown, relation: string): boolean {
  const parts = strings(fields);
  if (!Array.isArray(fields) || parts.length !== fields.length) return false;
  return (parts.length === 1 && parts[0] === "name") || (parts.length === 2 && parts[0] === relation && parts[1] === "name");
}

/** The setting name every row of a query over pg_settings has, and the name the query gives pg_settings. */
export interface PinnedSetting {
  name: string;
  relation: string;
}

/**
 * The one setting name a query over pg_settings can pass to set_config in its target list:
 * pg_dump's `SELECT set_config(name, '...', false) FROM pg_settings WHERE name = '...'`. Only when
 * the query reads pg_settings alone (no join, no set operation) and its WHERE is, or is a
 * conjunction containing, `name = 'constant'`: then every row the target list is computed for has
 * that name. A set_config in the WHERE itself is not covered (it may run before the filter).
 */
export function pinnedSetting(select: Node): PinnedSetting | undefined {
  if (select.op !== undefined && select.op !== "SETOP_NONE") return undefined;
  const from = Array.isArray(select.fromClause) ? select.fromClause : [];
  const rel = from.length === 1 ? unwrap(from[0]) : undefined;
  if (rel?.[0] !== "RangeVar" || rel[1].relname !== "pg_settings") return undefined;
  if (rel[1].schemaname !== undefined && rel[1].schemaname !== "pg_catalog") return undefined;
  const alias = isObj(rel[1].alias) && typeof rel[1].alias.aliasname === "string" ? rel[1].alias.aliasname : undefined;
  const relation = alias ?? "pg_settings";
  const where = unwrap(select.whereClause);
  const conjuncts = where?.[0] === "BoolExpr" && where[1].boolop === "AND_EXPR" && Array.isArray(where[1].args) ? where[1].args : [select.whereClause];
  for (const c of conjuncts) {
    const eq = unwrap(c);
    if (eq?.[0] !== "A_Expr" || eq[1].kind !== "AEXPR_OP" || strings(eq[1].name).join(".") !== "=") continue;
    for (const [column, constant] of [[eq[1].lexpr, eq[1].rexpr], [eq[1].rexpr, eq[1].lexpr]] as const) {
      const col = unwrap(column);
      const value = stringConstant(constant);
      if (col?.[0] === "ColumnRef" && settingsNameColumn(col[1].fields, relation) && value !== undefined) return { name: value, relation };
    }
  }
  return undefined;
}
