/**
 * Pre-authentication limits on the PostgreSQL port, against a real gateway in front of a real
 * PostgreSQL, over raw sockets: one deadline over the whole phase (TLS handshake included), one
 * SSLRequest and one GSSENCRequest per connection, caps on unauthenticated connections per source
 * and in total, and clean 08P01 refusals of malformed Bind counts. The descriptor-exhaustion case
 * runs the gateway in a child process under a small `ulimit -n`, so running out is real.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { connect as netConnect, Socket } from "node:net";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { DevIssuer } from "../../src/identity/dev-issuer.js";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { RawPg, errorFields, gssencRequest, rawLogin, simpleQuery, sslRequest, startupPacket, typed } from "../support/raw-pg.js";
import { sampleValue, scrape } from "../support/metrics.js";

const int16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16BE(n & 0xffff); return b; };
const int32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const cstr = (s: string) => Buffer.from(`${s}\0`);

/** The limits under test, small so the tests run fast. */
const LIMITS = {
  authentication_timeout: "2s",
  max_unauthenticated_per_source: 20,
  max_unauthenticated: 40,
  max_connections: 100,
  max_message_size: "2MB",
  max_buffered_bytes: "4MB",
};

/** The first bytes of a TLS ClientHello record: enough to start a handshake, never enough to finish it. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

/** A plain socket from a given loopback source address. */
function connectFrom(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolvePromise, reject) => {
    const s = netConnect({ host: "127.0.0.1", port, localAddress, noDelay: true });
    s.once("connect", () => { s.off("error", reject); resolvePromise(s); });
    s.once("error", reject);
  });
}

/** Resolves with the first bytes the peer sends (or what it sent before closing), and whether it closed. */
function firstBytes(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolvePromise) => {
    let buf = Buffer.alloc(0);
    const done = () => { s.off("data", onData); resolvePromise(buf); };
    const onData = (b: Buffer) => { buf = Buffer.concat([buf, b]); if (buf.length >= n) done(); };
    s.on("data", onData);
    s.once("close", done);
    s.on("error", () => {});
  });
}

function closed(s: Socket): Promise<void> {
  return new Promise((r) => (s.destroyed ? r() : s.once("close", () => r())));
}

/** Sends an SSLRequest; "S" leaves the socket at the start of a TLS handshake, "E" is a refusal. */
async function sslRequestFrom(port: number, localAddress: string): Promise<{ socket: Socket; answer: Buffer }> {
  const socket = await connectFrom(port, localAddress);
  socket.write(sslRequest());
  return { socket, answer: await firstBytes(socket, 1) };
}

/** A pg client whose socket comes from `localAddress` (pg calls `stream.connect(port, host)`). */
function clientFrom(localAddress: string, config: pg.ClientConfig): pg.Client {
  const stream = () => {
    const s = new Socket();
    const connect = s.connect.bind(s) as (o: { port: number; host: string; localAddress: string }) => Socket;
    Object.assign(s, { connect: (port: number, host: string) => connect({ port, host, localAddress }) });
    return s;
  };
  return new pg.Client({ ...config, ssl: { rejectUnauthorized: false }, stream });
}

/** TLS through the gateway's SSLRequest, then everything the gateway sends until it closes. */
async function tlsSession(port: number): Promise<{ tls: TLSSocket; received: () => Promise<Buffer> }> {
  const raw = await connectFrom(port, "127.0.0.1");
  raw.write(sslRequest());
  assert.equal((await firstBytes(raw, 1)).toString(), "S");
  const tls = tlsConnect({ socket: raw, rejectUnauthorized: false });
  await new Promise<void>((r, j) => { tls.once("secureConnect", () => r()); tls.once("error", j); });
  let buf = Buffer.alloc(0);
  tls.on("data", (b: Buffer) => { buf = Buffer.concat([buf, b]); });
  tls.on("error", () => {});
  const end = new Promise<void>((r) => tls.once("close", () => r()));
  return { tls, received: async () => { await end; return buf; } };
}

/** Typed messages in `buf`, in order. */
function messagesOf(buf: Buffer): { type: string; body: Buffer }[] {
  const out: { type: string; body: Buffer }[] = [];
  let off = 0;
  while (off + 5 <= buf.length) {
    const len = buf.readInt32BE(off + 1);
    out.push({ type: String.fromCharCode(buf[off]!), body: buf.subarray(off + 5, off + 1 + len) });
    off += 1 + len;
  }
  return out;
}

async function metric(httpPort: number, name: string, labels: Record<string, string>): Promise<number> {
  return sampleValue(await scrape(httpPort), name, labels);
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("postgres pre-authentication limits", () => {
  let target: TestTarget;
  let gw: TestGateway;
  const hits = (limit: string) => metric(gw.httpPort, "portcullis_connection_limit_hits_total", { protocol: "postgres", limit });
  const unauthenticatedOpen = () => metric(gw.httpPort, "portcullis_connections_open", { protocol: "postgres", state: "unauthenticated" });
  /** The gateway still serves a new login from the first source. */
  const assertSurvived = async () => {
    const s = await rawLogin(gw.port, await gw.token());
    assert.deepEqual((await simpleQuery(s.conn, "select 6 * 7")).rows, [["42"]]);
    s.conn.destroy();
  };

  before(async () => {
    target = await startTarget();
    gw = await startTestGateway({ target, gateway: LIMITS });
  });

  after(async () => {
    await gw?.stop();
    await target?.stop();
  });

  it("a second GSSENCRequest is refused (08P01), as PostgreSQL does", async () => {
    const conn = await RawPg.connect(gw.port);
    await conn.write(gssencRequest());
    assert.equal((await conn.readBytes(1)).toString(), "N");
    await conn.write(gssencRequest());
    const { messages } = await conn.readToClose();
    assert.deepEqual(messages.map((m) => m.type), ["E"]);
    const f = errorFields(messages[0]!.body);
    assert.equal(f.S, "FATAL");
    assert.equal(f.C, "08P01");
    assert.match(f.M!, /GSSENCRequest/);
  });

  it("a second SSLRequest, or a GSSENCRequest, inside TLS is refused (08P01)", async () => {
    for (const request of [sslRequest(), gssencRequest()]) {
      const { tls, received } = await tlsSession(gw.port);
      tls.write(request);
      const messages = messagesOf(await received());
      assert.deepEqual(messages.map((m) => m.type), ["E"], "one ErrorResponse, not an 'S' or 'N'");
      const f = errorFields(messages[0]!.body);
      assert.equal(f.C, "08P01");
      assert.match(f.M!, /already negotiated/);
    }
  });

  it("the pre-authentication deadline covers a stalled TLS handshake (closed, counted)", { timeout: 15_000 }, async () => {
    const before = await hits("authentication_timeout");
    const { socket, answer } = await sslRequestFrom(gw.port, "127.0.0.1");
    assert.equal(answer.toString(), "S");
    socket.write(PARTIAL_CLIENT_HELLO);
    // The gateway closes it: the test never does.
    await closed(socket);
    assert.equal(await hits("authentication_timeout"), before + 1);
  });

  it("the deadline covers the whole phase: a login that never sends its token gets 57014", async () => {
    const conn = await RawPg.connect(gw.port);
    await conn.write(startupPacket({ user: "agent", database: "app" }));
    const { messages } = await conn.readToClose(15_000);
    assert.deepEqual(messages.map((m) => m.type), ["R", "E"]);
    const f = errorFields(messages[1]!.body);
    assert.equal(f.S, "FATAL");
    assert.equal(f.C, "57014");
    assert.match(f.M!, /canceling authentication due to timeout/);
  });

  it("a client that leaves in the middle of its startup packet gives back what the gateway buffered", async () => {
    const buffered = () => metric(gw.httpPort, "portcullis_buffered_bytes", { protocol: "postgres" });
    const packet = startupPacket({ user: "agent", database: "app", application_name: "x".repeat(4000) });
    const conn = await RawPg.connect(gw.port);
    await conn.write(packet.subarray(0, 3000));
    await eventually("the partial packet to be held", async () => ((await buffered()) >= 3000 ? true : undefined));
    conn.destroy();
    await eventually("the budget to be returned", async () => ((await buffered()) === 0 ? true : undefined));
  });

  it("the per-source cap bites (53300, counted) while another source still logs in", async () => {
    const before = await hits("max_unauthenticated_per_source");
    const stalled: Socket[] = [];
    try {
      for (let i = 0; i < LIMITS.max_unauthenticated_per_source; i++) {
        const { socket, answer } = await sslRequestFrom(gw.port, "127.0.0.1");
        assert.equal(answer.toString(), "S", `connection ${i} is within the cap`);
        stalled.push(socket);
      }
      assert.ok(await unauthenticatedOpen() >= LIMITS.max_unauthenticated_per_source);
      // More from the same source: each refused at once, in PostgreSQL's words.
      const logsBefore = gw.logs.length;
      for (let i = 0; i < 5; i++) {
        const over = await RawPg.connect(gw.port);
        await over.write(sslRequest());
        const { messages } = await over.readToClose();
        assert.deepEqual(messages.map((m) => m.type), ["E"]);
        const f = errorFields(messages[0]!.body);
        assert.equal(f.S, "FATAL");
        assert.equal(f.C, "53300");
        assert.match(f.M!, /too many clients/);
      }
      assert.equal(await hits("max_unauthenticated_per_source"), before + 5, "every refusal counted");
      // Logged, but not once per refusal: an attack must not flood the log.
      const lines = gw.logs.slice(logsBefore).filter((l) => l.includes("connection limit reached") && l.includes("max_unauthenticated_per_source"));
      assert.equal(lines.length, 1, lines.join(""));
      assert.match(lines[0]!, /"source":"127\.0\.0\.1"/);
      // Another source is not held back by the first one's stalled handshakes.
      const client = clientFrom("127.0.0.2", gw.clientConfig(await gw.token()));
      await client.connect();
      assert.deepEqual((await client.query("select inet_client_addr() is not null as ok")).rows, [{ ok: true }]);
      await client.end();
    } finally {
      for (const s of stalled) s.destroy();
    }
    await eventually("the stalled connections to be released", async () => ((await unauthenticatedOpen()) === 0 ? true : undefined));
    await assertSurvived();
  });

  it("the buffer budget across sessions: the session that would pass it ends with 53200, the others go on", async () => {
    const before = await hits("max_buffered_bytes");
    const buffered = () => metric(gw.httpPort, "portcullis_buffered_bytes", { protocol: "postgres" });
    // A 1.5 MB query (under max_message_size), sent all but its last bytes: the gateway must hold it.
    const query = typed("Q", Buffer.concat([Buffer.from("select 'ok' as r -- "), Buffer.alloc(1536 * 1024, 0x61), Buffer.from([0])]));
    const head = query.subarray(0, query.length - 16);
    const tail = query.subarray(query.length - 16);
    const [a, b, c] = [await rawLogin(gw.port, await gw.token()), await rawLogin(gw.port, await gw.token()), await rawLogin(gw.port, await gw.token())];
    try {
      await a.conn.write(head);
      await b.conn.write(head);
      await eventually("two partial queries to be held", async () => ((await buffered()) >= 2 * (head.length - 64 * 1024) ? true : undefined));
      // A third would take the total past 4 MB.
      await c.conn.write(head);
      const { messages } = await c.conn.readToClose();
      const f = errorFields(messages.find((m) => m.type === "E")!.body);
      assert.equal(f.S, "FATAL");
      assert.equal(f.C, "53200");
      assert.equal(await hits("max_buffered_bytes"), before + 1);
      // The sessions within the budget finish their queries.
      for (const s of [a, b]) {
        await s.conn.write(tail);
        const got = await s.conn.readUntil("Z");
        assert.ok(got.some((m) => m.type === "D"), `a result, got ${got.map((m) => m.type).join("")}`);
      }
    } finally {
      for (const s of [a, b, c]) s.conn.destroy();
    }
    await eventually("the budget to be returned", async () => ((await buffered()) === 0 ? true : undefined));
  });

  describe("malformed Bind counts: one FATAL 08P01 in PostgreSQL's words, never a JavaScript error", () => {
    const parse = typed("P", Buffer.concat([cstr("s1"), cstr("select $1::int as n"), int16(0)]));
    const sync = typed("S");
    const bind = (...parts: Buffer[]) => typed("B", Buffer.concat([cstr(""), cstr("s1"), ...parts]));
    const cases: [string, Buffer][] = [
      ["parameter format count beyond the message", bind(int16(0xffff))],
      ["parameter format count with the sign bit set", bind(int16(0x8000), int16(0), int16(1), int32(1), Buffer.from("7"), int16(0))],
      ["more parameters than values", bind(int16(0), int16(2), int32(1), Buffer.from("7"), int16(0))],
      ["a negative parameter length other than -1", bind(int16(0), int16(1), int32(-5), int16(0))],
      ["a parameter length beyond the message", bind(int16(0), int16(1), int32(0x7ffffff0), Buffer.from("7"), int16(0))],
      ["two parameter formats for three parameters", bind(int16(2), int16(0), int16(0), int16(3), int32(-1), int32(-1), int32(-1), int16(0))],
      ["result format count beyond the message", bind(int16(0), int16(1), int32(1), Buffer.from("7"), int16(0x7fff))],
      ["result format count with the sign bit set", bind(int16(0), int16(1), int32(1), Buffer.from("7"), int16(0xfffe), int16(1))],
      ["an unknown format code", bind(int16(1), int16(7), int16(1), int32(1), Buffer.from("7"), int16(0))],
      ["bytes after the last field", bind(int16(0), int16(1), int32(1), Buffer.from("7"), int16(0), Buffer.from("junk"))],
      ["no parameter count at all", bind()],
    ];
    for (const [name, message] of cases) {
      it(name, async () => {
        const s = await rawLogin(gw.port, await gw.token());
        await s.conn.write(Buffer.concat([parse, message, typed("E", Buffer.concat([cstr(""), int32(0)])), sync]));
        const { messages } = await s.conn.readToClose();
        const errors = messages.filter((m) => m.type === "E").map((m) => errorFields(m.body));
        assert.equal(errors.length, 1, `one ErrorResponse, got ${messages.map((m) => m.type).join("")}`);
        assert.equal(errors[0]!.S, "FATAL");
        assert.equal(errors[0]!.C, "08P01");
        assert.match(errors[0]!.M!, /^portcullis: (insufficient data left in message|invalid message format|bind message has \d+ parameter formats but \d+ parameters|unsupported format code: -?\d+)$/);
        assert.ok(!messages.some((m) => m.type === "D"), "nothing ran");
        await assertSurvived();
      });
    }

    it("a well-formed Bind still runs", async () => {
      const s = await rawLogin(gw.port, await gw.token());
      const ok = bind(int16(0), int16(1), int32(2), Buffer.from("42"), int16(1), int16(0));
      await s.conn.write(Buffer.concat([parse, ok, typed("E", Buffer.concat([cstr(""), int32(0)])), sync]));
      const got = await s.conn.readUntil("Z");
      assert.deepEqual(got.map((m) => m.type), ["1", "2", "D", "C", "Z"]);
      s.conn.destroy();
    });
  });
});

describe("descriptor exhaustion: thousands of stalled TLS handshakes from one source", () => {
  /** The gateway's descriptor limit; the attack opens twice as many sockets. */
  const FD_LIMIT = 1024;
  const ATTACK_SOCKETS = 2000;
  let target: TestTarget;
  let child: ChildProcess | undefined;
  let gateway: { port: number; httpPort: number; dataDir: string };

  before(async () => {
    target = await startTarget();
    const support = pathToFileURL(resolve(import.meta.dirname, "../support/gateway.ts")).href;
    // The gateway alone runs under the small limit; this process keeps its own (far larger) one.
    const code = `
      const { startTestGateway } = await import(${JSON.stringify(support)});
      const gw = await startTestGateway({ target: { pg: { host: ${JSON.stringify(target.pg.host)}, port: ${target.pg.port} } }, gateway: ${JSON.stringify({ ...LIMITS, max_unauthenticated_per_source: 100, max_unauthenticated: 200, max_connections: 400, authentication_timeout: "3s" })} });
      process.stdout.write(JSON.stringify({ port: gw.port, httpPort: gw.httpPort, dataDir: gw.dataDir }) + "\\n");
      process.on("SIGTERM", () => gw.stop().then(() => process.exit(0)));
    `;
    child = spawn("sh", ["-c", `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, "--import", "tsx", "--input-type=module", "-e", code], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000); });
    gateway = await new Promise((resolvePromise, reject) => {
      let out = "";
      child!.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
        if (out.includes("\n")) resolvePromise(JSON.parse(out.slice(0, out.indexOf("\n"))));
      });
      child!.once("exit", (code) => reject(new Error(`gateway exited (${code}): ${stderr}`)));
    });
  });

  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    await target?.stop();
  });

  it(`${ATTACK_SOCKETS} stalled handshakes do not take the descriptors: a legitimate client still logs in, the stalled ones are closed`, { timeout: 60_000 }, async () => {
    const hits = (limit: string) => metric(gateway.httpPort, "portcullis_connection_limit_hits_total", { protocol: "postgres", limit });
    const refusedBefore = await hits("max_unauthenticated_per_source");
    const sockets: Socket[] = [];
    let answeredS = 0;
    let refused = 0;
    try {
      // In batches, so the listen backlog is not what refuses them.
      for (let i = 0; i < ATTACK_SOCKETS; i += 100) {
        const batch = await Promise.all(Array.from({ length: 100 }, () => sslRequestFrom(gateway.port, "127.0.0.1").catch(() => undefined)));
        for (const [j, r] of batch.entries()) {
          if (!r) continue;
          sockets.push(r.socket);
          if (r.answer.toString() === "S") {
            answeredS++;
            // Half stall before the ClientHello, half in the middle of it.
            if (j % 2) r.socket.write(PARTIAL_CLIENT_HELLO);
          } else if (r.answer[0] === 0x45) refused++;
        }
      }
      // While they stall, a legitimate agent from another address logs in well within the deadline.
      const issuer = await DevIssuer.open(gateway.dataDir);
      const token = await issuer.issue({ sub: "agent-1", groups: ["agents"], ttlSeconds: 600 });
      const client = clientFrom("127.0.0.2", { host: "127.0.0.1", port: gateway.port, user: "agent", password: token, database: "app" });
      await client.connect();
      assert.deepEqual((await client.query("select 1 as one")).rows, [{ one: 1 }]);
      await client.end();
      assert.ok(answeredS > 0 && refused > 0, `answered S: ${answeredS}, refused: ${refused}`);
      assert.equal(answeredS + refused, ATTACK_SOCKETS, "every attack socket was answered, none just dropped");
      assert.equal(await hits("max_unauthenticated_per_source") - refusedBefore, refused, "every refusal counted");
      // The deadline closes every stalled handshake; the test closes none of them.
      await Promise.all(sockets.map(closed));
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
