import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';

let cloud: TestVolumeCloud;
before(async () => {
  cloud = await createVolumeTestCloud();
});
after(async () => {
  await cloud.close();
});

async function createQos(body: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await cloud.request('POST', '/qos-specs', { payload: { qos_specs: body } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

async function createType(name: string): Promise<string> {
  const res = await cloud.request('POST', '/types', { payload: { volume_type: { name } } });
  assert.equal(res.status, 200);
  return res.body.volume_type.id;
}

test('create, show, list: consumer and specs, links, default consumer back-end', async () => {
  const created = await createQos({ name: 'fast', consumer: 'front-end', read_iops_sec: '2000' });
  const id = created.qos_specs.id;
  assert.deepEqual(created.qos_specs, { id, name: 'fast', consumer: 'front-end', specs: { read_iops_sec: '2000' } });
  assert.deepEqual(created.links.map((l: any) => l.rel), ['self', 'bookmark']);
  assert.ok(created.links[0].href.endsWith(`/v3/${cloud.admin.projectId}/qos-specs/${id}`));
  const plain = await createQos({ name: 'plain' });
  assert.equal(plain.qos_specs.consumer, 'back-end');
  const shown = await cloud.request('GET', `/qos-specs/${id}`);
  assert.deepEqual(shown.body.qos_specs, created.qos_specs);
  const list = await cloud.request('GET', '/qos-specs?sort=name:asc');
  assert.deepEqual(list.body.qos_specs.map((q: any) => q.name), ['fast', 'plain']);
  const filtered = await cloud.request('GET', '/qos-specs?consumer=front-end');
  assert.deepEqual(filtered.body.qos_specs.map((q: any) => q.name), ['fast']);
  const paged = await cloud.request('GET', '/qos-specs?sort=name:asc&limit=1');
  assert.deepEqual(paged.body.qos_specs.map((q: any) => q.name), ['fast']);
  assert.equal(paged.body.qos_specs_links[0].rel, 'next');
});

test('create refuses duplicates (409), bad names, consumers and values (400), members (403)', async () => {
  await createQos({ name: 'dup' });
  const dup = await cloud.request('POST', '/qos-specs', { payload: { qos_specs: { name: 'dup' } } });
  assert.equal(dup.status, 409);
  assert.equal(dup.body.conflictingRequest.message, 'QoS Specs dup already exists.');
  for (const spec of [{}, { name: '  ' }, { name: 5 }, { name: 'x', consumer: 'sideways' }, { name: 'x', iops: 5 }, { name: 'x', iops: 'y'.repeat(256) }]) {
    const res = await cloud.request('POST', '/qos-specs', { payload: { qos_specs: spec } });
    assert.equal(res.status, 400, JSON.stringify(spec));
  }
  assert.equal((await cloud.request('POST', '/qos-specs', { user: cloud.alpha, payload: { qos_specs: { name: 'mine' } } })).status, 403);
  assert.equal((await cloud.request('GET', '/qos-specs', { user: cloud.alpha })).status, 403);
  const list = await cloud.request('GET', '/qos-specs');
  assert.equal(list.body.qos_specs.some((q: any) => q.name === 'x' || q.name === 'mine'), false);
});

test('set keys (and the consumer), delete keys; unknown keys change nothing', async () => {
  const { qos_specs: q } = await createQos({ name: 'keys', a: '1' });
  const set = await cloud.request('PUT', `/qos-specs/${q.id}`, { payload: { qos_specs: { iops_bytes: '500', consumer: 'both' } } });
  assert.equal(set.status, 200);
  assert.deepEqual(set.body, { qos_specs: { iops_bytes: '500', consumer: 'both' } });
  const shown = await cloud.request('GET', `/qos-specs/${q.id}`);
  assert.deepEqual(shown.body.qos_specs.specs, { a: '1', iops_bytes: '500' });
  assert.equal(shown.body.qos_specs.consumer, 'both');
  const missing = await cloud.request('PUT', `/qos-specs/${q.id}/delete_keys`, { payload: { keys: ['a', 'nope'] } });
  assert.equal(missing.status, 404);
  assert.equal(missing.body.itemNotFound.message, `QoS spec ${q.id} has no spec with key nope.`);
  assert.deepEqual((await cloud.request('GET', `/qos-specs/${q.id}`)).body.qos_specs.specs, { a: '1', iops_bytes: '500' });
  const del = await cloud.request('PUT', `/qos-specs/${q.id}/delete_keys`, { payload: { keys: ['a'] } });
  assert.equal(del.status, 202);
  assert.deepEqual((await cloud.request('GET', `/qos-specs/${q.id}`)).body.qos_specs.specs, { iops_bytes: '500' });
  assert.equal((await cloud.request('PUT', `/qos-specs/${q.id}/delete_keys`, { payload: { keys: 'a' } })).status, 400);
  assert.equal((await cloud.request('PUT', `/qos-specs/${q.id}`, { payload: { qos_specs: { 'bad key!': '1' } } })).status, 400);
  assert.equal((await cloud.request('PUT', '/qos-specs/00000000-0000-0000-0000-000000000000', { payload: { qos_specs: { a: '1' } } })).status, 404);
});

test('associate, associations, disassociate, disassociate_all; a type holds one QoS spec; the type shows its qos_specs_id', async () => {
  const { qos_specs: q } = await createQos({ name: 'assoc' });
  const { qos_specs: other } = await createQos({ name: 'other' });
  const types = [await createType('qa'), await createType('qb'), await createType('qc')];
  for (const t of types) assert.equal((await cloud.request('GET', `/qos-specs/${q.id}/associate?vol_type_id=${t}`)).status, 202);
  assert.equal((await cloud.request('GET', `/qos-specs/${q.id}/associate?vol_type_id=${types[0]}`)).status, 202, 'again: no change');
  const taken = await cloud.request('GET', `/qos-specs/${other.id}/associate?vol_type_id=${types[0]}`);
  assert.equal(taken.status, 400);
  assert.equal(taken.body.badRequest.message, `Invalid volume type: Type ${types[0]} is already associated with another qos specs: ${q.id}`);
  const assoc = await cloud.request('GET', `/qos-specs/${q.id}/associations`);
  assert.deepEqual(assoc.body.qos_associations.map((a: any) => a.id).sort(), [...types].sort());
  assert.equal(assoc.body.qos_associations[0].association_type, 'volume_type');
  assert.equal((await cloud.request('GET', `/types/${types[0]}`)).body.volume_type.qos_specs_id, q.id);
  assert.equal((await cloud.request('GET', `/qos-specs/${q.id}/associate`)).body.badRequest.message, 'Volume Type id must not be None.');
  assert.equal((await cloud.request('GET', `/qos-specs/${q.id}/associate?vol_type_id=00000000-0000-0000-0000-000000000000`)).status, 404);

  assert.equal((await cloud.request('GET', `/qos-specs/${q.id}/disassociate?vol_type_id=${types[0]}`)).status, 202);
  assert.equal((await cloud.request('GET', `/types/${types[0]}`)).body.volume_type.qos_specs_id, null);
  const inUse = await cloud.request('DELETE', `/qos-specs/${q.id}`);
  assert.equal(inUse.status, 400);
  assert.equal(inUse.body.badRequest.message, 'Qos specs still in use.');
  assert.equal((await cloud.request('GET', `/qos-specs/${q.id}/disassociate_all`)).status, 202);
  assert.deepEqual((await cloud.request('GET', `/qos-specs/${q.id}/associations`)).body.qos_associations, []);
  assert.equal((await cloud.request('DELETE', `/qos-specs/${q.id}`)).status, 202);
  assert.equal((await cloud.request('GET', `/qos-specs/${q.id}`)).status, 404);
  assert.equal((await cloud.request('GET', `/qos-specs/${q.id}`)).body.itemNotFound.message, `No such QoS spec ${q.id}.`);
});

test('delete with force disassociates first', async () => {
  const { qos_specs: q } = await createQos({ name: 'forced' });
  const t = await createType('forced-type');
  await cloud.request('GET', `/qos-specs/${q.id}/associate?vol_type_id=${t}`);
  assert.equal((await cloud.request('DELETE', `/qos-specs/${q.id}?force=perhaps`)).status, 400);
  assert.equal((await cloud.request('DELETE', `/qos-specs/${q.id}?force=True`)).status, 202);
  assert.equal((await cloud.request('GET', `/types/${t}`)).body.volume_type.qos_specs_id, null);
});
