import fs from 'node:fs';
import { hostBusy, runCommand, sleep } from '../../lib/proc.js';
import { message } from '../../lib/run.js';
import { summarize, type Summary } from '../../lib/stats.js';
import { Cloud, UnexpectedAnswer } from './client.js';
import { treeCpuWithChildren } from './cpu.js';
import { copyReference, type CopyRun } from './reference.js';
import type { Settings } from './settings.js';
import type { Target } from './targets.js';
import { Watcher } from './watcher.js';

/** One timed 1 GiB operation (create from image, snapshot or clone). */
export interface OpRun {
  /** From just before the POST to the poll that saw `available`, seconds; null when it failed. */
  seconds: number | null;
  status: string;
  id: string | null;
  /** The untimed `sync -f` before it, seconds (what the previous step left dirty). */
  sync_before_s: number;
  /** Whole-host CPU busy % in the second before it (other work on a shared host). */
  host_busy_pct: number;
  /** CPU seconds of the volume service's processes (children included) and of its database and bus during the operation. */
  server_cpu_s: number | null;
  infra_cpu_s: number | null;
  error: string | null;
}

/** The volumes-per-second phases at one concurrency. */
export interface RatePhase {
  concurrency: number;
  count: number;
  created: number;
  create_s: number;
  create_per_s: number;
  create_p50_ms: number | null;
  create_p99_ms: number | null;
  deleted: number;
  delete_s: number;
  delete_per_s: number;
  delete_p50_ms: number | null;
  delete_p99_ms: number | null;
  errors: number;
  first_error: string | null;
  /** CPU seconds of the volume service's processes over the create and delete phases, and of its database and bus (Cinder). */
  server_cpu_s: number;
  infra_cpu_s: number;
  polls: number;
  /** Whole-host CPU busy % in the second before the phase. */
  host_busy_pct: number;
}

/** Everything measured on one target. */
export interface TargetResult {
  name: string;
  available: boolean;
  note: string;
  setup: Record<string, string | number | null>;
  start_s: number | null;
  /** The image: upload seconds and the answer. */
  image: { id: string | null; upload_s: number | null; mib: number } | null;
  /** The cp references, interleaved with the creates from the image. */
  copy: CopyRun[];
  from_image: OpRun[];
  snapshot: OpRun[];
  clone: OpRun[];
  summary: {
    from_image_s: Summary | null;
    cp_s: Summary | null;
    cp_fsync_s: Summary | null;
    snapshot_s: Summary | null;
    clone_s: Summary | null;
    /** CPU seconds of the service, its database and bus (and their children: qemu-img) per operation. */
    from_image_cpu_s: Summary | null;
    snapshot_cpu_s: Summary | null;
    clone_cpu_s: Summary | null;
  };
  rate: RatePhase[];
  /** The answer to PUT /os-quota-sets/{project} (all -1). */
  quota_put: string | null;
  /** The volume files' directory and whether it is on the file system of the reference copies. */
  volume_dir: string;
  same_file_system: boolean | null;
}

export function emptyResult(name: string, note: string, setup: Record<string, string | number | null> = {}): TargetResult {
  return {
    name,
    available: false,
    note,
    setup,
    start_s: null,
    image: null,
    copy: [],
    from_image: [],
    snapshot: [],
    clone: [],
    summary: { from_image_s: null, cp_s: null, cp_fsync_s: null, snapshot_s: null, clone_s: null, from_image_cpu_s: null, snapshot_cpu_s: null, clone_cpu_s: null },
    rate: [],
    quota_put: null,
    volume_dir: '',
    same_file_system: null,
  };
}

/** Runs `work` on items 0..n-1, `width` at a time. */
async function bounded(n: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) await work(next++);
    }),
  );
}

function percentile(values: number[], p: number): number | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))] ?? null;
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Number.isFinite(x) ? Math.round(x * f) / f : 0;
}

/** Rejects after `ms` with a message naming `what`, unless `promise` settles first. */
async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${Math.round(ms / 1000)} s`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The measurements on one running target, in order: session, quotas (-1),
 * two volume types (the file backend, the fake backend), one volume on each
 * (untimed: every service is ready), the image; then REPEAT × (cp reference,
 * create from the image), REPEAT × snapshot, REPEAT × clone; then the
 * volumes-per-second phases on the fake backend.
 */
export class TargetRun {
  private cloud: Cloud | null = null;
  private readonly stamp = Date.now().toString(36);
  private types = { file: '', fake: '' };
  /** Whole-host CPU busy % in the second before the last timed step. */
  private lastBusy = 0;
  readonly result: TargetResult;

  constructor(
    private readonly target: Target,
    private readonly s: Settings,
    private readonly files: { image: string; copy: string; workDir: string },
    private readonly say: (line: string) => void,
    private readonly aborted: () => boolean,
    startS: number,
  ) {
    this.result = emptyResult(target.name, '', target.setup);
    this.result.available = true;
    this.result.start_s = round(startS);
    this.result.volume_dir = target.volumeDir;
  }

  private get api(): Cloud {
    if (!this.cloud) throw new Error('no session');
    return this.cloud;
  }

  private check(): void {
    if (this.aborted()) throw new Error('aborted');
  }

  async run(): Promise<TargetResult> {
    const s = this.s;
    const t = this.target;
    const notes: string[] = [];
    // Each part on its own: one that fails is noted and the next still runs.
    const part = async (what: string, work: () => Promise<void>): Promise<boolean> => {
      if (this.aborted()) return false;
      try {
        await work();
        return true;
      } catch (err) {
        notes.push(`${what}: ${message(err)}`);
        this.say(`${t.name}: ${what} failed: ${message(err)}`);
        return false;
      }
    };
    const ready = await part('set-up', async () => {
      this.cloud = await deadline(Cloud.login(t.credentials), 60_000, 'token');
      await this.prepare();
    });
    if (ready && s.parts.includes('image')) {
      let source: string | null = null;
      if (await part('create from image', async () => void (source = await this.fromImage()))) {
        const id = source ?? '';
        await part('snapshot', () => this.snapshots(id));
        await part('clone', () => this.clones(id));
        await part('cleanup', () => this.deleteVolume(id));
      }
    }
    if (ready && s.parts.includes('rate')) {
      for (const c of s.concurrency) {
        if (!(await part(`volumes/s at c=${c}`, async () => void this.result.rate.push(await this.ratePhase(c))))) break;
      }
    }
    const imageId = this.result.image?.id;
    if (imageId && !this.aborted()) await part('image delete', async () => void (await this.api.expect([204, 404], 'DELETE', `${this.api.imageUrl}/v2/images/${imageId}`)));
    if (this.aborted()) notes.push('aborted');
    if (notes.length) {
      const logs = t.logTail();
      this.result.note = `${notes.join('; ')}${logs ? `\n${logs}` : ''}`;
    }
    return this.result;
  }

  /** Quotas -1, the two volume types, one volume on each backend (retried until the backend takes it), the image. */
  private async prepare(): Promise<void> {
    const api = this.api;
    const quota = { volumes: -1, gigabytes: -1, snapshots: -1, per_volume_gigabytes: -1 };
    // A refusal is noted, not fatal: both targets are also configured with unlimited default quotas.
    const q = await api.volume('PUT', `/os-quota-sets/${api.projectId}`, { quota_set: quota });
    this.result.quota_put = q.status === 200 ? 'HTTP 200' : `HTTP ${q.status}: ${q.text.slice(0, 200)}`;
    if (q.status !== 200) this.say(`${this.target.name}: warning: PUT os-quota-sets answered ${this.result.quota_put}`);
    for (const kind of ['file', 'fake'] as const) {
      const name = `volbench-${kind}-${this.stamp}`;
      const body = await api.expect([200, 202], 'POST', `${api.volumeUrl}/types`, { volume_type: { name, extra_specs: { volume_backend_name: this.target.backends[kind] } } });
      this.types[kind] = (body.volume_type?.id as string | undefined) ?? name;
    }
    // The scheduler learns of the backends from the volume services' reports: until then a create fails (no valid backend).
    for (const kind of ['file', 'fake'] as const) {
      const end = Date.now() + 180_000;
      for (let attempt = 1; ; attempt++) {
        this.check();
        const run = await this.timedVolume({ size: 1, name: `volbench-warmup-${kind}`, volume_type: this.types[kind] });
        if (run.id) await this.deleteVolume(run.id);
        if (run.status === 'available') break;
        if (Date.now() > end) throw new UnexpectedAnswer(`a ${kind}-backend volume (type volume_backend_name=${this.target.backends[kind]}) did not become available in 180 s: ${run.status} ${run.error ?? ''}`);
        this.say(`${this.target.name}: warm-up volume on the ${kind} backend went to ${run.status} (attempt ${attempt}); again in 2 s`);
        await sleep(2000);
      }
    }
    if (!this.s.parts.includes('image')) return;
    const image = await api.expect([201], 'POST', `${api.imageUrl}/v2/images`, { name: `volbench-${this.stamp}`, disk_format: 'raw', container_format: 'bare' });
    const t0 = performance.now();
    const up = await api.uploadImage(image.id as string, this.files.image, this.s.opTimeoutS * 1000);
    const uploadS = (performance.now() - t0) / 1000;
    if (up.status !== 204) throw new UnexpectedAnswer(`PUT /v2/images/${image.id}/file: HTTP ${up.status}: ${up.text.slice(0, 300)}`);
    const end = Date.now() + 120_000;
    for (;;) {
      const shown = await api.expect([200], 'GET', `${api.imageUrl}/v2/images/${image.id}`);
      if (shown.status === 'active') break;
      if (shown.status !== 'saving' && shown.status !== 'queued' && shown.status !== 'importing') throw new UnexpectedAnswer(`image ${image.id} went to ${shown.status}`);
      if (Date.now() > end) throw new UnexpectedAnswer(`image ${image.id} is still ${shown.status} 120 s after its upload`);
      await sleep(100);
    }
    this.result.image = { id: image.id as string, upload_s: round(uploadS), mib: this.s.imageMib };
    this.say(`${this.target.name}: image of ${this.s.imageMib} MiB uploaded in ${uploadS.toFixed(1)} s`);
  }

  /**
   * Before a timed step: an untimed `sync -f` of the file system under the work
   * directory (what the previous step left dirty is written back before, not
   * during, the next), then 1 s of whole-host CPU sampling (the host may be
   * shared: `host_busy_pct` in the results says how busy it was).
   */
  private async syncFs(): Promise<number> {
    const t0 = performance.now();
    await runCommand('sync', ['-f', this.files.workDir], { timeoutMs: 300_000 });
    const seconds = (performance.now() - t0) / 1000;
    this.lastBusy = Math.round(await hostBusy(1000));
    return seconds;
  }

  /** POST /volumes with `volume`, then polls GET /volumes/{id} until available or error (at most OP_TIMEOUT_S). */
  private async timedVolume(volume: Record<string, unknown>, syncBefore = 0): Promise<OpRun> {
    const api = this.api;
    const cpu = this.cpuMeter();
    const t0 = performance.now();
    const res = await api.volume('POST', '/volumes', { volume });
    if (res.status !== 202) return { seconds: null, status: `HTTP ${res.status}`, id: null, sync_before_s: round(syncBefore), host_busy_pct: this.lastBusy, ...cpu(), error: res.text.slice(0, 300) };
    const id = res.body.volume.id as string;
    const final = await this.pollStatus(`/volumes/${id}`, 'volume');
    const seconds = (performance.now() - t0) / 1000;
    return { seconds: final.status === 'available' ? round(seconds, 3) : null, status: final.status, id, sync_before_s: round(syncBefore), host_busy_pct: this.lastBusy, ...cpu(), error: final.error };
  }

  /** Starts counting the CPU of the target's processes; the returned function gives the seconds since. */
  private cpuMeter(): () => { server_cpu_s: number | null; infra_cpu_s: number | null } {
    const server = this.target.serverPids();
    const infra = this.target.infraPids();
    const s0 = treeCpuWithChildren(server);
    const i0 = treeCpuWithChildren(infra);
    return () => ({ server_cpu_s: server.length ? round(treeCpuWithChildren(server) - s0) : null, infra_cpu_s: infra.length ? round(treeCpuWithChildren(infra) - i0) : null });
  }

  /** Polls a volume or snapshot until it is available or in error; the status and, for an error, what the API says of it. */
  private async pollStatus(path: string, key: 'volume' | 'snapshot'): Promise<{ status: string; error: string | null }> {
    const end = Date.now() + this.s.opTimeoutS * 1000;
    for (;;) {
      this.check();
      const res = await this.api.volume('GET', path);
      if (res.status !== 200) return { status: `HTTP ${res.status}`, error: res.text.slice(0, 300) };
      const status = res.body[key]?.status as string;
      if (status === 'available') return { status, error: null };
      if (status.startsWith('error')) return { status, error: `${key} ${path} went to ${status}` };
      if (Date.now() > end) return { status: `${status} after ${this.s.opTimeoutS} s`, error: `${key} ${path} still ${status} after OP_TIMEOUT_S=${this.s.opTimeoutS}` };
      await sleep(this.s.pollMs);
    }
  }

  /** DELETE and wait (untimed, at most OP_TIMEOUT_S) until the resource answers 404. */
  private async deleteAndWait(path: string, key: 'volume' | 'snapshot'): Promise<void> {
    const res = await this.api.volume('DELETE', path);
    if (res.status !== 202 && res.status !== 404) throw new UnexpectedAnswer(`DELETE ${path}: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
    const end = Date.now() + this.s.opTimeoutS * 1000;
    for (;;) {
      const shown = await this.api.volume('GET', path);
      if (shown.status === 404) return;
      const status = shown.body?.[key]?.status as string | undefined;
      if (status === 'error_deleting') throw new UnexpectedAnswer(`${key} ${path} went to error_deleting`);
      if (Date.now() > end) throw new UnexpectedAnswer(`${key} ${path} still ${status ?? `HTTP ${shown.status}`} ${this.s.opTimeoutS} s after DELETE`);
      await sleep(this.s.pollMs);
    }
  }

  private deleteVolume(id: string): Promise<void> {
    return this.deleteAndWait(`/volumes/${id}`, 'volume');
  }

  /** REPEAT × (cp reference, create from the image); the first volume is kept (the source of snapshots and clones), the others deleted. */
  private async fromImage(): Promise<string> {
    const s = this.s;
    const r = this.result;
    const imageId = r.image?.id;
    if (!imageId) throw new Error('no image');
    r.same_file_system = sameFileSystem(this.files.workDir, this.target.volumeDir);
    let source: string | null = null;
    for (let i = 1; i <= s.repeat; i++) {
      this.check();
      const syncS = await this.syncFs();
      const copy: CopyRun = { ...(await copyReference(this.files.image, this.files.copy, syncS, s.opTimeoutS)), host_busy_pct: this.lastBusy };
      r.copy.push(copy);
      const run = await this.timedVolume({ size: s.volumeGb, imageRef: imageId, name: `volbench-image-${i}`, volume_type: this.types.file }, await this.syncFs());
      r.from_image.push(run);
      this.say(`${this.target.name}: run ${i}/${s.repeat}: cp ${copy.cp_s.toFixed(2)} s (+ fsync ${copy.cp_fsync_s.toFixed(2)} s), create from image ${run.seconds === null ? run.status : `${run.seconds.toFixed(2)} s`}`);
      if (run.seconds === null) {
        if (run.id) await this.deleteVolume(run.id).catch(() => undefined);
        if (source) await this.deleteVolume(source).catch(() => undefined);
        throw new UnexpectedAnswer(`${run.status}: ${run.error ?? ''}`);
      }
      if (!source && run.id) source = run.id;
      else if (run.id) await this.deleteVolume(run.id);
    }
    if (!source) throw new Error('no volume');
    return source;
  }

  /** REPEAT × snapshot of `source` to available, each deleted (untimed) before the next. */
  private async snapshots(source: string): Promise<void> {
    const s = this.s;
    for (let i = 1; i <= s.repeat; i++) {
      this.check();
      const sync = await this.syncFs();
      const cpu = this.cpuMeter();
      const t0 = performance.now();
      const res = await this.api.volume('POST', '/snapshots', { snapshot: { volume_id: source, name: `volbench-snap-${i}` } });
      if (res.status !== 202) throw new UnexpectedAnswer(`POST /snapshots: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
      const id = res.body.snapshot.id as string;
      const final = await this.pollStatus(`/snapshots/${id}`, 'snapshot');
      const seconds = (performance.now() - t0) / 1000;
      this.result.snapshot.push({ seconds: final.status === 'available' ? round(seconds, 3) : null, status: final.status, id, sync_before_s: round(sync), host_busy_pct: this.lastBusy, ...cpu(), error: final.error });
      this.say(`${this.target.name}: snapshot ${i}/${s.repeat}: ${final.status === 'available' ? `${seconds.toFixed(2)} s` : final.status}`);
      await this.deleteAndWait(`/snapshots/${id}`, 'snapshot');
      if (final.status !== 'available') throw new UnexpectedAnswer(`${final.status}: ${final.error ?? ''}`);
    }
  }

  /** REPEAT × clone of `source` (POST /volumes with source_volid) to available, each deleted (untimed) before the next. */
  private async clones(source: string): Promise<void> {
    const s = this.s;
    for (let i = 1; i <= s.repeat; i++) {
      this.check();
      const run = await this.timedVolume({ size: s.volumeGb, source_volid: source, name: `volbench-clone-${i}`, volume_type: this.types.file }, await this.syncFs());
      this.result.clone.push(run);
      this.say(`${this.target.name}: clone ${i}/${s.repeat}: ${run.seconds === null ? run.status : `${run.seconds.toFixed(2)} s`}`);
      if (run.id) await this.deleteVolume(run.id);
      if (run.seconds === null) throw new UnexpectedAnswer(`${run.status}: ${run.error ?? ''}`);
    }
  }

  /** COUNT volumes of 1 GB on the fake backend at concurrency `c`, then deleted at `c`; one watcher per phase. */
  private async ratePhase(c: number): Promise<RatePhase> {
    const s = this.s;
    const api = this.api;
    const busy = Math.round(await hostBusy(1000));
    const roots = this.target.serverPids();
    const infra = this.target.infraPids();
    const cpu0 = treeCpuWithChildren(roots);
    const infra0 = treeCpuWithChildren(infra);
    const ids: string[] = [];
    const createLatency: number[] = [];
    let errors = 0;
    let firstError: string | null = null;
    const fail = (what: string): void => {
      errors++;
      firstError ??= what;
    };
    let polls = 0;

    this.say(`${this.target.name}: creating ${s.count} volumes on the fake backend at concurrency ${c}`);
    const creating = new Watcher(api, 'creating', s.pollMs, this.aborted);
    creating.start();
    const createStart = Date.now();
    let createEnd = createStart;
    try {
      await deadline(
        bounded(s.count, c, async (i) => {
          if (this.aborted()) return;
          const t0 = Date.now();
          const res = await api.volume('POST', '/volumes', { volume: { size: 1, name: `volbench-c${c}-${i}`, volume_type: this.types.fake } });
          if (res.status !== 202) return fail(`POST /volumes ${res.status}: ${res.text.slice(0, 300)}`);
          const id = res.body.volume.id as string;
          ids.push(id);
          const seen = await creating.wait(id);
          if (seen.outcome !== 'done' && seen.outcome !== 'available') return fail(`volume ${id} went to ${seen.outcome}`);
          createLatency.push(seen.at - t0);
          createEnd = Math.max(createEnd, seen.at);
        }),
        s.phaseTimeoutS * 1000,
        `creating ${s.count} volumes at concurrency ${c}`,
      );
    } finally {
      await creating.stop();
      polls += creating.polls;
    }
    // What left `creating` is available or in error: one full list says which.
    const statuses = await this.statuses();
    const bad = ids.filter((id) => statuses.get(id) !== 'available');
    for (const id of bad) fail(`volume ${id} is ${statuses.get(id) ?? 'gone'} after its create`);
    const created = ids.length - bad.length;
    const createS = (createEnd - createStart) / 1000;

    this.say(`${this.target.name}: deleting ${ids.length} volumes at concurrency ${c}`);
    const deleteLatency: number[] = [];
    const deleting = new Watcher(api, 'deleting', s.pollMs, this.aborted);
    deleting.start();
    const deleteStart = Date.now();
    let deleteEnd = deleteStart;
    try {
      await deadline(
        bounded(ids.length, c, async (i) => {
          if (this.aborted()) return;
          const id = ids[i] ?? '';
          const t0 = Date.now();
          const res = await api.volume('DELETE', `/volumes/${id}`);
          if (res.status !== 202) return fail(`DELETE /volumes/${id} ${res.status}: ${res.text.slice(0, 300)}`);
          const seen = await deleting.wait(id);
          if (seen.outcome !== 'done') return fail(`volume ${id} went to ${seen.outcome} on delete`);
          deleteLatency.push(seen.at - t0);
          deleteEnd = Math.max(deleteEnd, seen.at);
        }),
        s.phaseTimeoutS * 1000,
        `deleting at concurrency ${c}`,
      );
    } finally {
      await deleting.stop();
      polls += deleting.polls;
    }
    // Gone means absent from the list; a volume that left `deleting` and is still listed did not go.
    const after = await this.statuses();
    const left = ids.filter((id) => after.has(id));
    for (const id of left) fail(`volume ${id} is ${after.get(id)} after its delete`);
    const deleteS = (deleteEnd - deleteStart) / 1000;
    const cpu1 = treeCpuWithChildren(roots);
    const infra1 = treeCpuWithChildren(infra);

    const phase: RatePhase = {
      concurrency: c,
      count: s.count,
      created,
      create_s: round(createS),
      create_per_s: round(created / Math.max(createS, 1e-3), 1),
      create_p50_ms: percentile(createLatency, 50),
      create_p99_ms: percentile(createLatency, 99),
      deleted: deleteLatency.length - left.length,
      delete_s: round(deleteS),
      delete_per_s: round((deleteLatency.length - left.length) / Math.max(deleteS, 1e-3), 1),
      delete_p50_ms: percentile(deleteLatency, 50),
      delete_p99_ms: percentile(deleteLatency, 99),
      errors,
      first_error: firstError,
      server_cpu_s: round(cpu1 - cpu0),
      infra_cpu_s: round(infra1 - infra0),
      polls,
      host_busy_pct: busy,
    };
    this.say(
      `${this.target.name} c=${c}: ${phase.create_per_s} volumes/s created (p50 ${phase.create_p50_ms} ms, p99 ${phase.create_p99_ms} ms), ${phase.delete_per_s} deleted/s (p50 ${phase.delete_p50_ms} ms), ${errors} errors`,
    );
    return phase;
  }

  /** Every volume of the project with its status (GET /volumes/detail, following `next`). */
  private async statuses(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let url: string | null = `${this.api.volumeUrl}/volumes/detail?limit=1000`;
    for (let pages = 0; url && pages < 1000; pages++) {
      const body = (await this.api.expect([200], 'GET', url)) as { volumes: { id: string; status: string }[]; volumes_links?: { rel: string; href: string }[] };
      for (const v of body.volumes) out.set(v.id, v.status);
      url = body.volumes_links?.find((l) => l.rel === 'next')?.href ?? null;
    }
    return out;
  }

  /** The medians, once the runs are in. */
  summarize(): void {
    const r = this.result;
    const ok = (runs: OpRun[]): number[] => runs.flatMap((x) => (x.seconds === null ? [] : [x.seconds]));
    const cpu = (runs: OpRun[]): number[] => runs.flatMap((x) => (x.seconds === null || x.server_cpu_s === null ? [] : [x.server_cpu_s + (x.infra_cpu_s ?? 0)]));
    r.summary = {
      from_image_s: summarize(ok(r.from_image)),
      cp_s: summarize(r.copy.map((x) => x.cp_s)),
      cp_fsync_s: summarize(r.copy.map((x) => x.cp_fsync_s)),
      snapshot_s: summarize(ok(r.snapshot)),
      clone_s: summarize(ok(r.clone)),
      from_image_cpu_s: summarize(cpu(r.from_image)),
      snapshot_cpu_s: summarize(cpu(r.snapshot)),
      clone_cpu_s: summarize(cpu(r.clone)),
    };
  }
}

/** True when both paths (or, for one that does not exist yet, its nearest existing parent) are on one file system. */
export function sameFileSystem(a: string, b: string): boolean | null {
  const dev = (p: string): number | null => {
    for (let x = p; ; x = x.slice(0, x.lastIndexOf('/')) || '/') {
      try {
        return fs.statSync(x).dev;
      } catch {
        if (x === '/') return null;
      }
    }
  };
  const da = dev(a);
  const db = dev(b);
  return da === null || db === null ? null : da === db;
}
