import http from 'node:http';
import { timedRequest } from '../../lib/http.js';
import { boundedLoad, type LoadResult } from '../../lib/load.js';
import { monotonicUs, type ProfileWindow } from '../../lib/profile.js';
import { hostBusy, runCommand, sleep, threadCpuSeconds, treeCpuSeconds, treeMemory, type TreeMemory } from '../../lib/proc.js';
import { message } from '../../lib/run.js';
import { largeReference, seedFiles, smallFileReads, smallFileWrites, syncFs, type LargeReference } from './disk.js';
import type { Settings } from './settings.js';
import type { ObjectTarget } from './targets.js';

/** The small-object operations. */
export type SmallOp = 'put' | 'get';

/** One timed run of small-object requests (or of the disk's small-file reference). */
export interface SmallRun {
  op: SmallOp;
  concurrency: number;
  run: number;
  ok: number;
  errors: number;
  stopped_by: LoadResult['stopped_by'];
  elapsed_s: number;
  /** Successful operations per second. */
  rate_per_s: number;
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  error_samples: string[];
  /** CPU of the target's processes per successful operation, ms (null for the disk reference). */
  server_cpu_ms_per_op: number | null;
  /** CPU of Stratus' main thread (its event loop) per successful operation, ms (null: Swift, the disk). */
  main_thread_cpu_ms_per_op: number | null;
  /** CPU of this benchmark process (the load generator) per successful operation, ms. */
  client_cpu_ms_per_op: number | null;
  /** Whole-host CPU busy % in the second before the run (other users of a shared host). */
  host_busy_pct: number;
  /** When the run went, on the monotonic clock in µs (to cut a CPU profile). */
  window_us: ProfileWindow;
  /** Disk reference runs: the target measured right after. */
  before?: string;
}

/** One timed large transfer. */
export interface LargeRun {
  op: SmallOp;
  run: number;
  /** curl's time_total (the PUT: until the 201, so the servers' fsyncs are in it); null when it failed. */
  seconds: number | null;
  mib_s: number | null;
  http_status: number;
  /** The untimed `sync -f` before it, seconds. */
  sync_before_s: number;
  host_busy_pct: number;
  /** CPU seconds of the target's processes during the transfer. */
  server_cpu_s: number | null;
  /** CPU seconds of Stratus' main thread during the transfer (null: Swift). */
  main_thread_cpu_s: number | null;
  error: string | null;
  window_us: ProfileWindow;
}

/** Everything measured on one target (Stratus or Swift). */
export interface TargetResult {
  name: string;
  available: boolean;
  /** Why it was not measured, or what went wrong. */
  note: string;
  setup: Record<string, string | number | null>;
  /** From the start command to the first authenticated answer, seconds. */
  start_s: number | null;
  /** X-Storage-Policy of the benchmark's container as the target reports it. */
  policy: string | null;
  /** `*.data` files found on the devices for the seeded objects (3 replicas: 3 x objects). */
  replicas_on_disk: { objects: number; data_files: number } | null;
  /** Resident memory of the target's processes, idle after the start and the container PUT, and after all load. */
  memory_idle: TreeMemory | null;
  memory_after: TreeMemory | null;
  small: SmallRun[];
  large: LargeRun[];
  log_tail: string;
}

/** The disk's own figures: the limits. */
export interface DiskResult {
  small: SmallRun[];
  large: (LargeReference & { before?: string })[];
  note: string;
}

/** A result with nothing measured. */
export function emptyResult(name: string, note: string, setup: Record<string, string | number | null> = {}): TargetResult {
  return { name, available: false, note, setup, start_s: null, policy: null, replicas_on_disk: null, memory_idle: null, memory_after: null, small: [], large: [], log_tail: '' };
}

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

function smallRun(op: SmallOp, concurrency: number, run: number, m: Measured): SmallRun {
  const { r, serverCpu: serverCpuS, clientCpu: clientCpuS } = m;
  const per = (cpu: number): number | null => (r.ok > 0 ? round((cpu * 1000) / r.ok) : null);
  return {
    op,
    concurrency,
    run,
    ok: r.ok,
    errors: r.errors,
    stopped_by: r.stopped_by,
    elapsed_s: r.elapsed_s,
    rate_per_s: r.rate_per_s,
    p50_ms: r.latency_ms?.median ?? null,
    p99_ms: r.latency_ms?.p99 ?? null,
    max_ms: r.latency_ms?.max ?? null,
    error_samples: r.error_samples,
    server_cpu_ms_per_op: serverCpuS === null ? null : per(serverCpuS),
    main_thread_cpu_ms_per_op: m.mainCpu === null ? null : per(m.mainCpu),
    client_cpu_ms_per_op: per(clientCpuS),
    host_busy_pct: round(m.busy, 1),
    window_us: m.window,
  };
}

/** A load run with the CPU used around it. */
interface Measured {
  r: LoadResult;
  /** Host CPU busy % in the second before. */
  busy: number;
  /** CPU seconds of the target's processes (null: none given). */
  serverCpu: number | null;
  /** CPU seconds of the main thread of `mainPid`, when given. */
  mainCpu: number | null;
  /** CPU seconds of this process. */
  clientCpu: number;
  window: ProfileWindow;
}

/** Runs `load` between CPU readings of the target's processes and of this process. */
async function measured(pids: number[], mainPid: number | null, load: () => Promise<LoadResult>): Promise<Measured> {
  const busy = await hostBusy(1000);
  const c0 = process.cpuUsage();
  const s0 = pids.length ? treeCpuSeconds(pids) : 0;
  const m0 = mainPid === null ? null : threadCpuSeconds(mainPid);
  const from = monotonicUs();
  const r = await load();
  const to = monotonicUs();
  const s1 = pids.length ? treeCpuSeconds(pids) : 0;
  const m1 = mainPid === null ? null : threadCpuSeconds(mainPid);
  const c = process.cpuUsage(c0);
  return { r, busy, serverCpu: pids.length ? s1 - s0 : null, mainCpu: m0 === null || m1 === null ? null : m1 - m0, clientCpu: (c.user + c.system) / 1e6, window: [from, to] };
}

/** The disk's limits: small files with fsync at each concurrency, and dd of the large file. */
export async function measureDisk(s: Settings, dir: string, bigFile: string | null, say: (line: string) => void, aborted: () => boolean): Promise<DiskResult> {
  const result: DiskResult = { small: [], large: [], note: '' };
  if (s.parts.includes('small')) {
    await seedFiles(dir, s.nseed, s.objBytes);
    for (const c of s.concurrency) {
      for (let r = 1; r <= s.repeat && !aborted(); r++) {
        await syncFs(dir);
        const m = await measured([], null, () => smallFileWrites(dir, { bytes: s.objBytes, concurrency: c, count: s.count, durationS: s.durationS, tag: `w-c${c}-r${r}` }));
        result.small.push(smallRun('put', c, r, m));
        say(`disk: ${s.objBytes} B file + fsync, c=${c}: ${m.r.rate_per_s}/s`);
      }
      for (let r = 1; r <= s.repeat && !aborted(); r++) {
        const m = await measured([], null, () => smallFileReads(dir, { n: s.nseed, bytes: s.objBytes, concurrency: c, count: s.count, durationS: s.durationS }));
        result.small.push(smallRun('get', c, r, m));
        say(`disk: ${s.objBytes} B file read, c=${c}: ${m.r.rate_per_s}/s`);
      }
    }
  }
  if (bigFile) {
    for (let r = 1; r <= s.repeat && !aborted(); r++) {
      const ref = await largeReference(bigFile, `${dir}/dd-copy`, s.transferTimeoutS);
      result.large.push(ref);
      say(`disk: dd ${s.bigMib} MiB conv=fsync ${round(s.bigMib / ref.write_s, 1)} MiB/s, read cached ${round(s.bigMib / ref.read_cached_s, 1)} MiB/s, O_DIRECT ${round(s.bigMib / ref.read_direct_s, 1)} MiB/s`);
    }
  }
  return result;
}

/** The large test file and its MD5 (the ETag a PUT must answer). */
export interface BigFile {
  path: string;
  md5: string;
}

/** The measurements on one running target, in order: container, seeds, small-object runs, large transfers. */
export class TargetRun {
  readonly result: TargetResult;
  private readonly body: Buffer;
  private readonly container = 'bench';

  constructor(
    private readonly target: ObjectTarget,
    private readonly s: Settings,
    private readonly big: BigFile | null,
    private readonly say: (line: string) => void,
    private readonly aborted: () => boolean,
  ) {
    this.result = { ...emptyResult(target.name, '', target.setup), available: true, start_s: round(target.startS) };
    this.body = Buffer.alloc(s.objBytes, 0x78);
  }

  private objectPath(name: string): string {
    return `${this.target.accountPath}/${this.container}/${name}`;
  }

  /** One request on a new connection; throws unless the status is one of `ok`. */
  private async request(method: string, path: string, headers: Record<string, string>, ok: number[], body?: Buffer): Promise<http.IncomingHttpHeaders> {
    const agent = new http.Agent({ keepAlive: false });
    try {
      const res = await timedRequest(agent, { host: this.target.host, port: this.target.port, path }, { method, headers: { 'X-Auth-Token': this.target.token, ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) }, ...(body ? { body } : {}), timeoutMs: this.s.requestTimeoutS * 1000 });
      if (!ok.includes(res.status)) throw new Error(`${this.target.name}: ${method} ${path}: HTTP ${res.status}`);
      return res.headers;
    } finally {
      agent.destroy();
    }
  }

  /** Everything, in order; stops at the first failure that leaves nothing to measure (the message is in `result.note`). */
  async run(): Promise<void> {
    try {
      await this.request('PUT', `${this.target.accountPath}/${this.container}`, this.target.containerHeaders, [201, 202]);
      const head = await this.request('HEAD', `${this.target.accountPath}/${this.container}`, {}, [204, 200]);
      this.result.policy = typeof head['x-storage-policy'] === 'string' ? head['x-storage-policy'] : null;
      this.result.memory_idle = treeMemory(this.target.pids());
      if (this.s.parts.includes('small') && !this.aborted()) await this.small();
      if (this.big && !this.aborted()) await this.large(this.big);
      this.result.memory_after = treeMemory(this.target.pids());
    } catch (err) {
      this.result.note = message(err);
      this.say(`${this.target.name}: ${this.result.note}`);
    } finally {
      this.result.log_tail = this.target.logTail();
    }
  }

  /** A bounded run of PUTs of new names, or GETs of the seeded objects, on `concurrency` keep-alive connections. */
  private load(op: SmallOp, concurrency: number, count: number, durationS: number, tag: string): Promise<LoadResult> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const t = this.target;
    const putHeaders = { 'X-Auth-Token': t.token, 'Content-Type': 'application/octet-stream', 'Content-Length': String(this.body.length) };
    const getHeaders = { 'X-Auth-Token': t.token };
    const timeoutMs = this.s.requestTimeoutS * 1000;
    return boundedLoad({
      count,
      concurrency,
      timeLimitS: durationS,
      maxErrors: 100,
      keepLatencies: false,
      aborted: this.aborted,
      op: async (i) => {
        if (op === 'put') {
          const res = await timedRequest(agent, { host: t.host, port: t.port, path: this.objectPath(`${tag}-${i}`) }, { method: 'PUT', headers: putHeaders, body: this.body, timeoutMs });
          if (res.status !== 201) throw new Error(`PUT: HTTP ${res.status}`);
          return res.ms;
        }
        const res = await timedRequest(agent, { host: t.host, port: t.port, path: this.objectPath(`seed-${Math.floor(Math.random() * this.s.nseed)}`) }, { method: 'GET', headers: getHeaders, timeoutMs });
        if (res.status !== 200 || res.bytes !== this.body.length) throw new Error(`GET: HTTP ${res.status}, ${res.bytes} bytes`);
        return res.ms;
      },
    }).finally(() => agent.destroy());
  }

  private async small(): Promise<void> {
    const s = this.s;
    const name = this.target.name;
    // The GET runs read these: PUT under seed-0 .. seed-(NSEED-1).
    const seeded = await this.load('put', 4, s.nseed, s.requestTimeoutS * s.nseed, 'seed');
    if (seeded.ok !== s.nseed) throw new Error(`seeding failed: ${seeded.ok} of ${s.nseed} PUTs succeeded (${seeded.error_samples[0] ?? ''})`);
    // A PUT answers once a quorum (2 of 3) has its replica; the last one may land a moment later.
    let files = this.target.dataFiles();
    for (let i = 0; i < 50 && files < 3 * s.nseed; i++) {
      await sleep(100);
      files = this.target.dataFiles();
    }
    this.result.replicas_on_disk = { objects: s.nseed, data_files: files };
    this.say(`${name}: ${s.nseed} objects seeded, ${files} .data files on the devices (${round(files / s.nseed, 2)} per object)`);
    const cmax = Math.max(...s.concurrency);
    if (s.warmup > 0) {
      await this.load('put', cmax, s.warmup, s.durationS, 'warm');
      await this.load('get', cmax, s.warmup, s.durationS, 'warm');
    }
    const pids = this.target.pids();
    for (const c of s.concurrency) {
      for (const op of ['put', 'get'] as const) {
        for (let r = 1; r <= s.repeat && !this.aborted(); r++) {
          const m = await measured(pids, this.target.mainThreadPid(), () => this.load(op, c, s.count, s.durationS, `${op}-c${c}-r${r}`));
          const run = smallRun(op, c, r, m);
          this.result.small.push(run);
          this.say(`${name}: ${s.objBytes} B ${op.toUpperCase()} c=${c} run ${r}: ${run.rate_per_s}/s, p50 ${run.p50_ms} ms, p99 ${run.p99_ms} ms${run.errors ? `, ${run.errors} errors (${run.error_samples[0] ?? ''})` : ''} (host busy before: ${run.host_busy_pct} %)`);
          if (m.r.ok === 0) throw new Error(`${op.toUpperCase()} c=${c}: no request succeeded: ${m.r.error_samples[0] ?? ''}`);
        }
      }
    }
  }

  /** curl, timed by curl; returns status, seconds and the ETag / bytes. */
  private async curl(args: string[], write: string): Promise<{ status: number; seconds: number; extra: string }> {
    const r = await runCommand('curl', ['-s', '-o', '/dev/null', '--max-time', String(this.s.transferTimeoutS), '-H', `X-Auth-Token: ${this.target.token}`, '-w', write, ...args], { timeoutMs: (this.s.transferTimeoutS + 10) * 1000 });
    const [status, seconds, extra] = r.stdout.trim().split(' ');
    return { status: Number(status), seconds: Number(seconds), extra: extra ?? '' };
  }

  private async large(big: BigFile): Promise<void> {
    const s = this.s;
    const pids = this.target.pids();
    const url = (r: number): string => `http://${this.target.host}:${this.target.port}${this.objectPath(`big-${r}`)}`;
    const dir = this.s.workParent;
    for (let r = 1; r <= s.repeat && !this.aborted(); r++) {
      for (const op of ['put', 'get'] as const) {
        const sync = await syncFs(dir);
        const busy = await hostBusy(1000);
        const mainPid = this.target.mainThreadPid();
        const m0 = mainPid === null ? null : threadCpuSeconds(mainPid);
        const c0 = treeCpuSeconds(pids);
        const from = monotonicUs();
        const res = op === 'put' ? await this.curl(['-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '-T', big.path, url(r)], '%{http_code} %{time_total} %header{etag}') : await this.curl([url(r)], '%{http_code} %{time_total} %{size_download}');
        const window: ProfileWindow = [from, monotonicUs()];
        const cpu = treeCpuSeconds(pids) - c0;
        const m1 = mainPid === null ? null : threadCpuSeconds(mainPid);
        const mainCpu = m0 === null || m1 === null ? null : round(m1 - m0, 2);
        let error: string | null = null;
        if (op === 'put' && (res.status !== 201 || res.extra.replaceAll('"', '') !== big.md5)) error = `PUT: HTTP ${res.status}, ETag ${res.extra || '-'} (the file's MD5 is ${big.md5})`;
        if (op === 'get' && (res.status !== 200 || Number(res.extra) !== s.bigMib * 2 ** 20)) error = `GET: HTTP ${res.status}, ${res.extra} bytes`;
        const ok = error === null && res.seconds > 0;
        const run: LargeRun = { op, run: r, seconds: ok ? res.seconds : null, mib_s: ok ? round(s.bigMib / res.seconds, 1) : null, http_status: res.status, sync_before_s: round(sync), host_busy_pct: round(busy, 1), server_cpu_s: round(cpu, 2), main_thread_cpu_s: mainCpu, error, window_us: window };
        this.result.large.push(run);
        this.say(`${this.target.name}: ${s.bigMib} MiB ${op.toUpperCase()} run ${r}: ${run.mib_s ?? '-'} MiB/s${error ? ` (${error})` : ''}`);
        if (error) throw new Error(error);
      }
      await this.request('DELETE', this.objectPath(`big-${r}`), {}, [204]);
    }
  }
}
