/**
 * Recording, replay and the audit log end to end: a real PostgreSQL behind a real gateway, a
 * pg client doing allowed, denied, extended-protocol and failing work; then the `portcullis` binary
 * reads the store the gateway wrote: replay in every format, sessions list, audit verify, and
 * verify again after each kind of tampering with the SQLite file itself.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import postgres from "postgres";
import { loadRecording } from "../../src/recording/replay.js";
import { hashRecord } from "../../src/audit/chain.js";
import { connectDirect, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { cli } from "../support/cli.js";

const EMAILS = ["ada.lovelace@example.com", "grace.hopper@example.org", "edsger.dijkstra@example.net"];

describe("recording, replay and audit", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let anchorDir: string;
  let anchorFile: string;
  let sessionId: string;
  let configFile: string;

  before(async () => {
    target = await startTarget();
    const direct = await connectDirect(target);
    await direct.query("create table customers (id int primary key, email text, city text)");
    for (const [i, e] of EMAILS.entries()) await direct.query("insert into customers values ($1, $2, $3)", [i + 1, e, `city-${i + 1}`]);
    await direct.end();
    anchorDir = mkdtempSync(join(tmpdir(), "pc-anchor-"));
    anchorFile = join(anchorDir, "anchors.jsonl");
    gw = await startTestGateway({
      target,
      overrides: {
        rules: [{ name: "no-ddl", when: { sql: { statements: ["ddl"] } }, action: "deny" }],
        masking: [{ columns: ["customers.email"], strategy: "redact" }],
        audit: { checkpoint_every: 5, anchors: { file: anchorFile }, sinks: [{ name: "siem", file: { path: join(anchorDir, "siem.jsonl") } }] },
      },
    });
    const token = await gw.token("analyst-7", ["agents"], 600, { run_id: "run-42" });
    const client = new pg.Client(gw.clientConfig(token));
    await client.connect();
    await client.query("select id, email, city from customers order by id");
    await assert.rejects(client.query("drop table customers"), (e: { code?: string }) => e.code === "42501");
    await client.query({ text: "select email from customers where id = $1", values: [2] });
    await assert.rejects(client.query("select 1/0"), (e: { code?: string }) => e.code === "22012");
    for (let i = 0; i < 8; i++) await client.query("select $1::int as n", [i]);
    await client.end();
    sessionId = (await waitFor(() => gw.gw.store.listSessions({ sub: "analyst-7", live: false })[0]?.id))!;
    configFile = join(anchorDir, "portcullis.yaml");
    writeFileSync(configFile, `gateway:\n  data_dir: ${gw.dataDir}\nidentity:\n  dev_issuer: true\naudit:\n  anchors: { file: ${anchorFile} }\n`);
  });

  after(async () => {
    await gw?.stop();
    await target?.stop();
    rmSync(anchorDir, { recursive: true, force: true });
  });

  it("replays the session's operations, decisions and masked results in order (jsonl)", async () => {
    const r = await cli(["replay", sessionId, "-c", configFile, "--format", "jsonl"]);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(events[0]!.e, "start");
    assert.equal(events[0]!.sub, "analyst-7");
    assert.deepEqual(events[0]!.run, { run_id: "run-42" });
    const ops = events.filter((e) => e.e === "op");
    assert.equal(ops.length, 12);
    assert.deepEqual(ops.slice(0, 4).map((o) => [o.op, o.action, o.rule ?? null]), [[1, "allow", null], [2, "deny", "no-ddl"], [3, "allow", null], [4, "allow", null]]);
    assert.equal(ops[0]!.statement, "select id, email, city from customers order by id");
    assert.equal(ops[2]!.statement, "select email from customers where id = $1");
    const results = events.filter((e) => e.e === "result");
    const first = results.find((r) => r.op === 1)!;
    assert.deepEqual(first.columns, ["id", "email", "city"]);
    assert.deepEqual(first.rows, [["1", "[REDACTED:customers.email]", "city-1"], ["2", "[REDACTED:customers.email]", "city-2"], ["3", "[REDACTED:customers.email]", "city-3"]]);
    assert.equal(first.row_count, 3);
    assert.equal(first.tag, "SELECT 3");
    assert.match(String(first.sha256), /^[0-9a-f]{64}$/);
    assert.deepEqual((results.find((r) => r.op === 2)!.error as { code: string }).code, "42501");
    assert.deepEqual(results.find((r) => r.op === 3)!.rows, [["[REDACTED:customers.email]"]]);
    assert.equal((results.find((r) => r.op === 4)!.error as { code: string }).code, "22012");
    assert.deepEqual(results.filter((r) => typeof r.op === "number" && r.op > 4).map((r) => r.rows), [0, 1, 2, 3, 4, 5, 6, 7].map((n) => [[String(n)]]));
    // Every result follows its operation; times never go backwards.
    const times = events.map((e) => e.t as number);
    assert.deepEqual(times, [...times].sort((a, b) => a - b));
    for (const res of results) {
      const opAt = events.findIndex((e) => e.e === "op" && e.op === res.op);
      assert.ok(opAt >= 0 && opAt < events.indexOf(res));
    }
    const end = events.at(-1)!;
    assert.equal(end.e, "end");
    assert.equal(end.reason, "client_closed");
    assert.deepEqual(end.stats, { operations: 12, denied: 1, rows: 12, bytes: (end.stats as { bytes: number }).bytes });
  });

  it("pairs pipelined results with their operations, also around an error", async () => {
    const token = await gw.token("pipeliner", ["agents"]);
    const sql = postgres({ ...gw.clientConfig(token), username: "agent", max: 1, onnotice: () => {} });
    const [a, b, c] = await Promise.allSettled([
      sql`select id from customers where id = ${1}`,
      sql`select 1/${0}::int as boom`,
      sql`select city from customers where id = ${3}`,
    ]);
    await sql.end();
    assert.equal(a.status, "fulfilled");
    assert.equal(b.status, "rejected");
    assert.equal(c.status, "fulfilled");
    const id = await waitFor(() => gw.gw.store.listSessions({ sub: "pipeliner", live: false })[0]?.id);
    gw.gw.journal.flush();
    const events = loadRecording(gw.gw.store, id);
    const ops = new Map(events.flatMap((e) => (e.e === "op" ? [[e.op, e.statement]] : [])));
    const results = events.flatMap((e) => (e.e === "result" ? [e] : []));
    const byStatement = (text: string) => results.filter((r) => ops.get(r.op!)?.includes(text));
    assert.deepEqual(byStatement("select id from customers").map((r) => r.rows), [[["1"]]]);
    assert.deepEqual(byStatement("as boom").map((r) => r.error?.code), ["22012"]);
    assert.deepEqual(byStatement("select city from customers").map((r) => r.rows), [[["city-3"]]]);
  });

  it("no unmasked value reaches the store file", async () => {
    await gw.gw.journal.flush();
    const bytes = readFileSync(join(gw.dataDir, "portcullis.db")).toString("latin1") + readFileSync(join(gw.dataDir, "portcullis.db-wal")).toString("latin1");
    for (const e of EMAILS) assert.ok(!bytes.includes(e), `${e} found in the store`);
    assert.ok(bytes.includes("[REDACTED:customers.email]"), "the masked form is what is stored");
  });

  it("renders a terminal transcript and valid asciicast v2", async () => {
    const text = await cli(["replay", sessionId, "-c", configFile, "--instant"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /analyst-7@app #1> select id, email, city from customers order by id/);
    assert.match(text.stdout, /#2 \[DENY by rule no-ddl\]> drop table customers/);
    assert.match(text.stdout, /\[REDACTED:customers\.email\]/);
    assert.match(text.stdout, /ended .* client_closed · 12 operations, 1 denied, 12 rows/);

    const cast = await cli(["replay", sessionId, "-c", configFile, "--format", "asciicast"]);
    assert.equal(cast.code, 0, cast.stderr);
    const [headerLine, ...lines] = cast.stdout.trim().split("\n");
    const header = JSON.parse(headerLine!) as Record<string, unknown>;
    assert.equal(header.version, 2);
    assert.ok(Number.isInteger(header.width) && (header.width as number) > 0);
    assert.ok(Number.isInteger(header.height) && (header.height as number) > 0);
    assert.ok(Number.isInteger(header.timestamp));
    let last = 0;
    for (const l of lines) {
      const ev = JSON.parse(l) as unknown[];
      assert.equal(ev.length, 3);
      assert.equal(typeof ev[0], "number");
      assert.ok((ev[0] as number) >= last, "event times are non-decreasing");
      last = ev[0] as number;
      assert.equal(ev[1], "o");
      assert.equal(typeof ev[2], "string");
      assert.ok(!/(?<!\r)\n/.test(ev[2] as string), "terminal output uses CRLF");
    }
    assert.ok(lines.length > 10);
  });

  it("lists sessions with filters", async () => {
    const byRun = await cli(["sessions", "list", "-c", configFile, "--run-id", "run-42", "--json"]);
    assert.equal(byRun.code, 0, byRun.stderr);
    const found = JSON.parse(byRun.stdout) as { id: string; stats: { operations: number } }[];
    assert.deepEqual(found.map((s) => s.id), [sessionId]);
    assert.equal(found[0]!.stats.operations, 12);
    const none = await cli(["sessions", "list", "-c", configFile, "--subject", "someone-else", "--json"]);
    assert.deepEqual(JSON.parse(none.stdout), []);
    const ok = await cli(["sessions", "list", "-c", configFile, "--outcome", "ok"]);
    assert.match(ok.stdout, new RegExp(sessionId));
    const abnormal = await cli(["sessions", "list", "-c", configFile, "--outcome", "abnormal", "--json"]);
    assert.deepEqual(JSON.parse(abnormal.stdout), []);
    const show = await cli(["sessions", "show", sessionId, "-c", configFile, "--json"]);
    assert.equal(JSON.parse(show.stdout).end_reason, "client_closed");
    const missing = await cli(["sessions", "show", "nope", "-c", configFile]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no session nope/);
  });

  describe("audit verify", () => {
    let pristine: string;

    before(async () => {
      // A consistent copy of the store as the gateway left it (the WAL folded in).
      gw.gw.journal.flush();
      pristine = join(anchorDir, "pristine.db");
      const db = new BetterSqlite3(join(gw.dataDir, "portcullis.db"), { readonly: true });
      await db.backup(pristine);
      db.close();
    });

    /** Verifies a tampered copy of the store with the real CLI. */
    async function verifyCopy(tamper: (db: BetterSqlite3.Database) => void, opts: { anchor?: boolean } = {}) {
      const dir = mkdtempSync(join(anchorDir, "copy-"));
      const file = join(dir, "store.db");
      copyFileSync(pristine, file);
      const db = new BetterSqlite3(file);
      tamper(db);
      db.close();
      const cfg = join(dir, "portcullis.yaml");
      writeFileSync(cfg, `gateway:\n  data_dir: ${gw.dataDir}\nstore: sqlite:${file}\nidentity:\n  dev_issuer: true\n${opts.anchor === false ? "" : `audit:\n  anchors: { file: ${anchorFile} }\n`}`);
      return cli(["audit", "verify", "-c", cfg]);
    }

    const rows = (db: BetterSqlite3.Database) => db.prepare("select * from audit_records order by seq").all() as { seq: number; at: number; type: string; session: string | null; data: string; prev: string; hash: string }[];

    it("an untouched log verifies, with checkpoints in the store and the anchor file", async () => {
      const r = await cli(["audit", "verify", "-c", configFile, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { ok: boolean; records: number; checkpoints: number };
      assert.equal(out.ok, true);
      assert.ok(out.records >= 15, `records: ${out.records}`);
      assert.ok(out.checkpoints >= 4, `checkpoints: ${out.checkpoints}`);
      assert.ok(readFileSync(anchorFile, "utf8").trim().split("\n").length >= 2);
    });

    it("verifies against an exported public key, and refuses checkpoints under another key", async () => {
      const pub = await cli(["audit", "public-key", "-c", configFile]);
      assert.equal(pub.code, 0, pub.stderr);
      assert.match(pub.stdout, /^-----BEGIN PUBLIC KEY-----/);
      const pinned = join(anchorDir, "audit.pub");
      writeFileSync(pinned, pub.stdout);
      assert.equal((await cli(["audit", "verify", "-c", configFile, "--public-key", pinned])).code, 0);
      const other = join(anchorDir, "other.pub");
      writeFileSync(other, generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }));
      const r = await cli(["audit", "verify", "-c", configFile, "--public-key", other]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /invalid signature/);
    });

    it("names an altered record", async () => {
      const r = await verifyCopy((db) => db.prepare("update audit_records set data = replace(data, '\"deny\"', '\"allow\"') where type = 'decision' and data like '%no-ddl%'").run());
      assert.equal(r.code, 1);
      const seq = Number(/record (\d+) does not match its hash/.exec(r.stderr)?.[1]);
      assert.ok(seq > 0, r.stderr);
    });

    it("names a removed record", async () => {
      const r = await verifyCopy((db) => db.prepare("delete from audit_records where seq = 6").run());
      assert.equal(r.code, 1);
      assert.match(r.stderr, /record 6 is missing/);
    });

    it("names reordered records", async () => {
      const r = await verifyCopy((db) => {
        const [a, b] = rows(db).filter((x) => x.seq === 4 || x.seq === 5);
        const put = db.prepare("update audit_records set at = @at, type = @type, session = @session, data = @data, prev = @prev, hash = @hash where seq = @seq");
        put.run({ ...b!, seq: 4 });
        put.run({ ...a!, seq: 5 });
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /record 4 /);
    });

    it("names a record altered with its hash recomputed, by the broken link after it", async () => {
      const r = await verifyCopy((db) => {
        const row = rows(db).find((x) => x.seq === 7)!;
        const data = row.data.replace(/"client":"[^"]*"/, '"client":"10.0.0.1:1"').replace(/"action":"allow"/, '"action":"allow","x":1');
        db.prepare("update audit_records set data = ?, hash = ? where seq = 7").run(data, hashRecord({ ...row, data }));
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /record 8 does not link to record 7/);
    });

    it("catches a consistently rewritten chain through the signed checkpoints", async () => {
      const r = await verifyCopy((db) => {
        const all = rows(db);
        let prev = all[1]!.hash;
        const put = db.prepare("update audit_records set data = @data, prev = @prev, hash = @hash where seq = @seq");
        for (const row of all.slice(2)) {
          const data = row.seq === 3 ? row.data.replace(/^\{/, '{"forged":true,') : row.data;
          const hash = hashRecord({ ...row, data, prev });
          put.run({ ...row, data, prev, hash });
          prev = hash;
        }
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /differs from the checkpoint/);
    });

    it("catches a dropped tail through the anchor file, even with the store's checkpoints dropped too", async () => {
      const r = await verifyCopy((db) => {
        const last = (db.prepare("select max(seq) as m from audit_records").get() as { m: number }).m;
        db.prepare("delete from audit_records where seq > ?").run(last - 8);
        db.prepare("delete from audit_checkpoints where seq > ?").run(last - 8);
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /tail truncated/);
    });

    it("refuses a checkpoint whose signature does not verify", async () => {
      const r = await verifyCopy((db) => db.prepare("update audit_checkpoints set hash = ? where seq = (select min(seq) from audit_checkpoints)").run("f".repeat(64)), { anchor: false });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /invalid signature/);
    });

    it("streams the same records to a configured file sink", async () => {
      const head = gw.gw.store.lastAudit()!.seq;
      const sinkFile = join(anchorDir, "siem.jsonl");
      const lines = await waitFor(() => {
        try {
          const l = readFileSync(sinkFile, "utf8").trim().split("\n").map((x) => JSON.parse(x) as { seq: number; hash: string });
          return l.length > 0 && l.at(-1)!.seq >= head ? l : undefined;
        } catch {
          return undefined;
        }
      });
      const exported = (await cli(["audit", "export", "-c", configFile])).stdout.trim().split("\n").map((x) => JSON.parse(x) as { seq: number; hash: string });
      const bySeq = new Map(lines.map((l) => [l.seq, l.hash]));
      for (const rec of exported.filter((r) => r.seq <= head)) assert.equal(bySeq.get(rec.seq), rec.hash, `record ${rec.seq}`);
    });

    it("exports records as JSON lines that chain", async () => {
      const r = await cli(["audit", "export", "-c", configFile]);
      assert.equal(r.code, 0, r.stderr);
      const recs = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { seq: number; prev: string; hash: string; type: string; data: Record<string, unknown> });
      recs.forEach((rec, i) => {
        assert.equal(rec.seq, i + 1);
        if (i > 0) assert.equal(rec.prev, recs[i - 1]!.hash);
      });
      assert.ok(recs.some((x) => x.type === "session_open" && x.data.sub === "analyst-7"));
      assert.ok(recs.some((x) => x.type === "decision" && x.data.action === "deny" && x.data.rule === "no-ddl"));
      const later = await cli(["audit", "export", "-c", configFile, "--since", new Date(Date.now() + 60_000).toISOString()]);
      assert.equal(later.stdout, "");
    });
  });
});

async function waitFor<T>(fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 25));
  }
}
