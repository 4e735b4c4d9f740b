import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';
import { availableSnapshot, availableVolume, expectFault, setQuota, volumeType, waitVolumeGone } from './volume-fixtures.test-util.js';

let cloud: TestVolumeCloud;
before(async () => {
  cloud = await createVolumeTestCloud();
  // These tests make many volumes in project alpha.
  for (const resource of ['volumes', 'gigabytes', 'snapshots']) await setQuota(cloud, cloud.alpha.projectId, resource, -1);
});
after(async () => {
  await cloud.close();
});

const BASE_FIELDS = [
  'attachments',
  'availability_zone',
  'bootable',
  'consistencygroup_id',
  'created_at',
  'description',
  'encrypted',
  'id',
  'links',
  'metadata',
  'multiattach',
  'name',
  'replication_status',
  'size',
  'snapshot_id',
  'source_volid',
  'status',
  'updated_at',
  'user_id',
  'volume_type',
];

test('create answers 202 creating, the volume becomes available, and the view follows the microversion and the role', async () => {
  const created = await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 1, name: ' first ', description: 'd', metadata: { Type: 'work' } } } });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const v = created.body.volume;
  assert.deepEqual(Object.keys(v).sort(), BASE_FIELDS, 'a member at 3.0 sees Cinder 3.0 fields, no extension attributes on create');
  assert.equal(v.status, 'creating');
  assert.equal(v.name, 'first', 'the name is trimmed');
  assert.equal(v.bootable, 'false');
  assert.equal(v.volume_type, '__DEFAULT__');
  assert.equal(v.availability_zone, 'nova');
  assert.deepEqual(v.metadata, { Type: 'work' });
  assert.equal(v.updated_at, null);
  assert.match(v.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  assert.equal(v.links[0].href, `${cloud.urls.volume}/v3/volumes/${v.id}`);
  assert.equal(v.links[1].href, `${cloud.urls.volume}/volumes/${v.id}`);

  const ready = await cloud.waitVolume(v.id, (x) => x.status === 'available');
  assert.match(ready['os-vol-host-attr:host'], /^test-host@fake-[ab]#fake-[ab]$/, 'an administrator sees the host');
  assert.equal(ready['os-vol-tenant-attr:tenant_id'], cloud.alpha.projectId);
  assert.equal(ready.migration_status, null);

  const mine = await cloud.request('GET', `/${cloud.alpha.projectId}/volumes/${v.id}`, { user: cloud.alpha });
  assert.equal(mine.status, 200);
  assert.deepEqual(Object.keys(mine.body.volume).sort(), [...BASE_FIELDS, 'os-vol-tenant-attr:tenant_id'].sort(), 'the owner sees the tenant, not the host');
  assert.equal(mine.body.volume.links[0].href, `${cloud.urls.volume}/v3/${cloud.alpha.projectId}/volumes/${v.id}`, 'links keep the project id of the URL');
  assert.equal(mine.body.volume.links[1].href, `${cloud.urls.volume}/${cloud.alpha.projectId}/volumes/${v.id}`);

  const latest = await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha, version: '3.70' });
  const type = (await cloud.request('GET', '/types/__DEFAULT__')).body.volume_type ?? {};
  assert.equal(latest.body.volume.group_id, null);
  assert.equal(latest.body.volume.shared_targets, false);
  assert.equal(latest.body.volume.service_uuid, null);
  assert.equal(latest.body.volume.consumes_quota, true);
  assert.equal(latest.body.volume.volume_type_id, type.id ?? latest.body.volume.volume_type_id);
  assert.equal('provider_id' in latest.body.volume, false, 'provider_id is for administrators');
  assert.equal('cluster_name' in latest.body.volume, false);
  const adminLatest = await cloud.request('GET', `/volumes/${v.id}`, { version: '3.70' });
  assert.equal(adminLatest.body.volume.provider_id, null);
  assert.equal(adminLatest.body.volume.cluster_name, null);
});

test('another project cannot see, change or delete a volume; a reader cannot create one', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const msg = `Volume ${v.id} could not be found.`;
  expectFault(await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.beta }), 404, msg, 'itemNotFound');
  expectFault(await cloud.request('PUT', `/volumes/${v.id}`, { user: cloud.beta, payload: { volume: { name: 'x' } } }), 404, msg);
  expectFault(await cloud.request('DELETE', `/volumes/${v.id}`, { user: cloud.beta }), 404, msg);
  expectFault(await cloud.request('GET', `/volumes/${v.id}/metadata`, { user: cloud.beta }), 404, msg);
  expectFault(await cloud.request('POST', `/volumes/${v.id}/action`, { user: cloud.beta, payload: { 'os-extend': { new_size: 2 } } }), 404, msg);
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.alphaReader, payload: { volume: { size: 1 } } }), 403, "Policy doesn't allow volume:create to be performed.", 'forbidden');
  expectFault(await cloud.request('DELETE', `/volumes/${v.id}`, { user: cloud.alphaReader }), 403, "Policy doesn't allow volume:delete to be performed.");
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alphaReader })).status, 200, 'a reader sees it');
  const list = await cloud.request('GET', '/volumes', { user: cloud.beta });
  assert.equal(list.body.volumes.some((x: { id: string }) => x.id === v.id), false);
  expectFault(await cloud.request('GET', '/volumes/nonexistent'), 404, 'Volume nonexistent could not be found.');
});

test('create refuses bad input with Cinder errors and records nothing', async () => {
  const before = (await cloud.request('GET', '/volumes?all_tenants=1')).body.volumes.length;
  const bad = async (volume: unknown, status: number, message: string | RegExp, version?: string): Promise<void> =>
    expectFault(await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume }, ...(version ? { version } : {}) }), status, message);
  await bad({ size: '#$%' }, 400, "Invalid input for field/attribute size. Value: #$%. '#$%' does not match '^[0-9]+$'");
  await bad({ size: '' }, 400, /Invalid input for field\/attribute size/);
  await bad({ size: '0' }, 400, /is less than the minimum of 1/);
  await bad({ size: '-1' }, 400, /does not match/);
  await bad({ size: 1.5 }, 400, /is not of type 'integer', 'string', 'null'/);
  await bad({}, 400, "Invalid input received: Volume size 'None' must be an integer and greater than 0");
  await bad({ size: 1, volume_type: 'no-such-type' }, 404, 'Volume type with name no-such-type could not be found.');
  await bad({ size: 1, volume_type: '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f' }, 404, 'Volume type 6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f could not be found.');
  await bad({ size: 1, snapshot_id: '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f' }, 404, 'Snapshot 6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f could not be found.');
  await bad({ size: 1, source_volid: '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f' }, 404, 'Volume 6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f could not be found.');
  await bad({ size: 1, snapshot_id: 'not-a-uuid' }, 400, "Invalid input for field/attribute snapshot_id. Value: not-a-uuid. 'not-a-uuid' is not valid under any of the given schemas");
  await bad({ size: 1, availability_zone: 'mars' }, 400, "Invalid input received: Availability zone 'mars' is invalid.");
  await bad({ size: 1, multiattach: true }, 400, /^multiattach parameter has been removed/);
  await bad({ size: 1, name: 'n'.repeat(256) }, 400, 'Invalid input received: name has 256 characters, more than 255.');
  await bad({ size: 1, metadata: { 'a/b?': 'x' } }, 400, /Additional properties are not allowed \('a\/b\?' was unexpected\)/);
  await bad({ size: 1, metadata: { k: 'v'.repeat(256) } }, 400, /Invalid input for field\/attribute k\. .* is too long/);
  await bad({ size: 1, bogus: 1 }, 400, "Invalid input for field/attribute volume. Value: {'size': 1, 'bogus': 1}. Additional properties are not allowed ('bogus' was unexpected)", '3.53');
  assert.equal((await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 1, bogus: 1 } } })).status, 202, 'before 3.53 extra members are ignored');
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { nothing: {} } }), 400, "'volume' is a required property");
  const afterCount = (await cloud.request('GET', '/volumes?all_tenants=1')).body.volumes.length;
  assert.equal(afterCount, before + 1, 'only the valid create recorded a volume');
});

test('quota: the volumes and gigabytes limits are 413, per_volume_gigabytes too', async () => {
  await setQuota(cloud, cloud.beta.projectId, 'gigabytes', 3);
  await setQuota(cloud, cloud.beta.projectId, 'per_volume_gigabytes', 2);
  const first = await availableVolume(cloud, cloud.beta, { size: 2 });
  const over = await cloud.request('POST', '/volumes', { user: cloud.beta, payload: { volume: { size: 2 } } });
  expectFault(over, 413, 'Requested volume or snapshot exceeds allowed gigabytes quota. Requested 2G, quota is 3G and 2G has been consumed.', 'overLimit');
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.beta, payload: { volume: { size: 5 } } }), 413, 'Requested volume size 5G is larger than maximum allowed limit 2G.');
  await setQuota(cloud, cloud.beta.projectId, 'volumes', 1);
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.beta, payload: { volume: { size: 1 } } }), 413, "Maximum number of volumes allowed (1) exceeded for quota 'volumes'.");
  for (const r of ['gigabytes', 'per_volume_gigabytes', 'volumes']) await cloud.volume.db.deleteFrom('quota').where('project_id', '=', cloud.beta.projectId).where('resource', '=', r).execute();
  assert.equal((await cloud.request('DELETE', `/volumes/${first.id}`, { user: cloud.beta })).status, 202);
  await waitVolumeGone(cloud, first.id);
});

test('volume types: by name or id, their zones and sizes, multiattach from the type', async () => {
  const multi = await volumeType(cloud, 'multi', { multiattach: '<is> True' });
  const v = await availableVolume(cloud, cloud.alpha, { volume_type: multi.id });
  assert.equal(v.multiattach, true);
  assert.equal(v.volume_type, 'multi');
  await volumeType(cloud, 'small', { 'provisioning:max_vol_size': '2' });
  expectFault(
    await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 3, volume_type: 'small' } } }),
    400,
    "Invalid input received: Specified volume size of '3' is greater than the maximum allowable size of '2' for volume type 'small'.",
  );
  await volumeType(cloud, 'zoned', { 'RESKEY:availability_zones': 'elsewhere' });
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 1, volume_type: 'zoned' } } }), 400, 'Volume type is only supported in these availability zones: elsewhere');
});

test('list, detail, filters, sorting, paging with next links, count and summary', async () => {
  const project = cloud.beta;
  const made: Record<string, any>[] = [];
  for (const [i, meta] of [{ Type: 'work' }, { Type: 'work' }, { Type: 'play' }].entries()) made.push(await availableVolume(cloud, project, { name: `list-${i}`, size: i + 1, metadata: meta }));
  const ids = made.map((v) => v.id);
  const list = await cloud.request('GET', '/volumes', { user: project });
  assert.equal(list.status, 200);
  assert.deepEqual(Object.keys(list.body.volumes[0]).sort(), ['id', 'links', 'name']);
  assert.deepEqual(
    list.body.volumes.map((v: { id: string }) => v.id),
    [...ids].reverse(),
    'newest first by default',
  );

  const byName = await cloud.request('GET', '/volumes/detail?name=list-1', { user: project });
  assert.deepEqual(
    byName.body.volumes.map((v: { id: string }) => v.id),
    [ids[1]],
  );
  const byMeta = await cloud.request('GET', `/volumes/detail?metadata=${encodeURIComponent("{'Type': 'work'}")}`, { user: project });
  assert.deepEqual(byMeta.body.volumes.map((v: { id: string }) => v.id).sort(), [ids[0], ids[1]].sort());
  assert.equal((await cloud.request('GET', '/volumes?status=null', { user: project })).body.volumes.length, 0);
  assert.equal((await cloud.request('GET', '/volumes?bootable=false', { user: project })).body.volumes.length, 3);
  expectFault(await cloud.request('GET', '/volumes?bootable=maybe', { user: project, version: '3.2' }), 400, "Invalid input received: 'bootable = maybe'");
  assert.equal((await cloud.request('GET', '/volumes?size=2', { user: project })).body.volumes.length, 1, 'values are Python literals');
  assert.equal((await cloud.request('GET', '/volumes?host=test-host', { user: project })).body.volumes.length, 3, 'unknown filters are dropped for users before 3.31');
  expectFault(await cloud.request('GET', '/volumes?host=test-host', { user: project, version: '3.31' }), 400, 'Invalid filters host are found in query options.');
  assert.equal((await cloud.request('GET', '/volumes?host=test-host', { user: project, version: '3.31' })).status, 400);
  assert.equal((await cloud.request('GET', '/volumes?name~=list-&all_tenants=1', { user: project, version: '3.34' })).body.volumes.length, 3, 'like filters from 3.34');
  const since = made[1]?.created_at as string;
  assert.equal((await cloud.request('GET', `/volumes?created_at=gte:${since}`, { user: project, version: '3.60' })).body.volumes.length, 2, 'time comparisons from 3.60');
  expectFault(await cloud.request('GET', '/volumes?created_at=xx:2020', { user: project, version: '3.60' }), 400, 'Invalid input received: Invalid xx operator');

  const sorted = await cloud.request('GET', '/volumes/detail?sort=size:asc', { user: project });
  assert.deepEqual(
    sorted.body.volumes.map((v: { size: number }) => v.size),
    [1, 2, 3],
  );
  const old = await cloud.request('GET', '/volumes/detail?sort_key=name&sort_dir=desc', { user: project });
  assert.deepEqual(
    old.body.volumes.map((v: { name: string }) => v.name),
    ['list-2', 'list-1', 'list-0'],
  );
  expectFault(await cloud.request('GET', '/volumes?sort=nope', { user: project }), 400, 'Invalid input received: Invalid sort key');
  expectFault(await cloud.request('GET', '/volumes?sort=size:sideways', { user: project }), 400, "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.");
  expectFault(await cloud.request('GET', '/volumes?sort=size&sort_key=size', { user: project }), 400, "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.");
  expectFault(await cloud.request('GET', '/volumes?limit=x', { user: project }), 400, 'limit param must be an integer');
  expectFault(await cloud.request('GET', '/volumes?limit=-1', { user: project }), 400, 'limit param must be positive');
  expectFault(await cloud.request('GET', '/volumes?marker=6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f', { user: project }), 404, 'Volume 6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f could not be found.');

  // Page by one, following the next links, as Tempest does.
  const seen: string[] = [];
  let url = `/${project.projectId}/volumes/detail?limit=1&sort=id:asc`;
  for (let i = 0; i < 10; i++) {
    const page = await cloud.request('GET', url, { user: project });
    seen.push(...page.body.volumes.map((v: { id: string }) => v.id));
    const next = page.body.volumes_links?.find((l: { rel: string }) => l.rel === 'next')?.href as string | undefined;
    if (!next) break;
    assert.ok(next.startsWith(`${cloud.urls.volume}/v3/${project.projectId}/volumes/detail?`), next);
    url = next.slice(`${cloud.urls.volume}/v3`.length);
  }
  assert.deepEqual(seen, [...ids].sort(), 'every volume once, in id order');

  const counted = await cloud.request('GET', '/volumes?with_count=true&limit=2', { user: project, version: '3.45' });
  assert.equal(counted.body.count, 3);
  assert.equal(counted.body.volumes.length, 2);

  const summary = await cloud.request('GET', '/volumes/summary', { user: project, version: '3.36' });
  assert.deepEqual(summary.body, { 'volume-summary': { total_count: 3, total_size: 6, metadata: { Type: ['play', 'work'] } } });
  const oldSummary = await cloud.request('GET', '/volumes/summary', { user: project, version: '3.12' });
  assert.deepEqual(oldSummary.body, { 'volume-summary': { total_count: 3, total_size: 6 } });
  expectFault(await cloud.request('GET', '/volumes/summary', { user: project }), 404, 'The resource could not be found.');
  for (const v of made) assert.equal((await cloud.request('DELETE', `/volumes/${v.id}`, { user: project })).status, 202);
  for (const v of made) await waitVolumeGone(cloud, v.id);
});

test('update: name, description and metadata; maintenance refuses; 3.53 needs a member', async () => {
  const v = await availableVolume(cloud, cloud.alpha, { metadata: { a: '1' } });
  const res = await cloud.request('PUT', `/volumes/${v.id}`, { user: cloud.alpha, payload: { volume: { name: 'renamed', description: 'new', metadata: { b: '2' } } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.volume.name, 'renamed');
  assert.equal(res.body.volume.description, 'new');
  assert.deepEqual(res.body.volume.metadata, { b: '2' }, 'metadata in an update replaces it');
  assert.notEqual(res.body.volume.updated_at, null);
  const legacy = await cloud.request('PUT', `/volumes/${v.id}`, { user: cloud.alpha, payload: { volume: { display_name: 'legacy' } } });
  assert.equal(legacy.body.volume.name, 'legacy');
  expectFault(await cloud.request('PUT', `/volumes/${v.id}`, { user: cloud.alpha, payload: { volume: { size: 3 } } }), 400, /Additional properties are not allowed \('size' was unexpected\)/);
  expectFault(await cloud.request('PUT', `/volumes/${v.id}`, { user: cloud.alpha, payload: { volume: {} }, version: '3.53' }), 400, 'Invalid input for field/attribute volume. Value: {}. {} is not valid under any of the given schemas');
  expectFault(await cloud.request('PUT', '/volumes/6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f', { user: cloud.alpha, payload: { volume: { name: 'n' } } }), 404);
  await cloud.request('POST', `/volumes/${v.id}/action`, { payload: { 'os-reset_status': { status: 'maintenance' } } });
  expectFault(await cloud.request('PUT', `/volumes/${v.id}`, { user: cloud.alpha, payload: { volume: { name: 'x' } } }), 400, 'Invalid volume: The volume cannot be updated during maintenance.');
  await cloud.request('POST', `/volumes/${v.id}/action`, { payload: { 'os-reset_status': { status: 'available' } } });
});

test('metadata: list, merge, replace, one item, delete, ETag and errors', async () => {
  const v = await availableVolume(cloud, cloud.alpha, { metadata: { a: '1' } });
  const url = `/volumes/${v.id}/metadata`;
  assert.deepEqual((await cloud.request('GET', url, { user: cloud.alpha })).body, { metadata: { a: '1' } });
  assert.deepEqual((await cloud.request('POST', url, { user: cloud.alpha, payload: { metadata: { b: '2' } } })).body, { metadata: { a: '1', b: '2' } });
  assert.deepEqual((await cloud.request('PUT', url, { user: cloud.alpha, payload: { metadata: { c: '3' } } })).body, { metadata: { c: '3' } });
  assert.deepEqual((await cloud.request('GET', `${url}/c`, { user: cloud.alpha })).body, { meta: { c: '3' } });
  assert.deepEqual((await cloud.request('PUT', `${url}/d`, { user: cloud.alpha, payload: { meta: { d: '4' } } })).body, { meta: { d: '4' } });
  expectFault(await cloud.request('PUT', `${url}/d`, { user: cloud.alpha, payload: { meta: { e: '5' } } }), 400, 'Request body and URI mismatch');
  expectFault(await cloud.request('PUT', `${url}/d`, { user: cloud.alpha, payload: { meta: { d: '4', e: '5' } } }), 400, /has too many properties/);
  expectFault(await cloud.request('GET', `${url}/zz`, { user: cloud.alpha }), 404, `Volume ${v.id} has no metadata with key zz.`);
  const del = await cloud.request('DELETE', `${url}/d`, { user: cloud.alpha });
  assert.equal(del.status, 200);
  expectFault(await cloud.request('DELETE', `${url}/d`, { user: cloud.alpha }), 404, `Volume ${v.id} has no metadata with key d.`);
  expectFault(await cloud.request('POST', url, { user: cloud.alphaReader, payload: { metadata: { x: 'y' } } }), 403, "Policy doesn't allow volume:create_volume_metadata to be performed.");
  expectFault(await cloud.request('POST', url, { user: cloud.alpha, payload: { metadata: 'x' } }), 400, "Invalid input for field/attribute metadata. Value: x. 'x' is not of type 'object'");

  const tagged = await cloud.request('GET', url, { user: cloud.alpha, version: '3.15' });
  const etag = String(tagged.headers.etag);
  assert.match(etag, /^[0-9a-f]{32}$/);
  const stale = await cloud.request('PUT', url, { user: cloud.alpha, version: '3.15', payload: { metadata: { q: '1' } }, headers: { 'If-Match': '"0123"' } });
  assert.equal(stale.status, 412);
  const fresh = await cloud.request('PUT', url, { user: cloud.alpha, version: '3.15', payload: { metadata: { q: '1' } }, headers: { 'If-Match': `"${etag}"` } });
  assert.equal(fresh.status, 200);
  assert.deepEqual(fresh.body, { metadata: { q: '1' } });
});

test('delete: a volume never scheduled goes at once; in-use, snapshots and transient statuses refuse; cascade and force', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  await availableSnapshot(cloud, cloud.alpha, v.id);
  const refused =
    'Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.';
  expectFault(await cloud.request('DELETE', `/volumes/${v.id}`, { user: cloud.alpha }), 400, refused);
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.status, 'available', 'a refused delete changes nothing');
  assert.equal((await cloud.request('DELETE', `/volumes/${v.id}?cascade=true`, { user: cloud.alpha })).status, 202);
  await waitVolumeGone(cloud, v.id);
  assert.equal((await cloud.request('GET', `/snapshots?all_tenants=1&volume_id=${v.id}`)).body.snapshots.length, 0, 'its snapshots went first');

  const busy = await availableVolume(cloud, cloud.alpha);
  await cloud.request('POST', `/volumes/${busy.id}/action`, { payload: { 'os-reset_status': { status: 'extending' } } });
  expectFault(await cloud.request('DELETE', `/volumes/${busy.id}`, { user: cloud.alpha }), 400, refused);
  expectFault(await cloud.request('DELETE', `/volumes/${busy.id}?force=true`, { user: cloud.alpha, version: '3.23' }), 403, "Policy doesn't allow volume:force_delete to be performed.");
  assert.equal((await cloud.request('DELETE', `/volumes/${busy.id}?force=true`, { version: '3.23' })).status, 202);
  await waitVolumeGone(cloud, busy.id);

  const attached = await availableVolume(cloud, cloud.alpha);
  const server = '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f';
  assert.equal((await cloud.request('POST', `/volumes/${attached.id}/action`, { user: cloud.alpha, payload: { 'os-attach': { instance_uuid: server, mountpoint: '/dev/vdb' } } })).status, 202);
  expectFault(await cloud.request('DELETE', `/volumes/${attached.id}`, { user: cloud.alpha }), 400, refused);
  expectFault(await cloud.request('DELETE', `/volumes/${attached.id}?force=true`, { version: '3.23' }), 400, /^Invalid volume: Volume {2}must not be migrating, attached/);

  // A volume the scheduler never placed (its create failed before a backend took it) goes without an agent.
  const row = await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 1 } } });
  await cloud.waitVolume(row.body.volume.id, (x) => x.status === 'available');
  await cloud.volume.db.updateTable('volume').set({ host: null, status: 'error' }).where('id', '=', row.body.volume.id).execute();
  assert.equal((await cloud.request('DELETE', `/volumes/${row.body.volume.id}`, { user: cloud.alpha })).status, 202);
  assert.equal((await cloud.request('GET', `/volumes/${row.body.volume.id}`)).status, 404, 'gone at once');
});

test('create from a snapshot and clone: sizes, zone and type follow the source', async () => {
  const source = await availableVolume(cloud, cloud.alpha, { size: 2 });
  const snap = await availableSnapshot(cloud, cloud.alpha, source.id);
  expectFault(
    await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 1, snapshot_id: snap.id } } }),
    400,
    "Invalid input received: Volume size '1'GB cannot be smaller than the snapshot size 2GB. They must be >= original snapshot size.",
  );
  const fromSnap = await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { snapshot_id: snap.id } } });
  assert.equal(fromSnap.status, 202, JSON.stringify(fromSnap.body));
  assert.equal(fromSnap.body.volume.size, 2, 'the snapshot size by default');
  assert.equal(fromSnap.body.volume.snapshot_id, snap.id);
  const made = await cloud.waitVolume(fromSnap.body.volume.id, (x) => x.status !== 'creating');
  assert.equal(made.status, 'available');
  assert.equal(String(made['os-vol-host-attr:host']).split('#')[0], String((await cloud.request('GET', `/volumes/${source.id}`)).body.volume['os-vol-host-attr:host']).split('#')[0], 'on the snapshot’s backend');

  expectFault(
    await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 1, source_volid: source.id } } }),
    400,
    "Invalid input received: Volume size '1'GB cannot be smaller than original volume size  2GB. They must be >= original volume size.",
  );
  const clone = await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 3, source_volid: source.id } } });
  assert.equal(clone.status, 202);
  assert.equal(clone.body.volume.source_volid, source.id);
  assert.equal((await cloud.waitVolume(clone.body.volume.id, (x) => x.status !== 'creating')).status, 'available');
  expectFault(
    await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { snapshot_id: snap.id, source_volid: source.id } } }),
    400,
    'Invalid input received: May specify only one of backup, imageRef, snapshot, source volume',
  );
  await cloud.request('POST', `/volumes/${source.id}/action`, { payload: { 'os-reset_status': { status: 'error' } } });
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { source_volid: source.id } } }), 400, "Invalid volume: Originating source volume status must be one of 'available, in-use' values");
  await cloud.request('POST', `/volumes/${source.id}/action`, { payload: { 'os-reset_status': { status: 'available' } } });
});

test('create from an image: active, big enough, bootable once made; else 400', async () => {
  const image = await cloud.image('POST', '/v2/images', { user: cloud.alpha, payload: { name: 'img', disk_format: 'raw', container_format: 'bare', min_disk: 2 } });
  assert.equal(image.status, 201, JSON.stringify(image.body));
  const id = image.body.id as string;
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 2, imageRef: id } } }), 400, `Invalid input received: Image ${id} is not active.`);
  const upload = await cloud.image('PUT', `/v2/images/${id}/file`, { user: cloud.alpha, payload: 'image-bytes', headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(upload.status, 204, JSON.stringify(upload.body));
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 1, imageRef: id } } }), 400, 'Invalid input received: Volume size 1GB cannot be smaller than the image minDisk size 2GB.');
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 2, imageRef: '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f' } } }), 400, 'Invalid image identifier or unable to access requested image.');
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.beta, payload: { volume: { size: 2, imageRef: id } } }), 400, 'Invalid image identifier or unable to access requested image.', 'badRequest');
  const res = await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 2, imageRef: id } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const byName = await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 2, imageRef: 'img' } } });
  assert.equal(byName.status, 202, 'an image name works too');
  const v = await cloud.waitVolume(res.body.volume.id, (x) => x.status !== 'creating' && x.status !== 'downloading');
  assert.equal(v.status, 'available');
  assert.equal(v.bootable, 'true');
  assert.equal(v.volume_image_metadata?.image_id, id);
  await cloud.image('POST', `/v2/images/${id}/actions/deactivate`);
  expectFault(await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 2, imageRef: id } } }), 400, `Invalid input received: Image ${id} is not active.`);
});

test('notifications: volume.create.start and volume.delete.start carry the volume', async () => {
  const events: { event_type: string; payload: Record<string, any> }[] = [];
  const listener = await cloud.bus.onNotification('volume.', (n) => void events.push({ event_type: n.event_type, payload: n.payload as Record<string, any> }));
  try {
    const v = await availableVolume(cloud, cloud.alpha, { name: 'noted' });
    await cloud.request('DELETE', `/volumes/${v.id}`, { user: cloud.alpha });
    await waitVolumeGone(cloud, v.id);
    for (let i = 0; i < 200 && !events.some((e) => e.event_type === 'volume.delete.start' && e.payload.volume_id === v.id); i++) await new Promise((r) => setTimeout(r, 10));
    const start = events.find((e) => e.event_type === 'volume.create.start' && e.payload.volume_id === v.id);
    assert.ok(start, JSON.stringify(events.map((e) => e.event_type)));
    assert.equal(start.payload.tenant_id, cloud.alpha.projectId);
    assert.equal(start.payload.user_id, cloud.alpha.userId);
    assert.equal(start.payload.display_name, 'noted');
    assert.equal(start.payload.size, 1);
    assert.equal(start.payload.status, 'creating');
    assert.equal(start.payload.availability_zone, 'nova');
    assert.ok(events.some((e) => e.event_type === 'volume.delete.start' && e.payload.volume_id === v.id));
  } finally {
    await listener.stop();
  }
});
