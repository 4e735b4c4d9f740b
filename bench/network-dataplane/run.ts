/**
 * Network data plane benchmark, on this machine, with real guests (qemu virt
 * driver) and the Linux network driver (bridge agent, DHCP and router
 * namespaces, security groups as iptables), on a `stratus up` of its own
 * external bridge (`brx<6 hex>`), public range (198.18.<n>.0/24) and
 * packet-filter prefix (`stx<6 hex>`):
 *
 * 1. COUNT boots, one after the other, each timed from `POST /servers` to
 *    ACTIVE, to the guest's `stratus-guest: ready` on its serial console, and
 *    to the first `ssh root@<floating IP> true` that exits 0; the floating IP
 *    (allocated once) is associated as soon as the server is ACTIVE, inside
 *    the timed span. One warm-up boot first, not counted.
 * 2. PORTS ports bound to this host in one bulk `POST /v2.0/ports`, then their
 *    taps made at once (as QEMU's would be): ports plugged per second, from the
 *    first tap to every port ACTIVE.
 *
 * Prints medians next to bench/boot's newest boot-to-ready figures (issue
 * #8), so that the network's share of a boot shows. Needs root. Not part of
 * the test suite.
 *
 *   bash bench/network-dataplane/run.sh                        (builds Stratus, then runs this file)
 *   COUNT=2 PORTS=20 bash bench/network-dataplane/run.sh       (quick)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tapName } from '../../src/network/linux/names.js';
import { CloudApi, freePort, hasReadyMarker, pollUntil } from '../lib/guests.js';
import { now } from '../lib/proc.js';
import { gitInfo, hostInfo, loadAvg, message, onInterrupt, runMain, say, writeResults } from '../lib/run.js';
import { intEnv, UsageError } from '../lib/settings.js';
import { summarize, type Summary } from '../lib/stats.js';
import { StratusProcess, stratusEnv } from '../lib/stratus.js';
import { markdownTable } from '../lib/table.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(process.env.STRATUS_REPO || (path.basename(path.resolve(HERE, '..', '..')) === 'dist' ? path.resolve(HERE, '..', '..', '..') : path.resolve(HERE, '..', '..')));
const RESULTS_DIR = path.join(ROOT, 'bench', 'network-dataplane', 'results');
const BOOT_RESULTS_DIR = path.join(ROOT, 'bench', 'boot', 'results');

const PASSWORD = 'bench-dataplane-secret';
/** Bounds: a mistyped setting must not boot a thousand guests or fill the subnet. */
const MAX_COUNT = 50;
const MAX_PORTS = 400;
/** A new ssh attempt this often while none has got in, at most SSH_IN_FLIGHT at once: the result is within ~0.2 s, not within a connect timeout. */
const SSH_EVERY_MS = 200;
const SSH_IN_FLIGHT = 10;

/** The settings (environment), read once. */
interface Settings {
  count: number;
  ports: number;
  flavor: string;
  stepTimeoutS: number;
  totalTimeoutS: number;
  /** `stratus up`'s log level (LOG_LEVEL, `warn`). */
  logLevel: string;
  /** Where `stratus up`'s log is copied before the work directory goes (KEEP_LOG; empty: nowhere). */
  keepLog: string;
}

/** The settings from the environment; UsageError for one out of bounds. */
function readSettings(): Settings {
  const s = { count: intEnv('COUNT', 10), ports: intEnv('PORTS', 50), flavor: process.env.FLAVOR || 'm1.tiny', stepTimeoutS: intEnv('STEP_TIMEOUT_S', 180), totalTimeoutS: intEnv('TOTAL_TIMEOUT_S', 2400), logLevel: process.env.LOG_LEVEL || 'warn', keepLog: process.env.KEEP_LOG ? path.resolve(process.env.KEEP_LOG) : '' };
  if (s.count > MAX_COUNT) throw new UsageError(`COUNT=${s.count}: at most ${MAX_COUNT}`);
  if (s.ports > MAX_PORTS) throw new UsageError(`PORTS=${s.ports}: at most ${MAX_PORTS}`);
  return s;
}

/** Seconds one step (a boot's ACTIVE, its marker, its SSH, the ports ACTIVE) may take: STEP_TIMEOUT_S. */
let stepTimeoutS = 180;
/** Aborted when the cleanup starts: every wait and SSH attempt stops, so that nothing keeps the process alive after it. */
const stopping = new AbortController();

/** Deletes the taps that stand for guests in the ports measurement (one already gone is fine). */
function deleteTaps(taps: Set<string>): void {
  for (const tap of taps) spawnSync('ip', ['link', 'delete', 'dev', tap], { stdio: 'ignore' });
  taps.clear();
}

/** Polls `check` every `everyMs` until it gives a value, or throws after STEP_TIMEOUT_S (at once when the bench is stopping). */
function until<T>(what: string, check: () => Promise<T | null> | T | null, everyMs = 20): Promise<T> {
  return pollUntil(what, check, { timeoutS: stepTimeoutS, everyMs, signal: stopping.signal });
}

/** A command that must succeed; its stdout. */
function mustRun(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${r.error?.message ?? ''}${r.stderr ?? ''}`.trim());
  return r.stdout ?? '';
}

/** A 198.18.<n>.0/24 that no route of this host uses yet (other clouds' tests use the same block). */
function freePublicOctet(): number {
  const routes = spawnSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' }).stdout ?? '';
  for (let i = 0; i < 100; i++) {
    const octet = randomInt(1, 250);
    if (!routes.includes(`198.18.${octet}.`)) return octet;
  }
  throw new Error('no free 198.18.<n>.0/24 on this host');
}

/**
 * Resolves with the time the first `ssh ... root@address true` exits 0: a new
 * attempt every SSH_EVERY_MS while none has got in (at most SSH_IN_FLIGHT
 * running), so that an attempt stuck in its connect timeout does not hide the
 * moment the guest answers. The others are killed then; rejects after
 * STEP_TIMEOUT_S.
 */
function firstSsh(address: string, key: string, what: string, probes: Set<ChildProcess>): Promise<number> {
  const args = ['-i', key, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=2', `root@${address}`, 'true'];
  const deadline = now() + stepTimeoutS;
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  return new Promise<number>((resolve, reject) => {
    const finish = (err: Error | null, at = 0): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stopping.signal.removeEventListener('abort', onStop);
      for (const probe of probes) probe.kill('SIGKILL');
      if (err) reject(err);
      else resolve(at);
    };
    const onStop = (): void => finish(new Error(`${what}: stopped`));
    stopping.signal.addEventListener('abort', onStop);
    const launch = (): void => {
      if (done) return;
      if (now() > deadline) return finish(new Error(`${what}: not within ${stepTimeoutS} s`));
      if (probes.size < SSH_IN_FLIGHT) {
        const probe = spawn('ssh', args, { stdio: 'ignore' });
        probes.add(probe);
        probe.once('error', (err) => {
          probes.delete(probe);
          finish(err);
        });
        probe.once('exit', (code) => {
          const at = now();
          probes.delete(probe);
          if (code === 0) finish(null, at);
        });
      }
      timer = setTimeout(launch, SSH_EVERY_MS);
    };
    launch();
  });
}

interface Boot {
  active_s: number;
  /** The floating IP's PUT answered (started once ACTIVE was seen). */
  fip_associated_s: number;
  ready_s: number;
  ssh_s: number;
}

interface Setup {
  imageId: string;
  flavorId: string;
  networkId: string;
  keyName: string;
  keyFile: string;
  fip: { id: string; address: string };
  hypervisorType: string | null;
}

/** Keypair, network + subnet, router (gateway `public`, the subnet as interface), tcp 22 in the admin project's default group, one floating IP. */
async function setUp(api: CloudApi, cfg: Settings, work: string): Promise<Setup> {
  const images = await api.must('image', 'GET', '/v2/images?name=stratus-test', [200]);
  const imageId = images?.images?.[0]?.id as string | undefined;
  if (!imageId) throw new Error(`no stratus-test image: ${JSON.stringify(images)}`);
  const flavors = await api.must('compute', 'GET', '/v2.1/flavors', [200]);
  const flavorId = (flavors.flavors as { id: string; name: string }[]).find((f) => f.name === cfg.flavor)?.id;
  if (!flavorId) throw new Error(`no flavor ${cfg.flavor}`);
  const keyFile = path.join(work, 'id_ed25519');
  mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-dataplane', '-f', keyFile]);
  const keyName = 'bench-key';
  await api.must('compute', 'POST', '/v2.1/os-keypairs', [200, 201], { keypair: { name: keyName, public_key: fs.readFileSync(`${keyFile}.pub`, 'utf8').trim() } });
  const network = (await api.must('network', 'POST', '/v2.0/networks', [201], { network: { name: 'bench-net' } })).network as { id: string };
  // A /22: room for the bulk ports beside the guests, the DHCP port and the router's.
  const subnet = (await api.must('network', 'POST', '/v2.0/subnets', [201], { subnet: { network_id: network.id, cidr: '10.42.0.0/22', ip_version: 4, name: 'bench-sub' } })).subnet as { id: string };
  const publicId = (await api.must('network', 'GET', '/v2.0/networks?name=public', [200])).networks?.[0]?.id as string | undefined;
  if (!publicId) throw new Error('no public network');
  const router = (await api.must('network', 'POST', '/v2.0/routers', [201], { router: { name: 'bench-router', external_gateway_info: { network_id: publicId } } })).router as { id: string };
  await api.must('network', 'PUT', `/v2.0/routers/${router.id}/add_router_interface`, [200], { subnet_id: subnet.id });
  const groups = await api.must('network', 'GET', `/v2.0/security-groups?name=default&project_id=${api.projectId}`, [200]);
  const groupId = groups.security_groups?.[0]?.id as string | undefined;
  if (!groupId) throw new Error("no default security group in the admin project");
  await api.must('network', 'POST', '/v2.0/security-group-rules', [201], { security_group_rule: { security_group_id: groupId, direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', port_range_min: 22, port_range_max: 22 } });
  const fip = (await api.must('network', 'POST', '/v2.0/floatingips', [201], { floatingip: { floating_network_id: publicId } })).floatingip as { id: string; floating_ip_address: string };
  const hypervisors = await api.call('compute', 'GET', '/v2.1/os-hypervisors/detail');
  return {
    imageId,
    flavorId,
    networkId: network.id,
    keyName,
    keyFile,
    fip: { id: fip.id, address: fip.floating_ip_address },
    hypervisorType: (hypervisors.json?.hypervisors?.[0]?.hypervisor_type as string | undefined) ?? null,
  };
}

/**
 * One boot: POST /servers, ACTIVE, the floating IP onto the server's port,
 * then the ready marker and SSH side by side; then the delete, until 404 and
 * the floating IP free again.
 */
async function bootOnce(api: CloudApi, s: Setup, dataDir: string, probes: Set<ChildProcess>, name: string): Promise<Boot> {
  const t0 = now();
  const created = await api.call('compute', 'POST', '/v2.1/servers', { server: { name, imageRef: s.imageId, flavorRef: s.flavorId, key_name: s.keyName, networks: [{ uuid: s.networkId }] } });
  if (created.status !== 202) throw new Error(`create: ${created.status} ${JSON.stringify(created.json)}`);
  const id = created.json.server.id as string;
  await until(`${name} ACTIVE`, async () => {
    const server = (await api.call('compute', 'GET', `/v2.1/servers/${id}`)).json?.server;
    if (server?.status === 'ERROR') throw new Error(`${name} ERROR: ${JSON.stringify(server.fault)}`);
    return server?.status === 'ACTIVE' ? true : null;
  });
  const active = now();
  const port = (await api.must('network', 'GET', `/v2.0/ports?device_id=${id}`, [200])).ports?.[0]?.id as string | undefined;
  if (!port) throw new Error(`${name}: no port`);
  await api.must('network', 'PUT', `/v2.0/floatingips/${s.fip.id}`, [200], { floatingip: { port_id: port } });
  const associated = now();
  const serial = path.join(dataDir, 'compute', 'instances', id, 'console.log');
  const [ready, reachable] = await Promise.all([until(`${name} ready marker`, () => (hasReadyMarker(serial) ? now() : null)), firstSsh(s.fip.address, s.keyFile, `${name} SSH on ${s.fip.address}`, probes)]);
  await api.must('compute', 'DELETE', `/v2.1/servers/${id}`, [204]);
  await until(`${name} deleted`, async () => ((await api.call('compute', 'GET', `/v2.1/servers/${id}`)).status === 404 ? true : null), 100);
  await until(`${name}'s floating IP free`, async () => ((await api.must('network', 'GET', `/v2.0/floatingips/${s.fip.id}`, [200])).floatingip?.port_id ? null : true), 100);
  return { active_s: active - t0, fip_associated_s: associated - t0, ready_s: ready - t0, ssh_s: reachable - t0 };
}

interface PortsRun {
  ports: number;
  /** From the first tap to the last one up. */
  taps_created_s: number;
  /** From the first tap to the first port ACTIVE (polled every 50 ms). */
  first_active_s: number;
  /** From the first tap to half the ports ACTIVE. */
  median_active_s: number;
  /** From the first tap to every port ACTIVE. */
  all_active_s: number;
  ports_per_s: number;
}

/** `count` ports bound to this host in one bulk POST, their taps made in a tight loop, timed to every port ACTIVE; then taps and ports deleted. */
async function measurePorts(api: CloudApi, count: number, networkId: string, taps: Set<string>): Promise<PortsRun> {
  const host = os.hostname();
  const body = { ports: Array.from({ length: count }, (_, i) => ({ network_id: networkId, name: `bench-port-${i}`, 'binding:host_id': host, device_owner: 'compute:nova', device_id: randomUUID() })) };
  const created = (await api.must('network', 'POST', '/v2.0/ports', [201], body)).ports as { id: string; status: string }[];
  const ids = created.map((p) => p.id);
  const early = created.filter((p) => p.status === 'ACTIVE').length;
  if (early > 0) throw new Error(`${early} ports are ACTIVE before their taps exist: nothing to measure`);
  const t0 = now();
  for (const id of ids) {
    const tap = tapName(id);
    taps.add(tap);
    mustRun('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    mustRun('ip', ['link', 'set', 'dev', tap, 'up']);
  }
  const tapsDone = now();
  /** When each port was first seen ACTIVE, from the first tap. */
  const activeAt = new Map<string, number>();
  const wanted = new Set(ids);
  await until(
    `${count} ports ACTIVE`,
    async () => {
      const listed = (await api.must('network', 'GET', `/v2.0/ports?network_id=${networkId}`, [200])).ports as { id: string; status: string }[];
      const at = now() - t0;
      for (const p of listed) if (wanted.has(p.id) && p.status === 'ACTIVE' && !activeAt.has(p.id)) activeAt.set(p.id, at);
      return activeAt.size === wanted.size ? true : null;
    },
    50,
  );
  const times = summarize([...activeAt.values()]) as Summary;
  const allActive = times.max;
  deleteTaps(taps);
  for (const id of ids) await api.must('network', 'DELETE', `/v2.0/ports/${id}`, [204, 404]);
  return { ports: count, taps_created_s: tapsDone - t0, first_active_s: times.min, median_active_s: times.median, all_active_s: allActive, ports_per_s: count / allActive };
}

/** bench/boot's newest results (issue #8: boot to ready with the fake network), or null. */
function bootReference(): { file: string; ready_median_s: number; bare_ready_median_s: number | null; active_median_s: number | null } | null {
  const files = fs.existsSync(BOOT_RESULTS_DIR) ? fs.readdirSync(BOOT_RESULTS_DIR).filter((f) => f.endsWith('.json')).sort() : [];
  const newest = files[files.length - 1];
  if (!newest) return null;
  try {
    const summary = (JSON.parse(fs.readFileSync(path.join(BOOT_RESULTS_DIR, newest), 'utf8')) as { summary?: Record<string, { median?: number } | undefined> }).summary;
    const ready = summary?.ready?.median;
    if (typeof ready !== 'number') return null;
    return { file: path.join('bench', 'boot', 'results', newest), ready_median_s: ready, bare_ready_median_s: summary?.bare_ready?.median ?? null, active_median_s: summary?.active?.median ?? null };
  } catch {
    return null;
  }
}

function report(cfg: Settings, started: Date, s: Setup, first: Boot, boots: Boot[], ports: PortsRun, ref: ReturnType<typeof bootReference>): { text: string; summary: Record<string, Summary> } {
  const pick = (f: (b: Boot) => number): Summary => summarize(boots.map(f)) as Summary;
  const summary = { active: pick((b) => b.active_s), fip_associated: pick((b) => b.fip_associated_s), ready: pick((b) => b.ready_s), ssh: pick((b) => b.ssh_s), network_share: pick((b) => b.ssh_s - b.ready_s) };
  const fmt = (x: Summary): string => `${x.median.toFixed(2)} s [${x.min.toFixed(2)} .. ${x.max.toFixed(2)}]`;
  const refCell = (x: number | null | undefined): string => (typeof x === 'number' ? `${x.toFixed(2)} s` : '');
  const text = [
    `# Network data plane benchmark (${cfg.count} boots, flavor ${cfg.flavor}, hypervisor ${s.hypervisorType ?? '?'}, ${started.toISOString()})`,
    '',
    markdownTable(
      ['from POST /servers to', 'with the Linux data plane', `bench/boot (issue #8, fake network)${ref ? '' : ': no results'}`],
      [
        ['ACTIVE (API)', fmt(summary.active), refCell(ref?.active_median_s)],
        ['floating IP associated (PUT answered)', fmt(summary.fip_associated), ''],
        ['guest ready marker', fmt(summary.ready), ref ? `${refCell(ref.ready_median_s)} (bare qemu ${refCell(ref.bare_ready_median_s) || '?'})` : ''],
        ['SSH reachable on the floating IP', fmt(summary.ssh), ''],
        ["network's share (SSH − ready, per boot)", fmt(summary.network_share), ''],
      ],
    ),
    '',
    markdownTable(
      ['ports plugged on one host', 'value'],
      [
        ['ports (one bulk POST)', String(ports.ports)],
        ['taps made (first to last)', `${ports.taps_created_s.toFixed(2)} s`],
        ['first tap → first port ACTIVE', `${ports.first_active_s.toFixed(2)} s`],
        ['first tap → half the ports ACTIVE', `${ports.median_active_s.toFixed(2)} s`],
        ['first tap → every port ACTIVE', `${ports.all_active_s.toFixed(2)} s`],
        ['ports plugged per second', ports.ports_per_s.toFixed(1)],
      ],
    ),
    '',
    `Warm-up boot (base image not cached yet): ACTIVE ${first.active_s.toFixed(2)} s, ready ${first.ready_s.toFixed(2)} s, SSH ${first.ssh_s.toFixed(2)} s.`,
    ref ? `bench/boot figures from ${ref.file}.` : 'No bench/boot results to compare with (run bench/boot/run.sh).',
  ];
  return { text: text.join('\n'), summary };
}

async function main(): Promise<number> {
  const cfg = readSettings();
  stepTimeoutS = cfg.stepTimeoutS;
  if (process.getuid?.() !== 0) throw new UsageError('the Linux data plane needs root (namespaces, bridges, taps, iptables)');
  const started = new Date();
  const load = loadAvg();
  const mainJs = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-dataplane-bench-'));
  const dataDir = path.join(work, 'data');
  const ports: Record<string, number> = {};
  for (const service of ['identity', 'image', 'network', 'placement', 'compute', 'metadata', 'vnc']) ports[service] = await freePort();
  const suffix = randomBytes(3).toString('hex');
  const octet = freePublicOctet();
  const chainPrefix = `stx${suffix}`;
  const externalBridge = `brx${suffix}`;
  const env: NodeJS.ProcessEnv = {
    ...stratusEnv({ identityPort: ports.identity ?? 0, imagePort: ports.image, networkPort: ports.network, placementPort: ports.placement, computePort: ports.compute, password: PASSWORD }),
    STRATUS_COMPUTE__VIRT_DRIVER: 'qemu',
    STRATUS_COMPUTE__TEST_IMAGE__BUILD: 'true',
    // The key comes from the metadata service through the router, as in test/network-dataplane.test.ts.
    STRATUS_COMPUTE__QEMU__FORCE_CONFIG_DRIVE: 'false',
    STRATUS_COMPUTE__METADATA__PORT: String(ports.metadata),
    STRATUS_COMPUTE__VNC__PROXY_PORT: String(ports.vnc),
    STRATUS_NETWORK__DRIVER: 'linux',
    STRATUS_NETWORK__LINUX__CHAIN_PREFIX: chainPrefix,
    STRATUS_NETWORK__LINUX__BRIDGE_MAPPINGS__PUBLIC: externalBridge,
    STRATUS_NETWORK__PUBLIC_NETWORK__CIDR: `198.18.${octet}.0/24`,
    STRATUS_NETWORK__PUBLIC_NETWORK__GATEWAY_IP: `198.18.${octet}.1`,
    STRATUS_NETWORK__PUBLIC_NETWORK__ALLOCATION_POOL: `198.18.${octet}.10-198.18.${octet}.250`,
    STRATUS_LOG_LEVEL: cfg.logLevel,
  };
  const stratus = new StratusProcess(mainJs);
  const probes = new Set<ChildProcess>();
  const taps = new Set<string>();
  let api: CloudApi | null = null;
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> => (cleaning ??= cleanUp());
  const cleanUp = async (): Promise<void> => {
    stopping.abort();
    for (const probe of probes) probe.kill('SIGKILL');
    await stratus.stop();
    deleteTaps(taps);
    // This cloud's guests (they outlive `up` by design), namespaces, devices and rules; another cloud's stay.
    // The same build as `up`: the ./stratus launcher would rebuild dist/ first when a source is newer than its stamp.
    const r = spawnSync(process.execPath, [mainJs, 'cleanup', '--data', dataDir], { env, encoding: 'utf8' });
    say(`stratus cleanup: ${r.status === 0 ? 'done' : `exit ${r.status ?? r.signal}`}: ${`${r.stdout}${r.stderr}`.trim().split('\n').join('; ')}`);
    if (cfg.keepLog) {
      try {
        fs.copyFileSync(path.join(dataDir, 'stratus.log'), cfg.keepLog);
        say(`stratus up's log: ${cfg.keepLog}`);
      } catch (err) {
        say(`could not keep the log: ${message(err)}`);
      }
    }
    fs.rmSync(work, { recursive: true, force: true });
  };
  const cancel = onInterrupt(cfg.totalTimeoutS, (why, code) => {
    say(`stopping: ${why}`);
    void cleanup().finally(() => process.exit(code));
  });
  try {
    say(`starting stratus up in ${dataDir} (external bridge ${externalBridge}, public 198.18.${octet}.0/24, rules ${chainPrefix}*)`);
    await stratus.launch(dataDir, env).ready;
    api = new CloudApi(ports, PASSWORD);
    await api.login();
    const setup = await setUp(api, cfg, work);
    say(`floating IP ${setup.fip.address}; a warm-up boot (not counted): the host caches the base image`);
    const first = await bootOnce(api, setup, dataDir, probes, 'dp-warm');
    say(`warm-up boot: ACTIVE ${first.active_s.toFixed(2)} s, ready ${first.ready_s.toFixed(2)} s, SSH ${first.ssh_s.toFixed(2)} s`);
    const boots: Boot[] = [];
    for (let i = 1; i <= cfg.count; i++) {
      const boot = await bootOnce(api, setup, dataDir, probes, `dp-${i}`);
      boots.push(boot);
      say(`boot ${i}/${cfg.count}: ACTIVE ${boot.active_s.toFixed(2)} s, floating IP ${boot.fip_associated_s.toFixed(2)} s, ready ${boot.ready_s.toFixed(2)} s, SSH ${boot.ssh_s.toFixed(2)} s`);
    }
    say(`${cfg.ports} ports in one bulk POST, bound to ${os.hostname()}, then their taps`);
    const portsRun = await measurePorts(api, cfg.ports, setup.networkId, taps);
    say(`ports: every one ACTIVE ${portsRun.all_active_s.toFixed(2)} s after the first tap: ${portsRun.ports_per_s.toFixed(1)} ports/s`);
    const ref = bootReference();
    const { text, summary } = report(cfg, started, setup, first, boots, portsRun, ref);
    process.stdout.write(`${text}\n`);
    const file = writeResults(RESULTS_DIR, started, {
      git: gitInfo(ROOT),
      host: hostInfo(load),
      settings: { count: cfg.count, ports: cfg.ports, flavor: cfg.flavor, step_timeout_s: cfg.stepTimeoutS, ssh_every_ms: SSH_EVERY_MS, ssh_in_flight: SSH_IN_FLIGHT },
      hypervisor_type: setup.hypervisorType,
      first_boot: first,
      boots,
      ports: portsRun,
      summary,
      boot_bench_reference: ref,
    });
    say(`results: ${file}`);
    return 0;
  } catch (err) {
    say(`failed: ${message(err)}`);
    say(stratus.output.slice(-3000));
    return 1;
  } finally {
    cancel();
    await cleanup();
  }
}

runMain(main);
