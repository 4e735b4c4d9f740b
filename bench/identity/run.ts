/**
 * Identity benchmark: Stratus side by side with Debian's Keystone, in the same
 * run, on loopback. Not part of the test suite. See bench/identity/README.md.
 *
 *   bench/identity/run.sh            (builds, then runs this file)
 *   node dist/bench/identity/run.js  (after ./stratus --help has built it)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/core/config.js';
import { assertPortsFree, httpRequest, issueToken } from '../lib/http.js';
import { busyPercent, commandLine, debVersion, haveCommand, hostBusy, hostCpu, liveChildren, treeCpuSeconds, treeMemory, type TreeMemory } from '../lib/proc.js';
import { gitInfo, hostInfo, loadAvg, message, runMain, say, writeResults } from '../lib/run.js';
import { anchorsDir, intEnv, UsageError } from '../lib/settings.js';
import { summarize } from '../lib/stats.js';
import { stratusEnv } from '../lib/stratus.js';
import { markdownTable } from '../lib/table.js';
import { argon2VerifyMs, bcryptVerifyMs, keystoneStoredHash, stratusStoredHash, type StoredHash } from './lib/hashes.js';
import { coldStart, KeystoneTarget, settle, StratusTarget, type ColdStart, type Target } from './lib/targets.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

/** The repository root (this file runs as dist/bench/identity/run.js). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MAIN = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const LUA_DIR = path.join(ROOT, 'bench', 'identity', 'wrk');
const RESULTS_DIR = path.join(ROOT, 'bench', 'identity', 'results');
const INSTALL_HINT = 'apt-get install -y keystone python3-openstackclient memcached wrk';
/** Single password verifications timed per side. */
const PASSWORD_CHECKS = 5;

/** Benchmark settings, from the environment. */
interface Settings {
  durationS: number;
  repeats: number;
  coldRuns: number;
  freshRuns: number;
  concurrency: number[];
  anchors: string;
  anchorState: string;
  ksPort: number;
  ksMemcachePort: number;
  ksCache: string;
  ksProcesses: string;
  ksThreads: string;
  ksPassword: string;
  stratusPort: number;
  stratusPassword: string;
  keepData: boolean;
}

function readSettings(): Settings {
  const coldRuns = intEnv('COLD_RUNS', 3);
  const concurrency = (process.env.CONCURRENCY ?? '1 16').split(/[\s,]+/).filter(Boolean).map(Number);
  if (concurrency.length === 0 || concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new UsageError(`CONCURRENCY=${process.env.CONCURRENCY ?? ''}: a list of whole numbers >= 1 is needed`);
  return {
    durationS: intEnv('DURATION', 10),
    repeats: intEnv('REPEATS', 3),
    coldRuns,
    freshRuns: intEnv('FRESH_RUNS', coldRuns, 0),
    concurrency,
    anchors: anchorsDir(ROOT),
    anchorState: process.env.OS_ANCHOR_STATE || '/tmp/os-anchors-ksbench',
    ksPort: intEnv('KS_PORT', 5001),
    ksMemcachePort: intEnv('KS_MEMCACHE_PORT', 11213),
    ksCache: process.env.KS_CACHE ?? '1',
    ksProcesses: process.env.KS_PROCESSES ?? '8',
    ksThreads: process.env.KS_THREADS ?? '1',
    ksPassword: process.env.KS_ADMIN_PASSWORD || 'secret',
    stratusPort: intEnv('STRATUS_PORT', 5011),
    stratusPassword: process.env.BENCH_STRATUS_PASSWORD || 'secret',
    keepData: process.env.KEEP_DATA === '1',
  };
}

/** One cold start with the host's background load just before it. */
interface ColdRun extends ColdStart {
  bg_cpu_busy_pct: number;
}

/** One wrk run against one side. */
interface LoadRun {
  op: 'issue' | 'validate';
  concurrency: number;
  repeat: number;
  /** Whole-host CPU busy % in the 2 s before the run (other users of the host). */
  bg_cpu_busy_pct: number;
  /** Whole-host CPU busy % during the run (server + wrk + others). */
  host_cpu_busy_during_pct: number;
  /** Seconds waited for the server to go quiet before the run. */
  settle_s: number;
  /** CPU seconds used by the server's process tree during the run. */
  server_cpu_s: number;
  /** CPU seconds used by helpers (Keystone's memcached) during the run. */
  helper_cpu_s: number;
  /** (server + helper CPU) / completed requests, in ms. */
  cpu_ms_per_request: number;
  wrk: WrkResult;
}

/** Everything measured for one side. */
interface Side {
  available: boolean;
  note: string;
  cold: ColdRun[];
  memory: { idle: TreeMemory | null; after_load: TreeMemory | null; helper_idle: TreeMemory | null; helper_after_load: TreeMemory | null };
  load: LoadRun[];
  password_check_ms: number[];
  stored_hash: StoredHash | null;
}

function emptySide(available: boolean, note: string): Side {
  return { available, note, cold: [], memory: { idle: null, after_load: null, helper_idle: null, helper_after_load: null }, load: [], password_check_ms: [], stored_hash: null };
}

type Kind = 'rate' | 'ms' | 'mib' | 's';

/** One row of the printed table. */
interface Row {
  metric: string;
  kind: Kind;
  /** 'higher': ratio = Stratus/Keystone; 'lower': ratio = Keystone/Stratus. */
  better: 'higher' | 'lower';
  keystone: number | null;
  stratus: number | null;
  ratio: number | null;
  /** Min and max over the repeats, for the JSON. */
  keystone_range: [number, number] | null;
  stratus_range: [number, number] | null;
}

function fmt(v: number | null, kind: Kind): string {
  if (v === null || !Number.isFinite(v)) return '-';
  if (kind === 'mib') return v.toFixed(0);
  if (kind === 's') return v.toFixed(2);
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function fmtRatio(r: number | null): string {
  if (r === null || !Number.isFinite(r)) return '-';
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

function row(metric: string, kind: Kind, better: 'higher' | 'lower', k: number[], s: number[]): Row {
  const ks = summarize(k);
  const st = summarize(s);
  const keystone = ks?.median ?? null;
  const stratus = st?.median ?? null;
  let ratio: number | null = null;
  if (keystone !== null && stratus !== null && keystone > 0 && stratus > 0) ratio = better === 'higher' ? stratus / keystone : keystone / stratus;
  return { metric, kind, better, keystone, stratus, ratio, keystone_range: ks && [ks.min, ks.max], stratus_range: st && [st.min, st.max] };
}

function buildRows(settings: Settings, ks: Side, st: Side): Row[] {
  const rows: Row[] = [];
  const runs = (side: Side, op: string, c: number): LoadRun[] => side.load.filter((r) => r.op === op && r.concurrency === c);
  const pick = (side: Side, op: string, c: number, f: (r: LoadRun) => number): number[] => runs(side, op, c).map(f);
  // A run that completed no request has no latency (wrk reports 0): left out.
  const pickDone = (side: Side, op: string, c: number, f: (r: LoadRun) => number): number[] => runs(side, op, c).filter((r) => r.wrk.requests > 0).map(f);
  for (const op of ['issue', 'validate'] as const) {
    const label = op === 'issue' ? 'token issue' : 'token validate';
    for (const c of settings.concurrency) {
      rows.push(row(`${label} c=${c}: rate (req/s)`, 'rate', 'higher', pick(ks, op, c, (r) => r.wrk.rps), pick(st, op, c, (r) => r.wrk.rps)));
      rows.push(row(`${label} c=${c}: p50 latency (ms)`, 'ms', 'lower', pickDone(ks, op, c, (r) => r.wrk.p50_ms), pickDone(st, op, c, (r) => r.wrk.p50_ms)));
      rows.push(row(`${label} c=${c}: p99 latency (ms)`, 'ms', 'lower', pickDone(ks, op, c, (r) => r.wrk.p99_ms), pickDone(st, op, c, (r) => r.wrk.p99_ms)));
      rows.push(row(`${label} c=${c}: server CPU per request (ms)`, 'ms', 'lower', pick(ks, op, c, (r) => r.cpu_ms_per_request), pick(st, op, c, (r) => r.cpu_ms_per_request)));
    }
  }
  const mem = (m: TreeMemory | null, f: (m: TreeMemory) => number): number[] => (m ? [f(m)] : []);
  rows.push(row('RSS idle after start (MiB)', 'mib', 'lower', mem(ks.memory.idle, (m) => m.rss_mib), mem(st.memory.idle, (m) => m.rss_mib)));
  rows.push(row('RSS after load (MiB)', 'mib', 'lower', mem(ks.memory.after_load, (m) => m.rss_mib), mem(st.memory.after_load, (m) => m.rss_mib)));
  rows.push(row('PSS idle after start (MiB)', 'mib', 'lower', mem(ks.memory.idle, (m) => m.pss_mib), mem(st.memory.idle, (m) => m.pss_mib)));
  rows.push(row('PSS after load (MiB)', 'mib', 'lower', mem(ks.memory.after_load, (m) => m.pss_mib), mem(st.memory.after_load, (m) => m.pss_mib)));
  rows.push(row('memcached RSS idle (MiB, Keystone only)', 'mib', 'lower', mem(ks.memory.helper_idle, (m) => m.rss_mib), []));
  rows.push(row('memcached RSS after load (MiB, Keystone only)', 'mib', 'lower', mem(ks.memory.helper_after_load, (m) => m.rss_mib), []));
  const cold = (side: Side, fresh: boolean): number[] => side.cold.filter((r) => r.fresh === fresh).map((r) => r.seconds);
  rows.push(row('cold start, existing state -> first token (s)', 's', 'lower', cold(ks, false), cold(st, false)));
  rows.push(row('cold start, fresh state -> first token (s)', 's', 'lower', cold(ks, true), cold(st, true)));
  rows.push(row('one password check, single verify (ms)', 'ms', 'lower', ks.password_check_ms, st.password_check_ms));
  return rows;
}

function renderTable(rows: Row[]): string {
  return markdownTable(['metric', 'Keystone', 'Stratus', 'ratio'], rows.map((r) => [r.metric, fmt(r.keystone, r.kind), fmt(r.stratus, r.kind), fmtRatio(r.ratio)]));
}

function describeHash(h: StoredHash | null): string {
  if (!h) return 'not read';
  return `${h.algorithm} ${Object.entries(h.params).map(([k, v]) => `${k}=${v}`).join(', ')} (stored hash starts ${h.prefix})`;
}

/** The interpreter of keystone-manage's #! line (Debian: /usr/bin/python3), which has passlib. */
function keystonePython(): string {
  try {
    const manage = commandLine('bash', ['-c', 'command -v keystone-manage']) ?? '/usr/bin/keystone-manage';
    const first = fs.readFileSync(manage, 'utf8').split('\n')[0] ?? '';
    const interpreter = first.replace(/^#!\s*/, '').trim().split(/\s+/)[0];
    if (first.startsWith('#!') && interpreter) return interpreter;
  } catch {
    // fall through
  }
  return '/usr/bin/python3';
}

async function main(): Promise<number> {
  const settings = readSettings();
  if (!haveCommand('wrk')) {
    process.stderr.write(`bench: wrk is needed for both sides and is not installed: ${INSTALL_HINT}\n`);
    return 2;
  }
  const startScript = path.join(settings.anchors, 'start-keystone.sh');
  const stopScript = path.join(settings.anchors, 'stop-keystone.sh');
  if (!fs.existsSync(startScript) || !fs.existsSync(stopScript)) {
    process.stderr.write(
      `bench: the OpenStack anchor scripts are not at ${settings.anchors} (start-keystone.sh / stop-keystone.sh missing).\n` +
        `Set STRATUS_ANCHORS to the directory holding them (default: ../shared/anchors/openstack next to the repository root).\n`,
    );
    return 2;
  }
  if (!fs.existsSync(MAIN)) {
    process.stderr.write(`bench: ${MAIN} is missing; build first (./stratus --help) or use bench/identity/run.sh\n`);
    return 2;
  }

  const needed = ['keystone-manage', 'uwsgi_python3', 'sqlite3', ...(settings.ksCache === '1' ? ['memcached'] : [])];
  const missing = needed.filter((c) => !haveCommand(c));
  const ksAvailable = missing.length === 0;
  if (!ksAvailable) {
    process.stderr.write(
      `bench: Keystone cannot run here (missing: ${missing.join(', ')}). Install it with:\n  ${INSTALL_HINT}\n` +
        `(uwsgi_python3 is in uwsgi-plugin-python3, sqlite3 in sqlite3). Measuring Stratus alone.\n`,
    );
  }

  const started = new Date();
  const loadStart = loadAvg();
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-identity-bench-'));
  const ksEnv: NodeJS.ProcessEnv = {
    ...process.env,
    OS_ANCHOR_STATE: settings.anchorState,
    KS_PORT: String(settings.ksPort),
    KS_CACHE: settings.ksCache,
    KS_MEMCACHE_PORT: String(settings.ksMemcachePort),
    KS_PROCESSES: settings.ksProcesses,
    KS_THREADS: settings.ksThreads,
    KS_ADMIN_PASSWORD: settings.ksPassword,
  };
  const stEnv = stratusEnv({ identityPort: settings.stratusPort, password: settings.stratusPassword });
  const keystone = ksAvailable ? new KeystoneTarget(settings.anchors, ksEnv, settings.ksPort, settings.ksPassword, path.join(settings.anchorState, 'keystone'), runDir) : null;
  const stratus = new StratusTarget(MAIN, stEnv, settings.stratusPort, settings.stratusPassword);
  const ks = emptySide(ksAvailable, ksAvailable ? '' : `not installed (missing ${missing.join(', ')}): ${INSTALL_HINT}`);
  const st = emptySide(true, '');
  const bgSamples: number[] = [];
  const stratusConfig = loadConfig({ env: stEnv });
  const hashParams = stratusConfig.identity.password_hash;

  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      for (const child of liveChildren) if (child.spawnfile === 'wrk') child.kill('SIGTERM');
      await stratus.stop().catch((err: unknown) => say(`warning: stopping Stratus: ${String(err)}`));
      if (keystone) await keystone.stop().catch((err: unknown) => say(`warning: stopping Keystone: ${String(err)}`));
    })();
    return cleaning;
  };
  const onSignal = (signal: string): void => {
    say(`${signal}: stopping everything this benchmark started...`);
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));

  const targets: Target[] = keystone ? [keystone, stratus] : [stratus];
  const sideOf = (t: Target): Side => (t.name === 'keystone' ? ks : st);
  const stratusDir = (name: string): string => path.join(runDir, 'stratus', name);
  let error: unknown = null;

  try {
    // Leftovers of an earlier run of this benchmark (same anchor state) go first.
    if (keystone) await keystone.stop();
    await assertPortsFree([[settings.stratusPort, 'STRATUS_PORT'], ...(keystone ? [[settings.ksPort, 'KS_PORT'] as [number, string]] : [])]);

    say(`password check cost: ${PASSWORD_CHECKS} single verifications per side`);
    if (keystone) {
      ks.password_check_ms = await bcryptVerifyMs(keystonePython(), 12, PASSWORD_CHECKS);
    }
    st.password_check_ms = await argon2VerifyMs(hashParams, PASSWORD_CHECKS);

    const cold = async (target: Target, fresh: boolean, i: number): Promise<void> => {
      await target.stop();
      const bg = await hostBusy(2000);
      bgSamples.push(bg);
      const result =
        target instanceof KeystoneTarget
          ? await coldStart(target, fresh, () => target.launch(fresh))
          : await coldStart(target, fresh, () => stratus.launch(stratusDir(fresh ? `fresh-${i}` : 'fresh-1')));
      sideOf(target).cold.push({ ...result, bg_cpu_busy_pct: bg });
      say(`${target.name} cold start ${fresh ? 'fresh' : 'existing'} #${i}: ${result.seconds.toFixed(2)} s to the first token (launcher ready ${result.ready_seconds.toFixed(2)} s; host busy before ${bg.toFixed(0)} %)`);
    };
    for (let i = 1; i <= Math.max(settings.freshRuns, 1); i++) {
      // At least one fresh start initialises the state the other runs reuse.
      for (const t of targets) await cold(t, true, i);
    }
    if (settings.freshRuns === 0) for (const side of [ks, st]) side.cold = [];
    for (let i = 1; i <= settings.coldRuns; i++) for (const t of targets) await cold(t, false, i);

    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const t of targets) {
      sideOf(t).memory.idle = treeMemory(t.serverPids());
      if (t.helperPids().length) sideOf(t).memory.helper_idle = treeMemory(t.helperPids());
    }
    if (keystone) ks.stored_hash = await keystoneStoredHash(path.join(keystone.stateDir, 'keystone.db')).catch(() => null);
    st.stored_hash = await stratusStoredHash(path.join(stratusDir('fresh-1'), 'identity.sqlite')).catch(() => null);

    const tokens = new Map<Target, string>();
    for (const t of targets) {
      const attempt = await issueToken(t.url, t.password);
      if (!attempt.token) throw new Error(`${t.name}: cannot issue a token: ${attempt.error ?? ''}`);
      const check = await httpRequest(`${t.url}/v3/auth/tokens`, { headers: { 'X-Auth-Token': attempt.token, 'X-Subject-Token': attempt.token } });
      if (check.status !== 200) throw new Error(`${t.name}: token validation answered HTTP ${check.status}: ${check.body.slice(0, 300)}`);
      tokens.set(t, attempt.token);
    }

    for (const op of ['issue', 'validate'] as const) {
      for (const c of settings.concurrency) {
        for (let r = 1; r <= settings.repeats; r++) {
          for (const t of targets) {
            const settle_s = await settle(t);
            const bg = await hostBusy(2000);
            bgSamples.push(bg);
            const server0 = treeCpuSeconds(t.serverPids());
            const helper0 = treeCpuSeconds(t.helperPids());
            const host0 = hostCpu();
            const { result } = await runWrk({
              url: t.url,
              script: path.join(LUA_DIR, op === 'issue' ? 'issue.lua' : 'validate.lua'),
              concurrency: c,
              durationS: settings.durationS,
              env: { BENCH_LUA_DIR: LUA_DIR, BENCH_PASSWORD: t.password, BENCH_TOKEN: tokens.get(t) ?? '' },
            });
            const during = busyPercent(host0, hostCpu());
            const server_cpu_s = treeCpuSeconds(t.serverPids()) - server0;
            const helper_cpu_s = treeCpuSeconds(t.helperPids()) - helper0;
            const cpu_ms_per_request = result.requests > 0 ? ((server_cpu_s + helper_cpu_s) * 1000) / result.requests : Number.NaN;
            sideOf(t).load.push({ op, concurrency: c, repeat: r, bg_cpu_busy_pct: bg, host_cpu_busy_during_pct: during, settle_s, server_cpu_s, helper_cpu_s, cpu_ms_per_request, wrk: result });
            say(
              `${t.name} ${op} c=${c} #${r}: ${result.rps.toFixed(2)} req/s, p50 ${result.p50_ms.toFixed(1)} ms, p99 ${result.p99_ms.toFixed(1)} ms, ` +
                `CPU ${cpu_ms_per_request.toFixed(1)} ms/req, non-2xx ${result.non2xx}, host busy before ${bg.toFixed(0)} % / during ${during.toFixed(0)} %`,
            );
          }
        }
      }
    }

    for (const t of targets) {
      await settle(t);
      sideOf(t).memory.after_load = treeMemory(t.serverPids());
      if (t.helperPids().length) sideOf(t).memory.helper_after_load = treeMemory(t.helperPids());
    }
  } catch (err) {
    error = err;
    process.stderr.write(`bench: failed: ${message(err)}\n`);
  } finally {
    say('stopping Keystone and Stratus');
    await cleanup();
  }

  const loadEnd = loadAvg();
  const rows = buildRows(settings, ks, st);
  const versions = {
    keystone: ksAvailable ? debVersion('keystone') : null,
    uwsgi: ksAvailable ? commandLine('uwsgi_python3', ['--version']) : null,
    memcached: ksAvailable ? commandLine('memcached', ['-V']) : null,
    wrk: commandLine('wrk', ['-v']),
    node: process.version,
    stratus: gitInfo(ROOT),
  };
  const cpus = os.cpus();
  const bg = summarize(bgSamples);
  const nonOk = (side: Side): number => side.load.reduce((a, r) => a + r.wrk.non2xx + r.wrk.timeouts, 0);
  const readErrors = (side: Side): number => side.load.reduce((a, r) => a + r.wrk.read_errors + r.wrk.connect_errors + r.wrk.write_errors, 0);

  const out: string[] = [];
  out.push('');
  out.push(`Stratus identity vs Keystone, same run, loopback. wrk -t1 --latency, ${settings.durationS} s per run, median of ${settings.repeats}; cold starts: median of ${settings.coldRuns} (existing state) / ${settings.freshRuns} (fresh).`);
  out.push(
    ksAvailable
      ? `Keystone ${versions.keystone ?? '?'} on 127.0.0.1:${settings.ksPort}: uwsgi ${settings.ksProcesses} processes x ${settings.ksThreads} thread(s), cache ${settings.ksCache === '1' ? `memcached :${settings.ksMemcachePort}` : 'off'}, fernet, SQLite (WAL), anchors ${settings.anchors}`
      : `Keystone: ${ks.note}`,
  );
  out.push(`Stratus ${versions.stratus} on 127.0.0.1:${settings.stratusPort}: one node ${process.version} process (stratus up, SQLite, fernet, metrics off, token cache ${stratusConfig.identity.cache_ttl} s)`);
  out.push('ratio: Stratus/Keystone for rates, Keystone/Stratus for times and memory, so > 1 means Stratus is better.');
  out.push('');
  out.push(renderTable(rows));
  out.push('');
  out.push(`Password hashing: Keystone ${describeHash(ks.stored_hash)}${ksAvailable ? '' : ' (Keystone default: bcrypt cost 12)'}`);
  out.push(`                  Stratus argon2id m=${hashParams.memory_kib} KiB, t=${hashParams.iterations}, p=${hashParams.parallelism} (config); ${describeHash(st.stored_hash)}`);
  out.push(
    `Processes summed: Keystone ${ks.memory.idle ? `${ks.memory.idle.procs} (uwsgi master + workers)` : '-'}${ks.memory.helper_idle ? ` + memcached ${ks.memory.helper_idle.procs} (reported separately)` : ''}; Stratus ${st.memory.idle ? st.memory.idle.procs : '-'} (node)`,
  );
  out.push(
    `Failures: non-2xx + timeouts Keystone ${ksAvailable ? nonOk(ks) : '-'}, Stratus ${nonOk(st)}. Socket errors (wrk) Keystone ${ksAvailable ? readErrors(ks) : '-'}, Stratus ${readErrors(st)}` +
      (ksAvailable ? ' (Keystone under uwsgi closes the connection after each response: wrk counts a read error and reconnects).' : '.'),
  );
  out.push(
    `Host: ${cpus.length} CPU(s) ${cpus[0]?.model ?? ''}; load average (1/5/15 min) ${loadStart.join('/')} at start, ${loadEnd.join('/')} at end; ` +
      `whole-host CPU busy in the 2 s before each run: median ${fmt(bg?.median ?? null, 'rate')} % [${bg ? `${bg.min.toFixed(0)} .. ${bg.max.toFixed(0)}` : '-'}] (other users of the host included).`,
  );

  const json = {
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    error: error ? message(error) : null,
    settings: { ...settings, tool: 'wrk -t1 --latency --timeout 30s' },
    host: { ...hostInfo(loadStart, loadEnd), bg_cpu_busy_pct: bgSamples },
    versions,
    password_hash: {
      keystone: { configured: 'bcrypt, cost 12 (Keystone default: [identity] password_hash_algorithm = bcrypt, password_hash_rounds unset)', stored: ks.stored_hash },
      stratus: { configured: { algorithm: 'argon2id', ...hashParams }, stored: st.stored_hash },
    },
    keystone: ks,
    stratus: st,
    table: rows,
  };
  const jsonPath = writeResults(RESULTS_DIR, started, json);
  out.push(`Raw numbers: ${path.relative(process.cwd(), jsonPath) || jsonPath}`);
  process.stdout.write(`${out.join('\n')}\n`);

  if (!settings.keepData && !error) fs.rmSync(runDir, { recursive: true, force: true });
  else say(`kept ${runDir} (Stratus data dirs, start-keystone.sh logs)`);
  return error ? 1 : 0;
}

runMain(main);
