import { markdownTable } from '../../lib/table.js';
import type { LoadResult } from './load.js';
import type { ListResult, TargetResult } from './scenario.js';
import type { Settings } from './settings.js';

/** One printed row: a figure per target and, when both ran, Stratus / Neutron. */
export interface Row {
  metric: string;
  /** Which way is better, for reading the ratio; `none`: a fact, no ratio. */
  better: 'higher' | 'lower' | 'none';
  values: Record<string, number | null>;
  /** Stratus' figure / Neutron's, or null. */
  ratio: number | null;
}

const LABELS: Record<string, string> = { neutron: 'neutron-server', stratus: 'Stratus', external: 'external' };

type Pick = (r: TargetResult) => number | null;

const rate = (l: LoadResult | null): number | null => (l && l.ok > 0 ? l.rate_per_s : null);
const med = (l: LoadResult | null): number | null => l?.latency_ms?.median ?? null;
const p95 = (l: LoadResult | null): number | null => l?.latency_ms?.p95 ?? null;
const listMed = (l: ListResult | null): number | null => med(l?.load ?? null);
const listP95 = (l: ListResult | null): number | null => p95(l?.load ?? null);

function cpuPerPort(r: TargetResult): number | null {
  const cpu = r.cpu.create_cn;
  const ok = r.create_cn?.ok ?? 0;
  if (!cpu || ok === 0 || r.memory.procs === null) return null;
  return ((cpu.server_s + cpu.db_s) * 1000) / ok;
}

/** The figures of the report, in its order. */
export function buildRows(results: TargetResult[], s: Settings): Row[] {
  const c = s.concurrency;
  const defs: [string, Row['better'], Pick][] = [
    ['ports created/s, c=1 (POST /v2.0/ports)', 'higher', (r) => rate(r.create_c1)],
    ['  create latency c=1, median ms', 'lower', (r) => med(r.create_c1)],
    ['  create latency c=1, p95 ms', 'lower', (r) => p95(r.create_c1)],
    [`ports created/s, c=${c}`, 'higher', (r) => rate(r.create_cn)],
    [`  create latency c=${c}, median ms`, 'lower', (r) => med(r.create_cn)],
    [`  create latency c=${c}, p95 ms`, 'lower', (r) => p95(r.create_cn)],
    [`ports created/s, c=${c}, filling up to ${s.totalPorts}`, 'higher', (r) => rate(r.fill)],
    ['ports present during the lists', 'none', (r) => (r.ports_present ? r.ports_present : null)],
    ['GET /v2.0/ports (all of them), median ms', 'lower', (r) => listMed(r.list_full)],
    ['  same, p95 ms', 'lower', (r) => listP95(r.list_full)],
    [`GET /v2.0/ports?network_id=N&limit=${s.pageLimit}, median ms`, 'lower', (r) => listMed(r.list_page)],
    ['  same, p95 ms', 'lower', (r) => listP95(r.list_page)],
    ['GET /v2.0/ports?device_id=X (1 match), median ms', 'lower', (r) => listMed(r.list_device)],
    ['  same, p95 ms', 'lower', (r) => listP95(r.list_device)],
    [`ports deleted/s, c=${c} (DELETE /v2.0/ports/{id})`, 'higher', (r) => rate(r.delete)],
    [`server + database CPU ms per port created at c=${c}`, 'lower', cpuPerPort],
    ['server RSS MiB with the ports present', 'lower', (r) => r.memory.after_fill_rss_mib],
    ['database RSS MiB with the ports present', 'lower', (r) => r.memory.db_after_fill_rss_mib],
  ];
  const byName = new Map(results.map((r) => [r.name, r]));
  return defs.map(([metric, better, pick]) => {
    const values: Record<string, number | null> = {};
    for (const r of results) values[r.name] = pick(r);
    const st = byName.has('stratus') ? values.stratus : null;
    const ne = byName.has('neutron') ? values.neutron : null;
    const ratio = better !== 'none' && st != null && ne != null && ne > 0 ? Math.round((st / ne) * 100) / 100 : null;
    return { metric, better, values, ratio };
  });
}

/** 3 significant-ish digits: 1234, 123, 12.3, 1.23. */
export function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** Rate of each successive 1000 operations of a long load ("10.2 9.8 ..."): does it slow down as ports accumulate? */
function perThousand(l: LoadResult): string {
  const marks = l.progress ?? [];
  return marks
    .map((m, i) => {
      const prev = i > 0 ? marks[i - 1] : undefined;
      const dt = m.elapsed_s - (prev?.elapsed_s ?? 0);
      return fmt(dt > 0 ? (m.ok - (prev?.ok ?? 0)) / dt : null);
    })
    .join(' ');
}

/** The report printed on stdout. */
export function renderReport(o: { results: TargetResult[]; rows: Row[]; settings: Settings; host: { cpus: number; cpu_model: string | null; loadavg_start: number[] }; started: Date }): string {
  const { results, rows, settings: s } = o;
  const both = results.some((r) => r.name === 'stratus') && results.some((r) => r.name === 'neutron');
  const header = ['', ...results.map((r) => LABELS[r.name] ?? r.name), ...(both ? ['Stratus / Neutron'] : [])];
  const body = rows.map((row) => [row.metric, ...results.map((r) => fmt(row.values[r.name])), ...(both ? [row.ratio === null ? '-' : `${fmt(row.ratio)}${row.better === 'higher' ? ' (>1 faster)' : ' (<1 better)'}`] : [])]);
  const out: string[] = [];
  out.push(`Networking API benchmark, ${o.started.toISOString()}, ${o.host.cpus} CPUs (${o.host.cpu_model ?? '?'}), load average at start ${o.host.loadavg_start.join(' ')}`);
  out.push(
    `Ports: ${s.c1Ports} at c=1 and ${s.cNPorts} at c=${s.concurrency} (each at most ${s.phaseTimeS} s), then up to ${s.totalPorts} at c=${s.concurrency} (at most ${s.fillTimeS} s), on one network with ${s.subnetPrefix === Number(s.subnetCidr.split('/')[1]) ? `one ${s.subnetCidr} subnet` : `/${s.subnetPrefix} subnets of ${s.subnetCidr}`}; ` +
      `lists one at a time: ${s.fullListReps} x all, ${s.pageListReps} x page, ${s.deviceListReps} x device_id (each kind at most ${s.listTimeS} s). ${s.keepAlive ? 'Kept-alive connections' : 'One connection per request'}, 127.0.0.1.`,
  );
  out.push('');
  out.push(markdownTable(header, body));
  out.push('');
  for (const r of results) {
    const label = LABELS[r.name] ?? r.name;
    const setup = Object.entries(r.setup)
      .map(([k, v]) => `${k}: ${v ?? '-'}`)
      .join('; ');
    out.push(`${label}: ${setup}`);
    const facts = [
      r.network_url ? `endpoint ${r.network_url}` : '',
      r.token_issue_s !== null ? `token in ${fmt(r.token_issue_s)} s` : '',
      r.quota_status ? `PUT quotas HTTP ${r.quota_status}` : '',
      r.host_busy_pct_before !== null ? `host CPU busy before the runs ${r.host_busy_pct_before} %` : '',
      r.memory.idle_rss_mib !== null ? `server RSS idle ${r.memory.idle_rss_mib} MiB (${r.memory.procs ?? '?'} processes)` : '',
      r.fill?.progress?.length ? `fill ports/s per 1000: ${perThousand(r.fill)}` : '',
      r.delete?.progress?.length ? `delete ports/s per 1000: ${perThousand(r.delete)}` : '',
      Object.keys(r.cpu).length ? `CPU s server/db: ${Object.entries(r.cpu).map(([k, v]) => `${k} ${fmt(v.server_s)}/${fmt(v.db_s)}`).join(', ')}` : '',
    ].filter(Boolean);
    if (facts.length) out.push(`  ${facts.join('; ')}`);
    const problems = [
      !r.available ? `not measured: ${r.note}` : r.note ? `stopped early: ${r.note}` : '',
      ...[r.create_c1, r.create_cn, r.fill, r.list_full?.load ?? null, r.list_page?.load ?? null, r.list_device?.load ?? null, r.delete]
        .filter((l): l is LoadResult => l !== null && (l.errors > 0 || l.stopped_by !== 'count'))
        .map((l) => `stopped by the ${l.stopped_by === 'count' ? 'count' : l.stopped_by === 'time' ? 'time limit' : l.stopped_by === 'errors' ? 'error limit' : 'abort'} after ${l.ok} of ${l.requested}${l.errors ? `, ${l.errors} failed: ${[...new Set(l.error_samples)].join(' | ')}` : ''}`),
      r.cleanup.note ? `cleanup: ${r.cleanup.note}` : '',
    ].filter(Boolean);
    for (const p of problems) out.push(`  ! ${p}`);
  }
  return out.join('\n');
}
