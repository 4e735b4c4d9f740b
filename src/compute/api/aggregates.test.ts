import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertComputeHost, insertService } from './hosts.test-util.js';
import { insertServer } from './server-fixtures.test-util.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
  await insertComputeHost(t.compute.db, 'agg-host-1');
  await insertComputeHost(t.compute.db, 'agg-host-2');
  await insertService(t.compute.db, 'agg-control', 'nova-scheduler');
});
after(async () => {
  await t.close();
});

async function create(aggregate: Record<string, unknown>, version?: string): Promise<Record<string, any>> {
  const res = await t.request('POST', '/os-aggregates', { user: t.admin, payload: { aggregate }, ...(version ? { version } : {}) });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.aggregate;
}

const action = (id: number, payload: unknown, version?: string) => t.request('POST', `/os-aggregates/${id}/action`, { user: t.admin, payload, ...(version ? { version } : {}) });

test('create: view without hosts and metadata; uuid from 2.41', async () => {
  const a = await create({ name: 'agg-plain' });
  assert.deepEqual(Object.keys(a).sort(), ['availability_zone', 'created_at', 'deleted', 'deleted_at', 'id', 'name', 'updated_at'], 'v2.1 create view');
  assert.deepEqual([a.availability_zone, a.deleted, a.deleted_at, a.updated_at], [null, false, null, null], 'fresh aggregate');
  assert.match(a.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/, 'created_at as Nova writes it');
  const b = await create({ name: 'agg-zoned', availability_zone: 'zone-a' }, '2.41');
  assert.match(b.uuid, /^[0-9a-f-]{36}$/, 'uuid from 2.41');
  assert.equal(b.availability_zone, 'zone-a', 'zone');
  const shown = await t.request('GET', `/os-aggregates/${b.id}`, { user: t.admin });
  assert.deepEqual([shown.body.aggregate.hosts, shown.body.aggregate.metadata], [[], { availability_zone: 'zone-a' }], 'the zone is metadata');
});

test('create: conflicts and validation; admin only', async () => {
  expectComputeError(await t.request('POST', '/os-aggregates', { user: t.admin, payload: { aggregate: { name: 'agg-plain' } } }), 409, 'Aggregate agg-plain already exists.');
  expectComputeError(await t.request('POST', '/os-aggregates', { user: t.admin, payload: { aggregate: { name: '' } } }), 400);
  expectComputeError(await t.request('POST', '/os-aggregates', { user: t.admin, payload: { aggregate: { name: 'x'.repeat(256) } } }), 400);
  expectComputeError(await t.request('POST', '/os-aggregates', { user: t.admin, payload: { aggregate: { name: 'z', availability_zone: 'a:b' } } }), 400, /printable characters except :/);
  expectComputeError(await t.request('POST', '/os-aggregates', { user: t.alpha, payload: { aggregate: { name: 'mine' } } }), 403, /os-aggregates:create/);
  expectComputeError(await t.request('GET', '/os-aggregates', { user: t.alpha }), 403);
});

test('list, show, update', async () => {
  const list = await t.request('GET', '/os-aggregates', { user: t.admin, version: '2.41' });
  assert.ok(list.body.aggregates.some((a: any) => a.name === 'agg-plain' && Array.isArray(a.hosts) && a.uuid), 'listed with hosts and uuid');
  const a = await create({ name: 'agg-update' });
  const upd = await t.request('PUT', `/os-aggregates/${a.id}`, { user: t.admin, payload: { aggregate: { name: '  agg-renamed ', availability_zone: 'zone-b' } } });
  assert.equal(upd.status, 200, JSON.stringify(upd.body));
  assert.deepEqual([upd.body.aggregate.name, upd.body.aggregate.availability_zone], ['agg-renamed', 'zone-b'], 'renamed (trimmed) and zoned');
  assert.ok(upd.body.aggregate.updated_at, 'updated_at set');
  expectComputeError(await t.request('PUT', `/os-aggregates/${a.id}`, { user: t.admin, payload: { aggregate: { name: 'agg-plain' } } }), 409, 'Aggregate agg-plain already exists.');
  expectComputeError(await t.request('PUT', `/os-aggregates/${a.id}`, { user: t.admin, payload: { aggregate: {} } }), 400, /not valid under any of the given schemas/);
  expectComputeError(await t.request('PUT', `/os-aggregates/${a.id}`, { user: t.admin, payload: { aggregate: { availability_zone: null } } }), 400, /does not support empty named availability zone/);
  expectComputeError(await t.request('GET', '/os-aggregates/-1', { user: t.admin }), 404, 'Aggregate -1 could not be found.');
  expectComputeError(await t.request('GET', '/os-aggregates/abc', { user: t.admin }), 400, 'Invalid input received: id must be an integer');
});

test('hosts: add and remove compute hosts', async () => {
  const a = await create({ name: 'agg-hosts' });
  const add = await action(a.id, { add_host: { host: 'agg-host-1' } });
  assert.equal(add.status, 200, JSON.stringify(add.body));
  assert.deepEqual(add.body.aggregate.hosts, ['agg-host-1'], 'added');
  expectComputeError(await action(a.id, { add_host: { host: 'agg-host-1' } }), 409, `Aggregate ${a.id} already has host agg-host-1.`);
  expectComputeError(await action(a.id, { add_host: { host: 'nonexist_host' } }), 404, 'Compute host nonexist_host could not be found.');
  expectComputeError(await action(a.id, { add_host: { host: 'agg-control' } }), 404, 'Compute host agg-control could not be found.');
  expectComputeError(await action(9999, { add_host: { host: 'agg-host-2' } }), 404, 'Aggregate 9999 could not be found.');
  expectComputeError(await t.request('POST', `/os-aggregates/${a.id}/action`, { user: t.alpha, payload: { remove_host: { host: 'agg-host-1' } } }), 403);
  expectComputeError(await t.request('DELETE', `/os-aggregates/${a.id}`, { user: t.admin }), 400, `Cannot remove host from aggregate ${a.id}. Reason: Host aggregate is not empty.`);
  const removed = await action(a.id, { remove_host: { host: 'agg-host-1' } });
  assert.deepEqual(removed.body.aggregate.hosts, [], 'removed');
  expectComputeError(await action(a.id, { remove_host: { host: 'nonexist_host' } }), 404, `Cannot remove host nonexist_host in aggregate ${a.id}`);
  expectComputeError(await action(a.id, { add_host: { host: 'bad host!' } }), 400);
  expectComputeError(await action(a.id, { frobnicate: {} }), 400, 'There is no such action: frobnicate');
  const del = await t.request('DELETE', `/os-aggregates/${a.id}`, { user: t.admin });
  assert.equal(del.status, 200, 'deleted');
  expectComputeError(await t.request('DELETE', `/os-aggregates/${a.id}`, { user: t.admin }), 404);
});

test('a host cannot be in two zones', async () => {
  const east = await create({ name: 'agg-east', availability_zone: 'east' });
  const west = await create({ name: 'agg-west', availability_zone: 'west' });
  const plain = await create({ name: 'agg-nozone' });
  assert.equal((await action(east.id, { add_host: { host: 'agg-host-2' } })).status, 200, 'in east');
  expectComputeError(await action(west.id, { add_host: { host: 'agg-host-2' } }), 409, `Cannot add host to aggregate ${west.id}. Reason: One or more hosts already in availability zone(s) ['east'].`);
  assert.equal((await action(plain.id, { add_host: { host: 'agg-host-2' } })).status, 200, 'an aggregate without a zone is fine');
  expectComputeError(
    await action(plain.id, { set_metadata: { metadata: { availability_zone: 'west' } } }),
    400,
    `Cannot update metadata of aggregate ${plain.id}. Reason: One or more hosts already in availability zone(s) ['east'].`,
  );
  const same = await action(plain.id, { set_metadata: { metadata: { availability_zone: 'east' } } });
  assert.equal(same.status, 200, 'the same zone is fine');
  expectComputeError(await t.request('PUT', `/os-aggregates/${east.id}`, { user: t.admin, payload: { aggregate: { availability_zone: 'north' } } }), 400, /already in availability zone\(s\) \['east'\]/);
  assert.equal((await action(plain.id, { remove_host: { host: 'agg-host-2' } })).status, 200, 'out of the other aggregate');
  await insertServer(t.compute.db, t.alpha, { host: 'agg-host-2', node: 'agg-host-2' });
  expectComputeError(await t.request('PUT', `/os-aggregates/${east.id}`, { user: t.admin, payload: { aggregate: { availability_zone: 'north' } } }), 400, /One or more hosts contain instances in this zone/);
});

test('set_metadata: add, change, null removes', async () => {
  const a = await create({ name: 'agg-meta' });
  const set = await action(a.id, { set_metadata: { metadata: { ssd: 'true', speed: 'fast' } } });
  assert.deepEqual(set.body.aggregate.metadata, { speed: 'fast', ssd: 'true' }, 'set');
  const changed = await action(a.id, { set_metadata: { metadata: { ssd: null, speed: 'slow' } } });
  assert.deepEqual(changed.body.aggregate.metadata, { speed: 'slow' }, 'null removes a key; others change');
  assert.ok(changed.body.aggregate.updated_at, 'updated_at');
  expectComputeError(await action(a.id, { set_metadata: { metadata: { 'bad/key': 'x' } } }), 400);
  expectComputeError(await action(a.id, { set_metadata: { metadata: { k: 5 } } }), 400);
  expectComputeError(await action(a.id, { set_metadata: { metadata: { availability_zone: null } } }), 400, /does not support empty named availability zone/);
  expectComputeError(await action(a.id, { set_metadata: {} }), 400, /'metadata' is a required property/);
});
