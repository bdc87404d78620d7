/**
 * Running real PostgreSQL client programs (psql, pgbench, the system Python with psycopg2) from
 * tests: locating them, a clean libpq environment, and results that carry stderr into assertion
 * messages. A missing client is an error, never a skip: CI installs them all.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import { performance } from "node:perf_hooks";

/** The Debian python3 with python3-psycopg2; `python3` on PATH may be a pyenv build without it. */
export const SYSTEM_PYTHON = "/usr/bin/python3";

export interface RunResult {
  command: string;
  /** Exit code; null when killed (timeout, signal) or not started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  /** Set when the program could not be started at all (ENOENT...). */
  spawnError?: string;
  ms: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs a program to completion; never throws (the result says what happened). */
export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const t0 = performance.now();
  const timeout = opts.timeoutMs ?? 60_000;
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: opts.env, cwd: opts.cwd, timeout, killSignal: "SIGKILL", maxBuffer: 256 * 1024 * 1024, encoding: "buffer" },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: NodeJS.Signals }) | null;
        const spawnFailed = typeof e?.code === "string";
        resolve({
          command: [file, ...args].join(" "),
          code: e ? (typeof e.code === "number" ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout: Buffer.isBuffer(stdout) ? stdout : Buffer.from(stdout ?? ""),
          stderr: Buffer.isBuffer(stderr) ? stderr : Buffer.from(stderr ?? ""),
          timedOut: Boolean(e?.killed) && performance.now() - t0 >= timeout - 50,
          ...(spawnFailed ? { spawnError: `${e!.code}: ${e!.message}` } : {}),
          ms: Math.round(performance.now() - t0),
        });
      },
    );
  });
}

/** A one-paragraph account of a run, for assertion messages. */
export function describeRun(r: RunResult, stdoutChars = 2000): string {
  const out = r.stdout.toString("utf8");
  return [
    `command: ${r.command}`,
    `exit: ${r.code}${r.signal ? ` signal ${r.signal}` : ""}${r.timedOut ? " (timed out)" : ""}${r.spawnError ? ` spawn error ${r.spawnError}` : ""} after ${r.ms} ms`,
    `stderr:\n${r.stderr.toString("utf8").trimEnd() || "(empty)"}`,
    `stdout (first ${stdoutChars} chars):\n${out.slice(0, stdoutChars).trimEnd() || "(empty)"}`,
  ].join("\n");
}

/** Throws with the full story unless the program exited 0. */
export function assertSuccess(r: RunResult, what: string): void {
  if (r.code !== 0) throw new Error(`${what} failed\n${describeRun(r)}`);
}

function postgresBinDirs(): string[] {
  const dirs: string[] = [];
  try {
    dirs.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
  } catch {
    // no pg_config on PATH
  }
  try {
    const versions = readdirSync("/usr/lib/postgresql").filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    dirs.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  } catch {
    // not the Debian layout
  }
  dirs.push(...(process.env.PATH ?? "").split(delimiter).filter(Boolean));
  return dirs;
}

/** Absolute path of a PostgreSQL client program (psql, pgbench); throws a clear error when absent. */
export function requirePostgresClient(name: "psql" | "pgbench"): string {
  for (const d of postgresBinDirs()) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  throw new Error(
    `${name} is not installed (looked in pg_config --bindir, /usr/lib/postgresql/*/bin and PATH); ` +
      `install them (Debian: psql is in postgresql-client-15, pgbench in postgresql-15)`,
  );
}

/** Throws a clear error unless the system Python can import psycopg2. */
export function requirePsycopg2(): string {
  if (!existsSync(SYSTEM_PYTHON)) {
    throw new Error(`${SYSTEM_PYTHON} is missing; install python3 and python3-psycopg2 (Debian packages)`);
  }
  try {
    return execFileSync(SYSTEM_PYTHON, ["-c", "import psycopg2; print(psycopg2.__version__)"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: pythonEnv({}),
    }).trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`psycopg2 is not importable by ${SYSTEM_PYTHON}; install python3-psycopg2 (Debian): ${e.stderr?.trim() || e.message}`);
  }
}

export interface LibpqTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  sslmode?: "disable" | "prefer" | "require";
}

/**
 * The environment libpq programs get: the caller's, minus any PG* variable that could steer
 * them elsewhere, with a fixed locale and client encoding so output bytes are comparable.
 */
export function libpqEnv(t: LibpqTarget, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PG") && !k.startsWith("PYTHON")) env[k] = v;
  return {
    ...env,
    LC_ALL: "C.UTF-8",
    LANG: "C.UTF-8",
    PGHOST: t.host,
    PGPORT: String(t.port),
    PGUSER: t.user,
    PGPASSWORD: t.password,
    PGDATABASE: t.database,
    PGSSLMODE: t.sslmode ?? "prefer",
    PGCLIENTENCODING: "UTF8",
    PGCONNECT_TIMEOUT: "10",
    ...extra,
  };
}

/** The system Python's environment: no pyenv/virtualenv variables leaking in. */
export function pythonEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (k.startsWith("PYTHON") || k.startsWith("PYENV") || k === "VIRTUAL_ENV") continue;
    env[k] = v;
  }
  env.PYTHONIOENCODING = "utf-8";
  env.PYTHONDONTWRITEBYTECODE = "1";
  return env;
}
