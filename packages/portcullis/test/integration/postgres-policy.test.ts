/**
 * SQL policy end to end: denied statements never reach the database (its own statement log is
 * the witness), over the simple protocol, the extended protocol and in pipelines; the session
 * stays usable; allowed traffic is untouched.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import postgres from "postgres";
import { errorFields, rawLogin, simpleQuery, typed } from "../support/raw-pg.js";
import { UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const run = promisify(execFile);

const RULES = [
  { name: "no-schema-changes", when: { sql: { statements: ["ddl", "truncate", "dynamic"] } }, action: "deny", message: "schema changes need a human" },
  { name: "no-server-files", when: { sql: { functions: ["pg_read_file", "pg_read_binary_file", "pg_ls_dir", "lo_import", "lo_export", "dblink*"] } }, action: "deny" },
  { name: "unbounded-delete", when: { sql: { statements: ["update", "delete"], no_where: true } }, action: "deny" },
  { name: "no-copy-program", when: { sql: { statements: ["copy_out", "copy_in"], program: true } }, action: "deny" },
];

const denial = (rule: string) => (err: Error & { code?: string }) => {
  assert.equal(err.code, "42501", err.message);
  assert.match(err.message, new RegExp(`^portcullis: denied by rule ${rule}`));
  return true;
};

describe("SQL policy through the gateway", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let direct: pg.Client;

  /** Every statement text the target received, from its own log (log_statement = all). */
  const targetLog = () => readFileSync(target.pg.logFile, "utf8");
  const rowCount = async () => Number((await direct.query("select count(*) as n from items")).rows[0].n);

  before(async () => {
    target = await startTarget({ settings: { log_statement: "all" } });
    gw = await startTestGateway({ target, overrides: { rules: RULES } });
    direct = new pg.Client(target.pg.clientConfig({ name: UPSTREAM_USER, password: "S3cr3t-upstream-pa55word-QX7" }, "app"));
    await direct.connect();
    await direct.query("create table items (id int primary key, name text)");
    await direct.query("insert into items select g, 'item ' || g from generate_series(1, 10) g");
  });
  after(async () => {
    await direct?.end();
    await gw?.stop();
    await target?.stop();
  });

  it("denies over the simple protocol; nothing reaches the database; the session stays usable", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    const cases: Array<[string, string]> = [
      ["DROP TABLE items /* simple-drop */", "no-schema-changes"],
      ["delete from items -- simple-delete", "unbounded-delete"],
      ["select pg_catalog.\"pg_read_file\"('/etc/hostname') as simple_read_file", "no-server-files"],
      ["COPY items TO PROGRAM 'touch /tmp/portcullis-simple-copy'", "no-copy-program"],
      ["select 1; DrOp TaBlE items; -- simple-multi", "no-schema-changes"],
    ];
    for (const [sql, rule] of cases) {
      await assert.rejects(client.query(sql), denial(rule));
      assert.equal((await client.query("select count(*)::int as n from items")).rows[0].n, 10, "session usable, data intact");
    }
    await client.end();
    const log = targetLog();
    for (const marker of ["simple-drop", "simple-delete", "simple_read_file", "portcullis-simple-copy", "simple-multi"]) {
      assert.ok(!log.includes(marker), `${marker} reached the target`);
    }
    assert.equal(await rowCount(), 10);
  });

  it("denies over the extended protocol (node-postgres with parameters)", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    await assert.rejects(client.query("delete from items /* ext-delete */", []), denial("unbounded-delete"));
    await assert.rejects(client.query({ name: "ext_read", text: "select pg_read_file($1) as ext_read_file", values: ["/etc/hostname"] }), denial("no-server-files"));
    await assert.rejects(client.query("update items set name = $1 /* ext-update */", ["x"]), denial("unbounded-delete"));
    const ok = await client.query("delete from items where id = $1 returning id", [10]);
    assert.deepEqual(ok.rows, [{ id: 10 }], "a bounded delete is allowed");
    await client.query("insert into items values ($1, $2)", [10, "item 10"]);
    await client.end();
    const log = targetLog();
    for (const marker of ["ext-delete", "ext_read_file", "ext-update"]) assert.ok(!log.includes(marker), `${marker} reached the target`);
    assert.equal(await rowCount(), 10);
  });

  it("a denial inside a transaction aborts it as a PostgreSQL error would, and ROLLBACK recovers", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    await client.query("begin");
    await client.query("delete from items where id = 1");
    await assert.rejects(client.query("truncate items"), denial("no-schema-changes"));
    await assert.rejects(client.query("select 1"), (e: Error & { code?: string }) => e.code === "25P02");
    await client.query("rollback");
    assert.equal((await client.query("select count(*)::int as n from items")).rows[0].n, 10);
    await client.end();
  });

  it("keeps a pipelined batch in step: postgres.js pipelines allowed and denied statements together", async () => {
    const sql = postgres({ ...gw.clientConfig(await gw.token()), username: "agent", max: 1, onnotice: () => {} });
    try {
      const results = await Promise.allSettled([
        sql`select count(*)::int as n from items`,
        sql.unsafe("drop table items /* pipe-drop */"),
        sql`select ${"still"}::text as v`,
        sql.unsafe("delete from items /* pipe-delete */"),
        sql`update items set name = name where id = ${1} returning id`,
      ]);
      assert.equal(results[0].status, "fulfilled");
      assert.deepEqual((results[0] as PromiseFulfilledResult<unknown[]>).value[0], { n: 10 });
      assert.equal(results[1].status, "rejected");
      assert.match(String((results[1] as PromiseRejectedResult).reason.message), /denied by rule no-schema-changes/);
      assert.equal(results[2].status, "fulfilled");
      assert.deepEqual((results[2] as PromiseFulfilledResult<unknown[]>).value[0], { v: "still" });
      assert.equal(results[3].status, "rejected");
      assert.match(String((results[3] as PromiseRejectedResult).reason.message), /denied by rule unbounded-delete/);
      assert.equal(results[4].status, "fulfilled");
    } finally {
      await sql.end();
    }
    const log = targetLog();
    assert.ok(!log.includes("pipe-drop") && !log.includes("pipe-delete"));
    assert.equal(await rowCount(), 10);
  });

  it("keeps pgbench pipelines working, and stops a denied statement inside one", async () => {
    const env = { ...process.env, PGPASSWORD: await gw.token("bench", ["agents"]), PGHOST: gw.host, PGPORT: String(gw.port), PGDATABASE: "app", PGUSER: "agent", PGSSLMODE: "disable" };
    const dir = gw.dataDir;
    const good = join(dir, "good.sql");
    writeFileSync(good, "\\startpipeline\nselect count(*) from items;\nselect 1;\nupdate items set name = name where id = 1;\n\\endpipeline\n");
    const okRun = await run("pgbench", ["-n", "-M", "extended", "-t", "50", "-f", good], { env });
    assert.match(okRun.stdout, /number of transactions actually processed: 50\/50/);

    const bad = join(dir, "bad.sql");
    writeFileSync(bad, "\\startpipeline\nselect 1;\ndelete from items; -- bench-pipe-delete\nselect 2;\n\\endpipeline\n");
    const badRun = await run("pgbench", ["-n", "-M", "extended", "-t", "5", "-f", bad], { env }).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
    assert.match(badRun.out, /portcullis: denied by rule unbounded-delete/, badRun.out);
    assert.ok(!targetLog().includes("bench-pipe-delete"));
    assert.equal(await rowCount(), 10);
  });

  it("refuses Bind of a statement and Execute of a portal the gateway never saw, in order, without forwarding", async () => {
    const session = await rawLogin(gw.port, await gw.token());
    const { conn } = session;
    const cstr = (t: string) => Buffer.from(`${t}\0`);
    const bind = (portal: string, stmt: string) => typed("B", Buffer.concat([cstr(portal), cstr(stmt), Buffer.from([0, 0, 0, 0, 0, 0])]));
    const execute = (portal: string) => typed("E", Buffer.concat([cstr(portal), Buffer.from([0, 0, 0, 0])]));
    // Parse+Bind+Execute of an allowed statement, then a Bind of an unknown statement, in one pipeline.
    await conn.write(Buffer.concat([
      typed("P", Buffer.concat([cstr("ok1"), cstr("select 7 as seven"), Buffer.from([0, 0])])),
      bind("", "ok1"), execute(""),
      bind("p2", "ghost_statement"), execute("p2"), typed("S"),
      execute("ghost_portal"), typed("S"),
    ]));
    const first = await conn.readUntil("Z", 5000, false);
    assert.deepEqual(first.map((m) => m.type), ["1", "2", "D", "C", "E", "Z"], "results, then the refusal, then ReadyForQuery");
    const err = errorFields(first[4]!.body);
    assert.equal(err.C, "26000");
    // PostgreSQL's own words (clients match on them); the detail says it is the gateway's answer.
    assert.equal(err.M, 'prepared statement "ghost_statement" does not exist');
    assert.match(err.D!, /^portcullis: /);
    const second = await conn.readUntil("Z", 5000, false);
    assert.deepEqual(second.map((m) => m.type), ["E", "Z"]);
    assert.deepEqual([errorFields(second[0]!.body).C, errorFields(second[0]!.body).M], ["34000", 'portal "ghost_portal" does not exist']);
    const after = await simpleQuery(conn, "select 'usable' as v");
    assert.deepEqual(after.rows, [["usable"]]);
    conn.end();
    assert.ok(!targetLog().includes("ghost_"), "unknown names were not forwarded");
  });

  it("judges EXECUTE by the statement the session prepared", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    await client.query("prepare known_ok as select 42 as v");
    assert.deepEqual((await client.query("execute known_ok")).rows, [{ v: 42 }]);
    await assert.rejects(client.query("prepare sneaky as delete from items"), denial("unbounded-delete"));
    await assert.rejects(client.query("execute never_prepared"), denial("default-deny-unknown"));
    await client.end();
    assert.equal(await rowCount(), 10);
  });

  it("refuses every way of changing how the target reads SQL text (string-smuggling attacks)", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    for (const sql of [
      "set standard_conforming_strings = off",
      "set local standard_conforming_strings to off",
      "set client_encoding = 'SJIS'",
      "set names 'BIG5'",
      "select set_config('standard_conforming_strings', 'off', false)",
      "select set_config(current_setting('x.y', true), 'off', false)",
      "reset client_encoding",
    ]) {
      await assert.rejects(client.query(sql), denial("protected-setting"), sql);
    }
    // The smuggling string itself is then read the same way by both sides: one harmless SELECT.
    const r = await client.query("select 'x\\' , ' ; delete from items where id = 1; select 1 --' as s");
    assert.equal(r.rows.length, 1);
    await client.end();
    assert.equal(await rowCount(), 10);
    for (const options of ["-c standard_conforming_strings=off", "-c client_encoding=SJIS"]) {
      const refused = new pg.Client({ ...gw.clientConfig(await gw.token()), options });
      await assert.rejects(refused.connect(), (e: Error & { code?: string }) => e.code === "28000" && /read SQL differently/.test(e.message), options);
      await refused.end().catch(() => {});
    }
  });

  it("survives a statement too deep to analyse: refused as unknown, gateway and session intact", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    const deep = `select ${Array.from({ length: 4000 }, (_, i) => String(i)).join(" + ")}`;
    await assert.rejects(client.query(deep), denial("default-deny-unknown"));
    assert.equal((await client.query("select 1 as one")).rows[0].one, 1);
    await client.end();
  });
});

describe("table rules that name a schema follow the session's search_path", () => {
  let target: TestTarget;
  let gw: TestGateway;
  before(async () => {
    target = await startTarget();
    const admin = new pg.Client(target.pg.clientConfig(target.pg.superuser, "app"));
    await admin.connect();
    await admin.query("create schema vault authorization app_user");
    await admin.query("create table vault.secrets (k text); create table public.secrets (k text)");
    await admin.query("alter table vault.secrets owner to app_user; alter table public.secrets owner to app_user");
    await admin.end();
    gw = await startTestGateway({ target, overrides: { rules: [{ name: "protect-vault", when: { sql: { tables: ["vault.*"] } }, action: "deny" }] } });
  });
  after(async () => {
    await gw?.stop();
    await target?.stop();
  });

  it("allows an unqualified name while vault is off the path, denies it once SET puts vault on it", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    await client.query("select * from secrets");
    await assert.rejects(client.query("select * from vault.secrets"), denial("protect-vault"));
    await client.query("set search_path = vault, public");
    await assert.rejects(client.query("select * from secrets"), denial("protect-vault"));
    await client.query("reset search_path");
    await client.query("select * from secrets");
    // A path computed at run time cannot be followed: every schema is assumed from then on.
    await client.query("select set_config('search_path', 'va' || 'ult', false)");
    await client.query("select * from public.secrets");
    await assert.rejects(client.query("select * from secrets"), denial("protect-vault"));
    await client.end();
  });

  it("knows a search_path the role brings by default", async () => {
    await target.pg.query("alter role app_user set search_path = vault, public");
    try {
      const client = new pg.Client(gw.clientConfig(await gw.token()));
      await client.connect();
      await assert.rejects(client.query("select * from secrets"), denial("protect-vault"));
      await client.end();
    } finally {
      await target.pg.query("alter role app_user reset search_path");
    }
  });
});

