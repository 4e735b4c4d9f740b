import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { DriverUserError, GiB, type DriverImage } from './driver.js';
import { driverSuite, head, rawImage, type ImageFixture } from './driver-suite.test-util.js';
import { FileVolumeDriver } from './file.js';

const run = promisify(execFile);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-file-driver-'));
const drivers: FileVolumeDriver[] = [];
after(() => fs.rmSync(root, { recursive: true, force: true }));

function makeDriver(format: 'qcow2' | 'raw' = 'qcow2', host = 'volume-host'): FileVolumeDriver {
  const driver = new FileVolumeDriver({ path: fs.mkdtempSync(path.join(root, `${format}-`)), format, capacityGb: 0, qemuImg: 'qemu-img', nbdHost: '127.0.0.1', host });
  drivers.push(driver);
  return driver;
}

/** An image made with qemu-img: `format`, `virtualBytes`, and any extra `create` options. */
async function qemuImage(format: string, virtualBytes: number, extra: string[] = [], diskFormat = format): Promise<ImageFixture> {
  const file = path.join(root, `image-${randomUUID()}.${format}`);
  await run('qemu-img', ['create', '-q', '-f', format, ...extra, file, String(virtualBytes)]);
  const data = fs.readFileSync(file);
  fs.rmSync(file);
  return { data, image: { id: randomUUID(), name: 'made', disk_format: diskFormat, container_format: 'bare', size: data.length, virtual_size: virtualBytes, min_disk: 0, min_ram: 0, checksum: null, properties: {} } };
}

const opened = (fixture: ImageFixture) => async (): Promise<Readable> => Readable.from([fixture.data]);
const info = async (file: string): Promise<{ format: string; 'virtual-size': number }> => JSON.parse((await run('qemu-img', ['info', '--output=json', '-U', file])).stdout);

driverSuite('file driver (qcow2)', { make: async () => makeDriver('qcow2'), tooBigImage: () => qemuImage('qcow2', 2 * GiB) });
driverSuite('file driver (raw)', { make: async () => makeDriver('raw'), tooBigImage: () => qemuImage('qcow2', 2 * GiB) });

test('file driver: each volume is a file of its format named after its id, of its size', async () => {
  for (const format of ['qcow2', 'raw'] as const) {
    const driver = makeDriver(format);
    const id = randomUUID();
    const update = await driver.createVolume({ id, size: 2, provider_location: null });
    const file = path.join(driver.dir, `volume-${id}.${format}`);
    assert.equal(update.provider_location, file);
    const i = await info(file);
    assert.equal(i.format, format);
    assert.equal(i['virtual-size'], 2 * GiB);
    await driver.extendVolume({ id, size: 2, provider_location: file }, 5);
    assert.equal((await info(file))['virtual-size'], 5 * GiB, `${format} extended`);
    assert.deepEqual(fs.readdirSync(driver.dir).sort(), [`volume-${id}.${format}`]);
  }
});

test('file driver: a qcow2 image becomes a volume of the backend format at the volume size', async () => {
  const driver = makeDriver('raw');
  const fixture = await qemuImage('qcow2', 512 * 1024 * 1024);
  const id = randomUUID();
  await driver.createFromImage({ id, size: 1, provider_location: null }, fixture.image, opened(fixture));
  const i = await info(driver.volumePath(id));
  assert.equal(i.format, 'raw');
  assert.equal(i['virtual-size'], GiB);
});

test("file driver: the image data's own virtual size is checked when the image service does not know it", async () => {
  const driver = makeDriver();
  const fixture = await qemuImage('qcow2', 3 * GiB);
  const id = randomUUID();
  await assert.rejects(driver.createFromImage({ id, size: 2, provider_location: null }, { ...fixture.image, virtual_size: null }, opened(fixture)), {
    name: 'DriverUserError',
    message: "Image virtual size is 3GB and doesn't fit in a volume of size 2GB.",
  });
  assert.deepEqual(fs.readdirSync(driver.dir), [], 'the download is removed');
});

test('file driver: image data that is not what the image claims, or that refers to another file, is refused and leaves nothing', async () => {
  const driver = makeDriver();
  const qcow2AsRaw = await qemuImage('qcow2', 1024 * 1024, [], 'raw');
  const base = path.join(root, 'secret-base.raw');
  fs.writeFileSync(base, 'host secret');
  const withBacking = await qemuImage('qcow2', 1024 * 1024, ['-b', base, '-F', 'raw']);
  const cases: [ImageFixture, RegExp][] = [
    [qcow2AsRaw, /has disk_format raw but its data is qcow2/],
    [withBacking, /refers to another file/],
  ];
  for (const [fixture, message] of cases) {
    const id = randomUUID();
    await assert.rejects(driver.createFromImage({ id, size: 1, provider_location: null }, fixture.image, opened(fixture)), (err: unknown) => err instanceof DriverUserError && message.test(err.message));
    assert.deepEqual(fs.readdirSync(driver.dir), [], 'no file is left');
  }
});

test('file driver: cleanup removes partial (.part) files and files of unknown volumes and snapshots', async () => {
  const driver = makeDriver();
  const known = randomUUID();
  await driver.createVolume({ id: known, size: 1, provider_location: null });
  const orphan = randomUUID();
  await driver.createVolume({ id: orphan, size: 1, provider_location: null });
  await driver.createSnapshot({ id: randomUUID(), volume_id: known, volume_size: 1, provider_location: null }, { id: known, size: 1, provider_location: null });
  fs.writeFileSync(path.join(driver.dir, `volume-${randomUUID()}.qcow2.part`), 'half');
  fs.writeFileSync(path.join(driver.dir, `volume-${known}.image.part`), 'half');
  fs.writeFileSync(path.join(driver.dir, 'unrelated.txt'), 'kept');
  await driver.cleanup([known], []);
  assert.deepEqual(fs.readdirSync(driver.dir).sort(), ['unrelated.txt', `volume-${known}.qcow2`].sort());
  assert.equal((await driver.stats()).allocated_capacity_gb, 1, 'sizes are learned from the files');
});

test('file driver: a stop in the middle of a copy kills qemu-img and leaves only a .part file', async () => {
  const driver = makeDriver();
  const source = randomUUID();
  await driver.createVolume({ id: source, size: 1, provider_location: null });
  const clone = randomUUID();
  const copying = driver.createClone({ id: clone, size: 1, provider_location: null }, { id: source, size: 1, provider_location: null });
  await driver.stop();
  const outcome = await copying.then(() => 'done', () => 'failed');
  // Either the copy was quick enough to finish, or it failed without leaving a finished-looking file.
  if (outcome === 'failed') assert.equal(fs.existsSync(driver.volumePath(clone)), false);
  await driver.cleanup([source, ...(outcome === 'done' ? [clone] : [])], []);
  assert.equal(fs.readdirSync(driver.dir).some((n) => n.endsWith('.part')), false);
});

test('file driver: a connector on the agent host gets the file; another host an NBD export that reads the volume', async () => {
  const driver = makeDriver('qcow2', 'volume-host');
  const fixture = rawImage(256 * 1024);
  const image: DriverImage = fixture.image;
  const imageFile = path.join(root, `source-${image.id}.raw`);
  fs.writeFileSync(imageFile, fixture.data);
  const id = randomUUID();
  const volume = { id, size: 1, provider_location: null };
  await driver.createFromImage(volume, image, opened(fixture));

  const local = await driver.initializeConnection(volume, { host: 'volume-host' }, randomUUID());
  assert.deepEqual(local, { driver_volume_type: 'local', data: { device_path: driver.volumePath(id), format: 'qcow2', access_mode: 'rw', volume_id: id } });

  const first = randomUUID();
  const second = randomUUID();
  const nbd = await driver.initializeConnection(volume, { host: 'compute-host' }, first);
  assert.equal(nbd.driver_volume_type, 'nbd');
  assert.equal(nbd.data.host, '127.0.0.1');
  assert.equal(nbd.data.export_name, id);
  assert.equal(nbd.data.format, 'raw');
  const url = `nbd://127.0.0.1:${String(nbd.data.port)}/${id}`;
  const remote = JSON.parse((await run('qemu-img', ['info', '--output=json', url])).stdout) as { 'virtual-size': number };
  assert.equal(remote['virtual-size'], GiB, 'the export has the volume size');
  const compared = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', imageFile, url]);
  assert.match(compared.stdout, /Images are identical/);
  assert.deepEqual(await driver.initializeConnection(volume, { host: 'compute-host' }, first), nbd, 'idempotent per attachment');
  assert.deepEqual((await driver.initializeConnection(volume, { host: 'other-compute' }, second)).data.port, nbd.data.port, 'a second attachment shares the export');

  await driver.terminateConnection(volume, { host: 'compute-host' }, first);
  await run('qemu-img', ['info', url]);
  await driver.terminateConnection(volume, null, second);
  await assert.rejects(run('qemu-img', ['info', url]), 'the export is gone with its last attachment');
  await driver.terminateConnection(volume, null, second);
  assert.deepEqual(fs.readdirSync(driver.dir), [`volume-${id}.qcow2`], 'no export record is left');
});

test('file driver: deleting a volume ends its exports; copyToImage converts to the disk format asked', async () => {
  const driver = makeDriver('raw');
  const id = randomUUID();
  const volume = { id, size: 1, provider_location: null };
  await driver.createVolume(volume);
  const qcow2 = await head(await driver.copyToImage(volume, 'qcow2'), 4);
  assert.deepEqual(qcow2, Buffer.from([0x51, 0x46, 0x49, 0xfb]), 'a qcow2 image starts with QFI\\xfb');
  await assert.rejects(driver.copyToImage(volume, 'ova'), /cannot be uploaded as disk format ova/);
  const nbd = await driver.initializeConnection(volume, { host: 'elsewhere' }, randomUUID());
  await driver.deleteVolume(volume);
  await assert.rejects(run('qemu-img', ['info', `nbd://127.0.0.1:${String(nbd.data.port)}/${id}`]));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(fs.readdirSync(driver.dir), [], 'the temporary upload file and the export records are gone');
});

test('file driver: a migration copies a volume of another backend through its local file or its NBD export', async () => {
  const source = makeDriver('qcow2', 'source-host');
  const id = randomUUID();
  const update = await source.createVolume({ id, size: 1, provider_location: null });
  const file = String(update.provider_location);
  // qemu-io ships with qemu-img (qemu-utils).
  await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 64k', file]);
  const head64k = async (f: string, format: string): Promise<Buffer> => {
    const out = path.join(root, `read-${randomUUID()}.raw`);
    await run('qemu-img', ['convert', '-U', '-f', format, '-O', 'raw', f, out]);
    const data = fs.readFileSync(out).subarray(0, 64 * 1024);
    fs.rmSync(out);
    return data;
  };
  const expected = await head64k(file, 'qcow2');
  assert.deepEqual(expected, Buffer.alloc(64 * 1024, 0x5a));
  const volume = { id, size: 1, provider_location: file };

  const local = await source.initializeConnection(volume, { host: 'source-host' }, `migration-${id}`);
  assert.equal(local.driver_volume_type, 'local');
  const here = makeDriver('raw');
  const copied = await here.createFromExport({ id, size: 1, provider_location: null }, local);
  assert.equal(copied.provider_location, path.join(here.dir, `volume-${id}.raw`));
  assert.deepEqual(await head64k(String(copied.provider_location), 'raw'), expected);
  assert.equal((await info(String(copied.provider_location)))['virtual-size'], GiB);

  const remote = await source.initializeConnection(volume, { host: 'other-host' }, `migration-${id}`);
  assert.equal(remote.driver_volume_type, 'nbd');
  try {
    const there = makeDriver('qcow2');
    const fromNbd = await there.createFromExport({ id, size: 1, provider_location: null }, remote);
    assert.deepEqual(await head64k(String(fromNbd.provider_location), 'qcow2'), expected);
  } finally {
    await source.terminateConnection(volume, { host: 'other-host' }, `migration-${id}`);
  }
  assert.equal(source.exports.read(id), null, 'the export ended');

  const failing = makeDriver('raw');
  await assert.rejects(failing.createFromExport({ id, size: 1, provider_location: null }, { driver_volume_type: 'fake', data: {} }), /cannot read a volume through a fake connection/);
  await assert.rejects(failing.createFromExport({ id, size: 1, provider_location: null }, { driver_volume_type: 'local', data: { device_path: path.join(root, 'missing.qcow2'), format: 'qcow2' } }), /qemu-img convert failed/);
  assert.deepEqual(fs.readdirSync(failing.dir), [], 'a failed copy leaves nothing');
});
