/**
 * A throwaway PgBouncer in session pooling mode in front of a LocalPostgres, on a free loopback
 * port: the reference point for "what does any extra hop in front of PostgreSQL cost".
 *
 * PgBouncer refuses to run as root, so (like LocalPostgres) it runs as the `postgres` system
 * user when we are root, with its config, auth file, log and pid file in a temp folder that
 * user owns. It is spawned with that uid/gid directly (what `runuser -u postgres -- pgbouncer`
 * does, without a wrapper process in between), so our signals reach it.
 *
 * Clients authenticate with SCRAM-SHA-256 against the role's SCRAM secret copied from
 * pg_authid (no plaintext password on disk); PgBouncer then logs in to PostgreSQL with the keys
 * that client exchange proved (SCRAM pass-through), and in session mode keeps the server
 * connection for the next client.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PgBouncerOptions {
  /** PostgreSQL to pool. */
  serverHost: string;
  serverPort: number;
  /** Databases exposed under the same name on the bouncer. */
  databases: string[];
  /** `"user" "secret"` pairs for the auth file; secret a SCRAM verifier, md5 hash or plaintext. */
  users: { name: string; secret: string }[];
  authType?: "scram-sha-256" | "md5";
  poolSize?: number;
  binary?: string;
}

export class PgBouncer {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly host: string,
    readonly port: number,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(o: PgBouncerOptions): Promise<PgBouncer> {
    const binary = o.binary ?? findPgBouncer();
    const runAs = process.getuid?.() === 0 ? postgresUser() : undefined;
    const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-pgbouncer-"));
    const host = "127.0.0.1";
    try {
      const port = await freeLoopbackPort();
      const authFile = join(dir, "userlist.txt");
      const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
      writeFileSync(authFile, o.users.map((u) => `${quote(u.name)} ${quote(u.secret)}\n`).join(""), { mode: 0o600 });
      const ini = [
        "[databases]",
        ...o.databases.map((db) => `${db} = host=${o.serverHost} port=${o.serverPort} dbname=${db}`),
        "",
        "[pgbouncer]",
        `listen_addr = ${host}`,
        `listen_port = ${port}`,
        // No unix socket: nothing to collide on (same as LocalPostgres).
        "unix_socket_dir =",
        `auth_type = ${o.authType ?? "scram-sha-256"}`,
        `auth_file = ${authFile}`,
        "pool_mode = session",
        `default_pool_size = ${o.poolSize ?? 20}`,
        "max_client_conn = 200",
        // libpq-based clients other than pgbench send it; harmless to accept.
        "ignore_startup_parameters = extra_float_digits",
        `logfile = ${join(dir, "pgbouncer.log")}`,
        `pidfile = ${join(dir, "pgbouncer.pid")}`,
        "",
      ].join("\n");
      const iniFile = join(dir, "pgbouncer.ini");
      writeFileSync(iniFile, ini, { mode: 0o600 });
      if (runAs) for (const p of [dir, authFile, iniFile]) chownSync(p, runAs.uid, runAs.gid);

      const child = spawn(binary, [iniFile], {
        cwd: dir,
        stdio: ["ignore", "ignore", "pipe"],
        ...(runAs ?? {}),
      });
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      let exited: string | undefined;
      child.once("exit", (code, signal) => (exited = `exit ${code ?? signal}`));
      child.once("error", (err) => (exited = err.message));
      const deadline = Date.now() + 10_000;
      while (!(await canConnect(host, port))) {
        if (exited) throw new Error(`pgbouncer did not start (${exited}):\n${stderr}${logTail(dir)}`);
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          throw new Error(`pgbouncer not listening on ${host}:${port} after 10 s:\n${stderr}${logTail(dir)}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      return new PgBouncer(host, port, dir, child);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  logTail(lines = 20): string {
    return logTail(this.dir, lines);
  }

  /** SIGTERM is PgBouncer's immediate shutdown; SIGKILL if it lingers. Removes the folder. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const child = this.child;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once("exit", () => r()));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.stopping;
  }

  /** For a process-exit hook, which cannot wait. */
  killNow(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function findPgBouncer(): string {
  for (const p of ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]) if (existsSync(p)) return p;
  return "pgbouncer";
}

function postgresUser(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }));
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }));
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
  } catch {
    // fall through
  }
  throw new Error("pgbouncer refuses to run as root and there is no 'postgres' system user to run it as");
}

function logTail(dir: string, lines = 20): string {
  try {
    return readFileSync(join(dir, "pgbouncer.log"), "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host, port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
