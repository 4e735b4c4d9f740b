import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ensureDefaultFlavors } from '../bootstrap.js';
import { embeddedFlavor, loadFlavorFor } from '../flavors.js';
import { contextFromToken, type RequestContext } from '../../core/auth/context.js';
import { createTestCompute, expectComputeError, type TestCompute, type TestUser } from '../testing.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
  assert.equal(await ensureDefaultFlavors(t.compute.db), 7, 'bootstrap creates the seven default flavors');
});
after(async () => {
  await t.close();
});

async function createFlavor(body: Record<string, unknown>, version?: string): Promise<Record<string, any>> {
  const res = await t.request('POST', '/flavors', { user: t.admin, payload: { flavor: body }, ...(version ? { version } : {}) });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.flavor;
}

test('bootstrap is idempotent and makes DevStack flavors', async () => {
  assert.equal(await ensureDefaultFlavors(t.compute.db), 0, 'second run creates nothing');
  const res = await t.request('GET', '/flavors/detail', { user: t.alpha });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const tiny = res.body.flavors.find((f: any) => f.id === '1');
  assert.deepEqual(
    { name: tiny.name, vcpus: tiny.vcpus, ram: tiny.ram, disk: tiny.disk, swap: tiny.swap, eph: tiny['OS-FLV-EXT-DATA:ephemeral'], pub: tiny['os-flavor-access:is_public'], rxtx: tiny.rxtx_factor },
    { name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1, swap: '', eph: 0, pub: true, rxtx: 1 },
    'm1.tiny as v2.1 shows it',
  );
  assert.ok(res.body.flavors.some((f: any) => f.id === 'c1' && f.name === 'cirros256' && f.ram === 256), 'cirros256');
  assert.ok(res.body.flavors.some((f: any) => f.id === 'd1' && f.name === 'ds512M' && f.disk === 5), 'ds512M');
});

test('list: brief view, links, description from 2.55, no extra keys', async () => {
  const old = await t.request('GET', '/flavors', { user: t.alpha });
  const first = old.body.flavors[0];
  assert.deepEqual(Object.keys(first).sort(), ['id', 'links', 'name'], 'v2.1 brief keys');
  assert.deepEqual(first.links, [
    { rel: 'self', href: `http://compute.test:8774/v2.1/flavors/${first.id}` },
    { rel: 'bookmark', href: `http://compute.test:8774/flavors/${first.id}` },
  ], 'self and bookmark links');
  const v255 = await t.request('GET', '/flavors', { user: t.alpha, version: '2.55' });
  assert.deepEqual(Object.keys(v255.body.flavors[0]).sort(), ['description', 'id', 'links', 'name'], '2.55 adds description');
  assert.equal(old.body.flavors_links, undefined, 'no next link without a full page');
});

test('detail: swap is an integer from 2.75, extra_specs from 2.61', async () => {
  const v274 = await t.request('GET', '/flavors/1', { user: t.alpha, version: '2.74' });
  assert.equal(v274.body.flavor.swap, '', 'empty swap is "" before 2.75');
  assert.deepEqual(v274.body.flavor.extra_specs, {}, 'extra_specs at 2.61+');
  const v275 = await t.request('GET', '/flavors/1', { user: t.alpha, version: '2.75' });
  assert.equal(v275.body.flavor.swap, 0, 'swap 0 from 2.75');
  const v260 = await t.request('GET', '/flavors/1', { user: t.alpha, version: '2.60' });
  assert.equal('extra_specs' in v260.body.flavor, false, 'no extra_specs before 2.61');
  assert.equal(v260.body.flavor.description, null, 'description from 2.55');
});

test('create: defaults, generated id, strings of integers, description', async () => {
  const f = await createFlavor({ name: 'gen-id', ram: '1024', vcpus: 2, disk: 10, description: 'for tests' }, '2.55');
  assert.match(f.id, /^[0-9a-f-]{36}$/, 'a UUID when no id is given');
  assert.equal(f.ram, 1024, 'ram from a string');
  assert.equal(f['os-flavor-access:is_public'], true, 'public by default');
  assert.equal(f.rxtx_factor, 1, 'rxtx_factor 1.0 by default');
  assert.equal(f.description, 'for tests', 'description kept');
  const g = await createFlavor({ name: 'with-id', id: 'custom.1', ram: 64, vcpus: 1, disk: 0, swap: 512, 'OS-FLV-EXT-DATA:ephemeral': 2, rxtx_factor: '2.5', 'os-flavor-access:is_public': 'false' });
  assert.deepEqual([g.id, g.swap, g['OS-FLV-EXT-DATA:ephemeral'], g.rxtx_factor, g['os-flavor-access:is_public']], ['custom.1', 512, 2, 2.5, false], 'given values');
  const numeric = await createFlavor({ name: 'numeric-id', id: 4242, ram: 64, vcpus: 1, disk: 0 });
  assert.equal(numeric.id, '4242', 'a numeric id becomes text');
});

test('create: conflicts on id and name', async () => {
  expectComputeError(await t.request('POST', '/flavors', { user: t.admin, payload: { flavor: { name: 'other', id: '1', ram: 64, vcpus: 1, disk: 0 } } }), 409, 'Flavor with ID 1 already exists.');
  expectComputeError(await t.request('POST', '/flavors', { user: t.admin, payload: { flavor: { name: 'm1.tiny', ram: 64, vcpus: 1, disk: 0 } } }), 409, 'Flavor with name m1.tiny already exists.');
});

test('create: validation as Nova schema', async () => {
  const bad = async (flavor: Record<string, unknown>, message?: RegExp, version?: string): Promise<void> => {
    expectComputeError(await t.request('POST', '/flavors', { user: t.admin, payload: { flavor }, ...(version ? { version } : {}) }), 400, message);
  };
  const ok = { name: 'v', ram: 64, vcpus: 1, disk: 0 };
  await bad({ ...ok, ram: 0 }, /Invalid input for field\/attribute ram\. Value: 0\. 0 is less than the minimum of 1/);
  await bad({ ...ok, vcpus: 'abc' }, /Invalid input for field\/attribute vcpus/);
  await bad({ ...ok, disk: -1 }, /disk/);
  await bad({ ...ok, swap: 2 ** 31 }, /greater than the maximum/);
  await bad({ ...ok, rxtx_factor: 0 }, /rxtx_factor/);
  await bad({ ...ok, 'os-flavor-access:is_public': 'maybe' }, /is_public/);
  await bad({ ...ok, name: ' padded' }, /The name must be: printable characters/);
  await bad({ ...ok, id: 'bad/id' }, /field\/attribute id/);
  await bad({ ...ok, extra: 1 }, /Additional properties are not allowed \('extra' was unexpected\)/);
  await bad({ ...ok, description: 'x' }, /'description' was unexpected/, '2.54');
  await bad({ name: 'v', ram: 64, vcpus: 1 }, /'disk' is a required property/);
  expectComputeError(await t.request('POST', '/flavors', { user: t.admin, payload: { flavors: ok } }), 400, /'flavor' is a required property/);
});

test('create, update and delete are admin only', async () => {
  const body = { flavor: { name: 'x', ram: 64, vcpus: 1, disk: 0 } };
  expectComputeError(await t.request('POST', '/flavors', { user: t.alpha, payload: body }), 403, /os-flavor-manage:create/);
  expectComputeError(await t.request('POST', '/flavors', { user: t.alphaReader, payload: body }), 403);
  expectComputeError(await t.request('DELETE', '/flavors/1', { user: t.alpha }), 403);
  expectComputeError(await t.request('PUT', '/flavors/1', { user: t.alpha, payload: { flavor: { description: 'x' } }, version: '2.55' }), 403);
});

test('update: the description only, from 2.55', async () => {
  const f = await createFlavor({ name: 'upd', ram: 64, vcpus: 1, disk: 0 });
  expectComputeError(await t.request('PUT', `/flavors/${f.id}`, { user: t.admin, payload: { flavor: { description: 'x' } } }), 404);
  const res = await t.request('PUT', `/flavors/${f.id}`, { user: t.admin, payload: { flavor: { description: 'new text' } }, version: '2.55' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.flavor.description, 'new text', 'description updated');
  expectComputeError(await t.request('PUT', `/flavors/${f.id}`, { user: t.admin, payload: { flavor: { name: 'x' } }, version: '2.55' }), 400, /'description' is a required property/);
  expectComputeError(await t.request('PUT', '/flavors/missing', { user: t.admin, payload: { flavor: { description: null } }, version: '2.55' }), 404, 'Flavor missing could not be found.');
});

test('delete: 202, then 404', async () => {
  const f = await createFlavor({ name: 'to-delete', ram: 64, vcpus: 1, disk: 0 });
  const res = await t.request('DELETE', `/flavors/${f.id}`, { user: t.admin });
  assert.equal(res.status, 202, 'delete answers 202');
  expectComputeError(await t.request('GET', `/flavors/${f.id}`, { user: t.admin }), 404, `Flavor ${f.id} could not be found.`);
  expectComputeError(await t.request('DELETE', `/flavors/${f.id}`, { user: t.admin }), 404);
});

test('private flavors: seen by admins and projects with access only', async () => {
  const f = await createFlavor({ name: 'private-one', ram: 64, vcpus: 1, disk: 0, 'os-flavor-access:is_public': false });
  expectComputeError(await t.request('GET', `/flavors/${f.id}`, { user: t.alpha }), 404, `Flavor ${f.id} could not be found.`);
  const listed = async (user: TestUser, query = ''): Promise<string[]> => (await t.request('GET', `/flavors${query}`, { user })).body.flavors.map((x: any) => x.id);
  assert.equal((await listed(t.alpha)).includes(f.id), false, 'not listed for alpha');
  assert.equal((await listed(t.admin)).includes(f.id), false, 'admins list public ones by default');
  assert.equal((await listed(t.admin, '?is_public=None')).includes(f.id), true, 'is_public=None lists all for admins');
  const privateOnly = await listed(t.admin, '?is_public=false');
  assert.ok(privateOnly.includes(f.id) && !privateOnly.includes('1'), 'is_public=false lists private ones');
  expectComputeError(await t.request('GET', '/flavors?is_public=perhaps', { user: t.admin }), 400, 'Invalid is_public filter [perhaps]');

  const add = await t.request('POST', `/flavors/${f.id}/action`, { user: t.admin, payload: { addTenantAccess: { tenant: t.alpha.projectId } } });
  assert.equal(add.status, 200, JSON.stringify(add.body));
  assert.deepEqual(add.body.flavor_access, [{ flavor_id: f.id, tenant_id: t.alpha.projectId }], 'access list after add');
  assert.equal((await t.request('GET', `/flavors/${f.id}`, { user: t.alpha })).status, 200, 'alpha sees it now');
  assert.ok((await listed(t.alpha)).includes(f.id), 'and lists it');
  assert.equal((await t.request('GET', `/flavors/${f.id}`, { user: t.beta })).status, 404, 'beta still does not');

  expectComputeError(await t.request('POST', `/flavors/${f.id}/action`, { user: t.admin, payload: { addTenantAccess: { tenant: t.alpha.projectId } } }), 409, /Flavor access already exists/);
  expectComputeError(await t.request('POST', `/flavors/${f.id}/action`, { user: t.alpha, payload: { addTenantAccess: { tenant: t.beta.projectId } } }), 403);
  const list = await t.request('GET', `/flavors/${f.id}/os-flavor-access`, { user: t.admin });
  assert.deepEqual(list.body, { flavor_access: [{ flavor_id: f.id, tenant_id: t.alpha.projectId }] }, 'os-flavor-access list');
  const removed = await t.request('POST', `/flavors/${f.id}/action`, { user: t.admin, payload: { removeTenantAccess: { tenant: t.alpha.projectId } } });
  assert.deepEqual(removed.body.flavor_access, [], 'removed');
  expectComputeError(await t.request('POST', `/flavors/${f.id}/action`, { user: t.admin, payload: { removeTenantAccess: { tenant: t.alpha.projectId } } }), 404, /Flavor access not found/);
});

test('flavor access: public flavors, unknown projects, bad actions', async () => {
  expectComputeError(await t.request('GET', '/flavors/1/os-flavor-access', { user: t.admin }), 404, 'Access list not available for public flavors.');
  expectComputeError(await t.request('POST', '/flavors/1/action', { user: t.admin, payload: { addTenantAccess: { tenant: t.alpha.projectId } }, version: '2.7' }), 409, 'Can not add access to a public flavor.');
  expectComputeError(await t.request('POST', '/flavors/1/action', { user: t.admin, payload: { addTenantAccess: { tenant: 'no-such-project' } }, version: '2.7' }), 400, 'Project ID no-such-project is not a valid project.');
  expectComputeError(await t.request('POST', '/flavors/1/action', { user: t.admin, payload: { frobnicate: {} } }), 400, 'There is no such action: frobnicate');
  expectComputeError(await t.request('POST', '/flavors/nope/action', { user: t.admin, payload: { removeTenantAccess: { tenant: 'x' } } }), 404, 'Flavor nope could not be found.');
});

test('filters, sorting and paging', async () => {
  const ids = async (query: string): Promise<string[]> => {
    const res = await t.request('GET', `/flavors${query}`, { user: t.alpha });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.flavors.map((f: any) => f.id);
  };
  assert.deepEqual((await ids('?minRam=8192&minDisk=80')).sort(), ['4', '5'], 'minRam and minDisk');
  expectComputeError(await t.request('GET', '/flavors?minRam=lots', { user: t.alpha }), 400, 'Invalid minRam filter [lots]');
  const byRam = await ids('?sort_key=memory_mb&sort_dir=desc&minRam=2048');
  assert.deepEqual(byRam.slice(0, 3), ['5', '4', '3'], 'sorted by ram, descending');
  expectComputeError(await t.request('GET', '/flavors?sort_key=colour', { user: t.alpha }), 400, /Invalid input for query parameters sort_key/);
  const page = await t.request('GET', '/flavors?limit=2', { user: t.alpha });
  assert.equal(page.body.flavors.length, 2, 'limit');
  const last = page.body.flavors[1].id;
  assert.deepEqual(page.body.flavors_links, [{ rel: 'next', href: `http://compute.test:8774/v2.1/flavors?limit=2&marker=${last}` }], 'next link');
  const next = await ids(`?limit=2&marker=${last}`);
  assert.equal(next.includes(last), false, 'the next page starts after the marker');
  expectComputeError(await t.request('GET', '/flavors?marker=unknown', { user: t.alpha }), 400, 'marker [unknown] not found');
  expectComputeError(await t.request('GET', '/flavors?limit=-1', { user: t.alpha }), 400, /query parameters limit/);
  assert.equal((await t.request('GET', '/flavors?colour=red', { user: t.alpha, version: '2.74' })).status, 200, 'unknown parameters pass before 2.75');
  expectComputeError(await t.request('GET', '/flavors?colour=red', { user: t.alpha, version: '2.75' }), 400, /Additional properties are not allowed/);
});

test('extra specs: CRUD, validation and policy', async () => {
  const f = await createFlavor({ name: 'specs', ram: 64, vcpus: 1, disk: 0 });
  const base = `/flavors/${f.id}/os-extra_specs`;
  const set = await t.request('POST', base, { user: t.admin, payload: { extra_specs: { 'hw:numa_nodes': '1', 'hw:cpu_policy': 'shared', n: 5 } } });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.deepEqual(set.body, { extra_specs: { 'hw:numa_nodes': '1', 'hw:cpu_policy': 'shared', n: 5 } }, 'the body as sent');
  const list = await t.request('GET', base, { user: t.alphaReader });
  assert.deepEqual(list.body, { extra_specs: { 'hw:numa_nodes': '1', 'hw:cpu_policy': 'shared', n: '5' } }, 'a reader lists them, numbers as text');
  const upd = await t.request('PUT', `${base}/hw:numa_nodes`, { user: t.admin, payload: { 'hw:numa_nodes': '2' } });
  assert.deepEqual(upd.body, { 'hw:numa_nodes': '2' }, 'update answers the body');
  assert.deepEqual((await t.request('GET', `${base}/hw:numa_nodes`, { user: t.alpha })).body, { 'hw:numa_nodes': '2' }, 'show one');
  expectComputeError(await t.request('PUT', `${base}/hw:numa_nodes`, { user: t.admin, payload: { 'hw:cpu_policy': 'shared' } }), 400, 'Request body and URI mismatch');
  expectComputeError(await t.request('PUT', `${base}/hw:numa_nodes`, { user: t.admin, payload: { 'hw:numa_nodes': '1', 'hw:cpu_policy': 'shared' } }), 400);
  expectComputeError(await t.request('POST', base, { user: t.admin, payload: { extra_specs: { 'bad/key': 'x' } } }), 400);
  expectComputeError(await t.request('POST', base, { user: t.admin, payload: { extra_specs: { k: 'x'.repeat(256) } } }), 400);
  expectComputeError(await t.request('POST', base, { user: t.alpha, payload: { extra_specs: { k: 'v' } } }), 403);
  expectComputeError(await t.request('DELETE', `${base}/n`, { user: t.alpha }), 403);
  const detail = await t.request('GET', `/flavors/${f.id}`, { user: t.alpha, version: '2.61' });
  assert.deepEqual(detail.body.flavor.extra_specs, { 'hw:numa_nodes': '2', 'hw:cpu_policy': 'shared', n: '5' }, 'in the 2.61 view');
  const del = await t.request('DELETE', `${base}/n`, { user: t.admin });
  assert.equal(del.status, 200, 'delete answers 200');
  expectComputeError(await t.request('DELETE', `${base}/n`, { user: t.admin }), 404, `Flavor ${f.id} has no extra specs with key n.`);
  expectComputeError(await t.request('GET', `${base}/hw:cpu_thread_policy`, { user: t.alpha }), 404, `Flavor ${f.id} has no extra specs with key hw:cpu_thread_policy.`);
  expectComputeError(await t.request('GET', '/flavors/none/os-extra_specs', { user: t.alpha }), 404, 'Flavor none could not be found.');
});

test('extra specs: known specs are validated from 2.86', async () => {
  const f = await createFlavor({ name: 'specs-286', ram: 64, vcpus: 1, disk: 0 });
  const base = `/flavors/${f.id}/os-extra_specs`;
  const send = (specs: Record<string, string>, version: string) => t.request('POST', base, { user: t.admin, payload: { extra_specs: specs }, version });
  assert.equal((await send({ 'hw:cpu_policy': 'bogus' }, '2.85')).status, 200, 'not validated before 2.86');
  expectComputeError(await send({ 'hw:cpu_policy': 'bogus' }, '2.86'), 400, "Validation failed; 'bogus' is not one of: dedicated, shared, mixed.");
  expectComputeError(await send({ 'hw:numa_nodes': '0' }, '2.86'), 400, /less than the min value/);
  expectComputeError(await send({ 'hw:no_such_thing': '1' }, '2.86'), 400, "Validation failed; extra spec 'hw:no_such_thing' does not appear to be a valid extra spec.");
  assert.equal((await send({ 'hw:cpu_policy': 'shared', 'foo:bar': 'baz', 'resources:VCPU': '2', 'trait:HW_CPU_X86_AVX2': 'required' }, '2.86')).status, 200, 'valid and custom specs pass');
});

test('loadFlavorFor and embeddedFlavor, for the server code', async () => {
  const f = await createFlavor({ name: 'embed', ram: 128, vcpus: 2, disk: 3, swap: 16, 'os-flavor-access:is_public': false });
  await t.request('POST', `/flavors/${f.id}/os-extra_specs`, { user: t.admin, payload: { extra_specs: { 'hw:cpu_policy': 'shared' } } });
  const ctx = async (user: TestUser): Promise<RequestContext> => {
    const token = await t.compute.client.validateToken(user.token);
    assert.ok(token, 'a valid token');
    return contextFromToken('req-test', user.token, token);
  };
  await assert.rejects(loadFlavorFor(t.compute, await ctx(t.alpha), f.id), /could not be found/, 'private to others');
  const flavor = await loadFlavorFor(t.compute, await ctx(t.admin), `http://compute.test:8774/v2.1/flavors/${f.id}`);
  assert.deepEqual(embeddedFlavor(flavor, flavor.extra_specs), {
    flavorid: f.id,
    name: 'embed',
    vcpus: 2,
    memory_mb: 128,
    root_gb: 3,
    ephemeral_gb: 0,
    swap: 16,
    rxtx_factor: 1,
    is_public: false,
    description: null,
    extra_specs: { 'hw:cpu_policy': 'shared' },
  }, 'the embedded copy');
});
