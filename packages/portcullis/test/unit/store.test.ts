import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { isPortcullisError } from "../../src/errors.js";
import { openStore } from "../../src/store/open.js";
import { MIGRATIONS, type Migration } from "../../src/store/sqlite/migrations.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { SessionRecord } from "../../src/store/store.js";

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), "portcullis-store-test-"));
});
after(() => rmSync(root, { recursive: true, force: true }));

let seq = 0;
function record(over: Partial<SessionRecord> = {}): SessionRecord {
  seq += 1;
  return {
    id: `s-${seq}`,
    protocol: "postgres",
    connection: "customers",
    sub: "agent-1",
    groups: ["agents"],
    iss: "https://idp.example.com/",
    clientAddress: "127.0.0.1:50000",
    run: {},
    runHints: {},
    startedAt: new Date(1_700_000_000_000 + seq * 1000),
    ...over,
  };
}

describe("SqliteStore", () => {
  test("creates the folder and file, owner-only", () => {
    const path = join(root, "fresh", "nested", "p.db");
    const store = new SqliteStore(path);
    store.close();
    assert.equal(statSync(join(root, "fresh", "nested")).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  test("WAL, synchronous=NORMAL and foreign keys are on", () => {
    const path = join(root, "wal.db");
    const store = new SqliteStore(path);
    store.createSession(record());
    // journal_mode is persistent in the file, so a second connection sees it.
    const raw = new BetterSqlite3(path, { readonly: true });
    try {
      assert.equal(raw.pragma("journal_mode", { simple: true }), "wal");
    } finally {
      raw.close();
    }
    const db = (store as unknown as { db: BetterSqlite3.Database }).db;
    assert.equal(db.pragma("synchronous", { simple: true }), 1); // NORMAL
    assert.equal(db.pragma("foreign_keys", { simple: true }), 1);
    assert.ok(Number(db.pragma("busy_timeout", { simple: true })) > 0);
    store.close();
  });

  test("migrations apply once and are idempotent across reopen", () => {
    const path = join(root, "migrate.db");
    const first = new SqliteStore(path);
    const latest = MIGRATIONS.at(-1)!.version;
    assert.equal(first.schemaVersion(), latest);
    first.createSession(record({ id: "kept" }));
    first.migrate();
    first.migrate();
    first.close();

    const second = new SqliteStore(path);
    assert.equal(second.schemaVersion(), latest);
    assert.ok(second.getSession("kept"), "data survives reopen");
    second.close();

    const raw = new BetterSqlite3(path, { readonly: true });
    const rows = raw.prepare("SELECT version FROM schema_migrations ORDER BY version").pluck().all();
    raw.close();
    assert.deepEqual(rows, MIGRATIONS.map((m) => m.version));
  });

  test("a later migration is applied on reopen, in order, in one transaction", () => {
    const path = join(root, "upgrade.db");
    new SqliteStore(path).close();
    const next: Migration[] = [
      ...MIGRATIONS,
      { version: 100, name: "notes", sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)" },
      { version: 101, name: "broken", sql: "CREATE TABLE notes (id INTEGER)" }, // fails: exists
    ];
    assert.throws(() => new SqliteStore(path, { migrations: next }), (e) => isPortcullisError(e, "E_STORE"));
    // The failed run rolled back: version 100 is not recorded and its table is absent.
    const s = new SqliteStore(path);
    assert.equal(s.schemaVersion(), MIGRATIONS.at(-1)!.version);
    s.close();

    const good = new SqliteStore(path, { migrations: next.slice(0, -1) });
    assert.equal(good.schemaVersion(), 100);
    good.close();
  });

  test("refuses a store whose schema is newer than this build", () => {
    const path = join(root, "newer.db");
    new SqliteStore(path, {
      migrations: [...MIGRATIONS, { version: 999, name: "future", sql: "CREATE TABLE future (x)" }],
    }).close();
    assert.throws(
      () => new SqliteStore(path),
      (e) => isPortcullisError(e, "E_STORE") && /newer/.test(e.message),
    );
  });

  test("refuses an out-of-order migration list", () => {
    const bad = [MIGRATIONS[0]!, { ...MIGRATIONS[0]!, name: "dup" }];
    assert.throws(() => new SqliteStore(":memory:", { migrations: bad }), (e) => isPortcullisError(e, "E_STORE"));
  });

  test("create, get and end round-trip every field", () => {
    const store = new SqliteStore(":memory:");
    const rec = record({
      protocol: "http",
      groups: ["agents", "billing-readers", "ünïcode"],
      jti: "tok-1",
      run: { graph_id: "g", thread_id: "t", run_id: "r", node: "fetch" },
      runHints: { node: "claimed-by-client" },
    });
    store.createSession(rec);
    assert.deepEqual(store.getSession(rec.id), rec);

    const endedAt = new Date(rec.startedAt.getTime() + 1234);
    store.endSession(rec.id, endedAt, "client_closed");
    store.endSession(rec.id, new Date(endedAt.getTime() + 1), "killed: late"); // first end wins
    assert.deepEqual(store.getSession(rec.id), { ...rec, endedAt, endReason: "client_closed" });

    store.endSession("no-such-session", endedAt, "client_closed");
    assert.equal(store.getSession("no-such-session"), undefined);
    store.close();
  });

  test("optional fields stay absent rather than becoming null", () => {
    const store = new SqliteStore(":memory:");
    const rec = record();
    store.createSession(rec);
    const got = store.getSession(rec.id)!;
    assert.ok(!("jti" in got) && !("endedAt" in got) && !("endReason" in got));
    store.close();
  });

  test("a duplicate id is an E_STORE error", () => {
    const store = new SqliteStore(":memory:");
    const rec = record();
    store.createSession(rec);
    assert.throws(() => store.createSession(rec), (e) => isPortcullisError(e, "E_STORE"));
    store.close();
  });

  test("listSessions filters and orders newest first", () => {
    const store = new SqliteStore(":memory:");
    const t0 = Date.UTC(2025, 0, 1);
    const a = record({ id: "a", sub: "alice", connection: "customers", startedAt: new Date(t0) });
    const b = record({ id: "b", sub: "bob", connection: "billing", startedAt: new Date(t0 + 1000) });
    const c = record({ id: "c", sub: "alice", connection: "billing", startedAt: new Date(t0 + 2000) });
    const d = record({ id: "d", sub: "alice", connection: "customers", startedAt: new Date(t0 + 2000) });
    for (const r of [a, b, c, d]) store.createSession(r);
    store.endSession("b", new Date(t0 + 5000), "client_closed");
    const ids = (f?: Parameters<typeof store.listSessions>[0]) => store.listSessions(f).map((s) => s.id);

    assert.deepEqual(ids(), ["d", "c", "b", "a"], "same ms: later insert first");
    assert.deepEqual(ids({ sub: "alice" }), ["d", "c", "a"]);
    assert.deepEqual(ids({ connection: "billing" }), ["c", "b"]);
    assert.deepEqual(ids({ sub: "alice", connection: "customers" }), ["d", "a"]);
    assert.deepEqual(ids({ live: true }), ["d", "c", "a"]);
    assert.deepEqual(ids({ live: false }), ["b"]);
    assert.deepEqual(ids({ since: new Date(t0 + 1000) }), ["d", "c", "b"]);
    assert.deepEqual(ids({ limit: 2 }), ["d", "c"]);
    assert.deepEqual(ids({ limit: 0 }), []);
    assert.deepEqual(ids({ sub: "alice", live: true, since: new Date(t0 + 1), limit: 1 }), ["d"]);
    assert.deepEqual(ids({ sub: "nobody" }), []);
    // Repeated shapes reuse their statement and still bind fresh values.
    assert.deepEqual(ids({ sub: "bob" }), ["b"]);
    store.close();
  });

  test("ping reports liveness and close is idempotent", () => {
    const store = new SqliteStore(":memory:");
    assert.equal(store.ping(), true);
    store.close();
    store.close();
    assert.equal(store.ping(), false);
  });

  test("a file that is not a database is an E_STORE error", async () => {
    const { writeFileSync } = await import("node:fs");
    const path = join(root, "garbage.db");
    writeFileSync(path, "this is not sqlite, just text long enough to have a header".repeat(20));
    assert.throws(() => new SqliteStore(path), (e) => isPortcullisError(e, "E_STORE"));
  });
});

describe("openStore", () => {
  test("opens sqlite:PATH and sqlite::memory:", () => {
    const path = join(root, "via-url", "p.db");
    const file = openStore(`sqlite:${path}`);
    file.createSession(record({ id: "u1" }));
    file.close();
    const again = openStore(`sqlite:${path}`);
    assert.ok(again.getSession("u1"));
    again.close();

    const mem = openStore("sqlite::memory:");
    assert.ok(mem instanceof SqliteStore);
    assert.equal((mem as SqliteStore).path, ":memory:");
    assert.equal(mem.ping(), true);
    mem.close();
  });

  test("refuses other schemes without echoing the URL", () => {
    for (const url of ["postgres://app:hunter2@db/portcullis", "mysql://x", "./plain/path.db", "sqlite:"]) {
      assert.throws(
        () => openStore(url),
        (e) => isPortcullisError(e, "E_STORE") && !e.message.includes("hunter2"),
        url,
      );
    }
  });
});
