/**
 * postgres.js's own suite (tests/index.js), run as its CI runs it — a server on localhost:5432 with
 * the suite's pg_hba.conf, ssl on, wal_level=logical, max_prepared_transactions=100, a second
 * server on 5433, PGUSER=postgres — first straight against PostgreSQL, then with the gateway on
 * localhost:5432 in front of it (everything allowed, bench/compat/gateway.ts). Prints what passes
 * direct but fails through the gateway; docs/postgres.md lists what differs by design and why.
 *
 *   node --import tsx bench/compat/postgres-js.ts <postgres.js checkout>
 *
 * Needs ports 5432 and 5433 free. Fetches nothing, installs nothing (the suite has no
 * dependencies). The suite runs in a scratch copy whose tests/test.js is
 * bench/compat/postgres-js-runner.js: the upstream runner stops at the first failure.
 *
 * The suite's own setup (psql, createdb, dropdb as the superuser) always reaches the server
 * directly: those commands are found first on PATH as wrappers that point them there.
 */
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalPostgres } from "../../packages/portcullis/src/quickstart/local-postgres.js";
import { startAllowAllGateway } from "./gateway.js";

interface Result { name: string; line: string; ok: boolean; error?: string }

const checkout = process.argv[2];
if (!checkout) {
  process.stderr.write("usage: node --import tsx bench/compat/postgres-js.ts <postgres.js checkout>\n");
  process.exit(2);
}
const SUITE_TIMEOUT_MS = 10 * 60_000;
const here = dirname(fileURLToPath(import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "portcullis-postgresjs-"));
chmodSync(scratch, 0o755);

/** A scratch copy of the suite: its tests with our runner, its source linked, its package.json (ESM). */
function prepareSuite(): string {
  const root = join(scratch, "suite");
  mkdirSync(root);
  cpSync(join(checkout!, "tests"), join(root, "tests"), { recursive: true });
  copyFileSync(join(here, "postgres-js-runner.js"), join(root, "tests/test.js"));
  copyFileSync(join(checkout!, "package.json"), join(root, "package.json"));
  symlinkSync(join(checkout!, "src"), join(root, "src"));
  return root;
}

/** psql, createdb and dropdb that always reach `pg` directly as its superuser (the suite's setup). */
function adminTools(pg: LocalPostgres): string {
  const bin = join(scratch, `admin-bin-${pg.port}`);
  mkdirSync(bin);
  for (const tool of ["psql", "createdb", "dropdb"]) {
    const script = `#!/bin/sh\nunset PGPASSWORD PGDATABASE\nPGHOST=127.0.0.1 PGPORT=${pg.port} PGUSER=postgres exec ${join(pg.binDir, tool)} "$@"\n`;
    writeFileSync(join(bin, tool), script, { mode: 0o755 });
  }
  return bin;
}

/** A server as the suite's CI configures it (pg_hba.conf from the suite, unix socket for the PGSOCKET test). */
async function startServer(port: number): Promise<{ pg: LocalPostgres; socketDir: string }> {
  const socketDir = mkdtempSync(join(scratch, "sock-"));
  chmodSync(socketDir, 0o777);
  const pg = await LocalPostgres.start({
    port,
    ssl: true,
    authMethod: "trust",
    superuser: { name: "postgres" },
    settings: { unix_socket_directories: socketDir, wal_level: "logical", synchronous_commit: "on", max_prepared_transactions: "100", listen_addresses: "127.0.0.1,::1" },
  });
  const hba = join(pg.dataDir, "pg_hba.conf");
  // The suite's subscribe() tests open a logical replication connection, which "all" does not cover
  // (and expect changes within 10 ms: a walsender sends only flushed WAL, hence synchronous_commit=on).
  writeFileSync(hba, `${readFileSync(join(checkout!, "tests/pg_hba.conf"), "utf8")}\nhost replication all samehost trust\n`);
  await pg.query("SELECT pg_reload_conf()");
  return { pg, socketDir };
}

function runSuite(root: string, env: NodeJS.ProcessEnv): Promise<Map<string, Result>> {
  const out = join(scratch, `results-${Date.now()}.json`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["tests/index.js"], { cwd: root, env: { ...env, COMPAT_RESULTS: out }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => { stderr = (stderr + c.toString()).slice(-2000); });
    const timer = setTimeout(() => child.kill("SIGKILL"), SUITE_TIMEOUT_MS);
    child.on("close", () => {
      clearTimeout(timer);
      const results = new Map<string, Result>();
      try {
        for (const r of JSON.parse(readFileSync(out, "utf8")) as Result[]) results.set(`${r.name} (line ${r.line})`, r);
      } catch {
        process.stderr.write(`the suite wrote no results; its stderr:\n${stderr}\n`);
      }
      resolve(results);
    });
  });
}

const root = prepareSuite();
const second = await startServer(5433);
const passed = (m: Map<string, Result>) => [...m.values()].filter((r) => r.ok).length;
let direct: Map<string, Result>;
{
  const { pg, socketDir } = await startServer(5432);
  try {
    direct = await runSuite(root, { ...process.env, PATH: `${adminTools(pg)}:${process.env.PATH}`, PGUSER: "postgres", PGSOCKET: socketDir, PGHOST: "", PGPORT: "", PGPASSWORD: "", PGDATABASE: "" });
  } finally {
    await pg.stop();
  }
}
let through: Map<string, Result>;
{
  const { pg } = await startServer(0);
  const gw = await startAllowAllGateway(pg, [
    { name: "postgres_js_test", database: "postgres_js_test", username: "postgres_js_test", password: "unused-trust" },
    { name: "postgres", database: "postgres", username: "postgres", password: "unused-trust" },
  ], "127.0.0.1:5432");
  try {
    const token = await gw.token("compat-postgresjs", ["agents"], 3600);
    // The gateway has no unix socket: the PGSOCKET test gets a folder with none in it.
    through = await runSuite(root, { ...process.env, PATH: `${adminTools(pg)}:${process.env.PATH}`, PGUSER: "postgres", PGSOCKET: join(scratch, "no-socket-here"), PGHOST: "", PGPORT: "", PGPASSWORD: token, PGDATABASE: "" });
  } finally {
    await gw.stop();
    await pg.stop();
  }
}
await second.pg.stop();
rmSync(scratch, { recursive: true, force: true });

process.stdout.write(`postgres.js tests/index.js: ${direct.size} tests; direct ${passed(direct)} pass; through the gateway ${passed(through)} pass\n`);
for (const [key, r] of direct) {
  const g = through.get(key);
  if (r.ok && !g?.ok) process.stdout.write(`  passes direct, fails through the gateway: ${key}: ${g?.error ?? "(not run)"}\n`);
  if (!r.ok) process.stdout.write(`  (fails direct: ${key}: ${r.error}; through the gateway it ${g?.ok ? "passes" : "fails too"})\n`);
}
