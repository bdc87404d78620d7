/**
 * Runs wrk (https://github.com/wg/wrk, the Debian package) as a child process. Request headers
 * (the agent's bearer token, the upstream's API key for direct runs) are added by a Lua script
 * that reads them from the environment, so they never appear in argv where `ps` shows them. The
 * script's done() writes what wrk measured to a JSON file: requests, bytes, errors, and the whole
 * latency histogram (µs, one count per distinct value), from which we compute percentiles
 * ourselves, also over several runs pooled.
 *
 * wrk measures each request from its write to the end of its response, on connections kept open
 * for the whole run; a request is sent as soon as the previous one on its connection has been
 * answered (closed loop, no coordinated-omission correction).
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runChild } from "./pgbench.js";
import type { LatencySummary } from "./stats.js";

const SCRIPT = `-- written by bench/lib/wrk.ts
local auth = os.getenv("BENCH_WRK_AUTHORIZATION")
local key = os.getenv("BENCH_WRK_API_KEY")
if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
if key ~= nil and key ~= "" then wrk.headers["X-Api-Key"] = key end

function done(summary, latency, requests)
  local f = assert(io.open(os.getenv("BENCH_WRK_OUT"), "w"))
  local e = summary.errors
  f:write(string.format('{"durationUs":%d,"requests":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
  f:write(string.format('"latency":{"min":%d,"max":%d,"mean":%.3f,"stdev":%.3f},"histogram":[', latency.min, latency.max, latency.mean, latency.stdev))
  local n = #latency
  for i = 1, n do
    local v, c = latency(i)
    if i > 1 then f:write(",") end
    f:write(string.format("%d,%d", v, c))
  end
  f:write("]}\\n")
  f:close()
end
`;

/** Latency histogram: distinct values (µs, ascending) and how many requests took each. */
export interface Histogram {
  values: number[];
  counts: number[];
}

export interface WrkErrors {
  connect: number;
  read: number;
  write: number;
  /** Responses with a status outside 2xx and 3xx. */
  status: number;
  timeout: number;
}

export interface WrkResult {
  requests: number;
  durationUs: number;
  /** Bytes read by wrk: status lines, headers and bodies. */
  bytes: number;
  errors: WrkErrors;
  /** requests / duration. */
  rps: number;
  /** bytes / duration, 10^6 bytes per second. */
  mbps: number;
  latency: LatencySummary;
  histogram: Histogram;
  wallMs: number;
  stdout: string;
}

export interface WrkOptions {
  url: string;
  threads: number;
  connections: number;
  seconds: number;
  /** Request headers, passed through the environment. */
  authorization?: string;
  apiKey?: string;
  /** Folder for the Lua script and the result file (kept: the script is reused, results overwritten). */
  workDir: string;
  /** wrk --timeout, seconds (default 10): a request slower than this counts as a timeout. */
  timeoutS?: number;
  /** The wrk binary (default: `wrk` on PATH). */
  binary?: string;
}

/** Writes the Lua script into `dir` once; returns its path. */
export function wrkScript(dir: string): string {
  const file = join(dir, "portcullis-bench.lua");
  writeFileSync(file, SCRIPT, { mode: 0o600 });
  return file;
}

export async function wrk(o: WrkOptions): Promise<WrkResult> {
  const script = wrkScript(o.workDir);
  const outFile = join(o.workDir, "wrk-result.json");
  rmSync(outFile, { force: true });
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_WRK_OUT: outFile };
  if (o.authorization) env.BENCH_WRK_AUTHORIZATION = o.authorization;
  if (o.apiKey) env.BENCH_WRK_API_KEY = o.apiKey;
  const args = [
    "-t", String(o.threads), "-c", String(o.connections), "-d", `${o.seconds}s`,
    "--timeout", `${o.timeoutS ?? 10}s`, "--latency", "-s", script, o.url,
  ];
  const { code, stdout, stderr, wallMs } = await runChild(o.binary ?? "wrk", args, { env, timeoutMs: (o.seconds + 60) * 1000 });
  if (code !== 0) throw new Error(`wrk ${args.join(" ")} exited ${code}:\n${(stderr || stdout).trim().split("\n").slice(-15).join("\n")}`);
  let raw: { durationUs: number; requests: number; bytes: number; errors: WrkErrors; latency: { mean: number }; histogram: number[] };
  try {
    raw = JSON.parse(readFileSync(outFile, "utf8"));
  } catch (err) {
    throw new Error(`wrk wrote no readable result (${(err as Error).message}); it printed:\n${stdout}\n${stderr}`);
  }
  const histogram: Histogram = { values: [], counts: [] };
  for (let i = 0; i + 1 < raw.histogram.length; i += 2) {
    histogram.values.push(raw.histogram[i]!);
    histogram.counts.push(raw.histogram[i + 1]!);
  }
  const s = raw.durationUs / 1e6;
  return {
    requests: raw.requests,
    durationUs: raw.durationUs,
    bytes: raw.bytes,
    errors: raw.errors,
    rps: s > 0 ? raw.requests / s : Number.NaN,
    mbps: s > 0 ? raw.bytes / s / 1e6 : Number.NaN,
    latency: summarizeHistograms([histogram]),
    histogram,
    wallMs,
    stdout,
  };
}

/** Nearest-rank percentiles (as stats.ts summarize()) over several histograms pooled, µs. */
export function summarizeHistograms(hs: Histogram[]): LatencySummary {
  const merged = new Map<number, number>();
  for (const h of hs) for (let i = 0; i < h.values.length; i++) merged.set(h.values[i]!, (merged.get(h.values[i]!) ?? 0) + h.counts[i]!);
  const values = [...merged.keys()].sort((a, b) => a - b);
  let count = 0;
  let sum = 0;
  for (const v of values) {
    count += merged.get(v)!;
    sum += v * merged.get(v)!;
  }
  // Cumulative counts; the percentile is the smallest value whose cumulative count reaches the rank.
  const cumulative = new Float64Array(values.length);
  let acc = 0;
  values.forEach((v, i) => (cumulative[i] = acc += merged.get(v)!));
  const at = (p: number): number => {
    if (count === 0) return Number.NaN;
    const rank = Math.min(count, Math.max(1, Math.ceil((p / 100) * count)));
    let lo = 0;
    let hi = values.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! >= rank) hi = mid;
      else lo = mid + 1;
    }
    return values[lo]!;
  };
  return {
    count,
    mean: count ? sum / count : Number.NaN,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: values.length ? values[values.length - 1]! : Number.NaN,
  };
}
