/**
 * Attack tests for the SQL classifier (issue 13, class 3: SQL that runs SQL, and calls in
 * disguise), end to end: a real PostgreSQL behind a real gateway whose policy denies a set of
 * functions (`exfil*`, pg_read_file, pg_sleep, lo_import, vault.steal) and `dynamic` statements.
 * A raw wire client hides a denied function wherever PostgreSQL's grammar lets an expression, a
 * call or SQL text sit, over the simple and the extended protocol.
 *
 * Witnesses are the target's, never the gateway's account of itself: every `exfil` function moves
 * a sequence (nextval is not rolled back, so a call inside a statement that fails later still
 * shows), read over a direct connection; and the target's statement log (log_statement = all)
 * must never contain the attack's text. DDL that would wire `exfil` into a later, implicit call
 * (a default, a trigger, an operator) is "fired" directly afterwards, inside a transaction that is
 * rolled back, so a definition that slipped through shows as a call. Each attack is also run
 * directly on the target once, as a control: there the witness must move, so an unchanged witness
 * through the gateway means something.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { loadSqlParser, normalizeSql } from "../../src/policy/sql/classify.js";
import {
  type PgMessage, RawPg, bindMessage, closeMessage, errorFields, executeMessage, parseMessage, queryMessage, rawLogin, startupPacket, syncMessage, typed,
} from "../support/raw-pg.js";
import { connectDirect, UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const DENIED = ["exfil*", "pg_read_file", "pg_sleep", "lo_import", "vault.steal"];
const RULES = [
  { name: "no-exfil", when: { sql: { functions: DENIED } }, action: "deny" },
  { name: "no-dynamic", when: { sql: { statements: ["dynamic"] } }, action: "deny" },
];
type Rule = "no-exfil" | "no-dynamic" | "default-deny-unknown";

/** Every `exfil` overload (and vault.steal) calls this; IMMUTABLE so it may sit in indexes, generated columns and checks. */
const WITNESS_BODY = "begin perform nextval('public.exfil_calls'); return 1; end";
const FIXTURES = [
  "create sequence exfil_calls",
  `create function exfil() returns int language plpgsql immutable as $$${WITNESS_BODY}$$`,
  `create function exfil(text) returns int language plpgsql immutable as $$${WITNESS_BODY}$$`,
  `create function exfil(anyelement) returns int language plpgsql immutable as $$${WITNESS_BODY}$$`,
  `create function exfil(int, int) returns int language plpgsql immutable as $$${WITNESS_BODY}$$`,
  "create function exfil_trigger() returns trigger language plpgsql as $$begin perform nextval('public.exfil_calls'); return new; end$$",
  "create function noop_trigger() returns trigger language plpgsql as $$begin return new; end$$",
  "create procedure noop(int) language sql as 'select 1'",
  "create table orders (id int primary key, note text, amount int)",
  "insert into orders values (1, 'a', 10), (2, 'b', 20)",
  "create table exfil_box (v int)",
  `create function exfil(exfil_box) returns int language plpgsql immutable as $$${WITNESS_BODY}$$`,
  // Objects already in the database that call exfil: the classifier cannot see into them.
  "create view exfil_view as select exfil() as n",
  "create domain exfil_domain as int check (exfil(value) > 0)",
  // vault.steal is denied by its qualified name; public.steal is a harmless namesake.
  "create schema vault",
  `create function vault.steal() returns int language plpgsql as $$${WITNESS_BODY}$$`,
  "create function public.steal() returns int language sql as 'select 0'",
];

type Mode = "simple" | "extended";

interface Attack {
  name: string;
  sql: string;
  /** The rule that must refuse it. */
  rule: Rule;
  /** Statements the gateway allows, sent first on the same session (and before the control). */
  before?: string[];
  /** Run directly after the attack, in a transaction rolled back: what would call exfil had the attack's DDL been made. */
  fire?: string;
  /** COPY FROM STDIN data, sent when the target asks for it. */
  copy?: string;
  /** Bind parameters (text) for the extended protocol. */
  params?: string[];
  /** Default both; several statements in one text go by the simple protocol only (Parse takes one). */
  modes?: Mode[];
  /** Why the attack is not run directly as a control, when it is not (the target refuses it itself; no witness moves). */
  noControl?: string;
}

const A = (name: string, sql: string, rule: Rule, more: Partial<Attack> = {}): Attack => ({ name, sql, rule, ...more });
const SIMPLE: Mode[] = ["simple"];
const EXTENDED: Mode[] = ["extended"];

const ATTACKS: { theme: string; attacks: Attack[] }[] = [
  {
    theme: "calls in attribute notation",
    attacks: [
      A("a literal's attribute", "select ('x'::text).exfil", "no-exfil"),
      A("a table alias's attribute", "select o.exfil from orders o", "no-exfil"),
      A("a table's attribute", "select orders.exfil from orders", "no-exfil"),
      A("a whole row's attribute", "select (o).exfil from orders o", "no-exfil"),
      A("a column's attribute", "select (o.note).exfil from orders o", "no-exfil"),
      A("an attribute in WHERE", "select 1 from orders o where o.exfil > 0", "no-exfil"),
      A("an attribute of a bound parameter", "select ($1::text).exfil", "no-exfil", { params: ["x"], modes: EXTENDED }),
    ],
  },
  {
    theme: "SQL that runs SQL",
    attacks: [
      A("ts_stat over a literal query", "select * from ts_stat('select to_tsvector(exfil()::text)')", "no-exfil"),
      A("ts_rewrite over a literal query", "select ts_rewrite('a'::tsquery, 'select ''a''::tsquery, exfil()::text::tsquery')", "no-exfil"),
      A("query_to_xml over a literal query", "select query_to_xml('select exfil()', true, true, '')", "no-exfil"),
      A("query_to_xml over computed text", "select query_to_xml('select ex' || 'fil()', true, true, '')", "no-dynamic"),
      A("query_to_xml over a bound parameter", "select query_to_xml($1, true, true, '')", "no-dynamic", { params: ["select exfil()"], modes: EXTENDED }),
      A("ts_stat in attribute notation over a bound parameter", "select ($1::text).ts_stat", "no-dynamic", { params: ["select to_tsvector(exfil()::text)"], modes: EXTENDED }),
      A("xpath over query_to_xml", "select xpath('//text()', query_to_xml('select exfil()', true, true, ''))", "no-exfil"),
      A("query_to_xmlschema and query_to_xml_and_xmlschema", "select query_to_xml_and_xmlschema('select exfil()', true, true, '')", "no-exfil"),
      A("table_to_xml of a view that calls exfil", "select table_to_xml('exfil_view', true, true, '')", "no-dynamic"),
      A("schema_to_xml", "select schema_to_xml('public', true, true, '')", "no-dynamic"),
      A("database_to_xml", "select database_to_xml(true, true, '')", "no-dynamic"),
      A("cursor_to_xml", "select cursor_to_xml('c', 1, true, true, '')", "no-dynamic", { before: ["begin", "declare c cursor for select * from exfil_view"] }),
      A("a DO block", "do $$ begin perform exfil(); end $$", "no-exfil"),
      A("a DO block's EXECUTE of a literal", "do $$ begin execute 'select exfil()'; end $$", "no-exfil"),
      A("a DO block's EXECUTE of computed text", "do $$ begin execute 'select ex' || 'fil()'; end $$", "no-dynamic"),
    ],
  },
  {
    theme: "COPY",
    attacks: [
      A("COPY FROM STDIN WHERE", "copy orders from stdin where exfil() > 0", "no-exfil", { copy: "9\tz\t90\n" }),
      A("COPY FROM STDIN WHERE, attribute notation", "copy orders from stdin with (format csv) where ('x'::text).exfil > 0", "no-exfil", { copy: "9,z,90\n" }),
      A("COPY (query) TO", "copy (select exfil()) to stdout", "no-exfil"),
      A("COPY (query WHERE) TO", "copy (select * from orders where exfil() > 0) to stdout", "no-exfil"),
    ],
  },
  {
    theme: "expressions hidden in the grammar",
    attacks: [
      A("INSERT RETURNING", "insert into orders values (3, 'c', 30) returning exfil()", "no-exfil"),
      A("UPDATE RETURNING", "update orders set amount = amount where id = 1 returning exfil()", "no-exfil"),
      A("DELETE RETURNING", "delete from orders where id = 2 returning exfil()", "no-exfil"),
      A("ON CONFLICT DO UPDATE SET", "insert into orders values (1, 'a', 10) on conflict (id) do update set amount = exfil()", "no-exfil"),
      A("ON CONFLICT DO UPDATE WHERE", "insert into orders values (1, 'a', 10) on conflict (id) do update set amount = 1 where exfil() > 0", "no-exfil"),
      A("a window frame offset", "select sum(amount) over (order by id rows between exfil() preceding and current row) from orders", "no-exfil"),
      A("TABLESAMPLE argument", "select * from orders tablesample system (exfil())", "no-exfil"),
      A("TABLESAMPLE REPEATABLE", "select * from orders tablesample bernoulli (100) repeatable (exfil())", "no-exfil"),
      A("LIMIT", "select * from orders limit exfil()", "no-exfil"),
      A("OFFSET", "select * from orders offset exfil()", "no-exfil"),
      A("FETCH FIRST", "select * from orders fetch first (exfil()) rows only", "no-exfil"),
      A("GROUP BY", "select count(*) from orders group by exfil(id)", "no-exfil"),
      A("HAVING", "select note from orders group by note having max(exfil(amount)) > 0", "no-exfil"),
      A("ORDER BY", "select * from orders order by exfil(id)", "no-exfil"),
      A("CASE", "select case when id > 0 then exfil() end from orders", "no-exfil"),
      A("COALESCE", "select coalesce(null, exfil())", "no-exfil"),
      A("an array subscript", "select (array[1, 2])[exfil()]", "no-exfil"),
      A("VALUES", "values (exfil())", "no-exfil"),
      A("FROM", "select * from exfil()", "no-exfil"),
      A("ROWS FROM", "select * from rows from (generate_series(1, 1), exfil()) as t(a, b)", "no-exfil"),
      A("LATERAL", "select * from orders o, lateral (select exfil(o.id)) x", "no-exfil"),
      A("a CTE", "with a as materialized (select exfil()) select * from a", "no-exfil"),
      A("a scalar subquery", "select (select (select exfil()))", "no-exfil"),
      A("OPERATOR(pg_catalog.+) syntax", "select 1 operator(pg_catalog.+) exfil()", "no-exfil"),
      A("CALL", "call noop(exfil())", "no-exfil"),
      A("EXPLAIN (planning folds the immutable call)", "explain select exfil()", "no-exfil"),
      A("EXPLAIN ANALYZE", "explain analyze select exfil()", "no-exfil"),
      A("a typmod expression", "select 1::numeric(exfil())", "no-exfil", { noControl: "PostgreSQL refuses non-constant type modifiers itself" }),
      A("EXECUTE of a PREPAREd statement", "execute q(exfil())", "no-exfil", { before: ["prepare q(int) as select $1"] }),
    ],
  },
  {
    theme: "spellings of the name",
    attacks: [
      A("comments and case", "select /* exfil */ EXFIL /* ( */ ( -- )\n)", "no-exfil"),
      A("a quoted identifier", `select "exfil"()`, "no-exfil"),
      A("a Unicode-escaped identifier", `select U&"\\0065xfil"()`, "no-exfil"),
      A("a Unicode-escaped identifier with UESCAPE", `select U&"!0065xfil" UESCAPE '!' ()`, "no-exfil"),
      A("schema-qualified", "select public.exfil()", "no-exfil"),
      A("schema-qualified and quoted", `select "public"."exfil"()`, "no-exfil"),
      A("a built-in wrapper (pg_sleep_for calls pg_sleep)", "select pg_sleep_for('0 seconds')", "no-exfil", { noControl: "pg_sleep moves no witness: the target's log is the witness" }),
      A("a built-in wrapper in attribute notation", "select ('2000-01-01'::timestamptz).pg_sleep_until", "no-exfil", { noControl: "as above" }),
    ],
  },
  {
    theme: "search_path",
    attacks: [
      A("SET search_path, then an unqualified call", "select steal()", "no-exfil", { before: ["set search_path = vault, public"] }),
      A("SET search_path and the call in one message", "set search_path = vault, public; select steal()", "no-exfil", { modes: SIMPLE }),
      A("set_config of search_path, then the call", "select set_config('search_path', 'vault, public', false); select steal()", "no-exfil", { modes: SIMPLE }),
      A("a statement prepared under one path, run under another (PostgreSQL re-parses it)", "execute p", "no-exfil", {
        before: ["prepare p as select steal()", "set search_path = vault, public"],
      }),
    ],
  },
  {
    theme: "DDL that wires exfil into a later call",
    attacks: [
      A("a column DEFAULT", "create table t_default (a int default exfil(), b int)", "no-exfil", { fire: "insert into t_default (b) values (1)" }),
      A("ALTER ... SET DEFAULT", "alter table orders alter amount set default exfil()", "no-exfil", { fire: "insert into orders (id) values (100)" }),
      A("a generated column", "create table t_generated (a int, b int generated always as (exfil(a)) stored)", "no-exfil", { fire: "insert into t_generated (a) values (1)" }),
      A("a CHECK constraint", "create table t_check (a int check (exfil(a) > 0))", "no-exfil", { fire: "insert into t_check values (1)" }),
      A("a domain", "create domain d_exfil as int check (exfil(value) > 0)", "no-exfil", { fire: "select 1::d_exfil" }),
      A("a trigger", "create trigger tr_exfil before insert on orders for each row execute function exfil_trigger()", "no-exfil", { fire: "insert into orders values (101, 'x', 1)" }),
      A("a trigger's WHEN", "create trigger tr_when before insert on orders for each row when (exfil(new.id) > 0) execute function noop_trigger()", "no-exfil", { fire: "insert into orders values (102, 'x', 1)" }),
      A("a cast", "create cast (exfil_box as int) with function exfil(exfil_box)", "no-exfil", { fire: "select (row(1)::exfil_box)::int" }),
      A("an operator", "create operator ### (leftarg = int, rightarg = int, function = exfil)", "no-exfil", { fire: "select 1 ### 2" }),
      A("an aggregate", "create aggregate agg_exfil(int) (sfunc = exfil, stype = int)", "no-exfil", { fire: "select agg_exfil(id) from orders" }),
      A("an index expression", "create index i_exfil on orders (exfil(id))", "no-exfil", { fire: "insert into orders values (103, 'x', 1)" }),
      A("a partial index", "create index i_partial on orders (id) where exfil(id) > 0", "no-exfil", { fire: "insert into orders values (104, 'x', 1)" }),
      A("extended statistics", "create statistics st_exfil on (exfil(id)) from orders", "no-exfil", { fire: "analyze orders" }),
      A("an RLS policy", "create policy p_exfil on orders using (exfil(id) > 0)", "no-exfil", { fire: "alter table orders enable row level security; alter table orders force row level security; select * from orders" }),
      A("a rule", "create rule r_exfil as on insert to orders do also select exfil()", "no-exfil", { fire: "insert into orders values (105, 'x', 1)" }),
      A("a view", "create view v_exfil as select exfil()", "no-exfil", { fire: "select * from v_exfil" }),
      A("a materialized view", "create materialized view mv_exfil as select exfil()", "no-exfil"),
      A("CREATE TABLE AS", "create table t_as as select exfil()", "no-exfil"),
      A("SELECT INTO", "select exfil() into t_into", "no-exfil"),
      A("ADD COLUMN with a default", "alter table orders add column z int default exfil()", "no-exfil"),
      A("ADD CONSTRAINT CHECK", "alter table orders add constraint c_exfil check (exfil(id) > 0)", "no-exfil"),
      A("a SQL function wrapping exfil", "create function wrap_sql() returns int language sql as $$ select exfil() $$", "no-exfil", { fire: "select wrap_sql()" }),
      A("a SQL function with a standard body", "create function wrap_atomic() returns int language sql return exfil()", "no-exfil", { fire: "select wrap_atomic()" }),
      A("a PL/pgSQL function wrapping exfil", "create function wrap_plpgsql() returns int language plpgsql as $$ begin return exfil(); end $$", "no-exfil", { fire: "select wrap_plpgsql()" }),
      A("a parameter default", "create function wrap_default(a int default exfil()) returns int language sql as 'select $1'", "no-exfil", { fire: "select wrap_default()" }),
      A("a PL/pgSQL function EXECUTEing a literal", "create function wrap_execute() returns void language plpgsql as $$ begin execute 'select exfil()'; end $$", "no-exfil", { fire: "select wrap_execute()" }),
      A("a PL/pgSQL function EXECUTEing computed text", "create function wrap_computed() returns void language plpgsql as $$ begin execute 'select ex' || 'fil()'; end $$", "no-dynamic", { fire: "select wrap_computed()" }),
      A("a SQL function running computed SQL text", "create function wrap_xml() returns xml language sql as $$ select query_to_xml('select ex' || 'fil()', true, true, '') $$", "no-dynamic", { fire: "select wrap_xml()" }),
      A("a function defining a function", "create function wrap_outer() returns int language sql as $$ create function wrap_inner() returns int language plpgsql as $b$ begin return exfil(); end $b$; select 1 $$", "no-exfil", {
        fire: "select wrap_outer(); select wrap_inner()",
      }),
    ],
  },
];

const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const cstr = (s: string) => Buffer.from(`${s}\0`);
/** Bind with text parameters (raw-pg's bindMessage binds none). */
const bindWith = (params: string[]) =>
  typed("B", Buffer.concat([cstr(""), cstr(""), i16(0), i16(params.length), ...params.flatMap((p) => [i32(Buffer.byteLength(p)), Buffer.from(p)]), i16(0)]));
const copyData = (data: string) => typed("d", data);
const copyDone = () => typed("c");
/** FunctionCall (fast path) of a function by OID, no arguments, text result. */
const functionCall = (oid: number) => typed("F", Buffer.concat([i32(oid), i16(0), i16(0), i16(0)]));

/**
 * Sends frames and reads to the next ReadyForQuery; answers a CopyInResponse with `copy` (or
 * nothing) and CopyDone, as a client would.
 */
async function roundTrip(conn: RawPg, frames: Buffer[], copy = ""): Promise<PgMessage[]> {
  await conn.write(Buffer.concat(frames));
  const out: PgMessage[] = [];
  for (;;) {
    const m = await conn.readMessage(15_000);
    out.push(m);
    if (m.type === "G") await conn.write(Buffer.concat([...(copy ? [copyData(copy)] : []), copyDone()]));
    if (m.type === "Z") return out;
  }
}
const errorsOf = (msgs: PgMessage[]) => msgs.filter((m) => m.type === "E").map((m) => errorFields(m.body));

/** The frames of one statement in a protocol. */
function framesOf(sql: string, mode: Mode, params: string[] = []): Buffer[] {
  return mode === "simple" ? [queryMessage(sql)] : [parseMessage("", sql), bindWith(params), executeMessage(""), syncMessage()];
}

describe("classifier attacks: denied functions hidden in SQL (target's witnesses)", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let direct: pg.Client;
  const targetLog = () => readFileSync(target.pg.logFile, "utf8");
  const calls = async () => {
    const r = await direct.query<{ last_value: string; is_called: boolean }>("select last_value, is_called from exfil_calls");
    return r.rows[0]!.is_called ? Number(r.rows[0]!.last_value) : 0;
  };
  const viaGateway = async () => (await rawLogin(gw.port, await gw.token())).conn;
  /** A raw session straight to the target (trust authentication): the control. */
  const straight = async () => {
    const conn = await RawPg.connect(target.pg.port, target.pg.host);
    await conn.write(startupPacket({ user: UPSTREAM_USER, database: "app" }));
    const login = await conn.readUntil("Z", 15_000);
    assert.equal(errorsOf(login).length, 0, JSON.stringify(errorsOf(login)));
    return conn;
  };
  /** Runs `sql` directly inside a transaction that is rolled back; errors (the object does not exist) are expected. */
  const fire = async (sql: string) => {
    await direct.query("begin");
    try { await direct.query(sql); } catch { /* not defined: nothing to call */ }
    await direct.query("rollback");
  };
  let auditSeq = 0;
  /** Decision records written since the last call. */
  const newDecisions = () => {
    const rows = gw.gw.store.readAudit(auditSeq, 100_000);
    if (rows.length > 0) auditSeq = rows[rows.length - 1]!.seq;
    return rows.filter((r) => r.type === "decision").map((r) => JSON.parse(r.data) as Record<string, unknown>);
  };

  before(async () => {
    await loadSqlParser();
    target = await startTarget({ authMethod: "trust", settings: { log_statement: "all" } });
    gw = await startTestGateway({ target, overrides: { rules: RULES } });
    direct = await connectDirect(target);
    for (const sql of FIXTURES) await direct.query(sql);
  });
  after(async () => {
    await direct?.end();
    await gw?.stop();
    await target?.stop();
  });

  /** The attack through the gateway: refused by its rule, nothing ran, the target never saw it, the audit names it. */
  async function refused(a: Attack, mode: Mode): Promise<void> {
    const conn = await viaGateway();
    try {
      for (const b of a.before ?? []) assert.deepEqual(errorsOf(await roundTrip(conn, [queryMessage(b)])), [], `${b} is allowed`);
      newDecisions();
      const witness = await calls();
      const errors = errorsOf(await roundTrip(conn, framesOf(a.sql, mode, a.params), a.copy));
      assert.equal(errors[0]?.C, "42501", JSON.stringify(errors));
      assert.equal(errors[0]?.M, `portcullis: denied by rule ${a.rule}`);
      if (a.fire) await fire(a.fire);
      assert.equal(await calls(), witness, "exfil did not run");
      assert.ok(!targetLog().includes(a.sql), "the target never received the text");
      const decisions = newDecisions().filter((d) => d.action === "deny" && d.rule === a.rule);
      assert.ok(decisions.some((d) => d.statement === normalizeSql(a.sql)), `the audit names the statement: ${JSON.stringify(decisions)}`);
    } finally {
      conn.destroy();
    }
  }

  /** The same attack straight at the target (in a transaction rolled back): exfil runs. */
  async function control(a: Attack, mode: Mode): Promise<void> {
    const conn = await straight();
    try {
      const witness = await calls();
      await roundTrip(conn, [queryMessage("begin")]);
      for (const b of a.before ?? []) await roundTrip(conn, [queryMessage(b)]);
      await roundTrip(conn, framesOf(a.sql, mode, a.params), a.copy);
      if (a.fire) await roundTrip(conn, [queryMessage(a.fire)]);
      await roundTrip(conn, [queryMessage("rollback")]);
      assert.ok((await calls()) > witness, "run directly, the attack calls exfil");
    } finally {
      conn.destroy();
    }
  }

  for (const { theme, attacks } of ATTACKS) {
    describe(theme, () => {
      for (const a of attacks) {
        const modes = a.modes ?? ["simple", "extended"];
        it(`${a.name}: ${a.sql.replace(/\s+/g, " ")}`, async () => {
          for (const mode of modes) await refused(a, mode);
          if (!a.noControl) await control(a, modes[0]!);
        });
      }
    });
  }

  describe("the extended protocol's names and the fast path", () => {
    it("a statement name reused for exfil after an allowed statement is refused, and Bind of it finds nothing", async () => {
      const conn = await viaGateway();
      try {
        const witness = await calls();
        assert.deepEqual(errorsOf(await roundTrip(conn, [parseMessage("s1", "select 1"), bindMessage("", "s1"), executeMessage(""), syncMessage()])), []);
        let errors = errorsOf(await roundTrip(conn, [closeMessage("S", "s1"), parseMessage("s1", "select exfil() /* reuse-s1 */"), bindMessage("", "s1"), executeMessage(""), syncMessage()]));
        assert.equal(errors[0]?.M, "portcullis: denied by rule no-exfil");
        errors = errorsOf(await roundTrip(conn, [bindMessage("", "s1"), executeMessage(""), syncMessage()]));
        assert.equal(errors[0]?.C, "26000", "s1 is gone: it was closed, and the redefinition never reached the target");
        // The unnamed statement: reused without a Close.
        assert.deepEqual(errorsOf(await roundTrip(conn, [parseMessage("", "select 2"), bindMessage("", ""), executeMessage(""), syncMessage()])), []);
        errors = errorsOf(await roundTrip(conn, [parseMessage("", "select exfil() /* reuse-unnamed */"), bindMessage("", ""), executeMessage(""), syncMessage()]));
        assert.equal(errors[0]?.M, "portcullis: denied by rule no-exfil");
        assert.equal(await calls(), witness);
        assert.doesNotMatch(targetLog(), /reuse-s1|reuse-unnamed/);
      } finally {
        conn.destroy();
      }
    });

    it("a fast-path FunctionCall of exfil by OID is refused", async () => {
      const oid = Number((await direct.query("select 'exfil()'::regprocedure::oid as oid")).rows[0].oid);
      const conn = await viaGateway();
      try {
        const witness = await calls();
        const errors = errorsOf(await roundTrip(conn, [functionCall(oid)]));
        assert.equal(errors[0]?.C, "42501", JSON.stringify(errors));
        assert.equal(await calls(), witness);
      } finally {
        conn.destroy();
      }
      // Control: the same message straight at the target calls it.
      const conn2 = await straight();
      try {
        const witness = await calls();
        assert.deepEqual(errorsOf(await roundTrip(conn2, [functionCall(oid)])), []);
        assert.ok((await calls()) > witness);
      } finally {
        conn2.destroy();
      }
    });
  });

  describe("what the classifier cannot see (docs/policy.md)", () => {
    // Objects already in the database call functions the statement does not name. These tests
    // pin the documented limitation: the gateway allows them, and the database runs exfil.
    for (const [what, sql] of [
      ["a view whose body calls exfil", "select * from exfil_view"],
      ["a domain whose CHECK calls exfil, through a cast (a type's input)", "select 1::exfil_domain"],
    ] as const) {
      it(`${what} is allowed: ${sql}`, async () => {
        const conn = await viaGateway();
        try {
          const witness = await calls();
          assert.deepEqual(errorsOf(await roundTrip(conn, [queryMessage(sql)])), []);
          assert.ok((await calls()) > witness, "exfil ran inside the database");
        } finally {
          conn.destroy();
        }
      });
    }
  });
});
