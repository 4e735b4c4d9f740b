/**
 * Boot benchmark: COUNT servers of the test guest image booted through the
 * compute API of a `stratus up` with the qemu driver, one after the other,
 * each timed from the API call (POST /servers) to ACTIVE and to the guest's
 * `stratus-guest: ready` on its serial console; then COUNT bare boots of the
 * same image by `qemu-system-x86_64` with the very command line Stratus ran
 * (read from the process list: same machine type, accelerator, memory,
 * devices, config drive), each on a fresh overlay of the same cached base,
 * timed from the spawn to the same marker: the physical limit. Prints the
 * medians side by side and the ratios against the goals (ready within 1.3
 * times the bare boot; ACTIVE within 1 s of the bare boot's time).
 * Not part of the test suite.
 *
 *   bash bench/boot/run.sh                        (builds Stratus, then runs this file)
 *   COUNT=3 bash bench/boot/run.sh                (quick)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloudApi, freePort, hasReadyMarker, pollUntil } from '../lib/guests.js';
import { now } from '../lib/proc.js';
import { gitInfo, hostInfo, loadAvg, message, onInterrupt, runMain, say, writeResults } from '../lib/run.js';
import { summarize, type Summary } from '../lib/stats.js';
import { StratusProcess, stratusEnv } from '../lib/stratus.js';
import { markdownTable } from '../lib/table.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(process.env.STRATUS_REPO || (path.basename(path.resolve(HERE, '..', '..')) === 'dist' ? path.resolve(HERE, '..', '..', '..') : path.resolve(HERE, '..', '..')));
const RESULTS_DIR = path.join(ROOT, 'bench', 'boot', 'results');

const COUNT = Number(process.env.COUNT ?? 10);
const FLAVOR = process.env.FLAVOR ?? 'm1.tiny';
const STEP_TIMEOUT_S = Number(process.env.STEP_TIMEOUT_S ?? 180);
const TOTAL_TIMEOUT_S = Number(process.env.TOTAL_TIMEOUT_S ?? 1800);
const PASSWORD = 'bench-boot-secret';

/** Polls `check` every `everyMs` until it gives a value, or throws after STEP_TIMEOUT_S. */
function until<T>(what: string, check: () => Promise<T | null> | T | null, everyMs = 20): Promise<T> {
  return pollUntil(what, check, { timeoutS: STEP_TIMEOUT_S, everyMs });
}

/** The command line of the qemu process of guest `uuid`, from /proc. */
function qemuCommandLine(uuid: string): string[] | null {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      if (args[0]?.includes('qemu-system') && args.some((a) => a.includes(uuid))) return args;
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

interface Boot {
  active_s: number;
  ready_s: number;
}

async function main(): Promise<number> {
  const started = new Date();
  const load = loadAvg();
  const main = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-boot-bench-'));
  const dataDir = path.join(work, 'data');
  const ports: Record<string, number> = {};
  for (const service of ['identity', 'image', 'network', 'placement', 'compute', 'metadata', 'vnc']) ports[service] = await freePort();
  const stratus = new StratusProcess(main);
  const bare: ChildProcess[] = [];
  const cleanup = async (): Promise<void> => {
    for (const child of bare) child.kill('SIGKILL');
    await stratus.stop();
    // Guests outlive `up` by design: the benchmark's own are killed here.
    spawnSync('pkill', ['-9', '-f', `qemu-system.*${work}`]);
    fs.rmSync(work, { recursive: true, force: true });
  };
  const cancel = onInterrupt(TOTAL_TIMEOUT_S, (why, code) => {
    say(`stopping: ${why}`);
    void cleanup().finally(() => process.exit(code));
  });
  try {
    const env = {
      ...stratusEnv({ identityPort: ports.identity ?? 0, imagePort: ports.image, networkPort: ports.network, placementPort: ports.placement, computePort: ports.compute, password: PASSWORD }),
      STRATUS_COMPUTE__VIRT_DRIVER: 'qemu',
      STRATUS_COMPUTE__QEMU__FORCE_CONFIG_DRIVE: 'true',
      STRATUS_COMPUTE__METADATA__PORT: String(ports.metadata),
      STRATUS_COMPUTE__VNC__PROXY_PORT: String(ports.vnc),
      STRATUS_LOG_LEVEL: 'warn',
    };
    say(`starting stratus up in ${dataDir} (the first start builds the test image)`);
    const launch = stratus.launch(dataDir, env);
    await launch.ready;
    const api = new CloudApi(ports, PASSWORD);
    await api.login();
    const images = await api.call('image', 'GET', '/v2/images?name=stratus-test');
    const imageId = images.json?.images?.[0]?.id as string | undefined;
    if (!imageId) throw new Error(`no stratus-test image: ${JSON.stringify(images.json)}`);
    const flavors = await api.call('compute', 'GET', '/v2.1/flavors');
    const flavorId = (flavors.json.flavors as { id: string; name: string }[]).find((f) => f.name === FLAVOR)?.id;
    if (!flavorId) throw new Error(`no flavor ${FLAVOR}`);
    const network = await api.call('network', 'POST', '/v2.0/networks', { network: { name: 'boot-net' } });
    await api.call('network', 'POST', '/v2.0/subnets', { subnet: { network_id: network.json.network.id, cidr: '10.40.0.0/24', ip_version: 4 } });
    const hypervisor = await api.call('compute', 'GET', '/v2.1/os-hypervisors/detail');
    const hypervisorType = hypervisor.json?.hypervisors?.[0]?.hypervisor_type as string | undefined;

    let recorded: { args: string[]; dir: string; base: string } | null = null;
    const bootOnce = async (name: string): Promise<Boot> => {
      const t0 = now();
      const created = await api.call('compute', 'POST', '/v2.1/servers', { server: { name, imageRef: imageId, flavorRef: flavorId, networks: [{ uuid: network.json.network.id }] } });
      if (created.status !== 202) throw new Error(`create: ${created.status} ${JSON.stringify(created.json)}`);
      const id = created.json.server.id as string;
      await until(`${name} ACTIVE`, async () => {
        const s = await api.call('compute', 'GET', `/v2.1/servers/${id}`);
        if (s.json?.server?.status === 'ERROR') throw new Error(`${name} ERROR: ${JSON.stringify(s.json.server.fault)}`);
        return s.json?.server?.status === 'ACTIVE' ? true : null;
      });
      const active = now();
      const dir = path.join(dataDir, 'compute', 'instances', id);
      await until(`${name} ready marker`, () => (hasReadyMarker(path.join(dir, 'console.log')) ? true : null));
      const ready = now();
      if (!recorded) {
        const args = qemuCommandLine(id);
        if (!args) throw new Error('the qemu process of the guest is not in the process list');
        const info = JSON.parse(spawnSync('qemu-img', ['info', '-U', '--output', 'json', path.join(dir, 'disk')], { encoding: 'utf8' }).stdout) as { 'full-backing-filename'?: string; 'backing-filename'?: string };
        const base = info['full-backing-filename'] ?? info['backing-filename'] ?? '';
        const copy = path.join(work, 'recorded');
        fs.mkdirSync(copy);
        for (const file of fs.readdirSync(dir)) if (file.startsWith('disk.config')) fs.copyFileSync(path.join(dir, file), path.join(copy, file));
        recorded = { args, dir, base };
      }
      await api.call('compute', 'DELETE', `/v2.1/servers/${id}`);
      await until(`${name} deleted`, async () => ((await api.call('compute', 'GET', `/v2.1/servers/${id}`)).status === 404 ? true : null), 100);
      return { active_s: active - t0, ready_s: ready - t0 };
    };

    say('a first boot (not counted): the host caches the base image');
    const first = await bootOnce('boot-warm');
    say(`first boot: ACTIVE ${first.active_s.toFixed(2)} s, ready ${first.ready_s.toFixed(2)} s`);
    const boots: Boot[] = [];
    for (let i = 1; i <= COUNT; i++) {
      const boot = await bootOnce(`boot-${i}`);
      boots.push(boot);
      say(`stratus boot ${i}/${COUNT}: ACTIVE ${boot.active_s.toFixed(2)} s, ready ${boot.ready_s.toFixed(2)} s`);
    }

    const rec = recorded as { args: string[]; dir: string; base: string } | null;
    if (!rec) throw new Error('no command line recorded');
    const bareTimes: number[] = [];
    for (let i = 1; i <= COUNT; i++) {
      const dir = path.join(work, `bare-${i}`);
      fs.mkdirSync(dir);
      for (const file of fs.readdirSync(path.join(work, 'recorded'))) fs.copyFileSync(path.join(work, 'recorded', file), path.join(dir, file));
      const size = JSON.parse(spawnSync('qemu-img', ['info', '-U', '--output', 'json', rec.base], { encoding: 'utf8' }).stdout)['virtual-size'] as number;
      const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', rec.base, path.join(dir, 'disk'), String(Math.max(size, 1024 ** 3))], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`qemu-img create: ${made.stderr}`);
      // The same command line, in this directory, in the foreground.
      const args: string[] = [];
      for (let j = 1; j < rec.args.length; j++) {
        const arg = rec.args[j] ?? '';
        if (arg === '-daemonize') continue;
        if (arg === '-pidfile') {
          j++;
          continue;
        }
        args.push(arg.split(rec.dir).join(dir));
      }
      const t0 = now();
      const child = spawn(rec.args[0] ?? 'qemu-system-x86_64', args, { stdio: 'ignore' });
      bare.push(child);
      const serial = path.join(dir, 'console.log');
      await until(`bare boot ${i} ready marker`, () => (hasReadyMarker(serial) ? true : null));
      const took = now() - t0;
      bareTimes.push(took);
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      say(`bare boot ${i}/${COUNT}: ready ${took.toFixed(2)} s`);
    }

    const active = summarize(boots.map((b) => b.active_s)) as Summary;
    const ready = summarize(boots.map((b) => b.ready_s)) as Summary;
    const bareReady = summarize(bareTimes) as Summary;
    const ratio = ready.median / bareReady.median;
    const activeGap = active.median - bareReady.median;
    const fmt = (s: Summary): string => `${s.median.toFixed(2)} s [${s.min.toFixed(2)} .. ${s.max.toFixed(2)}]`;
    const lines = [
      `# Boot benchmark (${COUNT} boots each, flavor ${FLAVOR}, hypervisor ${hypervisorType ?? '?'}, ${started.toISOString()})`,
      '',
      markdownTable(
        ['measure', 'Stratus (API call →)', 'bare qemu (spawn →)', 'ratio / gap', 'goal'],
        [
          ['ACTIVE', fmt(active), '', `${activeGap >= 0 ? '+' : ''}${activeGap.toFixed(2)} s vs bare ready`, `≤ +1 s: ${activeGap <= 1 ? 'met' : 'NOT met'}`],
          ['guest ready marker', fmt(ready), fmt(bareReady), `${ratio.toFixed(2)}×`, `≤ 1.3×: ${ratio <= 1.3 ? 'met' : 'NOT met'}`],
        ],
      ),
      '',
      `First boot (base image not cached yet): ACTIVE ${first.active_s.toFixed(2)} s, ready ${first.ready_s.toFixed(2)} s.`,
      `Bare command line: ${rec.args.map((a) => a.split(rec.dir).join('<dir>')).join(' ')}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const file = writeResults(RESULTS_DIR, started, {
      git: gitInfo(ROOT),
      host: hostInfo(load),
      settings: { count: COUNT, flavor: FLAVOR },
      hypervisor_type: hypervisorType ?? null,
      first_boot: first,
      stratus: boots,
      bare_ready_s: bareTimes,
      summary: { active, ready, bare_ready: bareReady, ready_ratio: ratio, active_minus_bare_ready_s: activeGap },
      command_line: rec.args.map((a) => a.split(rec.dir).join('<dir>')),
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
