/**
 * Crash consistency of the write-ahead audit log: the real `portcullis serve` is killed with
 * SIGKILL while pgbench is hammering a real PostgreSQL through it, then restarted. Afterwards:
 *
 * - `portcullis audit verify` passes (hash chain, signed checkpoints, anchor file);
 * - every statement PostgreSQL executed for a gateway session (its own statement log,
 *   log_statement=all) has an `allow` decision record: per normalized statement text, audit
 *   records >= executions. The surplus, if any, is operations audited but cut off before they
 *   reached the target, at most one per session (pgbench has one statement in flight per client);
 * - the sessions the crash cut off are marked as ended abnormally at the next start, in the
 *   sessions table and by a `session_close` audit record each.
 *
 * Two pgbench runs go through the gateway at once: the select-only script over the simple query
 * protocol, and the TPC-B-like script (transactions, UPDATE/INSERT) over the extended protocol
 * (-M prepared), so both ways an operation reaches the target are covered.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { loadSqlParser, normalizeSql } from "../../src/policy/sql/classify.js";
import { ABANDONED_REASON } from "../../src/server.js";
import { BIN, cli, type CliResult } from "../support/cli.js";
import { assertSuccess, libpqEnv, requirePostgresClient, run } from "../support/clients.js";
import { UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, type TestTarget } from "../support/gateway.js";

const SUB = "crash-agent";
const INIT_APP = "pgbench-init-direct";
/** pgbench runs through the gateway; the application name tells their lines apart in the PostgreSQL log. */
const RUNS = [
  { app: "via-gateway-select", clients: 4, threads: 2, args: ["-S", "-M", "simple"] },
  { app: "via-gateway-tpcb", clients: 2, threads: 1, args: ["-b", "tpcb-like", "-M", "prepared"] },
] as const;
const SESSIONS_CUT_OFF = RUNS.reduce((n, r) => n + r.clients, 0);
/** Statements executed through the gateway before it is killed (at least; the count is not timed). */
const KILL_AFTER_STATEMENTS = 600;
const WAIT_MS = 90_000;

// ---- PostgreSQL's statement log ----

/** `<pid|application_name> ` before every line the server writes. */
const LOG_PREFIX = "<%p|%a> ";
const LINE = /^<(\d+)\|([^>]*)> ([A-Z]+):  ([\s\S]*)$/;

interface LoggedStatement {
  pid: number;
  app: string;
  text: string;
}

/** Statements PostgreSQL logged (log_statement=all): simple-protocol `statement:` and extended-protocol `execute`. */
function loggedStatements(logFile: string): LoggedStatement[] {
  const text = readFileSync(logFile, "utf8");
  // A message's continuation lines start with a tab; a message still being written may be cut: drop the tail.
  const lines = text.slice(0, text.lastIndexOf("\n") + 1).split("\n");
  const messages: { pid: number; app: string; level: string; body: string }[] = [];
  for (const line of lines) {
    const m = LINE.exec(line);
    if (m) messages.push({ pid: Number(m[1]), app: m[2]!, level: m[3]!, body: m[4]! });
    else if (line.startsWith("\t") && messages.length > 0) messages.at(-1)!.body += `\n${line.slice(1)}`;
  }
  const out: LoggedStatement[] = [];
  for (const msg of messages) {
    if (msg.level !== "LOG") continue;
    const s = /^(?:statement|execute [^:]*): ([\s\S]*)$/.exec(msg.body);
    if (s) out.push({ pid: msg.pid, app: msg.app, text: s[1]! });
  }
  return out;
}

/** What the gateway records as a decision's `statement`: the text with literals as $n. */
const normalized = (sql: string): string => normalizeSql(sql) ?? `(does not parse) ${sql}`;

function countBy<T>(items: Iterable<T>, key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const it of items) m.set(key(it), (m.get(key(it)) ?? 0) + 1);
  return m;
}

// ---- child processes ----

const children = new Set<ChildProcess>();

interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(file: string, args: string[], env: NodeJS.ProcessEnv): Spawned {
  const child = spawn(file, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  // Keep the tail only: pgbench -P and the gateway's log can be long.
  child.stdout!.on("data", (b: Buffer) => { stdout = (stdout + b.toString()).slice(-20_000); });
  child.stderr!.on("data", (b: Buffer) => { stderr = (stderr + b.toString()).slice(-20_000); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("error", (err) => { stderr += `\nspawn error: ${err.message}`; });
    child.once("close", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

/** Resolves with the exit, or undefined if the process is still running after `ms`. */
async function exitWithin(p: Spawned, ms: number) {
  const timer = sleep(ms, undefined, { ref: false });
  return Promise.race([p.exited, timer]);
}

async function waitUntil<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, context: () => string, ms = WAIT_MS): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${context()}`);
    await sleep(100);
  }
}

interface Serve extends Spawned {
  pgPort: number;
  httpPort: number;
}

/** `portcullis serve -c FILE`, once it has printed its addresses and /readyz answers 200. */
async function serve(configFile: string): Promise<Serve> {
  const p = start(process.execPath, [BIN, "serve", "-c", configFile], { ...process.env });
  const context = () => `serve stdout:\n${p.stdout()}\nserve stderr:\n${p.stderr()}`;
  const [pgPort, httpPort] = await waitUntil("the gateway's listening addresses", () => {
    if (!running(p.child)) throw new Error(`portcullis serve exited during start (${p.child.exitCode ?? p.child.signalCode})\n${context()}`);
    const pgAt = /postgres\s+127\.0\.0\.1:(\d+)/.exec(p.stdout());
    const httpAt = /http\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stdout());
    return pgAt && httpAt ? [Number(pgAt[1]), Number(httpAt[1])] : undefined;
  }, context);
  await waitUntil("/readyz 200", async () => {
    const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined);
    return r?.status === 200 ? true : undefined;
  }, context);
  return { ...p, pgPort, httpPort };
}

// ---- the audit log, as `portcullis audit export` prints it ----

interface AuditRecord {
  seq: number;
  type: string;
  session: string | null;
  data: Record<string, unknown>;
}

interface SessionJson {
  id: string;
  sub: string;
  end_reason: string | null;
}

function json<T>(r: CliResult, what: string): T {
  assert.equal(r.code, 0, `${what} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

describe("gateway killed with SIGKILL in the middle of a pgbench run", { timeout: 180_000 }, () => {
  let target: TestTarget | undefined;
  let dir: string;
  let configFile: string;
  let statements: LoggedStatement[] = [];
  let records: AuditRecord[] = [];
  let ourSessions: SessionJson[] = [];

  before(async () => {
    const pgbench = requirePostgresClient("pgbench");
    await loadSqlParser();
    target = await startTarget({ settings: { log_statement: "all", log_line_prefix: LOG_PREFIX } });
    const { pg } = target;
    const direct = { host: pg.host, port: pg.port, user: UPSTREAM_USER, password: UPSTREAM_PASSWORD, database: "app", sslmode: "disable" as const };
    assertSuccess(await run(pgbench, ["-i", "-s", "1", "-q"], { env: libpqEnv(direct, { PGAPPNAME: INIT_APP }), timeoutMs: 120_000 }), "pgbench -i");

    dir = mkdtempSync(join(tmpdir(), "pc-audit-crash-"));
    configFile = join(dir, "portcullis.yaml");
    writeFileSync(configFile, stringify({
      gateway: { postgres: "127.0.0.1:0", http: "127.0.0.1:0", data_dir: join(dir, "data"), log_level: "info" },
      identity: { dev_issuer: true },
      connections: [{
        name: "app", type: "postgres",
        target: { host: pg.host, port: pg.port, database: "app", tls: "disable" },
        credentials: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD },
        access: ["agents"],
      }],
      audit: { checkpoint_every: 50, anchors: { file: join(dir, "anchors", "checkpoints.jsonl") } },
    }));

    const first = await serve(configFile);
    const issued = await cli(["token", "issue", "-c", configFile, "--sub", SUB, "--groups", "agents", "--ttl", "10m"]);
    assert.equal(issued.code, 0, issued.stderr);
    const token = issued.stdout.trim();

    const viaGateway = { host: "127.0.0.1", port: first.pgPort, user: "agent", password: token, database: "app", sslmode: "disable" as const };
    const benches = RUNS.map((r) => ({
      ...r,
      p: start(pgbench, ["-n", ...r.args, "-c", String(r.clients), "-j", String(r.threads), "-T", "120", "-P", "1"], libpqEnv(viaGateway, { PGAPPNAME: r.app })),
    }));
    const context = () => [
      ...benches.map((b) => `pgbench ${b.app} (${running(b.p.child) ? "running" : `exited ${b.p.child.exitCode ?? b.p.child.signalCode}`}):\n${b.p.stderr().slice(-3000)}`),
      `gateway stderr:\n${first.stderr().slice(-3000)}`,
      `postgres log tail:\n${pg.logTail()}`,
    ].join("\n");

    // Kill once every client of both runs is executing statements (one more backend each: pgbench's
    // setup connection) and plenty have gone through: mid-run, with all sessions open.
    await waitUntil(`${KILL_AFTER_STATEMENTS} statements through the gateway from every pgbench client`, () => {
      for (const b of benches) if (!running(b.p.child)) throw new Error(`pgbench ${b.app} ended before the crash\n${context()}`);
      const seen = loggedStatements(pg.logFile).filter((s) => s.app.startsWith("via-gateway-"));
      const allClientsBusy = benches.every((b) => new Set(seen.filter((s) => s.app === b.app).map((s) => s.pid)).size >= b.clients + 1);
      return allClientsBusy && seen.length >= KILL_AFTER_STATEMENTS ? true : undefined;
    }, context);
    first.child.kill("SIGKILL");
    const died = await first.exited;
    assert.equal(died.signal, "SIGKILL", "the gateway was killed, not stopped");

    // pgbench's clients fail on the lost connection and it exits (with an error: expected).
    for (const b of benches) {
      if (!(await exitWithin(b.p, 30_000))) {
        b.p.child.kill("SIGKILL");
        await b.p.exited;
      }
    }
    // Every backend that served the gateway has gone, so everything they executed is in the log.
    await waitUntil("the gateway's backends to exit", async () => {
      const [row] = await pg.query<{ n: string }>("select count(*)::text as n from pg_stat_activity where application_name like 'via-gateway-%'");
      return row?.n === "0" ? true : undefined;
    }, context);
    statements = loggedStatements(pg.logFile).filter((s) => s.app.startsWith("via-gateway-"));

    // The next start marks the sessions the crash cut off; then a clean stop.
    const second = await serve(configFile);
    second.child.kill("SIGTERM");
    const stopped = await exitWithin(second, 60_000);
    if (!stopped) second.child.kill("SIGKILL");
    assert.deepEqual(stopped, { code: 0, signal: null }, `portcullis serve did not stop cleanly on SIGTERM\n${second.stderr()}`);
    assert.match(second.stderr(), /sessions left open by the previous run marked as ended abnormally/);

    const exported = await cli(["audit", "export", "-c", configFile]);
    assert.equal(exported.code, 0, exported.stderr);
    records = exported.stdout.trim().split("\n").map((l) => JSON.parse(l) as AuditRecord);
    ourSessions = json<SessionJson[]>(await cli(["sessions", "list", "-c", configFile, "--subject", SUB, "--limit", "1000", "--json"]), "sessions list");
  });

  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    await target?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("audit verify passes after the crash", async () => {
    const r = await cli(["audit", "verify", "-c", configFile, "--json"]);
    assert.equal(r.code, 0, `audit verify failed:\n${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(r.stdout) as { ok: boolean; records: number; checkpoints: number };
    assert.equal(out.ok, true);
    assert.equal(out.records, records.length, "verify walked every exported record");
    assert.ok(out.checkpoints >= 2, `checkpoints: ${out.checkpoints}`);
    // Restart and clean stop were recorded after the crash; no gateway_stop for the killed run.
    const lifecycle = records.filter((x) => x.type === "gateway_start" || x.type === "gateway_stop").map((x) => x.type);
    assert.deepEqual(lifecycle, ["gateway_start", "gateway_start", "gateway_stop"]);
  });

  it("every statement PostgreSQL executed for the gateway's sessions has its audit record", (t) => {
    const ids = new Set(ourSessions.map((s) => s.id));
    const decisions = records.filter((x) => x.type === "decision" && x.session !== null && ids.has(x.session));
    assert.deepEqual(decisions.filter((d) => d.data.action !== "allow").map((d) => d.data), [], "pgbench's statements are all allowed");
    const executed = countBy(statements, (s) => normalized(s.text));
    const audited = countBy(decisions, (d) => String(d.data.statement));

    const missing = [...executed].filter(([text, n]) => (audited.get(text) ?? 0) < n)
      .map(([text, n]) => `${n} executed, ${audited.get(text) ?? 0} audited: ${text}`);
    assert.deepEqual(missing, [], "statements PostgreSQL executed without an audit record");

    const executedTotal = statements.length;
    const auditedTotal = decisions.length;
    t.diagnostic(`statements executed through the gateway (PostgreSQL log): ${executedTotal} in ${executed.size} distinct texts, ${new Set(statements.map((s) => s.pid)).size} backends`);
    t.diagnostic(`allowed operations audited: ${auditedTotal}; audited but cut off before reaching PostgreSQL: ${auditedTotal - executedTotal}`);
    for (const [text, n] of [...executed].sort((a, b) => b[1] - a[1])) t.diagnostic(`  ${n} executed / ${audited.get(text) ?? 0} audited: ${text.replace(/\s+/g, " ").slice(0, 100)}`);

    assert.ok(executedTotal >= KILL_AFTER_STATEMENTS, `the crash came mid-run: ${executedTotal} statements executed`);
    for (const r of RUNS) {
      assert.ok(statements.some((s) => s.app === r.app && /pgbench_accounts/.test(s.text)), `${r.app} ran its script through the gateway`);
    }
    // Nothing audited that was not attempted: each pgbench client has one statement in flight at most.
    assert.ok(auditedTotal - executedTotal <= ourSessions.length, `${auditedTotal - executedTotal} more audited than executed, for ${ourSessions.length} sessions`);
  });

  it("the interrupted sessions are marked as ended abnormally at the next start", async () => {
    const abnormal = json<SessionJson[]>(await cli(["sessions", "list", "-c", configFile, "--outcome", "abnormal", "--limit", "1000", "--json"]), "sessions list --outcome abnormal");
    assert.equal(abnormal.length, SESSIONS_CUT_OFF, `one per pgbench client: ${JSON.stringify(abnormal, null, 1)}`);
    for (const s of abnormal) {
      assert.equal(s.sub, SUB);
      assert.equal(s.end_reason, ABANDONED_REASON);
      assert.ok(s.end_reason?.startsWith("abnormal"));
      const closes = records.filter((x) => x.type === "session_close" && x.session === s.id);
      assert.deepEqual(closes.map((x) => x.data.reason), [ABANDONED_REASON], `session ${s.id}: one session_close record, abnormal`);
    }
    // The rest (pgbench's setup connections) closed normally before the crash; nothing is left live.
    const others = ourSessions.filter((s) => !abnormal.some((a) => a.id === s.id));
    assert.deepEqual(others.map((s) => s.end_reason), RUNS.map(() => "client_closed"));
    const live = json<SessionJson[]>(await cli(["sessions", "list", "-c", configFile, "--live", "--json"]), "sessions list --live");
    assert.deepEqual(live, []);
    // The restart's gateway_start counts them.
    const starts = records.filter((x) => x.type === "gateway_start");
    assert.equal(starts.at(-1)!.data.abandoned_sessions, SESSIONS_CUT_OFF);
  });
});
