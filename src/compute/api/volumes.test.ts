import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newUuid } from '../common.js';
import { createFlowCloud, type FlowCloud } from './cloud-flows.test-util.js';
import { volumeFlows, type VolumeFlows } from './volume-flows.test-util.js';
import { volumesBootAsServers } from './volumes.js';

// os-volumes, os-snapshots and os-volumes_boot against the real block
// storage service (fake backends): Nova's views of its volumes and
// snapshots, the caller's project only, Nova's errors, 404 from 2.36.

let f: FlowCloud;
let v: VolumeFlows;

before(async () => {
  f = await createFlowCloud({ volume: true });
  v = volumeFlows(f.cloud);
});

after(async () => {
  await f.close();
});

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/;

/** Creates a volume through os-volumes as alpha and waits until it is available; returns Nova's view of it. */
async function novaVolume(extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await f.cloud.request('POST', '/os-volumes', { user: f.cloud.alpha, version: '2.1', payload: { volume: { size: 1, ...extra } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  await v.waitFor(res.body.volume.id, (vol) => vol.status === 'available');
  const shown = await f.cloud.request('GET', `/os-volumes/${res.body.volume.id}`, { user: f.cloud.alpha, version: '2.1' });
  assert.equal(shown.status, 200);
  return shown.body.volume;
}

describe('os-volumes', () => {
  test('create shows Nova\'s view; show, list and detail show the same volume', async () => {
    const res = await f.cloud.request('POST', '/os-volumes', {
      user: f.cloud.alpha,
      version: '2.1',
      payload: { volume: { size: 1, display_name: 'data', display_description: 'work files', metadata: { Type: 'work' } } },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const created = res.body.volume;
    assert.match(String(res.headers.location), new RegExp(`/v2\\.1/os-volumes/${created.id}$`));
    assert.deepEqual(Object.keys(created).sort(), ['attachments', 'availabilityZone', 'createdAt', 'displayDescription', 'displayName', 'id', 'metadata', 'size', 'snapshotId', 'status', 'volumeType']);
    assert.equal(created.displayName, 'data');
    assert.equal(created.displayDescription, 'work files');
    assert.equal(created.size, 1);
    assert.deepEqual(created.metadata, { Type: 'work' });
    assert.deepEqual(created.attachments, [{}]);
    assert.equal(created.snapshotId, null);
    assert.match(created.createdAt, ISO);

    await v.waitFor(created.id, (vol) => vol.status === 'available');
    const shown = (await f.cloud.request('GET', `/os-volumes/${created.id}`, { user: f.cloud.alpha, version: '2.35' })).body.volume;
    assert.equal(shown.status, 'available');
    assert.equal(shown.availabilityZone, 'nova');
    assert.equal(shown.volumeType, '__DEFAULT__');
    const cinderSide = await v.call('GET', `/volumes/${created.id}`);
    assert.equal(cinderSide.body.volume.name, 'data', 'the block storage service has it under its own name');

    for (const path of ['/os-volumes', '/os-volumes/detail']) {
      const list = await f.cloud.request('GET', path, { user: f.cloud.alpha, version: '2.1' });
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.volumes.find((x: { id: string }) => x.id === created.id),
        shown,
        `${path} shows what show shows`,
      );
    }
  });

  test('offset and limit page the list as Nova does; bad values are 400', async () => {
    await novaVolume();
    await novaVolume();
    const all = (await f.cloud.request('GET', '/os-volumes', { user: f.cloud.alpha, version: '2.1' })).body.volumes as { id: string }[];
    assert.ok(all.length >= 3);
    const two = await f.cloud.request('GET', '/os-volumes/detail?limit=2', { user: f.cloud.alpha, version: '2.1' });
    assert.equal(two.body.volumes.length, 2);
    const second = await f.cloud.request('GET', '/os-volumes?offset=1&limit=1', { user: f.cloud.alpha, version: '2.1' });
    assert.deepEqual(
      second.body.volumes.map((x: { id: string }) => x.id),
      [all[1]?.id],
    );
    for (const query of ['limit=abc', 'offset=-1']) {
      const bad = await f.cloud.request('GET', `/os-volumes?${query}`, { user: f.cloud.alpha, version: '2.1' });
      assert.equal(bad.status, 400, query);
      assert.match(bad.body.badRequest.message, /^(limit|offset) param must be/);
    }
  });

  test('an attached volume names its server and device', async () => {
    const volume = await novaVolume({ display_name: 'attached' });
    const serverId = await f.boot('with-volume');
    const attach = await f.cloud.request('POST', `/servers/${serverId}/os-volume_attachments`, { user: f.cloud.alpha, version: '2.1', payload: { volumeAttachment: { volumeId: volume.id } } });
    assert.equal(attach.status, 200, JSON.stringify(attach.body));
    await v.waitFor(volume.id, (vol) => vol.status === 'in-use');
    const shown = (await f.cloud.request('GET', `/os-volumes/${volume.id}`, { user: f.cloud.alpha, version: '2.1' })).body.volume;
    assert.equal(shown.status, 'in-use');
    assert.deepEqual(shown.attachments, [{ id: volume.id, volumeId: volume.id, serverId, device: attach.body.volumeAttachment.device }]);

    const refused = await f.cloud.request('DELETE', `/os-volumes/${volume.id}`, { user: f.cloud.alpha, version: '2.1' });
    assert.equal(refused.status, 400, 'an attached volume cannot be deleted');
    assert.equal((await v.call('GET', `/volumes/${volume.id}`)).body.volume.status, 'in-use', 'and it is still there');
  });

  test('delete: 202, then the volume is gone', async () => {
    const volume = await novaVolume();
    const res = await f.cloud.request('DELETE', `/os-volumes/${volume.id}`, { user: f.cloud.alpha, version: '2.1' });
    assert.equal(res.status, 202);
    assert.deepEqual(await v.waitFor(volume.id, () => false), { id: volume.id, status: 'deleted' });
    const gone = await f.cloud.request('GET', `/os-volumes/${volume.id}`, { user: f.cloud.alpha, version: '2.1' });
    assert.equal(gone.status, 404);
  });

  test('bad sizes and bodies are 400 and create nothing', async () => {
    const before = (await v.call('GET', '/volumes')).body.volumes.length;
    const cases: [unknown, RegExp][] = [
      [{ volume: { size: '#$%' } }, /size.*does not match/],
      [{ volume: { size: '' } }, /size.*does not match/],
      [{ volume: { size: '0' } }, /size.*less than the minimum of 1/],
      [{ volume: { size: 0 } }, /size.*less than the minimum of 1/],
      [{ volume: { display_name: 'no-size' } }, /'size' is a required property/],
      [{ volume: { size: 1, imageRef: newUuid() } }, /'imageRef' was unexpected/],
      [{ volume: { size: 1, metadata: 'x' } }, /metadata.*is not of type 'object'/],
      [{ size: 1 }, /'volume' is a required property/],
    ];
    for (const [payload, message] of cases) {
      const res = await f.cloud.request('POST', '/os-volumes', { user: f.cloud.alpha, version: '2.1', payload });
      assert.equal(res.status, 400, JSON.stringify(payload));
      assert.match(res.body.badRequest.message, message);
    }
    const unknownType = await f.cloud.request('POST', '/os-volumes', { user: f.cloud.alpha, version: '2.1', payload: { volume: { size: 1, volume_type: 'no-such-type' } } });
    assert.equal(unknownType.status, 404, JSON.stringify(unknownType.body));
    const unknownSnapshot = newUuid();
    const fromSnapshot = await f.cloud.request('POST', '/os-volumes', { user: f.cloud.alpha, version: '2.1', payload: { volume: { size: 1, snapshot_id: unknownSnapshot } } });
    assert.equal(fromSnapshot.status, 404);
    assert.equal(fromSnapshot.body.itemNotFound.message, `Snapshot ${unknownSnapshot} could not be found.`);
    assert.equal((await v.call('GET', '/volumes')).body.volumes.length, before);
  });

  test('unknown ids, empty ids and another project\'s volume are 404', async () => {
    const unknown = newUuid();
    const show = await f.cloud.request('GET', `/os-volumes/${unknown}`, { user: f.cloud.alpha, version: '2.1' });
    assert.equal(show.status, 404);
    assert.equal(show.body.itemNotFound.message, `Volume ${unknown} could not be found.`);
    assert.equal((await f.cloud.request('DELETE', `/os-volumes/${unknown}`, { user: f.cloud.alpha, version: '2.1' })).status, 404);
    assert.equal((await f.cloud.request('DELETE', '/os-volumes/invalid-name', { user: f.cloud.alpha, version: '2.1' })).status, 404);
    assert.equal((await f.cloud.request('GET', '/os-volumes/', { user: f.cloud.alpha, version: '2.1' })).status, 404);
    assert.equal((await f.cloud.request('DELETE', '/os-volumes/', { user: f.cloud.alpha, version: '2.1' })).status, 404);

    const alphas = await novaVolume({ display_name: 'private' });
    assert.equal((await f.cloud.request('GET', `/os-volumes/${alphas.id}`, { user: f.cloud.beta, version: '2.1' })).status, 404);
    assert.equal((await f.cloud.request('DELETE', `/os-volumes/${alphas.id}`, { user: f.cloud.beta, version: '2.1' })).status, 404);
    const betaList = await f.cloud.request('GET', '/os-volumes/detail', { user: f.cloud.beta, version: '2.1' });
    assert.equal(betaList.status, 200);
    assert.ok(!betaList.body.volumes.some((x: { id: string }) => x.id === alphas.id), "beta does not see alpha's volume");
    assert.equal((await v.call('GET', `/volumes/${alphas.id}`)).body.volume.status, 'available', 'and it is still there');
  });

  test('a reader lists but may not create; from 2.36 the API is gone (404)', async () => {
    assert.equal((await f.cloud.request('GET', '/os-volumes', { user: f.cloud.alphaReader, version: '2.1' })).status, 200);
    const create = await f.cloud.request('POST', '/os-volumes', { user: f.cloud.alphaReader, version: '2.1', payload: { volume: { size: 1 } } });
    assert.equal(create.status, 403);
    for (const [method, path] of [
      ['GET', '/os-volumes'],
      ['GET', '/os-volumes/detail'],
      ['GET', `/os-volumes/${newUuid()}`],
      ['DELETE', `/os-volumes/${newUuid()}`],
      ['GET', '/os-snapshots'],
    ] as const) {
      const res = await f.cloud.request(method, path, { user: f.cloud.alpha, version: '2.36' });
      assert.equal(res.status, 404, `${method} ${path}`);
    }
    const post = await f.cloud.request('POST', '/os-volumes', { user: f.cloud.alpha, version: '2.36', payload: { volume: { size: 1 } } });
    assert.equal(post.status, 404);
  });
});

describe('os-snapshots', () => {
  test('create, show, list, detail and delete a snapshot in Nova\'s view', async () => {
    const volume = await novaVolume();
    const res = await f.cloud.request('POST', '/os-snapshots', { user: f.cloud.alpha, version: '2.1', payload: { snapshot: { volume_id: volume.id, display_name: 'snap', display_description: 'before upgrade', force: 'False' } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const created = res.body.snapshot;
    assert.deepEqual(Object.keys(created).sort(), ['createdAt', 'displayDescription', 'displayName', 'id', 'size', 'status', 'volumeId']);
    assert.equal(created.volumeId, volume.id);
    assert.equal(created.displayName, 'snap');
    assert.equal(created.displayDescription, 'before upgrade');
    assert.equal(created.size, 1);
    assert.match(created.createdAt, ISO);

    let shown: Record<string, any> = {};
    for (let i = 0; i < 200 && shown.status !== 'available'; i++) {
      shown = (await f.cloud.request('GET', `/os-snapshots/${created.id}`, { user: f.cloud.alpha, version: '2.1' })).body.snapshot;
      if (shown.status !== 'available') await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(shown, { ...created, status: 'available' });
    for (const path of ['/os-snapshots', '/os-snapshots/detail']) {
      const list = await f.cloud.request('GET', path, { user: f.cloud.alpha, version: '2.35' });
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.snapshots.find((s: { id: string }) => s.id === created.id),
        shown,
        path,
      );
    }
    const beta = await f.cloud.request('GET', `/os-snapshots/${created.id}`, { user: f.cloud.beta, version: '2.1' });
    assert.equal(beta.status, 404, "another project's snapshot is not found");

    const del = await f.cloud.request('DELETE', `/os-snapshots/${created.id}`, { user: f.cloud.alpha, version: '2.1' });
    assert.equal(del.status, 202);
    let status = 0;
    for (let i = 0; i < 200 && status !== 404; i++) {
      status = (await f.cloud.request('GET', `/os-snapshots/${created.id}`, { user: f.cloud.alpha, version: '2.1' })).status;
      if (status !== 404) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(status, 404, 'the snapshot is gone');
  });

  test('errors: unknown volume or snapshot 404, bad body 400, 2.36 404', async () => {
    const unknownVolume = newUuid();
    const create = await f.cloud.request('POST', '/os-snapshots', { user: f.cloud.alpha, version: '2.1', payload: { snapshot: { volume_id: unknownVolume } } });
    assert.equal(create.status, 404);
    assert.equal(create.body.itemNotFound.message, `Volume ${unknownVolume} could not be found.`);
    const unknown = newUuid();
    const show = await f.cloud.request('GET', `/os-snapshots/${unknown}`, { user: f.cloud.alpha, version: '2.1' });
    assert.equal(show.status, 404);
    assert.equal(show.body.itemNotFound.message, `Snapshot ${unknown} could not be found.`);
    assert.equal((await f.cloud.request('DELETE', `/os-snapshots/${unknown}`, { user: f.cloud.alpha, version: '2.1' })).status, 404);
    for (const payload of [{ snapshot: { display_name: 'x' } }, { snapshot: { volume_id: unknownVolume, force: 'maybe' } }, { snapshot: { volume_id: unknownVolume, name: 'x' } }]) {
      const res = await f.cloud.request('POST', '/os-snapshots', { user: f.cloud.alpha, version: '2.1', payload });
      assert.equal(res.status, 400, JSON.stringify(payload));
    }
    const v236 = await f.cloud.request('POST', '/os-snapshots', { user: f.cloud.alpha, version: '2.36', payload: { snapshot: { volume_id: unknownVolume } } });
    assert.equal(v236.status, 404);
  });
});

describe('os-volumes_boot', () => {
  test('is the servers API: boot from a volume, show, list', async () => {
    const volume = await v.create({ size: 1, imageRef: f.imageId, name: 'root' });
    const res = await f.cloud.request('POST', '/os-volumes_boot', {
      user: f.cloud.alpha,
      version: '2.1',
      payload: { server: { name: 'from-volume', flavorRef: '1', networks: [{ uuid: f.networkId }], block_device_mapping_v2: [{ boot_index: 0, uuid: volume.id, source_type: 'volume', destination_type: 'volume' }] } },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.server.id as string;
    const server = await f.waitFor(id, (s) => s.status !== 'BUILD');
    assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
    const shown = await f.cloud.request('GET', `/os-volumes_boot/${id}`, { user: f.cloud.alpha, version: '2.1' });
    assert.equal(shown.status, 200);
    assert.equal(shown.body.server.id, id);
    assert.deepEqual(shown.body.server['os-extended-volumes:volumes_attached'], [{ id: volume.id }]);
    const list = await f.cloud.request('GET', '/os-volumes_boot/detail', { user: f.cloud.alpha, version: '2.1' });
    assert.ok(list.body.servers.some((s: { id: string }) => s.id === id));
  });

  test('the URL is rewritten to servers only for the routes Nova has', () => {
    assert.equal(volumesBootAsServers('/v2.1/os-volumes_boot'), '/v2.1/servers');
    assert.equal(volumesBootAsServers('/v2.1/os-volumes_boot?limit=1'), '/v2.1/servers?limit=1');
    assert.equal(volumesBootAsServers('/v2.1/os-volumes_boot/detail'), '/v2.1/servers/detail');
    assert.equal(volumesBootAsServers('/v2.1/os-volumes_boot/abc/action'), '/v2.1/servers/abc/action');
    assert.equal(volumesBootAsServers('/v2.1/os-volumes_boot/abc/metadata'), '/v2.1/os-volumes_boot/abc/metadata');
    assert.equal(volumesBootAsServers('/v2.1/os-volumes'), '/v2.1/os-volumes');
  });
});

describe('rescue of a volume-backed server', () => {
  test('refused before 2.87 and without a stable-rescue image; from 2.87 with one it is RESCUE and back', async () => {
    const volume = await v.create({ size: 1, imageRef: f.imageId, name: 'rescue-root' });
    const res = await f.cloud.request('POST', '/servers', {
      user: f.cloud.alpha,
      version: '2.93',
      payload: { server: { name: 'bfv-rescue', flavorRef: '1', networks: [{ uuid: f.networkId }], block_device_mapping_v2: [{ boot_index: 0, uuid: volume.id, source_type: 'volume', destination_type: 'volume' }] } },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.server.id as string;
    assert.equal((await f.waitFor(id, (s) => s.status !== 'BUILD')).status, 'ACTIVE');

    const image = await f.cloud.call('image', 'POST', '/v2/images', { user: f.cloud.alpha, payload: { name: 'rescue', disk_format: 'raw', container_format: 'bare', hw_rescue_device: 'disk', hw_rescue_bus: 'virtio' } });
    assert.equal(image.status, 201, JSON.stringify(image.body));
    const upload = await fetch(`${f.cloud.urls.image}/v2/images/${image.body.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': f.cloud.alpha.token, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(1024) });
    assert.equal(upload.status, 204);

    const message = `Instance ${id} cannot be rescued: Cannot rescue a volume-backed instance`;
    for (const [version, rescue] of [
      ['2.86', { rescue_image_ref: image.body.id }],
      ['2.87', { rescue_image_ref: f.imageId }],
      ['2.87', null],
    ] as const) {
      const refused = await f.act(id, { rescue }, { version });
      assert.equal(refused.status, 400, `${version} ${JSON.stringify(rescue)}`);
      assert.equal(refused.body.badRequest.message, message);
    }
    assert.equal((await f.waitFor(id, () => true)).status, 'ACTIVE', 'nothing changed');

    const rescued = await f.act(id, { rescue: { rescue_image_ref: image.body.id } }, { version: '2.87' });
    assert.equal(rescued.status, 200, JSON.stringify(rescued.body));
    await f.waitFor(id, (s) => s.status === 'RESCUE');
    assert.equal((await f.act(id, { unrescue: null }, { version: '2.87' })).status, 202);
    await f.waitFor(id, (s) => s.status === 'ACTIVE');
  });
});
