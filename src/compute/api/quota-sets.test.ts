import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertServer } from './server-fixtures.test-util.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
});
after(async () => {
  await t.close();
});

const V21_KEYS = [
  'cores',
  'fixed_ips',
  'floating_ips',
  'injected_file_content_bytes',
  'injected_file_path_bytes',
  'injected_files',
  'instances',
  'key_pairs',
  'metadata_items',
  'ram',
  'security_group_rules',
  'security_groups',
  'server_group_members',
  'server_groups',
];
const V257_KEYS = ['cores', 'instances', 'key_pairs', 'metadata_items', 'ram', 'server_group_members', 'server_groups'];

test('show: the configured defaults, with id; keys per microversion', async () => {
  const res = await t.request('GET', `/os-quota-sets/${t.alpha.projectId}`, { user: t.alpha });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(Object.keys(res.body.quota_set).sort(), ['id', ...V21_KEYS].sort(), 'v2.1 keys');
  assert.equal(res.body.quota_set.id, t.alpha.projectId, 'id');
  assert.deepEqual([res.body.quota_set.instances, res.body.quota_set.cores, res.body.quota_set.ram, res.body.quota_set.floating_ips], [10, 20, 51200, -1], 'defaults');
  const v236 = await t.request('GET', `/os-quota-sets/${t.alpha.projectId}`, { user: t.alpha, version: '2.36' });
  assert.equal('floating_ips' in v236.body.quota_set, false, 'no network quotas from 2.36');
  assert.equal('injected_files' in v236.body.quota_set, true, 'injected files until 2.57');
  const v257 = await t.request('GET', `/os-quota-sets/${t.alpha.projectId}`, { user: t.alpha, version: '2.57' });
  assert.deepEqual(Object.keys(v257.body.quota_set).sort(), ['id', ...V257_KEYS].sort(), '2.57 keys');
});

test('show: readers see their own project only', async () => {
  assert.equal((await t.request('GET', `/os-quota-sets/${t.alpha.projectId}`, { user: t.alphaReader })).status, 200, 'reader of alpha');
  expectComputeError(await t.request('GET', `/os-quota-sets/${t.beta.projectId}`, { user: t.alpha }), 403, /os-quota-sets:show/);
  expectComputeError(await t.request('GET', `/os-quota-sets/${t.beta.projectId}/detail`, { user: t.alpha }), 403);
  expectComputeError(await t.request('GET', '/os-quota-sets/no-such-project', { user: t.admin }), 400, 'Project ID no-such-project is not a valid project.');
});

test('detail: limit, in_use and reserved; usage of servers counted', async () => {
  await insertServer(t.compute.db, t.beta, { vcpus: 2, memory_mb: 1024 });
  await insertServer(t.compute.db, t.beta, { vcpus: 1, memory_mb: 512, deleted: 1 });
  const res = await t.request('GET', `/os-quota-sets/${t.beta.projectId}/detail`, { user: t.beta, version: '2.57' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.quota_set.cores, { limit: 20, in_use: 2, reserved: 0 }, 'cores');
  assert.deepEqual(res.body.quota_set.instances, { limit: 10, in_use: 1, reserved: 0 }, 'deleted servers are not counted');
  assert.deepEqual(res.body.quota_set.key_pairs, { limit: 100, in_use: 0, reserved: 0 }, 'key pairs show 0 in use');
});

test('update: admin only, refused below usage unless forced', async () => {
  const url = `/os-quota-sets/${t.beta.projectId}`;
  expectComputeError(await t.request('PUT', url, { user: t.beta, payload: { quota_set: { ram: 1024 } } }), 403, /os-quota-sets:update/);
  const res = await t.request('PUT', url, { user: t.admin, payload: { quota_set: { ram: '5120', instances: -1 } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal('id' in res.body.quota_set, false, 'no id in the update answer');
  assert.deepEqual([res.body.quota_set.ram, res.body.quota_set.instances], [5120, -1], 'new limits (a string of digits is taken)');
  expectComputeError(await t.request('PUT', url, { user: t.admin, payload: { quota_set: { cores: 1 } } }), 400, 'Quota limit 1 for cores must be greater than or equal to already used and reserved 2.');
  const forced = await t.request('PUT', url, { user: t.admin, payload: { quota_set: { cores: 1, force: true } } });
  assert.equal(forced.body.quota_set.cores, 1, 'forced below usage');
  for (const value of [-2, 'abc', 1.5, null, 2 ** 31]) {
    expectComputeError(await t.request('PUT', url, { user: t.admin, payload: { quota_set: { cores: value } } }), 400, /Invalid input for field\/attribute cores/);
  }
  expectComputeError(await t.request('PUT', url, { user: t.admin, payload: { quota_set: { widgets: 1 } } }), 400, /'widgets' was unexpected/);
  expectComputeError(await t.request('PUT', url, { user: t.admin, payload: { quota_set: { floating_ips: 1 } }, version: '2.36' }), 400, /'floating_ips' was unexpected/);
  const legacy = await t.request('PUT', url, { user: t.admin, payload: { quota_set: { floating_ips: 7 } }, version: '2.35' });
  assert.equal(legacy.body.quota_set.floating_ips, 7, 'network quotas can be set before 2.36');
});

test('per-user quotas with user_id, within what the project has left', async () => {
  const url = `/os-quota-sets/${t.alpha.projectId}?user_id=${t.alpha.userId}`;
  const res = await t.request('PUT', url, { user: t.admin, payload: { quota_set: { ram: 2048 } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal((await t.request('GET', url, { user: t.admin })).body.quota_set.ram, 2048, 'the user\'s limit');
  assert.equal((await t.request('GET', `/os-quota-sets/${t.alpha.projectId}`, { user: t.admin })).body.quota_set.ram, 51200, 'the project\'s is unchanged');
  expectComputeError(await t.request('PUT', url, { user: t.admin, payload: { quota_set: { ram: 60000 } } }), 400, 'Quota limit 60000 for ram must be less than or equal to 51200.');
  expectComputeError(await t.request('PUT', `/os-quota-sets/${t.alpha.projectId}`, { user: t.admin, payload: { quota_set: { ram: 1000 } } }), 400, /must be greater than or equal to already used and reserved 2048/);
  const del = await t.request('DELETE', url, { user: t.admin });
  assert.equal(del.status, 202, 'delete answers 202');
  assert.equal((await t.request('GET', url, { user: t.admin })).body.quota_set.ram, 51200, 'back to the project\'s');
});

test('delete: back to the defaults', async () => {
  const url = `/os-quota-sets/${t.beta.projectId}`;
  await t.request('PUT', url, { user: t.admin, payload: { quota_set: { metadata_items: 5 } } });
  expectComputeError(await t.request('DELETE', url, { user: t.beta }), 403);
  assert.equal((await t.request('DELETE', url, { user: t.admin })).status, 202, '202');
  const after = await t.request('GET', url, { user: t.admin });
  assert.deepEqual([after.body.quota_set.metadata_items, after.body.quota_set.ram], [128, 51200], 'defaults again');
});

test('defaults, and the default quota class', async () => {
  const defaults = await t.request('GET', `/os-quota-sets/${t.beta.projectId}/defaults`, { user: t.beta });
  assert.equal(defaults.status, 200, JSON.stringify(defaults.body));
  assert.equal(defaults.body.quota_set.id, t.beta.projectId, 'id');
  const cls = await t.request('GET', '/os-quota-class-sets/default', { user: t.admin });
  assert.equal(cls.status, 200, JSON.stringify(cls.body));
  assert.equal(cls.body.quota_class_set.id, 'default', 'class id');
  assert.equal('server_groups' in cls.body.quota_class_set, false, 'no server group quotas before 2.50');
  const v250 = await t.request('GET', '/os-quota-class-sets/default', { user: t.admin, version: '2.50' });
  assert.equal(v250.body.quota_class_set.server_groups, 10, 'server groups from 2.50');
  assert.equal('fixed_ips' in v250.body.quota_class_set, false, 'no network quotas from 2.50');
  expectComputeError(await t.request('GET', '/os-quota-class-sets/default', { user: t.alpha }), 403);
  const upd = await t.request('PUT', '/os-quota-class-sets/default', { user: t.admin, payload: { quota_class_set: { instances: 25, cores: '50' } }, version: '2.57' });
  assert.equal(upd.status, 200, JSON.stringify(upd.body));
  assert.deepEqual([upd.body.quota_class_set.instances, upd.body.quota_class_set.cores], [25, 50], 'class updated');
  assert.equal('id' in upd.body.quota_class_set, false, 'no id in the update answer');
  const now = await t.request('GET', `/os-quota-sets/${t.beta.projectId}/defaults`, { user: t.beta });
  assert.equal(now.body.quota_set.instances, 25, 'new defaults apply to projects');
  expectComputeError(await t.request('PUT', '/os-quota-class-sets/default', { user: t.admin, payload: { quota_class_set: { injected_files: 1 } }, version: '2.57' }), 400, /'injected_files' was unexpected/);
  await t.request('PUT', '/os-quota-class-sets/default', { user: t.admin, payload: { quota_class_set: { instances: 10, cores: 20 } } });
});
