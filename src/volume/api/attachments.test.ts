import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FakeVolumeDriver } from '../drivers/fake.js';
import { createVolumeTestCloud, type TestUser, type TestVolumeCloud } from '../testing.js';
import { availableVolume, expectFault, setQuota, volumeType } from './volume-fixtures.test-util.js';

let cloud: TestVolumeCloud;
const drivers = { 'fake-a': new FakeVolumeDriver({ capacityGb: 1000 }), 'fake-b': new FakeVolumeDriver({ capacityGb: 500 }) };
before(async () => {
  cloud = await createVolumeTestCloud({ drivers });
  for (const resource of ['volumes', 'gigabytes', 'snapshots']) await setQuota(cloud, cloud.alpha.projectId, resource, -1);
});
after(async () => {
  await cloud.close();
});

const SERVER = '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f';
const OTHER_SERVER = '0b9f1e2d-3c4b-4a59-8d7e-6f5a4b3c2d1e';
const CONNECTOR = { host: 'compute-1', ip: '192.0.2.10', platform: 'x86_64', os_type: 'linux', multipath: false, mountpoint: '/dev/vdb' };

function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, options: { user?: TestUser | null; payload?: unknown; version?: string } = {}) {
  return cloud.request(method, url, { user: options.user === undefined ? cloud.alpha : (options.user ?? undefined), version: options.version ?? '3.44', ...(options.payload === undefined ? {} : { payload: options.payload }) });
}

async function volumeStatus(id: string): Promise<string> {
  return (await cloud.request('GET', `/volumes/${id}`)).body.volume.status;
}

test('the compute flow: reserve, connect, complete, delete; the volume follows', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const created = await call('POST', '/attachments', { payload: { attachment: { volume_uuid: v.id, instance_uuid: SERVER } } });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const a = created.body.attachment;
  assert.deepEqual(Object.keys(a).sort(), ['attach_mode', 'attached_at', 'connection_info', 'detached_at', 'id', 'instance', 'status', 'volume_id']);
  assert.equal(a.status, 'reserved');
  assert.equal(a.instance, SERVER);
  assert.equal(a.volume_id, v.id);
  assert.equal(a.attach_mode, 'null');
  assert.deepEqual(a.connection_info, {});
  assert.equal(a.attached_at, '');
  assert.equal(await volumeStatus(v.id), 'reserved');

  const updated = await call('PUT', `/attachments/${a.id}`, { payload: { attachment: { connector: CONNECTOR } } });
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
  const info = updated.body.attachment.connection_info;
  assert.equal(info.driver_volume_type, 'fake');
  assert.equal(info.attachment_id, a.id);
  assert.equal(info.access_mode, 'rw');
  assert.equal(info.volume_id, v.id);
  assert.equal(updated.body.attachment.status, 'attaching');
  assert.equal(updated.body.attachment.attach_mode, 'rw');
  assert.match(updated.body.attachment.attached_at, /^\d{4}-/);
  assert.equal(await volumeStatus(v.id), 'attaching');
  const driver = Object.values(drivers).find((d) => d.volumes.has(v.id));
  assert.deepEqual(driver?.connections.get(a.id)?.connector.host, 'compute-1', 'the agent exported the volume to that host');

  const completed = await call('POST', `/attachments/${a.id}/action`, { payload: { 'os-complete': null } });
  assert.equal(completed.status, 204);
  const inUse = (await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha })).body.volume;
  assert.equal(inUse.status, 'in-use');
  assert.deepEqual(inUse.attachments, [{ id: v.id, attachment_id: a.id, volume_id: v.id, server_id: SERVER, host_name: null, device: '/dev/vdb', attached_at: inUse.attachments[0].attached_at }]);
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.attachments[0].host_name, 'compute-1', 'an administrator sees the host');
  assert.equal((await call('GET', `/attachments/${a.id}`)).body.attachment.status, 'attached');

  const listed = await call('GET', `/attachments?volume_id=${v.id}`);
  assert.deepEqual(listed.body, { attachments: [{ id: a.id, status: 'attached', instance: SERVER, volume_id: v.id }] });
  assert.equal((await call('GET', `/attachments/detail?instance_id=${SERVER}`)).body.attachments[0].connection_info.driver_volume_type, 'fake');
  assert.equal((await call('GET', '/attachments', { user: cloud.beta })).body.attachments.length, 0, 'another project sees none');
  expectFault(await call('GET', `/attachments/${a.id}`, { user: cloud.beta }), 404, `Volume attachment could not be found with filter: attachment_id = ${a.id}.`);

  const deleted = await call('DELETE', `/attachments/${a.id}`);
  assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
  assert.deepEqual(deleted.body, { attachments: [] });
  assert.equal(await volumeStatus(v.id), 'available');
  assert.equal(driver?.connections.has(a.id), false, 'the export is gone');
  expectFault(await call('DELETE', `/attachments/${a.id}`), 404);
});

test('create with a connector connects at once; mode (3.54) and read-only volumes', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const res = await call('POST', '/attachments', { version: '3.54', payload: { attachment: { volume_uuid: v.id, instance_uuid: SERVER, connector: CONNECTOR, mode: 'ro' } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.attachment.status, 'attaching');
  assert.equal(res.body.attachment.attach_mode, 'ro');
  assert.equal(res.body.attachment.connection_info.access_mode, 'ro');
  expectFault(await call('POST', '/attachments', { payload: { attachment: { volume_uuid: v.id, mode: 'ro' } } }), 400, /'mode' was unexpected/);
  await call('DELETE', `/attachments/${res.body.attachment.id}`);

  const ro = await availableVolume(cloud, cloud.alpha);
  await cloud.request('POST', `/volumes/${ro.id}/action`, { user: cloud.alpha, payload: { 'os-update_readonly_flag': { readonly: true } } });
  const roAttach = await call('POST', '/attachments', { payload: { attachment: { volume_uuid: ro.id, instance_uuid: SERVER, connector: CONNECTOR } } });
  assert.equal(roAttach.body.attachment.attach_mode, 'ro', 'a read-only volume attaches read-only');
});

test('one attachment per volume unless its type is multiattach; the same server may attach again', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const first = (await call('POST', '/attachments', { payload: { attachment: { volume_uuid: v.id, instance_uuid: SERVER } } })).body.attachment;
  await call('PUT', `/attachments/${first.id}`, { payload: { attachment: { connector: CONNECTOR } } });
  await call('POST', `/attachments/${first.id}/action`, { payload: { 'os-complete': {} } });
  expectFault(
    await call('POST', '/attachments', { payload: { attachment: { volume_uuid: v.id, instance_uuid: OTHER_SERVER } } }),
    400,
    `Invalid volume: Volume ${v.id} status must be available or downloading to reserve, but the current status is in-use.`,
  );
  const again = await call('POST', '/attachments', { payload: { attachment: { volume_uuid: v.id, instance_uuid: SERVER } } });
  assert.equal(again.status, 200, 'the same server (a move) may');
  expectFault(await call('PUT', `/attachments/${again.body.attachment.id}`, { payload: { attachment: { connector: { host: 'compute-2' } } } }), 409, `Resource conflict: duplicate connectors detected on volume ${v.id}`);
  const left = await call('DELETE', `/attachments/${again.body.attachment.id}`);
  assert.deepEqual(
    left.body.attachments.map((x: { id: string }) => x.id),
    [first.id],
  );
  assert.equal(await volumeStatus(v.id), 'in-use', 'still attached by the first');

  await volumeType(cloud, 'multi', { multiattach: '<is> True' });
  const m = await availableVolume(cloud, cloud.alpha, { volume_type: 'multi' });
  const ids: string[] = [];
  for (const server of [SERVER, OTHER_SERVER]) {
    const r = await call('POST', '/attachments', { payload: { attachment: { volume_uuid: m.id, instance_uuid: server, connector: { ...CONNECTOR, host: server } } } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    ids.push(r.body.attachment.id);
    await call('POST', `/attachments/${r.body.attachment.id}/action`, { payload: { 'os-complete': null } });
  }
  assert.equal((await cloud.request('GET', `/volumes/${m.id}`)).body.volume.attachments.length, 2);
  await call('DELETE', `/attachments/${ids[0]}`);
  assert.equal(await volumeStatus(m.id), 'in-use');
  await call('DELETE', `/attachments/${ids[1]}`);
  assert.equal(await volumeStatus(m.id), 'available');
});

test('errors: versions, bodies, unknown and foreign volumes, error states, agent failures', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  expectFault(await call('GET', '/attachments', { version: '3.26' }), 404, 'The resource could not be found.');
  expectFault(await call('POST', '/attachments', { version: '3.26', payload: { attachment: { volume_uuid: v.id } } }), 404);
  expectFault(await call('POST', '/attachments', { payload: {} }), 400, "'attachment' is a required property");
  expectFault(await call('POST', '/attachments', { payload: { attachment: { instance_uuid: SERVER } } }), 400, "Invalid input for field/attribute attachment. Value: {'instance_uuid': '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f'}. 'volume_uuid' is a required property");
  expectFault(await call('POST', '/attachments', { payload: { attachment: { volume_uuid: 'nope' } } }), 400, "Invalid input for field/attribute volume_uuid. Value: nope. 'nope' is not a 'uuid'");
  expectFault(await call('POST', '/attachments', { payload: { attachment: { volume_uuid: SERVER } } }), 404, `Volume ${SERVER} could not be found.`);
  expectFault(await call('POST', '/attachments', { user: cloud.beta, payload: { attachment: { volume_uuid: v.id } } }), 404, `Volume ${v.id} could not be found.`);
  expectFault(await call('POST', '/attachments', { user: cloud.alphaReader, payload: { attachment: { volume_uuid: v.id } } }), 403, "Policy doesn't allow volume:attachment_create to be performed.");
  expectFault(await call('PUT', `/attachments/${SERVER}`, { payload: { attachment: { connector: CONNECTOR } } }), 404, `Volume attachment could not be found with filter: attachment_id = ${SERVER}.`);

  const a = (await call('POST', '/attachments', { payload: { attachment: { volume_uuid: v.id, instance_uuid: SERVER } } })).body.attachment;
  expectFault(await call('PUT', `/attachments/${a.id}`, { payload: { attachment: { connector: {} } } }), 400, 'Invalid input for field/attribute connector. Value: {}. {} does not have enough properties');
  expectFault(await call('POST', `/attachments/${a.id}/action`, { version: '3.43', payload: { 'os-complete': null } }), 404);
  const driver = Object.values(drivers).find((d) => d.volumes.has(v.id));
  driver?.failNext('initializeConnection');
  const failed = await call('PUT', `/attachments/${a.id}`, { payload: { attachment: { connector: CONNECTOR } } });
  expectFault(failed, 500, /^Unable to update attachment/);
  assert.equal((await call('GET', `/attachments/${a.id}`)).body.attachment.status, 'error_attaching');
  await call('DELETE', `/attachments/${a.id}`);
  assert.equal(await volumeStatus(v.id), 'available');

  await cloud.request('POST', `/volumes/${v.id}/action`, { payload: { 'os-reset_status': { status: 'error' } } });
  expectFault(
    await call('POST', '/attachments', { payload: { attachment: { volume_uuid: v.id, instance_uuid: SERVER } } }),
    400,
    `Invalid volume: Volume attachments can not be created if the volume is in an error state. The Volume ${v.id} currently has a status of: error `,
  );
});

test('the compute client of Stratus works against this API', async () => {
  const { VolumeApi } = await import('../../compute/volume-api.js');
  const client = { request: (_type: string, method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}) => cloud.request(method as 'GET', path, { payload: opts.body, headers: opts.headers ?? {} }), catalog: async () => [{ type: 'volumev3' }] };
  const api = new VolumeApi(client as never);
  const v = await availableVolume(cloud, cloud.alpha);
  const attachmentId = await api.createAttachment(v.id, SERVER);
  const info = await api.updateAttachment(attachmentId, CONNECTOR);
  assert.equal(info.driver_volume_type, 'fake');
  await api.completeAttachment(attachmentId);
  assert.equal((await api.get(v.id)).status, 'in-use');
  await api.deleteAttachment(attachmentId);
  assert.equal((await api.get(v.id)).status, 'available');
});
