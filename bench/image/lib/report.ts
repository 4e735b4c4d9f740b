import { summarize, type Summary } from '../../lib/stats.js';
import { markdownTable } from '../../lib/table.js';
import type { ImageRun } from './images.js';
import type { ReferenceRun } from './reference.js';

/** Conditions of one measured step: the host's load and the disk's backlog before it. */
export interface Before {
  run: number;
  /** Whole-host CPU busy % in the 2 s before the step (other users of the host included). */
  bg_cpu_busy_pct: number;
  /** Dirty + Writeback page cache of the host before the untimed `sync -f`, MiB. */
  dirty_before_mib: number;
  /** Seconds that untimed `sync -f` took. */
  sync_s: number;
}

export type RefRecord = ReferenceRun & Before;
export type ServerRecord = ImageRun & Before;

/** Everything measured for one server. */
export interface ServerSide {
  available: boolean;
  /** Why the side was not measured, or what went wrong. */
  note: string;
  version: string | null;
  warmup: ImageRun | null;
  runs: ServerRecord[];
  /** Summed RSS after the warm-up, idle (MiB). */
  rss_idle_mib: number | null;
  /** Sum of the kernel's peak RSS (VmHWM) of the server's processes at the end, MiB. */
  vmhwm_end_mib: number | null;
  procs: number | null;
}

/** One printed row. */
export interface Row {
  label: string;
  upload_mib_s: Summary | null;
  download_mib_s: Summary | null;
  peak_rss_upload_mib: Summary | null;
  peak_rss_download_mib: Summary | null;
  server_cpu_upload_s: Summary | null;
  server_cpu_download_s: Summary | null;
}

/** The rows of the main table: references, then Stratus and Glance. */
export function buildRows(mib: number, refs: RefRecord[], stratus: ServerSide, glance: ServerSide): Row[] {
  const rate = (secs: number[]): Summary | null => summarize(secs.map((s) => mib / s));
  const none = { peak_rss_upload_mib: null, peak_rss_download_mib: null, server_cpu_upload_s: null, server_cpu_download_s: null };
  const server = (label: string, side: ServerSide): Row => ({
    label,
    upload_mib_s: summarize(side.runs.map((r) => r.upload_mib_s)),
    download_mib_s: summarize(side.runs.map((r) => r.download_mib_s)),
    peak_rss_upload_mib: summarize(side.runs.map((r) => r.upload.memory.rss_peak_mib)),
    peak_rss_download_mib: summarize(side.runs.map((r) => r.download.memory.rss_peak_mib)),
    server_cpu_upload_s: summarize(side.runs.map((r) => r.upload.server_cpu.user_s + r.upload.server_cpu.sys_s)),
    server_cpu_download_s: summarize(side.runs.map((r) => r.download.server_cpu.user_s + r.download.server_cpu.sys_s)),
  });
  return [
    { label: 'limit: cp + fsync (up) / cat > /dev/null (down)', upload_mib_s: rate(refs.map((r) => r.cp_fsync_s)), download_mib_s: rate(refs.map((r) => r.cat_s)), ...none },
    { label: 'cp without fsync', upload_mib_s: rate(refs.map((r) => r.cp_s)), download_mib_s: null, ...none },
    { label: 'dd bs=1M conv=fsync', upload_mib_s: rate(refs.map((r) => r.dd_fsync_s)), download_mib_s: null, ...none },
    server('Stratus', stratus),
    server('Glance', glance),
  ];
}

function num(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** "median [min .. max]", or "-" for nothing measured. */
export function fmtSummary(s: Summary | null): string {
  if (!s) return '-';
  return s.n > 1 ? `${num(s.median)} [${num(s.min)} .. ${num(s.max)}]` : num(s.median);
}

function pair(a: Summary | null, b: Summary | null): string {
  return a || b ? `${a ? num(a.median) : '-'} / ${b ? num(b.median) : '-'}` : '-';
}

/** The main table. */
export function renderRows(rows: Row[]): string {
  return markdownTable(
    ['', 'upload MiB/s', 'download MiB/s', 'server peak RSS MiB (up / down)', 'server CPU s (up / down)'],
    rows.map((r) => [r.label, fmtSummary(r.upload_mib_s), fmtSummary(r.download_mib_s), pair(r.peak_rss_upload_mib, r.peak_rss_download_mib), pair(r.server_cpu_upload_s, r.server_cpu_download_s)]),
  );
}

/** One ratio of medians, or null. */
export interface Ratio {
  label: string;
  upload: number | null;
  download: number | null;
}

function div(a: Summary | null, b: Summary | null): number | null {
  return a && b && b.median > 0 ? a.median / b.median : null;
}

/** Stratus' throughput over each reference (medians). */
export function buildRatios(rows: Row[]): Ratio[] {
  const [limit, cp, dd, stratus, glance] = rows;
  if (!limit || !cp || !dd || !stratus || !glance) return [];
  return [
    { label: 'Stratus / limit (cp + fsync; cat)', upload: div(stratus.upload_mib_s, limit.upload_mib_s), download: div(stratus.download_mib_s, limit.download_mib_s) },
    { label: 'Stratus / cp without fsync', upload: div(stratus.upload_mib_s, cp.upload_mib_s), download: null },
    { label: 'Stratus / dd bs=1M conv=fsync', upload: div(stratus.upload_mib_s, dd.upload_mib_s), download: null },
    { label: 'Stratus / Glance', upload: div(stratus.upload_mib_s, glance.upload_mib_s), download: div(stratus.download_mib_s, glance.download_mib_s) },
    { label: 'Glance / limit (cp + fsync; cat)', upload: div(glance.upload_mib_s, limit.upload_mib_s), download: div(glance.download_mib_s, limit.download_mib_s) },
  ];
}

/** The ratio table. */
export function renderRatios(ratios: Ratio[]): string {
  const f = (r: number | null): string => (r === null ? '-' : `${r.toFixed(2)}`);
  return markdownTable(['ratio of medians', 'upload', 'download'], ratios.map((r) => [r.label, f(r.upload), f(r.download)]));
}

/** Where an upload's time goes, medians over the runs. */
export function renderBreakdown(name: string, side: ServerSide): string | null {
  if (side.runs.length === 0) return null;
  const m = (f: (r: ServerRecord) => number | null): string => {
    const s = summarize(side.runs.map(f).filter((x): x is number => x !== null));
    return s ? num(s.median) : '-';
  };
  const sent = (r: ServerRecord): number | null => r.upload.memory.body_sent_s;
  return (
    `${name} upload (medians): ${m((r) => r.upload.seconds)} s; body read by curl after ${m(sent)} s, response ${m((r) => (sent(r) === null ? null : r.upload.seconds - (sent(r) ?? 0)))} s later ` +
    `(the server's work after the last byte); server CPU user ${m((r) => r.upload.server_cpu.user_s)} s + sys ${m((r) => r.upload.server_cpu.sys_s)} s ` +
    `= ${m((r) => (r.upload.server_cpu.user_s + r.upload.server_cpu.sys_s) / r.upload.seconds)} CPUs busy; curl CPU ${m((r) => (r.upload.client_cpu ? r.upload.client_cpu.user_s + r.upload.client_cpu.sys_s : null))} s. ` +
    `Download: server CPU ${m((r) => r.download.server_cpu.user_s + r.download.server_cpu.sys_s)} s, curl CPU ${m((r) => (r.download.client_cpu ? r.download.client_cpu.user_s + r.download.client_cpu.sys_s : null))} s; ` +
    `create ${m((r) => r.create_s * 1000)} ms, delete ${m((r) => r.delete_s * 1000)} ms.`
  );
}

/** The test file: its size, MD5, file system and page-cache state after writing it. */
export interface TestFile {
  bytes: number;
  md5: string;
  create_s: number;
  /** File system type and device, e.g. "ext4 /dev/vda". */
  fs: string;
  cached_bytes_start: number | null;
}

/** What the printed report is made of. */
export interface ReportInput {
  settings: { imgMib: number; runs: number; ksCache: string };
  file: TestFile | null;
  rows: Row[];
  ratios: Ratio[];
  stratus: ServerSide;
  glance: ServerSide;
  versions: { stratus: string; node: string; keystone: string | null };
  host: { cpus: number; cpu_model: string | null; mem_total_mib: number; loadavg_start: number[]; loadavg_end: number[]; bg_cpu_busy_pct: number[] };
  profile: { function: string; where: string; self_ms: number; pct: number }[];
}

function pct(r: number | null): string {
  return r === null ? 'not measured' : `${(r * 100).toFixed(0)} %`;
}

/** The whole printed report: what ran, the tables, the goal, where the time went, the host. */
export function renderReport(x: ReportInput): string {
  const { settings: s, file, glance: gl } = x;
  const out: string[] = [''];
  out.push(`Image upload/download, ${s.imgMib} MiB of random bytes, ${s.runs} run(s), median [min .. max]; the test file, the copies and both image stores on ${file?.fs ?? '?'}.`);
  out.push(`Stratus ${x.versions.stratus}: stratus up (one node ${x.versions.node} process), file store, fsync before the answer, MD5 + SHA-512, qemu-img check.`);
  out.push(
    gl.runs.length
      ? `Glance ${gl.version ?? '?'}: glance-api (eventlet, parent + ${(gl.procs ?? 1) - 1} workers), filesystem store (no fsync), MD5 + SHA-512, Keystone ${x.versions.keystone ?? '?'} (cache ${s.ksCache === '1' ? 'memcached' : 'off'}).${gl.note ? ` ${gl.note}` : ''}`
      : `Glance: not measured: ${gl.note}`,
  );
  out.push('Clients: curl -T FILE (upload, Content-Type application/octet-stream, no Expect), curl -o /dev/null (download, size checked); each upload checked for status active, size and MD5.');
  out.push('', renderRows(x.rows), '', renderRatios(x.ratios), '');
  const byCp = x.ratios[0]?.upload ?? null;
  const byDd = x.ratios[2]?.upload ?? null;
  out.push(`Goal: Stratus upload >= 80 % of cp + fsync: ${pct(byCp)}${byCp === null ? '' : byCp >= 0.8 ? ' (met)' : ' (not met)'}; of dd bs=1M conv=fsync: ${pct(byDd)}.`);
  for (const [name, side] of [
    ['Stratus', x.stratus],
    ['Glance', gl],
  ] as const) {
    const line = renderBreakdown(name, side);
    if (line) out.push(line);
    if (side.rss_idle_mib !== null) {
      out.push(`${name} memory: RSS idle ${side.rss_idle_mib.toFixed(0)} MiB (${side.procs ?? '?'} processes); peak RSS over the processes' whole life (VmHWM, summed) ${side.vmhwm_end_mib?.toFixed(0) ?? '-'} MiB.`);
    }
  }
  if (x.profile.length) {
    out.push('', 'Stratus CPU profile (node --cpu-prof over the whole process life, self time, idle left out):');
    for (const p of x.profile) out.push(`  ${p.pct.toFixed(1).padStart(5)} %  ${String(p.self_ms).padStart(6)} ms  ${p.function} ${p.where}`);
  }
  const startCached = file && file.cached_bytes_start !== null ? `${((100 * file.cached_bytes_start) / file.bytes).toFixed(0)} %` : '?';
  const storedCached = summarize(x.stratus.runs.map((r) => (100 * (r.stored_cached_bytes ?? Number.NaN)) / (file?.bytes ?? 1)));
  out.push('');
  out.push(
    `Page cache: nothing is dropped (that is host-wide, and the host is shared). The test file is in the page cache (${startCached} after writing it), so uploads and cp read it from memory; ` +
      `downloads read the image file the server has just written (Stratus: ${fmtSummary(storedCached)} % of it cached before the download), so download figures measure the servers and loopback, not the disk.`,
  );
  out.push(
    `Host: ${x.host.cpus} CPU(s) ${x.host.cpu_model ?? ''}, ${Math.round(x.host.mem_total_mib / 1024)} GiB; load average ${x.host.loadavg_start.join('/')} at start, ${x.host.loadavg_end.join('/')} at end; ` +
      `whole-host CPU busy in the 2 s before each step: ${fmtSummary(summarize(x.host.bg_cpu_busy_pct))} % (other users included).`,
  );
  return out.join('\n');
}
