/**
 * Attack tests: a masked value cannot be laundered by storing it somewhere unmasked and reading it
 * back. On a connection with column rules, every statement that reads a masked column and writes or
 * stores anything is refused before it reaches the target; the target's own tables, settings and
 * large objects (read directly, not through the gateway) are the witnesses.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { connectDirect, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const SEED = "qv-laundered-secret-37";
const MASKING = [{ connections: ["app"], columns: ["customers.secret"], strategy: "redact" }];
const RULES = [{ name: "allow-unknown", when: { sql: { statements: ["unknown"] } }, action: "allow" }];

/** Every route tried: each must be refused with the masked-data-store rule. */
const ROUTES = [
  "insert into sink select secret from customers",
  "insert into sink values ((select secret from customers limit 1)) returning v",
  "insert into sink select upper(reverse(secret)) from customers",
  "insert into sink select encode(convert_to(secret, 'UTF8'), 'base64') from customers",
  "insert into sink select c::text from customers c",
  "insert into sink select row_to_json(customers)::text from customers",
  "insert into sink select x.s from (select secret as s from customers) x",
  "with x as (select secret from customers) insert into sink select * from x",
  "with x as (select * from customers) insert into sink select secret from x",
  "insert into sink select v from masked_view",
  "update sink set v = (select secret from customers limit 1)",
  "update sink set v = c.secret from customers c where c.id = 1",
  "merge into sink s using customers c on false when not matched then insert values (c.secret)",
  "create table copied as select secret from customers",
  "select secret into copied2 from customers",
  "create table copied3 as select * from customers",
  "select set_config('app.stash', secret, false) from customers limit 1",
  "select set_config('application_name', (select secret from customers limit 1), false)",
  "select lo_from_bytea(0, convert_to(secret, 'UTF8')) from customers limit 1",
  "select pg_notify('ch', secret) from customers",
  "PREPARE stash AS insert into sink select secret from customers",
  "call stash_proc((select secret from customers limit 1))",
  // DDL on the masked relation that computes new columns from masked ones.
  "alter table customers add column g text generated always as (upper(secret)) stored",
  "alter table customers alter column name type text using secret",
];

describe("masked data cannot be stored and read back", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let direct: pg.Client;

  before(async () => {
    target = await startTarget();
    gw = await startTestGateway({ target, overrides: { masking: MASKING, rules: RULES } });
    direct = await connectDirect(target);
    await direct.query("create table customers (id int primary key, secret text, name text)");
    await direct.query(`insert into customers select g, '${SEED}-' || g, 'name ' || g from generate_series(1, 3) g`);
    await direct.query("create table sink (v text)");
    await direct.query("create view masked_view as select id, secret as v from customers");
    await direct.query("create procedure stash_proc(v text) language sql as $$ insert into sink values (v) $$");
    await direct.query("create function shout(v text) returns int language plpgsql as $$ begin raise exception using errcode = '22000', message = v, detail = v, hint = v; end $$");
    await direct.query("analyze customers");
  });
  after(async () => {
    await direct?.end();
    await gw?.stop();
    await target?.stop();
  });

  it("refuses every statement that would store a masked value, over the simple and the extended protocol", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    for (const sql of ROUTES) {
      for (const extended of [false, true]) {
        const q = extended ? client.query(sql, []) : client.query(sql);
        await assert.rejects(q, (e: Error & { code?: string }) => e.code === "42501" && /masked-data-store/.test(e.message), `${extended ? "extended" : "simple"}: ${sql}`);
      }
    }
    // EXECUTE of a statement prepared directly on the target by name is judged by what it runs.
    assert.equal((await client.query("select current_setting('app.stash', true) as v")).rows[0].v ?? null, null);
    await client.end();
    // The witnesses, read directly from the target: nothing was stored anywhere.
    assert.equal(Number((await direct.query("select count(*) as n from sink")).rows[0].n), 0);
    assert.equal(Number((await direct.query("select count(*) as n from pg_largeobject_metadata")).rows[0].n), 0);
    const tables = (await direct.query("select relname from pg_class where relname like 'copied%'")).rows;
    assert.deepEqual(tables, []);
  });

  it("allows writes that read no masked column, and reading masked columns stays masked", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    await client.query("insert into sink values ('plain')");
    await client.query("insert into sink select name from customers where id = 1");
    await client.query("update customers set secret = 'replaced' where id = 3");
    // A view stores nothing: what it derives is masked when read, by lineage through its definition.
    await client.query("create view derived_view as select id, lower(secret) as s from customers");
    for (const r of (await client.query("select s from derived_view")).rows) assert.ok(!String(r.s).includes(SEED.toLowerCase()), `unmasked: ${r.s}`);
    const rows = (await client.query("select secret from customers order by id")).rows;
    for (const r of rows) assert.ok(!String(r.secret).includes(SEED), `unmasked: ${r.secret}`);
    const sink = (await client.query("select v from sink order by v")).rows.map((r) => r.v);
    assert.deepEqual(sink, ["name 1", "plain"]);
    await client.end();
    await direct.query("delete from sink");
  });

  it("reads that carry a masked value in disguise stay masked: whole rows, planner statistics, errors", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    const seen: string[] = [];
    const collect = (rows: Record<string, unknown>[]) => { for (const r of rows) seen.push(JSON.stringify(r)); };
    for (const sql of [
      "select c from customers c",
      "select c::text as t from customers c",
      "select row_to_json(c)::text as j from customers c",
      "select (c).secret from (select c from customers c) x",
      "select most_common_vals::text as m, histogram_bounds::text as h from pg_stats where tablename = 'customers'",
      "select * from pg_stats where tablename = 'customers'",
    ]) {
      for (const extended of [false, true]) collect((extended ? await client.query(sql, []) : await client.query(sql)).rows);
    }
    for (const sql of [
      "select secret::int from customers",
      "select secret::regclass from customers",
      "select xmlparse(document secret) from customers",
      "select shout(secret) from customers",
      "select to_date(secret, 'YYYY') from customers",
      "select secret::json from customers",
    ]) {
      for (const extended of [false, true]) {
        const err = await (extended ? client.query(sql, []) : client.query(sql)).then(() => undefined, (e: pg.DatabaseError) => e);
        assert.ok(err, `${sql} failed at the target`);
        seen.push(JSON.stringify({ m: err.message, d: err.detail, h: err.hint, w: err.where, q: err.internalQuery }));
      }
    }
    await client.end();
    assert.ok(seen.length > 20);
    for (const s of seen) assert.ok(!s.includes(SEED), `a masked value reached the agent: ${s}`);
  });

  it("a function body cannot be read differently later: no table turns into a view over pg_settings to switch standard_conforming_strings off for one call", async () => {
    // Read with standard_conforming_strings on (the gateway's reading, and PostgreSQL's while the
    // setting holds), leak()'s body is one SELECT of two literals; read with it off, it is three
    // statements, the second an INSERT of the masked column. Switching the setting off and back on
    // within one Query leaves no ParameterStatus behind: the switch itself must be impossible.
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    await client.query("create table fake_settings as select * from pg_settings with no data");
    await assert.rejects(
      client.query(`create rule "_RETURN" as on select to fake_settings do instead select * from pg_settings`),
      (e: Error & { code?: string }) => e.code === "42501" && /protected-setting/.test(e.message),
    );
    await client.query(String.raw`create function leak() returns void language sql as $f$ select '', ' ; insert into sink select secret from customers; select 1 --' $f$`);
    await client.query("update fake_settings set setting = 'off' where name = 'standard_conforming_strings'; select leak(); update fake_settings set setting = 'on' where name = 'standard_conforming_strings'");
    // Still an empty table: the UPDATEs touched no setting.
    assert.equal((await direct.query("select relkind from pg_class where relname = 'fake_settings'")).rows[0].relkind, "r");
    await client.end();
    const stored = (await direct.query("select v from sink")).rows.map((r: { v: string }) => r.v);
    assert.ok(!stored.some((v) => v.includes(SEED)), `a masked value was stored: ${stored.join(", ")}`);
  });
});
