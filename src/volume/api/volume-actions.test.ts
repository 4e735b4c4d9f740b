import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FakeVolumeDriver } from '../drivers/fake.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';
import { availableSnapshot, availableVolume, expectFault, setQuota, volumeType, waitSnapshot, waitVolumeGone } from './volume-fixtures.test-util.js';

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

function action(id: string, body: unknown, options: { user?: TestVolumeCloud['alpha'] | null; version?: string } = {}) {
  return cloud.request('POST', `/volumes/${id}/action`, { payload: body, ...(options.user !== undefined ? { user: options.user } : { user: cloud.alpha }), ...(options.version ? { version: options.version } : {}) });
}

test('os-extend: grows an available volume; smaller, bad sizes, wrong status and quota are refused', async () => {
  const v = await availableVolume(cloud, cloud.alpha, { size: 1 });
  const res = await action(v.id, { 'os-extend': { new_size: 3 } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const grown = await cloud.waitVolume(v.id, (x) => x.status === 'available' && x.size === 3);
  assert.equal(grown.size, 3);
  expectFault(await action(v.id, { 'os-extend': { new_size: 2 } }), 400, 'Invalid input received: New size for extend must be greater than current size. (current: 3, extended: 2).');
  expectFault(await action(v.id, { 'os-extend': { new_size: 'abc' } }), 400, "Invalid input for field/attribute new_size. Value: abc. 'abc' does not match '^[0-9]+$'");
  expectFault(await action(v.id, { 'os-extend': { new_size: null } }), 400, "Invalid input for field/attribute new_size. Value: None. None is not of type 'integer', 'string'");
  expectFault(await action(v.id, { 'os-extend': {} }), 400, "Invalid input for field/attribute os-extend. Value: {}. 'new_size' is a required property");
  expectFault(await action(SERVER, { 'os-extend': { new_size: 5 } }), 404, `Volume ${SERVER} could not be found.`);
  await setQuota(cloud, cloud.alpha.projectId, 'per_volume_gigabytes', 4);
  expectFault(await action(v.id, { 'os-extend': { new_size: 5 } }), 413, 'Requested volume size 5G is larger than maximum allowed limit 4G.');
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.status, 'available', 'a refused extend leaves the status');
  await setQuota(cloud, cloud.alpha.projectId, 'per_volume_gigabytes', -1);

  await action(v.id, { 'os-attach': { instance_uuid: SERVER, mountpoint: '/dev/vdb' } });
  expectFault(await action(v.id, { 'os-extend': { new_size: 4 } }), 400, `Invalid volume: Volume ${v.id} status must be '{'status': 'available'}' to extend, currently in-use.`);
  assert.equal((await action(v.id, { 'os-extend': { new_size: 4 } }, { version: '3.42' })).status, 202, 'an attached volume from 3.42, the fake backend extends online');
  const online = await cloud.waitVolume(v.id, (x) => x.size === 4 && x.status !== 'extending');
  assert.equal(online.status, 'in-use');
  expectFault(await action(v.id, { 'os-extend': { new_size: 9 } }, { user: cloud.alphaReader }), 403, "Policy doesn't allow volume:extend to be performed.");
});

test('os-retype: to a type the backend satisfies at once; one that needs a migration is refused with migration_policy never', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const host = String(v['os-vol-host-attr:host']);
  const backend = host.split('#')[1] ?? '';
  await volumeType(cloud, 'here', { volume_backend_name: backend });
  await volumeType(cloud, 'there', { volume_backend_name: backend === 'fake-a' ? 'fake-b' : 'fake-a' });
  assert.equal((await action(v.id, { 'os-retype': { new_type: 'here' } })).status, 202);
  const retyped = await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha });
  assert.equal(retyped.body.volume.volume_type, 'here');
  assert.equal(retyped.body.volume.status, 'available');
  expectFault(await action(v.id, { 'os-retype': { new_type: 'here' } }), 400, /^Invalid volume: Retype needs volume to be in available or in-use state/);
  expectFault(await action(v.id, { 'os-retype': { new_type: 'there', migration_policy: 'never' } }), 400, /^Invalid volume: Volume .* cannot be retyped to there: its backend does not satisfy the type and migration_policy is 'never'\.$/);
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.status, 'available', 'the refused retype left the status');
  expectFault(await action(v.id, { 'os-retype': { new_type: 'nope' } }), 404, 'Volume type with name nope could not be found.');
  expectFault(await action(v.id, { 'os-retype': { new_type: 'here', migration_policy: 'sometimes' } }), 400, /is not one of \['on-demand', 'never'\]/);
});

test('os-reset_status, os-force_delete: administrators only; statuses checked', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  expectFault(await action(v.id, { 'os-reset_status': { status: 'error' } }), 403, "Policy doesn't allow volume_extension:volume_admin_actions:reset_status to be performed.");
  for (const status of ['error', 'available', 'maintenance']) {
    const res = await cloud.request('POST', `/volumes/${v.id}/action`, { payload: { 'os-reset_status': { status } } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal((await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha })).body.volume.status, status);
  }
  const admin = (body: unknown) => cloud.request('POST', `/volumes/${v.id}/action`, { payload: body });
  expectFault(await admin({ 'os-reset_status': { status: 'bogus' } }), 400, /^Volume status: bogus is invalid, valid statuses are: \['creating', 'available'/);
  expectFault(await admin({ 'os-reset_status': {} }), 400, "Must specify 'status', 'attach_status' or 'migration_status' for update.");
  expectFault(await admin({ 'os-reset_status': { status: 'deleting' } }), 400, 'Cannot reset-state to deleting');
  expectFault(await admin({ 'os-reset_status': { status: 'in-use' } }), 400, 'Cannot reset-state to in-use because volume does not have any attachments.');
  expectFault(await admin({ 'os-reset_status': { attach_status: 'half' } }), 400, "Volume attach status: half is invalid, valid statuses are: ['attached', 'detached'].");
  assert.equal((await admin({ 'os-reset_status': { migration_status: 'none', status: 'creating' } })).status, 202);

  expectFault(await action(v.id, { 'os-force_delete': {} }), 403, "Policy doesn't allow volume_extension:volume_admin_actions:force_delete to be performed.");
  assert.equal((await admin({ 'os-force_delete': {} })).status, 202, 'even while creating');
  await waitVolumeGone(cloud, v.id);
});

test('os-set_bootable and os-update_readonly_flag', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  for (const bootable of [true, false, 'true']) {
    const res = await action(v.id, { 'os-set_bootable': { bootable } });
    assert.equal(res.status, 200);
    assert.equal((await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha })).body.volume.bootable, String(bootable).toLowerCase());
  }
  expectFault(await action(v.id, { 'os-set_bootable': { bootable: 'perhaps' } }), 400, /Invalid input for field\/attribute bootable\. Value: perhaps\. 'perhaps' is not one of/);
  for (const readonly of [true, false]) {
    assert.equal((await action(v.id, { 'os-update_readonly_flag': { readonly } })).status, 202);
    assert.equal((await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha })).body.volume.metadata.readonly, readonly ? 'True' : 'False');
  }
  await action(v.id, { 'os-attach': { instance_uuid: SERVER, mountpoint: '/dev/vdb' } });
  expectFault(await action(v.id, { 'os-update_readonly_flag': { readonly: true } }), 400, `Invalid volume: Volume ${v.id} status must be available to update readonly flag, but current status is: in-use.`);
});

test('legacy attach: reserve, unreserve, attach, detach, begin and roll detaching', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  assert.equal((await action(v.id, { 'os-reserve': {} })).status, 202);
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.status, 'attaching');
  expectFault(await action(v.id, { 'os-reserve': null }), 400, 'Invalid volume: Volume status must be available to reserve, but the status is attaching.');
  assert.equal((await action(v.id, { 'os-unreserve': {} })).status, 202);
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.status, 'available');
  expectFault(await action(SERVER, { 'os-reserve': {} }), 404);

  assert.equal((await action(v.id, { 'os-attach': { instance_uuid: SERVER, mountpoint: '/dev/vdc' } })).status, 202);
  const attached = (await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha })).body.volume;
  assert.equal(attached.status, 'in-use');
  assert.equal(attached.attachments.length, 1);
  const [a] = attached.attachments;
  assert.deepEqual(Object.keys(a).sort(), ['attached_at', 'attachment_id', 'device', 'host_name', 'id', 'server_id', 'volume_id']);
  assert.equal(a.server_id, SERVER);
  assert.equal(a.device, '/dev/vdc');
  assert.equal(a.id, v.id);
  assert.equal(a.volume_id, v.id);
  assert.equal(a.host_name, null, 'users do not see the host');
  assert.equal(attached.metadata.attached_mode, 'rw');
  assert.equal(attached.metadata.readonly, 'False');
  assert.equal((await action(v.id, { 'os-attach': { instance_uuid: SERVER, mountpoint: '/dev/vdc' } })).status, 202, 'the same server again is a no-op');
  expectFault(
    await action(v.id, { 'os-attach': { instance_uuid: OTHER_SERVER, mountpoint: '/dev/vdd' } }),
    400,
    'Error attaching volume - InvalidVolume: Invalid volume: volume is already attached and multiple attachments are not enabled',
  );
  expectFault(await action(v.id, { 'os-attach': { mountpoint: '/dev/vdd' } }), 400, /is not valid under any of the given schemas/);
  expectFault(await action(v.id, { 'os-attach': { instance_uuid: 'xyz', mountpoint: '/dev/vdd' } }), 400, "Invalid input for field/attribute instance_uuid. Value: xyz. 'xyz' is not a 'uuid'");

  assert.equal((await action(v.id, { 'os-begin_detaching': {} })).status, 202);
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.status, 'detaching');
  assert.equal((await action(v.id, { 'os-roll_detaching': {} })).status, 202);
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.status, 'in-use');
  assert.equal((await action(v.id, { 'os-detach': {} })).status, 202);
  const detached = (await cloud.request('GET', `/volumes/${v.id}`)).body.volume;
  assert.equal(detached.status, 'available');
  assert.deepEqual(detached.attachments, []);
  expectFault(await action(v.id, { 'os-begin_detaching': {} }), 400, "Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.");
  expectFault(await action('xxx', { 'os-detach': {} }), 404, 'Volume xxx could not be found.');
  expectFault(await action(v.id, { 'os-bogus': {} }), 400, 'There is no such action: os-bogus');
  expectFault(await action(v.id, { 'os-reserve': {}, 'os-unreserve': {} }), 400, 'Malformed message body: too many body keys');
});

test('read-only volumes attach only read-only; multiattach types attach twice', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  await action(v.id, { 'os-update_readonly_flag': { readonly: true } });
  expectFault(await action(v.id, { 'os-attach': { instance_uuid: SERVER, mountpoint: '/dev/vdb' } }), 400, `Error attaching volume - InvalidVolumeAttachMode: Invalid attaching mode 'rw' for volume ${v.id}.`);
  assert.equal((await action(v.id, { 'os-attach': { instance_uuid: SERVER, mountpoint: '/dev/vdb', mode: 'ro' } })).status, 202);

  await volumeType(cloud, 'shared', { multiattach: '<is> True' });
  const m = await availableVolume(cloud, cloud.alpha, { volume_type: 'shared' });
  assert.equal((await action(m.id, { 'os-attach': { instance_uuid: SERVER, mountpoint: '/dev/vdb' } })).status, 202);
  assert.equal((await action(m.id, { 'os-attach': { instance_uuid: OTHER_SERVER, mountpoint: '/dev/vdb' } })).status, 202);
  const both = (await cloud.request('GET', `/volumes/${m.id}`)).body.volume;
  assert.equal(both.attachments.length, 2);
  // Which attachment a user means cannot be told: Cinder refuses before looking further (bug #2004555).
  expectFault(await action(m.id, { 'os-detach': {} }), 409, 'Detach volume from instance  using the Compute API');
  assert.equal((await action(m.id, { 'os-detach': { attachment_id: both.attachments[0].attachment_id } })).status, 202);
  const one = (await cloud.request('GET', `/volumes/${m.id}`)).body.volume;
  assert.equal(one.status, 'in-use', 'still attached to the other server');
  assert.equal(one.attachments.length, 1);
  assert.equal(one.attachments[0].host_name, null);
});

test('os-initialize_connection and os-terminate_connection through the agent; os-force_detach', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const res = await action(v.id, { 'os-initialize_connection': { connector: { host: 'compute-1', initiator: 'iqn.x' } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.connection_info.driver_volume_type, 'fake');
  assert.equal(res.body.connection_info.data.access_mode, 'rw');
  assert.equal(res.body.connection_info.enforce_multipath, false);
  const driver = Object.values(drivers).find((d) => d.volumes.has(v.id));
  assert.ok(driver?.connections.has(v.id), 'the agent exported it');
  expectFault(await action(v.id, { 'os-initialize_connection': {} }), 400, "Invalid input for field/attribute os-initialize_connection. Value: {}. 'connector' is a required property");
  assert.equal((await action(v.id, { 'os-terminate_connection': { connector: { host: 'compute-1' } } })).status, 202);
  assert.equal(driver?.connections.has(v.id), false, 'the export is gone');

  driver?.failNext('initializeConnection');
  expectFault(await action(v.id, { 'os-initialize_connection': { connector: { host: 'compute-1' } } }), 500, 'Unable to fetch connection information from backend.', 'computeFault');

  await action(v.id, { 'os-attach': { instance_uuid: SERVER, mountpoint: '/dev/vdb' } });
  const attachment = (await cloud.request('GET', `/volumes/${v.id}`)).body.volume.attachments[0];
  await cloud.request('POST', `/volumes/${v.id}/action`, { payload: { 'os-reset_status': { status: 'error' } } });
  expectFault(await action(v.id, { 'os-force_detach': { connector: null, attachment_id: attachment.attachment_id } }), 403, "Policy doesn't allow volume_extension:volume_admin_actions:force_detach to be performed.");
  const forced = await cloud.request('POST', `/volumes/${v.id}/action`, { payload: { 'os-force_detach': { connector: null, attachment_id: attachment.attachment_id } } });
  assert.equal(forced.status, 202, JSON.stringify(forced.body));
  const after = (await cloud.request('GET', `/volumes/${v.id}`)).body.volume;
  assert.equal(after.status, 'available');
  assert.deepEqual(after.attachments, []);
});

test('os-volume_upload_image: the image is made with the user’s token and filled; the volume goes back to available', async () => {
  const v = await availableVolume(cloud, cloud.alpha, { name: 'to-image' });
  const res = await action(v.id, { 'os-volume_upload_image': { image_name: 'from-volume', disk_format: 'raw' } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const body = res.body['os-volume_upload_image'];
  assert.equal(body.id, v.id);
  assert.equal(body.status, 'uploading');
  assert.equal(body.image_name, 'from-volume');
  assert.equal(body.disk_format, 'raw');
  assert.equal(body.container_format, 'bare');
  assert.equal(body.size, 1);
  assert.equal(body.volume_type.name, '__DEFAULT__');
  const again = await cloud.waitVolume(v.id, (x) => x.status !== 'uploading');
  assert.equal(again.status, 'available');
  let image: Record<string, any> = {};
  for (let i = 0; i < 200; i++) {
    image = (await cloud.image('GET', `/v2/images/${body.image_id}`, { user: cloud.alpha })).body;
    if (image.status === 'active') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(image.status, 'active', JSON.stringify(image));
  assert.equal(image.name, 'from-volume');
  assert.equal(image.owner, cloud.alpha.projectId, 'the user’s image');
  assert.equal(image.visibility, 'shared');

  const v31 = await action(v.id, { 'os-volume_upload_image': { image_name: 'private-one', visibility: 'private', protected: false } }, { version: '3.1' });
  assert.equal(v31.status, 202, JSON.stringify(v31.body));
  assert.equal(v31.body['os-volume_upload_image'].visibility, 'private');
  await cloud.waitVolume(v.id, (x) => x.status === 'available');
  expectFault(await action(v.id, { 'os-volume_upload_image': { image_name: 'x', visibility: 'private' } }), 400, /Additional properties are not allowed \('visibility' was unexpected\)/);
  expectFault(await action(v.id, { 'os-volume_upload_image': { image_name: 'x', visibility: 'public' } }, { version: '3.1' }), 403, "Policy doesn't allow volume_extension:volume_actions:upload_public to be performed.");
  expectFault(await action(v.id, { 'os-volume_upload_image': { image_name: 'x', disk_format: 'iso' } }), 400, /is not one of \['raw', 'vmdk'/);
  await action(v.id, { 'os-attach': { instance_uuid: SERVER, mountpoint: '/dev/vdb' } });
  expectFault(await action(v.id, { 'os-volume_upload_image': { image_name: 'x', force: true } }), 400, `Invalid volume: Volume ${v.id} status must be available`);
});

test('image metadata actions: set, show, unset', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const set = await action(v.id, { 'os-set_image_metadata': { metadata: { image_id: 'x', os_distro: 'debian' } } });
  assert.equal(set.status, 200);
  assert.deepEqual(set.body, { metadata: { image_id: 'x', os_distro: 'debian' } });
  assert.deepEqual((await action(v.id, { 'os-show_image_metadata': null })).body, { metadata: { image_id: 'x', os_distro: 'debian' } });
  assert.deepEqual((await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha })).body.volume.volume_image_metadata, { image_id: 'x', os_distro: 'debian' });
  assert.equal((await action(v.id, { 'os-unset_image_metadata': { key: 'os_distro' } })).status, 200);
  expectFault(await action(v.id, { 'os-unset_image_metadata': { key: 'os_distro' } }), 404, `Glance metadata for volume/snapshot ${v.id} cannot be found.`);
  assert.deepEqual((await action(v.id, { 'os-show_image_metadata': {} })).body, { metadata: { image_id: 'x' } });
  expectFault(await action(v.id, { 'os-set_image_metadata': { metadata: { image_id: 'y' } } }, { user: cloud.alphaReader }), 403);
});

test('revert (3.40): to the latest snapshot only, the volume available', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  expectFault(await action(v.id, { revert: { snapshot_id: SERVER } }, { version: '3.40' }), 400, `Volume ${v.id} doesn't have any snapshots.`);
  const first = await availableSnapshot(cloud, cloud.alpha, v.id);
  const latest = await availableSnapshot(cloud, cloud.alpha, v.id);
  expectFault(await action(v.id, { revert: { snapshot_id: first.id } }, { version: '3.40' }), 400, `Specified snapshot ${first.id} is None or not the latest one of volume ${v.id}.`);
  expectFault(await action(v.id, { revert: { snapshot_id: latest.id } }), 400, 'There is no such action: revert');
  const res = await action(v.id, { revert: { snapshot_id: latest.id } }, { version: '3.40' });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  await cloud.waitVolume(v.id, (x) => x.status === 'available');
  await waitSnapshot(cloud, latest.id, (s) => s?.status === 'available');
  await action(v.id, { 'os-attach': { instance_uuid: SERVER, mountpoint: '/dev/vdb' } });
  expectFault(await action(v.id, { revert: { snapshot_id: latest.id } }, { version: '3.40' }), 409, `Invalid volume: Can't revert volume ${v.id} to its latest snapshot ${latest.id}. Volume's status must be 'available'.`);
});
