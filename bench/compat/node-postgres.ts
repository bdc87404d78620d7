/**
 * node-postgres's own suites, run straight against a PostgreSQL and then through a gateway with
 * everything allowed (bench/compat/gateway.ts): packages/pg's integration tests file by file as
 * its Makefile does (`node <file>`, exit code 0 = pass), once with text results and once with
 * binary results (pg's `defaults.binary`, set by a preloaded module: the suite's old `binary`
 * argument is read by nothing any more), and the mocha suites of pg-pool, pg-cursor and
 * pg-query-stream (test by test). Prints what passes direct but fails through the gateway;
 * docs/postgres.md lists what differs by design and why.
 *
 *   node --import tsx bench/compat/node-postgres.ts <node-postgres checkout with node_modules installed>
 *
 * Fetches nothing: give it a checkout (git clone, then npm install in it).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { LocalPostgres } from "../../packages/portcullis/src/quickstart/local-postgres.js";
import { UPSTREAM_PASSWORD, UPSTREAM_USER } from "../../packages/portcullis/test/support/gateway.js";
import { startAllowAllGateway } from "./gateway.js";

const checkout = process.argv[2];
if (!checkout) {
  process.stderr.write("usage: node --import tsx bench/compat/node-postgres.ts <node-postgres checkout>\n");
  process.exit(2);
}
const suite = join(checkout, "packages/pg/test/integration");
const files = walk(suite).filter((f) => f.endsWith("-tests.js")).sort();
const TIMEOUT_MS = 60_000;
const PARALLEL = 2;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
}

const scratch = mkdtempSync(join(tmpdir(), "portcullis-node-postgres-"));
/** Preloaded for the binary run: every client asks for binary results unless a test says otherwise. */
const binaryPreload = join(scratch, "binary-results.cjs");
writeFileSync(binaryPreload, `require(${JSON.stringify(join(checkout, "packages/pg/lib/defaults.js"))}).binary = true;\n`);

type Mode = "text" | "binary";

/** Runs one test file; its exit code (or "timeout") and the tail of its output. */
function runFile(file: string, env: NodeJS.ProcessEnv, mode: Mode): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    const args = [...(mode === "binary" ? ["-r", binaryPreload] : []), file];
    const child = spawn(process.execPath, args, { cwd: join(checkout!, "packages/pg"), env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => { out = (out + c.toString()).slice(-4000); });
    child.stderr.on("data", (c: Buffer) => { out = (out + c.toString()).slice(-4000); });
    const timer = setTimeout(() => { out += "\n[timed out]"; child.kill("SIGKILL"); }, TIMEOUT_MS);
    child.on("close", (code) => { clearTimeout(timer); resolve({ ok: code === 0, out }); });
  });
}

async function runAll(env: NodeJS.ProcessEnv, mode: Mode): Promise<Map<string, { ok: boolean; out: string }>> {
  const results = new Map<string, { ok: boolean; out: string }>();
  const queue = [...files];
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    for (let f = queue.shift(); f; f = queue.shift()) results.set(relative(suite, f), await runFile(f, env, mode));
  }));
  return results;
}

/** The mocha suites of the other packages: each test's full title and whether it passed. */
const MOCHA: Record<string, string[]> = {
  "pg-pool": [],
  "pg-cursor": [],
  "pg-query-stream": ["-r", "ts-node/register", "test/**/*.ts"],
};

function runMocha(pkg: string, env: NodeJS.ProcessEnv): Promise<Map<string, boolean>> {
  return new Promise((resolve) => {
    const mocha = join(checkout!, "node_modules/.bin/mocha");
    const child = spawn(mocha, [...MOCHA[pkg]!, "--reporter", "json", "--timeout", "10000", "--exit"], { cwd: join(checkout!, "packages", pkg), env, stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => { out += c.toString(); });
    child.on("close", () => {
      const tests = new Map<string, boolean>();
      try {
        const report = JSON.parse(out.slice(out.indexOf("{"))) as { passes: { fullTitle: string }[]; failures: { fullTitle: string }[] };
        for (const t of report.passes) tests.set(t.fullTitle, true);
        for (const t of report.failures) tests.set(t.fullTitle, false);
      } catch {
        tests.set("(the suite's report could not be read)", false);
      }
      resolve(tests);
    });
  });
}

const user = { name: UPSTREAM_USER, password: UPSTREAM_PASSWORD };
const pg = await LocalPostgres.start({ authMethod: "scram-sha-256", ssl: false, users: [user], databases: [{ name: "app", owner: UPSTREAM_USER }] });
// template1 too: gh-issues/130 connects to it by name (through the gateway, a database name is a connection's).
const gw = await startAllowAllGateway(pg, ["app", "template1"].map((name) => ({ name, database: "app", username: UPSTREAM_USER, password: UPSTREAM_PASSWORD })));
const address = gw.gw.addresses.postgres!;
const base = { ...process.env, PGDATABASE: "app", PGHOST: "127.0.0.1", PGSSLMODE: "disable" };
try {
  const directEnv = { ...base, PGPORT: String(pg.port), PGUSER: UPSTREAM_USER, PGPASSWORD: UPSTREAM_PASSWORD };
  const gatewayEnv = { ...base, PGPORT: String(address.port), PGUSER: "agent", PGPASSWORD: await gw.token("compat-1", ["agents"], 3600) };
  for (const mode of ["text", "binary"] as const) {
    const direct = await runAll(directEnv, mode);
    const through = await runAll(gatewayEnv, mode);
    const passed = (m: Map<string, { ok: boolean }>) => [...m.values()].filter((r) => r.ok).length;
    process.stdout.write(`node-postgres packages/pg integration (${mode} results): ${files.length} files; direct ${passed(direct)} pass; through the gateway ${passed(through)} pass\n`);
    for (const [f, r] of direct) {
      if (r.ok && !through.get(f)!.ok) process.stdout.write(`\n--- passes direct, fails through the gateway: ${f}\n${through.get(f)!.out.slice(-1500)}\n`);
      if (!r.ok) process.stdout.write(`(fails direct: ${f}; through the gateway it ${through.get(f)!.ok ? "passes" : "fails too"})\n`);
    }
  }
  for (const pkg of Object.keys(MOCHA)) {
    const d = await runMocha(pkg, directEnv);
    const g = await runMocha(pkg, gatewayEnv);
    const count = (m: Map<string, boolean>) => [...m.values()].filter(Boolean).length;
    process.stdout.write(`\n${pkg}: ${d.size} tests; direct ${count(d)} pass; through the gateway ${count(g)} pass\n`);
    for (const [title, ok] of d) if (ok && g.get(title) !== true) process.stdout.write(`  passes direct, fails through the gateway: ${title}\n`);
  }
} finally {
  await gw.stop();
  await pg.stop();
  rmSync(scratch, { recursive: true, force: true });
}
