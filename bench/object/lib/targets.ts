import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { assertPortsFree, httpRequest, passwordAuthBody } from '../../lib/http.js';
import { debVersion, haveCommand, outputTail, readPidFile, runCommand, within, type CommandResult } from '../../lib/proc.js';
import { StratusProcess, stratusEnv } from '../../lib/stratus.js';
import type { Settings, TargetName } from './settings.js';

/** An object store under test, running, with a token for one account. */
export interface ObjectTarget {
  readonly name: TargetName;
  /** Where the Swift API listens. */
  readonly host: string;
  readonly port: number;
  /** The account's path, e.g. /v1/AUTH_test. */
  readonly accountPath: string;
  readonly token: string;
  /** Headers of the benchmark's container PUTs (Swift: the 3-replica policy). */
  readonly containerHeaders: Record<string, string>;
  /** What runs, for the report. */
  readonly setup: Record<string, string | number | null>;
  /** Seconds from the start command to the first authenticated answer. */
  readonly startS: number;
  /** Roots of the process trees whose memory and CPU are measured. */
  pids(): number[];
  /** The process whose main thread does most of the work (Stratus' event loop), or null (Swift: many processes). */
  mainThreadPid(): number | null;
  /** Object data files (`*.data`) on the target's devices now: replicas x objects. */
  dataFiles(): number;
  /** The end of the target's logs (for error messages). */
  logTail(): string;
  /** Stops what this object started; safe to call twice. */
  stop(): Promise<void>;
}

/** `*.data` files below `dir` whose path contains `/<sub>/` (a device's object directory). */
function countDataFiles(dir: string, sub: string): number {
  let n = 0;
  const walk = (d: string, inObjects: boolean): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(path.join(d, e.name), inObjects || e.name === sub);
      else if (inObjects && e.name.endsWith('.data')) n++;
    }
  };
  walk(dir, false);
  return n;
}

/** The last lines of a file, or ''. */
function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * `stratus up` (node MAIN up --data DIR) on a new data directory with
 * identity and object storage only: the object-proxy, this node's object,
 * container and account servers and the background workers in one process,
 * the default rings (3 devices, 3 replicas).
 */
export class StratusObjectTarget implements ObjectTarget {
  readonly name = 'stratus' as const;
  readonly host = '127.0.0.1';
  readonly port: number;
  readonly containerHeaders: Record<string, string> = {};
  readonly setup: Record<string, string | number | null>;
  accountPath = '';
  token = '';
  startS = 0;
  private readonly proc: StratusProcess;

  private constructor(
    private readonly s: Settings,
    readonly dataDir: string,
    version: string,
    nodeArgs: string[],
  ) {
    this.port = s.portBase + 1;
    this.proc = new StratusProcess(s.stratusMain, nodeArgs);
    this.setup = {
      server: `stratus up (${version}), node ${process.version}${nodeArgs.length ? ` ${nodeArgs.join(' ')}` : ''}`,
      processes: 'one: identity, object-proxy, object/container/account servers (ports +2..+4), workers (replicator, auditor, updater, expirer, reaper)',
      rings: 'the `up` default: part power 10, 3 replicas, devices d1 d2 d3 (one zone each) in the data directory',
      auth: 'Keystone-style token of admin in project admin (X-Auth-Token), account AUTH_<project id>',
      url: `http://127.0.0.1:${this.port}/v1`,
      data_dir: dataDir,
    };
  }

  /** Starts Stratus, waits for "Stratus is up", takes a token; stops it again when any of that fails. */
  static async start(s: Settings, dataDir: string, version: string, nodeArgs: string[]): Promise<StratusObjectTarget> {
    if (!fs.existsSync(s.stratusMain)) throw new Error(`${s.stratusMain} is missing: build first (npx tsc -p tsconfig.json), or set STRATUS_MAIN`);
    await assertPortsFree([0, 1, 2, 3, 4].map((i) => [s.portBase + i, 'PORT_BASE'] as [number, string]));
    const env = stratusEnv({
      identityPort: s.portBase,
      objectPort: s.portBase + 1,
      storagePorts: { object: s.portBase + 2, container: s.portBase + 3, account: s.portBase + 4 },
      password: s.stratusPassword,
    });
    const target = new StratusObjectTarget(s, dataDir, version, nodeArgs);
    const t0 = performance.now();
    try {
      await within(target.proc.launch(dataDir, env).ready, s.startTimeoutS * 1000, 'stratus up');
      await target.authenticate();
    } catch (err) {
      await target.stop();
      throw err;
    }
    target.startS = (performance.now() - t0) / 1000;
    return target;
  }

  private async authenticate(): Promise<void> {
    const res = await httpRequest(`http://127.0.0.1:${this.s.portBase}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: passwordAuthBody('admin', this.s.stratusPassword, 'admin'),
      timeoutMs: 30000,
    });
    const token = res.headers['x-subject-token'];
    const projectId = res.status === 201 ? (JSON.parse(res.body) as { token?: { project?: { id?: string } } }).token?.project?.id : undefined;
    if (typeof token !== 'string' || !projectId) throw new Error(`no token from Stratus identity: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    this.token = token;
    this.accountPath = `/v1/AUTH_${projectId}`;
  }

  pids(): number[] {
    const pid = this.proc.pid;
    return pid === undefined ? [] : [pid];
  }

  mainThreadPid(): number | null {
    return this.proc.pid ?? null;
  }

  dataFiles(): number {
    return countDataFiles(path.join(this.dataDir, 'object', 'devices'), 'objects');
  }

  logTail(): string {
    const log = tail(path.join(this.dataDir, 'stratus.log'), 400)
      .split('\n')
      .filter((l) => /"level":(40|50|60)/.test(l))
      .slice(-6)
      .map((l) => l.slice(0, 400));
    if (log.length) return ['stratus.log (warnings and errors):', ...log].join('\n');
    return this.proc.pid === undefined ? this.proc.output.trim().split('\n').slice(-10).join('\n') : '';
  }

  /** SIGTERM (a CPU profile asked for is written then), SIGKILL after 30 s; waits for the exit. */
  stop(): Promise<void> {
    return this.proc.stop();
  }
}

/** The file this benchmark leaves in a Swift anchor state directory it made. */
const STATE_MARKER = '.made-by-bench-object';
/** The storage server ports start-swift.sh uses (not configurable there). */
const SWIFT_STORAGE_PORTS = [6200, 6201, 6202];

/**
 * Debian's Swift 2.30 through the anchor scripts (start-swift.sh --fresh,
 * stop-swift.sh): proxy (tempauth, Debian's pipeline), object, container and
 * account servers (2 workers each), memcached; the benchmark's containers use
 * policy `triple` (3 replicas on d1 d2 d3, zones 1-3).
 */
export class SwiftTarget implements ObjectTarget {
  readonly name = 'swift' as const;
  readonly host = '127.0.0.1';
  readonly port: number;
  readonly containerHeaders = { 'X-Storage-Policy': 'triple' };
  readonly setup: Record<string, string | number | null>;
  accountPath = '';
  token = '';
  startS = 0;
  private readonly env: NodeJS.ProcessEnv;
  private readonly swState: string;
  private stopped = false;

  private constructor(
    private readonly s: Settings,
    private readonly logFile: string,
  ) {
    this.port = s.swProxyPort;
    this.swState = path.join(s.anchorState, 'swift');
    this.env = { ...process.env, OS_ANCHOR_STATE: s.anchorState, SW_PROXY_PORT: String(s.swProxyPort), MEMCACHE_PORT: String(s.memcachePort), SW_AUTH: 'tempauth' };
    this.setup = {
      server: `swift ${debVersion('swift') ?? '?'} (Debian), python3 ${debVersion('python3') ?? '?'}`,
      processes: 'proxy, object, container, account servers (parent + 2 workers each) + memcached',
      rings: 'policy `triple`: part power 10, 3 replicas, devices d1 d2 d3 (zones 1-3) under the anchor state; account and container rings 1 replica',
      auth: 'tempauth test:tester (X-Auth-Token), account AUTH_test',
      url: `http://127.0.0.1:${s.swProxyPort}/v1`,
      state: this.swState,
    };
  }

  /** Why Swift cannot be run here, or null. */
  static missing(s: Settings): string | null {
    const scripts = ['start-swift.sh', 'stop-swift.sh', 'common.sh'].filter((f) => !fs.existsSync(path.join(s.anchors, f)));
    if (scripts.length) return `anchor scripts missing in ${s.anchors}: ${scripts.join(', ')} (set STRATUS_ANCHORS)`;
    const commands = ['swift-proxy-server', 'swift-object-server', 'swift-container-server', 'swift-account-server', 'swift-ring-builder', 'memcached', 'curl'].filter((c) => !haveCommand(c));
    if (commands.length) return `not installed: ${commands.join(', ')} (apt-get install -y swift swift-proxy swift-object swift-container swift-account memcached curl)`;
    if (process.getuid?.() !== 0) return 'start-swift.sh must run as root (it installs /etc/swift/swift.conf and runs the servers as root)';
    return null;
  }

  private async script(name: string, args: string[], timeoutS: number): Promise<CommandResult> {
    const r = await runCommand('bash', [path.join(this.s.anchors, name), ...args], { env: this.env, timeoutMs: timeoutS * 1000 });
    try {
      fs.appendFileSync(this.logFile, `\n$ ${name} ${args.join(' ')} -> ${r.code ?? r.signal}\n${r.stdout}${r.stderr}`);
    } catch {
      // The work directory is gone (removed after an abort).
    }
    return r;
  }

  /**
   * Starts a new Swift (state wiped by --fresh) and takes a tempauth token.
   * Refuses a state directory this benchmark did not make and ports that
   * something listens on; stops Swift again when the start fails.
   */
  static async start(s: Settings, logFile: string): Promise<SwiftTarget> {
    if (fs.existsSync(s.anchorState) && !fs.existsSync(path.join(s.anchorState, STATE_MARKER))) {
      throw new Error(`OS_ANCHOR_STATE=${s.anchorState} exists and was not made by this benchmark; choose a directory of its own`);
    }
    await assertPortsFree([[s.swProxyPort, 'SW_PROXY_PORT'], [s.memcachePort, 'MEMCACHE_PORT'], ...SWIFT_STORAGE_PORTS.map((p) => [p, '(fixed in start-swift.sh)'] as [number, string])]);
    fs.mkdirSync(s.anchorState, { recursive: true });
    fs.writeFileSync(path.join(s.anchorState, STATE_MARKER), 'made by bench/object/run.ts; removed with its state\n');
    const target = new SwiftTarget(s, logFile);
    const t0 = performance.now();
    try {
      const r = await target.script('start-swift.sh', ['--fresh'], s.startTimeoutS);
      if (r.code !== 0) throw new Error(`start-swift.sh --fresh failed (exit ${r.code ?? r.signal}):\n${outputTail(r)}`);
      await target.authenticate();
    } catch (err) {
      await target.stop();
      throw err;
    }
    target.startS = (performance.now() - t0) / 1000;
    return target;
  }

  private async authenticate(): Promise<void> {
    const res = await httpRequest(`http://127.0.0.1:${this.s.swProxyPort}/auth/v1.0`, { headers: { 'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing' }, timeoutMs: 30000 });
    const token = res.headers['x-auth-token'];
    const url = res.headers['x-storage-url'];
    if (typeof token !== 'string' || typeof url !== 'string') throw new Error(`no token from Swift's tempauth: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    this.token = token;
    this.accountPath = new URL(url).pathname;
  }

  pids(): number[] {
    const run = path.join(this.swState, 'run');
    const files = fs.existsSync(run) ? fs.readdirSync(run).filter((f) => f.endsWith('.pid')) : [];
    return files.map((f) => readPidFile(path.join(run, f))).filter((p): p is number => p !== null);
  }

  mainThreadPid(): number | null {
    return null;
  }

  dataFiles(): number {
    // Policy 1 (`triple`) keeps its objects in <device>/objects-1.
    return countDataFiles(path.join(this.swState, 'srv'), 'objects-1');
  }

  logTail(): string {
    const log = path.join(this.swState, 'log');
    const lines: string[] = [];
    for (const f of ['proxy-server.log', 'object-server.log', 'container-server.log', 'account-server.log']) {
      const errors = tail(path.join(log, f), 400)
        .split('\n')
        .filter((l) => /ERROR|Traceback|CRITICAL/.test(l))
        .slice(-3);
      if (errors.length) lines.push(`${f}:`, ...errors.map((l) => l.slice(0, 400)));
    }
    return lines.join('\n');
  }

  /** stop-swift.sh (the servers and memcached, by their PID files). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const r = await this.script('stop-swift.sh', [], 120).catch((err: unknown) => ({ code: 1, signal: null, stdout: '', stderr: String(err) }) as CommandResult);
    if (r.code !== 0) process.stderr.write(`[bench] warning: stop-swift.sh exited with ${r.code ?? r.signal}: ${outputTail(r, 5)}\n`);
  }

  /** Synchronous last resort at exit: stop-swift.sh with a time limit. */
  emergencyStop(): void {
    if (this.stopped) return;
    this.stopped = true;
    spawnSync('bash', [path.join(this.s.anchors, 'stop-swift.sh')], { env: this.env, stdio: 'ignore', timeout: 60_000 });
  }

  /** Removes the benchmark's anchor state (rings, objects, logs). */
  removeState(): void {
    fs.rmSync(this.s.anchorState, { recursive: true, force: true });
  }
}
