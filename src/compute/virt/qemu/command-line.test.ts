import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GuestSpec } from '../driver.js';
import { buildCommandLine, shellQuote, volumeBlockdev, volumeNodeName } from './command-line.js';
import { guestPaths, type GuestRecord } from './guest-record.js';

const uuid = '0b3c6f9e-1a2b-4c3d-8e9f-001122334455';

function spec(overrides: Partial<GuestSpec> = {}): GuestSpec {
  return {
    uuid,
    name: 'vm',
    vcpus: 2,
    memoryMb: 512,
    rootGb: 1,
    ephemeralGb: 0,
    swapMb: 0,
    imageRef: '',
    imageProperties: {},
    blockDevices: [],
    vifs: [],
    userData: null,
    keyData: null,
    configDrive: false,
    metadata: {},
    metadataInfo: { uuid, name: 'vm', hostname: 'vm', projectId: 'p', availabilityZone: null, launchIndex: 0, reservationId: 'r', flavorName: 'f', imageRef: '', keyName: null, keyData: null, userData: null, metadata: {}, vifs: [], createdAt: '' },
    ...overrides,
  };
}

/** The values of every `-<option>` in the argument list. */
function values(args: string[], option: string): string[] {
  return args.flatMap((a, i) => (a === option ? [args[i + 1] ?? ''] : []));
}

test('a guest booting from an NBD volume with a rescue disk, a data volume, swap, a config drive and a port', () => {
  const paths = guestPaths('/srv/instances', uuid);
  const root = { volumeId: 'aaaaaaaa-0000-0000-0000-000000000001', device: '/dev/vda', connectionInfo: { driver_volume_type: 'nbd', host: '10.0.0.5', port: 10809, export_name: 'vol-1' }, slot: 0x3 };
  const record: GuestRecord = {
    version: 1,
    spec: spec({ swapMb: 64 }),
    root: { kind: 'volume', volume: root },
    volumes: [{ volumeId: 'bbbbbbbb-0000-0000-0000-000000000002', device: '/dev/vdb', connectionInfo: { driver_volume_type: 'local', data: { device_path: '/srv/volumes/b', format: 'qcow2' }, access_mode: 'ro' }, slot: 0x8 }],
    nics: [{ portId: 'cccccccc-0000-0000-0000-000000000003', networkId: 'n', mac: 'fa:16:3e:00:00:01', devName: 'tapcccccccc-00', fixedIps: [], slot: 0x9, tapCreated: true }],
    configDrive: true,
    rescue: { base: { imageId: 'r', path: '/srv/instances/_base/r', format: 'qcow2', virtualSize: 1 } },
  };
  const args = buildCommandLine(record, paths, { accel: 'tcg', vncListen: '::1', incomingState: "/srv/it's/state" });
  assert.equal(values(args, '-name')[0], `guest=${uuid},debug-threads=on`);
  assert.deepEqual(values(args, '-accel'), ['tcg']);
  assert.deepEqual(values(args, '-cpu'), [], 'TCG keeps the default CPU model');
  assert.deepEqual(values(args, '-m'), ['512']);
  assert.deepEqual(values(args, '-smp'), ['2']);
  assert.deepEqual(values(args, '-vnc'), ['[::1]:0,to=4000']);
  assert.ok(args.includes('-daemonize'));
  assert.deepEqual(values(args, '-qmp'), [`unix:${paths.qmp},server=on,wait=off`, `unix:${paths.monitor},server=on,wait=off`]);
  const devices = values(args, '-device');
  // The rescue disk boots first, the guest's own (volume) disk second.
  assert.ok(devices.includes('virtio-blk-pci,drive=rescue,id=disk-rescue,addr=0x3,bootindex=1'));
  assert.ok(devices.includes(`virtio-blk-pci,drive=${volumeNodeName(root.volumeId)},id=volume-${root.volumeId},serial=aaaaaaaa-0000-0000-0,addr=0x4,bootindex=2`));
  assert.ok(devices.includes('virtio-blk-pci,drive=swap,id=disk-swap,addr=0x5'));
  assert.ok(devices.some((d) => d.startsWith('virtio-blk-pci,drive=vol-bbbbbbbb') && d.endsWith('addr=0x8')));
  assert.ok(devices.includes('ide-cd,drive=config,id=disk-config,bus=ide.1,unit=0'));
  assert.ok(devices.includes('virtio-net-pci,netdev=hostnet-cccccccc-0000-0000-0000-000000000003,id=nic-cccccccc-0000-0000-0000-000000000003,mac=fa:16:3e:00:00:01,addr=0x9'));
  assert.deepEqual(values(args, '-netdev'), ['tap,id=hostnet-cccccccc-0000-0000-0000-000000000003,ifname=tapcccccccc-00,script=no,downscript=no']);
  const blockdevs = values(args, '-blockdev').map((b) => JSON.parse(b) as Record<string, any>);
  const nbd = blockdevs.find((b) => b['node-name'] === volumeNodeName(root.volumeId));
  assert.deepEqual(nbd?.file, { driver: 'nbd', server: { type: 'inet', host: '10.0.0.5', port: '10809' }, export: 'vol-1', 'read-only': false });
  const local = blockdevs.find((b) => b['node-name']?.startsWith('vol-bbbbbbbb'));
  assert.equal(local?.driver, 'qcow2');
  assert.equal(local?.['read-only'], true, 'a read-only attachment stays read-only');
  assert.deepEqual(values(args, '-incoming'), [`exec:cat '/srv/it'\\''s/state'`]);
});

test('KVM guests get the host CPU; shell quoting; unknown connection types are refused', () => {
  const paths = guestPaths('/i', uuid);
  const record: GuestRecord = { version: 1, spec: spec(), root: { kind: 'image', base: { imageId: 'i', path: '/i/_base/x', format: 'raw', virtualSize: 1 } }, volumes: [], nics: [], configDrive: false, rescue: null };
  const args = buildCommandLine(record, paths, { accel: 'kvm', vncListen: '127.0.0.1' });
  assert.deepEqual(values(args, '-cpu'), ['host']);
  assert.deepEqual(values(args, '-vnc'), ['127.0.0.1:0,to=4000']);
  assert.equal(shellQuote("a'b"), `'a'\\''b'`);
  assert.throws(() => volumeBlockdev('v', { driver_volume_type: 'iscsi' }), /iscsi is not supported/);
  assert.ok(volumeNodeName('0b3c6f9e-1a2b-4c3d-8e9f-001122334455').length <= 31);
});
