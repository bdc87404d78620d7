/**
 * The scaffolding every PostgreSQL benchmark script shares: environment knobs, a log on stderr,
 * a registry of things to stop (run in reverse on success, error, SIGINT and SIGTERM, so nothing
 * started outlives the run), what code and machine a run measured, and the result file.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, type TestTarget } from "../../packages/portcullis/test/support/gateway.js";
import type { LogLevel } from "./gateway.js";
import { type Endpoint, killRunningPgbench } from "./pgbench.js";
import type { LatencySummary } from "./stats.js";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

// ---- configuration ----

export function envInt(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min} (got "${raw}")`);
  return v;
}

export function envList<T extends string>(name: string, fallback: T[], allowed?: readonly T[]): T[] {
  const raw = process.env[name];
  if (!raw) return fallback;
  const items = raw.split(",").map((s) => s.trim()).filter(Boolean) as T[];
  if (allowed) for (const i of items) if (!allowed.includes(i)) throw new Error(`${name}: "${i}" is not one of ${allowed.join(", ")}`);
  return items;
}

/** BENCH_CLIENTS: comma list of pgbench client counts (default "1,8"). */
export function envClients(): number[] {
  return envList("BENCH_CLIENTS", ["1", "8"]).map((c) => {
    const n = Number(c);
    if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_CLIENTS: "${c}" is not a positive integer`);
    return n;
  });
}

export type Protocol = "simple" | "extended" | "prepared";

/** BENCH_PROTOCOLS: comma list of pgbench -M modes (default "simple,extended"). */
export function envProtocols(): Protocol[] {
  return envList("BENCH_PROTOCOLS", ["simple", "extended"] as Protocol[], ["simple", "extended", "prepared"] as const);
}

/** BENCH_GATEWAY_LOG_LEVEL: the gateway's log_level (default info, the production default). */
export function envGatewayLogLevel(): LogLevel {
  return (envList("BENCH_GATEWAY_LOG_LEVEL", ["info"], ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const)[0] ?? "info") as LogLevel;
}

// ---- lifecycle: everything started is stopped, also on error and SIGINT/SIGTERM ----

const cleanups: { name: string; run: () => Promise<void> }[] = [];
let cleaning: Promise<void> | undefined;
let interrupted = false;

/** Registers something to stop; stopped in reverse order of registration. */
export function onCleanup(name: string, run: () => Promise<void>): void {
  cleanups.push({ name, run });
}

function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    killRunningPgbench();
    for (const c of cleanups.reverse()) {
      try {
        await c.run();
      } catch (err) {
        console.error(`bench: stopping ${c.name} failed: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}

/** Runs a benchmark's main: failure sets exit code 1, and everything registered is stopped in any case. */
export async function runBench(main: () => Promise<void>): Promise<void> {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.once(signal, () => {
      interrupted = true;
      console.error(`\nbench: ${signal}, stopping everything...`);
      void cleanupAll().finally(() => process.exit(code));
    });
  }
  try {
    await main();
  } catch (err) {
    if (!interrupted) console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  } finally {
    await cleanupAll();
  }
}

/** A fresh temporary folder, removed at the end of the run. */
export function workDir(prefix: string): string {
  const work = mkdtempSync(join(tmpdir(), prefix));
  onCleanup("work dir", async () => rmSync(work, { recursive: true, force: true }));
  return work;
}

// ---- helpers ----

export const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

export interface CodeState {
  commit?: string;
  uncommittedSourceFiles?: string[];
}

/** The commit, and the gateway source files that differ from it: what code this run measured. Read-only git. */
export function gitState(root: string = repoRoot): CodeState {
  const git = (args: string[]) =>
    execFileSync("git", ["--no-optional-locks", ...args], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    return {
      commit: git(["rev-parse", "--short", "HEAD"]),
      uncommittedSourceFiles: git(["status", "--porcelain", "--", "packages/portcullis/src"]).split("\n").filter(Boolean),
    };
  } catch {
    return {};
  }
}

/** gitState(), logged. Call it before the gateway's modules load: the code measured is the code at this moment. */
export function logCodeState(): CodeState {
  const code = gitState();
  log(`code: commit ${code.commit ?? "?"}${uncommittedNote(code)}`);
  return code;
}

/** " + N uncommitted gateway source file(s)", or "" when the tree is clean (or unknown). */
export function uncommittedNote(code: CodeState): string {
  return code.uncommittedSourceFiles?.length ? ` + ${code.uncommittedSourceFiles.length} uncommitted gateway source file(s)` : "";
}

/** The machine, for the record (the first fields of a result's `environment`). */
export function machine(): { cpus: number; cpuModel: string; memoryGiB: number; kernel: string; node: string } {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "?",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
  };
}

/** The 1, 5 and 15 minute load averages, two decimals. */
export const loadavgRounded = () => loadavg().map((v) => Math.round(v * 100) / 100);

/** "N × model, M GiB, Linux kernel; Node version": the start of a run's Machine line. */
export function machineLine(m: ReturnType<typeof machine>): string {
  return `${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}; Node ${m.node}`;
}

// ---- results ----

/** What every pgbench round records, whichever benchmark runs it. */
export interface BaseRoundResult {
  round: number;
  tps: number;
  transactions: number;
  failed: number;
  p50Us: number;
  p99Us: number;
  selectMs: number | undefined;
  loadavg1Before: number;
  loadavg1After: number;
  gatewayWarnings?: number;
}

/** One target's rounds in a scenario, and their summary. */
export interface BaseTargetResult<T extends string, R extends BaseRoundResult> {
  target: T;
  rounds: R[];
  tpsMedian: number;
  tpsMin: number;
  tpsMax: number;
  /** All rounds' transactions pooled into one distribution, µs. */
  latency: LatencySummary;
}

/** One pgbench scenario (clients × protocol), every target measured in it. */
export interface BaseScenarioResult<TR> {
  name: string;
  clients: number;
  threads: number;
  protocol: string;
  seconds: number;
  targets: TR[];
}

/** Writes bench/results/<benchmark>-<start time>.json: benchmark, startedAt, finishedAt, durationS, then `body`. */
export function writeResult(benchmark: string, started: Date, finished: Date, body: Record<string, unknown>): void {
  const resultsDir = join(repoRoot, "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${benchmark}-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify({
    benchmark,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationS: durationS(started, finished),
    ...body,
  }, null, 2)}\n`);
  log(`results: ${relative(process.cwd(), file)}`);
}

export const durationS = (started: Date, finished: Date) => Math.round((finished.getTime() - started.getTime()) / 1000);

// ---- PostgreSQL ----

/**
 * The test harness's target (database `app` owned by a SCRAM-authenticated user; fsync off, no
 * server TLS), stopped at the end of the run, with its version and the direct endpoint to it.
 */
export async function startPostgres(): Promise<{ target: TestTarget; serverVersion: string; direct: Endpoint }> {
  log("starting PostgreSQL...");
  const target = await startTarget();
  onCleanup("postgres", () => target.stop());
  const pg = target.pg;
  const serverVersion = String((await pg.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0]?.v ?? "?");
  log(`PostgreSQL ${serverVersion} on ${pg.host}:${pg.port} (started in ${Math.round(pg.startupMs)} ms)`);
  const direct: Endpoint = { host: pg.host, port: pg.port, user: UPSTREAM_USER, password: UPSTREAM_PASSWORD, database: "app", sslmode: "disable" };
  return { target, serverVersion, direct };
}
