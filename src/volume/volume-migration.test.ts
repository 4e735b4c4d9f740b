import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { availableSnapshot, availableVolume, expectFault, setQuota, volumeType, waitSnapshot } from './api/volume-fixtures.test-util.js';
import { FakeVolumeDriver } from './drivers/fake.js';
import { createVolumeTestCloud, type TestVolumeCloud } from './testing.js';

let cloud: TestVolumeCloud;
const drivers = { 'fake-a': new FakeVolumeDriver({ capacityGb: 1000 }), 'fake-b': new FakeVolumeDriver({ capacityGb: 500 }) };
const A = 'test-host@fake-a#fake-a';
const B = 'test-host@fake-b#fake-b';

before(async () => {
  cloud = await createVolumeTestCloud({ drivers });
  for (const resource of ['volumes', 'gigabytes', 'snapshots']) await setQuota(cloud, cloud.alpha.projectId, resource, -1);
  await volumeType(cloud, 'on-a', { volume_backend_name: 'fake-a' });
  await volumeType(cloud, 'on-b', { volume_backend_name: 'fake-b' });
  await volumeType(cloud, 'on-none', { volume_backend_name: 'fake-z' });
  await volumeType(cloud, 'anywhere');
});
after(async () => {
  await cloud.close();
});

/** An available volume of `type` on fake-a (alpha's) holding `data`. */
async function volumeOnA(data: string, type = 'on-a', size = 1): Promise<Record<string, any>> {
  const v = await availableVolume(cloud, cloud.alpha, { volume_type: type, name: `vol-${data}`, size });
  assert.equal(v['os-vol-host-attr:host'], A);
  const record = drivers['fake-a'].volumes.get(v.id);
  assert.ok(record);
  record.content = Buffer.from(data);
  return v;
}

function act(id: string, body: unknown, options: { user?: TestVolumeCloud['alpha']; version?: string } = {}) {
  return cloud.request('POST', `/volumes/${id}/action`, { payload: body, user: options.user ?? cloud.admin, ...(options.version ? { version: options.version } : {}) });
}

const show = async (id: string): Promise<Record<string, any>> => (await cloud.request('GET', `/volumes/${id}`)).body.volume;

test('retype with migration_policy on-demand moves the volume and its data to a backend of the new type', async () => {
  const v = await volumeOnA('retype-me');
  const res = await act(v.id, { 'os-retype': { new_type: 'on-b', migration_policy: 'on-demand' } }, { user: cloud.alpha });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const moved = await cloud.waitVolume(v.id, (x) => x.volume_type === 'on-b');
  assert.equal(moved.status, 'available');
  assert.equal(moved.migration_status, 'success');
  assert.equal(moved['os-vol-mig-status-attr:migstat'], 'success');
  assert.equal(moved['os-vol-mig-status-attr:name_id'], null, 'the volume keeps its id on the new backend');
  assert.equal(moved['os-vol-host-attr:host'], B);
  for (const key of ['id', 'size', 'name', 'description', 'user_id', 'os-vol-tenant-attr:tenant_id', 'multiattach']) assert.deepEqual(moved[key], v[key], key);
  assert.equal(drivers['fake-b'].volumes.get(v.id)?.content?.toString(), 'retype-me', 'the data moved');
  await cloud.agents.agents[0]?.idle();
  assert.equal(drivers['fake-a'].volumes.has(v.id), false, 'the source copy is gone');
  const list = await cloud.request('GET', `/volumes/detail?all_tenants=1&name=vol-retype-me`);
  assert.deepEqual(list.body.volumes.map((x: { id: string }) => x.id), [v.id], 'no temporary volume shows');
  const member = await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha });
  assert.equal(member.body.volume.migration_status, undefined, 'members do not see the migration status');
  assert.equal(member.body.volume['os-vol-mig-status-attr:migstat'], undefined);

  // The moved volume works on its new backend: a snapshot and a delete go to fake-b.
  const snap = await availableSnapshot(cloud, cloud.alpha, v.id);
  assert.ok(drivers['fake-b'].snapshots.has(String(snap.id)));
  assert.equal((await cloud.request('DELETE', `/snapshots/${snap.id}`, { user: cloud.alpha })).status, 202);
  await waitSnapshot(cloud, String(snap.id), (s) => s === null);
});

test('retype with migration: refused (400, nothing changes) with snapshots, attached, or when no backend fits', async () => {
  const v = await volumeOnA('kept');
  const snap = await availableSnapshot(cloud, cloud.alpha, v.id);
  expectFault(await act(v.id, { 'os-retype': { new_type: 'on-b', migration_policy: 'on-demand' } }, { user: cloud.alpha }), 400, 'Invalid volume: Volume must not have snapshots.');
  let now = await show(v.id);
  assert.equal(now.status, 'available');
  assert.equal(now.migration_status, null);
  assert.equal(now.volume_type, 'on-a');
  await cloud.request('DELETE', `/snapshots/${snap.id}`, { user: cloud.alpha });
  await waitSnapshot(cloud, String(snap.id), (s) => s === null);

  expectFault(await act(v.id, { 'os-retype': { new_type: 'on-none', migration_policy: 'on-demand' } }, { user: cloud.alpha }), 400, /^No valid backend was found\. No backend satisfies volume type on-none/);
  now = await show(v.id);
  assert.deepEqual([now.status, now.migration_status, now.volume_type, now['os-vol-host-attr:host']], ['available', null, 'on-a', A]);

  assert.equal((await act(v.id, { 'os-attach': { instance_uuid: '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f', mountpoint: '/dev/vdb' } }, { user: cloud.alpha })).status, 202);
  expectFault(await act(v.id, { 'os-retype': { new_type: 'on-b', migration_policy: 'on-demand' } }, { user: cloud.alpha }), 400, /^Invalid volume: Volume .* is attached: migrating an attached volume/);
  now = await show(v.id);
  assert.deepEqual([now.status, now.migration_status, now.volume_type], ['in-use', null, 'on-a']);
});

test('os-migrate_volume: an administrator moves an available volume to another backend; lock_volume holds it in maintenance', async () => {
  const v = await volumeOnA('migrate-me', 'anywhere');
  const blocked = drivers['fake-b'].block('createFromExport');
  const res = await act(v.id, { 'os-migrate_volume': { host: 'test-host@fake-b', force_host_copy: false, lock_volume: true } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  await blocked.reached;
  const during = await show(v.id);
  assert.deepEqual([during.status, during.migration_status, during['os-vol-host-attr:host']], ['maintenance', 'migrating', A]);
  expectFault(await act(v.id, { 'os-migrate_volume': { host: 'test-host@fake-b' } }), 400, /must not be migrating/);
  expectFault(await cloud.request('DELETE', `/volumes/${v.id}`, { user: cloud.alpha }), 400);
  blocked.release();
  const moved = await cloud.waitVolume(v.id, (x) => x.migration_status === 'success');
  assert.deepEqual([moved.status, moved['os-vol-host-attr:host'], moved.volume_type], ['available', B, 'anywhere'], 'a migration keeps the type');
  assert.equal(drivers['fake-b'].volumes.get(v.id)?.content?.toString(), 'migrate-me');

  // And back, to a pool named in full.
  assert.equal((await act(v.id, { 'os-migrate_volume': { host: A } })).status, 202);
  const back = await cloud.waitVolume(v.id, (x) => x['os-vol-host-attr:host'] === A && x.migration_status === 'success');
  assert.equal(back.status, 'available');
  assert.equal(drivers['fake-a'].volumes.get(v.id)?.content?.toString(), 'migrate-me');
});

test('os-migrate_volume: policy, input, host and state are checked; nothing changes when refused', async () => {
  const v = await volumeOnA('checked', 'anywhere');
  expectFault(await act(v.id, { 'os-migrate_volume': { host: 'test-host@fake-b' } }, { user: cloud.alpha }), 403, "Policy doesn't allow volume_extension:volume_admin_actions:migrate_volume to be performed.");
  expectFault(await act('0b9f1e2d-3c4b-4a59-8d7e-6f5a4b3c2d1e', { 'os-migrate_volume': { host: 'test-host@fake-b' } }), 404);
  expectFault(await act(v.id, { 'os-migrate_volume': {} }), 400, "Invalid input for field/attribute os-migrate_volume. Value: {}. 'host' is a required property");
  expectFault(await act(v.id, { 'os-migrate_volume': { host: 'test-host@fake-b', cluster: 'c' } }), 400, /Additional properties are not allowed \('cluster' was unexpected\)/);
  expectFault(await act(v.id, { 'os-migrate_volume': { host: 'test-host@fake-b', cluster: 'c' } }, { version: '3.16' }), 400, 'Invalid input received: One and only one of cluster and host must be set.');
  expectFault(await act(v.id, { 'os-migrate_volume': { cluster: 'c' } }, { version: '3.16' }), 400, "Invalid host: No available service named 'c'");
  expectFault(await act(v.id, { 'os-migrate_volume': { host: 'test-host@fake-b', lock_volume: 'perhaps' } }), 400, /^Invalid input for field\/attribute lock_volume/);
  expectFault(await act(v.id, { 'os-migrate_volume': { host: 'elsewhere@fake-b' } }), 400, "Invalid host: No available service named 'elsewhere@fake-b'");
  expectFault(await act(v.id, { 'os-migrate_volume': { host: A } }), 400, `Invalid volume: Volume ${v.id} status must be available or in-use, must not be migrating, have snapshots, be replicated, be part of a group and destination host/cluster must be different than the current one`);
  expectFault(await act(v.id, { 'os-migrate_volume': { host: 'test-host@fake-b#other-pool' } }), 400, /^Invalid host: test-host@fake-b#other-pool cannot hold volume/);
  const typed = await volumeOnA('typed');
  expectFault(await act(typed.id, { 'os-migrate_volume': { host: 'test-host@fake-b' } }), 400, /cannot hold volume .*: it does not pass the scheduler's filters/); // its type names backend fake-a
  const big = await volumeOnA('big', 'anywhere', 600);
  expectFault(await act(big.id, { 'os-migrate_volume': { host: 'test-host@fake-b' } }), 400, /cannot hold volume .*: it does not pass the scheduler's filters/);
  for (const id of [v.id, typed.id, big.id]) {
    const now = await show(id);
    assert.deepEqual([now.status, now.migration_status, now['os-vol-host-attr:host']], ['available', null, A]);
  }
});

test('a failed copy leaves the volume on its source with migration_status error and nothing on the destination', async () => {
  const v = await volumeOnA('survives');
  drivers['fake-b'].failNext('createFromExport', 'destination disk on fire');
  assert.equal((await act(v.id, { 'os-retype': { new_type: 'on-b', migration_policy: 'on-demand' } }, { user: cloud.alpha })).status, 202);
  const failed = await cloud.waitVolume(v.id, (x) => x.migration_status === 'error');
  assert.deepEqual([failed.status, failed.volume_type, failed['os-vol-host-attr:host']], ['available', 'on-a', A]);
  assert.equal(drivers['fake-b'].volumes.has(v.id), false, 'the half-made destination is removed');
  assert.equal(drivers['fake-a'].volumes.get(v.id)?.content?.toString(), 'survives');
  // An error is not a migration under way: the volume can migrate again.
  assert.equal((await act(v.id, { 'os-retype': { new_type: 'on-b', migration_policy: 'on-demand' } }, { user: cloud.alpha })).status, 202);
  const moved = await cloud.waitVolume(v.id, (x) => x.migration_status === 'success');
  assert.deepEqual([moved['os-vol-host-attr:host'], moved.volume_type], [B, 'on-b']);
});

test('an agent restart during a migration fails it; the destination keeps nothing', async () => {
  const v = await volumeOnA('restart');
  const blocked = drivers['fake-b'].block('createFromExport');
  assert.equal((await act(v.id, { 'os-retype': { new_type: 'on-b', migration_policy: 'on-demand' } }, { user: cloud.alpha })).status, 202);
  await blocked.reached;
  assert.equal((await show(v.id)).status, 'retyping');
  await cloud.restartAgents();
  const failed = await cloud.waitVolume(v.id, (x) => x.migration_status === 'error');
  assert.deepEqual([failed.status, failed.volume_type, failed['os-vol-host-attr:host']], ['available', 'on-a', A]);
  assert.equal(drivers['fake-b'].volumes.has(v.id), false);
  assert.equal(drivers['fake-a'].volumes.get(v.id)?.content?.toString(), 'restart');
});

test('os-migrate_volume_completion: administrators only; Cinder checks that both volumes are mid-migration', async () => {
  const v = await volumeOnA('complete');
  const other = await volumeOnA('other');
  const complete = (body: unknown, user = cloud.admin) => act(v.id, { 'os-migrate_volume_completion': body }, { user });
  expectFault(await complete({ new_volume: other.id }, cloud.alpha), 403, "Policy doesn't allow volume_extension:volume_admin_actions:migrate_volume_completion to be performed.");
  expectFault(await complete({}), 400, "Invalid input for field/attribute os-migrate_volume_completion. Value: {}. 'new_volume' is a required property");
  expectFault(await complete({ new_volume: 'not-a-uuid' }), 400, /is not a 'uuid'/);
  expectFault(await complete({ new_volume: '0b9f1e2d-3c4b-4a59-8d7e-6f5a4b3c2d1e' }), 404);
  const none = await complete({ new_volume: other.id, error: false });
  assert.equal(none.status, 200, JSON.stringify(none.body));
  assert.deepEqual(none.body, { save_volume_id: other.id }, 'two volumes that are not migrating: the new one is kept');
  await act(v.id, { 'os-reset_status': { migration_status: 'migrating' } });
  expectFault(await complete({ new_volume: other.id }), 400, 'Invalid volume: Destination volume not mid-migration.');
  await act(other.id, { 'os-reset_status': { migration_status: 'migrating' } });
  expectFault(await complete({ new_volume: other.id }), 400, `Invalid volume: Destination has migration_status migrating, expected target:${v.id}.`);
  await act(v.id, { 'os-reset_status': { migration_status: 'none' } });
  expectFault(await complete({ new_volume: other.id }), 400, 'Invalid volume: Source volume not mid-migration.');
});
