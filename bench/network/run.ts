/**
 * Networking API benchmark: ports created per second (concurrency 1 and 16)
 * and port list latency with 10,000 ports, on Debian's real neutron-server
 * and on Stratus, one after the other in the same run, with the ratios.
 * Not part of the test suite. See bench/network/README.md.
 *
 *   bash bench/network/run.sh                  (builds Stratus, then runs this file)
 *   node_modules/.bin/tsx bench/network/run.ts (from the source)
 *   node dist/bench/network/run.js             (once built)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandLine, debVersion, liveChildren } from '../lib/proc.js';
import { gitInfo, hostInfo, loadAvg, message, measureGuarded, runMain, say, writeResults } from '../lib/run.js';
import { buildRows, renderReport } from './lib/report.js';
import { emptyResult, TargetRun, type TargetResult } from './lib/scenario.js';
import { applyFlags } from '../lib/settings.js';
import { readSettings, type Settings, type TargetName } from './lib/settings.js';
import { ExternalTarget, NeutronTarget, StratusTarget, type Target } from './lib/targets.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository: this file runs as <repo>/bench/network/run.ts or <repo>/dist/bench/network/run.js. */
const ROOT = path.resolve(process.env.STRATUS_REPO || (path.basename(path.resolve(HERE, '..', '..')) === 'dist' ? path.resolve(HERE, '..', '..', '..') : path.resolve(HERE, '..', '..')));
const SCRIPTS = path.join(ROOT, 'bench', 'network', 'neutron');
const RESULTS_DIR = path.join(ROOT, 'bench', 'network', 'results');

/** The run: the target being measured now, so that a signal can stop it. */
class NetworkBench {
  readonly workDir: string;
  readonly results: TargetResult[] = [];
  /** Set by a signal or the total time limit: no new phase or target starts. */
  aborting: string | null = null;
  private current: Target | null = null;
  private readonly anchorStateExisted: boolean;

  constructor(readonly s: Settings) {
    fs.mkdirSync(s.workParent, { recursive: true });
    this.workDir = fs.mkdtempSync(path.join(s.workParent, 'stratus-network-bench-'));
    this.anchorStateExisted = fs.existsSync(s.anchorState);
  }

  /** Starts one target; null (and a result saying why) when it cannot run. */
  private async start(name: TargetName): Promise<{ target: Target | null; note: string }> {
    const s = this.s;
    switch (name) {
      case 'neutron': {
        const missing = NeutronTarget.missing(s, SCRIPTS);
        if (missing) return { target: null, note: missing };
        say(`starting Keystone (:${s.ksPort}) and neutron-server (:${s.neutronPort}, ${s.neutronApiWorkers} API workers, PostgreSQL) in ${s.anchorState}; a fresh database takes ~30-60 s`);
        return { target: await NeutronTarget.start(s, SCRIPTS, path.join(this.workDir, 'neutron-scripts.log')), note: '' };
      }
      case 'stratus': {
        const dataDir = path.join(this.workDir, 'stratus-data');
        say(`starting Stratus (identity :${s.stratusIdentityPort}, network :${s.stratusNetworkPort}, data ${dataDir})`);
        // The tree's commit describes the build only when it is the tree's own dist/.
        const version = s.stratusMain === path.join(ROOT, 'dist', 'src', 'cli', 'main.js') ? gitInfo(ROOT) : `${s.stratusMain}; tree at run time ${gitInfo(ROOT)}`;
        const { target, note } = await StratusTarget.start(s, dataDir, version);
        if (note) say(`Stratus: ${note}`);
        return { target, note };
      }
      case 'external':
        return { target: new ExternalTarget(s), note: '' };
    }
  }

  /** Measures each target in turn: start, measure, clean up, stop. */
  async measure(): Promise<void> {
    for (const name of this.s.targets) {
      if (this.aborting) {
        this.results.push(emptyResult(name, `not started: ${this.aborting}`));
        continue;
      }
      let started: { target: Target | null; note: string };
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
        const result = await new TargetRun(target, this.s, say, () => this.aborting !== null).run();
        if (started.note) result.note = [started.note, result.note].filter(Boolean).join('; ');
        this.results.push(result);
      } finally {
        await this.stopCurrent();
      }
    }
  }

  /** Stops the target being measured (once). */
  async stopCurrent(): Promise<void> {
    const target = this.current;
    this.current = null;
    if (!target) return;
    say(`stopping ${target.name}`);
    await target.stop().catch((err: unknown) => say(`warning: stopping ${target.name}: ${message(err)}`));
    if (target instanceof NeutronTarget && !this.s.keepData) target.removeState(!this.anchorStateExisted);
  }

  /** Synchronous last resort at exit: kills children, runs stop-neutron.sh. */
  emergencyStop(): void {
    for (const child of liveChildren) child.kill('SIGKILL');
    if (this.current instanceof NeutronTarget) this.current.emergencyStop();
  }

  /** Removes the work directory (Stratus' data, script logs) unless asked to keep it or the run failed. */
  removeFiles(keep: boolean): void {
    if (this.s.keepData || keep) say(`kept ${this.workDir} (Stratus data and log, start script output)`);
    else fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  applyFlags(process.argv.slice(2), process.env, 'bench/network/README.md');
  const s = readSettings(ROOT);
  const started = new Date();
  const loadStart = loadAvg();
  const bench = new NetworkBench(s);
  const { error, exitCode } = await measureGuarded(bench, s.totalTimeoutS, 120_000, () => bench.measure());

  const rows = buildRows(bench.results, s);
  const host = { ...hostInfo(loadStart), kernel: os.release(), hostname: os.hostname() };
  const versions = {
    stratus: gitInfo(ROOT),
    node: process.version,
    neutron: debVersion('python3-neutron'),
    neutron_lib: debVersion('python3-neutron-lib'),
    keystone: debVersion('keystone'),
    postgresql: commandLine('/usr/lib/postgresql/15/bin/postgres', ['--version']),
    sqlalchemy: debVersion('python3-sqlalchemy'),
  };
  // Passwords stay out of the results (an external cloud's may be a real one).
  const settings = { ...s, ksPassword: '***', stratusPassword: '***', external: { ...s.external, password: '***' } };
  const json = { started_at: started.toISOString(), finished_at: new Date().toISOString(), error: error ? message(error) : null, settings, host, versions, table: rows, targets: bench.results };
  const jsonPath = writeResults(RESULTS_DIR, started, json);
  process.stdout.write(`${renderReport({ results: bench.results, rows, settings: s, host, started })}\nRaw numbers: ${path.relative(process.cwd(), jsonPath) || jsonPath}\n`);
  const failed = error !== null || bench.results.some((r) => !r.available || r.note !== '');
  bench.removeFiles(failed);
  return exitCode || (error ? 1 : 0);
}

runMain(main);
