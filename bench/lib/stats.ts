/** Median and range of some measurements. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** The finite values, smallest first. */
export function ascending(values: number[]): number[] {
  return values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
}

/** Median [min .. max] of the finite values, or null for none. */
export function summarize(values: number[]): Summary | null {
  const v = ascending(values);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? (v[mid] ?? 0) : ((v[mid - 1] ?? 0) + (v[mid] ?? 0)) / 2;
  return { median, min: v[0] ?? 0, max: v[v.length - 1] ?? 0, n: v.length };
}

/** The nearest-rank `p`-th percentile (0 < p <= 100) of values sorted smallest first; 0 for none. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}
