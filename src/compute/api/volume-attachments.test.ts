import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isoNow, newUuid } from '../common.js';
import { createFlowCloud, type FlowCloud } from './cloud-flows.test-util.js';

// os-volume_attachments on a cloud without a block storage service: every
// volume is unknown (Nova's 404), while the server's block device mappings
// (as a boot with block_device_mapping_v2 records them) list and show.

let f: FlowCloud;
let serverId: string;
const volumeId = newUuid();
const attachmentId = newUuid();
const bdmId = newUuid();

before(async () => {
  f = await createFlowCloud();
  serverId = await f.boot('disks');
  // A data volume as the block storage service would have attached it.
  await f.cloud.compute.db
    .insertInto('block_device_mapping')
    .values({ id: bdmId, instance_uuid: serverId, source_type: 'volume', destination_type: 'volume', boot_index: null, device_name: '/dev/vdb', device_type: 'disk', disk_bus: null, guest_format: null, image_id: null, volume_id: volumeId, snapshot_id: null, volume_size: 1, volume_type: null, delete_on_termination: 0, tag: 'data', attachment_id: attachmentId, connection_info: null, created_at: isoNow() })
    .execute();
});

after(async () => {
  await f.close();
});

const url = (suffix = ''): string => `/servers/${serverId}/os-volume_attachments${suffix}`;

describe('os-volume_attachments', () => {
  test('attaching an unknown volume is 404 and records nothing', async () => {
    const missing = newUuid();
    const res = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { volumeAttachment: { volumeId: missing } } });
    assert.equal(res.status, 404, JSON.stringify(res.body));
    assert.equal(res.body.itemNotFound.message, `Volume ${missing} could not be found.`);
    const list = await f.cloud.request('GET', url(), { user: f.cloud.alpha });
    assert.equal(list.body.volumeAttachments.length, 1, 'only the existing mapping');
  });

  test('list and show follow the microversion (2.70 tag, 2.79 delete_on_termination, 2.89 ids)', async () => {
    const v1 = await f.cloud.request('GET', url(), { user: f.cloud.alpha, version: '2.1' });
    assert.deepEqual(v1.body.volumeAttachments, [{ id: volumeId, volumeId, serverId, device: '/dev/vdb' }], '2.1 view');
    const v79 = await f.cloud.request('GET', url(`/${volumeId}`), { user: f.cloud.alpha, version: '2.79' });
    assert.deepEqual(v79.body.volumeAttachment, { id: volumeId, volumeId, serverId, device: '/dev/vdb', tag: 'data', delete_on_termination: false }, '2.79 view');
    const v89 = await f.cloud.request('GET', url(`/${volumeId}`), { user: f.cloud.alpha, version: '2.89' });
    assert.deepEqual(v89.body.volumeAttachment, { volumeId, serverId, device: '/dev/vdb', tag: 'data', delete_on_termination: false, attachment_id: attachmentId, bdm_uuid: bdmId }, '2.89 view: no id, attachment and mapping ids');
    const servers = await f.cloud.request('GET', `/servers/${serverId}`, { user: f.cloud.alpha, version: '2.3' });
    assert.deepEqual(servers.body.server['os-extended-volumes:volumes_attached'], [{ id: volumeId, delete_on_termination: false }], 'the server view lists it');
    const other = newUuid();
    const notAttached = await f.cloud.request('GET', url(`/${other}`), { user: f.cloud.alpha });
    assert.equal(notAttached.status, 404, 'not attached');
    assert.equal(notAttached.body.itemNotFound.message, `Instance ${serverId} is not attached to volume ${other}`);
    const beta = await f.cloud.request('GET', url(), { user: f.cloud.beta });
    assert.equal(beta.status, 404, 'another project’s server');
  });

  test('2.85 updates delete_on_termination; other fields are immutable; a swap (admin) needs the volume', async () => {
    const update = await f.cloud.request('PUT', url(`/${volumeId}`), { user: f.cloud.alpha, version: '2.85', payload: { volumeAttachment: { volumeId, delete_on_termination: true } } });
    assert.equal(update.status, 202, JSON.stringify(update.body));
    const shown = await f.cloud.request('GET', url(`/${volumeId}`), { user: f.cloud.alpha, version: '2.85' });
    assert.equal(shown.body.volumeAttachment.delete_on_termination, true, 'updated');
    const device = await f.cloud.request('PUT', url(`/${volumeId}`), { user: f.cloud.alpha, version: '2.85', payload: { volumeAttachment: { volumeId, device: '/dev/vdc' } } });
    assert.equal(device.status, 400, 'device is not mutable');
    assert.equal(device.body.badRequest.message, 'The device property is not mutable');
    const early = await f.cloud.request('PUT', url(`/${volumeId}`), { user: f.cloud.alpha, version: '2.84', payload: { volumeAttachment: { volumeId, delete_on_termination: true } } });
    assert.equal(early.status, 400, 'before 2.85 only volumeId');
    const memberSwap = await f.cloud.request('PUT', url(`/${volumeId}`), { user: f.cloud.alpha, version: '2.85', payload: { volumeAttachment: { volumeId: newUuid() } } });
    assert.equal(memberSwap.status, 403, 'swap is for admins');
    const adminSwap = await f.cloud.request('PUT', url(`/${volumeId}`), { user: f.cloud.admin, payload: { volumeAttachment: { volumeId: newUuid() } } });
    assert.equal(adminSwap.status, 404, JSON.stringify(adminSwap.body));
    assert.equal(adminSwap.body.itemNotFound.message, `Volume ${volumeId} could not be found.`);
  });

  test('bad bodies are 400; detach of an unknown volume is 404; a SHELVED server before 2.20 is 409', async () => {
    const noId = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { volumeAttachment: {} } });
    assert.equal(noId.status, 400, 'volumeId required');
    const notUuid = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { volumeAttachment: { volumeId: 'x' } } });
    assert.equal(notUuid.status, 400, 'volumeId is a uuid');
    const device = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { volumeAttachment: { volumeId: newUuid(), device: 'vdb' } } });
    assert.equal(device.status, 400, 'device path');
    const dot = await f.cloud.request('POST', url(), { user: f.cloud.alpha, version: '2.78', payload: { volumeAttachment: { volumeId: newUuid(), delete_on_termination: true } } });
    assert.equal(dot.status, 400, 'delete_on_termination is 2.79');
    const detach = await f.cloud.request('DELETE', url(`/${volumeId}`), { user: f.cloud.alpha });
    assert.equal(detach.status, 404, 'the volume is unknown to this cloud');
    assert.equal(detach.body.itemNotFound.message, `Volume ${volumeId} could not be found.`);
    assert.equal((await f.act(serverId, { shelve: null })).status, 202);
    await f.waitFor(serverId, (s) => s.status === 'SHELVED_OFFLOADED');
    const shelved = await f.cloud.request('POST', url(), { user: f.cloud.alpha, version: '2.19', payload: { volumeAttachment: { volumeId: newUuid() } } });
    assert.equal(shelved.status, 409, JSON.stringify(shelved.body));
    assert.equal(shelved.body.conflictingRequest.message, `Cannot 'attach_volume' instance ${serverId} while it is in vm_state shelved_offloaded`);
    const later = await f.cloud.request('POST', url(), { user: f.cloud.alpha, version: '2.20', payload: { volumeAttachment: { volumeId: newUuid() } } });
    assert.equal(later.status, 404, 'from 2.20 it goes on to the volume');
  });
});
