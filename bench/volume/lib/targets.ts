import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { assertPortsFree } from '../../lib/http.js';
import { debVersion, haveCommand, outputTail, readPidFile, runCommand, within, type CommandResult } from '../../lib/proc.js';
import { StratusProcess, stratusEnv } from '../../lib/stratus.js';
import type { Credentials } from './client.js';
import type { Settings, TargetName } from './settings.js';

/** A cloud under test, running. */
export interface Target {
  readonly name: TargetName;
  readonly credentials: Credentials;
  /** `volume_backend_name` of the backend with real files, and of the fake one. */
  readonly backends: { file: string; fake: string };
  /** What runs, for the report (versions, processes, database, drivers). */
  readonly setup: Record<string, string | number | null>;
  /** The directory the volume files go to (to check it is on the file system of the cp reference). */
  readonly volumeDir: string;
  /** Roots of the volume service's process trees (CPU figures). */
  serverPids(): number[];
  /** Roots of its database and message bus process trees (none for Stratus' in-process SQLite and bus). */
  infraPids(): number[];
  /** The end of the service's logs (for error messages). */
  logTail(): string;
  /** Stops what this object started; safe to call twice. */
  stop(): Promise<void>;
}

/** The process of a PID file, as a list of roots (empty when it does not run). */
function pidIn(file: string): number[] {
  const pid = readPidFile(file);
  return pid === null ? [] : [pid];
}

/** The last lines of a file, or ''. */
function tail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * `stratus up` (node MAIN up --data DIR) on a new data directory: identity,
 * image and volume in one process, SQLite, the in-process bus; volume
 * backends `file` (qemu-img files in the data directory) and `fake`.
 */
export class StratusTarget implements Target {
  readonly name = 'stratus' as const;
  readonly credentials: Credentials;
  readonly backends = { file: 'file', fake: 'fake' };
  readonly setup: Record<string, string | number | null>;
  readonly volumeDir: string;
  private readonly proc: StratusProcess;

  private constructor(
    s: Settings,
    private readonly dataDir: string,
    version: string,
  ) {
    this.credentials = { authUrl: `http://127.0.0.1:${s.portBase}`, username: 'admin', password: s.stratusPassword, project: 'admin', domain: 'Default' };
    this.volumeDir = path.join(dataDir, 'volumes', 'file');
    this.setup = {
      server: `stratus up (${version}), node ${process.version}`,
      services: 'identity, image, volume (volume-api, volume-scheduler + conductor, volume agents) in one process',
      database: 'SQLite in the data directory, in-process bus (the `up` defaults)',
      backends: `file (driver file, format ${s.fileFormat}, ${this.volumeDir}); fake (driver fake, capacity 100000 GB)`,
      image_store: 'file store in the data directory',
      url: `http://127.0.0.1:${s.portBase + 2}/v3`,
    };
    this.proc = new StratusProcess(s.stratusMain);
  }

  /** Writes the configuration (the two backends), starts Stratus and waits for "Stratus is up"; stops it when that fails. */
  static async start(s: Settings, workDir: string, version: string): Promise<StratusTarget> {
    if (!fs.existsSync(s.stratusMain)) throw new Error(`${s.stratusMain} is missing: build first (./stratus --help or npx tsc -p tsconfig.json), or set STRATUS_MAIN`);
    await assertPortsFree([
      [s.portBase, 'PORT_BASE'],
      [s.portBase + 1, 'PORT_BASE'],
      [s.portBase + 2, 'PORT_BASE'],
    ]);
    const dataDir = path.join(workDir, 'stratus-data');
    const configFile = path.join(workDir, 'stratus.yaml');
    fs.writeFileSync(
      configFile,
      [
        'volume:',
        '  backends:',
        `    file: { driver: file, format: ${s.fileFormat} }`,
        '    fake: { driver: fake, capacity_gb: 100000 }',
        // As Cinder's quota_* = -1 in start-cinder.sh; the benchmark also sets the project's quotas to -1.
        '  default_quotas: { volumes: -1, snapshots: -1, gigabytes: -1, per_volume_gigabytes: -1 }',
        '',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {
      ...stratusEnv({ identityPort: s.portBase, imagePort: s.portBase + 1, volumePort: s.portBase + 2, password: s.stratusPassword }),
      STRATUS_CONFIG: configFile,
      STRATUS_LOG_LEVEL: 'warn',
    };
    const target = new StratusTarget(s, dataDir, version);
    try {
      await within(target.proc.launch(dataDir, env).ready, s.startTimeoutS * 1000, 'stratus up');
    } catch (err) {
      await target.stop();
      throw err;
    }
    return target;
  }

  serverPids(): number[] {
    const pid = this.proc.pid;
    return pid === undefined ? [] : [pid];
  }

  infraPids(): number[] {
    return [];
  }

  /** The last warnings and errors of its log (it runs with STRATUS_LOG_LEVEL=warn), or of its output when it ended early. */
  logTail(): string {
    const log = tail(path.join(this.dataDir, 'stratus.log'), 6)
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(0, 400));
    if (log.length) return ['stratus.log:', ...log].join('\n');
    return this.proc.pid === undefined ? this.proc.output.trim().split('\n').slice(-10).join('\n') : '';
  }

  /** SIGTERM, SIGKILL after 30 s; waits for the exit. */
  stop(): Promise<void> {
    return this.proc.stop();
  }
}

/** The marker start-cinder.sh leaves in a state directory it made. */
const STATE_MARKER = '.made-by-start-cinder';

/**
 * Debian's Cinder (cinder-api, cinder-scheduler, cinder-volume with the
 * `nfs` and `fake` backends), its private PostgreSQL cluster and RabbitMQ
 * node, the anchor Keystone and Glance, through
 * bench/volume/cinder/start-cinder.sh --fresh and stop-cinder.sh.
 */
export class CinderTarget implements Target {
  readonly name = 'cinder' as const;
  readonly credentials: Credentials;
  readonly backends = { file: 'nfs', fake: 'fake' };
  readonly setup: Record<string, string | number | null>;
  readonly volumeDir: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly cinderState: string;
  private stopped = false;

  private constructor(
    private readonly s: Settings,
    private readonly scripts: string,
    private readonly logFile: string,
  ) {
    this.credentials = { authUrl: `http://127.0.0.1:${s.ksPort}`, username: 'admin', password: s.ksPassword, project: 'admin', domain: 'Default' };
    this.cinderState = path.join(s.anchorState, 'cinder');
    this.volumeDir = path.join(this.cinderState, 'share');
    this.env = {
      ...process.env,
      STRATUS_ANCHORS: s.anchors,
      OS_ANCHOR_STATE: s.anchorState,
      KS_PORT: String(s.ksPort),
      KS_MEMCACHE_PORT: String(s.ksMemcachePort),
      KS_ADMIN_PASSWORD: s.ksPassword,
      GL_PORT: String(s.glPort),
      CINDER_PORT: String(s.cinderPort),
      CINDER_API_WORKERS: String(s.cinderApiWorkers),
      CINDER_FILE_FORMAT: s.fileFormat,
    };
    this.setup = {
      server: `cinder-api (eventlet, ${s.cinderApiWorkers} workers) + cinder-scheduler + cinder-volume, python3-cinder ${debVersion('python3-cinder') ?? '?'}`,
      database: 'PostgreSQL 15, private cluster, Unix socket',
      bus: `RabbitMQ ${debVersion('rabbitmq-server') ?? '?'}, private node on 127.0.0.1`,
      backends: `nfs (NfsDriver, nfs_qcow2_volumes=${s.fileFormat === 'qcow2'}, share = a local directory bind-mounted on the driver's mount point, ${this.volumeDir}); fake (cinder.tests.fake_driver.FakeLoggingVolumeDriver)`,
      image_store: `Glance ${debVersion('glance-api') ?? '?'} (anchor, filesystem store)`,
      keystone: `keystone ${debVersion('keystone') ?? '?'} (anchor, uwsgi, memcached cache)`,
      url: `http://127.0.0.1:${s.cinderPort}/v3`,
    };
  }

  /** Why Cinder cannot be run here, or null. */
  static missing(s: Settings, scripts: string): string | null {
    const files = [path.join(scripts, 'start-cinder.sh'), path.join(scripts, 'stop-cinder.sh'), path.join(s.anchors, 'start-keystone.sh'), path.join(s.anchors, 'start-glance.sh'), path.join(s.anchors, 'common.sh')].filter((f) => !fs.existsSync(f));
    if (files.length) return `missing: ${files.join(', ')} (set STRATUS_ANCHORS for the anchor scripts)`;
    const commands = ['cinder-api', 'cinder-scheduler', 'cinder-volume', 'cinder-manage', 'glance-api', 'keystone-manage', 'uwsgi_python3', 'openstack', 'memcached', 'curl', 'qemu-img', 'mount.nfs', 'sudo'].filter((c) => !haveCommand(c));
    if (commands.length) return `not installed: ${commands.join(', ')} (apt-get install -y cinder-api cinder-scheduler cinder-volume glance keystone python3-openstackclient memcached nfs-common qemu-utils sudo curl)`;
    if (!fs.existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server')) return 'not installed: rabbitmq-server (apt-get install -y rabbitmq-server)';
    if (!fs.existsSync('/usr/lib/postgresql/15/bin/pg_ctl')) return 'not installed: postgresql-15 (apt-get install -y postgresql-15)';
    if (process.getuid?.() !== 0) return 'start-cinder.sh must run as root (it bind-mounts the share; cinder-volume runs qemu-img and mount through sudo cinder-rootwrap)';
    return null;
  }

  private async script(name: string, args: string[], timeoutS: number): Promise<CommandResult> {
    const r = await runCommand('bash', [path.join(this.scripts, name), ...args], { env: this.env, timeoutMs: timeoutS * 1000 });
    try {
      fs.appendFileSync(this.logFile, `\n$ ${name} ${args.join(' ')} -> ${r.code ?? r.signal}\n${r.stdout}${r.stderr}`);
    } catch {
      // The work directory is gone (removed after an abort).
    }
    return r;
  }

  /**
   * Starts Keystone and Glance (when not running) and a new Cinder with a new
   * database. Refuses a state directory that start-cinder.sh did not make,
   * and ports that something else listens on. Stops everything again when
   * the start fails.
   */
  static async start(s: Settings, scripts: string, logFile: string): Promise<CinderTarget> {
    if (fs.existsSync(s.anchorState) && !fs.existsSync(path.join(s.anchorState, STATE_MARKER))) {
      throw new Error(`OS_ANCHOR_STATE=${s.anchorState} exists and was not made by start-cinder.sh; choose a directory of its own`);
    }
    const target = new CinderTarget(s, scripts, logFile);
    await assertPortsFree([
      [s.ksPort, 'KS_PORT'],
      [s.ksMemcachePort, 'KS_MEMCACHE_PORT'],
      [s.glPort, 'GL_PORT'],
      [s.cinderPort, 'CINDER_PORT'],
    ]);
    try {
      const r = await target.script('start-cinder.sh', ['--fresh'], s.startTimeoutS);
      if (r.code !== 0) throw new Error(`start-cinder.sh --fresh failed (exit ${r.code ?? r.signal}):\n${outputTail(r)}`);
    } catch (err) {
      await target.stop();
      throw err;
    }
    return target;
  }

  serverPids(): number[] {
    return ['cinder-api', 'cinder-scheduler', 'cinder-volume'].flatMap((svc) => pidIn(path.join(this.cinderState, `${svc}.pid`)));
  }

  infraPids(): number[] {
    return [...pidIn(path.join(this.cinderState, 'pg', 'data', 'postmaster.pid')), ...pidIn(path.join(this.cinderState, 'rabbit', 'rabbit.pid'))];
  }

  logTail(): string {
    const log = path.join(this.cinderState, 'log');
    const lines: string[] = [];
    for (const f of ['cinder-volume.log', 'cinder-scheduler.log', 'cinder-api.log']) {
      const errors = tail(path.join(log, f), 400)
        .split('\n')
        .filter((l) => / (ERROR|CRITICAL) /.test(l))
        .slice(-4);
      if (errors.length) lines.push(`${f}:`, ...errors.map((l) => l.slice(0, 400)));
    }
    return lines.join('\n');
  }

  /** stop-cinder.sh: Cinder, PostgreSQL, RabbitMQ, the bind mount, and Glance and Keystone when start-cinder.sh started them. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const r = await this.script('stop-cinder.sh', [], 180).catch((err: unknown) => ({ code: 1, signal: null, stdout: '', stderr: String(err) }) as CommandResult);
    if (r.code !== 0) process.stderr.write(`[bench] warning: stop-cinder.sh exited with ${r.code ?? r.signal}: ${outputTail(r, 5)}\n`);
  }

  /** Synchronous last resort: stop-cinder.sh with a time limit. */
  emergencyStop(): void {
    if (this.stopped) return;
    this.stopped = true;
    spawnSync('bash', [path.join(this.scripts, 'stop-cinder.sh')], { env: this.env, stdio: 'ignore', timeout: 120_000 });
  }

  /** Removes the state (Cinder's database, volume files, logs); the whole state directory when `all` (Keystone and Glance too). */
  removeState(all: boolean): void {
    fs.rmSync(all ? this.s.anchorState : this.cinderState, { recursive: true, force: true });
  }
}
