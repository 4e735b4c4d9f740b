import { summarize } from '../../lib/stats.js';
import { markdownTable } from '../../lib/table.js';
import type { DiskResult, SmallOp, SmallRun, TargetResult } from './scenario.js';
import type { Settings } from './settings.js';

/** The replica count both targets use (Stratus' default ring, Swift's policy `triple`). */
export const REPLICAS = 3;

/** Debian's Swift with 3 replicas as the issue measured it on this machine kind (quiet host; 64 MiB objects). */
export const ISSUE_REFERENCE = { put_c16: 158, get_c16: 716, put_big_mib_s: 164, get_big_mib_s: 298, rss_mib: 818 };

/** One row of the main table, with the numbers behind it (medians over the runs). */
export interface Row {
  metric: string;
  stratus: number | null;
  swift: number | null;
  /** Stratus / Swift (for latencies and memory: Swift / Stratus, so that above 1 is always Stratus doing better). */
  ratio: number | null;
  /** The disk's limit for the same work (PUT: one copy's figure / 3 replicas). */
  limit: number | null;
  /** Stratus / limit. */
  of_limit: number | null;
  /** How the cells print, when not one number. */
  text?: { stratus: string; swift: string; limit: string };
}

function median(values: (number | null)[]): number | null {
  return summarize(values.filter((v): v is number => v !== null))?.median ?? null;
}

function div(a: number | null, b: number | null): number | null {
  return a !== null && b !== null && b > 0 ? a / b : null;
}

function smallRuns(runs: SmallRun[], op: SmallOp, c: number): { rate: number | null; p50: number | null; p99: number | null } {
  const mine = runs.filter((r) => r.op === op && r.concurrency === c && r.ok > 0);
  return { rate: median(mine.map((r) => r.rate_per_s)), p50: median(mine.map((r) => r.p50_ms)), p99: median(mine.map((r) => r.p99_ms)) };
}

function size(s: Settings): string {
  return s.objBytes % 1024 === 0 ? `${s.objBytes / 1024} KiB` : `${s.objBytes} B`;
}

function fmt(v: number | null): string {
  if (v === null) return '-';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function pairText(a: number | null, b: number | null): string {
  return a === null && b === null ? '-' : `${fmt(a)} / ${fmt(b)}`;
}

/** The rows of the main table. */
export function buildRows(s: Settings, stratus: TargetResult | null, swift: TargetResult | null, disk: DiskResult): Row[] {
  const rows: Row[] = [];
  const size = s.objBytes % 1024 === 0 ? `${s.objBytes / 1024} KiB` : `${s.objBytes} B`;
  if (s.parts.includes('small')) {
    for (const c of s.concurrency) {
      for (const op of ['put', 'get'] as const) {
        const st = smallRuns(stratus?.small ?? [], op, c);
        const sw = smallRuns(swift?.small ?? [], op, c);
        const dk = smallRuns(disk.small, op, c);
        const limit = dk.rate === null ? null : op === 'put' ? dk.rate / REPLICAS : dk.rate;
        rows.push({ metric: `${size} ${op.toUpperCase()} c=${c}, ops/s`, stratus: st.rate, swift: sw.rate, ratio: div(st.rate, sw.rate), limit, of_limit: div(st.rate, limit) });
        rows.push({
          metric: `${size} ${op.toUpperCase()} c=${c}, p50 / p99 ms`,
          stratus: st.p50,
          swift: sw.p50,
          ratio: div(sw.p50, st.p50),
          limit: null,
          of_limit: null,
          text: { stratus: pairText(st.p50, st.p99), swift: pairText(sw.p50, sw.p99), limit: pairText(dk.p50, dk.p99) },
        });
      }
    }
  }
  if (s.parts.includes('large')) {
    for (const op of ['put', 'get'] as const) {
      const st = median((stratus?.large ?? []).filter((r) => r.op === op).map((r) => r.mib_s));
      const sw = median((swift?.large ?? []).filter((r) => r.op === op).map((r) => r.mib_s));
      const dd = median(disk.large.map((r) => s.bigMib / (op === 'put' ? r.write_s : r.read_cached_s)));
      const limit = dd === null ? null : op === 'put' ? dd / REPLICAS : dd;
      rows.push({ metric: `${s.bigMib} MiB ${op.toUpperCase()}, MiB/s`, stratus: st, swift: sw, ratio: div(st, sw), limit, of_limit: div(st, limit) });
    }
  }
  for (const [label, key] of [
    ['resident memory idle, MiB', 'memory_idle'],
    ['resident memory after load, MiB', 'memory_after'],
  ] as const) {
    const st = stratus?.[key] ?? null;
    const sw = swift?.[key] ?? null;
    const cell = (m: typeof st): string => (m ? `${fmt(m.rss_mib)} (${m.procs} procs)` : '-');
    rows.push({ metric: label, stratus: st?.rss_mib ?? null, swift: sw?.rss_mib ?? null, ratio: div(sw?.rss_mib ?? null, st?.rss_mib ?? null), limit: null, of_limit: null, text: { stratus: cell(st), swift: cell(sw), limit: '-' } });
  }
  return rows;
}

/** Server CPU per operation (ms, medians), per small-object case: Stratus (all threads; its main thread), Swift, the client. */
export function cpuRows(s: Settings, stratus: TargetResult | null, swift: TargetResult | null): string[][] {
  const out: string[][] = [];
  for (const c of s.concurrency) {
    for (const op of ['put', 'get'] as const) {
      const mine = (t: TargetResult | null): SmallRun[] => (t?.small ?? []).filter((r) => r.op === op && r.concurrency === c && r.ok > 0);
      const st = median(mine(stratus).map((r) => r.server_cpu_ms_per_op));
      const main = median(mine(stratus).map((r) => r.main_thread_cpu_ms_per_op));
      const sw = median(mine(swift).map((r) => r.server_cpu_ms_per_op));
      const client = median([...mine(stratus), ...mine(swift)].map((r) => r.client_cpu_ms_per_op));
      out.push([`${size(s)} ${op.toUpperCase()} c=${c}`, fmt(st), fmt(main), main === null ? '-' : fmt(1000 / main), fmt(sw), fmt(client)]);
    }
  }
  return out;
}

/** Server CPU seconds per GiB of the large transfers (medians): Stratus (all threads; main thread), Swift. */
export function largeCpuRows(s: Settings, stratus: TargetResult | null, swift: TargetResult | null): string[][] {
  const perGib = (t: TargetResult | null, op: SmallOp, key: 'server_cpu_s' | 'main_thread_cpu_s'): number | null =>
    median((t?.large ?? []).filter((r) => r.op === op && r.seconds !== null).map((r) => (r[key] === null ? null : (r[key] * 1024) / s.bigMib)));
  return (['put', 'get'] as const).map((op) => {
    const main = perGib(stratus, op, 'main_thread_cpu_s');
    return [`${s.bigMib} MiB ${op.toUpperCase()}`, fmt(perGib(stratus, op, 'server_cpu_s')), fmt(main), main === null ? '-' : fmt(1024 / main), fmt(perGib(swift, op, 'server_cpu_s'))];
  });
}

/** One goal of the issue and whether this run met it. */
export interface Goal {
  goal: string;
  value: number | null;
  need: number;
  met: boolean | null;
}

/** The issue's goals: small objects >= 3x Swift; large objects >= 70 % of the disk's bandwidth / 3 (GET: the disk's read bandwidth, O_DIRECT). */
export function goals(s: Settings, rows: Row[], disk: DiskResult): Goal[] {
  const out: Goal[] = [];
  const row = (prefix: string): Row | undefined => rows.find((r) => r.metric.startsWith(prefix));
  const size = s.objBytes % 1024 === 0 ? `${s.objBytes / 1024} KiB` : `${s.objBytes} B`;
  const top = Math.max(...s.concurrency);
  for (const op of ['PUT', 'GET']) {
    const r = row(`${size} ${op} c=${top}, ops/s`);
    if (r) out.push({ goal: `${size} ${op} c=${top}: Stratus / Swift >= 3`, value: r.ratio, need: 3, met: r.ratio === null ? null : r.ratio >= 3 });
  }
  const put = row(`${s.bigMib} MiB PUT, MiB/s`);
  if (put) {
    const value = div(put.stratus, put.limit);
    out.push({ goal: `${s.bigMib} MiB PUT: Stratus / (dd write + fsync / ${REPLICAS}) >= 0.7`, value, need: 0.7, met: value === null ? null : value >= 0.7 });
  }
  const get = row(`${s.bigMib} MiB GET, MiB/s`);
  if (get) {
    // The page-cache read of the table is no disk bandwidth; the disk's own read is the O_DIRECT one.
    const direct = median(disk.large.map((r) => s.bigMib / r.read_direct_s));
    const value = div(get.stratus, direct === null ? null : direct / REPLICAS);
    out.push({ goal: `${s.bigMib} MiB GET: Stratus / (dd read O_DIRECT / ${REPLICAS}) >= 0.7`, value, need: 0.7, met: value === null ? null : value >= 0.7 });
  }
  return out;
}

/** The printed report. */
export function renderReport(x: { s: Settings; rows: Row[]; stratus: TargetResult | null; swift: TargetResult | null; disk: DiskResult; goals: Goal[]; started: Date; host: { cpus: number; loadavg_start: number[]; loadavg_end: number[] }; profile: string[] }): string {
  const { s } = x;
  const out: string[] = [];
  out.push(`# Object storage benchmark (${x.started.toISOString()})`, '');
  out.push(
    `${x.host.cpus} CPUs, load average ${x.host.loadavg_start.join(' ')} at the start, ${x.host.loadavg_end.join(' ')} at the end. Small objects: ${s.objBytes} B, ${s.repeat} run(s) of at most ${s.durationS} s / ${s.count} requests per case, one keep-alive connection per concurrent request (Node client); large: ${s.bigMib} MiB with curl, ${s.repeat} run(s). Medians.`,
    '',
  );
  const ratio = (v: number | null): string => (v === null ? '-' : `${v.toFixed(2)}x`);
  out.push(
    markdownTable(
      ['metric', 'Stratus', 'Swift', 'Stratus vs Swift', `disk limit (PUT: / ${REPLICAS})`, 'Stratus / limit'],
      x.rows.map((r) => [r.metric, r.text?.stratus ?? fmt(r.stratus), r.text?.swift ?? fmt(r.swift), ratio(r.ratio), r.text?.limit ?? fmt(r.limit), r.of_limit === null ? '-' : `${(100 * r.of_limit).toFixed(0)} %`]),
    ),
  );
  out.push(
    '',
    '"Stratus vs Swift": rates Stratus / Swift; latencies and memory Swift / Stratus (above 1: Stratus better). Disk limit: new files with open+write+fsync+close (PUT; one copy / 3 replicas) and open+read+close from the page cache (GET); dd bs=1M conv=fsync (PUT; / 3) and dd to /dev/null right after, from the page cache (GET).',
  );
  const passes = [...new Set([...x.disk.small.map((r) => r.before ?? ''), ...x.disk.large.map((r) => r.before ?? '')])];
  if (passes.length) {
    out.push('', '## The disk alone, one copy (measured before each target: a shared host\'s disk changes speed)', '');
    const cols = [...s.concurrency.map((c) => `${size(s)} file + fsync c=${c}, /s`), ...(s.parts.includes('large') ? ['dd write + fsync, MiB/s', 'dd read (page cache), MiB/s', 'dd read O_DIRECT, MiB/s'] : [])];
    const rows = passes.map((p) => {
      const small = s.concurrency.map((c) => fmt(median(x.disk.small.filter((r) => (r.before ?? '') === p && r.op === 'put' && r.concurrency === c).map((r) => r.rate_per_s))));
      const large = x.disk.large.filter((r) => (r.before ?? '') === p);
      const big = s.parts.includes('large') ? [fmt(median(large.map((r) => s.bigMib / r.write_s))), fmt(median(large.map((r) => s.bigMib / r.read_cached_s))), fmt(median(large.map((r) => s.bigMib / r.read_direct_s)))] : [];
      return [`before ${p || '?'}`, ...small, ...big];
    });
    out.push(markdownTable(['pass', ...cols], rows));
    if (x.disk.note) out.push('', `Disk reference errors: ${x.disk.note}`);
  }
  out.push('', '## Goals (issue #7)', '');
  for (const g of x.goals) out.push(`- ${g.goal}: ${g.value === null ? 'not measured' : `${g.value.toFixed(2)} -> ${g.met ? 'met' : 'MISSED'}`}`);
  out.push(`- reference, the issue's quiet-host Swift (3 replicas): ${ISSUE_REFERENCE.put_c16} PUT/s and ${ISSUE_REFERENCE.get_c16} GET/s at c=16, ${ISSUE_REFERENCE.put_big_mib_s} / ${ISSUE_REFERENCE.get_big_mib_s} MiB/s (64 MiB), ${ISSUE_REFERENCE.rss_mib} MB resident`);
  if (s.parts.includes('small')) {
    out.push('', '## CPU per request, ms', '');
    out.push(markdownTable(['case', 'Stratus, all threads', 'Stratus, main thread', 'ceiling of one main thread, ops/s', 'Swift, all processes', 'client'], cpuRows(s, x.stratus, x.swift)));
    out.push('', 'Stratus runs the proxy and the three storage servers on one event loop: 1000 / (its main thread\'s ms per request) is the most it can do however many cores there are. Swift spreads its work over 13 processes. Client: this benchmark process (the load generator).');
  }
  if (s.parts.includes('large')) {
    out.push('', '## CPU per GiB of the large transfers, s', '');
    out.push(markdownTable(['case', 'Stratus, all threads', 'Stratus, main thread', 'ceiling of one main thread, MiB/s', 'Swift, all processes'], largeCpuRows(s, x.stratus, x.swift)));
  }
  out.push('', '## Targets', '');
  for (const t of [x.stratus, x.swift]) {
    if (!t) continue;
    out.push(`- ${t.name}: ${t.available && !t.note ? 'measured' : `NOT (fully) measured: ${t.note}`}`);
    if (t.start_s !== null) out.push(`  - start to first token: ${t.start_s.toFixed(1)} s; container policy: ${t.policy ?? '(none reported)'}; replicas on disk: ${t.replicas_on_disk ? `${t.replicas_on_disk.data_files} .data files for ${t.replicas_on_disk.objects} objects` : '-'}`);
    const busy = summarize([...t.small, ...t.large].map((r) => r.host_busy_pct));
    if (busy) out.push(`  - host CPU busy in the second before each run: median ${busy.median.toFixed(0)} % [${busy.min.toFixed(0)} .. ${busy.max.toFixed(0)}]`);
    const errs = t.small.reduce((a, r) => a + r.errors, 0);
    if (errs) out.push(`  - ${errs} failed requests (first: ${t.small.find((r) => r.errors)?.error_samples[0] ?? '?'})`);
    for (const [k, v] of Object.entries(t.setup)) out.push(`  - ${k}: ${v ?? '-'}`);
    if (t.note && t.log_tail) out.push('  - log:', ...t.log_tail.split('\n').map((l) => `    ${l}`));
  }
  if (x.profile.length) out.push('', '## Stratus CPU profile (node --cpu-prof; each section cut to the time windows of its runs; idle left out)', '', ...x.profile);
  return out.join('\n');
}
