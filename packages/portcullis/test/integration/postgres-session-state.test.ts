/**
 * Attack tests: the gateway's idea of what a statement or cursor name stands for follows what the
 * target confirmed, never what the agent sent. Raw wire clients try to make the gateway believe a
 * name means something harmless while the target keeps something else under it; the target's own
 * statement log (log_statement = all) and its data are the witnesses, and the audit record must
 * name what the target would run.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import {
  bindMessage as bind, closeMessage as close, errorFields, exchange, executeMessage as execute, parseMessage as parse, queryMessage, rawLogin, simpleQuery, syncMessage as sync, typed,
} from "../support/raw-pg.js";
import { connectDirect, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const RULES = [
  { name: "export-needs-approval", when: { sql: { statements: ["copy_out"] } }, action: "approve", approvers: ["security"] },
  { name: "delete-needs-approval", when: { sql: { statements: ["delete"] } }, action: "approve", approvers: ["security"] },
];
/** Column rule only (no detectors): a leak cannot be caught by a detector by luck. */
const MASKING = [{ columns: ["customers.secret"], strategy: "redact" }];
const SEED = "zq-seeded-secret-value-81";

const errorsOf = (msgs: { type: string; body: Buffer }[]) => msgs.filter((m) => m.type === "E").map((m) => errorFields(m.body));

describe("session state follows the target's confirmations", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let direct: pg.Client;
  const targetLog = () => readFileSync(target.pg.logFile, "utf8");
  const customers = async () => Number((await direct.query("select count(*) as n from customers")).rows[0].n);
  const login = async () => (await rawLogin(gw.port, await gw.token(), "app", { options: "-c portcullis.approval=defer" })).conn;

  before(async () => {
    target = await startTarget({ settings: { log_statement: "all" } });
    gw = await startTestGateway({ target, overrides: { rules: RULES, masking: MASKING } });
    direct = await connectDirect(target);
    await direct.query("create table customers (id int primary key, secret text)");
    await direct.query(`insert into customers select g, '${SEED}-' || g from generate_series(1, 5) g`);
    // A function already in the database that opens a cursor under a name it is given.
    await direct.query("create function reopen(n text) returns void language plpgsql as $$ declare r refcursor := n; begin open r for select upper(secret) as s from customers; end $$");
  });
  after(async () => {
    await direct?.end();
    await gw?.stop();
    await target?.stop();
  });

  it("a named statement redefined after the target refused the redefinition (42P05) is judged as what the target kept", async () => {
    const conn = await login();
    // 1: s1 is a COPY (preparing is allowed; running it needs approval).
    let msgs = await exchange(conn, [parse("s1", "copy customers to stdout /* attack-42p05 */"), sync()], 1);
    assert.deepEqual(errorsOf(msgs), []);
    // 2: the agent "redefines" s1; the target refuses (the name exists) and keeps the COPY.
    msgs = await exchange(conn, [parse("s1", "select 1"), sync()], 1);
    assert.equal(errorsOf(msgs)[0]?.C, "42P05");
    // 3: running s1 runs the COPY: it must be held for approval, not run as "select 1".
    msgs = await exchange(conn, [bind("", "s1"), execute(""), sync()], 1);
    assert.equal(errorsOf(msgs)[0]?.C, "PX001", JSON.stringify(errorsOf(msgs)));
    assert.ok(!msgs.some((m) => m.type === "d"), "no COPY data reached the agent");
    conn.destroy();
    assert.doesNotMatch(targetLog(), /execute s1: copy customers to stdout \/\* attack-42p05/);
    // The audit names the COPY, not the text the agent pretended.
    const decisions = gw.gw.store.readAudit(0, 100_000).filter((r) => r.type === "decision").map((r) => JSON.stringify(r));
    assert.ok(decisions.some((d) => d.includes("copy_out") && d.includes("export-needs-approval")), "the audit records the COPY's approval");
  });

  it("the same attack pipelined across Syncs in one write waits for the target's answer", async () => {
    const conn = await login();
    const msgs = await exchange(conn, [
      parse("s2", "copy customers to stdout /* attack-pipelined */"), sync(),
      parse("s2", "select 1"), sync(),
      bind("", "s2"), execute(""), sync(),
    ], 3);
    const errs = errorsOf(msgs);
    assert.equal(errs[0]?.C, "42P05");
    assert.equal(errs[1]?.C, "PX001", JSON.stringify(errs));
    assert.ok(!msgs.some((m) => m.type === "d"));
    conn.destroy();
    assert.doesNotMatch(targetLog(), /execute s2: copy customers/);
  });

  it("a Close and Parse skipped by the target after an earlier error leave the old statement in force", async () => {
    const conn = await login();
    await exchange(conn, [parse("s3", "copy customers to stdout /* attack-skipped */"), sync()], 1);
    // The first message fails at the target, which then skips the Close and the Parse.
    let msgs = await exchange(conn, [parse("", "select 1/0 from nonexistent_table"), close("S", "s3"), parse("s3", "select 1"), sync()], 1);
    assert.equal(errorsOf(msgs).length, 1);
    msgs = await exchange(conn, [bind("", "s3"), execute(""), sync()], 1);
    assert.equal(errorsOf(msgs)[0]?.C, "PX001", JSON.stringify(errorsOf(msgs)));
    conn.destroy();
    assert.doesNotMatch(targetLog(), /execute s3: copy customers/);
  });

  it("SQL PREPARE and DEALLOCATE that never ran (the Query failed before them) change nothing", async () => {
    const conn = await login();
    let r = await simpleQuery(conn, "PREPARE p1 AS select secret || '' as s from customers");
    assert.equal(r.error, undefined);
    r = await simpleQuery(conn, "select 1/0; DEALLOCATE p1; PREPARE p1 AS select 'harmless'::text as s");
    assert.equal(r.error?.C, "22012");
    r = await simpleQuery(conn, "EXECUTE p1");
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.rows.length, 5, "the target still has the customers query");
    for (const [v] of r.rows) assert.ok(!String(v).includes(SEED), `unmasked value reached the agent: ${v}`);
    conn.destroy();
  });

  it("statements of one Query count in order: DEALLOCATE, PREPARE, EXECUTE together run the new definition", async () => {
    const conn = await login();
    let r = await simpleQuery(conn, "PREPARE p2 AS select 1");
    assert.equal(r.error, undefined);
    r = await simpleQuery(conn, "DEALLOCATE p2; PREPARE p2 AS delete from customers where id = 2; EXECUTE p2 /* attack-in-query */");
    assert.equal(r.error?.C, "PX001", JSON.stringify(r.error));
    conn.destroy();
    assert.equal(await customers(), 5);
  });

  it("a cursor redefinition that never ran cannot relabel the cursor's masked columns", async () => {
    const conn = await login();
    let r = await simpleQuery(conn, "DECLARE c1 CURSOR WITH HOLD FOR select secret || '' as s from customers");
    assert.equal(r.error, undefined);
    r = await simpleQuery(conn, "select 1/0; CLOSE c1; DECLARE c1 CURSOR WITH HOLD FOR select 'harmless'::text as s");
    assert.equal(r.error?.C, "22012");
    r = await simpleQuery(conn, "FETCH ALL FROM c1");
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.rows.length, 5, "the target's cursor still has the customers");
    for (const [v] of r.rows) assert.ok(!String(v).includes(SEED), `unmasked value reached the agent: ${v}`);
    conn.destroy();
  });

  it("a cursor rolled back with its transaction is forgotten; its name then resolves to what the target has", async () => {
    const conn = await login();
    let r = await simpleQuery(conn, "BEGIN; DECLARE c2 CURSOR WITH HOLD FOR select 'harmless'::text as s; ROLLBACK");
    assert.equal(r.error, undefined);
    r = await simpleQuery(conn, "FETCH ALL FROM c2");
    assert.equal(r.error?.C, "34000", "the target has no such cursor");
    // Prepared statements are not transactional in PostgreSQL: a PREPARE inside a rolled-back transaction stays.
    r = await simpleQuery(conn, "BEGIN; PREPARE p3 AS select secret || '' as s from customers; ROLLBACK");
    assert.equal(r.error, undefined);
    r = await simpleQuery(conn, "EXECUTE p3");
    assert.equal(r.error, undefined, "the target kept the statement");
    assert.equal(r.rows.length, 5);
    for (const [v] of r.rows) assert.ok(!String(v).includes(SEED), `unmasked value reached the agent: ${v}`);
    conn.destroy();
  });

  it("a WITH HOLD cursor of a transaction that did not commit is forgotten, so a name code reopens is not taken for it", async () => {
    const conn = await login();
    let r = await simpleQuery(conn, "BEGIN; DECLARE h CURSOR WITH HOLD FOR select 'harmless'::text as s; ROLLBACK");
    assert.equal(r.error, undefined);
    // The target has no h; a function opens one under that name, reading the masked column.
    r = await simpleQuery(conn, "BEGIN; SELECT reopen('h'); FETCH ALL FROM h");
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.rows.length, 1 + 5);
    for (const [v] of r.rows.slice(1)) assert.ok(!String(v).toLowerCase().includes(SEED), `unmasked value reached the agent: ${v}`);
    await simpleQuery(conn, "ROLLBACK");
    conn.destroy();
  });

  it("an extended-protocol COPY FROM STDIN: the Sync the target ignores in copy-in mode does not put the gateway out of step", async () => {
    await direct.query("create table if not exists copied (v text)");
    const conn = await login();
    // As node-postgres and libpq send it: Sync right after Execute (ignored once COPY starts), then the data, CopyDone and another Sync.
    const msgs = await exchange(conn, [
      parse("", "copy copied from stdin"), bind("", ""), execute(""), sync(),
      typed("d", "one\n"), typed("d", "two\n"), typed("c"), sync(),
    ], 1);
    assert.deepEqual(errorsOf(msgs), []);
    assert.ok(msgs.some((m) => m.type === "G"), "the target entered copy-in mode");
    // The session is still in step (a Parse now gets its own answer, not the COPY's).
    assert.deepEqual((await simpleQuery(conn, "select count(*) from copied")).rows, [["2"]]);
    const parsed = await exchange(conn, [parse("", "select 41 + 1"), sync()], 1);
    assert.deepEqual(parsed.map((m) => m.type), ["1", "Z"]);
    // A COPY that fails before it starts answers both Syncs, as PostgreSQL does.
    const failed = await exchange(conn, [
      parse("", "copy no_such_table from stdin"), bind("", ""), execute(""), sync(),
      typed("d", "x\n"), typed("c"), sync(),
    ], 2);
    assert.equal(errorsOf(failed)[0]?.C, "42P01");
    assert.deepEqual((await simpleQuery(conn, "select 6 * 7")).rows, [["42"]]);
    conn.destroy();
  });

  it("portals end with their transaction; DISCARD ALL forgets everything", async () => {
    const conn = await login();
    // A portal bound in one implicit transaction does not exist in the next.
    let msgs = await exchange(conn, [parse("", "select 1"), bind("pt", ""), sync(), execute("pt"), sync()], 2);
    assert.equal(errorsOf(msgs)[0]?.C, "34000");
    let r = await simpleQuery(conn, "PREPARE p4 AS select 1");
    r = await simpleQuery(conn, "DISCARD ALL");
    assert.equal(r.error, undefined);
    msgs = await exchange(conn, [bind("", "p4"), execute(""), sync()], 1);
    assert.equal(errorsOf(msgs)[0]?.C, "26000");
    // The session is still in step: ordinary work goes on.
    r = await simpleQuery(conn, "select count(*) from customers");
    assert.deepEqual(r.rows, [["5"]]);
    conn.destroy();
  });

  describe("code the gateway cannot read", () => {
    let plain: TestGateway;
    before(async () => { plain = await startTestGateway({ target, overrides: { rules: RULES } }); });
    after(async () => { await plain?.stop(); });

    it("a DO block may PREPARE under a name the gateway knew: after it, no name is trusted", async () => {
      // No column rules here: with them, a DO block that builds SQL at run time is refused outright.
      const conn = (await rawLogin(plain.port, await plain.token(), "app", { options: "-c portcullis.approval=defer" })).conn;
      let r = await simpleQuery(conn, "PREPARE zz AS select 1 /* harmless */");
      assert.equal(r.error, undefined);
      // Built at run time, so no reader of the block can know what it prepares.
      r = await simpleQuery(conn, "DO $$ BEGIN EXECUTE 'deallocate zz'; EXECUTE 'prep' || 'are zz as delete from customers /* attack-do-prepare */'; END $$");
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      const through = await exchange(conn, [queryMessage("EXECUTE zz")], 1);
      assert.ok(errorsOf(through).length > 0, "EXECUTE of a name the gateway cannot vouch for is refused");
      assert.equal(await customers(), 5, "the DELETE ran without approval");
      // The same through the extended protocol.
      await simpleQuery(conn, "DO $$ BEGIN EXECUTE 'deallocate zz'; EXECUTE 'prep' || 'are zz as delete from customers /* attack-do-prepare-2 */'; END $$");
      const ext = await exchange(conn, [bind("", "zz"), execute(""), sync()], 1);
      assert.equal(errorsOf(ext)[0]?.C, "26000");
      assert.equal(await customers(), 5, "the DELETE ran without approval (extended)");
      conn.destroy();
    });
  });
});
