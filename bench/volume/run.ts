/**
 * Block storage benchmark: on Stratus (`stratus up`, backends `file` and
 * `fake`) and on Debian's Cinder (Zed; NFS driver on a local directory, and
 * Cinder's fake driver), one after the other in the same run:
 *   1. create a volume from a 1 GiB image of random bytes, against `cp` of the
 *      same file on the same file system (median of REPEAT, and the ratio);
 *   2. snapshot and clone of that volume (median of REPEAT);
 *   3. volumes created and deleted per second on the fake backend at
 *      concurrency 1, 8, 32 (one watcher polls the volume list).
 * Not part of the test suite. See bench/volume/README.md.
 *
 *   bash bench/volume/run.sh                  (builds Stratus, then runs this file)
 *   node_modules/.bin/tsx bench/volume/run.ts (from the source)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandLine, debVersion, liveChildren, runCommand } from '../lib/proc.js';
import { gitInfo, hostInfo, loadAvg, message, measureGuarded, runMain, say, writeResults } from '../lib/run.js';
import { buildRows, renderReport } from './lib/report.js';
import { emptyResult, TargetRun, type TargetResult } from './lib/scenario.js';
import { applyFlags } from '../lib/settings.js';
import { readSettings, type Settings, type TargetName } from './lib/settings.js';
import { CinderTarget, StratusTarget, type Target } from './lib/targets.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository: this file runs as <repo>/bench/volume/run.ts or <repo>/dist/bench/volume/run.js. */
const ROOT = path.resolve(process.env.STRATUS_REPO || (path.basename(path.resolve(HERE, '..', '..')) === 'dist' ? path.resolve(HERE, '..', '..', '..') : path.resolve(HERE, '..', '..')));
const SCRIPTS = path.join(ROOT, 'bench', 'volume', 'cinder');
const RESULTS_DIR = path.join(ROOT, 'bench', 'volume', 'results');

/** The run: its files, and the target being measured now, so that a signal can stop it. */
class VolumeBench {
  readonly workDir: string;
  readonly imageFile: string;
  readonly copyFile: string;
  readonly results: TargetResult[] = [];
  imageMd5: string | null = null;
  /** Set by a signal or the total time limit: no new step or target starts. */
  aborting: string | null = null;
  private current: Target | null = null;
  private readonly anchorStateExisted: boolean;

  constructor(readonly s: Settings) {
    fs.mkdirSync(s.workParent, { recursive: true });
    this.workDir = fs.mkdtempSync(path.join(s.workParent, 'stratus-volume-bench-'));
    this.imageFile = path.join(this.workDir, `image-${s.imageMib}MiB.raw`);
    this.copyFile = path.join(this.workDir, 'copy.raw');
    this.anchorStateExisted = fs.existsSync(s.anchorState);
  }

  /** The test image: IMAGE_MIB of /dev/urandom (incompressible, no zero blocks), made once per run. */
  async createImage(): Promise<void> {
    say(`writing ${this.s.imageMib} MiB of random bytes to ${this.imageFile}`);
    const r = await runCommand('bash', ['-c', 'head -c "$1" /dev/urandom > "$2" && md5sum "$2"', 'bash', String(this.s.imageMib * 1024 * 1024), this.imageFile], { timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`could not write the test image: ${r.stderr.trim()}`);
    this.imageMd5 = r.stdout.split(/\s+/)[0] ?? null;
  }

  /** Starts one target; null (and a note saying why) when it cannot run. */
  private async start(name: TargetName): Promise<{ target: Target | null; note: string }> {
    const s = this.s;
    switch (name) {
      case 'cinder': {
        const missing = CinderTarget.missing(s, SCRIPTS);
        if (missing) return { target: null, note: missing };
        say(`starting Keystone (:${s.ksPort}), Glance (:${s.glPort}), RabbitMQ, PostgreSQL and Cinder (:${s.cinderPort}) in ${s.anchorState}; a fresh start takes ~1 min`);
        return { target: await CinderTarget.start(s, SCRIPTS, path.join(this.workDir, 'cinder-scripts.log')), note: '' };
      }
      case 'stratus': {
        say(`starting Stratus (identity :${s.portBase}, image :${s.portBase + 1}, volume :${s.portBase + 2}, data ${path.join(this.workDir, 'stratus-data')})`);
        const version = s.stratusMain === path.join(ROOT, 'dist', 'src', 'cli', 'main.js') ? gitInfo(ROOT) : `${s.stratusMain}; tree at run time ${gitInfo(ROOT)}`;
        return { target: await StratusTarget.start(s, this.workDir, version), note: '' };
      }
    }
  }

  /** Each target in turn: start, measure, stop. */
  async measure(): Promise<void> {
    for (const name of this.s.targets) {
      if (this.aborting) {
        this.results.push(emptyResult(name, `not started: ${this.aborting}`));
        continue;
      }
      let started: { target: Target | null; note: string };
      const t0 = performance.now();
      try {
        started = await this.start(name);
      } catch (err) {
        started = { target: null, note: `did not start: ${message(err)}` };
      }
      const target = started.target;
      if (!target) {
        say(`${name} is not measured: ${started.note}`);
        this.results.push(emptyResult(name, started.note));
        continue;
      }
      this.current = target;
      try {
        const run = new TargetRun(target, this.s, { image: this.imageFile, copy: this.copyFile, workDir: this.workDir }, say, () => this.aborting !== null, (performance.now() - t0) / 1000);
        await run.run();
        run.summarize();
        this.results.push(run.result);
      } finally {
        await this.stopCurrent();
      }
    }
  }

  /** Stops the target being measured (once); removes Cinder's state unless KEEP_DATA=1. */
  async stopCurrent(): Promise<void> {
    const target = this.current;
    this.current = null;
    if (!target) return;
    say(`stopping ${target.name}`);
    await target.stop().catch((err: unknown) => say(`warning: stopping ${target.name}: ${message(err)}`));
    if (target instanceof CinderTarget && !this.s.keepData) target.removeState(!this.anchorStateExisted);
  }

  /** Synchronous last resort at exit: kills children, runs stop-cinder.sh. */
  emergencyStop(): void {
    for (const child of liveChildren) child.kill('SIGKILL');
    if (this.current instanceof CinderTarget) this.current.emergencyStop();
  }

  /** Removes the test image and copy always; the work directory (Stratus data and log, script output) unless kept. */
  removeFiles(keep: boolean): void {
    for (const f of [this.imageFile, this.copyFile]) fs.rmSync(f, { force: true });
    if (this.s.keepData || keep) say(`kept ${this.workDir} (Stratus data and log, start script output)`);
    else fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  applyFlags(process.argv.slice(2), process.env, 'bench/volume/README.md');
  const s = readSettings(ROOT);
  const started = new Date();
  const loadStart = loadAvg();
  const bench = new VolumeBench(s);
  const { error, exitCode } = await measureGuarded(bench, s.totalTimeoutS, 180_000, async () => {
    if (s.parts.includes('image')) await bench.createImage();
    await bench.measure();
  });

  const rows = buildRows(bench.results, s);
  const host = { ...hostInfo(loadStart), kernel: os.release(), hostname: os.hostname() };
  const versions = {
    stratus: gitInfo(ROOT),
    node: process.version,
    cinder: debVersion('python3-cinder'),
    glance: debVersion('glance-api'),
    keystone: debVersion('keystone'),
    rabbitmq: debVersion('rabbitmq-server'),
    postgresql: commandLine('/usr/lib/postgresql/15/bin/postgres', ['--version']),
    qemu_img: commandLine('qemu-img', ['--version']),
    coreutils: commandLine('cp', ['--version']),
  };
  const settings = { ...s, ksPassword: '***', stratusPassword: '***' };
  const json = { started_at: started.toISOString(), finished_at: new Date().toISOString(), error: error ? message(error) : null, settings, host, versions, image: { mib: s.imageMib, md5: bench.imageMd5, work_dir: bench.workDir }, table: rows, targets: bench.results };
  const jsonPath = writeResults(RESULTS_DIR, started, json);
  process.stdout.write(`${renderReport({ results: bench.results, rows, settings: s, host, started })}\nRaw numbers: ${path.relative(process.cwd(), jsonPath) || jsonPath}\n`);
  const failed = error !== null || bench.results.some((r) => !r.available || r.note !== '' || r.rate.some((p) => p.errors > 0));
  bench.removeFiles(failed);
  return exitCode || (failed ? 1 : 0);
}

runMain(main);
