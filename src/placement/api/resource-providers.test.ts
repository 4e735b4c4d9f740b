import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createTestPlacement, expectPlacementError, type TestPlacement } from '../testing.js';

// Facts from placement's api-ref (resource_providers.inc, resource_provider.inc,
// root.inc, errors.inc) and its handlers/schemas at Zed.

let t: TestPlacement;

before(async () => {
  t = await createTestPlacement();
});

after(async () => {
  await t.close();
});

const latest = '1.39';

async function create(name: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await t.request('POST', '/resource_providers', { user: t.admin, version: latest, payload: { name, ...extra } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

test('GET / is the version document, without a token, and echoes the microversion', async () => {
  const res = await t.request('GET', '/');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.versions, [{ id: 'v1.0', max_version: '1.39', min_version: '1.0', status: 'CURRENT', links: [{ rel: 'self', href: '' }] }], 'one CURRENT version 1.0 to 1.39');
  assert.equal(res.headers['openstack-api-version'], 'placement 1.0', 'no header means 1.0');
  assert.match(String(res.headers.vary), /OpenStack-API-Version/, 'Vary names the header');
  const latestRes = await t.request('GET', '/', { version: 'latest' });
  assert.equal(latestRes.headers['openstack-api-version'], 'placement 1.39', 'latest is 1.39');
  assert.ok(latestRes.headers['last-modified'], 'last-modified from 1.15');
  assert.equal(latestRes.headers['cache-control'], 'no-cache', 'cache-control from 1.15');
});

test('a microversion out of range is 406 with the supported range', async () => {
  const res = await t.request('GET', '/resource_providers', { user: t.admin, version: '1.40' });
  assert.equal(res.status, 406, JSON.stringify(res.body));
  assert.equal(res.body.errors[0].max_version, '1.39', 'max_version in the error');
  assert.equal(res.body.errors[0].min_version, '1.0', 'min_version in the error');
});

test('no token is 401; a project member is 403 with placement error body', async () => {
  const anon = await t.request('GET', '/resource_providers', { version: latest });
  assert.equal(anon.status, 401, 'no token');
  assert.ok(String(anon.headers['www-authenticate']).startsWith('Keystone uri='), 'WWW-Authenticate names identity');
  const member = await t.request('GET', '/resource_providers', { user: t.alpha, version: latest });
  expectPlacementError(member, 403, 'placement.undefined_code', 'Policy does not allow placement:resource_providers:list to be performed.');
  const reader = await t.request('POST', '/resource_providers', { user: t.alphaReader, version: latest, payload: { name: 'x' } });
  expectPlacementError(reader, 403);
});

test('POST creates a provider: 201 without body before 1.20, 200 with the provider from 1.20', async () => {
  const old = await t.request('POST', '/resource_providers', { user: t.admin, version: '1.19', payload: { name: 'rp-old' } });
  assert.equal(old.status, 201, JSON.stringify(old.body));
  assert.match(String(old.headers.location), /^\/resource_providers\/[0-9a-f-]{36}$/, 'location');
  assert.equal(old.raw.length, 0, 'no body');

  const uuid = randomUUID();
  const rp = await create('rp-new', { uuid });
  assert.equal(rp.uuid, uuid, 'given uuid kept');
  assert.equal(rp.generation, 0, 'generation starts at 0');
  assert.equal(rp.parent_provider_uuid, null, 'no parent');
  assert.equal(rp.root_provider_uuid, uuid, 'its own root');
  assert.deepEqual(
    rp.links.map((l: { rel: string }) => l.rel),
    ['self', 'inventories', 'usages', 'aggregates', 'traits', 'allocations'],
    'links at 1.39',
  );

  const dup = await t.request('POST', '/resource_providers', { user: t.admin, version: latest, payload: { name: 'rp-new' } });
  expectPlacementError(dup, 409, 'placement.duplicate_name', 'name: rp-new');
  const dupUuid = await t.request('POST', '/resource_providers', { user: t.admin, version: latest, payload: { name: 'other', uuid } });
  expectPlacementError(dupUuid, 409, 'placement.duplicate_name', `uuid: ${uuid}`);
});

test('parent_provider_uuid and root_provider_uuid only from 1.14; in_tree is 400 before 1.14', async () => {
  const root = await create('tree-root');
  const child = await create('tree-child', { parent_provider_uuid: root.uuid });
  assert.equal(child.parent_provider_uuid, root.uuid, 'parent');
  assert.equal(child.root_provider_uuid, root.uuid, 'root');

  const at13 = await t.request('GET', `/resource_providers/${child.uuid}`, { user: t.admin, version: '1.13' });
  assert.equal(at13.status, 200);
  assert.ok(!('parent_provider_uuid' in at13.body), 'no parent before 1.14');
  assert.ok(!('root_provider_uuid' in at13.body), 'no root before 1.14');
  const parentBefore = await t.request('POST', '/resource_providers', { user: t.admin, version: '1.13', payload: { name: 'x13', parent_provider_uuid: root.uuid } });
  expectPlacementError(parentBefore, 400, undefined, 'JSON does not validate');

  const inTreeOld = await t.request('GET', `/resource_providers?in_tree=${root.uuid}`, { user: t.admin, version: '1.13' });
  expectPlacementError(inTreeOld, 400, undefined, "'in_tree' was unexpected");
  const inTree = await t.request('GET', `/resource_providers?in_tree=${child.uuid}`, { user: t.admin, version: latest });
  assert.equal(inTree.status, 200);
  assert.deepEqual(inTree.body.resource_providers.map((p: { name: string }) => p.name).sort(), ['tree-child', 'tree-root'], 'the whole tree');

  const delParent = await t.request('DELETE', `/resource_providers/${root.uuid}`, { user: t.admin, version: latest });
  expectPlacementError(delParent, 409, 'placement.resource_provider.cannot_delete_parent');
  const missingParent = await t.request('POST', '/resource_providers', { user: t.admin, version: latest, payload: { name: 'orphan', parent_provider_uuid: randomUUID() } });
  expectPlacementError(missingParent, 400, undefined, 'parent provider UUID does not exist.');
});

test('PUT renames and reparents only from 1.37; loops are refused', async () => {
  const a = await create('re-a');
  const b = await create('re-b');
  const c = await create('re-c', { parent_provider_uuid: a.uuid });
  const rename = await t.request('PUT', `/resource_providers/${a.uuid}`, { user: t.admin, version: latest, payload: { name: 're-a2' } });
  assert.equal(rename.status, 200, JSON.stringify(rename.body));
  assert.equal(rename.body.name, 're-a2', 'renamed');

  const reparentOld = await t.request('PUT', `/resource_providers/${c.uuid}`, { user: t.admin, version: '1.36', payload: { name: 're-c', parent_provider_uuid: b.uuid } });
  expectPlacementError(reparentOld, 400, undefined, 're-parenting a provider is not currently allowed.');
  const unparentOld = await t.request('PUT', `/resource_providers/${c.uuid}`, { user: t.admin, version: '1.36', payload: { name: 're-c', parent_provider_uuid: null } });
  expectPlacementError(unparentOld, 400, undefined, 'un-parenting a provider is not currently allowed.');
  const reparent = await t.request('PUT', `/resource_providers/${c.uuid}`, { user: t.admin, version: '1.37', payload: { name: 're-c', parent_provider_uuid: b.uuid } });
  assert.equal(reparent.status, 200, JSON.stringify(reparent.body));
  assert.equal(reparent.body.root_provider_uuid, b.uuid, 'moved to the tree of b');
  const loop = await t.request('PUT', `/resource_providers/${b.uuid}`, { user: t.admin, version: '1.37', payload: { name: 're-b', parent_provider_uuid: c.uuid } });
  expectPlacementError(loop, 400, undefined, 'creating loop in the provider tree is not allowed.');
  const firstParent = await t.request('PUT', `/resource_providers/${a.uuid}`, { user: t.admin, version: '1.14', payload: { name: 're-a2', parent_provider_uuid: b.uuid } });
  assert.equal(firstParent.status, 200, 'setting a first parent is allowed from 1.14');
  assert.equal(firstParent.body.root_provider_uuid, b.uuid, 'a now under b');
});

test('unknown ids are 404, malformed JSON 400, wrong media type 415, unknown methods 405', async () => {
  const missing = await t.request('GET', `/resource_providers/${randomUUID()}`, { user: t.admin, version: latest });
  expectPlacementError(missing, 404, 'placement.undefined_code', 'No resource provider with uuid');
  const del = await t.request('DELETE', `/resource_providers/${randomUUID()}`, { user: t.admin, version: latest });
  expectPlacementError(del, 404);
  const bad = await t.request('POST', '/resource_providers', { user: t.admin, version: latest, payload: '{"name": ' });
  expectPlacementError(bad, 400);
  const text = await t.request('POST', '/resource_providers', { user: t.admin, version: latest, payload: 'name=x', headers: { 'content-type': 'text/plain' } });
  assert.equal(text.status, 415, 'text/plain is refused');
  const patch = await t.request('PATCH', '/resource_providers', { user: t.admin, version: latest, payload: {} });
  expectPlacementError(patch, 405);
  assert.equal(patch.headers.allow, 'GET, POST', 'Allow lists the methods');
  const extra = await t.request('POST', '/resource_providers', { user: t.admin, version: latest, payload: { name: 'x', colour: 'blue' } });
  expectPlacementError(extra, 400, undefined, "'colour' was unexpected");
  const noCode = await t.request('GET', `/resource_providers/${randomUUID()}`, { user: t.admin, version: '1.22' });
  assert.equal(noCode.status, 404);
  assert.ok(!('code' in noCode.body.errors[0]), 'no code before 1.23');
});

test('GET /resource_providers filters by name, uuid and member_of (1.3)', async () => {
  const a = await create('filter-a');
  await create('filter-b');
  const byName = await t.request('GET', '/resource_providers?name=filter-a', { user: t.admin, version: latest });
  assert.deepEqual(byName.body.resource_providers.map((p: { uuid: string }) => p.uuid), [a.uuid], 'by name');
  const byUuid = await t.request('GET', `/resource_providers?uuid=${a.uuid}`, { user: t.admin, version: latest });
  assert.equal(byUuid.body.resource_providers.length, 1, 'by uuid');
  const agg = randomUUID();
  const put = await t.request('PUT', `/resource_providers/${a.uuid}/aggregates`, { user: t.admin, version: latest, payload: { aggregates: [agg], resource_provider_generation: 0 } });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.resource_provider_generation, 1, 'aggregates bump the generation from 1.19');
  const member = await t.request('GET', `/resource_providers?member_of=in:${agg},${randomUUID()}`, { user: t.admin, version: latest });
  assert.deepEqual(member.body.resource_providers.map((p: { uuid: string }) => p.uuid), [a.uuid], 'member_of in:');
  const notMember = await t.request('GET', `/resource_providers?member_of=!${agg}&name=filter-a`, { user: t.admin, version: latest });
  assert.equal(notMember.body.resource_providers.length, 0, 'forbidden aggregate');
  const tooOld = await t.request('GET', `/resource_providers?member_of=${agg}`, { user: t.admin, version: '1.2' });
  expectPlacementError(tooOld, 400);
  const stale = await t.request('PUT', `/resource_providers/${a.uuid}/aggregates`, { user: t.admin, version: latest, payload: { aggregates: [], resource_provider_generation: 0 } });
  expectPlacementError(stale, 409, 'placement.concurrent_update');
});

test('GET /resource_providers?resources= (1.4) keeps providers with room, honouring reserved, ratio, max_unit and step_size', async () => {
  const roomy = (await create('res-roomy')).uuid as string;
  const tight = (await create('res-tight')).uuid as string;
  const put = (uuid: string, inventories: Record<string, Record<string, number>>) =>
    t.request('PUT', `/resource_providers/${uuid}/inventories`, { user: t.admin, version: latest, payload: { resource_provider_generation: 0, inventories } });
  assert.equal((await put(roomy, { VCPU: { total: 4, allocation_ratio: 2 }, DISK_GB: { total: 100, step_size: 10 } })).status, 200);
  assert.equal((await put(tight, { VCPU: { total: 4, reserved: 2, max_unit: 2 }, DISK_GB: { total: 100 } })).status, 200);
  const names = async (query: string, version = latest): Promise<string[]> => {
    const res = await t.request('GET', `/resource_providers?${query}`, { user: t.admin, version });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.resource_providers.map((p: { name: string }) => p.name).sort();
  };
  assert.deepEqual(await names('resources=VCPU:2'), ['res-roomy', 'res-tight'], 'both have 2 VCPUs');
  assert.deepEqual(await names('resources=VCPU:3'), ['res-roomy'], 'max_unit and reserved leave out the tight one');
  assert.deepEqual(await names('resources=VCPU:8,DISK_GB:20'), ['res-roomy'], 'allocation ratio counts');
  assert.deepEqual(await names('resources=DISK_GB:15'), ['res-tight'], 'step_size 10 refuses 15');
  const bad = await t.request('GET', '/resource_providers?resources=VCPU:0', { user: t.admin, version: latest });
  expectPlacementError(bad, 400, undefined, 'requires amount >= 1');
  const unknown = await t.request('GET', '/resource_providers?resources=CUSTOM_NOPE:1', { user: t.admin, version: latest });
  expectPlacementError(unknown, 400, undefined, 'No such resource class CUSTOM_NOPE');
  const old = await t.request('GET', '/resource_providers?resources=VCPU:1', { user: t.admin, version: '1.3' });
  expectPlacementError(old, 400, undefined, "'resources' was unexpected");
});
