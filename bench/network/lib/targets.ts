import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { assertPortsFree } from '../../lib/http.js';
import { commandLine, debVersion, haveCommand, outputTail, readPidFile, runCommand, within, type CommandResult } from '../../lib/proc.js';
import { StratusProcess, stratusEnv } from '../../lib/stratus.js';
import type { Credentials } from './client.js';
import type { Settings, TargetName } from './settings.js';

/** A cloud under test, running. */
export interface Target {
  readonly name: TargetName;
  readonly credentials: Credentials;
  /** What runs, for the report (versions, workers, database). */
  readonly setup: Record<string, string | number | null>;
  /** Roots of the API server's process trees (CPU and memory figures). */
  serverPids(): number[];
  /** Roots of the database server's process trees (none for an in-process SQLite). */
  dbPids(): number[];
  /** Stops what this object started; safe to call twice. */
  stop(): Promise<void>;
}

/** The process of a PID file, as a list of roots (empty when it does not run). */
function pidIn(file: string): number[] {
  const pid = readPidFile(file);
  return pid === null ? [] : [pid];
}

/** The marker start-neutron.sh leaves in a state directory it made. */
const STATE_MARKER = '.made-by-start-neutron';

/**
 * Debian's neutron-server, its private PostgreSQL cluster and the anchor
 * Keystone, through bench/network/neutron/start-neutron.sh --fresh (a new
 * database each run) and stop-neutron.sh.
 */
export class NeutronTarget implements Target {
  readonly name = 'neutron' as const;
  readonly credentials: Credentials;
  readonly setup: Record<string, string | number | null>;
  private readonly env: NodeJS.ProcessEnv;
  private readonly neutronState: string;
  private stopped = false;

  private constructor(
    private readonly s: Settings,
    private readonly scripts: string,
    private readonly logFile: string,
  ) {
    this.credentials = { authUrl: `http://127.0.0.1:${s.ksPort}`, username: 'admin', password: s.ksPassword, project: 'admin', domain: 'Default' };
    this.neutronState = path.join(s.anchorState, 'neutron');
    this.env = {
      ...process.env,
      STRATUS_ANCHORS: s.anchors,
      OS_ANCHOR_STATE: s.anchorState,
      KS_PORT: String(s.ksPort),
      KS_MEMCACHE_PORT: String(s.ksMemcachePort),
      KS_ADMIN_PASSWORD: s.ksPassword,
      NEUTRON_PORT: String(s.neutronPort),
      NEUTRON_API_WORKERS: String(s.neutronApiWorkers),
    };
    const pg = commandLine('/usr/lib/postgresql/15/bin/postgres', ['--version']);
    this.setup = {
      server: `neutron-server (eventlet), python3-neutron ${debVersion('python3-neutron') ?? '?'}`,
      api_workers: s.neutronApiWorkers,
      rpc_workers: 1,
      plugin: 'ml2 (flat,vlan,vxlan; tenant vxlan; no mechanism driver; port_security) + router',
      database: `PostgreSQL (${pg ?? '?'}), Unix socket, private cluster`,
      transport: 'oslo.messaging fake:// (no agents)',
      keystone: `keystone ${debVersion('keystone') ?? '?'} (uwsgi, 2 processes, memcached cache)`,
      url: `http://127.0.0.1:${s.neutronPort}`,
    };
  }

  /** Why Neutron cannot be run here, or null. */
  static missing(s: Settings, scripts: string): string | null {
    const files = [path.join(scripts, 'start-neutron.sh'), path.join(scripts, 'stop-neutron.sh'), path.join(s.anchors, 'start-keystone.sh'), path.join(s.anchors, 'common.sh')].filter((f) => !fs.existsSync(f));
    if (files.length) return `missing: ${files.join(', ')} (set STRATUS_ANCHORS for the anchor scripts)`;
    const commands = ['neutron-server', 'neutron-db-manage', 'keystone-manage', 'uwsgi_python3', 'openstack', 'memcached', 'curl'].filter((c) => !haveCommand(c));
    if (commands.length) return `not installed: ${commands.join(', ')} (apt-get install -y neutron-server keystone python3-openstackclient memcached curl)`;
    return null;
  }

  private async script(name: string, args: string[], timeoutS: number): Promise<CommandResult> {
    const r = await runCommand('bash', [path.join(this.scripts, name), ...args], { env: this.env, timeoutMs: timeoutS * 1000 });
    try {
      fs.appendFileSync(this.logFile, `\n$ ${name} ${args.join(' ')} -> ${r.code ?? r.signal}\n${r.stdout}${r.stderr}`);
    } catch {
      // The work directory is gone (removed after an abort): the output is not needed any more.
    }
    return r;
  }

  /**
   * Starts Keystone (when not running) and a new neutron-server with a new
   * database. Refuses a state directory that start-neutron.sh did not make,
   * and ports that something else listens on. Stops everything again when
   * the start fails.
   */
  static async start(s: Settings, scripts: string, logFile: string): Promise<NeutronTarget> {
    if (fs.existsSync(s.anchorState) && !fs.existsSync(path.join(s.anchorState, STATE_MARKER))) {
      throw new Error(`OS_ANCHOR_STATE=${s.anchorState} exists and was not made by start-neutron.sh; choose a directory of its own`);
    }
    const target = new NeutronTarget(s, scripts, logFile);
    const ksRunning = pidIn(path.join(s.anchorState, 'keystone', 'uwsgi.pid')).length > 0;
    const ours = pidIn(path.join(target.neutronState, 'neutron-server.pid')).length > 0;
    // A Keystone or neutron-server of this state directory that runs already holds its own ports.
    await assertPortsFree([
      ...(ksRunning ? [] : ([[s.ksPort, 'KS_PORT'], [s.ksMemcachePort, 'KS_MEMCACHE_PORT']] as [number, string][])),
      ...(ours ? [] : ([[s.neutronPort, 'NEUTRON_PORT']] as [number, string][])),
    ]);
    try {
      const r = await target.script('start-neutron.sh', ['--fresh'], 600);
      if (r.code !== 0) throw new Error(`start-neutron.sh --fresh failed (exit ${r.code ?? r.signal}):\n${outputTail(r)}`);
    } catch (err) {
      await target.stop();
      throw err;
    }
    return target;
  }

  serverPids(): number[] {
    return pidIn(path.join(this.neutronState, 'neutron-server.pid'));
  }

  dbPids(): number[] {
    return pidIn(path.join(this.neutronState, 'pg', 'data', 'postmaster.pid'));
  }

  /** stop-neutron.sh: neutron-server, PostgreSQL, and Keystone when start-neutron.sh started it. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const r = await this.script('stop-neutron.sh', [], 120).catch((err: unknown) => ({ code: 1, signal: null, stdout: '', stderr: String(err) }) as CommandResult);
    if (r.code !== 0) process.stderr.write(`[bench] warning: stop-neutron.sh exited with ${r.code ?? r.signal}: ${outputTail(r, 5)}\n`);
  }

  /** Synchronous last resort: stop-neutron.sh with a time limit. */
  emergencyStop(): void {
    if (this.stopped) return;
    spawnSync('bash', [path.join(this.scripts, 'stop-neutron.sh')], { env: this.env, stdio: 'ignore', timeout: 60000 });
  }

  /** Removes Neutron's state (database, logs); the whole state directory when `all`. */
  removeState(all: boolean): void {
    fs.rmSync(all ? this.s.anchorState : this.neutronState, { recursive: true, force: true });
  }
}

/** Network settings that only help the benchmark; a Stratus that does not know them starts without them. */
function stratusOptionalEnv(): NodeJS.ProcessEnv {
  return {
    // As Neutron's [quotas] in start-neutron.sh: the benchmark makes 10,000+ ports in one project.
    STRATUS_NETWORK__DEFAULT_QUOTAS__NETWORK: '-1',
    STRATUS_NETWORK__DEFAULT_QUOTAS__SUBNET: '-1',
    STRATUS_NETWORK__DEFAULT_QUOTAS__PORT: '-1',
    // As notify_nova_on_port_*_changes = false there: no compute to tell.
    STRATUS_NETWORK__NOTIFY_COMPUTE: 'false',
  };
}

/** `stratus up` (node MAIN up --data DIR) on a new data directory: identity, image and network in one process. */
export class StratusTarget implements Target {
  readonly name = 'stratus' as const;
  readonly credentials: Credentials;
  readonly setup: Record<string, string | number | null>;
  private readonly proc: StratusProcess;

  private constructor(
    s: Settings,
    readonly dataDir: string,
    version: string,
  ) {
    this.credentials = { authUrl: `http://127.0.0.1:${s.stratusIdentityPort}`, username: 'admin', password: s.stratusPassword, project: 'admin', domain: 'Default' };
    this.setup = {
      server: `stratus up (${version}), node ${process.version}`,
      processes: 1,
      database: 'SQLite in the data directory (the `up` default)',
      network_driver: 'fake (the default: IPAM and database only)',
      url: `http://127.0.0.1:${s.stratusNetworkPort}`,
    };
    this.proc = new StratusProcess(s.stratusMain);
  }

  /**
   * Starts Stratus and waits for "Stratus is up" (at most `timeoutS`). When it
   * refuses one of the optional network settings (an older or newer
   * configuration), starts once more without them. Stops it when the start fails.
   */
  static async start(s: Settings, dataDir: string, version: string, timeoutS = 120): Promise<{ target: StratusTarget; note: string }> {
    if (!fs.existsSync(s.stratusMain)) throw new Error(`${s.stratusMain} is missing: build first (./stratus --help), or set STRATUS_MAIN`);
    await assertPortsFree([
      [s.stratusIdentityPort, 'STRATUS_PORT'],
      [s.stratusImagePort, 'STRATUS_IMAGE_PORT'],
      [s.stratusNetworkPort, 'STRATUS_NETWORK_PORT'],
    ]);
    const base = stratusEnv({ identityPort: s.stratusIdentityPort, imagePort: s.stratusImagePort, networkPort: s.stratusNetworkPort, password: s.stratusPassword });
    const target = new StratusTarget(s, dataDir, version);
    try {
      await target.launch({ ...base, ...stratusOptionalEnv() }, timeoutS);
      return { target, note: '' };
    } catch (err) {
      await target.stop();
      const text = err instanceof Error ? err.message : String(err);
      if (!/unknown option|not a section/.test(text)) throw err;
      fs.rmSync(dataDir, { recursive: true, force: true });
      await target.launch(base, timeoutS).catch(async (again: unknown) => {
        await target.stop();
        throw again;
      });
      const line = text.split('\n').find((l) => /unknown option|not a section/.test(l)) ?? text;
      return { target, note: `started without the benchmark's network settings (quotas -1, notify_compute false): ${line.trim()}` };
    }
  }

  private async launch(env: NodeJS.ProcessEnv, timeoutS: number): Promise<void> {
    await within(this.proc.launch(this.dataDir, env).ready, timeoutS * 1000, 'stratus up');
  }

  serverPids(): number[] {
    const pid = this.proc.pid;
    return pid === undefined ? [] : [pid];
  }

  dbPids(): number[] {
    return [];
  }

  /** SIGTERM, SIGKILL after 30 s; waits for the exit. */
  stop(): Promise<void> {
    return this.proc.stop();
  }
}

/** A cloud that runs already (NETBENCH_AUTH_URL): nothing to start or stop. */
export class ExternalTarget implements Target {
  readonly name = 'external' as const;
  readonly credentials: Credentials;
  readonly setup: Record<string, string | number | null>;

  constructor(s: Settings) {
    this.credentials = { ...s.external };
    this.setup = { server: `already running, identity ${s.external.authUrl}` };
  }

  serverPids(): number[] {
    return [];
  }

  dbPids(): number[] {
    return [];
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
