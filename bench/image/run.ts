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
import { httpRequest } from '../identity/lib/http.js';
import { commandLine, haveCommand, hostBusy, liveChildren, runCommand } from '../identity/lib/proc.js';
import { imageRun, UnexpectedAnswer, type Expected, type ImageRun } from './lib/images.js';
import { summarizeProfiles, type ProfileEntry } from './lib/profile.js';
import { referenceRun } from './lib/reference.js';
import { buildRatios, buildRows, fmtSummary, renderBreakdown, renderRatios, renderRows, summarize, type Before, type RefRecord, type ServerSide } from './lib/report.js';
import { cachedBytes, dirtyMib, hwmMib, rssMib } from './lib/sampler.js';
import { glanceMissing, GlanceServer, StratusServer, within, type ImageServer } from './lib/servers.js';
import { readSettings, UsageError, type Settings } from './lib/settings.js';

/** The build's root (this file runs as <build>/bench/image/run.js). */
const BUILD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = path.join(BUILD, 'src', 'cli', 'main.js');
/** The repository (results, default anchors); STRATUS_REPO for a build kept elsewhere. */
const ROOT = path.resolve(process.env.STRATUS_REPO || path.join(BUILD, '..'));
const RESULTS_DIR = path.join(ROOT, 'bench', 'image', 'results');
const MiB = 2 ** 20;

const say = (line: string): void => {
  process.stderr.write(`[bench] ${line}\n`);
};

function emptySide(note: string): ServerSide {
  return { available: false, note, version: null, warmup: null, runs: [], rss_idle_mib: null, vmhwm_end_mib: null, procs: null };
}

function gitInfo(): string {
  const commit = commandLine('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) ?? 'unknown';
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout?.trim();
  return dirty ? `${commit}+changes` : commit;
}

function loadAvg(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
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

/** Primes a server: a token, four image lists (every worker's token cache), one small image cycle. */
async function warmUp(server: ImageServer, warm: Expected | null, s: Settings, workDir: string): Promise<ImageRun | null> {
  const token = await server.token();
  for (let i = 0; i < 4; i++) {
    const r = await httpRequest(`${server.imageUrl}/v2/images`, { headers: { 'X-Auth-Token': token }, timeoutMs: 30000 });
    if (r.status !== 200) throw new UnexpectedAnswer(`${server.name}: GET /v2/images answered HTTP ${r.status}: ${r.body.slice(0, 300)}`);
  }
  if (!warm) return null;
  return imageRun(server, token, warm, { name: 'image-bench-warmup', timeoutS: s.transferTimeoutS, sampleMs: s.sampleMs, responseFile: path.join(workDir, `response-${server.name}`) });
}

function describeRun(name: string, r: ImageRun): string {
  const cpu = (c: { user_s: number; sys_s: number }): string => (c.user_s + c.sys_s).toFixed(2);
  return (
    `${name}: upload ${r.upload.seconds.toFixed(2)} s = ${r.upload_mib_s.toFixed(0)} MiB/s (server CPU ${cpu(r.upload.server_cpu)} s, peak RSS ${r.upload.memory.rss_peak_mib.toFixed(0)} MiB), ` +
    `download ${r.download.seconds.toFixed(2)} s = ${r.download_mib_s.toFixed(0)} MiB/s (server CPU ${cpu(r.download.server_cpu)} s, peak RSS ${r.download.memory.rss_peak_mib.toFixed(0)} MiB)`
  );
}

async function main(): Promise<number> {
  let s: Settings;
  try {
    s = readSettings(ROOT);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
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
  fs.mkdirSync(s.workParent, { recursive: true });
  const workDir = fs.mkdtempSync(path.join(s.workParent, 'stratus-image-bench-'));
  const bytes = s.imgMib * MiB;
  const imageFile = path.join(workDir, `image-${s.imgMib}MiB.bin`);
  const warmFile = path.join(workDir, `warmup-${s.warmupMib}MiB.bin`);
  const copyFile = path.join(workDir, 'copy.bin');
  const stratusData = path.join(workDir, 'stratus-data');
  const profileDir = path.join(workDir, 'cpuprofile');
  const glanceOptions = {
    anchors: s.anchors,
    state: s.anchorState,
    ksPort: s.ksPort,
    ksMemcachePort: s.ksMemcachePort,
    ksCache: s.ksCache,
    ksPassword: s.ksPassword,
    glPort: s.glPort,
    timeoutS: 300,
    logDir: workDir,
  };

  const st = emptySide('');
  const gl = emptySide(s.glance ? '' : 'skipped (GLANCE=0)');
  const refs: RefRecord[] = [];
  let stratus: StratusServer | null = null;
  let glance: GlanceServer | null = null;
  let error: unknown = null;
  let profile: ProfileEntry[] = [];
  let file: { bytes: number; md5: string; create_s: number; fs: string; cached_bytes_start: number | null } | null = null;

  let cleaning: Promise<void> | null = null;
  let cleaned = false;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      for (const child of liveChildren) if (child.spawnfile === 'bash' || child.spawnfile === 'curl') child.kill('SIGTERM');
      await stratus?.stop().catch((err: unknown) => say(`warning: stopping Stratus: ${String(err)}`));
      await glance?.stop().catch((err: unknown) => say(`warning: stopping Glance: ${String(err)}`));
      cleaned = true;
    })();
    return cleaning;
  };
  // Last resort when the process ends without the cleanup (an uncaught error): synchronous stops.
  process.once('exit', () => {
    if (cleaned) return;
    for (const child of liveChildren) child.kill('SIGKILL');
    if (glance) {
      const env = { ...process.env, OS_ANCHOR_STATE: s.anchorState, KS_PORT: String(s.ksPort), GL_PORT: String(s.glPort) };
      for (const name of ['stop-glance.sh', 'stop-keystone.sh']) spawnSync('bash', [path.join(s.anchors, name)], { env, stdio: 'ignore', timeout: 30000 });
    }
  });
  const onSignal = (signal: string, code: number): void => {
    say(`${signal}: stopping everything this benchmark started...`);
    void cleanup().then(() => process.exit(code));
  };
  process.once('SIGINT', () => onSignal('SIGINT', 130));
  process.once('SIGTERM', () => onSignal('SIGTERM', 143));
  const watchdog = setTimeout(() => onSignal(`no end after TOTAL_TIMEOUT_S=${s.totalTimeoutS} s`, 124), s.totalTimeoutS * 1000);
  watchdog.unref();

  try {
    say(`creating ${s.imgMib} MiB of random bytes in ${imageFile}`);
    const t0 = performance.now();
    await sh('head -c "$1" /dev/urandom > "$2"', 600, [String(bytes), imageFile]);
    const create_s = (performance.now() - t0) / 1000;
    const md5 = (await sh('md5sum "$1"', 300, [imageFile])).split(/\s+/)[0] ?? '';
    file = { bytes, md5, create_s, fs: fileSystem(workDir), cached_bytes_start: cachedBytes(imageFile) };
    let warm: Expected | null = null;
    if (s.warmupMib > 0) {
      await sh('head -c "$1" "$2" > "$3"', 120, [String(s.warmupMib * MiB), imageFile, warmFile]);
      warm = { file: warmFile, bytes: s.warmupMib * MiB, md5: (await sh('md5sum "$1"', 120, [warmFile])).split(/\s+/)[0] ?? '' };
    }
    const expected: Expected = { file: imageFile, bytes, md5 };

    say(`starting Stratus (identity :${s.stratusPort}, image :${s.stratusImagePort}, data ${stratusData})`);
    const stEnv: NodeJS.ProcessEnv = {
      ...process.env,
      STRATUS_IDENTITY__PORT: String(s.stratusPort),
      STRATUS_IMAGE__PORT: String(s.stratusImagePort),
      STRATUS_ADMIN_PASSWORD: s.stratusPassword,
      STRATUS_METRICS__ENABLED: 'false',
    };
    const nodeArgs = s.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    stratus = await StratusServer.start({ main: MAIN, nodeArgs, env: stEnv, identityPort: s.stratusPort, imagePort: s.stratusImagePort, password: s.stratusPassword, dataDir: stratusData, timeoutS: 120 });
    st.available = true;
    st.version = gitInfo();

    if (s.glance) {
      const missing = glanceMissing(glanceOptions);
      if (missing) {
        gl.note = missing;
        say(`Glance is not measured: ${missing}`);
      } else {
        say(`starting Keystone (:${s.ksPort}) and Glance (:${s.glPort}) with OS_ANCHOR_STATE=${s.anchorState} (the first start initialises them, ~1 min)`);
        try {
          glance = await GlanceServer.start(glanceOptions);
          gl.available = true;
          gl.version = commandLine('dpkg-query', ['-W', '-f=${Version}', 'glance-api']);
        } catch (err) {
          gl.note = `did not start: ${err instanceof Error ? err.message : String(err)}`;
          say(`Glance is not measured: ${gl.note}`);
        }
      }
    }
    const servers: [ImageServer, ServerSide][] = [[stratus, st], ...(glance ? [[glance, gl] as [ImageServer, ServerSide]] : [])];
    for (const dir of [stratus.storedPath(''), ...(glance ? [glance.storedPath('')] : [])]) {
      if (fs.existsSync(dir) && fs.statSync(dir).dev !== fs.statSync(workDir).dev) say(`warning: ${dir} is not on the file system of ${workDir}`);
    }

    for (const [server, side] of servers) {
      say(`${server.name}: warm-up (token, image lists${warm ? `, one ${s.warmupMib} MiB image` : ''})`);
      try {
        side.warmup = await warmUp(server, warm, s, workDir);
      } catch (err) {
        if (server.name === 'stratus') throw err;
        side.available = false;
        side.note = `warm-up failed: ${err instanceof Error ? err.message : String(err)}`;
        say(`Glance is not measured: ${side.note}`);
      }
      const pids = server.pids();
      side.rss_idle_mib = rssMib(pids);
      side.procs = pids.length;
    }

    for (let run = 1; run <= s.runs; run++) {
      const before = await prepare(run, workDir);
      const ref = await referenceRun(imageFile, copyFile, s.transferTimeoutS);
      refs.push({ ...ref, ...before });
      say(
        `run ${run}/${s.runs} references: cp ${ref.cp_s.toFixed(2)} s, cp + fsync ${ref.cp_fsync_s.toFixed(2)} s (${(s.imgMib / ref.cp_fsync_s).toFixed(0)} MiB/s), ` +
          `dd conv=fsync ${ref.dd_fsync_s.toFixed(2)} s, cat ${ref.cat_s.toFixed(2)} s; host busy before ${before.bg_cpu_busy_pct.toFixed(0)} %`,
      );
      for (const [server, side] of servers) {
        if (!side.available) continue;
        const b = await prepare(run, workDir);
        try {
          const token = await within(server.token(), 60000, `${server.name} token`);
          const r = await imageRun(server, token, expected, { name: `image-bench-${run}`, timeoutS: s.transferTimeoutS, sampleMs: s.sampleMs, responseFile: path.join(workDir, `response-${server.name}`) });
          side.runs.push({ ...r, ...b });
          say(`run ${run}/${s.runs} ${describeRun(server.name, r)}; host busy before ${b.bg_cpu_busy_pct.toFixed(0)} %`);
        } catch (err) {
          if (server.name === 'stratus') throw err;
          side.available = false;
          side.note = `failed in run ${run}: ${err instanceof Error ? err.message : String(err)}`;
          say(`Glance: ${side.note}; continuing without it`);
        }
      }
    }
    for (const [server, side] of servers) side.vmhwm_end_mib = hwmMib(server.pids());
  } catch (err) {
    error = err;
    process.stderr.write(`bench: failed: ${err instanceof Error ? err.message : String(err)}\n`);
    if (err instanceof UnexpectedAnswer) process.stderr.write('bench: the server answered something unexpected (above); its log is kept in the work directory.\n');
  } finally {
    say('stopping Stratus, Glance and Keystone');
    await cleanup();
    clearTimeout(watchdog);
  }
  if (s.profile) profile = summarizeProfiles(profileDir);

  const loadEnd = loadAvg();
  const rows = buildRows(s.imgMib, refs, st, gl);
  const ratios = buildRatios(rows);
  const cpus = os.cpus();
  const bg = [...refs, ...st.runs, ...gl.runs].map((r) => r.bg_cpu_busy_pct);
  const bgSummary = summarize(bg);
  const versions = {
    stratus: gitInfo(),
    node: process.version,
    glance_api: gl.version ?? commandLine('dpkg-query', ['-W', '-f=${Version}', 'glance-api']),
    keystone: commandLine('dpkg-query', ['-W', '-f=${Version}', 'keystone']),
    curl: commandLine('curl', ['--version']),
    coreutils: commandLine('cp', ['--version']),
    qemu_img: commandLine('qemu-img', ['--version']),
    kernel: os.release(),
  };

  const out: string[] = [];
  out.push('');
  out.push(
    `Image upload/download, ${s.imgMib} MiB of random bytes, ${s.runs} run(s), median [min .. max]; file system ${file?.fs ?? '?'} for the test file, the copies, Stratus' store and Glance's store.`,
  );
  out.push(`Stratus ${versions.stratus}: stratus up (one node ${process.version} process), file store, fsync before the answer, MD5 + SHA-512, qemu-img check.`);
  out.push(
    gl.available || gl.runs.length
      ? `Glance ${gl.version ?? '?'}: glance-api (eventlet, parent + ${(gl.procs ?? 1) - 1} workers), filesystem store (no fsync), MD5 + SHA-512, Keystone ${versions.keystone ?? '?'} (cache ${s.ksCache === '1' ? 'memcached' : 'off'}).${gl.note ? ` ${gl.note}` : ''}`
      : `Glance: not measured: ${gl.note}`,
  );
  out.push('Clients: curl -T FILE (upload, Content-Type application/octet-stream, no Expect), curl -o /dev/null (download, size checked); uploads checked for status active, size and MD5.');
  out.push('');
  out.push(renderRows(rows));
  out.push('');
  out.push(renderRatios(ratios));
  const goal = ratios[0]?.upload ?? null;
  out.push('');
  out.push(`Goal: Stratus upload >= 80 % of cp + fsync: ${goal === null ? 'not measured' : `${(goal * 100).toFixed(0)} % (${goal >= 0.8 ? 'met' : 'not met'})`}.`);
  for (const [name, side] of [
    ['Stratus', st],
    ['Glance', gl],
  ] as const) {
    const line = renderBreakdown(name, side);
    if (line) out.push(line);
    if (side.rss_idle_mib !== null) out.push(`${name} memory: RSS idle ${side.rss_idle_mib.toFixed(0)} MiB (${side.procs ?? '?'} processes); peak RSS (VmHWM, summed) over its whole life ${side.vmhwm_end_mib?.toFixed(0) ?? '-'} MiB.`);
  }
  if (profile.length) {
    out.push('');
    out.push('Stratus CPU profile (node --cpu-prof, whole process life, self time, idle left out):');
    for (const p of profile) out.push(`  ${p.pct.toFixed(1).padStart(5)} %  ${String(p.self_ms).padStart(6)} ms  ${p.function} ${p.where}`);
  }
  const cached = st.runs.map((r) => (r.stored_cached_bytes ?? Number.NaN) / (file?.bytes ?? 1));
  out.push('');
  out.push(
    `Page cache: the test file was read once before the runs and is in the page cache (${file?.cached_bytes_start !== null && file ? ((100 * (file.cached_bytes_start ?? 0)) / file.bytes).toFixed(0) : '?'} % cached after writing it); ` +
      `nothing is dropped (that is host-wide). Uploads read the file from memory; downloads read the image file the server has just written (Stratus: ${fmtSummary(summarize(cached.map((x) => x * 100)))} % cached before the download), so the download figures measure the servers and loopback, not the disk.`,
  );
  out.push(
    `Host: ${cpus.length} CPU(s) ${cpus[0]?.model ?? ''}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; load average ${loadStart.join('/')} at start, ${loadEnd.join('/')} at end; ` +
      `whole-host CPU busy in the 2 s before each step: ${fmtSummary(bgSummary)} % (other users included).`,
  );

  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = started.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const jsonPath = path.join(RESULTS_DIR, `${stamp}.json`);
  const json = {
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    error: error ? (error instanceof Error ? error.message : String(error)) : null,
    settings: s,
    host: { cpus: cpus.length, cpu_model: cpus[0]?.model ?? null, mem_total_mib: Math.round(os.totalmem() / MiB), loadavg_start: loadStart, loadavg_end: loadEnd, bg_cpu_busy_pct: bg },
    versions,
    file,
    reference: refs,
    stratus: st,
    glance: gl,
    stratus_cpu_profile: profile,
    table: rows,
    ratios,
  };
  fs.writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`);
  out.push(`Raw numbers: ${path.relative(process.cwd(), jsonPath) || jsonPath}`);
  process.stdout.write(`${out.join('\n')}\n`);

  // The 1 GiB files always go; the Stratus data (its log) stays after a failure.
  for (const f of [imageFile, warmFile, copyFile]) fs.rmSync(f, { force: true });
  glance?.cleanState(!s.keepData);
  if (s.keepData || error) say(`kept ${workDir} (Stratus data and log, anchor script output)`);
  else fs.rmSync(workDir, { recursive: true, force: true });
  return error ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
