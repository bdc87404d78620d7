import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, describe, test } from "node:test";
import pg from "pg";
import { LocalPostgres, findPostgresBinDir } from "../../src/quickstart/local-postgres.js";

const binDir = findPostgresBinDir();
const skip = binDir ? false : "no PostgreSQL server binaries on this machine";
const app = { name: "app_user", password: "s3cret-'quoted\"-pw" };

async function connectAs(db: LocalPostgres, user: { name: string; password: string }, database: string, extra: pg.ClientConfig = {}) {
  const client = new pg.Client({ ...db.clientConfig(user, database), ...extra });
  await client.connect();
  return client;
}

async function refusedWith(db: LocalPostgres, user: { name: string; password: string }, database: string): Promise<string> {
  const client = new pg.Client(db.clientConfig(user, database));
  try {
    await client.connect();
  } catch (err) {
    return (err as { code?: string }).code ?? "no code";
  } finally {
    await client.end().catch(() => undefined);
  }
  assert.fail("connection should have been refused");
}

function portClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(false)));
    s.once("error", () => resolve(true));
  });
}

describe("LocalPostgres", { skip }, () => {
  const started: LocalPostgres[] = [];
  after(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  test("findPostgresBinDir finds initdb and postgres", () => {
    assert.ok(binDir && existsSync(join(binDir, "initdb")) && existsSync(join(binDir, "postgres")));
  });

  for (const authMethod of ["scram-sha-256", "md5"] as const) {
    test(`${authMethod}: a created user connects with its password; a wrong one is refused`, async (t) => {
      const db = await LocalPostgres.start({
        authMethod,
        users: [app],
        databases: [{ name: "appdb", owner: app.name }],
      });
      started.push(db);
      t.diagnostic(`${authMethod} start: ${db.startupMs.toFixed(0)} ms on port ${db.port}`);
      assert.equal(db.host, "127.0.0.1");
      assert.ok(db.port > 0);

      const client = await connectAs(db, app, "appdb");
      const { rows } = await client.query("SELECT current_user AS u, current_database() AS d, rolsuper FROM pg_roles WHERE rolname = current_user");
      assert.deepEqual(rows, [{ u: app.name, d: "appdb", rolsuper: false }]);
      await client.query("CREATE TABLE t (x int)");
      await client.query("INSERT INTO t VALUES (1), (2)");
      assert.deepEqual((await client.query("SELECT sum(x)::int AS s FROM t")).rows, [{ s: 3 }]);
      await client.end();

      // The server really uses the requested method, not a more lenient one.
      const rules = await db.query<{ auth_method: string }>("SELECT DISTINCT auth_method FROM pg_hba_file_rules");
      assert.deepEqual(rules.map((r) => r.auth_method), [authMethod]);
      const [stored] = await db.query<{ p: string }>("SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1", [app.name]);
      assert.ok(stored!.p.startsWith(authMethod === "md5" ? "md5" : "SCRAM-SHA-256$"));

      assert.equal(await refusedWith(db, { name: app.name, password: "wrong" }, "appdb"), "28P01");
      assert.equal(await refusedWith(db, { name: db.superuser.name, password: "wrong" }, "postgres"), "28P01");

      const { port, dir } = db;
      await db.stop();
      await db.stop(); // idempotent
      assert.ok(await portClosed(port), "server gone after stop");
      assert.ok(!existsSync(dir), "folder removed after stop");
      await assert.rejects(db.query("SELECT 1"), /stopped/);
    });
  }

  test("trust mode needs no password; the superuser can run queries", async () => {
    const db = await LocalPostgres.start({ authMethod: "trust" });
    started.push(db);
    const client = await connectAs(db, { name: db.superuser.name, password: "" }, "postgres");
    assert.equal((await client.query("SELECT 1 AS one")).rows[0].one, 1);
    await client.end();
    await db.stop();
  });

  test("psqlEnv drives the real psql client", async () => {
    const db = await LocalPostgres.start({ users: [app] });
    started.push(db);
    const { stdout } = await promisify(execFile)(join(db.binDir, "psql"), ["-XAtc", "SELECT current_user"], {
      env: { ...process.env, ...db.psqlEnv(app) },
    });
    assert.equal(stdout.trim(), app.name);
    await db.stop();
  });

  test("ssl: a verifying client connects over TLS", { skip: !commandExists("openssl") && "no openssl CLI" }, async () => {
    const db = await LocalPostgres.start({ ssl: true, users: [app] });
    started.push(db);
    assert.ok(db.ssl?.certPem.includes("BEGIN CERTIFICATE"));
    const client = await connectAs(db, app, "postgres", { ssl: { ca: db.ssl!.certPem } });
    const { rows } = await client.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    assert.deepEqual(rows, [{ ssl: true }]);
    await client.end();
    await db.stop();
  });

  test("settings reach the server; keep leaves the folder for a post-mortem", async () => {
    const parent = traversableTempDir("portcullis-lp-keep-");
    const dir = join(parent, "instance");
    try {
      const db = await LocalPostgres.start({ dir, keep: true, settings: { work_mem: "7MB", application_name: "lp-test" } });
      started.push(db);
      assert.equal(db.dir, dir);
      const [row] = await db.query<{ w: string }>("SELECT current_setting('work_mem') AS w");
      assert.equal(row!.w, "7MB");
      await db.stop();
      assert.ok(existsSync(join(dir, "postgres.log")) && existsSync(join(dir, "data", "PG_VERSION")));
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  test("a server that cannot start fails fast with the log tail, and leaves nothing behind", async () => {
    const parent = traversableTempDir("portcullis-lp-bad-");
    const dir = join(parent, "instance");
    try {
      const t0 = Date.now();
      await assert.rejects(
        LocalPostgres.start({ dir, settings: { shared_buffers: "not-a-size" } }),
        (err: Error) => /exited during start/.test(err.message) && /shared_buffers/.test(err.message),
      );
      assert.ok(Date.now() - t0 < 10_000);
      assert.ok(!existsSync(dir));
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  test("as root, a folder the postgres user cannot reach is refused plainly", { skip: process.getuid?.() !== 0 && "not root" }, async () => {
    const parent = mkdtempSync(join(tmpdir(), "portcullis-lp-private-")); // 0700, owned by root
    try {
      await assert.rejects(LocalPostgres.start({ dir: join(parent, "instance") }), /postgres user cannot enter/);
      assert.ok(!existsSync(join(parent, "instance")));
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  test("an explicit port that is taken is reported, not silently changed", async () => {
    const first = await LocalPostgres.start();
    started.push(first);
    await assert.rejects(LocalPostgres.start({ port: first.port }), /exited during start|in use/);
    await first.stop();
  });
});

/** A parent folder the `postgres` system user can enter when the tests run as root. */
function traversableTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

function commandExists(cmd: string): boolean {
  return (process.env.PATH ?? "").split(":").some((d) => d && existsSync(join(d, cmd)));
}
