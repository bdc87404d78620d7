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
