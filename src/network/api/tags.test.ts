import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { newStandardColumns } from '../common.js';
import { createTestNetwork, expectNeutronError, type TestNetwork, type TestUser } from '../testing.js';

// Facts from neutron-lib's api-ref (tags.inc), Neutron's extensions/tagging.py
// and services/tag/tag_plugin.py, and Tempest's test_tags.py.

let t: TestNetwork;
/** collection -> id of one resource of alpha's. */
const parents = new Map<string, string>();

before(async () => {
  t = await createTestNetwork();
  const alpha = t.alpha.projectId;
  const network = await t.create(t.alpha, 'networks', 'network', { name: 'tagged' });
  parents.set('networks', network.id);
  parents.set('ports', (await t.create(t.alpha, 'ports', 'port', { network_id: network.id })).id);
  parents.set('routers', (await t.create(t.alpha, 'routers', 'router', {})).id);
  parents.set('security-groups', (await t.create(t.alpha, 'security-groups', 'security_group', { name: 'sg' })).id);
  parents.set('subnets', (await t.create(t.alpha, 'subnets', 'subnet', { network_id: network.id, ip_version: 4, cidr: '10.9.8.0/24', enable_dhcp: false })).id);
  parents.set('subnetpools', (await t.create(t.alpha, 'subnetpools', 'subnetpool', { name: 'pool', prefixes: ['10.100.0.0/16'], default_prefixlen: 24 })).id);
  // A floating IP as a row: the tag API only needs it to exist (the API would need an external network).
  const fip = { ...newStandardColumns(alpha, {}), floating_network_id: network.id, floating_ip_address: '172.24.4.99', floating_port_id: parents.get('ports') ?? '', fixed_port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN', dns_name: '', dns_domain: '' };
  await t.net.db.insertInto('floatingip').values(fip).execute();
  parents.set('floatingips', fip.id);
});

after(async () => {
  await t?.close();
});

function url(collection: string, id: string, tag?: string): string {
  return `/v2.0/${collection}/${id}/tags${tag === undefined ? '' : `/${encodeURIComponent(tag)}`}`;
}

async function tagsOf(collection: string, id: string, user: TestUser = t.alpha): Promise<string[]> {
  const res = await t.request('GET', url(collection, id), { user });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.tags as string[];
}

test('add, check, list, replace, remove one and remove all on a network (Tempest test_tags)', async () => {
  const id = parents.get('networks') ?? '';
  const added = await t.request('PUT', url('networks', id, 'red'), { user: t.alpha });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  assert.equal(added.raw.length, 0, 'no body');
  assert.equal((await t.request('PUT', url('networks', id, 'red'), { user: t.alpha })).status, 201, 'adding twice is fine');
  assert.equal((await t.request('GET', url('networks', id, 'red'), { user: t.alpha })).status, 204, 'the tag exists');
  assert.deepEqual(await tagsOf('networks', id), ['red'], 'listed');
  const shown = await t.request('GET', `/v2.0/networks/${id}`, { user: t.alpha });
  assert.deepEqual(shown.body.network.tags, ['red'], 'the network shows its tags');

  const replaced = await t.request('PUT', url('networks', id), { user: t.alpha, payload: { tags: ['b', 'a', 'c'] } });
  assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
  assert.deepEqual(replaced.body, { tags: ['b', 'a', 'c'] }, 'answers the tags given');
  assert.deepEqual(await tagsOf('networks', id), ['a', 'b', 'c'], 'red replaced');
  expectNeutronError(await t.request('GET', url('networks', id, 'red'), { user: t.alpha }), 404, 'TagNotFound', 'Tag red could not be found.');

  assert.equal((await t.request('DELETE', url('networks', id, 'a'), { user: t.alpha })).status, 204, 'one removed');
  expectNeutronError(await t.request('DELETE', url('networks', id, 'a'), { user: t.alpha }), 404, 'TagNotFound');
  assert.deepEqual(await tagsOf('networks', id), ['b', 'c'], 'the others stay');
  assert.equal((await t.request('DELETE', url('networks', id), { user: t.alpha })).status, 204, 'all removed');
  assert.deepEqual(await tagsOf('networks', id), [], 'none left');
});

test('every tag change bumps the parent revision; a no-op does not', async () => {
  const id = parents.get('networks') ?? '';
  const revision = async (): Promise<number> => (await t.request('GET', `/v2.0/networks/${id}`, { user: t.alpha })).body.network.revision_number as number;
  const r0 = await revision();
  await t.request('PUT', url('networks', id, 'x'), { user: t.alpha });
  assert.equal(await revision(), r0 + 1, 'add');
  await t.request('PUT', url('networks', id, 'x'), { user: t.alpha });
  assert.equal(await revision(), r0 + 1, 'adding an existing tag changes nothing');
  await t.request('PUT', url('networks', id), { user: t.alpha, payload: { tags: ['x', 'y'] } });
  assert.equal(await revision(), r0 + 2, 'replace');
  await t.request('DELETE', url('networks', id, 'y'), { user: t.alpha });
  assert.equal(await revision(), r0 + 3, 'remove one');
  await t.request('DELETE', url('networks', id), { user: t.alpha });
  assert.equal(await revision(), r0 + 4, 'remove all');
});

test('subnets, ports, routers, floating IPs, security groups and subnet pools take tags too', async () => {
  for (const [collection, id] of parents) {
    const put = await t.request('PUT', url(collection, id), { user: t.alpha, payload: { tags: [`${collection}-1`, 'shared-tag'] } });
    assert.equal(put.status, 200, `${collection}: ${JSON.stringify(put.body)}`);
    assert.deepEqual(await tagsOf(collection, id), [`${collection}-1`, 'shared-tag'].sort(), `${collection} tags`);
    assert.equal((await t.request('GET', url(collection, id, 'shared-tag'), { user: t.alpha })).status, 204, `${collection} tag check`);
    assert.equal((await t.request('DELETE', url(collection, id), { user: t.alpha })).status, 204, `${collection} cleared`);
  }
  const rows = await t.net.db.selectFrom('tag').selectAll().execute();
  assert.deepEqual(rows, [], 'nothing left behind');
});

test('a parent the caller cannot see is 404; one it may see but not change is 403', async () => {
  const id = parents.get('networks') ?? '';
  await t.request('PUT', url('networks', id, 'secret'), { user: t.alpha });
  for (const [method, path] of [
    ['GET', url('networks', id)],
    ['GET', url('networks', id, 'secret')],
    ['PUT', url('networks', id, 'mine')],
    ['DELETE', url('networks', id)],
  ] as const) {
    expectNeutronError(await t.request(method, path, { user: t.beta }), 404, 'TagResourceNotFound');
  }
  const unknown = randomUUID();
  expectNeutronError(await t.request('GET', url('ports', unknown), { user: t.admin }), 404, 'TagResourceNotFound', `Resource ports ${unknown} could not be found.`);

  expectNeutronError(await t.request('PUT', url('networks', id, 'nope'), { user: t.alphaReader }), 403, 'PolicyNotAuthorized');
  assert.deepEqual(await tagsOf('networks', id, t.alphaReader), ['secret'], 'the reader sees the tags');

  const shared = await t.create(t.admin, 'networks', 'network', { name: 'shared', shared: true });
  assert.deepEqual(await tagsOf('networks', shared.id, t.beta), [], 'a shared network is visible');
  expectNeutronError(await t.request('PUT', url('networks', shared.id), { user: t.beta, payload: { tags: ['mine'] } }), 403, 'PolicyNotAuthorized');
  assert.deepEqual(await tagsOf('networks', shared.id, t.beta), [], 'the refused request changed nothing');
  assert.equal((await t.request('PUT', url('networks', shared.id, 'ops'), { user: t.admin })).status, 201, 'the admin may');
  assert.equal((await t.request('PUT', url('networks', id, 'by-admin'), { user: t.admin })).status, 201, 'admins tag anything');
  await t.request('DELETE', url('networks', id), { user: t.alpha });
});

test('tag validation: length, type, unique, body shape', async () => {
  const id = parents.get('routers') ?? '';
  expectNeutronError(await t.request('PUT', url('routers', id, 'x'.repeat(256)), { user: t.alpha }), 400, 'InvalidInput');
  assert.equal((await t.request('PUT', url('routers', id, 'x'.repeat(255)), { user: t.alpha })).status, 201, '255 characters are fine');
  for (const [payload, why] of [
    [{ tags: 'a,b' }, 'not a list'],
    [{ tags: ['a', 'a'] }, 'duplicates'],
    [{ tags: [1] }, 'not strings'],
    [{ tag: ['a'] }, 'no tags key'],
    [['a'], 'not a mapping'],
    [{ tags: ['y'.repeat(256)] }, 'too long'],
  ] as const) {
    const res = await t.request('PUT', url('routers', id), { user: t.alpha, payload });
    assert.equal(res.status, 400, `${why}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.NeutronError?.type, 'InvalidInput', why);
  }
  assert.deepEqual(await tagsOf('routers', id), ['x'.repeat(255)], 'refused requests changed nothing');
  const other = await t.request('GET', `/v2.0/agents/${randomUUID()}/tags`, { user: t.admin });
  assert.equal(other.status, 404, 'agents have no tags');
  await t.request('DELETE', url('routers', id), { user: t.alpha });
});
