import Database from "better-sqlite3";
const db = new Database("/tmp/dbg/t.db"); db.pragma("journal_mode = WAL"); db.pragma("synchronous = NORMAL");
db.exec("CREATE TABLE IF NOT EXISTS client_addresses (sub TEXT NOT NULL, iss TEXT NOT NULL, address TEXT NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (sub, iss, address)) WITHOUT ROWID");
const S1 = "SELECT last_seen FROM client_addresses WHERE sub = ? AND iss = ? AND address = ?", S2 = "SELECT 1 FROM client_addresses WHERE sub = ? AND iss = ? LIMIT 1", S3 = "INSERT INTO client_addresses (sub, iss, address, last_seen) VALUES (?, ?, ?, ?) ON CONFLICT (sub, iss, address) DO UPDATE SET last_seen = excluded.last_seen";
let n = Date.now();
const each = () => db.transaction(() => { db.prepare(S1).pluck().get("a","i","127.0.0.1"); db.prepare(S2).pluck().get("a","i"); db.prepare(S3).run("a","i","127.0.0.1", n++); })();
const p1 = db.prepare(S1).pluck(), p2 = db.prepare(S2).pluck(), p3 = db.prepare(S3);
const tx = db.transaction(() => { p1.get("a","i","127.0.0.1"); p2.get("a","i"); p3.run("a","i","127.0.0.1", n++); });
const cached = () => tx();
const prepOnly = () => { db.prepare(S1); db.prepare(S2); db.prepare(S3); };
for (const [name, f] of [["as in the store (prepare each call)", each], ["statements prepared once", cached], ["the three prepare() calls alone", prepOnly]] as const) {
  for (let i = 0; i < 500; i++) f();
  const t0 = performance.now(); for (let i = 0; i < 5000; i++) f(); console.log(name, ((performance.now() - t0) * 1000 / 5000).toFixed(1), "µs");
}
