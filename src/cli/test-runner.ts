import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePackages } from './packages.js';

/** The repository root (this file is dist/src/cli/test-runner.js). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DIST = path.join(ROOT, 'dist');

export const TEST_PG_URL = 'postgres://stratus:stratus@127.0.0.1:5432/{service}';
export const TEST_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/';

const log = (line: string): void => {
  process.stdout.write(`[stratus test] ${line}\n`);
};

function run(cmd: string, args: string[], options: SpawnSyncOptions = {}): { status: number; stdout: string } {
  const res = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
  return { status: res.status ?? 1, stdout: `${res.stdout ?? ''}${res.stderr ?? ''}` };
}

/** Installs the Debian packages the suite needs when they are missing (as root). */
function ensureTestPackages(): void {
  ensurePackages(
    [
      ['openstack', 'python3-openstackclient'],
      ['pg_ctlcluster', 'postgresql'],
      ['rabbitmq-server', 'rabbitmq-server'],
      ['tempest', 'tempest python3-tempest'],
      ['qemu-img', 'qemu-utils'],
      ['swift', 'python3-swiftclient'],
      ['aws', 'awscli'],
      ['curl', 'curl'],
      // Real guests (test/qemu-cli.test.ts): QEMU, config drives, the test image's build tools, keys.
      ['qemu-system-x86_64', 'qemu-system-x86'],
      ['genisoimage', 'genisoimage'],
      ['syslinux', 'syslinux syslinux-common'],
      ['mcopy', 'mtools'],
      ['mkfs.vfat', 'dosfstools'],
      ['cpio', 'cpio'],
      ['zstd', 'zstd'],
      ['ssh-keygen', 'openssh-client'],
      // The Linux network data plane (src/network/linux, test/network-dataplane.test.ts) and its tests' packets.
      ['dnsmasq', 'dnsmasq-base'],
      ['dhcp_release', 'dnsmasq-utils'],
      ['radvd', 'radvd'],
      ['iptables-restore', 'iptables'],
      ['nft', 'nftables'],
      ['conntrack', 'conntrack'],
      ['busybox', 'busybox-static'],
      ['ping', 'iputils-ping'],
    ],
    log,
  );
}

/** Starts Debian's PostgreSQL cluster (loopback only by default) and makes the `stratus` role. */
function ensurePostgres(): void {
  const clusters = run('pg_lsclusters', ['--no-header']).stdout.trim().split('\n').filter(Boolean);
  const first = clusters[0]?.split(/\s+/);
  if (!first) {
    const version = run('sh', ['-c', "ls /usr/lib/postgresql | sort -n | tail -1"]).stdout.trim();
    log(`creating PostgreSQL ${version} cluster...`);
    if (run('pg_createcluster', [version, 'main', '--start']).status !== 0) throw new Error('pg_createcluster failed');
  } else if (first[3] !== 'online') {
    log(`starting PostgreSQL ${first[0]}/${first[1]}...`);
    // After an unclean stop, recovery first fsyncs the whole data directory,
    // which can take minutes: pg_ctl's default 60 s wait is not enough.
    const res = run('pg_ctlcluster', [first[0] ?? '15', first[1] ?? 'main', 'start', '--', '-t', String(PG_START_WAIT_S)]);
    if (res.status !== 0 && !awaitPostgres(first[2] ?? '5432')) throw new Error(`pg_ctlcluster start failed: ${res.stdout}`);
  }
  const sql = "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stratus') THEN CREATE ROLE stratus LOGIN SUPERUSER PASSWORD 'stratus'; END IF; END$$;";
  for (let i = 0; i < 30; i++) {
    const res = run('runuser', ['-u', 'postgres', '--', 'psql', '-q', '-c', sql]);
    if (res.status === 0) return;
    spawnSync('sleep', ['1']);
  }
  throw new Error('PostgreSQL did not accept the stratus role');
}

const PG_START_WAIT_S = 900;

/** Waits (up to PG_START_WAIT_S) for a PostgreSQL that is still starting to accept connections. */
function awaitPostgres(port: string): boolean {
  for (let i = 0; i < PG_START_WAIT_S; i++) {
    if (run('pg_isready', ['-q', '-h', '127.0.0.1', '-p', port]).status === 0) return true;
    spawnSync('sleep', ['1']);
  }
  return false;
}

/**
 * Drops the databases the PostgreSQL stage made (`<service>_stratus<unique>`,
 * see `testConfig`): left behind they fill the disk run after run and make
 * crash recovery slow.
 */
function dropTestDatabases(): void {
  const sql = "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname) FROM pg_database WHERE datname ~ '^[a-z]+_stratus[a-z0-9]+$' \\gexec";
  const res = run('runuser', ['-u', 'postgres', '--', 'psql', '-q', '-v', 'ON_ERROR_STOP=0'], { input: sql, stdio: ['pipe', 'pipe', 'pipe'] });
  if (res.status !== 0) log(`could not drop the test databases: ${res.stdout.trim()}`);
}

/**
 * Starts RabbitMQ on loopback only (AMQP, distribution and epmd ports) when it
 * is not running, and starts its application when the node runs with it
 * stopped (`rabbitmqctl stop_app`, which an interrupted broker-restart test
 * leaves behind): such a node answers `ping` but takes no connections.
 * Every call to RabbitMQ's tools is bounded, so a wedged node fails the run
 * with a message instead of hanging it.
 */
function ensureRabbit(): void {
  const bounded = { timeout: 60_000 };
  if (run('rabbitmq-diagnostics', ['-q', '--timeout', '30', 'ping'], bounded).status === 0) {
    if (run('rabbitmq-diagnostics', ['-q', '--timeout', '30', 'check_running'], bounded).status === 0) return;
    log('RabbitMQ runs with its application stopped: starting it...');
    run('rabbitmqctl', ['-q', 'start_app'], { timeout: 180_000 });
  } else {
    log('starting RabbitMQ (loopback)...');
    const env = {
      ...process.env,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_DIST_PORT: '25672',
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
    run('rabbitmq-server', ['-detached'], { env, ...bounded });
  }
  // Right after -detached the node may not answer yet: await_startup then fails at once.
  for (let i = 0; i < 90; i++) {
    if (run('rabbitmqctl', ['-q', '--timeout', '10', 'await_startup'], { timeout: 20_000 }).status === 0) return;
    spawnSync('sleep', ['1']);
  }
  throw new Error('RabbitMQ did not start within 90 attempts (see rabbitmq-diagnostics status)');
}

function findTests(dir: string, filter: (file: string) => boolean): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findTests(full, filter));
    else if (entry.name.endsWith('.test.js') && filter(full)) out.push(full);
  }
  return out.sort();
}

function nodeTest(title: string, files: string[], env: Record<string, string>): boolean {
  log(`${title}: ${files.length} files`);
  const res = spawnSync(process.execPath, ['--enable-source-maps', '--test', '--test-reporter=spec', ...files], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
  const ok = res.status === 0;
  log(`${title}: ${ok ? 'passed' : 'FAILED'}`);
  return ok;
}

/**
 * The whole suite: unit tests (SQLite, in-memory bus and the AMQP tests on a
 * real RabbitMQ), every service's tests again on PostgreSQL and
 * RabbitMQ, then end-to-end tests that drive `./stratus up` with the real
 * `openstack` CLI. Returns the exit code.
 */
export async function runTests(only?: string): Promise<number> {
  const want = (part: string): boolean => !only || only === part;
  ensureTestPackages();
  ensurePostgres();
  ensureRabbit();
  const services = { STRATUS_TEST_AMQP_URL: TEST_AMQP_URL };
  const results: [string, boolean][] = [];
  const src = path.join(DIST, 'src');
  if (want('unit')) results.push(['unit (SQLite, memory bus, RabbitMQ)', nodeTest('unit', findTests(src, () => true), services)]);
  if (want('postgres')) {
    // The Linux data plane's tests use no database: they run once, in the unit stage.
    const onPg = findTests(src, (f) => !f.includes(`${path.sep}network${path.sep}linux${path.sep}`) && [`${path.sep}identity${path.sep}`, `${path.sep}image${path.sep}`, `${path.sep}network${path.sep}`, `${path.sep}placement${path.sep}`, `${path.sep}compute${path.sep}`, `${path.sep}volume${path.sep}`, `${path.sep}db${path.sep}`].some((part) => f.includes(part)));
    dropTestDatabases();
    results.push(['identity, image, network, placement, compute and volume on PostgreSQL + RabbitMQ', nodeTest('postgres', onPg, { ...services, STRATUS_TEST_DATABASE_URL: TEST_PG_URL, STRATUS_TEST_BUS_URL: TEST_AMQP_URL })]);
    dropTestDatabases();
  }
  const e2e = path.join(DIST, 'test');
  if (want('e2e')) results.push(['end-to-end (openstack, swift and aws CLIs)', nodeTest('e2e', findTests(e2e, (f) => !f.includes('tempest')), services)]);
  if (want('tempest')) results.push(['Tempest identity v3, image v2, network v2.0, compute v2.1, block storage v3 and object storage v1', nodeTest('tempest', findTests(e2e, (f) => f.includes('tempest')), services)]);
  for (const [name, ok] of results) log(`${ok ? 'ok  ' : 'FAIL'} ${name}`);
  return results.every(([, ok]) => ok) ? 0 : 1;
}
