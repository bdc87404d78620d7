/**
 * A throwaway real PostgreSQL server for tests, benchmarks and the quickstart's sample target.
 * Tests use the real thing (docs/architecture), so this has to be fast (initdb --no-sync,
 * fsync off), isolated (own data dir, a free loopback port, no unix socket) and leave nothing
 * behind (stopped and removed on stop(), or at process exit if a test forgot).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import type { ClientConfig } from "pg";

export type LocalPostgresAuthMethod = "scram-sha-256" | "md5" | "trust";

export interface LocalPostgresUser {
  name: string;
  password: string;
  superuser?: boolean;
}

export interface LocalPostgresDatabase {
  name: string;
  owner?: string;
}

export interface LocalPostgresOptions {
  /** The instance's own folder (created if absent, must be empty); default a fresh one under os.tmpdir(). */
  dir?: string;
  /** 0 or absent: a free loopback port. */
  port?: number;
  /** Superuser created by initdb; default `postgres` with a random password. */
  superuser?: { name?: string; password?: string };
  users?: LocalPostgresUser[];
  databases?: LocalPostgresDatabase[];
  /** pg_hba method for TCP connections; default scram-sha-256. md5 also stores new passwords as md5. */
  authMethod?: LocalPostgresAuthMethod;
  /** Extra `-c name=value` server settings; they override ours. */
  settings?: Record<string, string>;
  /** ssl=on with a self-signed certificate for 127.0.0.1/localhost made by the openssl CLI. */
  ssl?: boolean;
  /** Keep the folder after stop() (for post-mortems). */
  keep?: boolean;
  /** Default: findPostgresBinDir(). */
  binDir?: string;
  /** Default 20000. */
  startTimeoutMs?: number;
}

export interface LocalPostgresSsl {
  certFile: string;
  keyFile: string;
  /** The self-signed certificate, PEM: pass it as `ca` to verify the server. */
  certPem: string;
}

interface RunAs {
  uid: number;
  gid: number;
}

const HOST = "127.0.0.1";
const LOG_TAIL_LINES = 30;

/** The folder holding `initdb` and `postgres`, or undefined when this machine has no server. */
export function findPostgresBinDir(): string | undefined {
  return postgresBinDirCandidates().find((d) => existsSync(join(d, "initdb")) && existsSync(join(d, "postgres")));
}

function postgresBinDirCandidates(): string[] {
  const out: string[] = [];
  try {
    out.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
  } catch {
    // no pg_config on PATH: fall through to the Debian/Ubuntu layout
  }
  try {
    const versions = readdirSync("/usr/lib/postgresql")
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    out.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  } catch {
    // not that layout
  }
  out.push(...(process.env.PATH ?? "").split(delimiter).filter(Boolean));
  return out;
}

export class LocalPostgres {
  readonly host = HOST;
  private startedInMs = 0;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly port: number,
    readonly superuser: { name: string; password: string },
    readonly binDir: string,
    /** The instance folder; the cluster is in `dataDir`, the server log in `logFile`. */
    readonly dir: string,
    readonly dataDir: string,
    readonly logFile: string,
    readonly ssl: LocalPostgresSsl | undefined,
    private readonly server: ChildProcess,
    private readonly cleanup: () => void,
  ) {}

  static async start(opts: LocalPostgresOptions = {}): Promise<LocalPostgres> {
    const t0 = performance.now();
    const binDir = opts.binDir ?? findPostgresBinDir();
    if (!binDir) {
      throw new Error("LocalPostgres: no PostgreSQL server binaries found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH)");
    }
    const runAs = serverUser();
    const authMethod = opts.authMethod ?? "scram-sha-256";
    const superuser = {
      name: opts.superuser?.name ?? "postgres",
      password: opts.superuser?.password ?? randomBytes(18).toString("base64url"),
    };
    const { dir, cleanup } = prepareDir(opts.dir, opts.keep ?? false);
    const dataDir = join(dir, "data");
    const logFile = join(dir, "postgres.log");
    try {
      if (runAs) {
        chownSync(dir, runAs.uid, runAs.gid);
        assertTraversable(dir, runAs);
      }
      await initdb(binDir, dir, dataDir, superuser, authMethod, runAs);
      writeHba(dataDir, authMethod);
      const ssl = opts.ssl ? makeCertificate(dataDir, runAs) : undefined;
      const settings: Record<string, string> = {
        listen_addresses: HOST,
        // No unix socket: nothing to collide on, and no socket path length limit to hit.
        unix_socket_directories: "",
        // Throwaway data: durability only costs time.
        fsync: "off",
        synchronous_commit: "off",
        full_page_writes: "off",
        ...(authMethod === "md5" ? { password_encryption: "md5" } : {}),
        ...(ssl ? { ssl: "on", ssl_cert_file: ssl.certFile, ssl_key_file: ssl.keyFile } : {}),
        ...opts.settings,
      };
      const timeoutMs = opts.startTimeoutMs ?? 20_000;

      let server: ChildProcess | undefined;
      let port = 0;
      // A port found free can be taken before postgres binds it (parallel test files): retry once.
      for (let attempt = 0; !server; attempt++) {
        port = opts.port || (await freeLoopbackPort());
        try {
          server = await launch(binDir, dir, dataDir, logFile, port, settings, runAs, timeoutMs);
        } catch (err) {
          if (!(err instanceof PortInUseError) || opts.port || attempt >= 1) throw err;
        }
      }

      const pg = new LocalPostgres(port, superuser, binDir, dir, dataDir, logFile, ssl, server, cleanup);
      pg.trackUntilExit();
      try {
        await pg.provision(opts.users ?? [], opts.databases ?? [], authMethod);
      } catch (err) {
        await pg.stop();
        throw err;
      }
      pg.startedInMs = performance.now() - t0;
      return pg;
    } catch (err) {
      cleanup();
      throw err;
    }
  }

  /** Wall time start() took, in ms. */
  get startupMs(): number {
    return this.startedInMs;
  }

  /** libpq environment for psql, pgbench and friends. */
  psqlEnv(user: { name: string; password: string } = this.superuser, database = "postgres"): Record<string, string> {
    return {
      PGHOST: this.host,
      PGPORT: String(this.port),
      PGUSER: user.name,
      PGPASSWORD: user.password,
      PGDATABASE: database,
    };
  }

  /** node-postgres config; add `ssl` yourself to test TLS. */
  clientConfig(user: { name: string; password: string } = this.superuser, database = "postgres"): ClientConfig {
    return { host: this.host, port: this.port, user: user.name, password: user.password, database };
  }

  connectionString(user: { name: string; password: string } = this.superuser, database = "postgres"): string {
    const u = encodeURIComponent(user.name);
    const p = encodeURIComponent(user.password);
    return `postgresql://${u}:${p}@${this.host}:${this.port}/${encodeURIComponent(database)}`;
  }

  /**
   * Runs SQL as the superuser on the `postgres` database; returns the rows. A connection per
   * call: this is for setup, and a pooled socket would keep a test process alive after a
   * forgotten stop().
   */
  async query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]> {
    if (this.stopping) throw new Error("LocalPostgres: stopped");
    const pg = (await import("pg")).default;
    const client = new pg.Client(this.clientConfig());
    client.on("error", () => undefined); // a server-side drop surfaces through the awaited query
    try {
      await client.connect();
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** The last lines of the server log, for failure messages. */
  logTail(lines = LOG_TAIL_LINES): string {
    return tail(this.logFile, lines);
  }

  /** Fast shutdown (rolls back open transactions, disconnects clients), then removes the folder unless `keep`. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await shutdown(this.server);
      live.delete(this);
      this.cleanup();
    })();
    return this.stopping;
  }

  /**
   * A forgotten stop() must neither hang the test runner (so the server is unref'd) nor leave a
   * server running (so process exit shuts it down).
   */
  private trackUntilExit(): void {
    this.server.unref();
    live.add(this);
    if (exitHookInstalled) return;
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const pg of live) {
        // Exit handlers cannot wait: immediate shutdown, then best-effort removal.
        pg.server.kill("SIGQUIT");
        try {
          pg.cleanup();
        } catch {
          // the dying server may still be writing; a stray temp folder beats a crash at exit
        }
      }
    });
  }

  private async provision(users: LocalPostgresUser[], databases: LocalPostgresDatabase[], auth: LocalPostgresAuthMethod): Promise<void> {
    if (users.length === 0 && databases.length === 0 && auth !== "md5") return;
    const { escapeIdentifier: id, escapeLiteral: lit } = (await import("pg")).default;
    // initdb hashed the superuser's password with SCRAM; re-set it so md5 mode is md5 throughout.
    if (auth === "md5") await this.query(`ALTER ROLE ${id(this.superuser.name)} PASSWORD ${lit(this.superuser.password)}`);
    for (const u of users) {
      await this.query(`CREATE ROLE ${id(u.name)} LOGIN PASSWORD ${lit(u.password)}${u.superuser ? " SUPERUSER" : ""}`);
    }
    for (const d of databases) {
      await this.query(`CREATE DATABASE ${id(d.name)}${d.owner ? ` OWNER ${id(d.owner)}` : ""}`);
    }
  }
}

// ---- process plumbing ----

class PortInUseError extends Error {}

/** Instances still running, stopped at process exit so a failed test leaves no server behind. */
const live = new Set<LocalPostgres>();
let exitHookInstalled = false;

/** PostgreSQL refuses to run as root: then initdb and postgres run as the `postgres` system user. */
function serverUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
  } catch {
    // fall through
  }
  throw new Error("LocalPostgres: running as root, and PostgreSQL refuses root; create a 'postgres' system user to run it as");
}

function prepareDir(dir: string | undefined, keep: boolean): { dir: string; cleanup: () => void } {
  if (!dir) {
    const made = mkdtempSync(join(tmpdir(), "portcullis-pg-"));
    return { dir: made, cleanup: keep ? () => {} : () => rmSync(made, { recursive: true, force: true }) };
  }
  const abs = resolve(dir);
  const existed = existsSync(abs);
  if (existed && readdirSync(abs).length > 0) throw new Error(`LocalPostgres: ${abs} is not empty`);
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  const cleanup = (): void => {
    if (keep) return;
    // Remove only what we made: the folder if we created it, else its contents.
    if (!existed) rmSync(abs, { recursive: true, force: true });
    else for (const name of readdirSync(abs)) rmSync(join(abs, name), { recursive: true, force: true });
  };
  return { dir: abs, cleanup };
}

/** The server user must be able to reach its data dir; say so plainly instead of letting initdb fail obscurely. */
function assertTraversable(dir: string, who: RunAs): void {
  for (let p = dirname(dir); ; p = dirname(p)) {
    const st = statSync(p);
    const ok = (st.mode & 0o001) || (st.uid === who.uid && st.mode & 0o100) || (st.gid === who.gid && st.mode & 0o010);
    if (!ok) throw new Error(`LocalPostgres: the postgres user cannot enter ${p}; put the instance dir under a world-traversable path such as ${tmpdir()}`);
    if (p === dirname(p)) return;
  }
}

function serverEnv(): NodeJS.ProcessEnv {
  // Stray PG* variables (PGDATA, PGPORT...) from the caller must not steer our cluster.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PG")) env[k] = v;
  env.LC_ALL = "C";
  return env;
}

async function initdb(
  binDir: string,
  dir: string,
  dataDir: string,
  superuser: { name: string; password: string },
  auth: LocalPostgresAuthMethod,
  runAs: RunAs | undefined,
): Promise<void> {
  // The password goes through a file, never argv, where `ps` would show it.
  const pwfile = join(dir, ".pwfile");
  writeFileSync(pwfile, `${superuser.password}\n`, { mode: 0o600 });
  if (runAs) chownSync(pwfile, runAs.uid, runAs.gid);
  try {
    const args = ["-D", dataDir, "-U", superuser.name, `--pwfile=${pwfile}`, `--auth=${auth}`, "--no-sync", "-E", "UTF8", "--locale=C"];
    const { code, output } = await run(join(binDir, "initdb"), args, dir, runAs);
    if (code !== 0) throw new Error(`LocalPostgres: initdb failed (exit ${code}):\n${lastLines(output, LOG_TAIL_LINES)}`);
  } finally {
    rmSync(pwfile, { force: true });
  }
}

function writeHba(dataDir: string, auth: LocalPostgresAuthMethod): void {
  // Loopback TCP only; there is no unix socket to authenticate.
  writeFileSync(
    join(dataDir, "pg_hba.conf"),
    ["# written by LocalPostgres", `host all all 127.0.0.1/32 ${auth}`, `host all all ::1/128 ${auth}`, ""].join("\n"),
  );
}

function makeCertificate(dataDir: string, runAs: RunAs | undefined): LocalPostgresSsl {
  const certFile = join(dataDir, "server.crt");
  const keyFile = join(dataDir, "server.key");
  try {
    // P-256 rather than RSA: key generation is instant.
    execFileSync(
      "openssl",
      [
        "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", keyFile, "-out", certFile, "-days", "7",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === "ENOENT") throw new Error("LocalPostgres: ssl needs the openssl CLI, which is not installed");
    throw new Error(`LocalPostgres: openssl could not make a certificate: ${e.stderr?.toString().trim() ?? e.message}`);
  }
  // The server refuses a key that others can read or that it does not own.
  chmodSync(keyFile, 0o600);
  if (runAs) {
    chownSync(keyFile, runAs.uid, runAs.gid);
    chownSync(certFile, runAs.uid, runAs.gid);
  }
  return { certFile, keyFile, certPem: readFileSync(certFile, "utf8") };
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolvePort(port));
    });
  });
}

async function launch(
  binDir: string,
  dir: string,
  dataDir: string,
  logFile: string,
  port: number,
  settings: Record<string, string>,
  runAs: RunAs | undefined,
  timeoutMs: number,
): Promise<ChildProcess> {
  const args = ["-D", dataDir, "-p", String(port)];
  for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
  const logFd = openSync(logFile, "a", 0o600);
  const logStart = statSync(logFile).size;
  let child: ChildProcess;
  try {
    // The postmaster is our direct child (spawn's uid/gid, not a runuser wrapper), so signals reach it.
    child = spawn(join(binDir, "postgres"), args, {
      cwd: dir,
      env: serverEnv(),
      stdio: ["ignore", logFd, logFd],
      ...(runAs ?? {}),
    });
  } finally {
    closeSync(logFd);
  }
  const started = child;
  let exitCode: number | null | undefined;
  let spawnError: Error | undefined;
  started.once("exit", (code, signal) => {
    exitCode = code ?? (signal ? -1 : null);
  });
  started.once("error", (err) => {
    spawnError = err;
  });

  const deadline = Date.now() + timeoutMs;
  const pidFile = join(dataDir, "postmaster.pid");
  for (;;) {
    if (spawnError) throw new Error(`LocalPostgres: could not run postgres: ${spawnError.message}`);
    if (exitCode !== undefined) {
      const log = readFileSync(logFile, "utf8").slice(logStart);
      if (/could not bind .*Address already in use|could not create any TCP\/IP sockets/i.test(log)) {
        throw new PortInUseError(`LocalPostgres: port ${port} on ${HOST} is already in use`);
      }
      throw new Error(`LocalPostgres: postgres exited during start (code ${exitCode}); log tail:\n${lastLines(log, LOG_TAIL_LINES)}`);
    }
    if (isReady(pidFile, started.pid)) break;
    if (Date.now() > deadline) {
      await shutdown(started);
      throw new Error(`LocalPostgres: postgres not ready after ${timeoutMs} ms; log tail:\n${tail(logFile, LOG_TAIL_LINES)}`);
    }
    await sleep(15);
  }
  return started;
}

/** What pg_ctl -w checks: line 8 of postmaster.pid says "ready" once connections are accepted. */
function isReady(pidFile: string, pid: number | undefined): boolean {
  let lines: string[];
  try {
    lines = readFileSync(pidFile, "utf8").split("\n");
  } catch {
    return false;
  }
  return lines[0]?.trim() === String(pid) && lines[7]?.trim() === "ready";
}

async function shutdown(child: ChildProcess): Promise<void> {
  // SIGINT = fast shutdown; escalate to immediate (SIGQUIT), then SIGKILL, if it hangs.
  for (const [signal, waitMs] of [["SIGINT", 10_000], ["SIGQUIT", 5_000], ["SIGKILL", 5_000]] as const) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    if (await exitWithin(child, waitMs)) return;
  }
}

function exitWithin(child: ChildProcess, ms: number): Promise<boolean> {
  return new Promise((resolveExit) => {
    const onExit = (): void => {
      clearTimeout(timer);
      resolveExit(true);
    };
    // Referenced timer: the event loop must stay alive until the server is really gone.
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolveExit(false);
    }, ms);
    child.once("exit", onExit);
  });
}

function run(cmd: string, args: string[], cwd: string, runAs: RunAs | undefined): Promise<{ code: number; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd, env: serverEnv(), stdio: ["ignore", "pipe", "pipe"], ...(runAs ?? {}) });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolveRun({ code: code ?? -1, output }));
  });
}

function tail(file: string, lines: number): string {
  try {
    return lastLines(readFileSync(file, "utf8"), lines);
  } catch {
    return "(no log)";
  }
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
