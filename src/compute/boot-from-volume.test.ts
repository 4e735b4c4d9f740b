import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newUuid } from './common.js';
import { createFlowCloud, hostOf, type FlowCloud } from './api/cloud-flows.test-util.js';
import { volumeFlows, type VolumeFlows } from './api/volume-flows.test-util.js';

// Boot from volume (`block_device_mapping_v2`) on a test cloud with the
// block storage service: an existing volume, a volume made from an image, a
// snapshot or blank; Nova's checks at create; delete_on_termination; a
// volume that cannot be made puts the server in ERROR.

let f: FlowCloud;
let v: VolumeFlows;
/** A bootable volume of alpha's, made from the test image. */
let bootable: Record<string, any>;

before(async () => {
  f = await createFlowCloud({ volume: true });
  v = volumeFlows(f.cloud);
  bootable = await v.create({ size: 1, imageRef: f.imageId, name: 'root' });
});

after(async () => {
  await f.close();
});

/** `POST /servers` as alpha at 2.93 with these block devices (no image unless `imageRef` is in `extra`). */
function create(bdms: unknown[], extra: Record<string, unknown> = {}, version = '2.93'): Promise<{ status: number; body: any }> {
  return f.cloud.request('POST', '/servers', { user: f.cloud.alpha, version, payload: { server: { name: 'bfv', flavorRef: '1', networks: [{ uuid: f.networkId }], block_device_mapping_v2: bdms, ...extra } } });
}

async function boot(bdms: unknown[], extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await create(bdms, extra);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return f.waitFor(res.body.server.id as string, (s) => s.status !== 'BUILD');
}

async function deleteServer(id: string): Promise<void> {
  assert.equal((await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha })).status, 204);
  await f.waitFor(id, (s) => s.status === 'DELETED');
}

const rootOf = (uuid: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ uuid, source_type: 'volume', destination_type: 'volume', boot_index: 0, ...extra });

describe('boot from volume', () => {
  test('an existing volume: ACTIVE with image "", the volume in use as vda, no local disk claimed; the delete leaves it available', async () => {
    const server = await boot([rootOf(bootable.id, { delete_on_termination: false })], { imageRef: '' });
    assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
    assert.equal(server.image, '', 'no image');
    assert.deepEqual(server['os-extended-volumes:volumes_attached'], [{ id: bootable.id, delete_on_termination: false }]);
    const host = hostOf(server) ?? '';
    assert.deepEqual(v.driver(host).volumesOf(server.id), { [bootable.id]: '/dev/vda' }, 'the guest has it as its root');
    const volume = await v.waitFor(bootable.id, (vol) => vol.status === 'in-use');
    assert.equal(volume.attachments[0]?.server_id, server.id);
    const attachments = await f.cloud.request('GET', `/servers/${server.id}/os-volume_attachments`, { user: f.cloud.alpha, version: '2.79' });
    assert.deepEqual(attachments.body.volumeAttachments, [{ id: bootable.id, volumeId: bootable.id, serverId: server.id, device: '/dev/vda', tag: null, delete_on_termination: false }]);
    const claim = Object.values(await f.allocations(server.id))[0]?.resources ?? {};
    assert.equal(claim.DISK_GB, undefined, `placement was not asked for the root disk: ${JSON.stringify(claim)}`);
    assert.equal(claim.VCPU, 1);
    const root = await f.cloud.request('DELETE', `/servers/${server.id}/os-volume_attachments/${bootable.id}`, { user: f.cloud.alpha });
    assert.equal(root.status, 400, 'the root volume stays');
    assert.equal(root.body.badRequest.message, 'Cannot detach a root device volume');
    await deleteServer(server.id);
    const freed = await v.waitFor(bootable.id, (vol) => vol.status === 'available');
    assert.deepEqual(freed.attachments, [], 'detached by the delete, not deleted');
  });

  test('from an image: compute makes the volume in the user’s project; delete_on_termination deletes it with the server', async () => {
    const server = await boot([{ uuid: f.imageId, source_type: 'image', destination_type: 'volume', volume_size: 2, boot_index: 0, delete_on_termination: true }]);
    assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
    assert.equal(server.image, '');
    const [attached] = server['os-extended-volumes:volumes_attached'] as { id: string; delete_on_termination: boolean }[];
    assert.ok(attached, 'one volume');
    assert.equal(attached.delete_on_termination, true);
    const volume = (await v.call('GET', `/volumes/${attached.id}`)).body.volume;
    assert.equal(volume.status, 'in-use', 'alpha sees it: it is in alpha’s project');
    assert.equal(volume.size, 2);
    assert.equal(volume.bootable, 'true');
    assert.equal(volume.volume_image_metadata?.image_id, f.imageId);
    await deleteServer(server.id);
    assert.equal((await v.waitFor(attached.id, (vol) => vol.status === 'deleted')).status, 'deleted');
  });

  test('from a snapshot, with a blank data volume and an existing one tagged', async () => {
    const snap = await v.call('POST', '/snapshots', { payload: { snapshot: { volume_id: bootable.id, name: 'snap' } } });
    assert.equal(snap.status, 202, JSON.stringify(snap.body));
    const snapshotId = snap.body.snapshot.id as string;
    for (let i = 0; i < 500; i++) {
      const s = await v.call('GET', `/snapshots/${snapshotId}`);
      if (s.body.snapshot?.status === 'available') break;
      assert.notEqual(s.body.snapshot?.status, 'error');
      await new Promise((r) => setTimeout(r, 20));
    }
    const data = await v.create({ size: 1, name: 'data' });
    const server = await boot([
      { uuid: snapshotId, source_type: 'snapshot', destination_type: 'volume', boot_index: 0, delete_on_termination: true },
      { source_type: 'blank', destination_type: 'volume', volume_size: 1, boot_index: -1, delete_on_termination: true },
      { uuid: data.id, source_type: 'volume', destination_type: 'volume', tag: 'data' },
    ]);
    assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
    const mapped = (await f.cloud.request('GET', `/servers/${server.id}/os-volume_attachments`, { user: f.cloud.alpha, version: '2.79' })).body.volumeAttachments as Record<string, any>[];
    assert.deepEqual(
      mapped.map((m) => [m.device, m.tag, m.delete_on_termination]),
      [
        ['/dev/vda', null, true],
        ['/dev/vdb', null, true],
        ['/dev/vdc', 'data', false],
      ],
    );
    const root = (await v.call('GET', `/volumes/${mapped[0]?.volumeId}`)).body.volume;
    assert.equal(root.snapshot_id, snapshotId, 'the root was made from the snapshot');
    assert.equal(root.size, 1, 'the snapshot’s size');
    const blank = (await v.call('GET', `/volumes/${mapped[1]?.volumeId}`)).body.volume;
    assert.equal(blank.name, `${server.id}-blank-vol`);
    assert.equal(blank.status, 'in-use');
    assert.deepEqual(Object.keys(v.driver(hostOf(server) ?? '').volumesOf(server.id)).sort(), mapped.map((m) => m.volumeId).sort());
    await deleteServer(server.id);
    assert.equal((await v.waitFor(mapped[0]?.volumeId, (vol) => vol.status === 'deleted')).status, 'deleted');
    assert.equal((await v.waitFor(mapped[1]?.volumeId, (vol) => vol.status === 'deleted')).status, 'deleted');
    assert.equal((await v.waitFor(data.id, (vol) => vol.status === 'available')).status, 'available', 'kept');
    const snapDelete = await v.call('DELETE', `/snapshots/${snapshotId}`);
    assert.equal(snapDelete.status, 202);
  });

  test('a resize moves the volumes to the new host, a revert back, a live migration on; local disk is never claimed', async () => {
    const server = await boot([rootOf(bootable.id, { delete_on_termination: false })]);
    assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
    const source = hostOf(server) ?? '';
    const attachedTo = async (host: string): Promise<void> => {
      const vol = await v.waitFor(bootable.id, (x) => x.status === 'in-use' && x.attachments.length === 1);
      const admin = (await v.call('GET', `/volumes/${bootable.id}`, { user: f.cloud.admin })).body.volume;
      assert.equal(admin.attachments[0]?.host_name, host, `connected to ${host}: ${JSON.stringify(vol.attachments)}`);
      assert.deepEqual(v.driver(host).volumesOf(server.id), { [bootable.id]: '/dev/vda' }, `the guest on ${host} has its root`);
    };
    assert.equal((await f.act(server.id, { resize: { flavorRef: '2' } })).status, 202);
    const resized = await f.settle(server.id);
    assert.equal(resized.status, 'VERIFY_RESIZE', JSON.stringify(resized.fault));
    const dest = hostOf(resized) ?? '';
    assert.notEqual(dest, source);
    await attachedTo(dest);
    const claims = await f.allocations(server.id);
    assert.ok(Object.values(claims).every((c) => c.resources.DISK_GB === undefined), JSON.stringify(claims));
    assert.equal((await f.act(server.id, { revertResize: null })).status, 202);
    const back = await f.settle(server.id);
    assert.equal(back.status, 'ACTIVE', JSON.stringify(back.fault));
    assert.equal(hostOf(back), source);
    await attachedTo(source);
    const live = await f.act(server.id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, { user: f.cloud.admin, version: '2.25' });
    assert.equal(live.status, 202, JSON.stringify(live.body));
    const migrated = await f.waitFor(server.id, (x) => x['OS-EXT-STS:task_state'] === null && hostOf(x) !== source);
    assert.equal(migrated.status, 'ACTIVE', JSON.stringify(migrated.fault));
    await attachedTo(hostOf(migrated) ?? '');
    await deleteServer(server.id);
    await v.waitFor(bootable.id, (x) => x.status === 'available');
  });

  test('shelve offloads a volume-backed server at once (its volume stays reserved for it); unshelve connects it again', async () => {
    const server = await boot([rootOf(bootable.id, { delete_on_termination: false })]);
    assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
    assert.equal((await f.act(server.id, { shelve: null })).status, 202);
    const shelved = await f.waitFor(server.id, (s) => s.status === 'SHELVED_OFFLOADED');
    assert.equal(hostOf(shelved), null);
    const reserved = await v.waitFor(bootable.id, (x) => x.status === 'reserved');
    assert.equal(reserved.attachments.length, 0, 'no host has it');
    assert.equal((await f.act(server.id, { unshelve: null })).status, 202);
    const back = await f.waitFor(server.id, (s) => s.status === 'ACTIVE');
    const host = hostOf(back) ?? '';
    assert.deepEqual(v.driver(host).volumesOf(server.id), { [bootable.id]: '/dev/vda' });
    const inUse = await v.waitFor(bootable.id, (x) => x.status === 'in-use');
    assert.equal(inUse.attachments[0]?.server_id, server.id);
    await deleteServer(server.id);
    await v.waitFor(bootable.id, (x) => x.status === 'available');
  });

  test('a volume that cannot be made puts the server in ERROR with a fault; its delete (no host) removes what it kept', async () => {
    const data = await v.create({ size: 1 });
    const server = await boot([
      { uuid: f.imageId, source_type: 'image', destination_type: 'volume', volume_size: 5000, boot_index: 0, delete_on_termination: true },
      { uuid: data.id, source_type: 'volume', destination_type: 'volume', delete_on_termination: true },
    ]);
    assert.equal(server.status, 'ERROR');
    assert.match(server.fault.message, /Failure prepping block device/);
    assert.equal(server.fault.code, 500);
    assert.equal(hostOf(server), null, 'no host keeps it');
    assert.equal((await v.waitFor(data.id, (vol) => vol.status === 'available')).status, 'available', 'the existing volume is released');
    await deleteServer(server.id);
    assert.equal((await v.waitFor(data.id, (vol) => vol.status === 'deleted')).status, 'deleted', 'delete_on_termination holds for a server that never ran');
  });
});

describe('the checks of a create with block devices', () => {
  test('Nova’s 400s, and nothing is recorded or reserved', async () => {
    const before = (await f.cloud.request('GET', '/servers', { user: f.cloud.alpha })).body.servers.length as number;
    const unknown = newUuid();
    const cases: [string, unknown[], Record<string, unknown>, string | RegExp][] = [
      ['unknown root volume', [rootOf(unknown)], {}, `Block Device Mapping is Invalid: failed to get volume ${unknown}.`],
      ['unknown data volume', [{ uuid: unknown, source_type: 'volume', destination_type: 'volume' }], { imageRef: f.imageId }, `Volume ${unknown} could not be found.`],
      ['no boot device', [{ uuid: bootable.id, source_type: 'volume', destination_type: 'volume', boot_index: 1 }], {}, 'Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.'],
      ['image without size', [{ uuid: f.imageId, source_type: 'image', destination_type: 'volume', boot_index: 0 }], {}, "Images with destination_type 'volume' need to have a non-zero size specified"],
      ['blank without size', [{ source_type: 'blank', destination_type: 'volume', boot_index: 0 }], {}, "Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size"],
      ['bad destination in the 2nd', [{ source_type: 'image', uuid: f.imageId, boot_index: 0, destination_type: 'local', delete_on_termination: true }, { source_type: 'volume', uuid: bootable.id, destination_type: 'invalid' }], { imageRef: f.imageId }, /destination_type/],
      ['unknown source', [{ source_type: 'floppy', uuid: bootable.id, boot_index: 0 }], {}, /source_type/],
      ['image to local', [{ source_type: 'image', uuid: f.imageId, destination_type: 'local', boot_index: 0 }], {}, 'Block Device Mapping is Invalid: Mapping image to local is not supported.'],
      ['blank with uuid', [{ source_type: 'blank', uuid: bootable.id, destination_type: 'volume', volume_size: 1, boot_index: 0 }], {}, 'Block Device Mapping is Invalid: Invalid device UUID.'],
      ['no source', [{ uuid: bootable.id, boot_index: 0 }], {}, 'Block Device Mapping is Invalid: Some required fields are missing'],
      ['two servers', [rootOf(bootable.id)], { min_count: 2 }, 'Cannot attach one or more volumes to multiple instances'],
      ['unknown snapshot', [{ uuid: unknown, source_type: 'snapshot', destination_type: 'volume', boot_index: 0 }], {}, `Block Device Mapping is Invalid: failed to get snapshot ${unknown}.`],
      ['both syntaxes', [rootOf(bootable.id)], { block_device_mapping: [{ volume_id: bootable.id, device_name: 'vda' }] }, 'Using different block_device_mapping syntaxes is not allowed in the same request.'],
    ];
    for (const [name, bdms, extra, message] of cases) {
      const res = await create(bdms, extra);
      assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`);
      if (typeof message === 'string') assert.equal(res.body.badRequest.message, message, name);
      else assert.match(res.body.badRequest.message, message, name);
    }
    const noImage = await f.cloud.request('POST', '/servers', { user: f.cloud.alpha, version: '2.93', payload: { server: { name: 'x', flavorRef: '1', networks: 'none' } } });
    assert.equal(noImage.status, 400);
    assert.equal(noImage.body.badRequest.message, 'Missing imageRef attribute');
    assert.equal((await f.cloud.request('GET', '/servers', { user: f.cloud.alpha })).body.servers.length, before, 'no server recorded');
    const volume = (await v.call('GET', `/volumes/${bootable.id}`)).body.volume;
    assert.equal(volume.status, 'available', 'nothing reserved');
    assert.deepEqual(volume.attachments, []);
  });

  test('a volume in use is 400 Invalid volume; a non-bootable root 400; another project’s volume 400 not found', async () => {
    const data = await v.create({ size: 1 });
    const first = await boot([rootOf(bootable.id, { delete_on_termination: false }), { uuid: data.id, source_type: 'volume', destination_type: 'volume' }]);
    assert.equal(first.status, 'ACTIVE', JSON.stringify(first.fault));
    const busy = await create([rootOf(bootable.id)]);
    assert.equal(busy.status, 400);
    assert.equal(busy.body.badRequest.message, `Invalid volume: volume '${bootable.id}' status must be 'available'. Currently in 'in-use'`);
    await deleteServer(first.id);
    await v.waitFor(bootable.id, (vol) => vol.status === 'available');
    const blank = await create([rootOf(data.id)]);
    assert.equal(blank.status, 400, 'a volume not made from an image is not bootable');
    assert.equal(blank.body.badRequest.message, `Block Device ${data.id} is not bootable.`);
    const betas = await v.create({ size: 1, imageRef: f.imageId }, f.cloud.beta);
    const foreign = await create([rootOf(betas.id)]);
    assert.equal(foreign.status, 400);
    assert.equal(foreign.body.badRequest.message, `Block Device Mapping is Invalid: failed to get volume ${betas.id}.`);
    const legacy = await f.cloud.request('POST', '/servers', { user: f.cloud.alpha, version: '2.93', payload: { server: { name: 'legacy', flavorRef: '1', networks: 'none', block_device_mapping: [{ volume_id: bootable.id, device_name: 'vda', delete_on_termination: false }] } } });
    assert.equal(legacy.status, 202, `the legacy syntax boots too: ${JSON.stringify(legacy.body)}`);
    const server = await f.waitFor(legacy.body.server.id as string, (s) => s.status !== 'BUILD');
    assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
    assert.equal(server.image, '');
    await deleteServer(server.id);
    await v.waitFor(bootable.id, (vol) => vol.status === 'available');
  });

  test('a volume-backed server is rebuilt only with its own image', async () => {
    const server = await boot([rootOf(bootable.id, { delete_on_termination: false })]);
    assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
    const other = await f.cloud.call('image', 'POST', '/v2/images', { user: f.cloud.admin, payload: { name: 'other', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
    const upload = await fetch(`${f.cloud.urls.image}/v2/images/${other.body.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': f.cloud.admin.token, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(16) });
    assert.equal(upload.status, 204);
    const rebuild = await f.act(server.id, { rebuild: { imageRef: other.body.id } }, { version: '2.92' });
    assert.equal(rebuild.status, 400, JSON.stringify(rebuild.body));
    assert.equal(rebuild.body.badRequest.message, `Image ${other.body.id} is unacceptable: Unable to rebuild with a different image for a volume-backed server.`);
    await deleteServer(server.id);
    await v.waitFor(bootable.id, (vol) => vol.status === 'available');
  });
});
