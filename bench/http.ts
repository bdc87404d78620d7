/**
 * HTTP targets benchmark: what the gateway's reverse proxy for `type: http` connections costs,
 * against baselines measured in the same run, interleaved round by round.
 *
 * Targets (the same request, `GET …/v1/customers` or `GET …/v1/big`, with the same headers):
 *   direct  the upstream itself (the load generator sends the upstream's X-Api-Key)
 *   nginx   nginx as a plain reverse proxy: one worker, proxy_pass to a keep-alive upstream pool,
 *           Authorization dropped and X-Api-Key set, access log off, defaults otherwise
 *   plain   the gateway, connection `plain`: no masking rule applies, so identity (bearer token
 *           verified per request) + policy (no rules: allow) + write-ahead audit + recording
 *   masked  the gateway, connection `masked`: the same plus the masking rule
 *           `{connections: [masked], keys: [ssn], detectors: [email], strategy: redact}`
 *
 * The upstream is a small node:http server in a child process (bench/lib/http-upstream-server.ts:
 * it never shares the gateway's event loop) answering GET /v1/customers with a ~2 KB JSON list of
 * customer records (each with an email and an SSN) and GET /v1/big with ~1 MB of the same
 * (10^6 bytes by default: under the gateway's 1 MiB limit for masking a body whole), both with a
 * Content-Length. It requires `X-Api-Key`: the gateway connections and nginx add it, as a vaulted
 * credential. The gateway runs in this process (bench/lib/http-gateway.ts: dev issuer,
 * log_level info to a file). The load generator is wrk (bench/lib/wrk.ts), sending
 * `Authorization: Bearer <dev issuer token>` to every target (nginx and the gateway drop it
 * before the upstream).
 *
 * Scenarios: small-c1 (/v1/customers, wrk -t1 -c1), small-c16 (-t2 -c16), big-c4 (/v1/big,
 * -t2 -c4; MB/s). req/s = median over rounds; p50/p99 from wrk's latency histograms, rounds
 * pooled (nearest rank). The order of the targets rotates from round to round. For the gateway:
 * this process's CPU time per request (user + system, all threads: the event loop, the
 * libuv pool that runs the signature check, SQLite), event-loop utilisation, and, by wrapping
 * three of its functions (two performance.now() calls each): audit commits per request and the
 * time inside them, the per-request client-address write of the new-address detection, and the
 * wall time of token verification. For nginx: its worker's CPU time per request (/proc). For
 * every target: the upstream's CPU time per request. After the runs, the components alone, in
 * this process, one call at a time: token verification, the client-address write, and masking
 * of each document.
 *
 *   node --import tsx bench/http.ts
 *   BENCH_SECONDS=2 BENCH_ROUNDS=1 BENCH_WARMUP=1 node --import tsx bench/http.ts   # smoke run
 *
 * Needs nginx and wrk (Debian: apt-get install -y nginx wrk); without them it says so and exits 1.
 *
 * Knobs (environment):
 *   BENCH_SECONDS            seconds per wrk run (default 5)
 *   BENCH_ROUNDS             rounds per scenario; each round runs every target once (default 3)
 *   BENCH_WARMUP             seconds of discarded warm-up per target and scenario (default 2; 0 = none)
 *   BENCH_SCENARIOS          comma list of small-c1, small-c16, big-c4 (default all three)
 *   BENCH_TARGETS            comma list of direct, nginx, plain, masked (default all four)
 *   BENCH_SMALL_BYTES        size of /v1/customers (default 2000)
 *   BENCH_BIG_BYTES          size of /v1/big (default 1000000)
 *   BENCH_GATEWAY_LOG_LEVEL  the gateway's log_level (default info)
 *
 * Results: Markdown tables on stdout, JSON in bench/results/http-<timestamp>.json.
 */
import { accessSync, constants } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { JournalBatch } from "../packages/portcullis/src/store/store.js";
import { httpMasking } from "../packages/portcullis/src/protocols/http/masking.js";
import { type HttpBenchGateway, startHttpBenchGateway } from "./lib/http-gateway.js";
import { type HttpUpstream, startHttpUpstream } from "./lib/http-upstream.js";
import { Nginx } from "./lib/nginx.js";
import { toolVersion } from "./lib/pgbench.js";
import {
  durationS, envGatewayLogLevel, envInt, envList, log, logCodeState, loadavgRounded, machine, machineLine, onCleanup, runBench,
  uncommittedNote, workDir, writeResult,
} from "./lib/run.js";
import { type LatencySummary, fmtRatio, fmtTps, median, ms, summarize } from "./lib/stats.js";
import { type Histogram, type WrkErrors, summarizeHistograms, wrk } from "./lib/wrk.js";

// ---- requirements, before anything starts ----

function findBinary(name: string, extraDirs: string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":").filter(Boolean), ...extraDirs]) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

const NGINX = findBinary("nginx", ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"]);
const WRK = findBinary("wrk");
if (!NGINX || !WRK) {
  const missing = [NGINX ? undefined : "nginx", WRK ? undefined : "wrk"].filter(Boolean).join(" and ");
  console.error(
    `bench/http.ts needs nginx (the reverse-proxy baseline) and wrk (the load generator); ${missing} not found on PATH` +
      `${NGINX ? "" : " or in /usr/sbin"}.\n` +
      "Install them, e.g. on Debian/Ubuntu: apt-get install -y nginx wrk\n" +
      "(The benchmarks do not run in CI, so .ci/run does not install them.)",
  );
  process.exit(1);
}

// ---- configuration ----

type TargetId = "direct" | "nginx" | "plain" | "masked";
type ScenarioId = "small-c1" | "small-c16" | "big-c4";
const ALL_TARGETS: TargetId[] = ["direct", "nginx", "plain", "masked"];
const ALL_SCENARIOS: ScenarioId[] = ["small-c1", "small-c16", "big-c4"];

const cfg = {
  seconds: envInt("BENCH_SECONDS", 5, 1),
  rounds: envInt("BENCH_ROUNDS", 3, 1),
  warmupSeconds: envInt("BENCH_WARMUP", 2, 0),
  scenarios: envList("BENCH_SCENARIOS", ALL_SCENARIOS, ALL_SCENARIOS),
  targets: envList("BENCH_TARGETS", ALL_TARGETS, ALL_TARGETS),
  smallBytes: envInt("BENCH_SMALL_BYTES", 2000, 100),
  bigBytes: envInt("BENCH_BIG_BYTES", 1_000_000, 1000),
  gatewayLogLevel: envGatewayLogLevel(),
};
const TARGETS: TargetId[] = ALL_TARGETS.filter((t) => cfg.targets.includes(t));
const SCENARIOS: ScenarioId[] = ALL_SCENARIOS.filter((s) => cfg.scenarios.includes(s));

const SCENARIO: Record<ScenarioId, { path: string; doc: "small" | "big"; threads: number; connections: number }> = {
  "small-c1": { path: "/v1/customers", doc: "small", threads: 1, connections: 1 },
  "small-c16": { path: "/v1/customers", doc: "small", threads: 2, connections: 16 },
  "big-c4": { path: "/v1/big", doc: "big", threads: 2, connections: 4 },
};

const LABEL: Record<TargetId, string> = { direct: "direct", nginx: "nginx", plain: "gw plain", masked: "gw masked" };
const isGateway = (t: TargetId): t is "plain" | "masked" => t === "plain" || t === "masked";

/** The masking configuration under test. */
const MASKING = [{ connections: ["masked"], keys: ["ssn"], detectors: ["email"], strategy: "redact" }];
/** The upstream's credential: nginx and the gateway connections add it; wrk sends it only to `direct`. */
const API_KEY = "bench-upstream-key-7c1d0e";
const EMAIL = /[a-z0-9.+-]+@example\.com/g;
const SSN = /\b\d{3}-\d{2}-\d{4}\b/g;

// ---- measuring the gateway ----

interface GatewayTally {
  commits: number;
  commitUs: number;
  auditRows: number;
  chunks: number;
  chunkBytes: number;
  verifies: number;
  verifyUs: number;
  touches: number;
  touchUs: number;
  /** Every commit's duration, µs. */
  commitDurationsUs: number[];
}
const emptyTally = (): GatewayTally => ({ commits: 0, commitUs: 0, auditRows: 0, chunks: 0, chunkBytes: 0, verifies: 0, verifyUs: 0, touches: 0, touchUs: 0, commitDurationsUs: [] });
/** A commit longer than this is counted as slow (in practice: one that ran SQLite's WAL checkpoint). */
const SLOW_COMMIT_US = 1000;

/**
 * Wraps, with an own property in front of each method: the store's commit (every journal commit:
 * session rows, audit records, recording chunks), the store's touchClientAddress (the
 * new-client-address detection, called for every session opened) and the token verifier's
 * verify (wall time, signature check on the libuv pool included).
 */
function instrument(g: HttpBenchGateway): { take(): GatewayTally } {
  let tally = emptyTally();
  const store = g.gw.store;
  const commit = store.commit.bind(store);
  store.commit = (batch: JournalBatch) => {
    const t0 = performance.now();
    try {
      commit(batch);
    } finally {
      const us = (performance.now() - t0) * 1000;
      tally.commitUs += us;
      tally.commitDurationsUs.push(us);
      tally.commits++;
      tally.auditRows += batch.audit.length;
      tally.chunks += batch.chunks.length;
      for (const c of batch.chunks) tally.chunkBytes += c.events.length;
    }
  };
  const touch = store.touchClientAddress.bind(store);
  store.touchClientAddress = (...args) => {
    const t0 = performance.now();
    try {
      return touch(...args);
    } finally {
      tally.touchUs += (performance.now() - t0) * 1000;
      tally.touches++;
    }
  };
  const verifier = g.gw.context.verifier;
  const verify = verifier.verify.bind(verifier);
  verifier.verify = async (token: string) => {
    const t0 = performance.now();
    try {
      return await verify(token);
    } finally {
      tally.verifyUs += (performance.now() - t0) * 1000;
      tally.verifies++;
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

/**
 * A request lasts milliseconds here (the slowest, a masked 1 MB body, ~100 ms under load): a
 * session older than this is not in flight but stuck (see `stuckSessions`), and is not waited for.
 */
const STUCK_AFTER_MS = 1000;

/**
 * Until no session is in flight (wrk's last requests ended), then one turn for the journal to
 * commit their ends. Returns whether that happened within the timeout, and how many sessions are
 * live but stuck: the gateway's pass-through path waits for a "drain" event that never comes when
 * the client has gone away mid-response (wrk closes its connections at the end of a run), so such
 * a session is never closed.
 */
async function drained(g: HttpBenchGateway, timeoutMs = 5000): Promise<{ ok: boolean; stuck: number }> {
  const deadline = Date.now() + timeoutMs;
  const live = () => g.gw.context.sessions.list();
  const inFlight = () => live().filter((s) => Date.now() - s.record.startedAt.getTime() < STUCK_AFTER_MS).length;
  while (inFlight() > 0) {
    if (Date.now() > deadline) return { ok: false, stuck: live().length };
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 30));
  await new Promise((r) => setImmediate(r));
  return { ok: true, stuck: live().length };
}

const lastSeq = (g: HttpBenchGateway): number => g.gw.store.lastAudit()?.seq ?? 0;

// ---- results ----

interface RoundResult {
  round: number;
  rps: number;
  mbps: number;
  requests: number;
  errors: WrkErrors;
  p50Us: number;
  p99Us: number;
  wallMs: number;
  loadavg1Before: number;
  loadavg1After: number;
  /** Upstream requests counted by the upstream itself, and its CPU µs per request. */
  upstreamRequests: number;
  upstreamCpuUsPerReq: number;
  /** nginx (master + worker) CPU µs per request; nginx target only. */
  nginxCpuUsPerReq?: number;
  /** Gateway targets only. */
  gateway?: {
    cpuUsPerReq: number;
    elu: number;
    /** Audit records written per request (seq after − before). */
    recordsPerReq: number;
    commitsPerReq: number;
    commitUsPerReq: number;
    /** Commits over SLOW_COMMIT_US per 1000 commits, and their share of the time in commits. */
    slowCommitsPerMille: number;
    slowCommitShare: number;
    recordingBytesPerReq: number;
    verifyUsMean: number;
    verifiesPerReq: number;
    touchUsPerReq: number;
    touchesPerReq: number;
    warnings: number;
    drained: boolean;
    /** Sessions left live (stuck) by this run: live after − live before. */
    stuckSessions: number;
  };
}

interface TargetResult {
  target: TargetId;
  rounds: RoundResult[];
  rpsMedian: number;
  rpsMin: number;
  rpsMax: number;
  mbpsMedian: number;
  /** All rounds' requests pooled (wrk histograms), µs. */
  latency: LatencySummary;
  upstreamCpuUsPerReq?: number;
  nginxCpuUsPerReq?: number;
  gateway?: Omit<NonNullable<RoundResult["gateway"]>, "warnings" | "drained" | "stuckSessions"> & {
    warnings: number;
    stuckSessions: number;
    /** Commit durations, all rounds pooled, µs. */
    commit: LatencySummary;
  };
}

interface ScenarioResult {
  name: ScenarioId;
  path: string;
  bodyBytes: number;
  threads: number;
  connections: number;
  seconds: number;
  targets: TargetResult[];
}

const medianOf = <R>(rs: R[], f: (r: R) => number | undefined): number | undefined => {
  const v = rs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length ? median(v) : undefined;
};

// ---- main ----

async function main(): Promise<void> {
  const work = workDir("portcullis-bench-http-");
  const started = new Date();
  const code = logCodeState();
  const estimateS = SCENARIOS.length * TARGETS.length * (cfg.rounds * (cfg.seconds + 0.7) + (cfg.warmupSeconds > 0 ? cfg.warmupSeconds + 0.7 : 0)) + 20;
  log(`plan: ${SCENARIOS.length} scenarios (${SCENARIOS.join(", ")}) × ${TARGETS.length} targets (${TARGETS.join(", ")}) × ${cfg.rounds} rounds × ${cfg.seconds} s; about ${Math.round(estimateS / 60)} min`);

  const upstream: HttpUpstream = await startHttpUpstream({ apiKey: API_KEY, smallBytes: cfg.smallBytes, bigBytes: cfg.bigBytes });
  onCleanup("upstream", () => upstream.stop());
  const upstreamBase = `http://${upstream.host}:${upstream.port}`;
  log(`upstream (pid ${upstream.pid}) on ${upstream.host}:${upstream.port}: /v1/customers ${upstream.small.bytes} B (${upstream.small.records} records), /v1/big ${upstream.big.bytes} B (${upstream.big.records} records)`);

  const nginx = await Nginx.start({ upstreamHost: upstream.host, upstreamPort: upstream.port, name: "api", setHeaders: { "X-Api-Key": API_KEY }, binary: NGINX });
  onCleanup("nginx", () => nginx.stop());
  log(`nginx (master pid ${nginx.pid}, workers ${nginx.workers().join(", ")}) on ${nginx.host}:${nginx.port}`);

  const gw = await startHttpBenchGateway({
    connections: ["plain", "masked"].map((name) => ({ name, url: upstreamBase, headers: { "X-Api-Key": API_KEY } })),
    masking: MASKING,
    logLevel: cfg.gatewayLogLevel,
  });
  onCleanup("gateway", () => gw.stop());
  const tallies = instrument(gw);
  const ttl = Math.max(3600, Math.round(estimateS * 3));
  const token = await gw.token("bench-agent", ["agents"], ttl);
  const authorization = `Bearer ${token}`;
  log(`gateway on ${gw.base} (log_level ${gw.logLevel}; recording.enabled ${gw.gw.config().recording.enabled}, max_result_bytes ${gw.gw.config().recording.max_result_bytes}); token ttl ${ttl} s`);

  const base: Record<TargetId, string> = {
    direct: upstreamBase,
    nginx: `http://${nginx.host}:${nginx.port}/c/api`,
    plain: `${gw.base}/c/plain`,
    masked: `${gw.base}/c/masked`,
  };
  const docs = { small: upstream.small, big: upstream.big };

  // The premise: nginx and `plain` pass the upstream's bytes unchanged; `masked` leaves no email or
  // SSN; the upstream refuses a request without the key; each gateway request is one session.
  const premise: Record<string, unknown> = {};
  {
    const get = async (t: TargetId, path: string, auth = true) => {
      const headers: Record<string, string> = auth ? { authorization } : {};
      if (t === "direct" && auth) headers["x-api-key"] = API_KEY;
      const res = await fetch(`${base[t]}${path}`, { headers });
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    };
    for (const path of ["/v1/customers", "/v1/big"]) {
      const direct = await get("direct", path);
      if (direct.status !== 200) throw new Error(`direct ${path}: status ${direct.status}`);
      const text = direct.body.toString("utf8");
      const emails = text.match(EMAIL)?.length ?? 0;
      const ssns = text.match(SSN)?.length ?? 0;
      const row: Record<string, unknown> = { bytes: direct.body.length, emails, ssns };
      for (const t of TARGETS.filter((x) => x !== "direct")) {
        const r = await get(t, path);
        if (r.status !== 200) throw new Error(`${t} ${path}: status ${r.status}: ${r.body.toString("utf8").slice(0, 300)}`);
        const s = r.body.toString("utf8");
        if (t === "masked") {
          const redacted = s.match(/\[REDACTED:/g)?.length ?? 0;
          const left = (s.match(EMAIL)?.length ?? 0) + (s.match(SSN)?.length ?? 0);
          row.masked = { bytes: r.body.length, redacted, emailsOrSsnsLeft: left };
          if (left !== 0 || redacted !== emails + ssns) throw new Error(`masked ${path}: ${redacted} redactions for ${emails} emails + ${ssns} SSNs, ${left} left unmasked`);
          JSON.parse(s);
        } else if (!r.body.equals(direct.body)) {
          throw new Error(`${t} ${path}: the body differs from the upstream's (${r.body.length} vs ${direct.body.length} bytes)`);
        }
      }
      premise[path] = row;
    }
    const noKey = await get("direct", "/v1/customers", false);
    if (noKey.status !== 401) throw new Error(`the upstream answered ${noKey.status} without an API key`);
    const noToken = await get("plain", "/v1/customers", false);
    if (noToken.status !== 401) throw new Error(`the gateway answered ${noToken.status} without a token`);
    await drained(gw);
    tallies.take();
    const seq0 = lastSeq(gw);
    await get("plain", "/v1/customers");
    await drained(gw);
    const t = tallies.take();
    premise.oneGatewayRequest = { auditRecords: lastSeq(gw) - seq0, commits: t.commits, recordingChunks: t.chunks, clientAddressWrites: t.touches, verifications: t.verifies };
    log(`check: ${JSON.stringify(premise)}`);
  }

  const upstreamStats = () => upstream.stats();
  let runNo = 0;
  async function runOnce(t: TargetId, sc: ScenarioId, seconds: number, round: number): Promise<{ r: RoundResult; h: Histogram; commitUs: number[] }> {
    const s = SCENARIO[sc];
    const g = isGateway(t) ? gw : undefined;
    let before = { ok: true, stuck: 0 };
    if (g) {
      before = await drained(g);
      g.resetCounters();
      tallies.take();
    }
    const seq0 = g ? lastSeq(g) : 0;
    const up0 = await upstreamStats();
    const nginx0 = t === "nginx" ? nginx.cpuUs() : undefined;
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const loadBefore = loadavg()[0]!;
    runNo++;
    const res = await wrk({
      url: `${base[t]}${s.path}`, threads: s.threads, connections: s.connections, seconds,
      authorization, ...(t === "direct" ? { apiKey: API_KEY } : {}), workDir: work, binary: WRK,
    });
    const elu = performance.eventLoopUtilization(elu0).utilization;
    const cpu = process.cpuUsage(cpu0);
    const nginx1 = t === "nginx" ? nginx.cpuUs() : undefined;
    const loadAfter = loadavg()[0]!;
    const reqs = Math.max(1, res.requests);
    let after = { ok: true, stuck: 0 };
    let tally = emptyTally();
    let records = 0;
    if (g) {
      after = await drained(g);
      tally = tallies.take();
      records = lastSeq(g) - seq0;
    }
    const up1 = await upstreamStats();
    const r: RoundResult = {
      round, rps: res.rps, mbps: res.mbps, requests: res.requests, errors: res.errors,
      p50Us: res.latency.p50, p99Us: res.latency.p99, wallMs: Math.round(res.wallMs),
      loadavg1Before: loadBefore, loadavg1After: loadAfter,
      upstreamRequests: up1.requests - up0.requests,
      upstreamCpuUsPerReq: (up1.cpuUs - up0.cpuUs) / reqs,
    };
    if (nginx0 !== undefined && nginx1 !== undefined) r.nginxCpuUsPerReq = (nginx1 - nginx0) / reqs;
    if (g) {
      r.gateway = {
        cpuUsPerReq: (cpu.user + cpu.system) / reqs,
        elu,
        recordsPerReq: records / reqs,
        commitsPerReq: tally.commits / reqs,
        commitUsPerReq: tally.commitUs / reqs,
        slowCommitsPerMille: (tally.commitDurationsUs.filter((d) => d > SLOW_COMMIT_US).length / Math.max(1, tally.commits)) * 1000,
        slowCommitShare: tally.commitUs > 0 ? tally.commitDurationsUs.filter((d) => d > SLOW_COMMIT_US).reduce((a, b) => a + b, 0) / tally.commitUs : Number.NaN,
        recordingBytesPerReq: tally.chunkBytes / reqs,
        verifyUsMean: tally.verifies ? tally.verifyUs / tally.verifies : Number.NaN,
        verifiesPerReq: tally.verifies / reqs,
        touchUsPerReq: tally.touchUs / reqs,
        touchesPerReq: tally.touches / reqs,
        warnings: g.warnings,
        drained: before.ok && after.ok,
        stuckSessions: after.stuck - before.stuck,
      };
      if (g.warnings > 0) log(`  gateway warnings (${g.warnings}):\n    ${g.lastWarnings.join("\n    ")}`);
      if (!r.gateway.drained) log(`  note: the gateway still had sessions in flight 5 s after wrk ended; counts may spill into the next run`);
    }
    const errs = Object.entries(res.errors).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ");
    const gwr = r.gateway;
    log(`  ${`run ${runNo}`.padEnd(7)} ${sc.padEnd(9)} ${LABEL[t].padEnd(9)} ${round > 0 ? `round ${round}` : "warm-up"}: ${fmtTps(res.rps).padStart(6)} req/s ${res.mbps.toFixed(1).padStart(6)} MB/s  p50 ${ms(res.latency.p50)} ms  p99 ${ms(res.latency.p99)} ms` +
      `  upstream ${r.upstreamCpuUsPerReq.toFixed(0)} µs/req` +
      (r.nginxCpuUsPerReq !== undefined ? `  nginx ${r.nginxCpuUsPerReq.toFixed(0)} µs/req` : "") +
      (gwr ? `  gw ${gwr.cpuUsPerReq.toFixed(0)} µs/req, elu ${(gwr.elu * 100).toFixed(0)}%, ${gwr.recordsPerReq.toFixed(2)} records/req, ${gwr.commitsPerReq.toFixed(2)} commits/req (${gwr.commitUsPerReq.toFixed(0)} µs/req, ${gwr.slowCommitsPerMille.toFixed(1)}‰ over ${SLOW_COMMIT_US / 1000} ms), verify ${gwr.verifyUsMean.toFixed(0)} µs, address write ${gwr.touchUsPerReq.toFixed(0)} µs/req, ${gwr.stuckSessions} sessions left stuck (${after.stuck} in all)` : "") +
      (errs ? `  ERRORS: ${errs}` : ""));
    if (res.errors.status > 0 || res.errors.connect > 0) {
      throw new Error(`${LABEL[t]} ${sc}: wrk saw ${errs}; the target is not answering as it should (see the gateway log ${g ? g.logFile : ""} / nginx error log:\n${t === "nginx" ? nginx.errorLogTail() : ""})`);
    }
    return { r, h: res.histogram, commitUs: tally.commitDurationsUs };
  }

  if (cfg.warmupSeconds > 0) {
    log(`warm-up: ${cfg.warmupSeconds} s per target and scenario (discarded)`);
    for (const sc of SCENARIOS) for (const t of TARGETS) await runOnce(t, sc, cfg.warmupSeconds, 0);
  }

  const results: ScenarioResult[] = [];
  for (const sc of SCENARIOS) {
    log(`scenario ${sc}`);
    const rounds = new Map<TargetId, RoundResult[]>(TARGETS.map((t) => [t, []]));
    const hists = new Map<TargetId, Histogram[]>(TARGETS.map((t) => [t, []]));
    const commits = new Map<TargetId, number[]>(TARGETS.map((t) => [t, []]));
    for (let round = 1; round <= cfg.rounds; round++) {
      // Rotated each round, so no target always runs right after the same other one.
      const order = TARGETS.map((_, i) => TARGETS[(i + round - 1) % TARGETS.length]!);
      for (const t of order) {
        const { r, h, commitUs } = await runOnce(t, sc, cfg.seconds, round);
        rounds.get(t)!.push(r);
        hists.get(t)!.push(h);
        for (const d of commitUs) commits.get(t)!.push(d);
      }
    }
    const s = SCENARIO[sc];
    results.push({
      name: sc, path: s.path, bodyBytes: docs[s.doc].bytes, threads: s.threads, connections: s.connections, seconds: cfg.seconds,
      targets: TARGETS.map((t): TargetResult => {
        const rs = rounds.get(t)!;
        const rps = rs.map((r) => r.rps);
        const out: TargetResult = {
          target: t, rounds: rs, rpsMedian: median(rps), rpsMin: Math.min(...rps), rpsMax: Math.max(...rps),
          mbpsMedian: median(rs.map((r) => r.mbps)), latency: summarizeHistograms(hists.get(t)!),
        };
        const up = medianOf(rs, (r) => r.upstreamCpuUsPerReq);
        if (up !== undefined) out.upstreamCpuUsPerReq = up;
        const nx = medianOf(rs, (r) => r.nginxCpuUsPerReq);
        if (nx !== undefined) out.nginxCpuUsPerReq = nx;
        if (isGateway(t)) {
          const m = (f: (x: NonNullable<RoundResult["gateway"]>) => number) => medianOf(rs, (r) => (r.gateway ? f(r.gateway) : undefined)) ?? Number.NaN;
          out.gateway = {
            cpuUsPerReq: m((x) => x.cpuUsPerReq), elu: m((x) => x.elu), recordsPerReq: m((x) => x.recordsPerReq),
            commitsPerReq: m((x) => x.commitsPerReq), commitUsPerReq: m((x) => x.commitUsPerReq),
            slowCommitsPerMille: m((x) => x.slowCommitsPerMille), slowCommitShare: m((x) => x.slowCommitShare),
            commit: summarize(Float64Array.from(commits.get(t)!)),
            recordingBytesPerReq: m((x) => x.recordingBytesPerReq),
            verifyUsMean: m((x) => x.verifyUsMean), verifiesPerReq: m((x) => x.verifiesPerReq),
            touchUsPerReq: m((x) => x.touchUsPerReq), touchesPerReq: m((x) => x.touchesPerReq),
            warnings: rs.reduce((n, r) => n + (r.gateway?.warnings ?? 0), 0),
            stuckSessions: rs.reduce((n, r) => n + (r.gateway?.stuckSessions ?? 0), 0),
          };
        }
        return out;
      }),
    });
  }

  // ---- the components alone, one call at a time, the gateway otherwise idle ----
  log("components: one call at a time in this process (the gateway idle)");
  const components = await measureComponents(gw, token, upstreamBase);
  for (const c of components) log(`  ${c.name}: ${c.wallUs.toFixed(1)} µs wall, ${c.cpuUs.toFixed(1)} µs CPU per call (${c.calls} calls)`);

  const nginxWarnings = nginx.errorLog().split("\n").filter((l) => /\[(warn|error|crit|alert|emerg)\]/.test(l));
  if (nginxWarnings.length > 0) log(`nginx error log: ${nginxWarnings.length} lines at warn or above, e.g.\n    ${nginxWarnings.slice(-3).join("\n    ")}`);

  const finished = new Date();
  const environment = {
    ...machine(),
    nginx: (await toolVersion(NGINX!, ["-v"])).replace(/^nginx version:\s*/, ""),
    wrk: (await toolVersion(WRK!, ["-v"])).replace(/\s+Copyright.*$/, ""),
    commit: code.commit,
    uncommittedGatewaySourceFiles: code.uncommittedSourceFiles,
    loadavgAtEnd: loadavgRounded(),
  };

  const table = renderTables(results, components);
  console.log(`\n${table}\n`);
  const took = durationS(started, finished);
  console.log(`Machine: ${machineLine(environment)}; ${environment.nginx}; ${environment.wrk}; commit ${environment.commit ?? "?"}` +
    `${uncommittedNote(code)}; load average at end ${environment.loadavgAtEnd.join(" ")}; run took ${Math.floor(took / 60)} min ${took % 60} s`);

  writeResult("http", started, finished, {
    config: cfg,
    environment,
    setup: {
      upstream: `node:http in a child process (bench/lib/http-upstream-server.ts), documents built once; /v1/customers ${docs.small.bytes} B (${docs.small.records} records), /v1/big ${docs.big.bytes} B (${docs.big.records} records); requires X-Api-Key`,
      nginx: "bench/lib/nginx.ts: daemon off, worker_processes 1, access_log off, proxy_pass to an upstream block with keepalive 32, HTTP/1.1, Connection \"\", Authorization dropped, X-Api-Key set; keepalive_requests raised on both sides; proxy buffering default (on)",
      gateway: `bench/lib/http-gateway.ts in this process, log_level ${cfg.gatewayLogLevel}, dev issuer (EdDSA tokens), connections plain and masked (credentials.headers X-Api-Key), no policy rules, audit and recording at their defaults`,
      masking: MASKING,
      load: "wrk with a Lua script adding Authorization (and X-Api-Key for direct) from the environment; --timeout 10s; histogram from done()",
      instrumentation: "store.commit, store.touchClientAddress and verifier.verify wrapped with performance.now(); gateway CPU = process.cpuUsage() of this process; nginx CPU = /proc/<pid>/stat of master + worker; upstream CPU = its own process.cpuUsage()",
      order: "targets rotate each round; warm-up runs every target once per scenario first",
    },
    premise,
    nginxErrorLogWarnings: nginxWarnings.length,
    scenarios: results,
    components,
    table,
  });
}

// ---- components ----

interface ComponentCost {
  name: string;
  calls: number;
  /** Mean wall time per call, µs. */
  wallUs: number;
  /** Mean CPU time (this process, all threads) per call, µs. */
  cpuUs: number;
}

async function timeCalls(name: string, calls: number, f: () => unknown): Promise<ComponentCost> {
  for (let i = 0; i < Math.min(50, calls); i++) await f();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await f();
  const wallUs = ((performance.now() - t0) * 1000) / calls;
  const cpu = process.cpuUsage(cpu0);
  return { name, calls, wallUs, cpuUs: (cpu.user + cpu.system) / calls };
}

async function measureComponents(gw: HttpBenchGateway, token: string, upstreamBase: string): Promise<ComponentCost[]> {
  const out: ComponentCost[] = [];
  const verifier = gw.gw.context.verifier;
  out.push(await timeCalls("token verification (dev issuer, EdDSA, jose)", 3000, () => verifier.verify(token)));
  const store = gw.gw.store;
  let n = 0;
  out.push(await timeCalls("client-address write (store.touchClientAddress, same row)", 3000, () => store.touchClientAddress("bench-agent", "urn:portcullis:dev-issuer", "127.0.0.1", Date.now() + n++)));
  const masking = httpMasking(gw.gw.config(), "masked", gw.gw.context.maskingKey);
  for (const [doc, calls] of [["customers", 2000], ["big", 20]] as const) {
    const res = await fetch(`${upstreamBase}/v1/${doc}`, { headers: { "x-api-key": API_KEY } });
    const text = await res.text();
    out.push(await timeCalls(`masking /v1/${doc} (${text.length} B, JSON keys + email detector)`, calls, () => masking.json(text)));
  }
  return out;
}

// ---- tables ----

function renderTables(scenarios: ScenarioResult[], components: ComponentCost[]): string {
  const out: string[] = [];
  const get = (s: ScenarioResult, t: TargetId) => s.targets.find((x) => x.target === t);
  const rps = (s: ScenarioResult, t: TargetId) => get(s, t)?.rpsMedian ?? Number.NaN;
  const num = (v: number | undefined, digits = 0) => (v !== undefined && Number.isFinite(v) ? v.toFixed(digits) : "–");
  const pct = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? `${(v * 100).toFixed(0)}%` : "–");
  const scenarioName = (s: ScenarioResult) => `${s.name} (${s.bodyBytes >= 100_000 ? `${(s.bodyBytes / 1e6).toFixed(1)} MB` : `${s.bodyBytes} B`}, -t${s.threads} -c${s.connections})`;

  out.push("Throughput: wrk, req/s = median of rounds; MB/s = bytes read by wrk (headers and bodies) per second, median of rounds; p50 / p99 = per-request latency in ms, all rounds pooled. " +
    "Proxy CPU = CPU time per request of the hop in front of the upstream: nginx's master + worker, or the gateway's process (all threads); upstream CPU = the upstream child's.");
  out.push("");
  out.push("| scenario | target | req/s | vs nginx | vs direct | MB/s | p50 / p99 ms | proxy CPU µs/req | upstream CPU µs/req |");
  out.push("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const s of scenarios) {
    for (const t of s.targets) {
      const proxyCpu = t.gateway?.cpuUsPerReq ?? t.nginxCpuUsPerReq;
      out.push(`| ${[
        scenarioName(s), LABEL[t.target], fmtTps(t.rpsMedian), fmtRatio(t.rpsMedian, rps(s, "nginx")), fmtRatio(t.rpsMedian, rps(s, "direct")),
        num(t.mbpsMedian, 1), `${ms(t.latency.p50)} / ${ms(t.latency.p99)}`, num(proxyCpu), num(t.upstreamCpuUsPerReq),
      ].join(" | ")} |`);
    }
  }
  out.push("");

  const gws = scenarios.flatMap((s) => s.targets.filter((t) => t.gateway).map((t) => ({ s, t, g: t.gateway! })));
  if (gws.length > 0) {
    out.push("Gateway, per request (medians of rounds): event loop busy = event-loop utilisation; audit records and commits (journal group commit) per request and the time inside commits; commit µs = each commit's duration, all rounds pooled; " +
      `slow = commits over ${SLOW_COMMIT_US / 1000} ms per 1000 commits (their share of the time in commits); ` +
      "recording = recording events written; token verify = wall time of verifier.verify (signature check on the libuv pool included); address write = store.touchClientAddress (the new-client-address detection, one SQLite transaction per session); " +
      "stuck = sessions the rounds left open for good (a client that left mid-response; see the reading in docs/benchmarks.md), summed over rounds.");
    out.push("");
    out.push("| scenario | target | CPU µs/req | event loop busy | audit records/req | commits/req | in commit µs/req | commit µs p50 / p99 / max | slow commits ‰ (time share) | recording B/req | token verify µs | address write µs/req | stuck sessions | warnings |");
    out.push("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const { s, t, g } of gws) {
      out.push(`| ${[
        s.name, LABEL[t.target], num(g.cpuUsPerReq), pct(g.elu), num(g.recordsPerReq, 2), num(g.commitsPerReq, 2), num(g.commitUsPerReq),
        `${num(g.commit.p50)} / ${num(g.commit.p99)} / ${num(g.commit.max)}`, `${num(g.slowCommitsPerMille, 1)} (${pct(g.slowCommitShare)})`,
        num(g.recordingBytesPerReq), num(g.verifyUsMean), num(g.touchUsPerReq), String(g.stuckSessions), String(g.warnings),
      ].join(" | ")} |`);
    }
    out.push("");
  }

  if (components.length > 0) {
    out.push("Components alone (one call at a time, in the gateway's process, the gateway otherwise idle):");
    out.push("");
    out.push("| component | calls | wall µs/call | CPU µs/call |");
    out.push("| --- | ---: | ---: | ---: |");
    for (const c of components) out.push(`| ${c.name} | ${c.calls} | ${num(c.wallUs, 1)} | ${num(c.cpuUs, 1)} |`);
    out.push("");
  }

  out.push("Per-round req/s, in run order (spread = (max - min) / median):");
  out.push("");
  for (const s of scenarios) {
    out.push(`- ${s.name}: ${s.targets.map((t) => `${LABEL[t.target]} [${t.rounds.map((r) => fmtTps(r.rps)).join(", ")}] ±${(((t.rpsMax - t.rpsMin) / t.rpsMedian) * 100).toFixed(0)}%`).join("; ")}`);
  }
  return out.join("\n");
}

await runBench(main);
