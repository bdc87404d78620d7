/**
 * Runs pgbench as a child process and reads back what it measured: the summary it prints
 * (tps, latency average, connection time, per-statement latencies with -r) and every
 * transaction's latency from its per-transaction log (-l), from which we compute percentiles
 * ourselves (pgbench's own summary has no percentiles).
 *
 * Per-transaction log format (pgbench 15, "Per-Transaction Logging" in the pgbench docs):
 *   client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]
 * where `time` is the transaction's total elapsed time in microseconds (or "failed" /
 * "skipped" for transactions that did not complete). With -j N, thread i > 0 writes to
 * `<prefix>.<pid>.<i>`; we read every file in the run's own folder.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

export interface Endpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** libpq sslmode. */
  sslmode: "disable" | "prefer" | "require";
}

export interface PgbenchRunOptions {
  endpoint: Endpoint;
  clients: number;
  threads: number;
  seconds: number;
  protocol: "simple" | "extended" | "prepared";
  /** -C: a new connection for every transaction. */
  connectPerTransaction?: boolean;
  /** Folder for this run's transaction logs; created, read, then removed. */
  logDir: string;
  /** A custom script file (`-f`) instead of the built-in select-only script (`-S`, the default). */
  scriptFile?: string;
}

export interface StatementLatency {
  /** Average latency of the statement, ms (pgbench -r). */
  ms: number;
  statement: string;
}

export interface PgbenchResult {
  /** pgbench's own tps line (without initial connection time, or including reconnects with -C). */
  tps: number;
  transactions: number;
  failed: number;
  /** pgbench's "latency average", ms. */
  latencyAvgMs: number | undefined;
  /** "initial connection time" (ms, once per client) or, with -C, "average connection time" (ms). */
  connectionTimeMs: number | undefined;
  statements: StatementLatency[];
  /** Every completed transaction's latency, µs, in log order. */
  latenciesUs: Float64Array;
  /**
   * Time between one transaction's completion and the next one's on the same client, µs: with
   * -C that is a whole cycle of connect + transaction + disconnect, which the transaction
   * latency alone leaves out (pgbench starts a transaction's clock after connecting).
   */
  cyclesUs: Float64Array;
  wallMs: number;
  stdout: string;
  stderr: string;
}

/** libpq environment for an endpoint; the caller's own PG* variables are dropped so they cannot steer a run. */
export function libpqEnv(e: Endpoint): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PG")) env[k] = v;
  // The password (a token, for the gateway) goes through the environment, never argv where `ps` shows it.
  Object.assign(env, {
    PGHOST: e.host,
    PGPORT: String(e.port),
    PGUSER: e.user,
    PGPASSWORD: e.password,
    PGDATABASE: e.database,
    PGSSLMODE: e.sslmode,
    PGCONNECT_TIMEOUT: "10",
    PGAPPNAME: "portcullis-bench",
  });
  return env;
}

/** The child (pgbench or psql) running now, so a SIGINT handler can stop it. */
let current: ChildProcess | undefined;

export function killRunningPgbench(): void {
  if (current && current.exitCode === null && current.signalCode === null) current.kill("SIGINT");
}

export interface RunChildOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** "ignore": the child's stdout goes to /dev/null, never through this process (default "pipe"). */
  stdout?: "pipe" | "ignore";
  /** Keep collecting stderr only while it is shorter than this many characters (default: all of it). */
  maxStderr?: number;
}

/** Runs a child, the one killRunningPgbench() stops; resolves when it exits, with what it printed. */
export function runChild(cmd: string, args: string[], o: RunChildOptions): Promise<{ code: number; stdout: string; stderr: string; wallMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: o.env, stdio: ["ignore", o.stdout ?? "pipe", "pipe"] });
    current = child;
    let stdout = "";
    let stderr = "";
    const maxStderr = o.maxStderr ?? Number.POSITIVE_INFINITY;
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => {
      if (stderr.length < maxStderr) stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      current = undefined;
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr, wallMs: performance.now() - t0 });
    });
  });
}

export function runCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string; wallMs: number }> {
  return runChild(cmd, args, { env, timeoutMs });
}

/** -j: one pgbench thread per client up to the machine's 2 cores. */
export const threadsFor = (clients: number) => Math.max(1, Math.min(clients, 2));

export async function pgbench(o: PgbenchRunOptions): Promise<PgbenchResult> {
  rmSync(o.logDir, { recursive: true, force: true });
  mkdirSync(o.logDir, { recursive: true });
  const args = [
    "-n", ...(o.scriptFile ? ["-f", o.scriptFile] : ["-S"]), "-r",
    "-c", String(o.clients), "-j", String(o.threads),
    "-T", String(o.seconds), "-M", o.protocol,
    "-l", `--log-prefix=${join(o.logDir, "tx")}`,
    ...(o.connectPerTransaction ? ["-C"] : []),
  ];
  const { code, stdout, stderr, wallMs } = await runCommand("pgbench", args, libpqEnv(o.endpoint), (o.seconds + 60) * 1000);
  try {
    if (code !== 0) {
      throw new Error(`pgbench ${args.join(" ")} against ${o.endpoint.host}:${o.endpoint.port} exited ${code}:\n${(stderr || stdout).trim().split("\n").slice(-15).join("\n")}`);
    }
    const summary = parseSummary(stdout);
    return { ...summary, ...readTransactionLogs(o.logDir), wallMs, stdout, stderr };
  } finally {
    rmSync(o.logDir, { recursive: true, force: true });
  }
}

function num(text: string, re: RegExp): number | undefined {
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

export function parseSummary(stdout: string): Omit<PgbenchResult, "latenciesUs" | "cyclesUs" | "wallMs" | "stdout" | "stderr"> {
  const tps = num(stdout, /^tps = ([\d.]+)/m);
  if (tps === undefined) throw new Error(`pgbench printed no tps line:\n${stdout}`);
  const statements: StatementLatency[] = [];
  const block = /^statement latencies in milliseconds.*:\n((?:\s+[\d.]+.*\n?)+)/m.exec(stdout);
  if (block) {
    for (const line of block[1]!.split("\n")) {
      // "         0.059           0  SELECT abalance ..." (pgbench 15: latency, failures, command)
      const m = /^\s+([\d.]+)\s+(?:\d+\s+)?(.*)$/.exec(line);
      if (m) statements.push({ ms: Number(m[1]), statement: m[2]!.trim() });
    }
  }
  return {
    tps,
    transactions: num(stdout, /^number of transactions actually processed: (\d+)/m) ?? 0,
    failed: num(stdout, /^number of failed transactions: (\d+)/m) ?? 0,
    latencyAvgMs: num(stdout, /^latency average = ([\d.]+) ms/m),
    connectionTimeMs: num(stdout, /^(?:initial|average) connection time = ([\d.]+) ms/m),
    statements,
  };
}

/**
 * Third field of every log line (µs), and per client the gaps between consecutive completion
 * stamps (fields 5 and 6). Lines for failed or skipped transactions count for neither.
 */
export function readTransactionLogs(dir: string): { latenciesUs: Float64Array; cyclesUs: Float64Array } {
  const latencies: number[] = [];
  const cycles: number[] = [];
  const lastDone = new Map<string, number>();
  for (const name of readdirSync(dir)) {
    const text = readFileSync(join(dir, name), "latin1");
    let at = 0;
    while (at < text.length) {
      let end = text.indexOf("\n", at);
      if (end < 0) end = text.length;
      // Field boundaries of the first six space-separated fields.
      const sp: number[] = [at - 1];
      for (let i = at; i < end && sp.length < 7; i++) if (text.charCodeAt(i) === 32) sp.push(i);
      if (sp.length < 6) { at = end + 1; continue; }
      sp.push(end);
      const field = (k: number) => text.slice(sp[k]! + 1, sp[k + 1]!);
      const us = Number(field(2));
      if (Number.isFinite(us)) {
        latencies.push(us);
        const client = field(0);
        const done = Number(field(4)) * 1e6 + Number(field(5));
        const prev = lastDone.get(client);
        if (prev !== undefined) cycles.push(done - prev);
        lastDone.set(client, done);
      }
      at = end + 1;
    }
  }
  return { latenciesUs: Float64Array.from(latencies), cyclesUs: Float64Array.from(cycles) };
}

/** "pgbench (PostgreSQL) 15.18 (Debian ...)" → the version string. */
export async function toolVersion(cmd: string, args: string[] = ["--version"]): Promise<string> {
  try {
    const { stdout, stderr } = await runCommand(cmd, args, process.env, 10_000);
    return (stdout || stderr).trim().split("\n")[0] ?? "?";
  } catch {
    return "not found";
  }
}
