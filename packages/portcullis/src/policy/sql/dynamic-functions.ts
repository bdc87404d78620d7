/**
 * Functions that run SQL they are given as text, or read relations named at run time: a call of
 * one is `dynamic` work, because what it does is decided by a value, not by the statement's syntax.
 *
 * The list comes from a survey of PostgreSQL 15's catalog (core and every contrib extension shipped
 * with it), described in docs/policy.md: a call graph over the server binary and the extension
 * libraries finds every function whose C code reaches the SPI entry points that run SQL
 * (SPI_execute*, SPI_prepare*, SPI_cursor_open*, SPI_cursor_find/fetch); functions that take a
 * relation name (regclass or text) were read one by one for whether they return the relation's data.
 *
 * Where the arguments are literals the classifier also classifies what the call will run (the SQL
 * text, or the relation it names), so table rules see it; `dynamic` stays either way.
 */
import type { TableName } from "./classify.js";

/** One argument as the classifier sees it: the value of a string literal, or undefined. */
export type Literal = string | undefined;

export interface DynamicCall {
  /** SQL text the call will run (literal arguments only). */
  sql: string[];
  /** Relations the call reads by name (literal arguments only). */
  relations: TableName[];
  /** False for calls that only read a relation named by a literal (sequences): not `dynamic`. */
  dynamic: boolean;
}

/** A function's arguments: positional literals, and named ones (`f(query => '...')`) by name. */
export interface CallArgs {
  count: number;
  literal(position: number, name?: string): Literal;
  /** Every literal argument, in written order. */
  all(): string[];
}

type Rule = (a: CallArgs) => DynamicCall | undefined;

const call = (sql: Literal[], relations: TableName[] = [], dynamic = true): DynamicCall => ({
  sql: sql.filter((x): x is string => x !== undefined),
  relations,
  dynamic,
});

/** The SQL text is an argument: query_to_xml(query text, ...), ts_stat(query text, ...). */
const sqlArg = (position: number, name?: string): Rule => (a) => call([a.literal(position, name)]);

/** Reads the relation named by an argument (regclass or text): table_to_xml(tbl regclass, ...). */
const relationArg = (position: number, name?: string, dynamic = true): Rule => (a) => {
  const t = qualifiedName(a.literal(position, name));
  return call([], t ? [t] : [], dynamic);
};

/** Runs SQL of its own, or data of a whole schema, database or cursor: nothing to classify further. */
const opaque: Rule = () => call([]);

const RULES: Record<string, Rule> = {
  // Core (utils/adt/xml.c): run the query, read the table, schema or database, fetch the cursor.
  query_to_xml: sqlArg(0, "query"),
  query_to_xmlschema: sqlArg(0, "query"),
  query_to_xml_and_xmlschema: sqlArg(0, "query"),
  cursor_to_xml: opaque,
  cursor_to_xmlschema: opaque,
  table_to_xml: relationArg(0, "tbl"),
  table_to_xmlschema: relationArg(0, "tbl"),
  table_to_xml_and_xmlschema: relationArg(0, "tbl"),
  schema_to_xml: opaque,
  schema_to_xmlschema: opaque,
  schema_to_xml_and_xmlschema: opaque,
  database_to_xml: opaque,
  database_to_xmlschema: opaque,
  database_to_xml_and_xmlschema: opaque,
  // Core (tsearch): ts_stat(query text [, weights]); ts_rewrite(query tsquery, select text). The
  // three-tsquery overload of ts_rewrite runs nothing.
  ts_stat: sqlArg(0, "query"),
  ts_rewrite: (a) => (a.count === 3 ? undefined : call([a.literal(1)])),
  // Core: logical decoding returns the changes of every table.
  pg_logical_slot_get_changes: opaque,
  pg_logical_slot_peek_changes: opaque,
  pg_logical_slot_get_binary_changes: opaque,
  pg_logical_slot_peek_binary_changes: opaque,
  // tablefunc: crosstab(source_sql [, category_sql]) runs both; connectby splices its relation
  // name and columns into SQL text.
  crosstab: (a) => call([a.literal(0), a.literal(1)]),
  crosstab2: sqlArg(0),
  crosstab3: sqlArg(0),
  crosstab4: sqlArg(0),
  connectby: (a) => call([spliced("SELECT * FROM", a.literal(0))]),
  // xml2: xpath_table(key, document, relation, xpaths, criteria) runs
  // `SELECT key, document FROM relation WHERE criteria`, all spliced text.
  xpath_table: (a) => {
    const [key, doc, rel, , crit] = [0, 1, 2, 3, 4].map((i) => a.literal(i));
    return call([key !== undefined && doc !== undefined && rel !== undefined && crit !== undefined ? `SELECT ${key}, ${doc} FROM ${rel} WHERE ${crit}` : undefined]);
  },
  // pageinspect: the raw pages (the data) of a relation named by text.
  get_raw_page: relationArg(0, "relname"),
  // Sequences named by a string: the sequence is read (and moved); its name is a relation.
  currval: relationArg(0, undefined, false),
  nextval: relationArg(0, undefined, false),
  setval: relationArg(0, undefined, false),
  pg_sequence_last_value: relationArg(0, undefined, false),
};

/**
 * dblink (every function of the extension): runs SQL text over a connection that may well come
 * back to this same database, as another session. Every literal argument that parses as SQL is
 * classified.
 */
const DBLINK = /^dblink/;

/**
 * What a call of `name` (lower-cased, without schema) does beyond its own result, or undefined
 * for a function that does not run SQL or read relations by name.
 */
export function dynamicCall(name: string, args: CallArgs): DynamicCall | undefined {
  if (DBLINK.test(name)) return call(args.all());
  const rule = Object.hasOwn(RULES, name) ? RULES[name] : undefined;
  return rule?.(args);
}

/** Names of the functions this module knows, for documentation and tests. */
export const DYNAMIC_FUNCTION_NAMES: readonly string[] = [...Object.keys(RULES), "dblink*"];

/**
 * Built-in SQL-language functions whose body calls another function: calling the wrapper calls
 * those too, so a rule on pg_sleep also catches pg_sleep_for. From a survey of every SQL and
 * PL/pgSQL function of PostgreSQL 15's catalog and of every contrib extension shipped with it
 * (bodies classified, column names dropped); contrib overloads of core names (citext's
 * regexp_match, replace, strpos, ...) are left out, since the name alone does not tell them apart.
 * Core callees are pg_catalog's (the bodies are bound to them); contrib ones are unqualified.
 */
const IMPLIED_CALLS: Record<string, readonly string[]> = {
  pg_sleep_for: ["pg_catalog.pg_sleep", "pg_catalog.clock_timestamp"],
  pg_sleep_until: ["pg_catalog.pg_sleep", "pg_catalog.clock_timestamp"],
  substring: ["pg_catalog.similar_to_escape"],
  bit_length: ["pg_catalog.length", "pg_catalog.octet_length"],
  log10: ["pg_catalog.log"],
  path_contain_pt: ["pg_catalog.on_ppath"],
  ts_debug: ["pg_catalog.ts_parse", "pg_catalog.ts_token_type", "pg_catalog.ts_lexize", "pg_catalog.get_current_ts_config"],
  // pageinspect, pg_freespacemap, earthdistance (over cube)
  heap_page_item_attrs: ["heap_page_items", "tuple_data_split"],
  pg_freespace: ["pg_catalog.pg_relation_size", "pg_catalog.generate_series", "pg_catalog.current_setting"],
  earth_box: ["cube_enlarge", "gc_to_sec"],
  earth_distance: ["sec_to_gc", "cube_distance"],
  gc_to_sec: ["earth"],
  sec_to_gc: ["earth"],
  latitude: ["cube_ll_coord", "earth"],
  longitude: ["cube_ll_coord"],
  ll_to_earth: ["cube", "earth"],
};

/**
 * The functions a call of `name` (lower-cased, as written) calls besides itself: the callees of a
 * built-in wrapper, for an unqualified or pg_catalog-qualified name (a contrib function's schema is
 * wherever the extension was installed, so any schema there).
 */
export function impliedCalls(name: string): readonly string[] {
  const dot = name.lastIndexOf(".");
  const bare = name.slice(dot + 1);
  const callees = Object.hasOwn(IMPLIED_CALLS, bare) ? IMPLIED_CALLS[bare]! : [];
  if (dot < 0 || name.slice(0, dot) === "pg_catalog") return callees;
  return callees.some((c) => c.startsWith("pg_catalog.")) ? [] : callees;
}

function spliced(prefix: string, text: Literal): string | undefined {
  return text === undefined ? undefined : `${prefix} ${text}`;
}

/**
 * A relation name as regclass input reads it (stringToQualifiedNameList): dot-separated
 * identifiers, unquoted ones folded to lower case, `""` inside quotes. A number (an OID) or
 * anything else yields undefined.
 */
export function qualifiedName(text: Literal): TableName | undefined {
  if (text === undefined) return undefined;
  const parts: string[] = [];
  let i = 0;
  const s = text;
  for (;;) {
    while (s[i] === " " || s[i] === "\t" || s[i] === "\n" || s[i] === "\r") i++;
    let part = "";
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) return undefined;
        if (s[i] === '"') {
          if (s[i + 1] === '"') { part += '"'; i += 2; continue; }
          i++;
          break;
        }
        part += s[i++];
      }
      if (part === "") return undefined;
    } else {
      const m = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(s.slice(i));
      if (!m) return undefined;
      // PostgreSQL folds ASCII letters only (downcase_identifier, UTF-8).
      part = m[0].replace(/[A-Z]/g, (c) => c.toLowerCase());
      i += m[0].length;
    }
    parts.push(part);
    while (s[i] === " " || s[i] === "\t" || s[i] === "\n" || s[i] === "\r") i++;
    if (i >= s.length) break;
    if (s[i] !== ".") return undefined;
    i++;
  }
  if (parts.length === 0 || parts.length > 3) return undefined;
  const name = parts[parts.length - 1]!;
  return parts.length === 1 ? { name } : { schema: parts[parts.length - 2]!, name };
}
