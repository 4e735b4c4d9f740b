import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { checkDiskFormat, convertImage, FormatInspectionError, inspectImage, qemuImgAvailable } from './inspect.js';

const run = promisify(execFile);
const MIB = 1024 * 1024;

const skip = (await qemuImgAvailable()) ? false : 'qemu-img is not installed (apt-get install qemu-utils)';
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-image-formats-'));
after(() => fs.rm(dir, { recursive: true, force: true }));

function inDir(name: string): string {
  return path.join(dir, name);
}

/** `qemu-img create -f <format> [extra] <name> 1M`. */
async function created(name: string, format: string, ...extra: string[]): Promise<string> {
  const file = inDir(name);
  await run('qemu-img', ['create', '-q', '-f', format, ...extra, file, '1M']);
  return file;
}

async function written(name: string, data: Uint8Array | string): Promise<string> {
  const file = inDir(name);
  await fs.writeFile(file, data);
  return file;
}

/** A stand-in for qemu-img: a shell script that may hand over to the real one. */
async function fakeQemuImg(name: string, body: string): Promise<string> {
  const file = inDir(name);
  await fs.writeFile(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

async function inspectionError(promise: Promise<unknown>): Promise<FormatInspectionError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof FormatInspectionError) return err;
    throw err;
  }
  assert.fail('expected a FormatInspectionError');
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

test('random bytes are raw: accepted as raw, ami, aki, ari; refused as qcow2 and iso', { skip }, async () => {
  const info = await inspectImage(await written('random.raw', crypto.randomBytes(MIB)));
  assert.deepEqual(info, { format: 'raw', virtualSize: MIB, backingFile: null, dataFile: null, encrypted: false });
  for (const declared of ['raw', 'ami', 'aki', 'ari']) assert.equal(checkDiskFormat(declared, info), null, declared);
  assert.equal(checkDiskFormat('qcow2', info), "Image disk_format 'qcow2' does not match the data, which is 'raw'");
  assert.equal(checkDiskFormat('iso', info), "Image disk_format 'iso' does not match the data, which is 'raw'");
});

test('qcow2 is detected with its virtual size: accepted as qcow2, refused as raw', { skip }, async () => {
  const info = await inspectImage(await created('plain.qcow2', 'qcow2'));
  assert.deepEqual(info, { format: 'qcow2', virtualSize: MIB, backingFile: null, dataFile: null, encrypted: false });
  assert.equal(checkDiskFormat('qcow2', info), null);
  assert.equal(checkDiskFormat('raw', info), "Image disk_format 'raw' does not match the data, which is 'qcow2'");
});

test('a qcow2 whose backing file is missing is inspected without opening it, and refused', { skip }, async () => {
  // -u: qemu-img create itself would otherwise open the backing file.
  const file = await created('missing-backing.qcow2', 'qcow2', '-u', '-F', 'raw', '-b', '/nonexistent/file');
  // The control: qemu fails when it does open the backing file.
  await assert.rejects(run('qemu-img', ['info', '--backing-chain', file]), /Could not open/);
  const info = await inspectImage(file);
  assert.equal(info.format, 'qcow2');
  assert.equal(info.backingFile, '/nonexistent/file');
  assert.equal(checkDiskFormat('qcow2', info), "Image data (qcow2) has a backing file '/nonexistent/file', which is not allowed");
});

test('a qcow2 backed by /etc/passwd is reported and refused, and never converted', { skip }, async () => {
  const file = await created('passwd-backing.qcow2', 'qcow2', '-F', 'raw', '-b', '/etc/passwd');
  const info = await inspectImage(file);
  assert.equal(info.backingFile, '/etc/passwd');
  assert.match(checkDiskFormat('qcow2', info) ?? '', /backing file '\/etc\/passwd', which is not allowed/);
  const target = inDir('passwd-backing.raw');
  const error = await inspectionError(convertImage(file, target, 'raw'));
  assert.equal(error.kind, 'invalid');
  assert.equal(await exists(target), false, 'nothing is written for a refused conversion');
});

test('a qcow2 with an external data file reports it without needing it, and is refused', { skip }, async () => {
  const data = inDir('external.data');
  // A comma in the name exercises the escaping of --image-opts.
  const file = await created('with,data-file.qcow2', 'qcow2', '-o', `data_file=${data}`);
  await fs.rm(data);
  const info = await inspectImage(file);
  assert.equal(info.format, 'qcow2');
  assert.equal(info.dataFile, data);
  assert.equal(checkDiskFormat('qcow2', info), `Image data (qcow2) has an external data file '${data}', which is not allowed`);
  const error = await inspectionError(convertImage(file, inDir('data-file.raw'), 'raw'));
  assert.equal(error.kind, 'invalid');
});

test('a VMDK text descriptor is read without qemu opening its extents, and refused', { skip }, async () => {
  const descriptor = (extent: string): string =>
    `# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\nRW 4 FLAT "${extent}" 0\n`;
  const missing = await written('missing-extent.vmdk', descriptor('/nonexistent/extent'));
  // The control: qemu itself opens the extents of a descriptor.
  await assert.rejects(run('qemu-img', ['info', missing]), /Could not open/);
  assert.equal((await inspectImage(missing)).dataFile, '/nonexistent/extent');

  const info = await inspectImage(await written('shadow.vmdk', descriptor('/etc/shadow')));
  assert.deepEqual(info, { format: 'vmdk', virtualSize: 2048, backingFile: null, dataFile: '/etc/shadow', encrypted: false });
  assert.equal(checkDiskFormat('vmdk', info), "Image data (vmdk) has an external data file '/etc/shadow', which is not allowed");
});

test('vmdk, vhd (vpc), vhdx, vdi and ploop (parallels) are detected and matched', { skip }, async () => {
  const cases = [
    ['vmdk', 'vmdk'],
    ['vhd', 'vpc'],
    ['vhdx', 'vhdx'],
    ['vdi', 'vdi'],
    ['ploop', 'parallels'],
  ] as const;
  for (const [declared, qemuFormat] of cases) {
    const info = await inspectImage(await created(`disk.${qemuFormat}`, qemuFormat));
    assert.equal(info.format, qemuFormat);
    // vpc rounds the size up to its cylinder/head/sector geometry.
    assert.ok((info.virtualSize ?? 0) >= MIB, `${qemuFormat} virtual size ${String(info.virtualSize)}`);
    assert.equal(info.dataFile, null, `${qemuFormat} lists only itself as an extent`);
    assert.equal(checkDiskFormat(declared, info), null, declared);
    assert.equal(checkDiskFormat('raw', info), `Image disk_format 'raw' does not match the data, which is '${qemuFormat}'`);
  }
});

test('an ISO 9660 image is iso: accepted as iso and raw, refused as qcow2', { skip }, async () => {
  const bytes = Buffer.alloc(64 * 1024);
  bytes.write('\x01CD001', 0x8000, 'latin1'); // type 1 (primary volume descriptor), then the signature at 0x8001
  const info = await inspectImage(await written('minimal.iso', bytes));
  assert.deepEqual(info, { format: 'iso', virtualSize: 64 * 1024, backingFile: null, dataFile: null, encrypted: false });
  assert.equal(checkDiskFormat('iso', info), null);
  assert.equal(checkDiskFormat('raw', info), null);
  assert.equal(checkDiskFormat('qcow2', info), "Image disk_format 'qcow2' does not match the data, which is 'iso'");
});

test('garbage or a truncated qcow2 declared qcow2 is refused, not a crash', { skip }, async () => {
  const garbage = await inspectImage(await written('garbage.qcow2', crypto.randomBytes(4096)));
  assert.equal(checkDiskFormat('qcow2', garbage), "Image disk_format 'qcow2' does not match the data, which is 'raw'");

  const whole = await fs.readFile(await created('whole.qcow2', 'qcow2'));
  const truncated = await written('truncated.qcow2', whole.subarray(0, 50));
  const error = await inspectionError(inspectImage(truncated));
  assert.equal(error.kind, 'invalid');
  assert.match(error.message, /qcow2 header too short/);
  assert.equal(error.message.includes(dir), false, `the server's path is masked: ${error.message}`);
  assert.match(error.detail, /truncated\.qcow2/);
});

test('an empty file is raw of size 0', { skip }, async () => {
  const info = await inspectImage(await written('empty', ''));
  assert.deepEqual(info, { format: 'raw', virtualSize: 0, backingFile: null, dataFile: null, encrypted: false });
  assert.equal(checkDiskFormat('raw', info), null);
  assert.notEqual(checkDiskFormat('qcow2', info), null, 'empty data is no qcow2');
  assert.notEqual(checkDiskFormat('iso', info), null, 'empty data has no ISO signature');
});

/**
 * A LUKS1 volume with all key slots disabled: enough for qemu-img info, which
 * opens LUKS without I/O. qemu-img create -f luks cannot be used: it times
 * its PBKDF2 on thread CPU time and fails about half the time on a fast host
 * ("Unable to get accurate CPU usage").
 */
function luksVolume(): Buffer {
  const payloadSectors = 4096; // 8 key slots of 500 sectors (64-byte key, 4000 stripes) fit before it
  const volume = Buffer.alloc(payloadSectors * 512 + MIB);
  volume.write('LUKS\xba\xbe', 0, 'latin1');
  volume.writeUInt16BE(1, 6);
  volume.write('aes', 8);
  volume.write('xts-plain64', 40);
  volume.write('sha256', 72);
  volume.writeUInt32BE(payloadSectors, 104);
  volume.writeUInt32BE(64, 108); // master key bytes
  volume.writeUInt32BE(1000, 164); // master key digest iterations
  volume.write('6d0ad2d5-3b8e-4b7e-9b2e-2f0c8a1c3e41', 168);
  for (let slot = 0; slot < 8; slot++) {
    const at = 208 + slot * 48;
    volume.writeUInt32BE(0xdead, at); // disabled
    volume.writeUInt32BE(8 + slot * 512, at + 40); // key material sector
    volume.writeUInt32BE(4000, at + 44); // stripes
  }
  return volume;
}

test('encrypted data is refused: LUKS under any Glance format, an encrypted qcow2 as qcow2', { skip }, async () => {
  const luks = await inspectImage(await written('disk.luks', luksVolume()));
  assert.deepEqual(luks, { format: 'luks', virtualSize: MIB, backingFile: null, dataFile: null, encrypted: true });
  assert.equal(checkDiskFormat('raw', luks), "Image disk_format 'raw' does not match the data, which is 'luks'");

  // Legacy AES, because creating a LUKS-encrypted qcow2 has the same timing problem.
  const secret = ['--object', 'secret,id=sec0,data=password', '-o', 'encrypt.format=aes,encrypt.key-secret=sec0'];
  const qcow2 = await inspectImage(await created('encrypted.qcow2', 'qcow2', ...secret));
  assert.equal(qcow2.encrypted, true);
  assert.equal(checkDiskFormat('qcow2', qcow2), 'Image data (qcow2) is encrypted, which is not allowed');
  assert.equal((await inspectionError(convertImage(inDir('encrypted.qcow2'), inDir('encrypted.raw'), 'raw'))).kind, 'invalid');
});

test('an unknown declared disk_format is refused with the list of known ones', () => {
  const info = { format: 'qed', virtualSize: MIB, backingFile: null, dataFile: null, encrypted: false };
  const message = checkDiskFormat('qed', info) ?? '';
  assert.match(message, /^Image disk_format 'qed' is not supported; use one of ami, ari, aki, raw, iso, qcow2/);
  assert.notEqual(checkDiskFormat('constructor', info), null, 'no prototype keys');
});

test('convert raw to qcow2 and back keeps the bytes and the virtual size', { skip }, async () => {
  const original = Buffer.concat([crypto.randomBytes(64 * 1024), Buffer.alloc(MIB - 64 * 1024)]);
  const raw = await written('original.raw', original);
  const qcow2 = inDir('converted.qcow2');
  await convertImage(raw, qcow2, 'qcow2');
  assert.deepEqual(await inspectImage(qcow2), { format: 'qcow2', virtualSize: MIB, backingFile: null, dataFile: null, encrypted: false });

  const back = inDir('converted.raw');
  await convertImage(qcow2, back, 'raw');
  assert.equal((await fs.stat(back)).size, MIB);
  assert.equal((await inspectImage(back)).format, 'raw');
  assert.ok(original.equals(await fs.readFile(back)), 'the round trip keeps every byte');
});

test('a failed conversion removes its partial target', { skip }, async () => {
  // Creates the target, then fails; info goes to the real qemu-img.
  const qemuImg = await fakeQemuImg(
    'qemu-img-fails-convert',
    'if [ "$1" = convert ]; then for last; do :; done; echo partial > "$last"; echo "qemu-img: disk full" >&2; exit 1; fi\nexec qemu-img "$@"',
  );
  const target = inDir('partial.raw');
  const error = await inspectionError(convertImage(await created('source.qcow2', 'qcow2'), target, 'raw', { qemuImg }));
  assert.equal(error.kind, 'failed');
  assert.equal(error.message, 'Image conversion failed: disk full');
  assert.equal(await exists(target), false, 'the partial target is removed');
});

test('qemu-img missing, hanging, too talkative or not printing JSON gives typed errors', async () => {
  const image = await written('some.raw', crypto.randomBytes(4096));
  assert.equal(await qemuImgAvailable('/nonexistent/qemu-img'), false);
  assert.equal((await inspectionError(inspectImage(image, { qemuImg: '/nonexistent/qemu-img' }))).kind, 'unavailable');

  // The sleep outlasts the limit by far, so the outcome does not depend on the machine's speed.
  const hangs = await fakeQemuImg('qemu-img-hangs', 'exec sleep 600');
  assert.equal((await inspectionError(inspectImage(image, { qemuImg: hangs, timeoutMs: 100 }))).kind, 'timeout');

  const talks = await fakeQemuImg('qemu-img-talks', 'head -c 2000000 /dev/zero');
  assert.equal((await inspectionError(inspectImage(image, { qemuImg: talks }))).kind, 'failed');

  const prose = await fakeQemuImg('qemu-img-prose', 'echo hello');
  assert.equal((await inspectionError(inspectImage(image, { qemuImg: prose }))).kind, 'failed');
});
