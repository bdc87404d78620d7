/**
 * Wire details a client sees as it would from PostgreSQL, with PostgreSQL itself as the witness
 * (the same bytes sent straight to the target): Terminate closes the socket at once; text the
 * parser rejects is answered 42601 with the parser's message and position, and never reaches the
 * target; unknown statements and portals are answered in PostgreSQL's words; setting a protected
 * setting to the value it must have anyway (every dump's SET client_encoding = 'UTF8', pg_dump's
 * set_config over pg_settings) is allowed, and every other way of changing one is still refused.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { within } from "../support/wait.js";
import {
  type RawPg, RawPg as Raw, bindMessage, errorFields, executeMessage, parseMessage, queryMessage, rawLogin, simpleQuery, startupPacket, syncMessage, terminateMessage, typed,
} from "../support/raw-pg.js";
import { UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

/** A Bind of the unnamed statement with text parameters. */
function bindWith(values: string[]): Buffer {
  const parts: Buffer[] = [Buffer.from("\0\0"), Buffer.from([0, 0]), Buffer.alloc(2)];
  parts[2]!.writeUInt16BE(values.length);
  for (const v of values) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(Buffer.byteLength(v));
    parts.push(len, Buffer.from(v));
  }
  parts.push(Buffer.from([0, 0]));
  return typed("B", Buffer.concat(parts));
}

describe("PostgreSQL wire details through the gateway, as from PostgreSQL", () => {
  let target: TestTarget;
  let gw: TestGateway;
  const targetLog = () => readFileSync(target.pg.logFile, "utf8");

  before(async () => {
    target = await startTarget({ authMethod: "trust", settings: { log_statement: "all" } });
    gw = await startTestGateway({ target });
  });
  after(async () => {
    await gw?.stop();
    await target?.stop();
  });

  /** A logged-in raw session: through the gateway, or straight to the target (trust). */
  const session = async (side: "gateway" | "direct"): Promise<RawPg> => {
    if (side === "gateway") return (await rawLogin(gw.port, await gw.token())).conn;
    const conn = await Raw.connect(target.pg.port);
    await conn.write(startupPacket({ user: UPSTREAM_USER, database: "app" }));
    await conn.readUntil("Z", 15_000);
    return conn;
  };

  it("Terminate: the gateway closes the client's socket at once, as PostgreSQL does", async () => {
    for (const side of ["gateway", "direct"] as const) {
      const conn = await session(side);
      await conn.write(terminateMessage());
      const closed = await within(5_000, conn.readToClose());
      assert.notEqual(closed, "timed out", `${side}: the socket was not closed after Terminate`);
      if (closed !== "timed out") assert.deepEqual(closed.messages, [], `${side} sends nothing after Terminate`);
    }
  });

  it("a syntax error is answered 42601 with PostgreSQL's message and position, simple and extended, and never forwarded", async () => {
    // Tagged per side, in tags of one length so that positions agree.
    const texts = (tag: string) => [`selec 1 /*${tag}-a*/`, `select 1 + /*${tag}-b*/`, `select 'ééé' as e, 1 2 /*${tag}-c*/`, `select 1; selct 2 /*${tag}-d*/`, `select $$x /*${tag}-e*/`];
    const answers: Record<string, Record<string, string>[]> = {};
    for (const side of ["gateway", "direct"] as const) {
      const conn = await session(side);
      const out: Record<string, string>[] = [];
      for (const sql of texts(side === "gateway" ? "gw" : "pg")) {
        const simple = await simpleQuery(conn, sql);
        out.push(simple.error!);
        await conn.write(Buffer.concat([parseMessage("", sql), bindMessage("", ""), executeMessage(""), syncMessage()]));
        const msgs = await conn.readUntil("Z", 15_000, false);
        assert.deepEqual(msgs.map((m) => m.type), ["E", "Z"], `${side} ${sql}`);
        out.push(errorFields(msgs[0]!.body));
      }
      assert.deepEqual((await simpleQuery(conn, "select 'usable'")).rows, [["usable"]]);
      conn.end();
      answers[side] = out;
    }
    const pick = (f: Record<string, string>) => ({ S: f.S, C: f.C, M: f.M?.replace("/*gw-", "/*pg-"), P: f.P });
    assert.deepEqual(answers.gateway!.map(pick), answers.direct!.map(pick));
    assert.ok(answers.gateway!.every((f) => f.C === "42601"));
    // The witness works (the direct texts are in the target's log); none of the gateway's reached it.
    assert.ok(targetLog().includes("/*pg-a*/"));
    for (const sql of texts("gw")) assert.ok(!targetLog().includes(sql.slice(sql.indexOf("/*"))), `${sql} reached the target`);
  });

  it("unknown prepared statements and portals are answered in PostgreSQL's words", async () => {
    const answers: Record<string, string[][]> = {};
    for (const side of ["gateway", "direct"] as const) {
      const conn = await session(side);
      await conn.write(Buffer.concat([bindMessage("", "ghost_statement"), syncMessage(), bindMessage("", ""), syncMessage(), executeMessage("ghost_portal"), syncMessage()]));
      const out: string[][] = [];
      for (let i = 0; i < 3; i++) {
        const msgs = await conn.readUntil("Z", 15_000, false);
        const f = errorFields(msgs.find((m) => m.type === "E")!.body);
        out.push([f.C!, f.M!]);
      }
      conn.end();
      answers[side] = out;
    }
    assert.deepEqual(answers.gateway, answers.direct);
  });

  it("a protected setting set to the value it must have is allowed (dumps, PQsetClientEncoding, pg_dump's set_config over pg_settings)", async () => {
    const conn = await session("gateway");
    for (const sql of [
      "SET client_encoding = 'UTF8'", "set client_encoding to 'unicode'", "SET standard_conforming_strings = on", "SET standard_conforming_strings = true",
      "SET backslash_quote = safe_encoding", "SELECT pg_catalog.set_config('client_encoding', 'UTF8', false)",
      "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
      "SELECT set_config(s.name, 'view', false) FROM pg_catalog.pg_settings s WHERE s.name = 'restrict_nonsystem_relation_kind' AND s.context = 'user'",
    ]) {
      const r = await simpleQuery(conn, sql);
      // restrict_nonsystem_relation_kind exists from PostgreSQL 15.8: an older target has no row and sets nothing.
      assert.equal(r.error, undefined, `${sql}: ${JSON.stringify(r.error)}`);
    }
    conn.end();
  });

  it("every other way of changing a protected setting is still refused, and never reaches the target", async () => {
    const conn = await session("gateway");
    assert.equal((await simpleQuery(conn, "CREATE TABLE fake_settings AS SELECT * FROM pg_settings WITH NO DATA")).error, undefined);
    for (const sql of [
      "SET client_encoding = 'LATIN1' /*p1*/", "SET client_encoding TO DEFAULT /*p2*/", "RESET client_encoding /*p3*/", "SET standard_conforming_strings = off /*p4*/",
      "SELECT set_config('client_encoding', 'LATIN1', false) /*p5*/",
      "SELECT set_config(name, 'LATIN1', false) FROM pg_settings WHERE name = 'client_encoding' /*p6*/",
      "SELECT set_config(name, 'LATIN1', false) FROM pg_settings WHERE name = 'x' OR true /*p7*/",
      "SELECT set_config(name, 'LATIN1', false) FROM pg_settings /*p8*/",
      "SELECT (SELECT set_config(o.name, 'LATIN1', false) FROM pg_settings WHERE name = 'x') FROM (SELECT 'client_encoding' AS name) o /*p9*/",
      "SELECT set_config(name, 'LATIN1', false) FROM pg_settings WHERE name = 'x' AND set_config(name, 'LATIN1', false) IS NOT NULL /*p10*/",
      "SELECT set_config(name, 'off', false) FROM pg_settings, (SELECT 1) x WHERE name = 'restrict_nonsystem_relation_kind' /*p11*/",
      "SELECT set_config(name, 'LATIN1', false) FROM pg_settings WHERE name = 'x' UNION ALL SELECT set_config(name, 'LATIN1', false) FROM pg_settings /*p12*/",
      "SELECT set_config(name, 'LATIN1', false) FROM myschema.pg_settings WHERE name = 'x' /*p13*/",
      "SELECT set_config(n, 'LATIN1', false) FROM (SELECT name AS n FROM pg_settings WHERE name = 'client_encoding') s /*p14*/",
      "ALTER ROLE CURRENT_USER SET client_encoding = 'LATIN1' /*p15*/",
      // A CTE (or a temp view) named pg_settings, a char(n) name that equals a protected one with trailing spaces.
      "WITH pg_settings AS (SELECT 'standard_conforming_strings'::char(40) AS name) SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'standard_conforming_strings ' /*p16*/",
      "DO $$ BEGIN PERFORM 1 FROM (WITH pg_settings AS (SELECT 'client_encoding'::char(40) AS name) SELECT set_config(name, 'SJIS', false) FROM pg_settings WHERE name = 'client_encoding ') x; END $$ /*p17*/",
      // A view over pg_settings is updatable: each row written through it is a set_config.
      "CREATE TEMP VIEW settings_v AS SELECT * FROM pg_catalog.pg_settings /*p18*/",
      "CREATE TEMP VIEW settings_w AS SELECT name, setting FROM pg_settings WHERE name LIKE 'standard%' /*p19*/",
      // Wrappers: a function or an aggregate that calls set_config with what it is given, later and out of sight.
      "CREATE FUNCTION g(a text, b text) RETURNS text IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN RETURN set_config(a, b, false); END $$ /*p20*/",
      "CREATE FUNCTION g2(a text, b text) RETURNS text LANGUAGE sql AS 'select set_config(a, b, false)' /*p21*/",
      "CREATE FUNCTION g3(a text, b text) RETURNS text LANGUAGE sql RETURN set_config(a, b, false) /*p22*/",
      "CREATE AGGREGATE agg(text, boolean) (SFUNC = set_config, STYPE = text, INITCOND = 'standard_conforming_strings') /*p23*/",
      "CREATE OPERATOR ### (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_catalog.set_config) /*p24*/",
      // An ON SELECT rule turns an empty table into a view (PostgreSQL 15): a view over pg_settings by another spelling.
      `CREATE RULE "_RETURN" AS ON SELECT TO fake_settings DO INSTEAD SELECT * FROM pg_settings /*p25*/`,
      `create rule "_RETURN" as on select to fake_settings do instead select name, setting from pg_catalog.pg_settings where name like 'backslash%' /*p26*/`,
    ]) {
      const r = await simpleQuery(conn, sql);
      assert.equal(r.error?.C, "42501", `${sql}: ${JSON.stringify(r.error)}`);
      assert.match(r.error!.M!, /protected-setting/, sql);
    }
    assert.deepEqual((await simpleQuery(conn, "SHOW client_encoding")).rows, [["UTF8"]]);
    // The table the rules would have turned into a view is still a table, and the settings are as they must be.
    assert.deepEqual((await simpleQuery(conn, "SELECT relkind FROM pg_class WHERE relname = 'fake_settings'")).rows, [["r"]]);
    assert.deepEqual((await simpleQuery(conn, "SHOW backslash_quote")).rows, [["safe_encoding"]]);
    conn.end();
    for (let i = 1; i <= 26; i++) assert.ok(!targetLog().includes(`/*p${i}*/`), `p${i} reached the target`);
  });

  it("text read differently under other settings cannot follow a Bind in the same segment (planning runs IMMUTABLE functions)", async () => {
    const conn = await session("gateway");
    await conn.write(Buffer.concat([
      parseMessage("", "select upper('x') /*bind-first*/"), bindMessage("", ""),
      parseMessage("s_after_bind", "select 'a\\' /*after-bind*/"), syncMessage(),
    ]));
    const msgs = await conn.readUntil("Z", 15_000, false);
    const err = msgs.find((m) => m.type === "E");
    assert.ok(err, "the Parse after a Bind is refused");
    assert.equal(errorFields(err.body).C, "0A000");
    assert.match(errorFields(err.body).M!, /unsettled-settings/);
    assert.ok(!targetLog().includes("/*after-bind*/"));
    assert.deepEqual((await simpleQuery(conn, "select 'usable'")).rows, [["usable"]]);
    conn.end();
  });

  it("one backend pid: BackendKeyData's agrees with pg_backend_pid() (aliased, cast, extended) and with the pid of the session's own notifications", async () => {
    const s = await rawLogin(gw.port, await gw.token("pid-1", ["agents"]));
    assert.ok(s.processId > 4_194_304, "the gateway's pid lies above any real one");
    const pid = String(s.processId);
    assert.deepEqual((await simpleQuery(s.conn, "select pg_backend_pid()")).rows, [[pid]]);
    assert.deepEqual((await simpleQuery(s.conn, "select pg_backend_pid() as p, pg_backend_pid()::bigint as b, 7 as other")).rows, [[pid, pid, "7"]]);
    await s.conn.write(Buffer.concat([parseMessage("", "select pg_backend_pid()"), bindMessage("", ""), executeMessage(""), syncMessage()]));
    const extended = await s.conn.readUntil("Z", 15_000, false);
    assert.equal(extended.find((m) => m.type === "D")!.body.toString("latin1", 6), pid);
    await simpleQuery(s.conn, "listen pid_check");
    await s.conn.write(queryMessage("notify pid_check, 'hello'"));
    const msgs = await s.conn.readUntil("Z", 15_000, false);
    const note = msgs.find((m) => m.type === "A")!;
    assert.equal(note.body.readInt32BE(0), s.processId, "the notification carries the gateway pid");
    // The real pid never shows in these answers.
    const real = Number((await simpleQuery(s.conn, "select pid from pg_stat_activity where backend_type = 'client backend' and query like '%pid_marker_x%'")).rows[0]?.[0]);
    assert.ok(Number.isInteger(real) && real !== s.processId && real <= 4_194_304);
    s.conn.end();
  });

  it("the pid is rewritten only where it was asked for: not in table columns, not for a mention in a comment, not in other parameters", async () => {
    const s = await rawLogin(gw.port, await gw.token("pid-4", ["agents"]));
    const real = (await simpleQuery(s.conn, "select pid from pg_stat_activity where query like '%pid-4-marker%'")).rows[0]![0]!;
    await simpleQuery(s.conn, `create temp table tp (id int, label text); insert into tp values (${real}, '${real}')`);
    assert.deepEqual((await simpleQuery(s.conn, "select id, label, pg_backend_pid() from tp")).rows, [[real, real, String(s.processId)]], "table columns keep their values");
    assert.deepEqual((await simpleQuery(s.conn, `select ${real} as n /* pg_backend_pid */`)).rows, [[real]], "a mention in a comment is not a call");
    // A parameter that is not the pid argument of a signal function is not mapped.
    await s.conn.write(Buffer.concat([parseMessage("", "select $1::text as v, pg_cancel_backend(0)"), bindWith([String(s.processId)]), executeMessage(""), syncMessage()]));
    const out = await s.conn.readUntil("Z", 15_000, false);
    assert.equal(out.find((m) => m.type === "D")!.body.toString("latin1", 6, 6 + String(s.processId).length), String(s.processId));
    s.conn.end();
  });

  it("pg_cancel_backend / pg_terminate_backend of a gateway pid reach that session's backend, for the same identity only", async () => {
    const token = await gw.token("pid-2", ["agents"]);
    const victim = await rawLogin(gw.port, token);
    const killer = await rawLogin(gw.port, token);
    // Cancel a running statement by its gateway pid, as a literal.
    await victim.conn.write(queryMessage("select pg_sleep(30)"));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual((await simpleQuery(killer.conn, `select pg_cancel_backend(${victim.processId})`)).rows, [["t"]]);
    const cancelled = await victim.conn.readUntil("Z", 15_000, false);
    assert.equal(errorFields(cancelled.find((m) => m.type === "E")!.body).C, "57014");
    // Another identity's session is not reachable by its gateway pid.
    const stranger = await rawLogin(gw.port, await gw.token("pid-3", ["agents"]));
    const refused = await simpleQuery(stranger.conn, `select pg_terminate_backend(${victim.processId})`);
    assert.deepEqual(refused.rows, [["f"]], "a gateway pid of someone else's session names no backend");
    assert.deepEqual((await simpleQuery(victim.conn, "select 1")).rows, [["1"]]);
    // Terminate it by its gateway pid, as a bound parameter (node-postgres, postgres.js do this).
    await killer.conn.write(Buffer.concat([parseMessage("", "select pg_terminate_backend($1)"), bindWith([String(victim.processId)]), executeMessage(""), syncMessage()]));
    const done = await killer.conn.readUntil("Z", 15_000, false);
    assert.equal(done.find((m) => m.type === "D")!.body.toString("latin1", 6), "t");
    const end = await within(10_000, victim.conn.readToClose());
    assert.notEqual(end, "timed out");
    if (end !== "timed out") assert.equal(errorFields(end.messages.find((m) => m.type === "E")!.body).C, "57P01");
    killer.conn.end();
    stranger.conn.end();
  });

  it("a startup-phase mistake after Terminate-style EOF: the gateway survives and serves the next client", async () => {
    const conn = await Raw.connect(gw.port);
    await conn.write(queryMessage("select 1").subarray(0, 3));
    conn.end();
    await conn.readToClose();
    const next = await session("gateway");
    assert.deepEqual((await simpleQuery(next, "select 2")).rows, [["2"]]);
    next.end();
  });
});
