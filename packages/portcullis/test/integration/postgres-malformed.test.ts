/**
 * Hostile and malformed bytes on the gateway's PostgreSQL port, over raw sockets, against a real
 * gateway in front of a real PostgreSQL. Every case must end in one FATAL ErrorResponse in the
 * gateway's name (or a clean close), and must not disturb the gateway or anyone else's session.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { UPSTREAM_PASSWORD, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import {
  RawPg, cancelRequest, errorFields, finishLogin, gssencRequest, passwordMessage, queryMessage, rawLogin, simpleQuery,
  sslRequest, startupPacket, typed, untyped,
} from "../support/raw-pg.js";
import { prng } from "../support/prng.js";


const int32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };

describe("postgres gateway under malformed and hostile input", () => {
  let target: TestTarget;
  let gw: TestGateway;
  /** An innocent session opened before any attack; it must keep working throughout. */
  let bystander: pg.Client;
  const bystanderErrors: Error[] = [];
  /** Every token handed out, to check no error message or log line echoes one. */
  const tokens: string[] = [];
  /** Every ErrorResponse the gateway sent in these tests. */
  const errorsSeen: Record<string, string>[] = [];

  const token = async () => {
    const t = await gw.token();
    tokens.push(t);
    return t;
  };

  before(async () => {
    target = await startTarget();
    gw = await startTestGateway({ target });
    bystander = new pg.Client(gw.clientConfig(await token()));
    bystander.on("error", (err) => bystanderErrors.push(err));
    await bystander.connect();
  });

  after(async () => {
    await bystander?.end().catch(() => {});
    await gw?.stop();
    await target?.stop();
  });

  /** Expects exactly one FATAL ErrorResponse in the gateway's name, then a clean close. */
  async function expectFatal(
    conn: RawPg, sqlstate: string, message?: RegExp, opts: { keptWriting?: boolean } = {},
  ): Promise<Record<string, string>> {
    const { messages, trailing, error } = await conn.readToClose();
    // A client that keeps writing after the refusal may see its later writes reset, as with PostgreSQL.
    if (!(opts.keptWriting && error && /ECONNRESET|EPIPE/.test(error.message))) {
      assert.equal(error, undefined, `socket error: ${error?.message}`);
    }
    assert.equal(trailing.length, 0, "no bytes after the last whole message");
    const errors = messages.filter((m) => m.type === "E");
    assert.equal(errors.length, 1, `one ErrorResponse, got ${messages.map((m) => m.type).join("")}`);
    assert.equal(messages[messages.length - 1]!.type, "E", "the ErrorResponse is the last thing sent");
    const f = errorFields(errors[0]!.body);
    errorsSeen.push(f);
    assert.equal(f.S, "FATAL");
    assert.equal(f.V, "FATAL");
    assert.equal(f.C, sqlstate, `SQLSTATE (message: ${f.M})`);
    assert.match(f.M ?? "", /^portcullis: /);
    if (message) assert.match(f.M!, message);
    return f;
  }

  /** Expects either a FATAL ErrorResponse in the gateway's name or a close with nothing sent. */
  async function expectFatalOrClose(conn: RawPg, sqlstate: string): Promise<void> {
    const { messages, trailing, error } = await conn.readToClose();
    assert.ok(!error || /ECONNRESET|EPIPE/.test(error.message), `socket error: ${error?.message}`);
    assert.equal(trailing.length, 0);
    if (messages.length === 0) return;
    assert.deepEqual(messages.map((m) => m.type), ["E"]);
    const f = errorFields(messages[0]!.body);
    errorsSeen.push(f);
    assert.equal(f.S, "FATAL");
    assert.equal(f.C, sqlstate);
    assert.match(f.M ?? "", /^portcullis: /);
  }

  /** The gateway is still up, and the bystander's session is untouched. */
  async function assertSurvived(): Promise<void> {
    const r = await bystander.query("select 6 * 7 as n, current_user as u");
    assert.deepEqual(r.rows[0], { n: 42, u: "app_user" });
    assert.deepEqual(bystanderErrors, []);
    // And a new session can still log in.
    const s = await rawLogin(gw.port, await token());
    const q = await simpleQuery(s.conn, "select 1");
    assert.deepEqual(q.rows, [["1"]]);
    s.conn.destroy();
  }

  it("a truncated startup packet, then close", async () => {
    const conn = await RawPg.connect(gw.port);
    const full = startupPacket({ user: "agent", database: "app" });
    await conn.write(full.subarray(0, 10));
    conn.end();
    await expectFatalOrClose(conn, "08P01");
    await assertSurvived();
  });

  it("an invalid startup packet length gets no reply and a close, as from PostgreSQL itself", async () => {
    for (const length of [0x7fffffff, 10_005, 7, 4, 0, -1]) {
      for (const [who, port] of [["gateway", gw.port], ["postgres", target.pg.port]] as const) {
        const conn = await RawPg.connect(port);
        await conn.write(Buffer.concat([int32(length), int32(196608), Buffer.from("user\0agent\0")]));
        const { messages, trailing, error } = await conn.readToClose();
        assert.ok(!error || /ECONNRESET/.test(error.message), `${who} ${length}: ${error?.message}`);
        assert.deepEqual([messages.length, trailing.length], [0, 0], `${who} answers length ${length} with nothing`);
      }
    }
    await assertSurvived();
  });

  it("a typed message length of 0x7fffffff after login: FATAL 08P01 and close, nothing buffered", async () => {
    const tok = await token();
    const s = await rawLogin(gw.port, tok);
    const before = process.memoryUsage();
    // The header alone: refused on the header, before any body arrives.
    await s.conn.write(Buffer.concat([Buffer.from("Q"), int32(0x7fffffff)]));
    const f = await expectFatal(s.conn, "08P01", /exceeds the limit/);
    assert.ok(!f.M!.includes(tok));
    const grown = process.memoryUsage().arrayBuffers - before.arrayBuffers;
    assert.ok(grown < 64 * 1024 * 1024, `external memory grew by ${grown} bytes`);
    await assertSurvived();
  });

  it("a typed message length of 0x7fffffff followed by 4 MB of its 'body': one FATAL, no memory blow-up", async () => {
    const s = await rawLogin(gw.port, await token());
    const before = process.memoryUsage();
    await s.conn.write(Buffer.concat([Buffer.from("Q"), int32(0x7fffffff), Buffer.alloc(64 * 1024, 0x41)]));
    for (let i = 0; i < 8 && !s.conn.closed; i++) await s.conn.write(Buffer.alloc(512 * 1024, 0x41));
    await expectFatal(s.conn, "08P01", /exceeds the limit/, { keptWriting: true });
    const grown = process.memoryUsage().arrayBuffers - before.arrayBuffers;
    assert.ok(grown < 64 * 1024 * 1024, `external memory grew by ${grown} bytes`);
    await assertSurvived();
  });

  it("after a framing error the gateway parses nothing more from that client (one protocol error, not more)", async () => {
    // A client that keeps its side open and goes on writing after the gateway's FATAL.
    const s = await rawLogin(gw.port, await token(), "app", {}, { allowHalfOpen: true });
    const logsBefore = gw.logs.length;
    await s.conn.write(Buffer.concat([Buffer.from("Q"), int32(0x7fffffff)]));
    const fatal = await s.conn.readMessage();
    assert.equal(fatal.type, "E");
    assert.equal(errorFields(fatal.body).C, "08P01");
    // What follows the bad header: zeros (length 0) and 'A's (length 0x41414141), in separate segments.
    for (let i = 0; i < 4; i++) {
      await s.conn.write(Buffer.alloc(1024, i % 2 ? 0x41 : 0));
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 200));
    s.conn.destroy();
    const protocolErrors = gw.logs.slice(logsBefore).filter((l) => l.includes("postgres protocol error"));
    assert.equal(protocolErrors.length, 1, `protocol errors logged for one bad message:\n${protocolErrors.join("")}`);
    await assertSurvived();
  });

  it("a second StartupMessage during authentication", async () => {
    const conn = await RawPg.connect(gw.port);
    await conn.write(startupPacket({ user: "agent", database: "app" }));
    const m = await conn.readMessage();
    assert.equal(m.type, "R");
    assert.equal(m.body.readInt32BE(0), 3, "AuthenticationCleartextPassword");
    await conn.write(startupPacket({ user: "agent", database: "app" }));
    await expectFatal(conn, "08P01");
    await assertSurvived();
  });

  it("an empty startup option name in the middle of the startup packet", async () => {
    const conn = await RawPg.connect(gw.port);
    await conn.write(untyped(196608, Buffer.from("user\0agent\0\0database\0app\0\0")));
    await expectFatal(conn, "08P01", /terminator/);
    await assertSurvived();
  });

  it("64 KB of random bytes", async () => {
    const rand = prng(0xbadc0de);
    const noise = Buffer.alloc(64 * 1024);
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(rand() * 256);
    // Its first four bytes are no startup packet length: closed without a word, as PostgreSQL does.
    const conn = await RawPg.connect(gw.port);
    await conn.write(noise);
    await expectFatalOrClose(conn, "08P01");
    await assertSurvived();
  });

  it("random bytes after a valid login are refused without reaching the target", async () => {
    const rand = prng(0x5eed);
    const noise = Buffer.alloc(64 * 1024);
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(rand() * 256);
    noise[0] = 0x51; // 'Q', with an impossible length
    noise.writeInt32BE(0x7ffffff0, 1);
    const s = await rawLogin(gw.port, await token());
    await s.conn.write(noise);
    await expectFatal(s.conn, "08P01");
    await assertSurvived();
  });

  it("SSLRequest followed in the same write by plaintext (CVE-2021-23214) is refused", async () => {
    // Control: alone, the same SSLRequest is accepted ('S'), so the refusal below is about the stuffing.
    const control = await RawPg.connect(gw.port);
    await control.write(sslRequest());
    assert.equal((await control.readBytes(1)).toString(), "S");
    control.destroy();

    const conn = await RawPg.connect(gw.port);
    await conn.write(Buffer.concat([sslRequest(), startupPacket({ user: "agent", database: "app" })]));
    const { messages, trailing } = await conn.readToClose();
    // Never 'S': the gateway must not start TLS with plaintext queued behind the request.
    assert.notEqual(trailing[0], 0x53, "the gateway answered 'S'");
    assert.deepEqual(messages.map((m) => m.type), ["E"]);
    const f = errorFields(messages[0]!.body);
    errorsSeen.push(f);
    assert.equal(f.S, "FATAL");
    assert.equal(f.C, "08P01");
    assert.match(f.M!, /^portcullis: .*unexpected data after SSLRequest/);
    await assertSurvived();
  });

  it("a GSSENCRequest is answered 'N', and the same socket can then log in normally", async () => {
    const conn = await RawPg.connect(gw.port);
    await conn.write(gssencRequest());
    assert.equal((await conn.readBytes(1)).toString(), "N");
    await conn.write(startupPacket({ user: "agent", database: "app", application_name: "after-gssenc" }));
    const login = await finishLogin(conn, await token());
    assert.ok(login.processId > 0);
    const q = await simpleQuery(conn, "select current_user, current_setting('application_name')");
    assert.equal(q.error, undefined);
    assert.deepEqual(q.rows, [["app_user", "after-gssenc"]]);
    conn.destroy();
    await assertSurvived();
  });

  /** Sends a CancelRequest on a fresh socket; the gateway, like PostgreSQL, answers nothing and closes. */
  async function sendCancel(processId: number, secretKey: number): Promise<void> {
    const c = await RawPg.connect(gw.port);
    await c.write(cancelRequest(processId, secretKey));
    const { messages, trailing, error } = await c.readToClose();
    assert.deepEqual(messages, []);
    assert.equal(trailing.length, 0);
    assert.equal(error, undefined);
  }

  it("a CancelRequest with a wrong key cancels nothing (real pg client running pg_sleep(2))", async () => {
    const victim = new pg.Client(gw.clientConfig(await token()));
    await victim.connect();
    try {
      // node-postgres keeps the BackendKeyData the gateway sent it.
      const key = victim as unknown as { processID: number; secretKey: number };
      assert.ok(Number.isInteger(key.processID) && key.processID > 0, `processID ${key.processID}`);
      const started = Date.now();
      const slow = victim.query("select pg_sleep(2) as slept, 'done' as status");
      await new Promise((r) => setTimeout(r, 300));
      await sendCancel(key.processID, key.secretKey ^ 1); // wrong secret for its process id
      await sendCancel(key.processID, key.secretKey + 1 | 0);
      await sendCancel(key.processID ^ 0x40000000, key.secretKey); // right secret, wrong process id
      const r = await slow;
      assert.deepEqual(r.rows, [{ slept: "", status: "done" }]);
      assert.ok(Date.now() - started >= 1900, "the query ran its full course");
      assert.deepEqual((await victim.query("select 1 as one")).rows, [{ one: 1 }]);
    } finally {
      await victim.end();
    }
    await assertSurvived();
  });

  it("a CancelRequest with the right key cancels the running query (57014), and only that", async () => {
    const victim = await rawLogin(gw.port, await token());
    assert.ok(victim.processId > 0);
    const started = Date.now();
    const long = simpleQuery(victim.conn, "select pg_sleep(30)");
    const bystanderQuery = bystander.query("select pg_sleep(1), 'untouched' as s");
    await new Promise((r) => setTimeout(r, 300));
    await sendCancel(victim.processId, victim.secretKey);
    const cancelled = await long;
    assert.equal(cancelled.error?.C, "57014", JSON.stringify(cancelled.error));
    assert.equal(cancelled.error?.S, "ERROR");
    assert.ok(Date.now() - started < 10_000);
    assert.equal((await bystanderQuery).rows[0].s, "untouched");
    // The session itself carries on.
    assert.deepEqual((await simpleQuery(victim.conn, "select 'still here'")).rows, [["still here"]]);
    victim.conn.destroy();
    await assertSurvived();
  });

  it("a malformed PasswordMessage carrying a valid token: refused, and the token is not echoed", async () => {
    const tok = await token();
    const cases: Buffer[] = [
      typed("p", `${tok}\0trailing`), // bytes after the NUL
      typed("p", tok), // no NUL at all
      queryMessage(tok), // not a password message
    ];
    for (const bad of cases) {
      const conn = await RawPg.connect(gw.port);
      await conn.write(startupPacket({ user: "agent", database: "app" }));
      assert.equal((await conn.readMessage()).type, "R");
      await conn.write(bad);
      const f = await expectFatal(conn, "08P01");
      for (const v of Object.values(f)) assert.ok(!v.includes(tok) && !v.includes(tok.split(".")[2]!), `token echoed in ${JSON.stringify(f)}`);
    }
    // An invalid token is refused as such, without echo.
    const conn = await RawPg.connect(gw.port);
    await conn.write(startupPacket({ user: "agent", database: "app" }));
    assert.equal((await conn.readMessage()).type, "R");
    const forged = `${tok.slice(0, -4)}AAAA`;
    await conn.write(passwordMessage(forged));
    const f = await expectFatal(conn, "28P01", /^portcullis: invalid token$/);
    assert.ok(!JSON.stringify(f).includes(forged));
    await assertSurvived();
  });

  it("bytes streamed after a PasswordMessage with a bad token are not buffered without bound", async () => {
    // "A token is a few KB at most; nothing larger is accepted before authentication" (adapter.ts).
    // The client keeps its side open and streams for as long as the gateway reads.
    const conn = await RawPg.connect(gw.port, "127.0.0.1", { allowHalfOpen: true });
    await conn.write(startupPacket({ user: "agent", database: "app" }));
    assert.equal((await conn.readMessage()).type, "R");
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().arrayBuffers - base); }, 10);
    const chunk = Buffer.alloc(256 * 1024, 0x41);
    const sock = conn.socket;
    let sent = 0;
    try {
      await conn.write(Buffer.concat([passwordMessage("not-a-valid-token"), chunk]));
      const start = Date.now();
      while (!sock.destroyed && Date.now() - start < 2500) {
        if (!sock.write(chunk)) await new Promise((r) => { sock.once("drain", r); sock.once("close", r); setTimeout(r, 100); });
        sent += chunk.length;
      }
    } finally {
      clearInterval(sampler);
      conn.destroy();
    }
    const mb = (n: number) => (n / 2 ** 20).toFixed(1);
    assert.ok(peak < 16 * 2 ** 20, `the gateway's external memory grew by ${mb(peak)} MB while an unauthenticated client streamed ${mb(sent)} MB`);
    await assertSurvived();
  });

  it("a client that disconnects right after its PasswordMessage leaves no session or target connection behind", async () => {
    const app = "portcullis-leak-probe";
    const leaked = async () =>
      (await bystander.query("select count(*)::int as n from pg_stat_activity where application_name = $1", [app])).rows[0].n as number;
    const sub = "leak-probe-agent";
    const open = () => gw.gw.context.sessions.list().filter((x) => x.record.sub === sub).length;
    for (let i = 0; i < 3; i++) {
      const conn = await RawPg.connect(gw.port);
      await conn.write(startupPacket({ user: "agent", database: "app", application_name: app }));
      assert.equal((await conn.readMessage()).type, "R");
      const tok = await gw.token(sub);
      tokens.push(tok);
      await conn.write(passwordMessage(tok));
      conn.destroy(); // gone while the gateway verifies the token and logs in to the target
    }
    // Give the gateway ample time to finish its logins and notice the clients are gone.
    const deadline = Date.now() + 4000;
    let n = await leaked();
    while (Date.now() < deadline && (n > 0 || open() > 0)) {
      await new Promise((r) => setTimeout(r, 100));
      n = await leaked();
    }
    assert.equal(n, 0, `${n} target backends still open for clients that are gone`);
    assert.equal(open(), 0, "gateway sessions still open for clients that are gone");
    await assertSurvived();
  });

  it("no ErrorResponse ever contained a token, and no log line the upstream password or a token", (t) => {
    for (const f of errorsSeen) t.diagnostic(`${f.C} ${f.M}`);
    assert.ok(errorsSeen.length >= 10, `only ${errorsSeen.length} errors seen`);
    for (const f of errorsSeen) {
      const text = JSON.stringify(f);
      assert.ok(!text.includes(UPSTREAM_PASSWORD));
      for (const t of tokens) assert.ok(!text.includes(t) && !text.includes(t.split(".")[2]!), `token in ${text}`);
    }
    const logs = gw.logs.join("");
    assert.ok(logs.length > 0);
    assert.ok(!logs.includes(UPSTREAM_PASSWORD), "upstream password in the gateway's logs");
    for (const t of tokens) assert.ok(!logs.includes(t.split(".")[2]!), "a token's signature in the gateway's logs");
    // Every failure above was a known, typed refusal: nothing fell through as an internal error.
    assert.deepEqual(gw.logs.filter((l) => l.includes("postgres session failed") && l.includes('"level":50')), []);
  });
});

