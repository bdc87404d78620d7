/**
 * Attack tests: a setting that decides how SQL is read (standard_conforming_strings) changed by code
 * the gateway cannot see, with the next statement already on the wire. PostgreSQL reports the change
 * only at ReadyForQuery, and the gateway ends the session then; text whose reading depends on the
 * setting must not reach the target before that. The witness is the target's own table: a DELETE the
 * policy denies, hidden in a literal that only `standard_conforming_strings = off` ends early.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import pg from "pg";
import { bindMessage, errorFields, executeMessage, parseMessage, queryMessage, rawLogin, simpleQuery, syncMessage } from "../support/raw-pg.js";
import { connectDirect, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

/** Under "on" one SELECT of a long literal; under "off" the literal ends early and the CTE deletes every row. */
const SMUGGLED = String.raw`with x as (select 'a\'' as s), d as (delete from sink returning 1) select 1 --') select 1`;
/** Three ways code turns the setting off where the gateway cannot read it. */
const CHANGERS = [
  "select lexing_off()",
  "do $$ begin execute 'set standard_conforming' || '_strings = off'; end $$",
  "update pg_settings set setting = 'off' where name = 'standard_conforming_strings'",
];

describe("text read under a setting changed where the gateway cannot see it", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let direct: pg.Client;
  const rows = async () => Number((await direct.query("select count(*) as n from sink")).rows[0].n);

  before(async () => {
    target = await startTarget();
    gw = await startTestGateway({ target, overrides: { rules: [{ name: "no-delete", when: { sql: { statements: ["delete", "truncate"] } }, action: "deny" }] } });
    direct = await connectDirect(target);
    await direct.query("create table sink (v text)");
    // Already in the database: its body is not the gateway's to read.
    await direct.query("create function lexing_off() returns void language plpgsql as $$ begin perform set_config('standard_conforming_strings', 'off', false); end $$");
  });
  after(async () => {
    await direct?.end();
    await gw?.stop();
    await target?.stop();
  });
  beforeEach(async () => { await direct.query("delete from sink; insert into sink values ('still here')"); });

  it("control: the text alone is one harmless SELECT through the gateway, and deletes directly once the setting is off", async () => {
    const { conn } = await rawLogin(gw.port, await gw.token());
    assert.equal((await simpleQuery(conn, SMUGGLED)).error, undefined);
    conn.destroy();
    assert.equal(await rows(), 1);
    await direct.query("set standard_conforming_strings = off");
    await direct.query(SMUGGLED).catch(() => undefined);
    await direct.query("set standard_conforming_strings = on");
    assert.equal(await rows(), 0, "the witness can see the DELETE");
  });

  for (const change of CHANGERS) {
    it(`pipelined Queries: ${change.slice(0, 40)}… then the text; it waits for the answer, and the session ends`, async () => {
      const { conn } = await rawLogin(gw.port, await gw.token());
      await conn.write(Buffer.concat([queryMessage(change), queryMessage(SMUGGLED)]));
      // Either the gateway refuses the change (then both Queries are answered) or the target makes
      // it and the session ends at its ReadyForQuery: read until both answers or the close.
      const messages = [];
      for (let ready = 0; ready < 2 && !conn.ended;) {
        const m = await conn.readMessage(15_000).catch(() => undefined);
        if (!m) break;
        messages.push(m);
        if (m.type === "Z") ready++;
      }
      conn.destroy();
      assert.equal(await rows(), 1, "the target ran the DELETE the gateway denies");
      const errors = messages.filter((m) => m.type === "E").map((m) => errorFields(m.body));
      assert.ok(errors.some((e) => e.C === "08P01" || e.C === "42501"), JSON.stringify(errors));
    });

    it(`one pipeline segment: ${change.slice(0, 40)}… then a Parse of the text before Sync is refused`, async () => {
      const { conn } = await rawLogin(gw.port, await gw.token());
      await conn.write(Buffer.concat([
        parseMessage("", change), bindMessage("", ""), executeMessage(""),
        parseMessage("", SMUGGLED), bindMessage("", ""), executeMessage(""),
        syncMessage(),
      ]));
      // The refusal fails the segment, which rolls the change back: the session goes on, reading as before.
      const messages = await conn.readUntil("Z", 15_000, false);
      assert.equal(await rows(), 1, "the target ran the DELETE the gateway denies");
      const errors = messages.filter((m) => m.type === "E").map((m) => errorFields(m.body));
      assert.ok(errors.some((e) => (e.C === "0A000" && /unsettled-settings/.test(e.M ?? "")) || e.C === "42501"), JSON.stringify(errors));
      assert.deepEqual((await simpleQuery(conn, "show standard_conforming_strings")).rows, [["on"]]);
      conn.destroy();
    });
  }

  it("text that reads the same under any setting is not held back: a pipeline of plain statements runs", async () => {
    const { conn } = await rawLogin(gw.port, await gw.token());
    await conn.write(Buffer.concat([
      parseMessage("", "select 1"), bindMessage("", ""), executeMessage(""),
      parseMessage("", "select 'plain' as v"), bindMessage("", ""), executeMessage(""),
      syncMessage(),
    ]));
    const messages = await conn.readUntil("Z", 15_000, false);
    assert.deepEqual(messages.filter((m) => m.type === "E"), []);
    assert.equal(messages.filter((m) => m.type === "C").length, 2);
    // And a backslash in a segment of its own is read as usual.
    assert.deepEqual((await simpleQuery(conn, String.raw`select 'a\b' as v`)).rows, [[String.raw`a\b`]]);
    conn.destroy();
  });
});
