import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commandLine } from './proc.js';
import { UsageError } from './settings.js';

/** A progress line on stderr (stdout has the report only). */
export function say(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

/** An error's message (anything thrown). */
export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The commit of the tree at `root`, with `+changes` when tracked files differ from it. */
export function gitInfo(root: string): string {
  const commit = commandLine('git', ['-C', root, 'rev-parse', '--short', 'HEAD']) ?? 'unknown';
  const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout?.trim();
  return dirty ? `${commit}+changes` : commit;
}

/** The host's load averages (1, 5, 15 min), to two decimals. */
export function loadAvg(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

/** What every report says of the host: CPUs, memory, and the load at the start and now. */
export function hostInfo(loadStart: number[], loadEnd = loadAvg()): { cpus: number; cpu_model: string | null; mem_total_mib: number; loadavg_start: number[]; loadavg_end: number[] } {
  const cpus = os.cpus();
  return { cpus: cpus.length, cpu_model: cpus[0]?.model ?? null, mem_total_mib: Math.round(os.totalmem() / 2 ** 20), loadavg_start: loadStart, loadavg_end: loadEnd };
}

/** Writes `json` to `<dir>/<start time>.json` (made when missing); returns the path. */
export function writeResults(dir: string, started: Date, json: unknown): string {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = started.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const file = path.join(dir, `${stamp}.json`);
  fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  return file;
}

/**
 * Calls `stop(why, exit code)` on SIGINT (130), SIGTERM (143) and once
 * `totalTimeoutS` has passed (124). Returns what cancels the time limit.
 */
export function onInterrupt(totalTimeoutS: number, stop: (why: string, code: number) => void): () => void {
  process.once('SIGINT', () => stop('SIGINT', 130));
  process.once('SIGTERM', () => stop('SIGTERM', 143));
  const watchdog = setTimeout(() => stop(`no end after TOTAL_TIMEOUT_S=${totalTimeoutS} s`, 124), totalTimeoutS * 1000);
  watchdog.unref();
  return () => clearTimeout(watchdog);
}

/** A benchmark that measures one target at a time and can stop it. */
export interface StoppableBench {
  /** Why the run is being stopped (a signal, the time limit); null while it runs. */
  aborting: string | null;
  /** Stops the target being measured, so that what is in flight fails at once. */
  stopCurrent(): Promise<void>;
  /** Synchronous last resort at exit: kills what is left. */
  emergencyStop(): void;
}

/**
 * Runs `measure` under a benchmark's guards. On SIGINT, SIGTERM or once
 * `totalTimeoutS` has passed, the target being measured is stopped and
 * `measure` left to end with what it has (should that hang, the process
 * ends `graceMs` later anyway); at exit, `emergencyStop` kills what is
 * left. Returns the error `measure` ended with (an interruption is one) and
 * the exit code of an interruption (0 when there was none).
 */
export async function measureGuarded(bench: StoppableBench, totalTimeoutS: number, graceMs: number, measure: () => Promise<void>): Promise<{ error: unknown; exitCode: number }> {
  process.once('exit', () => bench.emergencyStop());
  let exitCode = 0;
  const cancelTimeLimit = onInterrupt(totalTimeoutS, (why, code) => {
    say(`${why}: stopping everything this benchmark started...`);
    bench.aborting = why;
    exitCode = code;
    void bench.stopCurrent();
    setTimeout(() => process.exit(code), graceMs).unref();
  });
  let error: unknown = null;
  try {
    await measure();
  } catch (err) {
    error = err;
    process.stderr.write(`bench: failed: ${message(err)}\n`);
  } finally {
    await bench.stopCurrent();
    cancelTimeLimit();
  }
  if (!error && bench.aborting) error = new Error(`aborted: ${bench.aborting}`);
  return { error, exitCode };
}

/** Runs a benchmark's `main` and sets the exit code: its result, 2 for a UsageError, 1 for anything else thrown. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof UsageError) {
        process.stderr.write(`bench: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
