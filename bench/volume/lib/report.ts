import type { Summary } from '../../lib/stats.js';
import { markdownTable } from '../../lib/table.js';
import type { TargetResult } from './scenario.js';
import type { Settings } from './settings.js';

/** One row of the report: a label, a cell per target, and Stratus / Cinder when both have a number. */
export interface Row {
  label: string;
  cells: Record<string, string>;
  ratio: string;
}

function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  if (Number.isInteger(x) || x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function span(s: Summary | null): string {
  if (!s) return '-';
  return s.n > 1 ? `${fmt(s.median)} [${fmt(s.min)} .. ${fmt(s.max)}]` : fmt(s.median);
}

/** The table's rows; `lowerIsBetter` decides how the ratio reads. */
export function buildRows(results: TargetResult[], s: Settings): Row[] {
  const rows: Row[] = [];
  const byName = new Map(results.map((r) => [r.name, r]));
  const add = (label: string, value: (r: TargetResult) => { text: string; n: number | null }, lowerIsBetter: boolean | null): void => {
    const cells: Record<string, string> = {};
    for (const r of results) cells[r.name] = r.available ? value(r).text : '-';
    const a = byName.get('stratus');
    const b = byName.get('cinder');
    const x = a?.available ? value(a).n : null;
    const y = b?.available ? value(b).n : null;
    let ratio = '-';
    if (lowerIsBetter !== null && x !== null && y !== null && y > 0) ratio = `${fmt(x / y)} (${lowerIsBetter ? '<1 faster' : '>1 faster'})`;
    rows.push({ label, cells, ratio });
  };
  const sum = (pick: (r: TargetResult) => Summary | null) => (r: TargetResult) => ({ text: span(pick(r)), n: pick(r)?.median ?? null });
  if (s.parts.includes('image')) {
    add(`create from a ${s.imageMib} MiB image (${s.volumeGb} GB volume) to available, s`, sum((r) => r.summary.from_image_s), true);
    add('  cp of the same file, same file system, s', sum((r) => r.summary.cp_s), null);
    add('  create / cp', (r) => ratioOf(r.summary.from_image_s, r.summary.cp_s), null);
    add('  cp + fsync of the copy, s', sum((r) => r.summary.cp_fsync_s), null);
    add('  create / (cp + fsync)', (r) => ratioOf(r.summary.from_image_s, r.summary.cp_fsync_s), null);
    add('  CPU s of the service meanwhile', sum((r) => r.summary.from_image_cpu_s), true);
    add('snapshot of that volume to available, s', sum((r) => r.summary.snapshot_s), true);
    add('  CPU s of the service meanwhile', sum((r) => r.summary.snapshot_cpu_s), true);
    add('clone of that volume (source_volid) to available, s', sum((r) => r.summary.clone_s), true);
    add('  CPU s of the service meanwhile', sum((r) => r.summary.clone_cpu_s), true);
  }
  if (s.parts.includes('rate')) {
    for (const c of s.concurrency) {
      const phase = (r: TargetResult) => r.rate.find((p) => p.concurrency === c);
      add(`volumes created/s, fake backend, c=${c}`, (r) => num(phase(r)?.create_per_s, phase(r) ? `${phase(r)?.created}/${phase(r)?.count}` : ''), false);
      add(`  create latency c=${c}, p50 / p99 ms`, (r) => ({ text: phase(r) ? `${fmt(phase(r)?.create_p50_ms)} / ${fmt(phase(r)?.create_p99_ms)}` : '-', n: phase(r)?.create_p50_ms ?? null }), true);
      add(`volumes deleted/s, c=${c}`, (r) => num(phase(r)?.delete_per_s), false);
      add(`  CPU ms per volume (create + delete), c=${c}`, (r) => {
        const p = phase(r);
        if (!p || p.created === 0) return { text: '-', n: null };
        const ms = ((p.server_cpu_s + p.infra_cpu_s) * 1000) / p.created;
        return { text: p.infra_cpu_s > 0 ? `${fmt(ms)} (db+bus ${fmt((p.infra_cpu_s * 1000) / p.created)})` : fmt(ms), n: ms };
      }, true);
      add(`  errors, c=${c}`, (r) => num(phase(r)?.errors), null);
    }
  }
  return rows;
}

function num(x: number | null | undefined, suffix = ''): { text: string; n: number | null } {
  if (x === null || x === undefined) return { text: '-', n: null };
  return { text: suffix ? `${fmt(x)} (${suffix})` : fmt(x), n: x };
}

function ratioOf(a: Summary | null, b: Summary | null): { text: string; n: number | null } {
  if (!a || !b || b.median <= 0) return { text: '-', n: null };
  const x = a.median / b.median;
  return { text: fmt(x), n: x };
}

/** The Markdown report: what ran, the table, and why a target is missing. */
export function renderReport(o: { results: TargetResult[]; rows: Row[]; settings: Settings; host: { cpus: number; cpu_model: string | null; mem_total_mib: number }; started: Date }): string {
  const { results, rows, settings: s } = o;
  const names = results.map((r) => r.name);
  const label = (n: string): string => (n === 'stratus' ? 'Stratus' : n === 'cinder' ? 'Cinder (Debian)' : n);
  const both = names.includes('stratus') && names.includes('cinder');
  const header = ['', ...names.map(label), ...(both ? ['Stratus / Cinder'] : [])];
  const body = rows.map((r) => [r.label, ...names.map((n) => r.cells[n] ?? '-'), ...(both ? [r.ratio] : [])]);
  const lines = [
    `Block storage: ${s.parts.includes('image') ? `create from a ${s.imageMib} MiB image of random bytes, snapshot and clone on the file backend (${s.fileFormat} files), median [min .. max] of ${s.repeat}` : ''}${s.parts.length === 2 ? '; ' : ''}${s.parts.includes('rate') ? `${s.count} volumes created then deleted on the fake backend at concurrency ${s.concurrency.join(', ')}` : ''}.`,
    `Host: ${o.host.cpus} CPUs (${o.host.cpu_model ?? '?'}), ${Math.round(o.host.mem_total_mib / 1024)} GiB; started ${o.started.toISOString()}.`,
    '',
    markdownTable(header, body),
    '',
  ];
  for (const r of results) {
    if (!r.available) lines.push(`${label(r.name)} not measured: ${r.note}`);
    else if (r.note) lines.push(`${label(r.name)}: stopped early: ${r.note}`);
    if (r.same_file_system === false) lines.push(`${label(r.name)}: warning: the volume files (${r.volume_dir}) are not on the file system of the reference copies.`);
  }
  return `${lines.join('\n')}\n`;
}
