/**
 * The audit chain, checkpoints, verification and the journal's write-ahead contract, on a real
 * SQLite store: group commit, durability before resolution, checkpoints, fail closed and recovery.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createServer } from "node:http";
import { FileAnchor, WebhookAnchor, readAnchorFile } from "../../src/audit/anchors.js";
import { canonicalJson } from "../../src/audit/canonical.js";
import { signBody } from "../../src/audit/webhook.js";
import { AuditChain, GENESIS, hashRecord } from "../../src/audit/chain.js";
import { CheckpointSigner, checkpointSignatureValid } from "../../src/audit/signing.js";
import { verifyAudit } from "../../src/audit/verify.js";
import { Journal } from "../../src/core/journal.js";
import { SessionRecorder } from "../../src/recording/recorder.js";
import { ResultCapture } from "../../src/recording/result-capture.js";
import { createLogger } from "../../src/core/logger.js";
import { isPortcullisError } from "../../src/errors.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { JournalBatch, SessionRecord } from "../../src/store/store.js";

let root: string;
let signer: CheckpointSigner;
before(() => {
  root = mkdtempSync(join(tmpdir(), "pc-journal-"));
  signer = CheckpointSigner.open(root);
});
after(() => rmSync(root, { recursive: true, force: true }));

const logger = createLogger("silent");
const tick = () => new Promise((r) => setImmediate(r));

/** A real store whose commits are counted, and which can be made to fail like a full disk. */
class CountingStore extends SqliteStore {
  commits = 0;
  failing = false;
  override commit(batch: JournalBatch): void {
    if (this.failing) throw new Error("store: commit journal failed: database or disk is full");
    this.commits++;
    super.commit(batch);
  }
}

function session(id: string): SessionRecord {
  return { id, protocol: "postgres", connection: "app", sub: "a", groups: [], iss: "dev", clientAddress: "127.0.0.1:1", run: {}, runHints: {}, startedAt: new Date() };
}

describe("canonical JSON", () => {
  it("sorts keys at every level and drops undefined members", () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, "x", null], c: true }, u: undefined }), '{"a":{"c":true,"d":[1,"x",null]},"b":1}');
  });
  it("refuses numbers that have two encodings", () => {
    assert.throws(() => canonicalJson({ x: 1.5 }));
    assert.throws(() => canonicalJson({ x: Number.NaN }));
  });
});

describe("audit chain", () => {
  it("links each record to the one before and hashes every field", () => {
    const rows = new AuditChain().seal([{ type: "decision", data: { a: 1 } }, { type: "decision", session: "s", data: { a: 2 } }], 1000);
    assert.equal(rows[0]!.prev, GENESIS);
    assert.equal(rows[1]!.prev, rows[0]!.hash);
    for (const field of ["seq", "at", "type", "session", "data", "prev"] as const) {
      const r = { ...rows[1]! };
      (r as Record<string, unknown>)[field] = field === "seq" || field === "at" ? 7 : "x";
      assert.notEqual(hashRecord(r), rows[1]!.hash, field);
    }
  });
  it("verifies an empty log", () => {
    const r = verifyAudit({ read: () => [], sources: [] });
    assert.deepEqual(r, { ok: true, records: 0, lastSeq: 0, lastHash: GENESIS, checkpoints: 0 });
  });
});

describe("journal", () => {
  const open = (o: Partial<ConstructorParameters<typeof Journal>[0]> = {}) => {
    const store = new CountingStore(":memory:");
    const journal = new Journal({ store, signer, checkpointEvery: 1000, checkpointIntervalMs: 3_600_000, logger, retryMs: 20, ...o });
    return { store, journal };
  };

  it("commits appends from many sessions in one transaction, and resolves only once they are in the store", async () => {
    const { store, journal } = open();
    const pending = Array.from({ length: 8 }, (_, i) => journal.append({ type: "decision", session: `s${i}`, data: { i } })!);
    assert.equal(store.readAudit(0, 100).length, 0, "nothing is written before the tick ends");
    let seen = -1;
    await Promise.all(pending.map((p) => p.then(() => { seen = store.readAudit(0, 100).length; })));
    assert.equal(seen, 8);
    assert.equal(store.commits, 1);
    journal.close();
  });

  it("writes checkpoints every N records, signed, and verifies", async () => {
    const { store, journal } = open({ checkpointEvery: 4 });
    for (let i = 0; i < 10; i++) await journal.append({ type: "decision", data: { i } });
    await tick();
    journal.close();
    const cps = store.listCheckpoints();
    assert.ok(cps.length >= 3, `${cps.length} checkpoints`);
    for (const cp of cps) assert.ok(checkpointSignatureValid(cp, signer.publicKey));
    assert.equal(cps.at(-1)!.seq, store.lastAudit()!.seq, "close checkpoints the head");
    const r = verifyAudit({ read: (a, l) => store.readAudit(a, l), sources: [{ origin: "store", checkpoints: cps }], publicKey: signer.publicKey });
    assert.equal(r.ok, true);
  });

  it("fails closed while the store cannot be written, then recovers and records the outage", async () => {
    const changes: boolean[] = [];
    const { store, journal } = open({ onAvailability: (ok) => changes.push(ok) });
    journal.openSession(session("s1"), { type: "session_open", session: "s1", data: {} });
    await journal.append({ type: "decision", data: { n: 1 } });
    store.failing = true;
    await assert.rejects(journal.append({ type: "decision", data: { n: 2 } })!, (e) => isPortcullisError(e, "E_AUDIT_UNAVAILABLE"));
    assert.equal(journal.isAvailable, false);
    // Refused at once, without waiting for a commit.
    await assert.rejects(journal.append({ type: "decision", data: { n: 3 } })!, (e) => isPortcullisError(e, "E_AUDIT_UNAVAILABLE"));
    await assert.rejects(journal.openSession(session("s2"), { type: "session_open", session: "s2", data: {} })!);
    journal.endSession({ id: "s1", endedAt: new Date(), reason: "client_closed" }, { type: "session_close", session: "s1", data: {} });
    store.failing = false;
    for (let i = 0; i < 200 && !journal.isAvailable; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(journal.isAvailable, true);
    assert.deepEqual(changes, [false, true]);
    await journal.append({ type: "decision", data: { n: 4 } });
    const rows = store.readAudit(0, 100);
    assert.deepEqual(rows.map((r) => r.type), ["session_open", "decision", "audit_unavailable", "decision"]);
    assert.equal((JSON.parse(rows[2]!.data) as { refused_operations: number }).refused_operations, 2);
    assert.equal(store.getSession("s1")?.endReason, "client_closed", "an end owed during the outage is written");
    assert.equal(store.getSession("s2"), undefined);
    assert.equal(verifyAudit({ read: (a, l) => store.readAudit(a, l), sources: [] }).ok, true);
    journal.close();
  });

  it("continues the chain of an existing store", async () => {
    const file = join(root, "continue.db");
    const first = new Journal({ store: new SqliteStore(file), signer, checkpointEvery: 1000, checkpointIntervalMs: 3_600_000, logger });
    await first.append({ type: "decision", data: { n: 1 } });
    first.close();
    const store = new SqliteStore(file);
    const second = new Journal({ store, signer, checkpointEvery: 1000, checkpointIntervalMs: 3_600_000, logger });
    await second.append({ type: "decision", data: { n: 2 } });
    second.close();
    const r = verifyAudit({ read: (a, l) => store.readAudit(a, l), sources: [{ origin: "store", checkpoints: store.listCheckpoints() }], publicKey: signer.publicKey });
    assert.equal(r.ok && r.records, 2);
    store.close();
  });
});

describe("store: recordings and sessions", () => {
  it("prunes recordings of sessions ended before the retention, keeping audit and session rows", () => {
    const store = new SqliteStore(":memory:");
    const old = { ...session("old"), startedAt: new Date(Date.now() - 10 * 86_400_000) };
    const live = session("live");
    store.commit({ sessionsOpened: [old, live], audit: new AuditChain().seal([{ type: "session_open", session: "old", data: {} }]), chunks: [
      { session: "old", chunk: 0, at: 1, events: "{}" }, { session: "live", chunk: 0, at: 1, events: "{}" },
    ], sessionsEnded: [{ id: "old", endedAt: new Date(Date.now() - 9 * 86_400_000), reason: "client_closed" }], checkpoints: [] });
    assert.equal(store.pruneRecordings(new Date(Date.now() - 86_400_000)), 1);
    assert.equal(store.readRecording("old").length, 0);
    assert.equal(store.readRecording("live").length, 1);
    assert.ok(store.getSession("old"));
    assert.equal(store.readAudit(0, 10).length, 1);
  });

  it("marks sessions left open as ended abnormally, and filters by run id and outcome", () => {
    const store = new SqliteStore(":memory:");
    store.commit({ sessionsOpened: [{ ...session("a"), run: { run_id: "r1" } }, { ...session("b"), runHints: { run_id: "r2" } }, session("c")], audit: [], chunks: [], sessionsEnded: [{ id: "c", endedAt: new Date(), reason: "client_closed" }], checkpoints: [] });
    assert.deepEqual(store.endAbandonedSessions(new Date(), "abnormal: crash").sort(), ["a", "b"]);
    assert.deepEqual(store.listSessions({ endReason: "abnormal" }).map((s) => s.id).sort(), ["a", "b"]);
    assert.deepEqual(store.listSessions({ runId: "r1" }).map((s) => s.id), ["a"]);
    assert.deepEqual(store.listSessions({ runId: "r2" }).map((s) => s.id), ["b"], "client hints are searchable too");
    assert.deepEqual(store.listSessions({ endReason: "client" }).map((s) => s.id), ["c"]);
  });

  it("refuses to open a store that does not exist when asked to", () => {
    assert.throws(() => new SqliteStore(join(root, "nope", "x.db"), { mustExist: true }), /no store at/);
  });
});

describe("recording caps", () => {
  const row = (n: number) => Buffer.alloc(n, 0x61);

  it("keeps rows up to the per-operation cap, then counts and hashes the rest", () => {
    const rec = new SessionRecorder("s", Date.now(), { maxResultBytes: 250, maxSessionBytes: 10_000 }, () => {});
    const capture = new ResultCapture(rec);
    for (let i = 0; i < 10; i++) capture.add(row(100), () => [String(i)]);
    const ev = capture.finish({ tag: "SELECT 10" });
    assert.deepEqual(ev.rows, [["0"], ["1"]]);
    assert.equal(ev.row_count, 10);
    assert.equal(ev.bytes, 1000);
    assert.equal(ev.truncated, true);
    assert.match(ev.sha256!, /^[0-9a-f]{64}$/);
  });

  it("stops keeping rows once the session's cap is spent, across operations", () => {
    const rec = new SessionRecorder("s", Date.now(), { maxResultBytes: 10_000, maxSessionBytes: 300 }, () => {});
    const first = new ResultCapture(rec);
    for (let i = 0; i < 2; i++) first.add(row(100), () => ["x"]);
    assert.equal(first.finish({}).truncated, undefined);
    const second = new ResultCapture(rec);
    for (let i = 0; i < 3; i++) second.add(row(100), () => ["y"]);
    const ev = second.finish({});
    assert.equal(ev.rows.length, 1);
    assert.equal(ev.row_count, 3);
    assert.equal(ev.truncated, true);
  });

  it("hashes the same rows to the same value, kept or not", () => {
    const rec = new SessionRecorder("s", Date.now(), { maxResultBytes: 0, maxSessionBytes: 0 }, () => {});
    const a = new ResultCapture(rec);
    const b = new ResultCapture(new SessionRecorder("t", Date.now(), { maxResultBytes: 1e6, maxSessionBytes: 1e6 }, () => {}));
    for (const c of [a, b]) for (let i = 0; i < 3; i++) c.add(row(10 + i), () => ["z"]);
    assert.equal(a.finish({}).sha256, b.finish({}).sha256);
  });
});

describe("anchors", () => {
  it("a webhook anchor posts each checkpoint, HMAC-signed, and retries until accepted", async () => {
    const received: { body: string; ts: string; sig: string }[] = [];
    let failures = 2;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => { body += c.toString(); });
      req.on("end", () => {
        if (failures-- > 0) { res.writeHead(503).end(); return; }
        received.push({ body, ts: String(req.headers["x-portcullis-timestamp"]), sig: String(req.headers["x-portcullis-signature"]) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const anchor = new WebhookAnchor({ url: `http://127.0.0.1:${port}/anchor`, secret: "anchor-secret" });
      const cp = signer.sign(42, "a".repeat(64));
      await anchor.write(cp);
      assert.equal(received.length, 1);
      assert.equal(received[0]!.sig, signBody("anchor-secret", received[0]!.ts, received[0]!.body));
      const got = (JSON.parse(received[0]!.body) as { checkpoint: { seq: number; hash: string; key_id: string; signature: string } }).checkpoint;
      assert.deepEqual([got.seq, got.hash, got.key_id, got.signature], [42, cp.hash, cp.keyId, cp.signature]);
    } finally {
      server.close();
    }
  });

  it("a file anchor appends checkpoints that read back and verify", async () => {
    const file = join(root, "anchors", "a.jsonl");
    const anchor = new FileAnchor(file);
    await Promise.all([anchor.write(signer.sign(1, "b".repeat(64))), anchor.write(signer.sign(2, "c".repeat(64)))]);
    const cps = readAnchorFile(file);
    assert.deepEqual(cps.map((c) => c.seq), [1, 2]);
    for (const cp of cps) assert.ok(checkpointSignatureValid(cp, signer.publicKey));
  });
});
