import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createServer as createTlsServer } from "node:tls";
import { generate } from "selfsigned";
import { AuditChain, exportRecord, type ExportedRecord } from "../../src/audit/chain.js";
import { createSink, FileSink, SinkRunner, SyslogSink, WebhookSink, type AuditSink } from "../../src/audit/sinks/index.js";
import { escapeSdValue, octetCounted } from "../../src/audit/sinks/syslog.js";
import { backoff, postSigned, signBody } from "../../src/audit/webhook.js";
import { createLogger } from "../../src/core/logger.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { AuditRow } from "../../src/store/store.js";

// ---- helpers ---------------------------------------------------------------------------------

/** A store with its chain head, so records can be committed in steps. */
class Audit {
  readonly store = new SqliteStore(":memory:");
  readonly rows: AuditRow[] = [];
  private readonly chain = new AuditChain();

  commit(n: number, data: (i: number) => Record<string, unknown> = (i) => ({ n: i, verdict: "allow" })): AuditRow[] {
    const start = this.rows.length;
    const rows = this.chain.seal(Array.from({ length: n }, (_, i) => ({ type: "decision" as const, data: data(start + i) })));
    this.store.commit({ sessionsOpened: [], audit: rows, chunks: [], sessionsEnded: [], checkpoints: [] });
    this.chain.advance(rows);
    this.rows.push(...rows);
    return rows;
  }

  exported(): ExportedRecord[] {
    return this.rows.map(exportRecord);
  }
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function listen(server: HttpServer | NetServer, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : 0);
    });
  });
}

function closeServer(server: HttpServer | NetServer): Promise<void> {
  if ("closeAllConnections" in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

interface Receiver {
  server: HttpServer;
  /** Records of the requests answered 2xx, in arrival order. */
  accepted: ExportedRecord[];
  statuses: number[];
  badSignatures: number;
  headers: IncomingMessage["headers"][];
}

/** A webhook receiver that answers `script` statuses first, then 200; checks signatures if `secret`. */
function webhookReceiver(secret: string | undefined, script: number[] = []): Receiver {
  const rec: Receiver = { server: undefined as unknown as HttpServer, accepted: [], statuses: [], badSignatures: 0, headers: [] };
  rec.server = createHttpServer((req, res) => {
    void readBody(req).then((body) => {
      rec.headers.push(req.headers);
      if (secret !== undefined) {
        const ts = String(req.headers["x-portcullis-timestamp"]);
        const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
        if (!fresh || req.headers["x-portcullis-signature"] !== signBody(secret, ts, body)) {
          rec.badSignatures++;
          rec.statuses.push(401);
          res.writeHead(401).end();
          return;
        }
      }
      const status = script.shift() ?? 200;
      rec.statuses.push(status);
      if (status === 200) rec.accepted.push(...(JSON.parse(body) as { records: ExportedRecord[] }).records);
      res.writeHead(status, { "content-type": "application/json" }).end("{}");
    });
  });
  return rec;
}

/** Keeps the first delivery of each seq: what a receiver that de-duplicates ends up with. */
function dedupe(records: ExportedRecord[]): ExportedRecord[] {
  const seen = new Map<number, ExportedRecord>();
  for (const r of records) if (!seen.has(r.seq)) seen.set(r.seq, r);
  return [...seen.values()];
}

const fastRetry = { retryBaseMs: 10, retryMaxMs: 50 };

interface SyslogFrame {
  pri: number;
  version: string;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sd: string;
  msg: string;
}

const FRAME = /^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) (\[(?:[^\]\\]|\\.)*\]) (.*)$/s;

/** Splits an octet-counted stream (RFC 6587) into messages; `rest` is an incomplete tail. */
function parseFrames(buf: Buffer): { frames: SyslogFrame[]; rest: Buffer } {
  const frames: SyslogFrame[] = [];
  let at = 0;
  for (;;) {
    const sp = buf.indexOf(0x20, at);
    if (sp < 0) break;
    const lenText = buf.subarray(at, sp).toString("ascii");
    assert.match(lenText, /^[1-9]\d*$/, "frame starts with MSG-LEN");
    const len = Number(lenText);
    if (buf.length < sp + 1 + len) break;
    const text = buf.subarray(sp + 1, sp + 1 + len).toString("utf8");
    const m = FRAME.exec(text);
    assert.ok(m, `RFC 5424 message: ${text}`);
    const [, pri, version, timestamp, hostname, appName, procId, msgId, sd, msg] = m as unknown as string[];
    frames.push({ pri: Number(pri), version: version!, timestamp: timestamp!, hostname: hostname!, appName: appName!, procId: procId!, msgId: msgId!, sd: sd!, msg: msg! });
    at = sp + 1 + len;
  }
  return { frames, rest: buf.subarray(at) };
}

interface SyslogCollector {
  frames: SyslogFrame[];
  sockets: Socket[];
  connections: number;
}

function collect(socket: Socket, into: SyslogCollector): void {
  into.connections++;
  into.sockets.push(socket);
  let pending = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    const { frames, rest } = parseFrames(Buffer.concat([pending, chunk]));
    into.frames.push(...frames);
    pending = Buffer.from(rest);
  });
  socket.on("error", () => undefined);
}

function checkFrames(frames: SyslogFrame[], expected: ExportedRecord[], pri: number, appName: string): void {
  assert.equal(frames.length, expected.length);
  frames.forEach((f, i) => {
    const r = expected[i]!;
    assert.equal(f.pri, pri);
    assert.equal(f.version, "1");
    assert.equal(f.timestamp, r.at);
    assert.equal(f.appName, appName);
    assert.equal(f.procId, String(process.pid));
    assert.equal(f.msgId, r.type);
    assert.equal(f.sd, `[portcullis@32473 seq="${r.seq}" hash="${r.hash}"]`);
    assert.match(f.msg, /^[\x20-\x7e]*$/, "MSG is printable ASCII");
    assert.deepEqual(JSON.parse(f.msg), r);
  });
}

/** Data with the characters that break naive framing or SD escaping. */
const awkward = (i: number): Record<string, unknown> => ({ n: i, sql: `select "a]\\b" -- ü ✓ 𝄞\nnext line`, verdict: "deny" });

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "portcullis-sinks-"));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

// ---- webhook helper ----------------------------------------------------------------------------

describe("postSigned", () => {
  test("signs timestamp.body with HMAC-SHA256 and sends JSON headers", async () => {
    const rx = webhookReceiver("k3y");
    const port = await listen(rx.server);
    try {
      await postSigned({ url: `http://127.0.0.1:${port}/hook`, secret: "k3y", body: JSON.stringify({ records: [] }), headers: { "Content-Type": "text/plain", "x-extra": "1" } });
      // Unsigned: the verifying receiver refuses it, and the 401 surfaces as a rejection.
      await assert.rejects(postSigned({ url: `http://127.0.0.1:${port}/hook`, body: JSON.stringify({ records: [] }) }), /HTTP 401/);
      assert.equal(rx.badSignatures, 1);
      assert.deepEqual(rx.statuses, [200, 401]);
      const [signed, unsigned] = rx.headers;
      assert.equal(signed!["content-type"], "application/json");
      assert.equal(signed!["x-extra"], "1");
      assert.match(String(signed!["x-portcullis-signature"]), /^sha256=[0-9a-f]{64}$/);
      assert.match(String(unsigned!["x-portcullis-timestamp"]), /^\d+$/);
      assert.equal(unsigned!["x-portcullis-signature"], undefined);
    } finally {
      await closeServer(rx.server);
    }
  });

  test("signBody matches a known HMAC-SHA256", () => {
    // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
    assert.equal(signBody("secret", "1700000000", '{"a":1}'), "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686");
    assert.notEqual(signBody("secret", "1700000000", '{"a":1}'), signBody("secret", "1700000001", '{"a":1}'));
    assert.notEqual(signBody("secret", "1700000000", '{"a":1}'), signBody("secreT", "1700000000", '{"a":1}'));
  });

  test("errors name the origin and status, never the secret, body or URL path", async () => {
    const secret = "s3cr3t-SIGNING-key";
    const body = JSON.stringify({ records: [{ marker: "BODY-MARKER" }] });
    const failing = createHttpServer((req, res) => {
      if (req.url?.startsWith("/slow")) return; // never answers
      res.writeHead(500).end(`echo ${secret} ${body}`);
    });
    const port = await listen(failing);
    const dead = await freePort();
    const leaks = (msg: string): boolean => [secret, "BODY-MARKER", "tok3n", "/hook"].some((s) => msg.includes(s));
    try {
      const cases: Array<[string, number | undefined, RegExp]> = [
        [`http://127.0.0.1:${port}/hook?access=tok3n`, undefined, new RegExp(`^POST http://127\\.0\\.0\\.1:${port} failed: HTTP 500$`)],
        [`http://127.0.0.1:${port}/slow/hook?access=tok3n`, 200, /timed out/],
        [`http://127.0.0.1:${dead}/hook?access=tok3n`, undefined, new RegExp(`^POST http://127\\.0\\.0\\.1:${dead} failed: network error`)],
        [`http//not a url/${secret}/hook?access=tok3n`, undefined, /invalid URL/],
      ];
      for (const [url, timeoutMs, expected] of cases) {
        await assert.rejects(postSigned({ url, secret, body, ...(timeoutMs ? { timeoutMs } : {}) }), (err: Error) => {
          assert.match(err.message, expected);
          assert.ok(!leaks(err.message), err.message);
          assert.ok(!leaks(String(err.stack)), "stack");
          return true;
        });
      }
    } finally {
      await closeServer(failing);
    }
  });

  test("backoff is exponential with full jitter, capped", () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      for (let i = 0; i < 20; i++) {
        const ms = backoff(attempt, 100, 5000);
        assert.ok(ms >= 0 && ms <= Math.min(5000, 100 * 2 ** attempt), `attempt ${attempt}: ${ms}`);
        assert.ok(Number.isInteger(ms));
      }
    }
    assert.ok(backoff(1000) <= 30_000);
  });
});

// ---- webhook sink ------------------------------------------------------------------------------

describe("webhook sink", () => {
  test("retries after 500s: all records arrive in order, signed, cursor at the last seq", async () => {
    const secret = "whsec-test";
    const rx = webhookReceiver(secret, [500, 500]);
    const port = await listen(rx.server);
    const audit = new Audit();
    audit.commit(7);
    const sink = new WebhookSink("siem", { url: `http://127.0.0.1:${port}/audit`, secret });
    const lags: number[] = [];
    // A long idle period: only notify() can make the runner pick up the second commit in time.
    const runner = new SinkRunner(audit.store, sink, { batch: 3, idleMs: 60_000, onLag: (l) => lags.push(l), ...fastRetry });
    try {
      runner.start();
      await waitFor(() => dedupe(rx.accepted).length === 7, "first 7 records");
      audit.commit(3);
      runner.notify();
      await waitFor(() => dedupe(rx.accepted).length === 10, "records after notify()");
      await waitFor(() => audit.store.sinkCursor("siem") === 10, "cursor at 10");
      assert.equal(rx.badSignatures, 0);
      assert.deepEqual(rx.statuses.slice(0, 3), [500, 500, 200]);
      // First arrivals, in arrival order, are exactly the committed records in seq order.
      assert.deepEqual(dedupe(rx.accepted), audit.exported());
      assert.equal(lags.at(-1), 0);
    } finally {
      await runner.stop();
      await closeServer(rx.server);
    }
  });

  test("a dead endpoint does not block; lag shows, then it catches up when the receiver appears", async () => {
    const port = await freePort();
    const audit = new Audit();
    audit.commit(4);
    const lags: number[] = [];
    const runner = new SinkRunner(audit.store, new WebhookSink("late", { url: `http://127.0.0.1:${port}/`, secret: "x" }), {
      batch: 2, idleMs: 50, onLag: (l) => lags.push(l), retryBaseMs: 20, retryMaxMs: 100,
    });
    const rx = webhookReceiver("x");
    try {
      runner.start();
      // Commits and notify() go on while the sink is down: neither waits for it.
      for (let i = 0; i < 3; i++) {
        audit.commit(2);
        runner.notify();
      }
      await waitFor(() => lags.filter((l) => l > 0).length >= 3, "lag reported while failing");
      assert.ok(lags.every((l) => l > 0));
      assert.equal(audit.store.sinkCursor("late"), 0);
      await listen(rx.server, port);
      await waitFor(() => lags.at(-1) === 0, "lag back to 0");
      assert.deepEqual(dedupe(rx.accepted), audit.exported());
      assert.equal(audit.store.sinkCursor("late"), 10);
    } finally {
      await runner.stop();
      if (rx.server.listening) await closeServer(rx.server);
    }
  });
});

// ---- file sink --------------------------------------------------------------------------------

describe("file sink", () => {
  test("writes JSON lines equal to the exported records, owner-only, creating directories", async () => {
    const path = join(tmp, "nested", "dir", "audit.jsonl");
    const audit = new Audit();
    audit.commit(5, awkward);
    const runner = new SinkRunner(audit.store, new FileSink("file-0", path), { batch: 2, idleMs: 20 });
    try {
      runner.start();
      await waitFor(() => audit.store.sinkCursor("file-0") === 5, "cursor at 5");
      audit.commit(1, awkward);
      runner.notify();
      await waitFor(() => audit.store.sinkCursor("file-0") === 6, "cursor at 6");
    } finally {
      await runner.stop();
    }
    const lines = readFileSync(path, "utf8").split("\n");
    assert.equal(lines.pop(), "", "ends with a newline");
    assert.deepEqual(lines.map((l) => JSON.parse(l) as unknown), audit.exported());
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });
});

// ---- syslog sink ------------------------------------------------------------------------------

describe("syslog sink", () => {
  test("escapes SD-PARAM values and counts octets, not characters", () => {
    assert.equal(escapeSdValue('a"b\\c]d[e'), 'a\\"b\\\\c\\]d[e');
    assert.equal(octetCounted("ü"), "2 ü");
  });

  test("RFC 5424 over TCP with octet counting; reconnects after the collector hangs up", async () => {
    const got: SyslogCollector = { frames: [], sockets: [], connections: 0 };
    const server = createNetServer((s) => collect(s, got));
    const port = await listen(server);
    const audit = new Audit();
    audit.commit(4, awkward);
    const sink = createSink({ syslog: { host: "127.0.0.1", port } }, 2) as SyslogSink;
    assert.equal(sink.name, "syslog-2");
    const runner = new SinkRunner(audit.store, sink, { batch: 3, idleMs: 60_000, ...fastRetry });
    try {
      runner.start();
      await waitFor(() => got.frames.length === 4, "4 frames");
      assert.equal(audit.store.sinkCursor("syslog-2"), 4);
      for (const s of got.sockets) s.end();
      await waitFor(() => !sink.connected, "client sees the hang-up");
      audit.commit(2, awkward);
      runner.notify();
      await waitFor(() => got.frames.length === 6, "6 frames");
      assert.equal(got.connections, 2);
      checkFrames(got.frames, audit.exported(), 10 * 8 + 6, "portcullis");
    } finally {
      await runner.stop();
      await closeServer(server);
    }
  });

  test("a collector that stops reading fails the delivery instead of holding it", async () => {
    const held: Socket[] = [];
    const server = createNetServer((s) => {
      held.push(s);
      s.pause();
    });
    const port = await listen(server);
    const sink = new SyslogSink("stuck", { host: "127.0.0.1", port }, { writeTimeoutMs: 200 });
    // Far more than loopback socket buffers hold, so the write cannot complete.
    const big = { ...exportRecord(new AuditChain().seal([{ type: "decision", data: { blob: "x".repeat(1 << 20) } }])[0]!) };
    try {
      await assert.rejects(sink.deliver(Array.from({ length: 48 }, () => big)), /write timed out|closed during write/);
      assert.equal(sink.connected, false);
    } finally {
      await sink.close();
      // A paused socket would never see the client's close, and server.close() waits for it.
      for (const s of held) s.destroy();
      await closeServer(server);
    }
  });

  test("RFC 5425 over TLS, verifying the collector against the configured CA", async () => {
    const pems = await generate([{ name: "commonName", value: "collector" }], {
      keyType: "ec", curve: "P-256", algorithm: "sha256",
      extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
    });
    const got: SyslogCollector = { frames: [], sockets: [], connections: 0 };
    const server = createTlsServer({ key: pems.private, cert: pems.cert }, (s) => collect(s, got));
    server.on("tlsClientError", () => undefined);
    const port = await listen(server);
    const audit = new Audit();
    audit.commit(3, awkward);
    const sink = new SyslogSink("siem-tls", { host: "127.0.0.1", port, tls: true, ca: pems.cert, facility: 4, app_name: "gw one" });
    const untrusting = new SyslogSink("no-ca", { host: "127.0.0.1", port, tls: true });
    try {
      await sink.deliver(audit.exported().slice(0, 2));
      await sink.deliver(audit.exported().slice(2));
      await waitFor(() => got.frames.length === 3, "3 frames");
      assert.equal(got.connections, 1, "one connection kept");
      checkFrames(got.frames, audit.exported(), 4 * 8 + 6, "gw_one");
      await assert.rejects(untrusting.deliver(audit.exported()), /syslog tls:\/\/127\.0\.0\.1:\d+: .*(self[- ]signed|certificate)/i);
      assert.equal(got.frames.length, 3, "nothing sent to an unverified collector");
    } finally {
      await sink.close();
      await untrusting.close();
      await closeServer(server);
    }
  });
});

// ---- runner -----------------------------------------------------------------------------------

/** A sink whose behaviour the test scripts. */
class FakeSink implements AuditSink {
  readonly delivered: ExportedRecord[][] = [];
  attempts = 0;
  closed = false;
  constructor(readonly name: string, private readonly behave: (attempt: number) => Promise<void>) {}
  async deliver(records: ExportedRecord[]): Promise<void> {
    await this.behave(this.attempts++);
    this.delivered.push(records);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

describe("SinkRunner", () => {
  test("stop() ends the loop during a long backoff and during a hung delivery, and closes the sink", async () => {
    const audit = new Audit();
    audit.commit(2);
    const failing = new FakeSink("down", () => Promise.reject(new Error("down")));
    const r1 = new SinkRunner(audit.store, failing, { retryBaseMs: 3_600_000, retryMaxMs: 3_600_000 });
    r1.start();
    await waitFor(() => failing.attempts >= 1, "first attempt");
    await r1.stop();
    assert.ok(failing.closed);

    const hung = new FakeSink("hung", () => new Promise<void>(() => undefined));
    const r2 = new SinkRunner(audit.store, hung);
    r2.start();
    await waitFor(() => hung.attempts === 1, "delivery in flight");
    await r2.stop();
    assert.ok(hung.closed);
    assert.equal(audit.store.sinkCursor("hung"), 0, "an abandoned batch is not counted as delivered");
  });

  test("store read errors are logged and retried, not thrown", async () => {
    const audit = new Audit();
    audit.commit(3);
    let reads = 0;
    const flaky = {
      readAudit: (after: number, limit: number) => {
        if (++reads <= 2) throw new Error("database is locked");
        return audit.store.readAudit(after, limit);
      },
      sinkCursor: (n: string) => audit.store.sinkCursor(n),
      setSinkCursor: (n: string, s: number) => audit.store.setSinkCursor(n, s),
      lastAudit: () => audit.store.lastAudit(),
    };
    const logs: string[] = [];
    const logger = createLogger("debug", { write: (line: string) => void logs.push(line) });
    const sink = new FakeSink("ok", () => Promise.resolve());
    const runner = new SinkRunner(flaky, sink, { logger, idleMs: 20, ...fastRetry });
    try {
      runner.start();
      await waitFor(() => audit.store.sinkCursor("ok") === 3, "delivered after read errors");
    } finally {
      await runner.stop();
    }
    assert.deepEqual(sink.delivered.flat().map((r) => r.seq), [1, 2, 3]);
    assert.equal(logs.filter((l) => l.includes("cannot read the store") && l.includes("database is locked")).length, 2);
  });

  test("resumes from the persisted cursor", async () => {
    const audit = new Audit();
    audit.commit(5);
    audit.store.setSinkCursor("resume", 3);
    const sink = new FakeSink("resume", () => Promise.resolve());
    const runner = new SinkRunner(audit.store, sink, { idleMs: 20 });
    try {
      runner.start();
      await waitFor(() => audit.store.sinkCursor("resume") === 5, "cursor at 5");
    } finally {
      await runner.stop();
    }
    assert.deepEqual(sink.delivered.flat().map((r) => r.seq), [4, 5]);
  });
});

describe("createSink", () => {
  test("names unnamed sinks by kind and position", () => {
    assert.equal(createSink({ file: { path: join(tmp, "x.jsonl") } }, 0).name, "file-0");
    assert.equal(createSink({ webhook: { url: "https://example.com/hook" } }, 1).name, "webhook-1");
    assert.equal(createSink({ name: "siem", syslog: { host: "127.0.0.1", port: 6514, tls: true } }, 2).name, "siem");
    assert.throws(() => createSink({ syslog: { host: "h", port: 1, facility: 24 } }, 0), RangeError);
  });
});
