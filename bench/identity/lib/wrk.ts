import { runCommand } from '../../lib/proc.js';

/** What one wrk run measured (from the BENCH_RESULT line of wrk/report.lua). */
export interface WrkResult {
  requests: number;
  seconds: number;
  /** Completed requests per second over the run. */
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
  /** Responses with a status outside 2xx. */
  non2xx: number;
  last_non2xx_status: number;
  connect_errors: number;
  /** Includes a server closing the connection after each response (Keystone under uwsgi). */
  read_errors: number;
  write_errors: number;
  timeouts: number;
  /** wrk's own "Requests/sec:" line, as a cross-check of `rps`. */
  wrk_requests_per_sec: number | null;
}

/** Options of one wrk run. */
export interface WrkOptions {
  /** Base URL, e.g. http://127.0.0.1:5001 (the script sets the path). */
  url: string;
  /** Path of the Lua script. */
  script: string;
  concurrency: number;
  durationS: number;
  /** Extra environment for the script. */
  env: Record<string, string>;
}

const NUMBER_KEYS: (keyof WrkResult)[] = ['requests', 'seconds', 'rps', 'p50_ms', 'p90_ms', 'p99_ms', 'max_ms', 'mean_ms', 'non2xx', 'last_non2xx_status', 'connect_errors', 'read_errors', 'write_errors', 'timeouts'];

/**
 * Runs `wrk -t1 -c<N> -d<D>s --timeout 30s --latency -s <script> <url>` and
 * parses its result. Rejects when wrk fails or prints no result line.
 */
export async function runWrk(opts: WrkOptions): Promise<{ result: WrkResult; stdout: string }> {
  const args = ['-t1', `-c${opts.concurrency}`, `-d${opts.durationS}s`, '--timeout', '30s', '--latency', '-s', opts.script, opts.url];
  const r = await runCommand('wrk', args, { env: { ...process.env, ...opts.env }, timeoutMs: (opts.durationS + 90) * 1000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (r.code !== 0 || !line) {
    throw new Error(`wrk ${args.join(' ')} failed (exit ${r.code ?? r.signal}):\n${r.stdout}${r.stderr}`);
  }
  const parsed: unknown = JSON.parse(line.slice('BENCH_RESULT '.length));
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`wrk: cannot parse ${line}`);
  const record = parsed as Record<string, unknown>;
  const result = { wrk_requests_per_sec: null } as Record<string, number | null>;
  for (const key of NUMBER_KEYS) {
    const v = record[key];
    if (typeof v !== 'number') throw new Error(`wrk: ${key} missing in ${line}`);
    result[key] = v;
  }
  const m = /^Requests\/sec:\s+([\d.]+)/m.exec(r.stdout);
  result.wrk_requests_per_sec = m ? Number(m[1]) : null;
  return { result: result as unknown as WrkResult, stdout: r.stdout };
}
