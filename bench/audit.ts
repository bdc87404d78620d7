/**
 * Audit and recording benchmark: what the write-ahead audit log and session recording cost on the
 * PostgreSQL data path.
 *
 * Every allowed statement is held by the gateway until its `decision` record is committed to the
 * SQLite store (WAL, synchronous=NORMAL); only then is it forwarded to PostgreSQL. The journal
 * groups everything queued within one event-loop turn, across sessions, into one transaction
 * (setImmediate). With recording on, each session's `op` and `result` events go out with the
 * same commits, as recording chunks. That costs the gateway two different things:
 *
 *   waiting  the statement is not forwarded until the next setImmediate turn has run and its commit
 *            has returned: latency in series with every statement. With one client nothing else
 *            overlaps it, so TPS falls by that much.
 *   writing  the commit itself (hash chain, three B-tree inserts, WAL frame writes, now and then a
 *            WAL checkpoint with fsync) runs on the gateway's only thread. With 8 clients that
 *            thread is already the bottleneck; group commit spreads one commit over the
 *            statements that arrived in the same turn, so the writing cost per statement falls
 *            while each statement still waits about one turn.
 *
 * The benchmark separates them by timing every commit: it wraps the gateway's `store.commit`
 * (two performance.now() calls per commit), so each run reports commits, records per commit
 * (what group commit buys), commit time (p50/p99/max) and the share of wall time spent inside
 * commits. Comparing that with the latency that `audit` adds over `off` shows how much of the
 * added latency is the write and how much is the wait around it.
 *
 * Targets, interleaved within each round (one PostgreSQL, three gateways in this process, each
 * with its own data_dir and store; a gateway that is not being measured is idle):
 *   direct  PostgreSQL itself
 *   off     gateway with policy on, but startGateway's benchmark-only withoutAuditForBenchmark
 *           (the journal writes nothing and nothing waits) and recording disabled
 *   audit   gateway with the write-ahead audit log, recording disabled (`recording: {enabled: false}`)
 *   full    gateway with audit and recording: the configuration defaults
 *
 * Workload: pgbench -n -S (built-in select-only: one SELECT per transaction, so one audit record
 * per transaction) on a `pgbench -i -s BENCH_SCALE` database, 1 and 8 clients. TPS = median over
 * rounds; p50/p99 from pgbench's per-transaction logs, rounds pooled. For the gateways, this
 * process's CPU time, event-loop utilisation and bytes written by syscalls (/proc/self/io wchar:
 * sockets, log file and SQLite together; the difference to `off` is the store's writes). For
 * audit and full, the records written (gw.store.lastAudit().seq), the commits, and the growth of
 * portcullis.db + portcullis.db-wal, per run. The WAL file does not shrink after SQLite's
 * automatic checkpoint (it is reused from its start), so once the warm-up has taken it to its
 * high-water mark (~4 MB, 1000 pages), the growth of the two files is the growth of the data.
 *
 *   node --import tsx bench/audit.ts
 *   BENCH_SECONDS=2 BENCH_ROUNDS=1 BENCH_WARMUP=1 node --import tsx bench/audit.ts   # smoke run
 *
 * Knobs (environment):
 *   BENCH_SECONDS            seconds per pgbench run (default 5)
 *   BENCH_ROUNDS             rounds per scenario; each round runs every target once (default 3)
 *   BENCH_WARMUP             seconds of discarded warm-up per target and client count (default 2; 0 = none)
 *   BENCH_SCALE              pgbench -i scale factor (default 10)
 *   BENCH_CLIENTS            comma list of client counts (default "1,8")
 *   BENCH_PROTOCOLS          comma list of pgbench -M modes (default "simple")
 *   BENCH_TARGETS            comma list of direct, off, audit, full (default all four)
 *   BENCH_GATEWAY_LOG_LEVEL  the gateways' log_level (default info)
 *
 * Results: Markdown tables on stdout, JSON in bench/results/audit-<timestamp>.json.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { JournalBatch } from "../packages/portcullis/src/store/store.js";
import { type BenchGateway, startBenchGateway } from "./lib/gateway.js";
import { type Endpoint, libpqEnv, pgbench, runCommand, threadsFor, toolVersion } from "./lib/pgbench.js";
import {
  type BaseRoundResult, type BaseScenarioResult, type BaseTargetResult, type Protocol, durationS, envClients, envGatewayLogLevel, envInt, envList,
  log, logCodeState, loadavgRounded, machine, machineLine, onCleanup, runBench, startPostgres, uncommittedNote, workDir, writeResult,
} from "./lib/run.js";
import { type LatencySummary, concat, fmtMiB, fmtP50P99, fmtRatio, fmtTps, median, ms, summarize, tpsSpread } from "./lib/stats.js";

// ---- configuration ----

type TargetId = "direct" | "off" | "audit" | "full";
type GatewayTarget = Exclude<TargetId, "direct">;
const ALL_TARGETS: TargetId[] = ["direct", "off", "audit", "full"];

const cfg = {
  seconds: envInt("BENCH_SECONDS", 5, 1),
  rounds: envInt("BENCH_ROUNDS", 3, 1),
  warmupSeconds: envInt("BENCH_WARMUP", 2, 0),
  scale: envInt("BENCH_SCALE", 10, 1),
  clients: envClients(),
  protocols: envList("BENCH_PROTOCOLS", ["simple"] as Protocol[], ["simple", "extended", "prepared"] as const),
  targets: envList("BENCH_TARGETS", ALL_TARGETS, ALL_TARGETS),
  gatewayLogLevel: envGatewayLogLevel(),
};
const TARGETS: TargetId[] = ALL_TARGETS.filter((t) => cfg.targets.includes(t));

const LABEL: Record<TargetId, string> = { direct: "direct", off: "gw off", audit: "gw audit", full: "gw full" };
/** What each gateway target is, for the record. */
const GATEWAY_SETUP: Record<GatewayTarget, { withoutAudit: boolean; recording: boolean; describe: string }> = {
  off: { withoutAudit: true, recording: false, describe: "withoutAuditForBenchmark (journal writes nothing, nothing waits), recording: {enabled: false}" },
  audit: { withoutAudit: false, recording: false, describe: "write-ahead audit log, recording: {enabled: false}" },
  full: { withoutAudit: false, recording: true, describe: "write-ahead audit log and recording (the defaults)" },
};
const isGateway = (t: TargetId): t is GatewayTarget => t !== "direct";
const writes = (t: TargetId): boolean => t === "audit" || t === "full";

// ---- measuring the gateway ----

/** What the wrapped store.commit saw since the last take(). */
interface CommitTally {
  commits: number;
  auditRows: number;
  chunks: number;
  /** Characters of recording events (JSON lines; ASCII here, so bytes). */
  chunkChars: number;
  sessionsOpened: number;
  sessionsEnded: number;
  durationsUs: number[];
  /** Per audit record: from journal.append() to the start of the commit that writes it, µs. */
  turnWaitsUs: number[];
}

const emptyTally = (): CommitTally => ({ commits: 0, auditRows: 0, chunks: 0, chunkChars: 0, sessionsOpened: 0, sessionsEnded: 0, durationsUs: [], turnWaitsUs: [] });
/** A commit longer than this is counted as slow (in practice: one that ran SQLite's WAL checkpoint). */
const SLOW_COMMIT_US = 1000;

/**
 * Times every commit of `g`'s journal: the journal calls `store.commit(batch)` on this very
 * object, so an own property in front of the prototype's method sees each one. Also stamps every
 * `journal.append()` (openSession and endSession call it too), so each record's wait from being
 * queued to its commit starting is known: the journal swaps its batch and commits synchronously,
 * so the appends stamped before a commit starts are exactly that commit's records.
 */
function instrumentCommits(g: BenchGateway): { take(): CommitTally } {
  const store = g.gw.store;
  const journal = g.gw.journal;
  const commit = store.commit.bind(store);
  const append = journal.append.bind(journal);
  let tally = emptyTally();
  let queued: number[] = [];
  journal.append = (entry) => {
    const p = append(entry);
    if (p) queued.push(performance.now());
    return p;
  };
  store.commit = (batch: JournalBatch) => {
    const t0 = performance.now();
    for (const q of queued) tally.turnWaitsUs.push((t0 - q) * 1000);
    queued = [];
    try {
      commit(batch);
    } finally {
      const t = tally;
      t.durationsUs.push((performance.now() - t0) * 1000);
      t.commits++;
      t.auditRows += batch.audit.length;
      t.chunks += batch.chunks.length;
      for (const c of batch.chunks) t.chunkChars += c.events.length;
      t.sessionsOpened += batch.sessionsOpened.length;
      t.sessionsEnded += batch.sessionsEnded.length;
    }
  };
  return {
    take() {
      const t = tally;
      tally = emptyTally();
      return t;
    },
  };
}

interface StoreSize {
  db: number;
  wal: number;
}

function storeSize(g: BenchGateway): StoreSize {
  const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);
  const db = join(g.dataDir, "portcullis.db");
  return { db: size(db), wal: size(`${db}-wal`) };
}

const lastSeq = (g: BenchGateway): number => g.gw.store.lastAudit()?.seq ?? 0;

/** This process's syscall write bytes (wchar) and storage-layer write bytes, when /proc has them. */
function procIo(): { wchar: number; writeBytes: number } | undefined {
  try {
    const text = readFileSync("/proc/self/io", "utf8");
    const field = (k: string) => Number(new RegExp(`^${k}: (\\d+)`, "m").exec(text)?.[1]);
    const wchar = field("wchar");
    const writeBytes = field("write_bytes");
    return Number.isFinite(wchar) ? { wchar, writeBytes } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Waits until the gateway has no live session (pgbench's connections are closed and their
 * session_close records queued), then one more turn so the journal has committed them: the next
 * run's counts then start clean.
 */
async function drained(g: BenchGateway, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (g.gw.context.sessions.list().length > 0) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setImmediate(r));
  return true;
}

// ---- results ----

interface RoundResult extends BaseRoundResult {
  wallMs: number;
  /** This process's CPU time during the run (user + system), µs per transaction. */
  cpuUsPerTx?: number;
  /** Event-loop utilisation of this process during the run, 0..1. */
  elu?: number;
  /** Bytes passed to write-family syscalls by this process (sockets, log, SQLite), per transaction. */
  wcharPerTx?: number;
  /** Bytes this process sent to the storage layer (/proc/self/io write_bytes), per transaction. */
  writeBytesPerTx?: number;
  /** audit and full only. */
  store?: {
    /** Audit records written (seq after − seq before), including session_open/close. */
    records: number;
    commits: number;
    /** Audit rows seen in the timed commits (equals `records` when the counts started clean). */
    auditRowsInCommits: number;
    chunks: number;
    chunkBytes: number;
    sessionsOpened: number;
    sessionsEnded: number;
    commitUs: { total: number; p50: number; p99: number; max: number };
    /** Commits over SLOW_COMMIT_US, and their share of the time in commits. */
    slowCommits: number;
    slowCommitShare: number;
    turnWaitUs: { p50: number; p99: number };
    /** Growth of portcullis.db and portcullis.db-wal, bytes. */
    dbGrowth: number;
    walGrowth: number;
    sizeAfter: StoreSize;
  };
  drained?: boolean;
}

interface StoreSummary {
  records: number;
  recordsPerS: number;
  recordsPerTx: number;
  commitsPerTx: number;
  recordsPerCommit: number;
  /** Commit durations, all rounds pooled, µs. */
  commit: LatencySummary;
  /** Per record, from append() to its commit's start, all rounds pooled, µs. */
  turnWait: LatencySummary;
  /** Commits over SLOW_COMMIT_US per 1000 commits, and their share of the time in commits (medians of rounds). */
  slowCommitsPerMille: number;
  slowCommitShare: number;
  /** Share of the runs' wall time spent inside commits (median of rounds). */
  commitShare: number;
  storeBytesPerTx: number;
  recordingBytesPerTx: number;
  /** wchar per transaction minus `off`'s in the same scenario (median of rounds each). */
  wcharBeyondOffPerTx: number | undefined;
}

interface TargetResult extends BaseTargetResult<TargetId, RoundResult> {
  cpuUsPerTx?: number;
  elu?: number;
  wcharPerTx?: number;
  writeBytesPerTx?: number;
  store?: StoreSummary;
}

type ScenarioResult = BaseScenarioResult<TargetResult>;

const medianOf = (rs: RoundResult[], f: (r: RoundResult) => number | undefined): number | undefined => {
  const v = rs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length ? median(v) : undefined;
};

// ---- main ----

async function main(): Promise<void> {
  const work = workDir("portcullis-bench-audit-");
  const started = new Date();
  // Before the gateway's modules load: the code measured is the code at this moment.
  const code = logCodeState();
  const scenarios = cfg.clients.flatMap((c) => cfg.protocols.map((p) => ({ clients: c, protocol: p })));
  const estimateS = scenarios.length * TARGETS.length * cfg.rounds * (cfg.seconds + 0.6) +
    TARGETS.length * cfg.clients.length * cfg.warmupSeconds + 30;
  log(`plan: ${scenarios.length} scenarios × ${TARGETS.length} targets (${TARGETS.join(", ")}) × ${cfg.rounds} rounds × ${cfg.seconds} s; about ${Math.round(estimateS / 60)} min`);

  const { target, serverVersion, direct } = await startPostgres();

  log(`pgbench -i -s ${cfg.scale} (directly)...`);
  const init = await runCommand("pgbench", ["-i", "-s", String(cfg.scale), "-q"], libpqEnv(direct), 15 * 60_000);
  if (init.code !== 0) throw new Error(`pgbench -i failed (exit ${init.code}):\n${init.stderr || init.stdout}`);
  log(`initialised in ${(init.wallMs / 1000).toFixed(1)} s`);

  const ttl = Math.max(3600, Math.round(estimateS * 3));
  const gateways = new Map<GatewayTarget, { gw: BenchGateway; token: string; commits: { take(): CommitTally } }>();
  for (const t of TARGETS.filter(isGateway)) {
    const s = GATEWAY_SETUP[t];
    const gw = await startBenchGateway({ target, logLevel: cfg.gatewayLogLevel, withoutAudit: s.withoutAudit, recording: s.recording });
    onCleanup(`gateway ${t}`, () => gw.stop());
    const commits = instrumentCommits(gw);
    gateways.set(t, { gw, token: await gw.token("bench-agent", ["agents"], ttl), commits });
    const rec = gw.gw.config().recording.enabled;
    log(`gateway ${t} on ${gw.host}:${gw.port} (log_level ${gw.logLevel}; ${s.describe}; config recording.enabled ${rec}; store records so far ${lastSeq(gw)})`);
    if (rec !== s.recording) throw new Error(`gateway ${t}: recording.enabled is ${rec}, wanted ${s.recording}`);
  }
  const endpoints = new Map<TargetId, Endpoint>([["direct", direct]]);
  for (const [t, g] of gateways) endpoints.set(t, { host: g.gw.host, port: g.gw.port, user: "bench-agent", password: g.token, database: "app", sslmode: "disable" });

  // The premise: `off` writes nothing, `audit` writes a record per statement and no recording, `full` both.
  {
    const premise: string[] = [];
    for (const [t, g] of gateways) {
      await drained(g.gw);
      g.commits.take();
      const seq0 = lastSeq(g.gw);
      const r = await runCommand("psql", ["-X", "-q", "-A", "-t", "-c", "SELECT count(*) FROM pgbench_branches"], libpqEnv(endpoints.get(t)!), 60_000);
      if (r.code !== 0) throw new Error(`psql via ${t} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
      await drained(g.gw);
      const c = g.commits.take();
      const records = lastSeq(g.gw) - seq0;
      premise.push(`${t}: ${records} records, ${c.commits} commits, ${c.chunks} recording chunks`);
      const ok = t === "off" ? records === 0 && c.commits === 0 : records >= 3 && (t === "full" ? c.chunks > 0 : c.chunks === 0);
      if (!ok) throw new Error(`gateway ${t} is not configured as intended: ${premise.at(-1)}`);
    }
    log(`check (one psql session, one SELECT): ${premise.join("; ")}`);
  }

  let runNo = 0;
  async function runOnce(t: TargetId, clients: number, protocol: Protocol, seconds: number, round: number): Promise<{ r: RoundResult; lat: Float64Array; commitUs: number[]; turnWaitUs: number[] }> {
    const g = isGateway(t) ? gateways.get(t) : undefined;
    let drainedBefore = true;
    if (g) {
      drainedBefore = await drained(g.gw);
      g.gw.resetCounters();
      g.commits.take();
    }
    const seq0 = g ? lastSeq(g.gw) : 0;
    const size0 = g ? storeSize(g.gw) : undefined;
    const io0 = procIo();
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const loadBefore = loadavg()[0]!;
    const res = await pgbench({
      endpoint: endpoints.get(t)!, clients, threads: threadsFor(clients), seconds, protocol, logDir: join(work, `run-${++runNo}`),
    });
    const elu = performance.eventLoopUtilization(elu0).utilization;
    const cpu = process.cpuUsage(cpu0);
    const io1 = procIo();
    const loadAfter = loadavg()[0]!;
    const s = summarize(Float64Array.from(res.latenciesUs));
    const tx = Math.max(1, res.transactions);
    const r: RoundResult = {
      round, tps: res.tps, transactions: res.transactions, failed: res.failed, p50Us: s.p50, p99Us: s.p99,
      selectMs: res.statements.find((x) => /^SELECT/i.test(x.statement))?.ms,
      loadavg1Before: loadBefore, loadavg1After: loadAfter, wallMs: Math.round(res.wallMs),
    };
    let commitUs: number[] = [];
    let turnWaitUs: number[] = [];
    if (g) {
      r.gatewayWarnings = g.gw.warnings;
      r.cpuUsPerTx = (cpu.user + cpu.system) / tx;
      r.elu = elu;
      if (io0 && io1) {
        r.wcharPerTx = (io1.wchar - io0.wchar) / tx;
        r.writeBytesPerTx = (io1.writeBytes - io0.writeBytes) / tx;
      }
      // Sessions closed, their records committed: then count.
      r.drained = (await drained(g.gw)) && drainedBefore;
      const c = g.commits.take();
      commitUs = c.durationsUs;
      turnWaitUs = c.turnWaitsUs;
      if (writes(t)) {
        const size1 = storeSize(g.gw);
        const cs = summarize(Float64Array.from(c.durationsUs));
        const tw = summarize(Float64Array.from(c.turnWaitsUs));
        const slow = c.durationsUs.filter((d) => d > SLOW_COMMIT_US);
        r.store = {
          records: lastSeq(g.gw) - seq0,
          commits: c.commits, auditRowsInCommits: c.auditRows, chunks: c.chunks, chunkBytes: c.chunkChars,
          sessionsOpened: c.sessionsOpened, sessionsEnded: c.sessionsEnded,
          commitUs: { total: cs.mean * cs.count, p50: cs.p50, p99: cs.p99, max: cs.max },
          slowCommits: slow.length,
          slowCommitShare: cs.count > 0 ? slow.reduce((a, b) => a + b, 0) / (cs.mean * cs.count) : Number.NaN,
          turnWaitUs: { p50: tw.p50, p99: tw.p99 },
          dbGrowth: size1.db - size0!.db, walGrowth: size1.wal - size0!.wal, sizeAfter: size1,
        };
      } else if (c.commits > 0 || lastSeq(g.gw) !== seq0) {
        log(`  warning: gateway ${t} committed ${c.commits} times (${lastSeq(g.gw) - seq0} records) though it should write nothing`);
      }
      if (g.gw.warnings > 0) log(`  gateway warnings:\n    ${g.gw.lastWarnings.join("\n    ")}`);
      if (!r.drained) log(`  note: gateway ${t} still had live sessions 5 s after pgbench ended; its counts may spill into the next run`);
    }
    if (res.latenciesUs.length !== res.transactions) log(`  note: ${res.latenciesUs.length} logged latencies vs ${res.transactions} transactions reported`);
    const st = r.store;
    log(`  ${LABEL[t].padEnd(9)} ${round > 0 ? `round ${round}` : "warm-up"}: ${fmtTps(res.tps).padStart(6)} tps  p50 ${ms(s.p50)} ms  p99 ${ms(s.p99)} ms` +
      (g ? `  cpu ${r.cpuUsPerTx!.toFixed(0)} µs/tx  elu ${(elu * 100).toFixed(0)}%` : "") +
      (st ? `  ${st.records} records, ${st.commits} commits (${(st.auditRowsInCommits / Math.max(1, st.commits)).toFixed(2)} records/commit), ` +
        `wait for turn p50 ${st.turnWaitUs.p50.toFixed(0)} µs, commit p50 ${st.commitUs.p50.toFixed(0)} µs max ${(st.commitUs.max / 1000).toFixed(1)} ms, ` +
        `${st.slowCommits} over ${SLOW_COMMIT_US / 1000} ms (${(st.slowCommitShare * 100).toFixed(0)}% of commit time), store +${fmtMiB(st.dbGrowth + st.walGrowth)} MiB` : "") +
      (res.failed ? `  FAILED ${res.failed}` : "") + (r.gatewayWarnings ? `  gateway warnings ${r.gatewayWarnings}` : ""));
    return { r, lat: res.latenciesUs, commitUs, turnWaitUs };
  }

  if (cfg.warmupSeconds > 0) {
    // Also takes each store's WAL file to its high-water mark before anything is measured.
    log(`warm-up: ${cfg.warmupSeconds} s per target and client count (discarded)`);
    for (const c of cfg.clients) {
      for (const t of TARGETS) {
        await runOnce(t, c, cfg.protocols[0]!, cfg.warmupSeconds, 0);
      }
    }
  }

  const results: ScenarioResult[] = [];
  for (const sc of scenarios) {
    const name = `select c=${sc.clients} ${sc.protocol}`;
    log(`scenario ${name}`);
    const rounds = new Map<TargetId, RoundResult[]>(TARGETS.map((t) => [t, []]));
    const lats = new Map<TargetId, Float64Array[]>(TARGETS.map((t) => [t, []]));
    const commits = new Map<TargetId, number[]>(TARGETS.map((t) => [t, []]));
    const waits = new Map<TargetId, number[]>(TARGETS.map((t) => [t, []]));
    for (let round = 1; round <= cfg.rounds; round++) {
      for (const t of TARGETS) {
        const { r, lat, commitUs, turnWaitUs } = await runOnce(t, sc.clients, sc.protocol, cfg.seconds, round);
        rounds.get(t)!.push(r);
        lats.get(t)!.push(lat);
        for (const d of commitUs) commits.get(t)!.push(d);
        for (const d of turnWaitUs) waits.get(t)!.push(d);
      }
    }
    const offWchar = rounds.has("off") ? medianOf(rounds.get("off")!, (r) => r.wcharPerTx) : undefined;
    results.push({
      name, clients: sc.clients, threads: threadsFor(sc.clients), protocol: sc.protocol, seconds: cfg.seconds,
      targets: TARGETS.map((t): TargetResult => {
        const rs = rounds.get(t)!;
        const out: TargetResult = { target: t, rounds: rs, ...tpsSpread(rs.map((r) => r.tps)), latency: summarize(concat(lats.get(t)!)) };
        if (!isGateway(t)) return out;
        out.cpuUsPerTx = medianOf(rs, (r) => r.cpuUsPerTx);
        out.elu = medianOf(rs, (r) => r.elu);
        out.wcharPerTx = medianOf(rs, (r) => r.wcharPerTx);
        out.writeBytesPerTx = medianOf(rs, (r) => r.writeBytesPerTx);
        if (writes(t)) {
          const st = (f: (x: NonNullable<RoundResult["store"]>, r: RoundResult) => number) => medianOf(rs, (r) => (r.store ? f(r.store, r) : undefined)) ?? Number.NaN;
          const tx = (r: RoundResult) => Math.max(1, r.transactions);
          out.store = {
            records: rs.reduce((n, r) => n + (r.store?.records ?? 0), 0),
            recordsPerS: st((x, r) => x.records / (r.wallMs / 1000)),
            recordsPerTx: st((x, r) => x.records / tx(r)),
            commitsPerTx: st((x, r) => x.commits / tx(r)),
            recordsPerCommit: st((x) => x.auditRowsInCommits / Math.max(1, x.commits)),
            commit: summarize(Float64Array.from(commits.get(t)!)),
            turnWait: summarize(Float64Array.from(waits.get(t)!)),
            slowCommitsPerMille: st((x) => (x.slowCommits / Math.max(1, x.commits)) * 1000),
            slowCommitShare: st((x) => x.slowCommitShare),
            commitShare: st((x, r) => x.commitUs.total / 1000 / r.wallMs),
            storeBytesPerTx: st((x, r) => (x.dbGrowth + x.walGrowth) / tx(r)),
            recordingBytesPerTx: st((x, r) => x.chunkBytes / tx(r)),
            wcharBeyondOffPerTx: out.wcharPerTx !== undefined && offWchar !== undefined ? out.wcharPerTx - offWchar : undefined,
          };
        }
        return out;
      }),
    });
  }

  // Whole-run store totals (warm-up included): what a record costs on disk in the long run.
  const stores: Record<string, { records: number; db: number; wal: number; bytesPerRecord: number }> = {};
  for (const [t, g] of gateways) {
    if (!writes(t)) continue;
    const size = storeSize(g.gw);
    const records = lastSeq(g.gw);
    stores[t] = { records, ...size, bytesPerRecord: records > 0 ? (size.db + size.wal) / records : Number.NaN };
  }

  const finished = new Date();
  const environment = {
    ...machine(),
    postgres: serverVersion,
    pgbench: await toolVersion("pgbench"),
    commit: code.commit,
    uncommittedGatewaySourceFiles: code.uncommittedSourceFiles,
    loadavgAtEnd: loadavgRounded(),
  };

  const table = renderTables(results, stores);
  console.log(`\n${table}\n`);
  const took = durationS(started, finished);
  console.log(`Machine: ${machineLine(environment)}; PostgreSQL ${environment.postgres}; ${environment.pgbench}; commit ${environment.commit ?? "?"}` +
    `${uncommittedNote(code)}; load average at end ${environment.loadavgAtEnd.join(" ")}; run took ${Math.floor(took / 60)} min ${took % 60} s`);

  writeResult("audit", started, finished, {
    config: { ...cfg, initSeconds: Math.round(init.wallMs / 100) / 10 },
    environment,
    setup: {
      postgres: "LocalPostgres via test/support/gateway.ts startTarget(): fsync off, no server TLS, scram-sha-256",
      gateways: Object.fromEntries(TARGETS.filter(isGateway).map((t) => [t, GATEWAY_SETUP[t].describe])),
      gateway: `bench/lib/gateway.ts, three gateways in this process at log_level ${cfg.gatewayLogLevel}, each with its own data_dir (SQLite store under ${tmpdir()}: WAL, synchronous=NORMAL); SQL policy stage with no rules; no masking`,
      workload: `pgbench -n -S -r -M <protocol> on pgbench -i -s ${cfg.scale}; -j min(clients, 2)`,
      commitTiming: `store.commit wrapped with performance.now() before and after; durations in µs; slow = over ${SLOW_COMMIT_US} µs. journal.append wrapped to stamp each record: turn wait = commit start − append`,
      storeGrowth: "size of portcullis.db + portcullis.db-wal after − before each run, after the gateway's sessions have closed",
      io: "/proc/self/io of this process: wchar (bytes to write-family syscalls: sockets, log file, SQLite) and write_bytes (to the storage layer)",
      latency: "pgbench per-transaction log (-l), 3rd field (µs), all rounds pooled; nearest-rank percentiles",
    },
    scenarios: results,
    stores,
    table,
  });
}

function renderTables(scenarios: ScenarioResult[], stores: Record<string, { records: number; db: number; wal: number; bytesPerRecord: number }>): string {
  const out: string[] = [];
  const get = (s: ScenarioResult, t: TargetId) => s.targets.find((x) => x.target === t);
  const tps = (s: ScenarioResult, t: TargetId) => get(s, t)?.tpsMedian ?? Number.NaN;
  const num = (v: number | undefined, digits = 0) => (v !== undefined && Number.isFinite(v) ? v.toFixed(digits) : "–");
  const pct = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? `${(v * 100).toFixed(0)}%` : "–");

  out.push("Throughput: pgbench -n -S (select-only, one SELECT per transaction). TPS = median of rounds; p50 / p99 = per-transaction latency in ms, all rounds pooled. " +
    "Gateway columns are this process's: CPU µs per transaction, event-loop utilisation, bytes passed to write syscalls per transaction (sockets + log + SQLite).");
  out.push("");
  out.push("| scenario | target | TPS | vs off | vs direct | p50 / p99 ms | gw CPU µs/tx | gw event loop busy | gw written B/tx |");
  out.push("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const s of scenarios) {
    for (const t of s.targets) {
      out.push(`| ${[
        s.name, LABEL[t.target], fmtTps(t.tpsMedian), fmtRatio(t.tpsMedian, tps(s, "off")), fmtRatio(t.tpsMedian, tps(s, "direct")),
        fmtP50P99(t.latency), num(t.cpuUsPerTx), pct(t.elu), num(t.wcharPerTx),
      ].join(" | ")} |`);
    }
  }
  out.push("");

  const writing = scenarios.flatMap((s) => s.targets.filter((t) => t.store).map((t) => ({ s, t, st: t.store! })));
  if (writing.length > 0) {
    out.push("Audit store: records = audit records written per second (median of rounds) and per transaction; commits/tx and records/commit show group commit; " +
      "wait for turn = per record, from journal.append() to the start of the store.commit that writes it (hash chaining included), µs; commit µs = time inside store.commit, all rounds pooled; " +
      `slow = commits over ${SLOW_COMMIT_US / 1000} ms per 1000 commits, and their share of the time in commits; in commit = share of wall time the gateway's thread spent committing; ` +
      "store B/op = growth of portcullis.db + -wal per transaction; recording B/op = recording events written per transaction; " +
      "written beyond off = syscall bytes per transaction minus gw off's.");
    out.push("");
    out.push("| scenario | target | records/s | records/tx | commits/tx | records/commit | wait for turn µs p50 / p99 | commit µs p50 / p99 / max | slow commits ‰ (time share) | in commit | store B/op | recording B/op | written beyond off B/op |");
    out.push("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const { s, t, st } of writing) {
      out.push(`| ${[
        s.name, LABEL[t.target], num(st.recordsPerS), num(st.recordsPerTx, 3), num(st.commitsPerTx, 2), num(st.recordsPerCommit, 2),
        `${num(st.turnWait.p50)} / ${num(st.turnWait.p99)}`,
        `${num(st.commit.p50)} / ${num(st.commit.p99)} / ${num(st.commit.max)}`, `${num(st.slowCommitsPerMille, 1)} (${pct(st.slowCommitShare)})`, pct(st.commitShare),
        num(st.storeBytesPerTx), num(st.recordingBytesPerTx), num(st.wcharBeyondOffPerTx),
      ].join(" | ")} |`);
    }
    out.push("");
  }

  out.push("Per-round TPS, in run order (spread = (max - min) / median):");
  out.push("");
  for (const s of scenarios) {
    out.push(`- ${s.name}: ${s.targets.map((t) => `${LABEL[t.target]} [${t.rounds.map((r) => fmtTps(r.tps)).join(", ")}] ±${(((t.tpsMax - t.tpsMin) / t.tpsMedian) * 100).toFixed(0)}%`).join("; ")}`);
  }
  const st = Object.entries(stores);
  if (st.length > 0) {
    out.push("");
    out.push(`Stores at the end of the run (warm-up included): ${st.map(([t, x]) =>
      `${LABEL[t as TargetId]} ${x.records} records, portcullis.db ${fmtMiB(x.db)} MiB + -wal ${fmtMiB(x.wal)} MiB = ${num(x.bytesPerRecord)} B/record`).join("; ")}`);
  }
  return out.join("\n");
}

await runBench(main);
