/**
 * Attack tests: where an unqualified name resolves follows the search_path the *target* has, not the
 * one the agent asked for. A SET the target undid (a rolled-back transaction, an implicit transaction
 * that failed, a savepoint rolled back to, COMMIT of a failed block) must not make the gateway judge
 * later statements under the path that was asked for. The witness is the target's own data: a row
 * only vault.secrets holds reaching the client means the target read the protected table.
 *
 * The role's default path is `vault, public`; `secrets` exists in both schemas.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import {
  type PgMessage, type RawPg, bindMessage, dataRowTexts, errorFields, exchange, executeMessage, parseMessage, queryMessage, rawLogin, simpleQuery, syncMessage,
} from "../support/raw-pg.js";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const VAULT_ROW = "vault-only-row-5521";
const PUBLIC_ROW = "public-row";

/** Every answer's rows and errors, to tell "the target read vault.secrets" from "refused". */
function outcome(messages: PgMessage[]) {
  const rows = messages.filter((m) => m.type === "D").flatMap((m) => dataRowTexts(m.body));
  const errors = messages.filter((m) => m.type === "E").map((m) => errorFields(m.body));
  return { leaked: rows.includes(VAULT_ROW), rows, errors };
}

/** `secrets` in vault and in public, each with a row of its own, owned by the gateway's target user. */
async function seed(target: TestTarget) {
  const admin = new pg.Client(target.pg.clientConfig(target.pg.superuser, "app"));
  await admin.connect();
  try {
    await admin.query("create schema vault authorization app_user");
    await admin.query("create table vault.secrets (k text); create table public.secrets (k text)");
    await admin.query(`insert into vault.secrets values ('${VAULT_ROW}'); insert into public.secrets values ('${PUBLIC_ROW}')`);
    await admin.query("alter table vault.secrets owner to app_user; alter table public.secrets owner to app_user");
    await admin.query("create procedure public.set_path(p text) language plpgsql as $$ begin perform set_config('search_path', p, false); end $$");
    // Commits the path it sets, then fails: the failure does not take the committed path back.
    await admin.query("create procedure public.set_path_then_fail(p text) language plpgsql as $$ begin perform set_config('search_path', p, false); commit; raise exception 'after the commit'; end $$");
  } finally {
    await admin.end();
  }
}

async function withGateway(rules: unknown[], run: (gw: TestGateway) => Promise<void>, target: TestTarget) {
  const gw = await startTestGateway({ target, overrides: { rules } });
  try { await run(gw); } finally { await gw.stop(); }
}

describe("the search_path follows what the target kept", () => {
  let target: TestTarget;
  let gw: TestGateway;
  const login = async (): Promise<RawPg> => (await rawLogin(gw.port, await gw.token())).conn;

  before(async () => {
    target = await startTarget();
    await seed(target);
    await target.pg.query("alter role app_user set search_path = vault, public");
    gw = await startTestGateway({ target, overrides: { rules: [{ name: "protect-vault", when: { sql: { tables: ["vault.*"] } }, action: "deny" }] } });
  });
  after(async () => {
    await gw?.stop();
    await target?.stop();
  });

  /** Routes to a SET the target does not keep, each followed by a read of `secrets` in its own Query. */
  const UNDONE: [string, string[]][] = [
    ["a ROLLBACK", ["BEGIN", "SET search_path = public", "ROLLBACK"]],
    ["an implicit transaction that failed", ["SET search_path = public; SELECT 1/0"]],
    ["COMMIT of a failed block (answered ROLLBACK)", ["BEGIN", "SET search_path = public", "SELECT 1/0", "COMMIT"]],
    ["a savepoint rolled back to", ["BEGIN", "SAVEPOINT a", "SET search_path = public", "ROLLBACK TO a", "COMMIT"]],
    ["a rollback in the same message", ["BEGIN; SET search_path = public; ROLLBACK"]],
    ["ABORT", ["START TRANSACTION", "SET search_path TO public", "ABORT"]],
  ];

  for (const [how, statements] of UNDONE) {
    it(`a SET undone by ${how} leaves vault on the path (one Query at a time)`, async () => {
      const conn = await login();
      for (const sql of statements) await simpleQuery(conn, sql);
      const r = outcome((await simpleQuery(conn, "SELECT k FROM secrets")).messages);
      assert.equal(r.leaked, false, "the target read vault.secrets");
      assert.equal(r.errors[0]?.C, "42501");
      assert.match(r.errors[0]?.M ?? "", /protect-vault/);
      conn.end();
    });

    it(`a SET undone by ${how} leaves vault on the path (pipelined, answers not awaited)`, async () => {
      const conn = await login();
      const frames = [...statements, "SELECT k FROM secrets"].map((sql) => queryMessage(sql));
      const r = outcome(await exchange(conn, frames, frames.length));
      assert.equal(r.leaked, false, "the target read vault.secrets");
      assert.ok(r.errors.some((e) => e.C === "42501" && /protect-vault/.test(e.M ?? "")), JSON.stringify(r.errors));
      conn.end();
    });
  }

  /** Routes to a path change the gateway cannot read: vault comes back on the path, or may have. */
  const INVISIBLE: [string, string[]][] = [
    ["a prepared statement's set_config, run by EXECUTE", ["SET search_path = public", "PREPARE sp AS SELECT set_config('search_path', 'vault, public', false)", "EXECUTE sp"]],
    ["a DO block that builds the SET", ["SET search_path = public", "DO $$ BEGIN EXECUTE 'set search' || '_path = vault, public'; END $$"]],
    ["a procedure", ["SET search_path = public", "CALL set_path('vault, public')"]],
  ];
  for (const [how, statements] of INVISIBLE) {
    it(`a path set by ${how} is not taken for the one asked for`, async () => {
      const conn = await login();
      for (const sql of statements) assert.equal((await simpleQuery(conn, sql)).error, undefined, sql);
      const r = outcome((await simpleQuery(conn, "SELECT k FROM secrets")).messages);
      assert.equal(r.leaked, false, "the target read vault.secrets");
      assert.equal(r.errors[0]?.C, "42501");
      conn.end();
    });
  }

  it("a procedure that commits a path and then fails leaves that path, not the one before it", async () => {
    const conn = await login();
    await simpleQuery(conn, "SET search_path = public");
    assert.equal((await simpleQuery(conn, "CALL set_path_then_fail('vault, public')")).error?.M, "after the commit");
    const r = outcome((await simpleQuery(conn, "SELECT k FROM secrets")).messages);
    assert.equal(r.leaked, false, "the target read vault.secrets");
    assert.equal(r.errors[0]?.C, "42501");
    conn.end();
  });

  it("a portal suspended after some rows has run what it does to the path (Execute with a row limit)", async () => {
    const conn = await login();
    await simpleQuery(conn, "SET search_path = public");
    const msgs = await exchange(conn, [
      parseMessage("", "SELECT set_config('search_path', 'vault, public', false) FROM generate_series(1, 2)"), bindMessage("", ""), executeMessage("", 1), syncMessage(),
    ], 1);
    assert.ok(msgs.some((m) => m.type === "s"), "the portal was suspended");
    const r = outcome((await simpleQuery(conn, "SELECT k FROM secrets")).messages);
    assert.equal(r.leaked, false, "the target read vault.secrets");
    assert.equal(r.errors[0]?.C, "42501");
    conn.end();
  });

  it("a cursor's query runs when it is fetched from: a FETCH has its path change", async () => {
    const conn = await login();
    for (const sql of ["BEGIN", "DECLARE c CURSOR FOR SELECT set_config('search_path', 'vault, public', false)", "SET search_path = public", "FETCH c", "COMMIT"]) {
      assert.equal((await simpleQuery(conn, sql)).error, undefined, sql);
    }
    let r = outcome((await simpleQuery(conn, "SELECT k FROM secrets")).messages);
    assert.equal(r.leaked, false, "the target read vault.secrets");
    // And in one message with the read.
    await simpleQuery(conn, "SET search_path = public");
    r = outcome((await simpleQuery(conn, "BEGIN; DECLARE d CURSOR FOR SELECT set_config('search_path', 'vault, public', false); SET search_path = public; FETCH d; SELECT k FROM secrets; COMMIT")).messages);
    assert.equal(r.leaked, false, "the target read vault.secrets (one message)");
    conn.end();
  });

  it("DISCARD PLANS leaves the path alone (only DISCARD ALL resets it), and SET ROLE makes it unknown", async () => {
    const conn = await login();
    await simpleQuery(conn, "SET search_path = vault, public; DISCARD PLANS");
    let r = outcome((await simpleQuery(conn, "SELECT k FROM secrets")).messages);
    assert.equal(r.leaked, false, "the target read vault.secrets after DISCARD PLANS");
    await simpleQuery(conn, "SET search_path = public");
    assert.deepEqual((await simpleQuery(conn, "SELECT k FROM secrets")).rows, [[PUBLIC_ROW]]);
    // A write to pg_settings could set the path too: refused before it runs.
    assert.equal((await simpleQuery(conn, "UPDATE pg_settings SET setting = 'vault, public' WHERE name = 'search_path'")).error?.C, "42501");
    assert.equal((await simpleQuery(conn, "SET ROLE app_user")).error, undefined);
    r = outcome((await simpleQuery(conn, "SELECT k FROM secrets")).messages);
    assert.equal(r.errors[0]?.C, "42501", "after SET ROLE, $user may name another schema");
    conn.end();
  });

  it("a rollback and the read in one message", async () => {
    const conn = await login();
    const r = outcome((await simpleQuery(conn, "BEGIN; SET search_path = public; ROLLBACK; SELECT k FROM secrets")).messages);
    assert.equal(r.leaked, false);
    assert.equal(r.errors[0]?.C, "42501");
    conn.end();
  });

  it("an extended-protocol SET in a pipeline that fails before Sync is undone", async () => {
    const conn = await login();
    const frames = [
      parseMessage("", "SET search_path = public"), bindMessage("", ""), executeMessage(""),
      parseMessage("", "SELECT 1/0"), bindMessage("", ""), executeMessage(""), syncMessage(),
      parseMessage("", "SELECT k FROM secrets"), bindMessage("", ""), executeMessage(""), syncMessage(),
    ];
    const r = outcome(await exchange(conn, frames, 2));
    assert.equal(r.leaked, false);
    assert.ok(r.errors.some((e) => e.C === "42501"), JSON.stringify(r.errors));
    conn.end();
  });

  it("a SET the target kept still counts: committed, or outside a transaction", async () => {
    const conn = await login();
    for (const sql of ["BEGIN", "SET search_path = public", "COMMIT"]) await simpleQuery(conn, sql);
    assert.deepEqual((await simpleQuery(conn, "SELECT k FROM secrets")).rows, [[PUBLIC_ROW]]);
    await simpleQuery(conn, "SET search_path = vault, public");
    assert.equal((await simpleQuery(conn, "SELECT k FROM secrets")).error?.C, "42501");
    // Pipelined: the second SET is judged with the first's answer still unread.
    const r = outcome(await exchange(conn, [queryMessage("SET search_path = public"), queryMessage("SELECT k FROM secrets")], 2));
    assert.deepEqual(r.rows, [PUBLIC_ROW]);
    assert.deepEqual(r.errors, []);
    conn.end();
  });
});

describe("a rule that allows a qualified name admits an unqualified one only where it must resolve there", () => {
  let target: TestTarget;
  before(async () => {
    target = await startTarget();
    await seed(target);
  });
  after(async () => { await target?.stop(); });

  // An allow-list: public tables may be read, nothing else.
  const RULES = [
    { name: "public-reads", when: { sql: { tables: ["public.*"] } }, action: "allow" },
    { name: "nothing-else", when: { sql: { tables: ["*"] } }, action: "deny" },
  ];

  it("the default path ($user has no schema, then public) resolves into public: allowed", async () => {
    await withGateway(RULES, async (gw) => {
      const { conn } = await rawLogin(gw.port, await gw.token());
      assert.deepEqual((await simpleQuery(conn, "SELECT k FROM secrets")).rows, [[PUBLIC_ROW]]);
      conn.end();
    }, target);
  });

  it("with vault ahead of public the name may resolve into vault: refused", async () => {
    await withGateway(RULES, async (gw) => {
      const { conn } = await rawLogin(gw.port, await gw.token());
      await simpleQuery(conn, "SET search_path = vault, public");
      const r = outcome((await simpleQuery(conn, "SELECT k FROM secrets")).messages);
      assert.equal(r.leaked, false, "the target read vault.secrets");
      assert.match(r.errors[0]?.M ?? "", /nothing-else/);
      conn.end();
    }, target);
  });

  it("with a path the gateway cannot follow nothing unqualified is admitted", async () => {
    await withGateway(RULES, async (gw) => {
      const { conn } = await rawLogin(gw.port, await gw.token());
      await simpleQuery(conn, "SELECT set_config('search_path', 'va' || 'ult', false)");
      const r = outcome((await simpleQuery(conn, "SELECT k FROM secrets")).messages);
      assert.equal(r.leaked, false, "the target read vault.secrets");
      assert.match(r.errors[0]?.M ?? "", /nothing-else/);
      // A qualified name is still judged exactly.
      assert.deepEqual((await simpleQuery(conn, "SELECT k FROM public.secrets")).rows, [[PUBLIC_ROW]]);
      conn.end();
    }, target);
  });
});
