import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { issueToken, portOpen } from '../../lib/http.js';
import { now, readPidFile, runCommand, sleep, track, treeCpuSeconds } from '../../lib/proc.js';
import { StratusProcess, type Launch } from '../../lib/stratus.js';

/** One identity server under test. */
export interface Target {
  readonly name: 'keystone' | 'stratus';
  /** Base URL, e.g. http://127.0.0.1:5001 */
  readonly url: string;
  readonly port: number;
  /** The admin password (user admin, project admin, domain Default). */
  readonly password: string;
  /** PIDs whose process trees are the server (memory, CPU). */
  serverPids(): number[];
  /** PIDs of helpers reported separately (Keystone's memcached). */
  helperPids(): number[];
  stop(): Promise<void>;
}

/** One cold start: launch -> first issued token. */
export interface ColdStart {
  fresh: boolean;
  /** Launch to the first successfully issued token. */
  seconds: number;
  /** Launch to the launcher's own "up" signal (start-keystone.sh exit / "Stratus is up"). */
  ready_seconds: number;
  /** Token requests sent until one succeeded. */
  attempts: number;
}

/**
 * Measures a cold start: calls `launch`, then polls POST /v3/auth/tokens every
 * 20 ms (each attempt waits up to 30 s for an answer) until a token comes back.
 */
export async function coldStart(target: Target, fresh: boolean, launch: () => Launch, timeoutS = 180): Promise<ColdStart> {
  if (await portOpen(target.port)) throw new Error(`${target.name}: port ${target.port} is already in use before the start; stop what listens there or choose another port`);
  const t0 = now();
  const started = launch();
  let readyAt = -1;
  let readyError: unknown = null;
  const ready = started.ready.then(
    () => {
      readyAt = now();
    },
    (err: unknown) => {
      readyError = err;
    },
  );
  let attempts = 0;
  let lastError = '';
  for (;;) {
    const failure = started.failure() ?? (readyError instanceof Error ? readyError : null);
    if (failure) throw failure;
    if (now() - t0 > timeoutS) throw new Error(`${target.name}: no token within ${timeoutS} s of the start (last: ${lastError})`);
    attempts++;
    const attempt = await issueToken(target.url, target.password);
    if (attempt.token) break;
    lastError = attempt.error ?? '';
    await sleep(20);
  }
  const seconds = now() - t0;
  await Promise.race([ready, sleep(120000)]);
  if (readyError) throw readyError instanceof Error ? readyError : new Error(String(readyError));
  return { fresh, seconds, ready_seconds: readyAt > 0 ? readyAt - t0 : Number.NaN, attempts };
}

/**
 * Waits until the target's processes use less than `maxCores` of CPU over a
 * 0.5 s window (e.g. Keystone still draining queued requests after a run), at
 * most `limitS` seconds. Returns the seconds waited.
 */
export async function settle(target: Target, maxCores = 0.05, limitS = 20): Promise<number> {
  const t0 = now();
  const roots = [...target.serverPids(), ...target.helperPids()];
  while (now() - t0 < limitS) {
    const a = treeCpuSeconds(roots);
    await sleep(500);
    if ((treeCpuSeconds(roots) - a) / 0.5 < maxCores) break;
  }
  return now() - t0;
}

async function waitPortClosed(port: number, limitS: number): Promise<boolean> {
  const t0 = now();
  while (now() - t0 < limitS) {
    if (!(await portOpen(port))) return true;
    await sleep(100);
  }
  return false;
}

/**
 * Debian's Keystone through the anchor scripts (start-keystone.sh /
 * stop-keystone.sh), uwsgi master + workers, memcached as its cache.
 */
export class KeystoneTarget implements Target {
  readonly name = 'keystone' as const;
  readonly url: string;
  private launches = 0;

  /**
   * @param anchors directory holding start-keystone.sh and stop-keystone.sh
   * @param env environment for the scripts (OS_ANCHOR_STATE, KS_PORT, KS_CACHE, KS_MEMCACHE_PORT, ...)
   * @param stateDir $OS_ANCHOR_STATE/keystone, where the scripts keep pid files and the database
   * @param logDir where the scripts' output goes
   */
  constructor(
    private readonly anchors: string,
    private readonly env: NodeJS.ProcessEnv,
    readonly port: number,
    readonly password: string,
    readonly stateDir: string,
    private readonly logDir: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Runs start-keystone.sh (with --fresh when asked); ready when the script exits 0. */
  launch(fresh: boolean): Launch {
    const log = path.join(this.logDir, `start-keystone-${++this.launches}${fresh ? '-fresh' : ''}.log`);
    const fd = fs.openSync(log, 'w');
    let failure: Error | null = null;
    let child: ChildProcess;
    try {
      child = track('bash', [path.join(this.anchors, 'start-keystone.sh'), ...(fresh ? ['--fresh'] : [])], { env: this.env, cwd: this.anchors, stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd);
    }
    const ready = new Promise<void>((resolve, reject) => {
      child.once('error', (err) => {
        failure = err;
        reject(err);
      });
      child.once('exit', (code, signal) => {
        if (code === 0) return resolve();
        const tail = fs.readFileSync(log, 'utf8').split('\n').slice(-15).join('\n');
        failure = new Error(`start-keystone.sh exited with ${code ?? signal} (log ${log}):\n${tail}`);
        reject(failure);
      });
    });
    return { ready, failure: () => failure };
  }

  serverPids(): number[] {
    const pid = readPidFile(path.join(this.stateDir, 'uwsgi.pid'));
    return pid ? [pid] : [];
  }

  helperPids(): number[] {
    const pid = readPidFile(path.join(this.stateDir, 'memcached.pid'));
    return pid ? [pid] : [];
  }

  /** stop-keystone.sh with the same environment; waits until the port is closed. */
  async stop(): Promise<void> {
    const r = await runCommand('bash', [path.join(this.anchors, 'stop-keystone.sh')], { env: this.env, cwd: this.anchors, timeoutMs: 60000 });
    if (r.code !== 0) process.stderr.write(`warning: stop-keystone.sh exited with ${r.code ?? r.signal}: ${r.stdout}${r.stderr}\n`);
    if (!(await waitPortClosed(this.port, 15))) process.stderr.write(`warning: port ${this.port} still open after stop-keystone.sh\n`);
  }
}

/** `node dist/src/cli/main.js up --data DIR` (what ./stratus up runs), one process. */
export class StratusTarget implements Target {
  readonly name = 'stratus' as const;
  readonly url: string;
  private readonly proc: StratusProcess;

  /**
   * @param main path of dist/src/cli/main.js
   * @param env environment for `stratus up` (port, admin password, metrics off)
   */
  constructor(
    main: string,
    private readonly env: NodeJS.ProcessEnv,
    readonly port: number,
    readonly password: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.proc = new StratusProcess(main);
  }

  /** Starts `stratus up --data dataDir`; ready on "Stratus is up". */
  launch(dataDir: string): Launch {
    return this.proc.launch(dataDir, this.env);
  }

  serverPids(): number[] {
    const pid = this.proc.pid;
    return pid === undefined ? [] : [pid];
  }

  helperPids(): number[] {
    return [];
  }

  /** Stops the process (SIGTERM, then SIGKILL); waits for the exit and the port to close. */
  async stop(): Promise<void> {
    if (this.proc.pid === undefined) return;
    await this.proc.stop();
    await waitPortClosed(this.port, 5);
  }
}
