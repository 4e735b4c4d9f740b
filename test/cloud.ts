import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/core/testing.js';

/** The repository root (this file runs from dist/test/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const STRATUS = path.join(ROOT, 'stratus');



/** A user of the cloud with a role on a project of its own (`projectId` is set by `Cloud.addMember`). */
export interface Account {
  user: string;
  password: string;
  project: string;
  projectId: string;
}

/** What a CLI run gives back. */
export type CliResult = { status: number; stdout: string; stderr: string };

/** A server as `openstack server show -f json` gives it. */
export type ServerView = { id: string; name: string; status: string; fault?: unknown; addresses?: unknown } & Record<string, unknown>;

/** A `stratus up` child process on a data directory of its own and free ports. */
export class Cloud {
  private child: ChildProcess | null = null;
  output = '';
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly dataDir: string,
    readonly port: number,
    readonly adminPassword: string | null,
    readonly imagePort = 0,
    readonly networkPort = 0,
    readonly placementPort = 0,
    readonly computePort = 0,
    readonly volumePort = 0,
  ) {
    this.env = {
      ...process.env,
      STRATUS_IDENTITY__PORT: String(port),
      STRATUS_IMAGE__PORT: String(imagePort),
      STRATUS_NETWORK__PORT: String(networkPort),
      STRATUS_PLACEMENT__PORT: String(placementPort),
      STRATUS_COMPUTE__PORT: String(computePort),
      STRATUS_VOLUME__PORT: String(volumePort),
      STRATUS_METRICS__ENABLED: 'false',
      // The control-plane tests run fake guests; test/qemu-cli.test.ts asks for real ones.
      STRATUS_COMPUTE__VIRT_DRIVER: 'fake',
      STRATUS_NETWORK__DRIVER: 'fake',
      STRATUS_COMPUTE__TEST_IMAGE__BUILD: 'false',
      ...(adminPassword ? { STRATUS_ADMIN_PASSWORD: adminPassword } : {}),
    };
  }

  /** A cloud on a fresh data directory and free ports; `extraEnv` adds to its environment (e.g. `STRATUS_COMPUTE__FAKE_HOSTS`). */
  static async create(adminPassword: string | null = 'e2e-admin-secret', extraEnv: NodeJS.ProcessEnv = {}): Promise<Cloud> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-e2e-'));
    const cloud = new Cloud(path.join(dir, 'data'), await freePort(), adminPassword, await freePort(), await freePort(), await freePort(), await freePort(), await freePort());
    // Object storage: the proxy and this node's three storage servers (the default rings are built on these ports).
    cloud.objectPort = await freePort();
    Object.assign(cloud.env, {
      STRATUS_OBJECT__PORT: String(cloud.objectPort),
      STRATUS_OBJECT__STORAGE__OBJECT_PORT: String(await freePort()),
      STRATUS_OBJECT__STORAGE__CONTAINER_PORT: String(await freePort()),
      STRATUS_OBJECT__STORAGE__ACCOUNT_PORT: String(await freePort()),
      STRATUS_COMPUTE__METADATA__PORT: String(await freePort()),
      STRATUS_COMPUTE__VNC__PROXY_PORT: String(await freePort()),
    });
    Object.assign(cloud.env, extraEnv);
    return cloud;
  }

  get authUrl(): string {
    return `http://127.0.0.1:${this.port}/v3`;
  }

  /** The image API's root URL (Glance v2 lives under `/v2`). */
  get imageUrl(): string {
    return `http://127.0.0.1:${this.imagePort}`;
  }

  /** The network API's root URL (Neutron v2.0 lives under `/v2.0`). */
  get networkUrl(): string {
    return `http://127.0.0.1:${this.networkPort}`;
  }

  /** The compute API's root URL (Nova v2.1 lives under `/v2.1`). */
  get computeUrl(): string {
    return `http://127.0.0.1:${this.computePort}`;
  }

  /** The Block Storage API's root URL (v3 lives under `/v3`). */
  get volumeUrl(): string {
    return `http://127.0.0.1:${this.volumePort}`;
  }

  /** Port of the object proxy (Swift v1 under `/v1`, and S3), when `create` chose one. */
  objectPort = 0;

  /** The object proxy's root URL. */
  get objectUrl(): string {
    return `http://127.0.0.1:${this.objectPort}`;
  }

  /** The placement API's root URL. */
  get placementUrl(): string {
    return `http://127.0.0.1:${this.placementPort}`;
  }

  /** The process id of the running `stratus up` (to read its `/proc/<pid>/status`); undefined when stopped. */
  get pid(): number | undefined {
    return this.child && this.child.exitCode === null ? this.child.pid : undefined;
  }

  /** Starts `stratus up`; resolves when it says it is up (rejects if it exits first). */
  async start(): Promise<void> {
    this.output = '';
    // Through the launcher, exactly as a user starts it (it execs node with its flags).
    const child = spawn(STRATUS, ['up', '--data', this.dataDir], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        this.output += chunk.toString();
        // The last line of the start-up message.
        if (this.output.includes('\nLogs: ')) resolve();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => reject(new Error(`stratus up exited with ${code}: ${this.output}`)));
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
    this.child = null;
  }

  /** Kills `stratus up` with SIGKILL, as a crash would (nothing runs its shutdown), and waits for the exit. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
    this.child = null;
  }

  /** Runs the real `openstack` CLI against this cloud; returns status and output. */
  openstack(args: string[], extraEnv: NodeJS.ProcessEnv = {}): CliResult {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, OS_CLIENT_CONFIG_FILE: path.join(this.dataDir, 'clouds.yaml'), ...extraEnv };
    const res = spawnSync('openstack', args, { env, encoding: 'utf8', timeout: 120_000 });
    return { status: res.status ?? 1, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
  }

  /** `openstack --os-cloud stratus ... -f json`, parsed; throws with the CLI's output on failure. */
  json<T = any>(args: string[], extraEnv: NodeJS.ProcessEnv = {}): T {
    const res = this.openstack(['--os-cloud', 'stratus', ...args, '-f', 'json'], extraEnv);
    if (res.status !== 0) throw new Error(`openstack ${args.join(' ')} failed (${res.status}): ${res.stderr}${res.stdout}`);
    return JSON.parse(res.stdout) as T;
  }

  /** `openstack --os-cloud stratus ARGS` as the admin, which must succeed; its stdout. */
  ok(args: string[]): string {
    const res = this.openstack(['--os-cloud', 'stratus', ...args]);
    if (res.status !== 0) throw new Error(`openstack ${args.join(' ')} failed (${res.status}): ${res.stderr}${res.stdout}`);
    return res.stdout;
  }

  /** Polls `server show` until the server has `status` (bounded: 150 s); throws if it goes to ERROR first. */
  async waitForServer(name: string, status: string): Promise<ServerView> {
    let server = this.json<ServerView>(['server', 'show', name]);
    for (let i = 0; i < 600 && server.status !== status; i++) {
      if (server.status === 'ERROR') throw new Error(`${name} went to ERROR waiting for ${status}: ${JSON.stringify(server.fault)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      server = this.json<ServerView>(['server', 'show', name]);
    }
    if (server.status !== status) throw new Error(`${name} is ${server.status}, not ${status}`);
    return server;
  }

  /**
   * The environment that logs the OpenStack clients (`openstack`, `glance`)
   * in as a user with a project-scoped password token, without clouds.yaml.
   */
  rc(account: Pick<Account, 'user' | 'password' | 'project'>): NodeJS.ProcessEnv {
    return {
      OS_AUTH_URL: this.authUrl,
      OS_USERNAME: account.user,
      OS_PASSWORD: account.password,
      OS_PROJECT_NAME: account.project,
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
      OS_IDENTITY_API_VERSION: '3',
      OS_IMAGE_API_VERSION: '2',
      OS_CLIENT_CONFIG_FILE: '/dev/null',
    };
  }

  /** `openstack ...` as an account. */
  asUser(account: Account, args: string[]): CliResult {
    return this.openstack(args, this.rc(account));
  }

  /** `openstack ... -f json` as an account, parsed; throws with the CLI's output on failure. */
  asUserJson<T = any>(account: Account, args: string[]): T {
    const res = this.asUser(account, [...args, '-f', 'json']);
    if (res.status !== 0) throw new Error(`openstack ${args.join(' ')} as ${account.user} failed (${res.status}): ${res.stderr}${res.stdout}`);
    return JSON.parse(res.stdout) as T;
  }

  /** Makes the account's project and user (as admin), gives the user `member` on the project, and sets `projectId`. */
  addMember(account: Account): void {
    account.projectId = this.json<{ id: string }>(['project', 'create', account.project]).id;
    this.json(['user', 'create', '--password', account.password, account.user]);
    const added = this.openstack(['--os-cloud', 'stratus', 'role', 'add', '--project', account.project, '--user', account.user, 'member']);
    if (added.status !== 0) throw new Error(`role add member for ${account.user} failed (${added.status}): ${added.stderr}`);
  }
}

/**
 * The environment of a cloud with real guests and the Linux network data
 * plane, with its own external bridge, public range and packet-filter prefix
 * so that it meets nothing else on the host (198.18.0.0/15 is set aside for
 * tests of network devices, RFC 2544: no real network uses it).
 */
export function realNetworkEnv(): { env: NodeJS.ProcessEnv; chainPrefix: string; externalBridge: string; publicCidr: string } {
  const suffix = randomBytes(3).toString('hex');
  const octet = randomInt(1, 250);
  const chainPrefix = `stx${suffix}`;
  const externalBridge = `brx${suffix}`;
  return {
    chainPrefix,
    externalBridge,
    publicCidr: `198.18.${octet}.0/24`,
    env: {
      STRATUS_COMPUTE__VIRT_DRIVER: 'qemu',
      STRATUS_COMPUTE__TEST_IMAGE__BUILD: 'true',
      STRATUS_NETWORK__DRIVER: 'linux',
      STRATUS_NETWORK__LINUX__CHAIN_PREFIX: chainPrefix,
      STRATUS_NETWORK__LINUX__BRIDGE_MAPPINGS__PUBLIC: externalBridge,
      STRATUS_NETWORK__PUBLIC_NETWORK__CIDR: `198.18.${octet}.0/24`,
      STRATUS_NETWORK__PUBLIC_NETWORK__GATEWAY_IP: `198.18.${octet}.1`,
      STRATUS_NETWORK__PUBLIC_NETWORK__ALLOCATION_POOL: `198.18.${octet}.10-198.18.${octet}.250`,
    },
  };
}

/** `stratus cleanup` of a stopped cloud: its guests, namespaces, devices and rules. */
export function cleanupCloud(cloud: Cloud): string {
  const res = spawnSync(path.join(ROOT, 'stratus'), ['cleanup', '--data', cloud.dataDir], { env: cloud.env, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`stratus cleanup failed: ${res.stdout}${res.stderr}`);
  return res.stdout;
}
