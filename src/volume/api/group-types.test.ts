import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FakeVolumeDriver } from '../drivers/fake.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';
import { expectFault } from './volume-fixtures.test-util.js';

let cloud: TestVolumeCloud;
before(async () => {
  cloud = await createVolumeTestCloud({ drivers: { 'fake-a': new FakeVolumeDriver({ capacityGb: 1000 }), 'fake-b': new FakeVolumeDriver({ capacityGb: 500 }) } });
});
after(async () => {
  await cloud.close();
});

const V = '3.11';

test('group types: create, list, show, update, delete; the view and its errors', async () => {
  const res = await cloud.request('POST', '/group_types', { version: V, payload: { group_type: { name: 'gt-a', description: 'd', group_specs: { consistent_group_snapshot_enabled: '<is> False' }, is_public: true } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const gt = res.body.group_type;
  assert.deepEqual(Object.keys(gt).sort(), ['description', 'group_specs', 'id', 'is_public', 'name']);
  assert.deepEqual(gt.group_specs, { consistent_group_snapshot_enabled: '<is> False' });
  expectFault(await cloud.request('POST', '/group_types', { version: V, payload: { group_type: { name: 'gt-a' } } }), 409, 'Group Type gt-a already exists.');
  expectFault(await cloud.request('POST', '/group_types', { version: V, payload: { group_type: {} } }), 400, /'name' is a required property/);
  expectFault(await cloud.request('POST', '/group_types', { user: cloud.alpha, version: V, payload: { group_type: { name: 'x' } } }), 403, "Policy doesn't allow group:group_types:create to be performed.");
  expectFault(await cloud.request('GET', '/group_types', { version: '3.10' }), 404, 'API version 3.10 is not supported on this method.');

  const priv = (await cloud.request('POST', '/group_types', { version: V, payload: { group_type: { name: 'gt-b', is_public: false } } })).body.group_type;
  const names = async (query: string, user = cloud.admin): Promise<string[]> => (await cloud.request('GET', `/group_types${query}`, { user, version: V })).body.group_types.map((t: { name: string }) => t.name);
  assert.deepEqual(await names('?is_public=None&sort=name:asc'), ['gt-a', 'gt-b']);
  assert.deepEqual(await names('?is_public=None&sort=name:desc'), ['gt-b', 'gt-a']);
  assert.deepEqual(await names('?is_public=false'), ['gt-b']);
  assert.deepEqual(await names('?is_public=true'), ['gt-a']);
  assert.deepEqual(await names('?is_public=None', cloud.alpha), ['gt-a'], 'members see public types only');
  const asMember = await cloud.request('GET', `/group_types/${gt.id}`, { user: cloud.alpha, version: V });
  assert.equal(asMember.body.group_type.group_specs, undefined, 'specs are for administrators');
  expectFault(await cloud.request('GET', `/group_types/${priv.id}`, { user: cloud.alpha, version: V }), 404, `Group type ${priv.id} could not be found.`);
  expectFault(await cloud.request('GET', '/group_types/default', { version: V }), 404, 'Default group type can not be found.');

  const upd = await cloud.request('PUT', `/group_types/${gt.id}`, { version: V, payload: { group_type: { name: 'gt-a2', description: 'new' } } });
  assert.equal(upd.status, 200);
  assert.equal(upd.body.group_type.name, 'gt-a2');
  assert.equal(upd.body.group_type.description, 'new');
  expectFault(await cloud.request('PUT', `/group_types/${gt.id}`, { version: V, payload: { group_type: {} } }), 400, 'Specify group type name, description or a combination thereof.');
  expectFault(await cloud.request('PUT', `/group_types/${gt.id}`, { version: V, payload: { group_type: { name: 'gt-b' } } }), 409, `Group Type ${gt.id} already exists.`);

  assert.equal((await cloud.request('DELETE', `/group_types/${gt.id}`, { version: V })).status, 202);
  expectFault(await cloud.request('GET', `/group_types/${gt.id}`, { version: V }), 404);
  expectFault(await cloud.request('DELETE', `/group_types/${gt.id}`, { version: V }), 404);
});

test('group specs: set, show, update one, list, delete', async () => {
  const gt = (await cloud.request('POST', '/group_types', { version: V, payload: { group_type: { name: 'gt-specs' } } })).body.group_type;
  const base = `/group_types/${gt.id}/group_specs`;
  const created = await cloud.request('POST', base, { version: V, payload: { group_specs: { key1: 'value1', key2: 'value2' } } });
  assert.equal(created.status, 202);
  assert.deepEqual(created.body, { group_specs: { key1: 'value1', key2: 'value2' } });
  assert.deepEqual((await cloud.request('POST', base, { version: V, payload: { group_specs: { key2: 'v2', key3: 'v3' } } })).body, { group_specs: { key2: 'v2', key3: 'v3' } });
  assert.deepEqual((await cloud.request('GET', `${base}/key2`, { version: V })).body, { key2: 'v2' });
  const one = await cloud.request('PUT', `${base}/key3`, { version: V, payload: { key3: 'v3b' } });
  assert.equal(one.status, 200);
  assert.deepEqual(one.body, { key3: 'v3b' });
  expectFault(await cloud.request('PUT', `${base}/key3`, { version: V, payload: { key4: 'x' } }), 400, 'Request body and URI mismatch');
  assert.deepEqual((await cloud.request('GET', base, { version: V })).body, { group_specs: { key1: 'value1', key2: 'v2', key3: 'v3b' } });
  expectFault(await cloud.request('POST', base, { version: V, payload: { group_specs: { 'bad key': 'x' } } }), 400);
  expectFault(await cloud.request('GET', base, { user: cloud.alpha, version: V }), 403, "Policy doesn't allow group:group_types_specs:get_all to be performed.");
  for (const key of ['key1', 'key2', 'key3']) {
    assert.equal((await cloud.request('DELETE', `${base}/key1`.replace('key1', key), { version: V })).status, 202);
    expectFault(await cloud.request('GET', `${base}/${key}`, { version: V }), 404, `Group Type ${gt.id} has no extra spec with key ${key}.`);
  }
  expectFault(await cloud.request('DELETE', `${base}/key1`, { version: V }), 404, `Group Type ${gt.id} has no specs with key key1.`);
});
