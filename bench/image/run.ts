/**
 * Image benchmark: upload and download throughput of one large image on
 * Stratus, on Debian's Glance (when it starts) and, as the physical limit, of
 * cp / cp + fsync / cat of the same file on the same disk, all in one run.
 * Not part of the test suite. See bench/image/README.md.
 *
 *   bash bench/image/run.sh            (builds, then runs this file)
 *   node dist/bench/image/run.js       (after ./stratus --help has built it)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { httpRequest } from '../lib/http.js';
import { commandLine, debVersion, haveCommand, hostBusy, liveChildren, runCommand, within } from '../lib/proc.js';
import { gitInfo, hostInfo, loadAvg, message, onInterrupt, runMain, say, writeResults } from '../lib/run.js';
import { imageRun, UnexpectedAnswer, type Expected, type ImageRun } from './lib/images.js';
import { summarizeProfiles, type ProfileEntry } from './lib/profile.js';
import { referenceRun } from './lib/reference.js';
import { buildRatios, buildRows, renderReport, type Before, type RefRecord, type ServerSide, type TestFile } from './lib/report.js';
import { cachedBytes, dirtyMib, hwmMib, rssMib } from './lib/sampler.js';
import { glanceMissing, GlanceServer, StratusServer, type GlanceOptions, type ImageServer } from './lib/servers.js';
import { readSettings, type Settings } from './lib/settings.js';

/** The build's root (this file runs as <build>/bench/image/run.js). */
const BUILD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = path.join(BUILD, 'src', 'cli', 'main.js');
/** The repository (results, default anchors); STRATUS_REPO for a build kept elsewhere. */
const ROOT = path.resolve(process.env.STRATUS_REPO || path.join(BUILD, '..'));
const RESULTS_DIR = path.join(ROOT, 'bench', 'image', 'results');
const MiB = 2 ** 20;

function emptySide(note: string): ServerSide {
  return { available: false, note, version: null, warmup: null, runs: [], rss_idle_mib: null, vmhwm_end_mib: null, procs: null };
}

/** Runs a shell command with a time limit; throws with its output when it fails. */
async function sh(script: string, timeoutS: number, args: string[] = []): Promise<string> {
  const r = await runCommand('bash', ['-c', script, 'bash', ...args], { timeoutMs: timeoutS * 1000 });
  if (r.code !== 0) throw new Error(`${script} ${args.join(' ')}: exit ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** File system type and device of a path, e.g. "ext4 /dev/vda". */
function fileSystem(p: string): string {
  const r = spawnSync('df', ['--output=fstype,source', p], { encoding: 'utf8', timeout: 10000 });
  return (r.stdout ?? '').split('\n')[1]?.trim().replace(/\s+/g, ' ') || '?';
}

/** Writes `bytes` random bytes to `file` (no compression or sparse tricks apply) and returns its MD5. */
async function randomFile(file: string, bytes: number, from = '/dev/urandom'): Promise<string> {
  await sh('head -c "$1" "$2" > "$3"', 600, [String(bytes), from, file]);
  return (await sh('md5sum "$1"', 300, [file])).split(/\s+/)[0] ?? '';
}

/**
 * Before a measured step: flushes what is dirty on the file system (untimed,
 * so that one step's write-back does not land in the next one), then samples
 * the host's CPU for 2 s.
 */
async function prepare(run: number, dir: string): Promise<Before> {
  const dirty_before_mib = dirtyMib();
  const t0 = performance.now();
  await sh('sync -f "$1"', 300, [dir]);
  const sync_s = (performance.now() - t0) / 1000;
  const bg_cpu_busy_pct = await hostBusy(2000);
  return { run, bg_cpu_busy_pct, dirty_before_mib, sync_s };
}

function describeRun(name: string, r: ImageRun): string {
  const cpu = (c: { user_s: number; sys_s: number }): string => (c.user_s + c.sys_s).toFixed(2);
  return (
    `${name}: upload ${r.upload.seconds.toFixed(2)} s = ${r.upload_mib_s.toFixed(0)} MiB/s (server CPU ${cpu(r.upload.server_cpu)} s, peak RSS ${r.upload.memory.rss_peak_mib.toFixed(0)} MiB), ` +
    `download ${r.download.seconds.toFixed(2)} s = ${r.download_mib_s.toFixed(0)} MiB/s (server CPU ${cpu(r.download.server_cpu)} s, peak RSS ${r.download.memory.rss_peak_mib.toFixed(0)} MiB)`
  );
}

/** One benchmark run: its files, servers and results. */
class ImageBench {
  readonly workDir: string;
  readonly imageFile: string;
  readonly warmFile: string;
  readonly copyFile: string;
  readonly profileDir: string;
  readonly stratusSide = emptySide('');
  readonly glanceSide: ServerSide;
  readonly refs: RefRecord[] = [];
  file: TestFile | null = null;
  stratus: StratusServer | null = null;
  glance: GlanceServer | null = null;
  profile: ProfileEntry[] = [];
  private expected: Expected | null = null;
  private warm: Expected | null = null;
  private cleaning: Promise<void> | null = null;
  /** The anchor state directory was there before this run (then it stays). */
  private readonly anchorStateExisted: boolean;
  /** True once everything started has been stopped. */
  cleaned = false;

  constructor(readonly s: Settings) {
    fs.mkdirSync(s.workParent, { recursive: true });
    this.workDir = fs.mkdtempSync(path.join(s.workParent, 'stratus-image-bench-'));
    this.imageFile = path.join(this.workDir, `image-${s.imgMib}MiB.bin`);
    this.warmFile = path.join(this.workDir, `warmup-${s.warmupMib}MiB.bin`);
    this.copyFile = path.join(this.workDir, 'copy.bin');
    this.profileDir = path.join(this.workDir, 'cpuprofile');
    this.glanceSide = emptySide(s.glance ? '' : 'skipped (GLANCE=0)');
    this.anchorStateExisted = fs.existsSync(s.anchorState);
  }

  get glanceOptions(): GlanceOptions {
    const s = this.s;
    return { anchors: s.anchors, state: s.anchorState, ksPort: s.ksPort, ksMemcachePort: s.ksMemcachePort, ksCache: s.ksCache, ksPassword: s.ksPassword, glPort: s.glPort, timeoutS: 300, logDir: this.workDir };
  }

  /** The test file (random bytes, once) and the small warm-up file cut from it. */
  async createFiles(): Promise<void> {
    const bytes = this.s.imgMib * MiB;
    say(`creating ${this.s.imgMib} MiB of random bytes in ${this.imageFile}`);
    const t0 = performance.now();
    const md5 = await randomFile(this.imageFile, bytes);
    this.file = { bytes, md5, create_s: (performance.now() - t0) / 1000, fs: fileSystem(this.workDir), cached_bytes_start: cachedBytes(this.imageFile) };
    this.expected = { file: this.imageFile, bytes, md5 };
    if (this.s.warmupMib > 0) {
      const warmBytes = this.s.warmupMib * MiB;
      this.warm = { file: this.warmFile, bytes: warmBytes, md5: await randomFile(this.warmFile, warmBytes, this.imageFile) };
    }
  }

  /** Starts Stratus (a failure stops the benchmark) and, when it can, Keystone + Glance (a failure is noted). */
  async startServers(): Promise<void> {
    const s = this.s;
    const dataDir = path.join(this.workDir, 'stratus-data');
    say(`starting Stratus (identity :${s.stratusPort}, image :${s.stratusImagePort}, data ${dataDir})`);
    const nodeArgs = s.profile ? ['--cpu-prof', `--cpu-prof-dir=${this.profileDir}`] : [];
    this.stratus = await StratusServer.start({ main: MAIN, nodeArgs, identityPort: s.stratusPort, imagePort: s.stratusImagePort, password: s.stratusPassword, dataDir, timeoutS: 120 });
    this.stratusSide.available = true;
    this.stratusSide.version = gitInfo(ROOT);
    if (!s.glance) return;
    const gl = this.glanceSide;
    const missing = glanceMissing(this.glanceOptions);
    if (missing) {
      gl.note = missing;
      say(`Glance is not measured: ${missing}`);
      return;
    }
    say(`starting Keystone (:${s.ksPort}) and Glance (:${s.glPort}) with OS_ANCHOR_STATE=${s.anchorState} (a first start initialises them, ~1 min)`);
    try {
      this.glance = await GlanceServer.start(this.glanceOptions);
      gl.available = true;
      gl.version = debVersion('glance-api');
    } catch (err) {
      gl.note = `did not start: ${message(err)}`;
      say(`Glance is not measured: ${gl.note}`);
    }
  }

  /** The servers that are up, with their result records. */
  private servers(): [ImageServer, ServerSide][] {
    const out: [ImageServer, ServerSide][] = [];
    if (this.stratus) out.push([this.stratus, this.stratusSide]);
    if (this.glance) out.push([this.glance, this.glanceSide]);
    return out;
  }

  /** Records a Glance failure and goes on without it; a Stratus failure ends the benchmark. */
  private failed(server: ImageServer, side: ServerSide, what: string, err: unknown): void {
    if (server.name === 'stratus') throw err;
    side.available = false;
    side.note = `${what}: ${message(err)}`;
    say(`Glance: ${side.note}; going on without it`);
  }

  /** Primes each server: a token, four image lists (every worker's token cache), one small image cycle. */
  async warmUp(): Promise<void> {
    for (const [server, side] of this.servers()) {
      const dev = fs.statSync(this.workDir).dev;
      const store = server.storedPath('');
      if (fs.existsSync(store) && fs.statSync(store).dev !== dev) say(`warning: ${store} is not on the file system of ${this.workDir}`);
      say(`${server.name}: warm-up (token, image lists${this.warm ? `, one ${this.s.warmupMib} MiB image` : ''})`);
      try {
        const token = await within(server.token(), 60000, `${server.name} token`);
        for (let i = 0; i < 4; i++) {
          const r = await httpRequest(`${server.imageUrl}/v2/images`, { headers: { 'X-Auth-Token': token }, timeoutMs: 30000 });
          if (r.status !== 200) throw new UnexpectedAnswer(`${server.name}: GET /v2/images answered HTTP ${r.status}: ${r.body.slice(0, 300)}`);
        }
        if (this.warm) side.warmup = await imageRun(server, token, this.warm, this.runOptions(server, 'image-bench-warmup'));
      } catch (err) {
        this.failed(server, side, 'warm-up failed', err);
      }
      const pids = server.pids();
      side.rss_idle_mib = rssMib(pids);
      side.procs = pids.length;
    }
  }

  private runOptions(server: ImageServer, name: string): { name: string; timeoutS: number; sampleMs: number; responseFile: string } {
    return { name, timeoutS: this.s.transferTimeoutS, sampleMs: this.s.sampleMs, responseFile: path.join(this.workDir, `response-${server.name}`) };
  }

  /** RUNS rounds of: references (cp, cp + fsync, dd, cat), then one image cycle per server. */
  async measure(): Promise<void> {
    const s = this.s;
    const expected = this.expected;
    if (!expected) throw new Error('createFiles() first');
    for (let run = 1; run <= s.runs; run++) {
      const before = await prepare(run, this.workDir);
      const ref = await referenceRun(this.imageFile, this.copyFile, s.transferTimeoutS);
      this.refs.push({ ...ref, ...before });
      say(
        `run ${run}/${s.runs} references: cp ${ref.cp_s.toFixed(2)} s, cp + fsync ${ref.cp_fsync_s.toFixed(2)} s (${(s.imgMib / ref.cp_fsync_s).toFixed(0)} MiB/s), ` +
          `dd conv=fsync ${ref.dd_fsync_s.toFixed(2)} s, cat ${ref.cat_s.toFixed(2)} s; host busy before ${before.bg_cpu_busy_pct.toFixed(0)} %`,
      );
      for (const [server, side] of this.servers()) {
        if (!side.available) continue;
        const b = await prepare(run, this.workDir);
        try {
          const token = await within(server.token(), 60000, `${server.name} token`);
          const r = await imageRun(server, token, expected, this.runOptions(server, `image-bench-${run}`));
          side.runs.push({ ...r, ...b });
          say(`run ${run}/${s.runs} ${describeRun(server.name, r)}; host busy before ${b.bg_cpu_busy_pct.toFixed(0)} %`);
        } catch (err) {
          this.failed(server, side, `failed in run ${run}`, err);
        }
      }
    }
    for (const [server, side] of this.servers()) side.vmhwm_end_mib = hwmMib(server.pids());
  }

  /** Stops every process this run started (once; later calls wait for the first). */
  cleanup(): Promise<void> {
    this.cleaning ??= (async () => {
      for (const child of liveChildren) if (child.spawnfile === 'bash' || child.spawnfile === 'curl') child.kill('SIGTERM');
      await this.stratus?.stop().catch((err: unknown) => say(`warning: stopping Stratus: ${message(err)}`));
      await this.glance?.stop().catch((err: unknown) => say(`warning: stopping Glance: ${message(err)}`));
      if (this.s.profile) this.profile = summarizeProfiles(this.profileDir);
      this.cleaned = true;
    })();
    return this.cleaning;
  }

  /** Synchronous last resort (process exit without cleanup): kills children, runs the anchors' stop scripts. */
  emergencyStop(): void {
    for (const child of liveChildren) child.kill('SIGKILL');
    if (!this.glance) return;
    const env = { ...process.env, OS_ANCHOR_STATE: this.s.anchorState, KS_PORT: String(this.s.ksPort), GL_PORT: String(this.s.glPort) };
    for (const name of ['stop-glance.sh', 'stop-keystone.sh']) spawnSync('bash', [path.join(this.s.anchors, name)], { env, stdio: 'ignore', timeout: 30000 });
  }

  /**
   * After cleanup(): removes the big files always; the work directory (Stratus
   * data and log, anchor script output) unless KEEP_DATA=1 or `keepLogs`; the
   * anchor state directory when this run made it, unless KEEP_DATA=1.
   */
  removeFiles(keepLogs: boolean): void {
    for (const f of [this.imageFile, this.warmFile, this.copyFile]) fs.rmSync(f, { force: true });
    this.glance?.removeImages();
    if (this.s.keepData || keepLogs) say(`kept ${this.workDir} (Stratus data and log, anchor script output)`);
    else fs.rmSync(this.workDir, { recursive: true, force: true });
    if (this.s.keepData || this.anchorStateExisted) return;
    fs.rmSync(this.s.anchorState, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const s = readSettings(ROOT);
  const missingTools = ['curl', 'cp', 'dd', 'sync', 'md5sum', 'head', 'df'].filter((c) => !haveCommand(c));
  if (missingTools.length) {
    process.stderr.write(`bench: needed and not installed: ${missingTools.join(', ')}\n`);
    return 2;
  }
  if (!fs.existsSync(MAIN)) {
    process.stderr.write(`bench: ${MAIN} is missing; build first (./stratus --help) or use bench/image/run.sh\n`);
    return 2;
  }

  const started = new Date();
  const loadStart = loadAvg();
  const bench = new ImageBench(s);
  process.once('exit', () => {
    if (!bench.cleaned) bench.emergencyStop();
  });
  // Interrupted or stuck: stop and clean up, then end without a report.
  const onSignal = (why: string, code: number): void => {
    say(`${why}: stopping everything this benchmark started...`);
    void bench.cleanup().then(() => {
      bench.removeFiles(code === 124);
      process.exit(code);
    });
  };
  const cancelTimeLimit = onInterrupt(s.totalTimeoutS, onSignal);

  let error: unknown = null;
  try {
    await bench.createFiles();
    await bench.startServers();
    await bench.warmUp();
    await bench.measure();
  } catch (err) {
    error = err;
    process.stderr.write(`bench: failed: ${message(err)}\n`);
    if (err instanceof UnexpectedAnswer) process.stderr.write(`bench: the server answered something unexpected (above); its log stays in ${bench.workDir}.\n`);
  } finally {
    say('stopping Stratus, Glance and Keystone');
    await bench.cleanup();
    cancelTimeLimit();
  }

  const rows = buildRows(s.imgMib, bench.refs, bench.stratusSide, bench.glanceSide);
  const ratios = buildRatios(rows);
  const bg = [...bench.refs, ...bench.stratusSide.runs, ...bench.glanceSide.runs].map((r) => r.bg_cpu_busy_pct);
  const host = { ...hostInfo(loadStart), bg_cpu_busy_pct: bg };
  const versions = {
    stratus: gitInfo(ROOT),
    node: process.version,
    glance_api: bench.glanceSide.version ?? debVersion('glance-api'),
    keystone: debVersion('keystone'),
    curl: commandLine('curl', ['--version']),
    coreutils: commandLine('cp', ['--version']),
    qemu_img: commandLine('qemu-img', ['--version']),
    kernel: os.release(),
  };

  const json = {
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    error: error ? message(error) : null,
    settings: s,
    host,
    versions,
    file: bench.file,
    reference: bench.refs,
    stratus: bench.stratusSide,
    glance: bench.glanceSide,
    stratus_cpu_profile: bench.profile,
    table: rows,
    ratios,
  };
  const jsonPath = writeResults(RESULTS_DIR, started, json);
  const report = renderReport({ settings: s, file: bench.file, rows, ratios, stratus: bench.stratusSide, glance: bench.glanceSide, versions, host, profile: bench.profile });
  process.stdout.write(`${report}\nRaw numbers: ${path.relative(process.cwd(), jsonPath) || jsonPath}\n`);
  bench.removeFiles(error !== null);
  return error ? 1 : 0;
}

runMain(main);
