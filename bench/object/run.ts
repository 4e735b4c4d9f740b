/**
 * Object storage benchmark: Stratus (`stratus up`, identity + object) and
 * Debian's Swift 2.30 (the anchor scripts, policy `triple`), one after the
 * other in the same run, next to the disk's own limits:
 *   1. 4 KiB PUT (new names) and GET (a seeded set) per second at
 *      concurrency 1 and 16, with p50/p99;
 *   2. one 256 MiB object PUT and GET with curl, MiB/s;
 *   3. the disk: 4 KiB files with fsync, dd conv=fsync and dd reads;
 *   4. resident memory of each target (idle, after load).
 * Not part of the test suite. See bench/object/README.md.
 *
 *   bash bench/object/run.sh                  (builds Stratus, then runs this file)
 *   node_modules/.bin/tsx bench/object/run.ts (from the source, dist/ as it is)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandLine, debVersion, liveChildren, runCommand } from '../lib/proc.js';
import { summarizeProfileFiles, summarizeProfileInclusive, summarizeProfiles, type ProfileWindow } from '../lib/profile.js';
import { gitInfo, hostInfo, loadAvg, message, measureGuarded, runMain, say, writeResults } from '../lib/run.js';
import { buildRows, goals, renderReport } from './lib/report.js';
import { emptyResult, measureDisk, TargetRun, type BigFile, type DiskResult, type TargetResult } from './lib/scenario.js';
import { applyFlags } from '../lib/settings.js';
import { readSettings, type Settings, type TargetName } from './lib/settings.js';
import { StratusObjectTarget, SwiftTarget, type ObjectTarget } from './lib/targets.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository: this file runs as <repo>/bench/object/run.ts or <repo>/dist/bench/object/run.js. */
const ROOT = path.resolve(process.env.STRATUS_REPO || (path.basename(path.resolve(HERE, '..', '..')) === 'dist' ? path.resolve(HERE, '..', '..', '..') : path.resolve(HERE, '..', '..')));
const RESULTS_DIR = path.join(ROOT, 'bench', 'object', 'results');

/** The run: its files, and the target being measured now, so that a signal can stop it. */
class ObjectBench {
  readonly workDir: string;
  readonly profileDir: string;
  big: BigFile | null = null;
  disk: DiskResult = { small: [], large: [], note: '' };
  readonly results = new Map<TargetName, TargetResult>();
  profile: string[] = [];
  /** Set by a signal or the total time limit: no new step or target starts. */
  aborting: string | null = null;
  private current: ObjectTarget | null = null;

  constructor(readonly s: Settings) {
    fs.mkdirSync(s.workParent, { recursive: true });
    this.workDir = fs.mkdtempSync(path.join(s.workParent, 'stratus-object-bench-'));
    this.profileDir = path.join(this.workDir, 'cpuprofile');
  }

  /** The large test object: BIG_MIB of /dev/urandom, and its MD5. */
  async createBig(): Promise<void> {
    const file = path.join(this.workDir, `big-${this.s.bigMib}MiB`);
    say(`writing ${this.s.bigMib} MiB of random bytes to ${file}`);
    const r = await runCommand('bash', ['-c', 'head -c "$1" /dev/urandom > "$2" && md5sum "$2"', 'bash', String(this.s.bigMib * 2 ** 20), file], { timeoutMs: 600_000 });
    const md5 = r.stdout.split(/\s+/)[0];
    if (r.code !== 0 || !md5) throw new Error(`could not write the test file: ${r.stderr.trim()}`);
    this.big = { path: file, md5 };
  }

  /**
   * The disk's limits, in a directory of the work directory (same file system
   * as the targets' data), measured again before each target (a shared host's
   * disk changes speed): the runs are tagged with the target that followed.
   */
  async measureDisk(before: string): Promise<void> {
    const dir = path.join(this.workDir, 'disk');
    fs.mkdirSync(dir);
    try {
      const r = await measureDisk(this.s, dir, this.s.parts.includes('large') ? (this.big?.path ?? null) : null, (line) => say(`${line} (before ${before})`), () => this.aborting !== null);
      this.disk.small.push(...r.small.map((x) => ({ ...x, before })));
      this.disk.large.push(...r.large.map((x) => ({ ...x, before })));
    } catch (err) {
      this.disk.note = `${this.disk.note}${this.disk.note ? '; ' : ''}before ${before}: ${message(err)}`;
      say(`disk reference failed: ${message(err)}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Starts one target; null (and a note saying why) when it cannot run. */
  private async start(name: TargetName): Promise<{ target: ObjectTarget | null; note: string }> {
    const s = this.s;
    switch (name) {
      case 'swift': {
        const missing = SwiftTarget.missing(s);
        if (missing) return { target: null, note: missing };
        say(`starting Swift (proxy :${s.swProxyPort}, storage :6200-6202, memcached :${s.memcachePort}) in ${s.anchorState}`);
        return { target: await SwiftTarget.start(s, path.join(this.workDir, 'swift-scripts.log')), note: '' };
      }
      case 'stratus': {
        const dataDir = path.join(this.workDir, 'stratus-data');
        say(`starting Stratus (identity :${s.portBase}, object-proxy :${s.portBase + 1}, storage :${s.portBase + 2}-${s.portBase + 4}, data ${dataDir})`);
        const version = s.stratusMain === path.join(ROOT, 'dist', 'src', 'cli', 'main.js') ? gitInfo(ROOT) : `${s.stratusMain}; tree at run time ${gitInfo(ROOT)}`;
        const nodeArgs = s.profile ? ['--cpu-prof', `--cpu-prof-dir=${this.profileDir}`] : [];
        return { target: await StratusObjectTarget.start(s, dataDir, version, nodeArgs), note: '' };
      }
    }
  }

  /** Each target in turn: start, measure, stop. */
  async measureTargets(): Promise<void> {
    for (const name of this.s.targets) {
      if (this.aborting) {
        this.results.set(name, emptyResult(name, `not started: ${this.aborting}`));
        continue;
      }
      if (!this.s.skipDisk) await this.measureDisk(name);
      if (this.aborting) {
        this.results.set(name, emptyResult(name, `not started: ${this.aborting}`));
        continue;
      }
      let started: { target: ObjectTarget | null; note: string };
      try {
        started = await this.start(name);
      } catch (err) {
        started = { target: null, note: `did not start: ${message(err)}` };
      }
      const target = started.target;
      if (!target) {
        say(`${name} is not measured: ${started.note}`);
        this.results.set(name, emptyResult(name, started.note));
        continue;
      }
      this.current = target;
      try {
        const run = new TargetRun(target, this.s, this.s.parts.includes('large') ? this.big : null, say, () => this.aborting !== null);
        await run.run();
        this.results.set(name, run.result);
      } finally {
        await this.stopCurrent();
      }
      if (name === 'stratus' && this.s.profile) this.profile = this.profileLines(this.results.get('stratus'));
    }
  }

  /** Where Stratus' CPU went, per kind of load (the runs' windows cut from the whole-life profile). */
  private profileLines(result: TargetResult | undefined): string[] {
    if (summarizeProfiles(this.profileDir, 1).length === 0) return ['(no profile was written)'];
    const cases: [label: string, windows: ProfileWindow[]][] = [];
    const size = `${this.s.objBytes} B`;
    const cmax = Math.max(...this.s.concurrency);
    for (const op of ['put', 'get'] as const) {
      const runs = (result?.small ?? []).filter((r) => r.op === op && r.concurrency === cmax);
      if (runs.length) cases.push([`${size} ${op.toUpperCase()} c=${cmax} (${runs.length} run(s), ${runs.reduce((a, r) => a + r.ok, 0)} requests)`, runs.map((r) => r.window_us)]);
    }
    for (const op of ['put', 'get'] as const) {
      const runs = (result?.large ?? []).filter((r) => r.op === op);
      if (runs.length) cases.push([`${this.s.bigMib} MiB ${op.toUpperCase()} (${runs.length} run(s))`, runs.map((r) => r.window_us)]);
    }
    const lines: string[] = [];
    const row = (pct: number, ms: number, what: string): string => `    ${pct.toFixed(1).padStart(5)} %  ${String(ms).padStart(7)} ms  ${what}`;
    const dir = this.profileDir;
    for (const [label, windows] of cases) {
      lines.push(`### ${label}`, '', 'Main thread (the event loop), self time by function:', '');
      for (const p of summarizeProfiles(dir, 15, windows, 'main')) lines.push(row(p.pct, p.self_ms, `${p.function || '(anonymous)'} ${p.where}`));
      lines.push('', 'Main thread, self time by file (node: = Node.js internals, npm: = dependencies, (native) = V8/Node bindings):', '');
      for (const f of summarizeProfileFiles(dir, 12, windows, 'main')) lines.push(row(f.pct, f.self_ms, f.file));
      lines.push('', 'Main thread, total time (self + callees) of functions in src/object/:', '');
      for (const p of summarizeProfileInclusive(dir, '/src/object/', 15, windows, 'main')) lines.push(row(p.pct, p.self_ms, `${p.function || '(anonymous)'} ${p.where}`));
      const workers = summarizeProfileFiles(dir, 5, windows, 'workers');
      if (workers.length) {
        lines.push('', 'Worker threads (all of them), self time by file:', '');
        for (const f of workers) lines.push(row(f.pct, f.self_ms, f.file));
      }
      lines.push('');
    }
    lines.push('### Whole process life, main thread, self time by file', '');
    for (const f of summarizeProfileFiles(dir, 12, undefined, 'main')) lines.push(row(f.pct, f.self_ms, f.file));
    return lines;
  }

  /** Stops the target being measured (once); removes Swift's state unless KEEP_DATA=1. */
  async stopCurrent(): Promise<void> {
    const target = this.current;
    this.current = null;
    if (!target) return;
    say(`stopping ${target.name}`);
    await target.stop().catch((err: unknown) => say(`warning: stopping ${target.name}: ${message(err)}`));
    if (target instanceof SwiftTarget && !this.s.keepData) target.removeState();
  }

  /** Synchronous last resort at exit: kills children, runs stop-swift.sh. */
  emergencyStop(): void {
    for (const child of liveChildren) child.kill('SIGKILL');
    if (this.current instanceof SwiftTarget) this.current.emergencyStop();
  }

  /** Removes the work directory (test file, Stratus data and log) unless kept; CPU profiles stay when there are any. */
  removeFiles(keep: boolean): void {
    if (this.big) fs.rmSync(this.big.path, { force: true });
    if (this.s.keepData || keep) {
      say(`kept ${this.workDir} (Stratus data and log, script output, CPU profiles)`);
      return;
    }
    if (this.profile.length) {
      for (const name of fs.readdirSync(this.workDir)) if (name !== 'cpuprofile') fs.rmSync(path.join(this.workDir, name), { recursive: true, force: true });
      say(`kept the CPU profiles in ${this.profileDir}`);
      return;
    }
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  applyFlags(process.argv.slice(2), process.env, 'bench/object/README.md');
  const s = readSettings(ROOT);
  const started = new Date();
  const loadStart = loadAvg();
  const bench = new ObjectBench(s);
  const { error, exitCode } = await measureGuarded(bench, s.totalTimeoutS, 120_000, async () => {
    if (s.parts.includes('large')) await bench.createBig();
    await bench.measureTargets();
  });

  const stratus = bench.results.get('stratus') ?? null;
  const swift = bench.results.get('swift') ?? null;
  const rows = buildRows(s, stratus, swift, bench.disk);
  const goalList = goals(s, rows, bench.disk);
  const host = { ...hostInfo(loadStart), kernel: os.release(), hostname: os.hostname() };
  const versions = { stratus: gitInfo(ROOT), node: process.version, swift: debVersion('swift'), memcached: debVersion('memcached'), curl: commandLine('curl', ['--version']), coreutils: commandLine('dd', ['--version']) };
  const json = {
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    error: error ? message(error) : null,
    settings: { ...s, stratusPassword: '***' },
    host,
    versions,
    big_file: bench.big ? { mib: s.bigMib, md5: bench.big.md5 } : null,
    table: rows,
    goals: goalList,
    disk: bench.disk,
    targets: [...bench.results.values()],
    stratus_cpu_profile: bench.profile,
  };
  const jsonPath = writeResults(RESULTS_DIR, started, json);
  process.stdout.write(`${renderReport({ s, rows, stratus, swift, disk: bench.disk, goals: goalList, started, host, profile: bench.profile })}\n\nRaw numbers: ${path.relative(process.cwd(), jsonPath) || jsonPath}\n`);
  const failed = error !== null || bench.disk.note !== '' || [...bench.results.values()].some((r) => !r.available || r.note !== '' || r.small.some((x) => x.errors > 0));
  bench.removeFiles(failed);
  return exitCode || (failed ? 1 : 0);
}

runMain(main);
