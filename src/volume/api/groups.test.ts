import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FakeVolumeDriver } from '../drivers/fake.js';
import { createVolumeTestCloud, type TestUser, type TestVolumeCloud } from '../testing.js';
import { availableVolume, expectFault, setQuota, volumeType, waitSnapshot, waitVolumeGone } from './volume-fixtures.test-util.js';

let cloud: TestVolumeCloud;
let typeA: Record<string, any>;
let typeB: Record<string, any>;
let groupType: Record<string, any>;
before(async () => {
  cloud = await createVolumeTestCloud({ drivers: { 'fake-a': new FakeVolumeDriver({ capacityGb: 1000 }), 'fake-b': new FakeVolumeDriver({ capacityGb: 500 }) } });
  for (const resource of ['volumes', 'gigabytes', 'snapshots']) await setQuota(cloud, cloud.alpha.projectId, resource, -1);
  typeA = await volumeType(cloud, 'grp-type-a');
  typeB = await volumeType(cloud, 'grp-type-b');
  groupType = (await cloud.request('POST', '/group_types', { version: '3.11', payload: { group_type: { name: 'grp-gt' } } })).body.group_type;
});
after(async () => {
  await cloud.close();
});

const V = '3.70';
const MISSING = '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f';

/** Polls a resource (as admin) until `done` holds (null: 404). */
async function waitFor(path: string, key: string, done: (x: Record<string, any> | null) => boolean): Promise<Record<string, any> | null> {
  let last: Record<string, any> | null = null;
  for (let i = 0; i < 500; i++) {
    const res = await cloud.request('GET', path, { version: V });
    last = res.status === 404 ? null : res.body[key];
    if (done(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`${path} did not reach the expected state; last seen: ${JSON.stringify(last)}`);
}

async function newGroup(user: TestUser, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await cloud.request('POST', '/groups', { user, version: V, payload: { group: { name: 'g', group_type: groupType.id, volume_types: [typeA.id], ...extra } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.deepEqual(Object.keys(res.body.group).sort(), ['id', 'name']);
  const group = await waitFor(`/groups/${res.body.group.id}`, 'group', (g) => g?.status !== 'creating');
  assert.equal(group?.status, 'available');
  return group ?? {};
}

async function groupVolume(user: TestUser, groupId: string): Promise<Record<string, any>> {
  const v = await availableVolume(cloud, user, { volume_type: typeA.id, group_id: groupId }, V);
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`, { user, version: V })).body.volume.group_id, groupId);
  return v;
}

test('create, show, list, and delete a group with its volumes', async () => {
  const g = await newGroup(cloud.alpha);
  assert.deepEqual(Object.keys(g).sort(), ['availability_zone', 'created_at', 'description', 'group_snapshot_id', 'group_type', 'id', 'name', 'project_id', 'replication_status', 'source_group_id', 'status', 'volume_types'].sort(), 'admin sees project_id at 3.58+');
  const asMember = (await cloud.request('GET', `/groups/${g.id}`, { user: cloud.alpha, version: V })).body.group;
  assert.equal(asMember.project_id, undefined);
  assert.deepEqual(asMember.volume_types, [typeA.id]);
  assert.equal(asMember.group_type, groupType.id);
  const old = (await cloud.request('GET', `/groups/${g.id}`, { user: cloud.alpha, version: '3.13' })).body.group;
  assert.deepEqual(Object.keys(old).sort(), ['availability_zone', 'created_at', 'description', 'group_type', 'id', 'name', 'status', 'volume_types']);
  expectFault(await cloud.request('GET', `/groups/${g.id}`, { user: cloud.alpha, version: '3.12' }), 404, 'API version 3.12 is not supported on this method.');
  expectFault(await cloud.request('GET', `/groups/${g.id}`, { user: cloud.beta, version: V }), 404, `Group ${g.id} could not be found.`);

  const v = await groupVolume(cloud.alpha, g.id);
  const withVolumes = (await cloud.request('GET', `/groups/${g.id}?list_volume=true`, { user: cloud.alpha, version: V })).body.group;
  assert.deepEqual(withVolumes.volumes, [v.id]);
  const list = await cloud.request('GET', '/groups', { user: cloud.alpha, version: V });
  assert.deepEqual(list.body.groups, [{ id: g.id, name: 'g' }]);
  assert.deepEqual((await cloud.request('GET', '/groups/detail', { user: cloud.beta, version: V })).body.groups, []);
  const filtered = await cloud.request('GET', `/volumes/detail?group_id=${g.id}`, { user: cloud.alpha, version: V });
  assert.deepEqual(filtered.body.volumes.map((x: { id: string }) => x.id), [v.id]);

  expectFault(await cloud.request('DELETE', `/volumes/${v.id}`, { user: cloud.alpha, version: V }), 400, /belong to a group/);
  expectFault(await cloud.request('POST', `/groups/${g.id}/action`, { user: cloud.alpha, version: V, payload: { delete: { 'delete-volumes': false } } }), 400, `Invalid Group: Group ${g.id} still contains volumes. The delete-volumes flag is required to delete it.`);
  expectFault(await cloud.request('POST', `/groups/${g.id}/action`, { user: cloud.alphaReader, version: V, payload: { delete: { 'delete-volumes': true } } }), 403, "Policy doesn't allow group:delete to be performed.");
  assert.equal((await cloud.request('POST', `/groups/${g.id}/action`, { user: cloud.alpha, version: V, payload: { delete: { 'delete-volumes': true } } })).status, 202);
  await waitVolumeGone(cloud, v.id);
  assert.equal(await waitFor(`/groups/${g.id}`, 'group', (x) => x === null), null);
});

test('create refuses bad input and types outside the group', async () => {
  const bad = async (group: Record<string, unknown>, message: string | RegExp, status = 400): Promise<void> =>
    expectFault(await cloud.request('POST', '/groups', { user: cloud.alpha, version: V, payload: { group } }), status, message);
  await bad({ group_type: groupType.id }, /'volume_types' is a required property/);
  await bad({ group_type: groupType.id, volume_types: [] }, /is too short/);
  await bad({ group_type: MISSING, volume_types: [typeA.id] }, `Group type ${MISSING} could not be found.`, 404);
  await bad({ group_type: groupType.id, volume_types: ['nope'] }, 'Volume type with name nope could not be found.', 404);
  await bad({ group_type: groupType.id, volume_types: [typeA.id], availability_zone: 'mars' }, "Invalid input received: Availability zone 'mars' is invalid.");
  const g = await newGroup(cloud.alpha);
  const res = await cloud.request('POST', '/volumes', { user: cloud.alpha, version: V, payload: { volume: { size: 1, volume_type: typeB.id, group_id: g.id } } });
  expectFault(res, 400, `Invalid input received: Invalid volume_type provided: ${typeB.id} (requested type must be supported by this group).`);
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.beta, version: V, payload: { volume: { size: 1, volume_type: typeA.id, group_id: g.id } } }), 404, `Group ${g.id} could not be found.`);
  await setQuota(cloud, cloud.beta.projectId, 'groups', 0);
  expectFault(await cloud.request('POST', '/groups', { user: cloud.beta, version: V, payload: { group: { group_type: groupType.id, volume_types: [typeA.id] } } }), 413, 'Maximum number of groups allowed (0) exceeded');
  assert.equal((await cloud.request('POST', `/groups/${g.id}/action`, { user: cloud.alpha, version: V, payload: { delete: {} } })).status, 202);
});

test('update renames and moves volumes in and out; reset_status is for administrators', async () => {
  const g = await newGroup(cloud.alpha);
  const v1 = await groupVolume(cloud.alpha, g.id);
  const v2 = await groupVolume(cloud.alpha, g.id);
  const put = (group: Record<string, unknown>, user = cloud.alpha) => cloud.request('PUT', `/groups/${g.id}`, { user, version: V, payload: { group } });
  assert.equal((await put({ name: 'new', description: 'desc', remove_volumes: v2.id })).status, 202);
  const shown = (await cloud.request('GET', `/groups/${g.id}?list_volume=True`, { user: cloud.alpha, version: V })).body.group;
  assert.equal(shown.name, 'new');
  assert.equal(shown.description, 'desc');
  assert.equal(shown.status, 'available');
  assert.deepEqual(shown.volumes, [v1.id]);
  expectFault(await put({ remove_volumes: v2.id }), 400, `Invalid volume: Cannot remove volume ${v2.id} from group ${g.id} because it is not in the group.`);
  expectFault(await put({ add_volumes: v2.id, remove_volumes: v2.id }), 400, `Invalid volume: UUIDs ['${v2.id}'] are in both add and remove volume list.`);
  const other = await availableVolume(cloud, cloud.alpha, { volume_type: typeB.id });
  expectFault(await put({ add_volumes: other.id }), 400, `Invalid volume: Cannot add volume ${other.id} to group ${g.id} because volume type ${typeB.id} is not supported by the group.`);
  expectFault(await put({}), 400, /is not valid under any of the given schemas/);
  assert.equal((await put({ add_volumes: `${v2.id},` })).status, 202);
  assert.equal((await cloud.request('GET', `/volumes/${v2.id}`, { user: cloud.alpha, version: V })).body.volume.group_id, g.id);

  const reset = (status: unknown, user = cloud.admin, version = V) => cloud.request('POST', `/groups/${g.id}/action`, { user, version, payload: { reset_status: { status } } });
  expectFault(await reset('error', cloud.alpha), 403, "Policy doesn't allow group:reset_status to be performed.");
  expectFault(await reset('error', cloud.admin, '3.19'), 404);
  expectFault(await reset('bogus'), 400, /^Invalid Group Status: Group status: bogus is invalid/);
  for (const status of ['creating', 'error', 'available']) {
    assert.equal((await reset(status)).status, 202);
    assert.equal((await cloud.request('GET', `/groups/${g.id}`, { user: cloud.alpha, version: V })).body.group.status, status);
  }
  expectFault(await cloud.request('POST', `/groups/${g.id}/action`, { user: cloud.alpha, version: V, payload: { enable_replication: {} } }), 400, `Invalid group type: Group ${g.id} is not a replication group type.`);
  assert.equal((await cloud.request('POST', `/groups/${g.id}/action`, { user: cloud.alpha, version: V, payload: { delete: { 'delete-volumes': true } } })).status, 202);
  await waitFor(`/groups/${g.id}`, 'group', (x) => x === null);
});

test('group snapshots: one snapshot per volume; groups from a group snapshot and from a group; delete', async () => {
  const g = await newGroup(cloud.alpha);
  const v1 = await groupVolume(cloud.alpha, g.id);
  const v2 = await groupVolume(cloud.alpha, g.id);
  const created = await cloud.request('POST', '/group_snapshots', { user: cloud.alpha, version: V, payload: { group_snapshot: { group_id: g.id, name: 'gs' } } });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  assert.deepEqual(Object.keys(created.body.group_snapshot).sort(), ['group_type_id', 'id', 'name']);
  const gsId = created.body.group_snapshot.id;
  const gs = await waitFor(`/group_snapshots/${gsId}`, 'group_snapshot', (x) => x?.status !== 'creating');
  assert.equal(gs?.status, 'available');
  const asMember = (await cloud.request('GET', `/group_snapshots/${gsId}`, { user: cloud.alpha, version: V })).body.group_snapshot;
  assert.deepEqual(Object.keys(asMember).sort(), ['created_at', 'description', 'group_id', 'group_type_id', 'id', 'name', 'status']);
  const snaps = (await cloud.request('GET', '/snapshots/detail', { user: cloud.alpha, version: V })).body.snapshots.filter((s: { group_snapshot_id: string }) => s.group_snapshot_id === gsId);
  assert.deepEqual(snaps.map((s: { volume_id: string }) => s.volume_id).sort(), [v1.id, v2.id].sort());
  assert.deepEqual((await cloud.request('GET', '/group_snapshots', { user: cloud.alpha, version: V })).body.group_snapshots, [{ id: gsId, name: 'gs' }]);
  assert.deepEqual((await cloud.request('GET', '/group_snapshots/detail', { user: cloud.beta, version: V })).body.group_snapshots, []);
  expectFault(await cloud.request('DELETE', `/snapshots/${snaps[0].id}`, { user: cloud.alpha, version: V }), 400, /must not be part of a group/);
  expectFault(await cloud.request('POST', `/groups/${g.id}/action`, { user: cloud.alpha, version: V, payload: { delete: { 'delete-volumes': true } } }), 400, 'Invalid Group: Group has existing snapshots.');

  const fromSnap = await cloud.request('POST', '/groups/action', { user: cloud.alpha, version: V, payload: { 'create-from-src': { group_snapshot_id: gsId, name: 'from-snap' } } });
  assert.equal(fromSnap.status, 202, JSON.stringify(fromSnap.body));
  const g2 = await waitFor(`/groups/${fromSnap.body.group.id}?list_volume=true`, 'group', (x) => x?.status !== 'creating');
  assert.equal(g2?.status, 'available');
  assert.equal(g2?.group_snapshot_id, gsId);
  assert.equal(g2?.volumes.length, 2);
  const fromGroup = await cloud.request('POST', '/groups/action', { user: cloud.alpha, version: V, payload: { 'create-from-src': { source_group_id: g.id, name: 'from-group' } } });
  assert.equal(fromGroup.status, 202, JSON.stringify(fromGroup.body));
  const g3 = await waitFor(`/groups/${fromGroup.body.group.id}?list_volume=true`, 'group', (x) => x?.status !== 'creating');
  assert.equal(g3?.status, 'available');
  assert.equal(g3?.source_group_id, g.id);
  assert.equal(g3?.volumes.length, 2);
  expectFault(
    await cloud.request('POST', '/groups/action', { user: cloud.alpha, version: V, payload: { 'create-from-src': { source_group_id: MISSING } } }),
    404,
    `Group ${MISSING} could not be found.`,
  );

  const reset = (status: string, user = cloud.admin) => cloud.request('POST', `/group_snapshots/${gsId}/action`, { user, version: V, payload: { reset_status: { status } } });
  expectFault(await reset('error', cloud.alpha), 403, "Policy doesn't allow group:reset_group_snapshot_status to be performed.");
  expectFault(await reset('in-use'), 400, /^Invalid GroupSnapshot Status: Group snapshot status: in-use is invalid/);
  assert.equal((await reset('error')).status, 202);
  assert.equal((await cloud.request('GET', `/group_snapshots/${gsId}`, { user: cloud.alpha, version: V })).body.group_snapshot.status, 'error');

  assert.equal((await cloud.request('DELETE', `/group_snapshots/${gsId}`, { user: cloud.alpha, version: V })).status, 202);
  await waitFor(`/group_snapshots/${gsId}`, 'group_snapshot', (x) => x === null);
  for (const s of snaps) assert.equal(await waitSnapshot(cloud, s.id, (x) => x === null), null);
  for (const id of [g.id, g2?.id, g3?.id]) {
    assert.equal((await cloud.request('POST', `/groups/${id}/action`, { user: cloud.alpha, version: V, payload: { delete: { 'delete-volumes': true } } })).status, 202);
    await waitFor(`/groups/${id}`, 'group', (x) => x === null);
  }
  assert.equal((await cloud.request('GET', `/volumes?group_id=${g.id}`, { user: cloud.alpha, version: V })).body.volumes.length, 0);
});
