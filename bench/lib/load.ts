import { ascending, percentile, summarize } from './stats.js';

/** Latency figures of one set of requests, milliseconds. */
export interface Latency {
  n: number;
  median: number;
  p95: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Median, p95 and p99 (nearest rank), mean, min and max; null for no values. */
export function latency(values: number[]): Latency | null {
  const v = ascending(values);
  const s = summarize(v);
  if (!s) return null;
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return { n: s.n, median: round(s.median), p95: round(percentile(v, 95)), p99: round(percentile(v, 99)), mean: round(v.reduce((a, b) => a + b, 0) / v.length), min: round(s.min), max: round(s.max) };
}

/** Why a bounded load ended. */
export type StopReason = 'count' | 'time' | 'errors' | 'aborted';

/** Outcome of a bounded load. */
export interface LoadResult {
  requested: number;
  concurrency: number;
  ok: number;
  errors: number;
  stopped_by: StopReason;
  /** From the first request sent to the last answer, seconds. */
  elapsed_s: number;
  /** Successful operations per second over `elapsed_s`. */
  rate_per_s: number;
  latency_ms: Latency | null;
  /** The first few failures, as text. */
  error_samples: string[];
  /** Every successful operation's latency in ms, in completion order (kept when asked). */
  latencies_ms?: number[];
  /** Seconds since the start at every `progressEvery` successes: whether the rate changes as the load goes on. */
  progress?: { ok: number; elapsed_s: number }[];
}

/**
 * Runs `op(i)` for i = 0 .. count-1 with `concurrency` operations in flight,
 * starting no new one after `timeLimitS`, once `maxErrors` have failed, or
 * once `aborted()` says so.
 * `op` resolves with its latency in ms, or rejects (a failure). Never rejects.
 */
export async function boundedLoad(opts: { count: number; concurrency: number; timeLimitS: number; maxErrors: number; keepLatencies: boolean; progressEvery?: number; aborted?: () => boolean; op: (i: number) => Promise<number> }): Promise<LoadResult> {
  const lat: number[] = [];
  const progress: { ok: number; elapsed_s: number }[] = [];
  const samples: string[] = [];
  let next = 0;
  let errors = 0;
  let stopped: StopReason = 'count';
  const t0 = performance.now();
  const deadline = t0 + opts.timeLimitS * 1000;
  let last = t0;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (next >= opts.count) return;
      if (opts.aborted?.()) {
        stopped = 'aborted';
        return;
      }
      if (errors >= opts.maxErrors) {
        stopped = 'errors';
        return;
      }
      if (performance.now() >= deadline) {
        if (stopped === 'count') stopped = 'time';
        return;
      }
      const i = next++;
      try {
        lat.push(await opts.op(i));
        if (opts.progressEvery && lat.length % opts.progressEvery === 0) progress.push({ ok: lat.length, elapsed_s: Math.round(performance.now() - t0) / 1000 });
      } catch (err) {
        errors++;
        if (samples.length < 5) samples.push(err instanceof Error ? err.message : String(err));
      }
      last = performance.now();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, opts.count)) }, () => worker()));
  const elapsed_s = (last - t0) / 1000;
  const result: LoadResult = {
    requested: opts.count,
    concurrency: opts.concurrency,
    ok: lat.length,
    errors,
    stopped_by: stopped,
    elapsed_s: Math.round(elapsed_s * 1000) / 1000,
    rate_per_s: elapsed_s > 0 ? Math.round((lat.length / elapsed_s) * 100) / 100 : 0,
    latency_ms: latency(lat),
    error_samples: samples,
  };
  if (opts.progressEvery) result.progress = progress;
  if (opts.keepLatencies) result.latencies_ms = lat.map((x) => Math.round(x * 100) / 100);
  return result;
}
