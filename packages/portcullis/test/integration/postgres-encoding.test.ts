/**
 * Attack tests: the gateway reads SQL bytes exactly as the target will, or refuses them. It reads
 * UTF-8 only, so every other client or server encoding is refused (in LATIN1, 0xFE and 0xFF are
 * two characters that UTF-8 decoding turns into one replacement character, which let dollar-quote
 * tags collide and hid a denied statement in what the gateway took for a literal), and bytes that
 * are not UTF-8 are refused rather than replaced. The target's statement log is the witness.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { RawPg, errorFields, finishLogin, rawLogin, simpleQuery, startupPacket, typed } from "../support/raw-pg.js";
import { UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const RULES = [{ name: "no-delete", when: { sql: { statements: ["delete"] } }, action: "deny" }];

describe("one reading of the bytes", () => {
  let target: TestTarget;
  let gw: TestGateway;
  const targetLog = () => readFileSync(target.pg.logFile, "utf8");
  const connection = (name: string, database: string) => ({
    name, type: "postgres", target: { host: target.pg.host, port: target.pg.port, database, tls: "disable" },
    credentials: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD }, access: ["agents"],
  });

  before(async () => {
    target = await startTarget({ settings: { log_statement: "all" } });
    const admin = new pg.Client(target.pg.clientConfig(target.pg.superuser, "app"));
    await admin.connect();
    await admin.query(`create database latin1db template template0 encoding 'LATIN1' lc_collate 'C' lc_ctype 'C' owner ${UPSTREAM_USER}`);
    await admin.query("create table items (id int primary key)");
    await admin.query(`alter table items owner to ${UPSTREAM_USER}`);
    await admin.query("insert into items values (1), (2)");
    await admin.end();
    gw = await startTestGateway({ target, connections: [connection("app", "app"), connection("latin", "latin1db")], overrides: { rules: RULES } });
  });
  after(async () => {
    await gw?.stop();
    await target?.stop();
  });

  it("refuses a client encoding other than UTF8 at startup, in options, and by SET", async () => {
    const extras: Record<string, string>[] = [{ client_encoding: "LATIN1" }, { client_encoding: "WIN1252" }, { options: "-c client_encoding=LATIN1" }, { options: "-c client_encoding=euc_jp" }];
    for (const extra of extras) {
      const conn = await RawPg.connect(gw.port);
      await conn.write(startupPacket({ user: "agent", database: "app", ...extra }));
      await assert.rejects(finishLogin(conn, await gw.token()), /read SQL differently/, JSON.stringify(extra));
      conn.destroy();
    }
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    for (const sql of ["set client_encoding = 'LATIN1'", "set names 'LATIN1'", "select set_config('client_encoding', 'LATIN1', false)"]) {
      await assert.rejects(client.query(sql), /protected-setting/, sql);
    }
    assert.equal((await client.query("show client_encoding")).rows[0].client_encoding, "UTF8");
    await client.end();
  });

  it("backslash_quote cannot change either: not at startup, in options, nor as a default for later sessions", async () => {
    for (const extra of [{ backslash_quote: "on" }, { options: "-c backslash_quote=off" }] as Record<string, string>[]) {
      const conn = await RawPg.connect(gw.port);
      await conn.write(startupPacket({ user: "agent", database: "app", ...extra }));
      await assert.rejects(finishLogin(conn, await gw.token()), /read SQL differently/, JSON.stringify(extra));
      conn.destroy();
    }
    // Its default is accepted as it is.
    const ok = await RawPg.connect(gw.port);
    await ok.write(startupPacket({ user: "agent", database: "app", options: "-c backslash_quote=safe_encoding" }));
    await finishLogin(ok, await gw.token());
    ok.destroy();
    // Defaults of a role, a database or the server would change (or refuse) every later session.
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    for (const sql of [
      `alter role ${UPSTREAM_USER} set backslash_quote = on`,
      `alter role ${UPSTREAM_USER} in database app set standard_conforming_strings = off`,
      "alter database app set client_encoding = 'LATIN1'",
      "update pg_settings set setting = 'off' where name = 'standard_conforming_strings'",
    ]) await assert.rejects(client.query(sql), /protected-setting/, sql);
    await client.end();
    const settings = await target.pg.query<{ n: string }>("select count(*)::text as n from pg_db_role_setting");
    assert.equal(settings[0]!.n, "0", "no role or database default was stored");
  });

  it("refuses a target whose server encoding is not UTF8", async () => {
    const conn = await RawPg.connect(gw.port);
    await conn.write(startupPacket({ user: "agent", database: "latin", client_encoding: "UTF8" }));
    await assert.rejects(finishLogin(conn, await gw.token()), /server_encoding=LATIN1|cannot read SQL/);
    conn.destroy();
  });

  it("refuses bytes that are not UTF-8 instead of reading them as replacement characters", async () => {
    const { conn } = await rawLogin(gw.port, await gw.token());
    // In LATIN1 $þ$ and $ÿ$ are different tags; as replaced UTF-8 both read as $\uFFFD$.
    const sql = Buffer.concat([
      Buffer.from("select $"), Buffer.from([0xfe]), Buffer.from("$ x $"), Buffer.from([0xff]),
      Buffer.from("$; delete from items /* bytes-attack */; select $"), Buffer.from([0xfe]), Buffer.from("$ y $"), Buffer.from([0xfe]), Buffer.from("$"),
    ]);
    await conn.write(typed("Q", Buffer.concat([sql, Buffer.from([0])])));
    const { messages } = await conn.readToClose(5000);
    const err = messages.find((m) => m.type === "E");
    assert.ok(err, "an error was sent");
    assert.match(errorFields(err.body).M ?? "", /invalid byte sequence for encoding "UTF8"/);
    assert.ok(!targetLog().includes("bytes-attack"), "the bytes never reached the target");
    // Statement names are byte strings too: two invalid names must not be taken for one.
    const second = await rawLogin(gw.port, await gw.token());
    const name = Buffer.from([0x73, 0xc3]);
    await second.conn.write(typed("P", Buffer.concat([name, Buffer.from([0]), Buffer.from("select 1\0"), Buffer.alloc(2)])));
    const closed = await second.conn.readToClose(5000);
    assert.ok(closed.messages.some((m) => m.type === "E" && /invalid byte sequence/.test(errorFields(m.body).M ?? "")));
  });

  it("valid UTF-8 of every width reads the same on both sides", async () => {
    const { conn } = await rawLogin(gw.port, await gw.token());
    const r = await simpleQuery(conn, "select 'é€𝄞' as s, $þ$ x $þ$ as d");
    assert.deepEqual(r.rows, [["é€𝄞", " x "]]);
    conn.destroy();
  });
});
