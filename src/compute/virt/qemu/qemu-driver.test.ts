import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { QemuConfig } from '../../../core/config.js';
import type { GuestPowerState, GuestSpec, GuestVif } from '../driver.js';
import { processAlive } from '../../../core/host-commands.js';
import { QmpClient } from './qmp.js';
import { QemuDriver } from './qemu-driver.js';
import { testImage, type TestImage } from './test-image.test-util.js';

/**
 * The qemu driver against real QEMU (TCG) and the real test guest image,
 * served by a small image service double. One guest goes through every
 * operation; what the driver did is checked on the process (its QMP
 * monitor socket, /proc), its files, its taps and what the guest prints on
 * its serial console.
 */

let work = '';
let img: TestImage;
let server: http.Server;
let imageUrl = '';
const images = new Map<string, { file: string; format: string; hash?: string }>();
const downloads = new Map<string, number>();
const logLines: string[] = [];
const drivers: QemuDriver[] = [];
const taps: string[] = [];

before(async () => {
  img = await testImage();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-qemu-driver-'));
  server = http.createServer((req, res) => {
    const match = /^\/v2\/images\/([^/]+)(\/file)?$/.exec(req.url ?? '');
    const image = match ? images.get(match[1] ?? '') : undefined;
    if (!match || !image) {
      res.writeHead(404).end();
      return;
    }
    if (match[2]) {
      downloads.set(match[1] ?? '', (downloads.get(match[1] ?? '') ?? 0) + 1);
      createReadStream(image.file).pipe(res);
      return;
    }
    const hash = image.hash ?? createHash('sha512').update(readFileSync(image.file)).digest('hex');
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ id: match[1], status: 'active', disk_format: image.format, os_hash_algo: 'sha512', os_hash_value: hash }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  imageUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const d of drivers) await d.close().catch(() => undefined);
  // Whatever a failed step left behind: no guest outlives the test, nor a tap it made.
  for (const pid of await fs.readdir('/proc')) {
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (work && cmdline.startsWith('qemu-system') && cmdline.includes(work)) kill(Number(pid));
  }
  const nbd = await fs.readFile(path.join(work, 'qemu-nbd.pid'), 'utf8').catch(() => '');
  if (Number(nbd) > 0) kill(Number(nbd));
  for (const tap of taps) if (await exists(`/sys/class/net/${tap}`)) execFileSync('ip', ['link', 'delete', 'dev', tap]);
  await new Promise((resolve) => server.close(resolve));
  if (work) await fs.rm(work, { recursive: true, force: true });
});

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A TCP port nothing listens on now. */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const exists = (file: string): Promise<boolean> => fs.access(file).then(() => true, () => false);

function config(overrides: Partial<QemuConfig> = {}): QemuConfig {
  const instances = path.join(work, 'instances');
  return {
    binary: 'qemu-system-x86_64',
    instances_path: instances,
    image_cache_path: path.join(instances, '_base'),
    accel: 'tcg',
    probe_timeout: 3,
    shutdown_timeout: 10,
    remove_unused_base_images_after: 0,
    force_config_drive: false,
    vnc_listen: '127.0.0.1',
    ...overrides,
  };
}

function makeDriver(overrides: Partial<QemuConfig> = {}): QemuDriver {
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  const driver = new QemuDriver({ host: 'test-host', config: config(overrides), images: { endpoint: async () => imageUrl, token: async () => 'token' }, log, probe: img.probe, imageCacheInterval: 0, detachTimeout: 60 });
  drivers.push(driver);
  return driver;
}

function vif(): GuestVif {
  const portId = randomUUID();
  const devName = `tap${portId.slice(0, 11)}`;
  taps.push(devName);
  const mac = `fa:16:3e:${portId.slice(0, 2)}:${portId.slice(2, 4)}:${portId.slice(4, 6)}`;
  return { portId, networkId: randomUUID(), mac, devName, fixedIps: [] };
}

function spec(uuid: string, imageRef: string, overrides: Partial<GuestSpec> = {}): GuestSpec {
  return {
    uuid,
    name: 'life',
    vcpus: 1,
    memoryMb: 256,
    rootGb: 1,
    ephemeralGb: 0,
    swapMb: 0,
    imageRef,
    imageProperties: {},
    blockDevices: [],
    vifs: [],
    userData: null,
    keyData: null,
    configDrive: true,
    metadata: {},
    metadataInfo: { uuid, name: 'life', hostname: 'stratus-life', projectId: 'p', availabilityZone: 'nova', launchIndex: 0, reservationId: 'r-1', flavorName: 'm1.tiny', imageRef, keyName: null, keyData: null, userData: null, metadata: {}, vifs: [], createdAt: new Date().toISOString() },
    ...overrides,
  };
}

function guestDir(uuid: string): string {
  return path.join(work, 'instances', uuid);
}

/** A QMP command on the guest's second socket (the driver holds the first), as an operator would run it. */
async function monitor<T>(uuid: string, command: string, args?: Record<string, unknown>): Promise<T> {
  const qmp = await QmpClient.connect(path.join(guestDir(uuid), 'qmp-ops.sock'));
  try {
    return await qmp.execute<T>(command, args);
  } finally {
    await qmp.close();
  }
}

async function statusOf(uuid: string): Promise<string> {
  return (await monitor<{ status: string }>(uuid, 'query-status')).status;
}

async function powerOf(driver: QemuDriver, uuid: string): Promise<GuestPowerState | undefined> {
  return (await driver.listGuests()).find((g) => g.uuid === uuid)?.powerState;
}

/** Waits until the console shows `text` at least `times` times (a guest under TCG takes seconds to boot). */
async function console(driver: QemuDriver, uuid: string, text: string, times = 1): Promise<string> {
  let out = '';
  for (let i = 0; i < 1200; i++) {
    out = await driver.consoleOutput(uuid);
    if (out.split(text).length - 1 >= times) return out;
    await sleep(100);
  }
  assert.fail(`the console of ${uuid} never showed '${text}' ${times} time(s):\n${out.slice(-2000)}`);
}

async function blockNodes(uuid: string): Promise<string[]> {
  const blocks = await monitor<{ inserted?: { 'node-name'?: string } }[]>(uuid, 'query-block');
  return blocks.map((b) => b.inserted?.['node-name'] ?? '').filter(Boolean);
}

async function addImage(file: string, format: string, hash?: string): Promise<string> {
  const id = randomUUID();
  images.set(id, { file, format, ...(hash ? { hash } : {}) });
  return id;
}

test('a guest through its whole life: spawn, console, power, suspend, hot-plug, snapshot, resize, rescue, recovery, lifecycle, destroy', async (t) => {
  const imageId = await addImage(img.image, 'qcow2');
  const driver = makeDriver();
  await driver.init();
  const uuid = randomUUID();
  const nic = vif();
  let pid = 0;

  await t.test('spawn: a running QEMU process whose guest boots and reads its config drive', async () => {
    await driver.spawn(spec(uuid, imageId, { vifs: [nic] }));
    pid = (await driver.pid(uuid)) ?? 0;
    assert.ok(await processAlive(pid, uuid));
    assert.equal(await statusOf(uuid), 'running');
    assert.equal(await powerOf(driver, uuid), 1);
    assert.ok(await exists(`/sys/class/net/${nic.devName}`), 'the port has a tap');
    const out = await console(driver, uuid, 'stratus-guest: ready');
    assert.match(out, /stratus-guest: metadata config-drive/);
    assert.match(out, /stratus-guest: hostname stratus-life/);
    assert.match(await driver.consoleOutput(uuid, 1), /^stratus-guest: ready$/);
    const vnc = await driver.vncConsole(uuid);
    assert.equal(vnc?.host, '127.0.0.1');
    assert.ok((vnc?.port ?? 0) >= 5900);
  });

  await t.test('pause and unpause', async () => {
    await driver.pause(uuid);
    assert.equal(await statusOf(uuid), 'paused');
    assert.equal(await powerOf(driver, uuid), 3);
    await driver.unpause(uuid);
    assert.equal(await statusOf(uuid), 'running');
    assert.equal(await powerOf(driver, uuid), 1);
  });

  await t.test('attach and detach a local qcow2 volume: the guest sees the disk come and go', async () => {
    const file = path.join(work, 'volume.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '64M']);
    const volumeId = randomUUID();
    await driver.attachVolume(uuid, volumeId, { driver_volume_type: 'local', device_path: file, format: 'qcow2', access_mode: 'rw' }, '/dev/vdb');
    await console(driver, uuid, `stratus-guest: disk-added vdb ${64 * 1024 * 1024}`);
    await driver.extendVolume(uuid, volumeId, 1);
    await driver.detachVolume(uuid, volumeId);
    await console(driver, uuid, 'stratus-guest: disk-removed vdb');
    assert.deepEqual((await blockNodes(uuid)).filter((n) => n.startsWith('vol-')), []);
    await driver.detachVolume(uuid, volumeId);
  });

  await t.test('attach and detach a volume exported over NBD', async () => {
    const file = path.join(work, 'nbd-volume.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '32M']);
    const port = await freePort();
    execFileSync('qemu-nbd', ['--fork', '--persistent', '--bind', '127.0.0.1', '--port', String(port), '--export-name', 'vol', '--format', 'qcow2', '--pid-file', path.join(work, 'qemu-nbd.pid'), file]);
    const volumeId = randomUUID();
    await driver.attachVolume(uuid, volumeId, { driver_volume_type: 'nbd', host: '127.0.0.1', port, export_name: 'vol', format: 'raw', access_mode: 'rw' }, '/dev/vdb');
    await console(driver, uuid, `stratus-guest: disk-added vdb ${32 * 1024 * 1024}`);
    await driver.detachVolume(uuid, volumeId);
    await console(driver, uuid, 'stratus-guest: disk-removed vdb', 2);
  });

  await t.test('attach and detach an interface: its tap comes and goes', async () => {
    const second = vif();
    await driver.attachInterface(uuid, second);
    assert.ok(await exists(`/sys/class/net/${second.devName}`));
    await console(driver, uuid, `stratus-guest: nic-added eth1 ${second.mac}`);
    await driver.detachInterface(uuid, second.portId);
    assert.equal(await exists(`/sys/class/net/${second.devName}`), false);
    await console(driver, uuid, 'stratus-guest: nic-removed eth1');
  });

  let snapshotGuest = '';
  await t.test('snapshot: a standalone qcow2 of the disk that boots as a new guest', async () => {
    const snap = await driver.snapshot(uuid);
    assert.ok(snap);
    assert.equal(snap.diskFormat, 'qcow2');
    const file = path.join(work, 'snapshot.qcow2');
    await pipeline(snap.data, createWriteStream(file));
    await snap.cleanup();
    assert.deepEqual((await fs.readdir(guestDir(uuid))).filter((f) => f.startsWith('snapshot')), []);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', file], { encoding: 'utf8' })) as { format: string; 'backing-filename'?: string };
    assert.equal(info.format, 'qcow2');
    assert.equal(info['backing-filename'], undefined);
    assert.equal(await statusOf(uuid), 'running');
    snapshotGuest = randomUUID();
    // It boots while the first guest goes on; checked further down.
    await driver.spawn(spec(snapshotGuest, await addImage(file, 'qcow2'), { configDrive: false }));
  });

  await t.test('suspend saves the guest to its state file and ends the process; resume brings it back', async () => {
    await driver.suspend(uuid);
    assert.ok(await exists(path.join(guestDir(uuid), 'state')));
    assert.equal(await processAlive(pid, uuid), false);
    assert.equal(await powerOf(driver, uuid), 4, 'no process: SHUTDOWN, as libvirt reports a managed save');
    await driver.resume(uuid);
    assert.equal(await exists(path.join(guestDir(uuid), 'state')), false);
    assert.equal(await statusOf(uuid), 'running');
    assert.equal(await powerOf(driver, uuid), 1);
    pid = (await driver.pid(uuid)) ?? 0;
  });

  await t.test('reboot soft: the guest powers off by itself and boots again in a new process', async () => {
    await driver.reboot(uuid, false);
    const next = (await driver.pid(uuid)) ?? 0;
    assert.notEqual(next, pid);
    assert.equal(await processAlive(pid, uuid), false);
    assert.match(await driver.consoleOutput(uuid), /stratus-guest: powering-off/);
    pid = next;
    await console(driver, uuid, 'stratus-guest: ready', 2);
  });

  await t.test('powerOff: the guest handles the ACPI power button and its process exits', async () => {
    await driver.powerOff(uuid);
    assert.equal(await processAlive(pid, uuid), false);
    assert.equal(await powerOf(driver, uuid), 4);
    await console(driver, uuid, 'stratus-guest: powering-off', 2);
    assert.equal(await driver.vncConsole(uuid), null);
    await driver.powerOff(uuid);
  });

  await t.test('resize while stopped, then powerOn: the new flavor on the new process', async () => {
    await driver.resize(uuid, spec(uuid, imageId, { memoryMb: 384, rootGb: 2, ephemeralGb: 1, swapMb: 32, vifs: [nic] }));
    assert.equal(await powerOf(driver, uuid), 4);
    await driver.powerOn(uuid);
    assert.equal(await statusOf(uuid), 'running');
    const memory = await monitor<{ 'base-memory': number }>(uuid, 'query-memory-size-summary');
    assert.equal(memory['base-memory'], 384 * 1024 * 1024);
    const nodes = await blockNodes(uuid);
    assert.ok(nodes.includes('eph0') && nodes.includes('swap'), nodes.join(' '));
    const disk = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', path.join(guestDir(uuid), 'disk')], { encoding: 'utf8' })) as { 'virtual-size': number };
    assert.equal(disk['virtual-size'], 2 * 1024 ** 3);
    pid = (await driver.pid(uuid)) ?? 0;
  });

  await t.test('reboot hard: a new process', async () => {
    await driver.reboot(uuid, true);
    const next = (await driver.pid(uuid)) ?? 0;
    assert.notEqual(next, pid);
    assert.equal(await processAlive(pid, uuid), false);
    assert.ok(await processAlive(next, uuid));
    assert.equal(await statusOf(uuid), 'running');
    pid = next;
  });

  await t.test('rescue boots the rescue image first, unrescue drops it', async () => {
    await driver.rescue(uuid, '');
    assert.deepEqual((await blockNodes(uuid)).slice(0, 2), ['rescue', 'disk']);
    assert.ok(await exists(path.join(guestDir(uuid), 'disk.rescue')));
    await driver.unrescue(uuid);
    assert.equal((await blockNodes(uuid)).includes('rescue'), false);
    assert.equal(await exists(path.join(guestDir(uuid), 'disk.rescue')), false);
    assert.equal(await statusOf(uuid), 'running');
  });

  await t.test('the snapshot booted as a guest of its own; destroying it leaves nothing', async () => {
    await console(driver, snapshotGuest, 'stratus-guest: ready');
    const snapPid = (await driver.pid(snapshotGuest)) ?? 0;
    await driver.destroy(snapshotGuest);
    assert.equal(await processAlive(snapPid, snapshotGuest), false);
    assert.equal(await exists(guestDir(snapshotGuest)), false);
  });

  await t.test('the image cache keeps the base in use and removes the unused one', async () => {
    const removed = await driver.cleanImageCache();
    assert.equal(removed.length, 1);
    assert.notEqual(removed[0], imageId);
    assert.ok(await driver.cache.cached(imageId));
  });

  await t.test('recovery: a new driver on the same directories finds the guest running and controls it', async () => {
    await driver.close();
    // A guest still booting ignores the power button: after a short timeout it is stopped hard.
    const again = makeDriver({ shutdown_timeout: 1 });
    await again.init();
    assert.equal(await powerOf(again, uuid), 1);
    await again.powerOff(uuid);
    assert.equal(await processAlive(pid, uuid), false);
    assert.equal(await powerOf(again, uuid), 4);

    const told: [string, GuestPowerState][] = [];
    again.onLifecycle((u, p) => told.push([u, p]));
    await again.powerOn(uuid);
    pid = (await again.pid(uuid)) ?? 0;
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 200 && told.length === 0; i++) await sleep(50);
    assert.deepEqual(told, [[uuid, 4]]);
    assert.equal(await powerOf(again, uuid), 4);

    await again.powerOn(uuid);
    pid = (await again.pid(uuid)) ?? 0;
    await again.destroy(uuid);
    assert.equal(await processAlive(pid, uuid), false);
    assert.equal(await exists(guestDir(uuid)), false);
    assert.equal(await exists(`/sys/class/net/${nic.devName}`), false);
    assert.deepEqual(await again.listGuests(), []);
    assert.deepEqual(told, [[uuid, 4]], 'what the driver did itself is not a lifecycle event');
    await again.destroy(uuid);
    assert.deepEqual(await again.cleanImageCache(), [imageId]);
    await again.close();
  });
});

test('the image cache: concurrent fetches of one image share one download, kept as the image service describes it', async () => {
  const driver = makeDriver();
  await driver.init();
  const id = await addImage(img.image, 'qcow2');
  const [a, b] = await Promise.all([driver.cache.fetch(id), driver.cache.fetch(id)]);
  assert.deepEqual(a, b);
  assert.equal(downloads.get(id), 1);
  assert.equal(a.format, 'qcow2');
  assert.ok(a.virtualSize > 0);
  assert.deepEqual(await driver.cache.fetch(id), a);
  assert.equal(downloads.get(id), 1, 'a cached base is not downloaded again');
  await driver.close();
});

test('a download that does not match its checksum fails the spawn and leaves nothing', async () => {
  const driver = makeDriver();
  await driver.init();
  const uuid = randomUUID();
  const bad = await addImage(img.image, 'qcow2', 'f'.repeat(128));
  await assert.rejects(driver.spawn(spec(uuid, bad)), /failed verification/);
  assert.equal(await exists(guestDir(uuid)), false);
  assert.equal(await driver.cache.cached(bad), null);
  assert.deepEqual((await fs.readdir(config().image_cache_path)).filter((f) => f.includes('.part')), []);
  await driver.close();
});

test('the accelerator: the log and hostResources agree on what the probe decided; tcg skips the probe', async () => {
  const before = logLines.length;
  const auto = makeDriver({ accel: 'auto' });
  await auto.init();
  const decision = auto.accelerator;
  const line = logLines.slice(before).find((l) => l.includes('guests run under'));
  assert.ok(line);
  assert.match(line, decision.accel === 'kvm' ? /guests run under KVM/ : /guests run under TCG/);
  const resources = await auto.hostResources();
  assert.equal(resources.hypervisorType, decision.accel === 'kvm' ? 'KVM' : 'QEMU');
  assert.equal(resources.cpuInfo.accel, decision.accel);
  assert.equal(resources.vcpus, os.cpus().length);
  assert.ok(resources.memoryMb > 0 && resources.localGb > 0);
  assert.ok(resources.hypervisorVersion > 1_000_000);
  await auto.close();

  const tcg = makeDriver({ accel: 'tcg' });
  await tcg.init();
  assert.deepEqual(tcg.accelerator, { accel: 'tcg', reason: 'configured (compute.qemu.accel = tcg)' });
  assert.equal((await tcg.hostResources()).hypervisorType, 'QEMU');
  await tcg.close();
});
