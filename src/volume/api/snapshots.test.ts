import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FakeVolumeDriver } from '../drivers/fake.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';
import { availableSnapshot, availableVolume, expectFault, setQuota, waitSnapshot } from './volume-fixtures.test-util.js';

let cloud: TestVolumeCloud;
const drivers = { 'fake-a': new FakeVolumeDriver({ capacityGb: 1000 }), 'fake-b': new FakeVolumeDriver({ capacityGb: 500 }) };
before(async () => {
  cloud = await createVolumeTestCloud({ drivers });
  for (const resource of ['volumes', 'gigabytes', 'snapshots']) await setQuota(cloud, cloud.alpha.projectId, resource, -1);
});
after(async () => {
  await cloud.close();
});

const SUMMARY_FIELDS = ['created_at', 'description', 'id', 'metadata', 'name', 'size', 'status', 'updated_at', 'volume_id'];
const MISSING = '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f';

test('create answers 202 creating and the snapshot becomes available; views per microversion', async () => {
  const v = await availableVolume(cloud, cloud.alpha, { size: 2 });
  const res = await cloud.request('POST', '/snapshots', { user: cloud.alpha, payload: { snapshot: { volume_id: v.id, name: ' snap ', description: 'd', metadata: { k: 'v' } } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const s = res.body.snapshot;
  assert.deepEqual(Object.keys(s).sort(), SUMMARY_FIELDS, 'Cinder 3.0 fields, no extension attributes on create');
  assert.equal(s.status, 'creating');
  assert.equal(s.name, 'snap');
  assert.equal(s.size, 2);
  assert.deepEqual(s.metadata, { k: 'v' });
  const ready = await waitSnapshot(cloud, s.id, (x) => x?.status !== 'creating');
  assert.equal(ready?.status, 'available');
  const shown = await cloud.request('GET', `/snapshots/${s.id}`, { user: cloud.alpha });
  assert.deepEqual(Object.keys(shown.body.snapshot).sort(), [...SUMMARY_FIELDS, 'os-extended-snapshot-attributes:progress', 'os-extended-snapshot-attributes:project_id'].sort());
  assert.equal(shown.body.snapshot['os-extended-snapshot-attributes:project_id'], cloud.alpha.projectId);
  const latest = await cloud.request('GET', `/snapshots/${s.id}`, { user: cloud.alpha, version: '3.65' });
  assert.equal(latest.body.snapshot.user_id, cloud.alpha.userId);
  assert.equal(latest.body.snapshot.group_snapshot_id, null);
  assert.equal(latest.body.snapshot.consumes_quota, true);

  expectFault(await cloud.request('GET', `/snapshots/${s.id}`, { user: cloud.beta }), 404, `Snapshot ${s.id} could not be found.`);
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.alpha, payload: { snapshot: { volume_id: MISSING } } }), 404, `Volume ${MISSING} could not be found.`);
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.alpha, payload: { snapshot: { volume_id: null } } }), 404, 'Volume None could not be found.');
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.alpha, payload: { snapshot: { name: 'x' } } }), 400, "Invalid input for field/attribute snapshot. Value: {'name': 'x'}. 'volume_id' is a required property");
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.beta, payload: { snapshot: { volume_id: v.id } } }), 404, `Volume ${v.id} could not be found.`);
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.alphaReader, payload: { snapshot: { volume_id: v.id } } }), 403, "Policy doesn't allow volume:create_snapshot to be performed.");
});

test('an in-use volume needs force (or 3.66); an error volume none', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  await cloud.request('POST', `/volumes/${v.id}/action`, { user: cloud.alpha, payload: { 'os-attach': { instance_uuid: MISSING, mountpoint: '/dev/vdb' } } });
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.alpha, payload: { snapshot: { volume_id: v.id } } }), 400, `Invalid volume: Volume ${v.id} status must be available, but current status is: in-use.`);
  const forced = await cloud.request('POST', '/snapshots', { user: cloud.alpha, payload: { snapshot: { volume_id: v.id, force: true } } });
  assert.equal(forced.status, 202);
  const v366 = await cloud.request('POST', '/snapshots', { user: cloud.alpha, version: '3.66', payload: { snapshot: { volume_id: v.id } } });
  assert.equal(v366.status, 202, 'from 3.66 an in-use volume needs no force');
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.alpha, version: '3.66', payload: { snapshot: { volume_id: v.id, force: false } } }), 400, /^Since microversion 3.66 the 'force' flag is invalid/);
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.alpha, payload: { snapshot: { volume_id: v.id, force: 'maybe' } } }), 400, /Invalid input for field\/attribute force/);
  await cloud.request('POST', `/volumes/${v.id}/action`, { payload: { 'os-reset_status': { status: 'error' } } });
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.alpha, payload: { snapshot: { volume_id: v.id, force: true } } }), 400, 'Invalid volume: The snapshot cannot be created when the volume is in error status.');
});

test('quota: snapshots and gigabytes count', async () => {
  const v = await availableVolume(cloud, cloud.beta, { size: 2 });
  await setQuota(cloud, cloud.beta.projectId, 'snapshots', 1);
  await availableSnapshot(cloud, cloud.beta, v.id);
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.beta, payload: { snapshot: { volume_id: v.id } } }), 413, 'Maximum number of snapshots allowed (1) exceeded', 'overLimit');
  await setQuota(cloud, cloud.beta.projectId, 'snapshots', -1);
  await setQuota(cloud, cloud.beta.projectId, 'gigabytes', 5);
  expectFault(await cloud.request('POST', '/snapshots', { user: cloud.beta, payload: { snapshot: { volume_id: v.id } } }), 413, 'Requested volume or snapshot exceeds allowed gigabytes quota. Requested 2G, quota is 5G and 4G has been consumed.');
  await setQuota(cloud, cloud.beta.projectId, 'gigabytes', -1);
  assert.equal((await cloud.request('GET', '/snapshots', { user: cloud.beta })).body.snapshots.length, 1, 'refused creates record nothing');
});

test('list, detail, filters, sorting, paging', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const made = [];
  for (const [i, meta] of [{ a: '1' }, { a: '2' }, { a: '1' }].entries()) made.push(await availableSnapshot(cloud, cloud.alpha, v.id, { name: `s${i}`, metadata: meta }));
  const ids = made.map((s) => s.id as string);
  const q = (query: string, version?: string) => cloud.request('GET', `/snapshots${query}`, { user: cloud.alpha, ...(version ? { version } : {}) });
  const list = await q(`?volume_id=${v.id}`);
  assert.deepEqual(
    list.body.snapshots.map((s: { id: string }) => s.id),
    [...ids].reverse(),
  );
  assert.deepEqual(Object.keys(list.body.snapshots[0]).sort(), SUMMARY_FIELDS);
  const detail = await q(`/detail?volume_id=${v.id}`);
  assert.ok('os-extended-snapshot-attributes:progress' in detail.body.snapshots[0]);
  assert.equal((await q(`?volume_id=${v.id}&name=s1`)).body.snapshots.length, 1);
  assert.equal((await q(`?volume_id=${v.id}&status=available`)).body.snapshots.length, 3);
  assert.equal((await q(`?volume_id=${v.id}&metadata=${encodeURIComponent("{'a': '1'}")}`, '3.22')).body.snapshots.length, 2);
  assert.equal((await q(`?volume_id=${v.id}&metadata=${encodeURIComponent("{'a': '1'}")}`)).body.snapshots.length, 3, 'metadata filters from 3.22');
  const sorted = await q(`?volume_id=${v.id}&sort=name:asc`, '3.30');
  assert.deepEqual(
    sorted.body.snapshots.map((s: { name: string }) => s.name),
    ['s0', 's1', 's2'],
  );
  expectFault(await q('?limit=-1'), 400, 'limit param must be positive');
  expectFault(await q('?sort=size'), 400, 'Invalid input received: Invalid sort key');
  expectFault(await q(`?marker=${MISSING}`), 404, `Snapshot ${MISSING} could not be found.`);
  const page = await q(`?volume_id=${v.id}&limit=2`);
  assert.equal(page.body.snapshots.length, 2);
  const next = page.body.snapshots_links[0].href as string;
  assert.match(next, /\/v3\/snapshots\?/);
  const rest = await cloud.request('GET', next.slice(`${cloud.urls.volume}/v3`.length), { user: cloud.alpha });
  assert.deepEqual(
    rest.body.snapshots.map((s: { id: string }) => s.id),
    [ids[0]],
  );
  assert.equal(rest.body.snapshots_links, undefined, 'no next link on the last, partial page');
  const counted = await q(`?volume_id=${v.id}&with_count=true`, '3.45');
  assert.equal(counted.body.count, 3);
  assert.equal((await cloud.request('GET', '/snapshots', { user: cloud.beta })).body.snapshots.some((s: { id: string }) => ids.includes(s.id)), false);
  assert.equal((await cloud.request('GET', `/snapshots?all_tenants=1&volume_id=${v.id}`)).body.snapshots.length, 3, 'an administrator sees all projects');
});

test('update, metadata, delete; delete needs available or error; a volume made from a snapshot', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const s = await availableSnapshot(cloud, cloud.alpha, v.id, { metadata: { a: '1' } });
  const updated = await cloud.request('PUT', `/snapshots/${s.id}`, { user: cloud.alpha, payload: { snapshot: { name: 'n2', description: 'd2' } } });
  assert.equal(updated.status, 200);
  assert.equal(updated.body.snapshot.name, 'n2');
  assert.equal(updated.body.snapshot.description, 'd2');
  expectFault(await cloud.request('PUT', `/snapshots/${s.id}`, { user: cloud.alpha, payload: { snapshot: {} } }), 400, /is not valid under any of the given schemas/);
  expectFault(await cloud.request('PUT', `/snapshots/${s.id}`, { user: cloud.alpha, payload: { snapshot: { size: 3 } } }), 400, /'size' was unexpected/);

  const url = `/snapshots/${s.id}/metadata`;
  assert.deepEqual((await cloud.request('POST', url, { user: cloud.alpha, payload: { metadata: { b: '2' } } })).body, { metadata: { a: '1', b: '2' } });
  assert.deepEqual((await cloud.request('PUT', url, { user: cloud.alpha, payload: { metadata: { c: '3' } } })).body, { metadata: { c: '3' } });
  assert.deepEqual((await cloud.request('PUT', `${url}/c`, { user: cloud.alpha, payload: { meta: { c: '4' } } })).body, { meta: { c: '4' } });
  assert.deepEqual((await cloud.request('GET', `${url}/c`, { user: cloud.alpha })).body, { meta: { c: '4' } });
  expectFault(await cloud.request('GET', `${url}/z`, { user: cloud.alpha }), 404, `Snapshot ${s.id} has no metadata with key z.`);
  assert.equal((await cloud.request('DELETE', `${url}/c`, { user: cloud.alpha })).status, 200);
  assert.deepEqual((await cloud.request('GET', url, { user: cloud.alpha })).body, { metadata: {} });

  const clone = await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { snapshot_id: s.id } } });
  assert.equal(clone.status, 202);
  assert.equal((await cloud.waitVolume(clone.body.volume.id, (x) => x.status !== 'creating')).status, 'available');

  await cloud.request('POST', `/snapshots/${s.id}/action`, { payload: { 'os-reset_status': { status: 'creating' } } });
  expectFault(await cloud.request('DELETE', `/snapshots/${s.id}`, { user: cloud.alpha }), 400, 'Invalid snapshot: Snapshot status must be available or error and must not be part of a group.');
  await cloud.request('POST', `/snapshots/${s.id}/action`, { payload: { 'os-reset_status': { status: 'error' } } });
  assert.equal((await cloud.request('DELETE', `/snapshots/${s.id}`, { user: cloud.alpha })).status, 202);
  assert.equal(await waitSnapshot(cloud, s.id, (x) => x === null), null);
  expectFault(await cloud.request('DELETE', `/snapshots/${s.id}`, { user: cloud.alpha }), 404);
});

test('actions: os-reset_status and os-force_delete for administrators, os-update_snapshot_status', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const s = await availableSnapshot(cloud, cloud.alpha, v.id);
  // `admin` true: as the administrator, else as the owner.
  const act = (body: unknown, admin = false) => cloud.request('POST', `/snapshots/${s.id}/action`, { payload: body, ...(admin ? {} : { user: cloud.alpha }) });
  expectFault(await act({ 'os-reset_status': { status: 'error' } }), 403, "Policy doesn't allow volume_extension:snapshot_admin_actions:reset_status to be performed.");
  expectFault(await act({ 'os-reset_status': { status: 'sleeping' } }, true), 400, /^Snapshot status: sleeping is invalid, valid statuses are: \['error', 'available'/);
  assert.equal((await act({ 'os-reset_status': { status: 'creating' } }, true)).status, 202);
  assert.equal((await cloud.request('GET', `/snapshots/${s.id}`)).body.snapshot.status, 'creating');
  expectFault(await act({ 'os-update_snapshot_status': { status: 'deleting' } }), 400, 'Provided snapshot status deleting not allowed for snapshot with status creating.');
  expectFault(await act({ 'os-update_snapshot_status': { status: 'available', progress: '200%' } }), 400, 'Invalid input received: progress must be an integer percentage between 0 and 100');
  assert.equal((await act({ 'os-update_snapshot_status': { status: 'available', progress: '100%' } })).status, 202);
  const shown = (await cloud.request('GET', `/snapshots/${s.id}`)).body.snapshot;
  assert.equal(shown.status, 'available');
  assert.equal(shown['os-extended-snapshot-attributes:progress'], '100%');
  expectFault(await act({ 'os-update_snapshot_status': { status: 'error' } }), 400, 'Snapshot status available not allowed for update_snapshot_status');
  expectFault(await act({ 'os-unknown': {} }), 400, 'There is no such action: os-unknown');
  expectFault(await act({ 'os-force_delete': {} }), 403, "Policy doesn't allow volume_extension:snapshot_admin_actions:force_delete to be performed.");
  await act({ 'os-reset_status': { status: 'creating' } }, true);
  assert.equal((await act({ 'os-force_delete': {} }, true)).status, 202, 'any status when forced');
  assert.equal(await waitSnapshot(cloud, s.id, (x) => x === null), null);
});
