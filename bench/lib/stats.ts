/** Small statistics helpers for the benchmarks: no dependencies, numbers in, numbers out. */

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Nearest-rank percentile (p in 0..100) of an already sorted array: the smallest value with at
 * least p% of the samples at or below it. Exact on the samples, no interpolation.
 */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface LatencySummary {
  count: number;
  /** Microseconds. */
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Summary of latencies in microseconds; sorts `us` in place. */
export function summarize(us: Float64Array): LatencySummary {
  us.sort();
  let sum = 0;
  for (let i = 0; i < us.length; i++) sum += us[i]!;
  return {
    count: us.length,
    mean: us.length ? sum / us.length : Number.NaN,
    p50: percentileSorted(us, 50),
    p90: percentileSorted(us, 90),
    p99: percentileSorted(us, 99),
    p999: percentileSorted(us, 99.9),
    max: us.length ? us[us.length - 1]! : Number.NaN,
  };
}

/** Concatenates latency arrays (rounds pooled into one distribution). */
export function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- formatting for the Markdown tables and the log ----

/** µs → ms with three decimals. */
export const ms = (us: number) => (us / 1000).toFixed(3);
export const fmtTps = (t: number) => (Number.isFinite(t) ? Math.round(t).toString() : "–");
export const fmtRatio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : "–");
export const mib = (bytes: number) => bytes / 2 ** 20;
export const fmtMiB = (bytes: number) => (Number.isFinite(bytes) ? mib(bytes).toFixed(1) : "–");
/** "p50 / p99" in ms, or "–" when there is no summary. */
export const fmtP50P99 = (x: LatencySummary | undefined) => (x ? `${ms(x.p50)} / ${ms(x.p99)}` : "–");

/** Median, min and max of the rounds' TPS. */
export function tpsSpread(tps: number[]): { tpsMedian: number; tpsMin: number; tpsMax: number } {
  return { tpsMedian: median(tps), tpsMin: Math.min(...tps), tpsMax: Math.max(...tps) };
}
