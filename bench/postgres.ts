/**
 * PostgreSQL data-path benchmark: the same pgbench select-only workload against PostgreSQL
 * directly, through PgBouncer (session pooling) and through the Portcullis gateway, interleaved
 * round by round so a noisy machine hurts all three alike. Also the cost of connection setup
 * (pgbench -C), which is where the gateway does its per-connection work (token verification,
 * session record, its own SCRAM login to the target).
 *
 *   npm run bench                         # defaults: 3 rounds × 10 s per target and scenario
 *   BENCH_SECONDS=2 BENCH_ROUNDS=1 npm run bench   # smoke run
 *
 * Knobs (environment):
 *   BENCH_SECONDS          seconds per steady-state run (default 10)
 *   BENCH_ROUNDS           rounds per scenario; each round runs every target once (default 3)
 *   BENCH_CONNECT_SECONDS  seconds per connection-setup (-C) run (default min(5, BENCH_SECONDS))
 *   BENCH_WARMUP           seconds of discarded warm-up per target before measuring (default 3; 0 = none)
 *   BENCH_SCALE            pgbench -i scale factor (default 10)
 *   BENCH_CLIENTS          comma list of client counts (default "1,8")
 *   BENCH_PROTOCOLS        comma list of pgbench -M modes (default "simple,extended")
 *   BENCH_TLS=1            also run the gateway with client TLS in the steady-state scenarios
 *                          (it is always included in the connection-setup scenario)
 *   BENCH_STAGELESS=1      also run a second gateway with no message stages (no SQL policy), in
 *                          every scenario, to separate the relay's cost from the stages' cost
 *   BENCH_GATEWAY_LOG_LEVEL  the gateway's log_level (default info, the production default)
 *
 * Results: a Markdown table on stdout and JSON in bench/results/postgres-<timestamp>.json.
 */
import { pbkdf2Sync, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { UPSTREAM_USER } from "../packages/portcullis/test/support/gateway.js";
import { type BenchGateway, startBenchGateway } from "./lib/gateway.js";
import { type Endpoint, libpqEnv, pgbench, runCommand, threadsFor, toolVersion } from "./lib/pgbench.js";
import { PgBouncer } from "./lib/pgbouncer.js";
import {
  type BaseRoundResult, type BaseScenarioResult, type BaseTargetResult, type Protocol, envClients, envGatewayLogLevel, envInt, envProtocols,
  log, logCodeState, loadavgRounded, machine, machineLine, onCleanup, runBench, startPostgres, workDir, writeResult,
} from "./lib/run.js";
import { type LatencySummary, concat, fmtP50P99, fmtRatio, fmtTps, median, ms, summarize, tpsSpread } from "./lib/stats.js";

// ---- configuration ----

const seconds = envInt("BENCH_SECONDS", 10, 1);
const cfg = {
  seconds,
  rounds: envInt("BENCH_ROUNDS", 3, 1),
  connectSeconds: envInt("BENCH_CONNECT_SECONDS", Math.min(5, seconds), 1),
  warmupSeconds: envInt("BENCH_WARMUP", 3, 0),
  scale: envInt("BENCH_SCALE", 10, 1),
  clients: envClients(),
  protocols: envProtocols(),
  tlsSteadyState: process.env.BENCH_TLS === "1",
  stageless: process.env.BENCH_STAGELESS === "1",
  gatewayLogLevel: envGatewayLogLevel(),
};

// ---- targets ----

type TargetId = "direct" | "pgbouncer" | "gateway" | "gateway-tls" | "gateway-nostages";
const TARGET_LABEL: Record<TargetId, string> = {
  direct: "direct",
  pgbouncer: "pgbouncer",
  gateway: "gateway",
  "gateway-tls": "gateway+TLS",
  "gateway-nostages": "gw no-stages",
};
const GATEWAY_TARGETS: TargetId[] = ["gateway", "gateway-tls", "gateway-nostages"];

interface RoundResult extends BaseRoundResult {
  latencyAvgMs: number | undefined;
  connectionTimeMs: number | undefined;
  /** Connect + transaction + disconnect, from consecutive completion stamps (meaningful with -C). */
  cycleP50Us: number;
  cycleP99Us: number;
  wallMs: number;
  gatewayLogLines?: number;
  /** The gateway's SQL classification cache during this run (policy stage), when it has one. */
  sqlCache?: { hits: number; misses: number };
}

interface TargetResult extends BaseTargetResult<TargetId, RoundResult> {
  /** Per-client gaps between completions, all rounds pooled, µs (with -C: a whole connection's life). */
  cycle: LatencySummary;
  connectionTimeMsMedian: number | undefined;
  selectMsMedian: number | undefined;
}

interface ScenarioResult extends BaseScenarioResult<TargetResult> {
  kind: "steady" | "connect";
}

// ---- main ----

async function main(): Promise<void> {
  const work = workDir("portcullis-bench-");
  const started = new Date();
  // Before the gateway's modules load: the code measured is the code at this moment.
  const code = logCodeState();

  const stageless: TargetId[] = cfg.stageless ? ["gateway-nostages"] : [];
  const steadyTargets: TargetId[] = ["direct", "pgbouncer", "gateway", ...(cfg.tlsSteadyState ? (["gateway-tls"] as const) : []), ...stageless];
  const connectTargets: TargetId[] = ["direct", "pgbouncer", "gateway", "gateway-tls", ...stageless];
  const steadyScenarios = cfg.clients.flatMap((c) => cfg.protocols.map((p) => ({ clients: c, protocol: p })));
  const estimateS =
    steadyScenarios.length * steadyTargets.length * cfg.rounds * (cfg.seconds + 0.4) +
    connectTargets.length * cfg.rounds * (cfg.connectSeconds + 0.4) +
    steadyTargets.length * cfg.warmupSeconds + 15;
  log(`plan: ${steadyScenarios.length} steady-state scenarios × ${steadyTargets.length} targets × ${cfg.rounds} rounds × ${cfg.seconds} s, ` +
    `connection setup × ${connectTargets.length} targets × ${cfg.rounds} rounds × ${cfg.connectSeconds} s; about ${Math.round(estimateS / 60)} min`);

  // PostgreSQL: the test harness's target (database `app` owned by a SCRAM-authenticated user).
  const { target, serverVersion, direct } = await startPostgres();
  const pg = target.pg;

  log(`pgbench -i -s ${cfg.scale} (directly)...`);
  const init = await runCommand("pgbench", ["-i", "-s", String(cfg.scale), "-q"], libpqEnv(direct), 15 * 60_000);
  if (init.code !== 0) throw new Error(`pgbench -i failed (exit ${init.code}):\n${init.stderr || init.stdout}`);
  log(`initialised in ${(init.wallMs / 1000).toFixed(1)} s`);

  // PgBouncer, session pooling, SCRAM with the role's verifier from pg_authid.
  const secret = (await pg.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [UPSTREAM_USER]))[0]?.rolpassword;
  if (!secret) throw new Error(`no password hash for ${UPSTREAM_USER} in pg_authid`);
  const bouncer = await PgBouncer.start({
    serverHost: pg.host, serverPort: pg.port, databases: ["app"],
    users: [{ name: UPSTREAM_USER, secret }], authType: "scram-sha-256",
  });
  onCleanup("pgbouncer", () => bouncer.stop());
  process.once("exit", () => bouncer.killNow());
  log(`pgbouncer on ${bouncer.host}:${bouncer.port}`);

  // The gateway, in this process, configured as the integration tests configure it (dev issuer,
  // loopback, connection `app` → the target with tls: prefer, the config default; this target
  // has no TLS) but at the production log level.
  const gw: BenchGateway = await startBenchGateway({ target, logLevel: cfg.gatewayLogLevel });
  onCleanup("gateway", () => gw.stop());
  const ttl = Math.max(3600, estimateS * 3);
  const token = await gw.token("bench-agent", ["agents"], ttl);
  log(`gateway on ${gw.host}:${gw.port} (log_level ${gw.logLevel}; token ${token.length} bytes, ttl ${ttl} s)`);
  // Optional second gateway with no message stages; its own data dir, so its own dev issuer and token.
  let bare: { gw: BenchGateway; token: string } | undefined;
  if (cfg.stageless) {
    const g = await startBenchGateway({ target, logLevel: cfg.gatewayLogLevel, withoutStages: true });
    onCleanup("stage-less gateway", () => g.stop());
    bare = { gw: g, token: await g.token("bench-agent", ["agents"], ttl) };
    log(`stage-less gateway on ${g.host}:${g.port}`);
  }
  const gatewayOf = (t: TargetId): BenchGateway | undefined =>
    t === "gateway-nostages" ? bare?.gw : GATEWAY_TARGETS.includes(t) ? gw : undefined;

  const endpoints: Record<TargetId, Endpoint> = {
    direct,
    pgbouncer: { ...direct, host: bouncer.host, port: bouncer.port },
    gateway: { host: gw.host, port: gw.port, user: "bench-agent", password: token, database: "app", sslmode: "disable" },
    "gateway-tls": { host: gw.host, port: gw.port, user: "bench-agent", password: token, database: "app", sslmode: "require" },
    "gateway-nostages": bare
      ? { host: bare.gw.host, port: bare.gw.port, user: "bench-agent", password: bare.token, database: "app", sslmode: "disable" }
      : direct,
  };

  let runNo = 0;
  async function runOnce(t: TargetId, opts: { clients: number; protocol: Protocol; seconds: number; connect: boolean }, round: number): Promise<{ r: RoundResult; lat: Float64Array; cyc: Float64Array }> {
    const g = gatewayOf(t);
    g?.resetCounters();
    const cache0 = g ? sqlCacheStats(g) : undefined;
    const loadBefore = loadavg()[0]!;
    const res = await pgbench({
      endpoint: endpoints[t], clients: opts.clients, threads: threadsFor(opts.clients), seconds: opts.seconds,
      protocol: opts.protocol, connectPerTransaction: opts.connect, logDir: join(work, `run-${++runNo}`),
    });
    const s = summarize(Float64Array.from(res.latenciesUs));
    const c = summarize(Float64Array.from(res.cyclesUs));
    const select = res.statements.find((x) => /^SELECT/i.test(x.statement));
    const r: RoundResult = {
      round, tps: res.tps, transactions: res.transactions, failed: res.failed,
      latencyAvgMs: res.latencyAvgMs, connectionTimeMs: res.connectionTimeMs,
      p50Us: s.p50, p99Us: s.p99, cycleP50Us: c.p50, cycleP99Us: c.p99, selectMs: select?.ms, wallMs: Math.round(res.wallMs),
      loadavg1Before: loadBefore, loadavg1After: loadavg()[0]!,
    };
    if (g) {
      r.gatewayWarnings = g.warnings;
      r.gatewayLogLines = g.logLines;
      const cache1 = sqlCacheStats(g);
      if (cache0 && cache1 && cache1.hits + cache1.misses > cache0.hits + cache0.misses) {
        r.sqlCache = { hits: cache1.hits - cache0.hits, misses: cache1.misses - cache0.misses };
      }
      if (t === "gateway-nostages" && r.sqlCache) log("  warning: the stage-less gateway classified SQL: this gateway has no withoutStagesForBenchmark option, its figures include the stages");
      if (g.warnings > 0) log(`  gateway warnings:\n    ${g.lastWarnings.join("\n    ")}`);
    }
    if (res.latenciesUs.length !== res.transactions) {
      log(`  note: ${res.latenciesUs.length} logged latencies vs ${res.transactions} transactions reported`);
    }
    log(`  ${TARGET_LABEL[t].padEnd(12)} round ${round}: ${fmtTps(res.tps).padStart(6)} tps  p50 ${ms(s.p50)} ms  p99 ${ms(s.p99)} ms` +
      `${opts.connect ? `  cycle p50 ${ms(c.p50)} ms p99 ${ms(c.p99)} ms  avg connect ${res.connectionTimeMs ?? "?"} ms` : ""}` +
      `${res.failed ? `  FAILED ${res.failed}` : ""}${r.gatewayWarnings ? `  gateway warnings ${r.gatewayWarnings}` : ""}` +
      `${r.sqlCache ? `  sql cache ${r.sqlCache.hits} hits / ${r.sqlCache.misses} misses` : ""}`);
    return { r, lat: res.latenciesUs, cyc: res.cyclesUs };
  }

  async function scenario(name: string, kind: "steady" | "connect", targets: TargetId[], opts: { clients: number; protocol: Protocol; seconds: number }): Promise<ScenarioResult> {
    log(`scenario ${name}`);
    const rounds = new Map<TargetId, RoundResult[]>(targets.map((t) => [t, []]));
    const lats = new Map<TargetId, Float64Array[]>(targets.map((t) => [t, []]));
    const cycs = new Map<TargetId, Float64Array[]>(targets.map((t) => [t, []]));
    for (let round = 1; round <= cfg.rounds; round++) {
      for (const t of targets) {
        const { r, lat, cyc } = await runOnce(t, { ...opts, connect: kind === "connect" }, round);
        rounds.get(t)!.push(r);
        lats.get(t)!.push(lat);
        cycs.get(t)!.push(cyc);
      }
    }
    const out: TargetResult[] = targets.map((t) => {
      const rs = rounds.get(t)!;
      const conn = rs.map((r) => r.connectionTimeMs).filter((v): v is number => v !== undefined);
      const sel = rs.map((r) => r.selectMs).filter((v): v is number => v !== undefined);
      return {
        target: t, rounds: rs,
        ...tpsSpread(rs.map((r) => r.tps)),
        latency: summarize(concat(lats.get(t)!)),
        cycle: summarize(concat(cycs.get(t)!)),
        connectionTimeMsMedian: conn.length ? median(conn) : undefined,
        selectMsMedian: sel.length ? median(sel) : undefined,
      };
    });
    return { name, kind, clients: opts.clients, threads: threadsFor(opts.clients), protocol: opts.protocol, seconds: opts.seconds, targets: out };
  }

  if (cfg.warmupSeconds > 0) {
    log(`warm-up: ${cfg.warmupSeconds} s per target (discarded)`);
    const warmClients = Math.max(...cfg.clients);
    for (const t of steadyTargets) {
      await pgbench({
        endpoint: endpoints[t], clients: warmClients, threads: threadsFor(warmClients), seconds: cfg.warmupSeconds,
        protocol: "simple", logDir: join(work, `warmup-${t}`),
      });
    }
  }

  const scenarios: ScenarioResult[] = [];
  for (const s of steadyScenarios) {
    scenarios.push(await scenario(`select c=${s.clients} ${s.protocol}`, "steady", steadyTargets, { clients: s.clients, protocol: s.protocol, seconds: cfg.seconds }));
  }
  scenarios.push(await scenario("connect (-C) c=1 simple", "connect", connectTargets, { clients: 1, protocol: "simple", seconds: cfg.connectSeconds }));

  const finished = new Date();
  const environment = {
    ...machine(),
    postgres: serverVersion,
    pgbench: await toolVersion("pgbench"),
    pgbouncer: await toolVersion(bouncerBinary(), ["--version"]),
    commit: code.commit,
    uncommittedGatewaySourceFiles: code.uncommittedSourceFiles,
    scramPbkdf2Ms: pbkdf2Cost(),
    loadavgAtEnd: loadavgRounded(),
  };

  const table = renderTables(scenarios);
  console.log(`\n${table}\n`);
  console.log(`Machine: ${machineLine(environment)}; PostgreSQL ${environment.postgres}; ${environment.pgbench}; ${environment.pgbouncer}; ` +
    `commit ${environment.commit ?? "?"}; one SCRAM PBKDF2 (4096) = ${environment.scramPbkdf2Ms} ms; load average at end ${environment.loadavgAtEnd.join(" ")}`);

  writeResult("postgres", started, finished, {
    config: { ...cfg, initSeconds: Math.round(init.wallMs / 100) / 10 },
    environment,
    setup: {
      postgres: "LocalPostgres via test/support/gateway.ts startTarget(): fsync off, no server TLS, scram-sha-256",
      pgbouncer: "session pooling, auth_type scram-sha-256 with the role's SCRAM verifier, default_pool_size 20",
      gateway: `bench/lib/gateway.ts in the benchmark's own Node process (the test harness's config at log_level ${cfg.gatewayLogLevel}); dev issuer; SQL policy stage with no rules; target tls: prefer (plaintext: the target has no TLS)`,
      gatewayNoStages: cfg.stageless ? "a second gateway started with withoutStagesForBenchmark: the same relay with no message stage (no SQL policy)" : undefined,
      clientSsl: "sslmode=disable for direct, pgbouncer and gateway; sslmode=require for gateway+TLS",
      latency: "pgbench per-transaction log (-l), 3rd field (µs), all rounds pooled; nearest-rank percentiles",
    },
    scenarios,
    table,
  });
}

function bouncerBinary(): string {
  return ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find((p) => existsSync(p)) ?? "pgbouncer";
}

function renderTables(scenarios: ScenarioResult[]): string {
  const out: string[] = [];
  const steady = scenarios.filter((s) => s.kind === "steady");
  const connect = scenarios.filter((s) => s.kind === "connect");
  const get = (s: ScenarioResult, t: TargetId) => s.targets.find((x) => x.target === t);
  const tps = (s: ScenarioResult, t: TargetId) => get(s, t)?.tpsMedian ?? Number.NaN;

  if (steady.length > 0) {
    const targets = steady[0]!.targets.map((t) => t.target);
    const hasTls = targets.includes("gateway-tls");
    const hasBare = targets.includes("gateway-nostages");
    out.push("Steady state: pgbench -n -S (select-only). TPS = median of rounds; p50 / p99 = per-transaction latency in ms, all rounds pooled.");
    out.push("");
    const head = [
      "scenario",
      ...targets.map((t) => `${TARGET_LABEL[t]} TPS`),
      "gw/direct", "gw/pgbouncer",
      ...(hasTls ? ["gw+TLS/direct"] : []),
      ...(hasBare ? ["gw/gw no-stages"] : []),
      ...targets.map((t) => `${TARGET_LABEL[t]} p50 / p99`),
    ];
    out.push(`| ${head.join(" | ")} |`);
    out.push(`|${head.map((_, i) => (i === 0 ? " --- " : " ---: ")).join("|")}|`);
    for (const s of steady) {
      out.push(`| ${[
        s.name,
        ...targets.map((t) => fmtTps(tps(s, t))),
        fmtRatio(tps(s, "gateway"), tps(s, "direct")),
        fmtRatio(tps(s, "gateway"), tps(s, "pgbouncer")),
        ...(hasTls ? [fmtRatio(tps(s, "gateway-tls"), tps(s, "direct"))] : []),
        ...(hasBare ? [fmtRatio(tps(s, "gateway"), tps(s, "gateway-nostages"))] : []),
        ...targets.map((t) => fmtP50P99(get(s, t)?.latency)),
      ].join(" | ")} |`);
    }
    out.push("");
  }

  for (const s of connect) {
    out.push(`Connection setup: pgbench -n -S -C (new connection per transaction), ${s.clients} client, -M ${s.protocol}. ` +
      "TPS = connections per second (median of rounds); cycle = connect + SELECT + disconnect, from consecutive completion stamps; " +
      "avg connect = pgbench's own average connection time; SELECT = the transaction alone (pgbench starts its clock after connecting).");
    out.push("");
    out.push("| target | TPS | vs direct | vs pgbouncer | cycle p50 / p99 ms | avg connect ms | SELECT p50 / p99 ms |");
    out.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const t of s.targets) {
      out.push(`| ${[
        TARGET_LABEL[t.target],
        fmtTps(t.tpsMedian),
        fmtRatio(t.tpsMedian, tps(s, "direct")),
        fmtRatio(t.tpsMedian, tps(s, "pgbouncer")),
        fmtP50P99(t.cycle),
        t.connectionTimeMsMedian?.toFixed(3) ?? "–",
        fmtP50P99(t.latency),
      ].join(" | ")} |`);
    }
    out.push("");
  }

  out.push("Per-round TPS, in run order (spread = (max - min) / median):");
  out.push("");
  for (const s of scenarios) {
    const parts = s.targets.map((t) => {
      const spread = t.tpsMedian > 0 ? ((t.tpsMax - t.tpsMin) / t.tpsMedian) * 100 : Number.NaN;
      return `${TARGET_LABEL[t.target]} [${t.rounds.map((r) => fmtTps(r.tps)).join(", ")}] ±${spread.toFixed(0)}%`;
    });
    out.push(`- ${s.name}: ${parts.join("; ")}`);
  }
  return out.join("\n");
}

function sqlCacheStats(gw: BenchGateway): { hits: number; misses: number } | undefined {
  const cache = (gw.gw.context as unknown as { sqlCache?: { hits?: unknown; misses?: unknown } }).sqlCache;
  return cache && typeof cache.hits === "number" && typeof cache.misses === "number" ? { hits: cache.hits, misses: cache.misses } : undefined;
}

/** What one SCRAM-SHA-256 key derivation (PBKDF2, 4096 rounds, PostgreSQL's default) costs on this machine, ms. */
function pbkdf2Cost(): number {
  const salt = randomBytes(16);
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    pbkdf2Sync("benchmark-password", salt, 4096, 32, "sha256");
    times.push(performance.now() - t0);
  }
  return Math.round(median(times) * 1000) / 1000;
}

await runBench(main);
