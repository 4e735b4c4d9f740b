import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestImage, type TestImage, type TestReply, type TestUser } from '../testing.js';

let t: TestImage;

before(async () => {
  t = await createTestImage();
});

after(async () => {
  await t.close();
});

const NS = '/v2/metadefs/namespaces';
let counter = 0;
const unique = (base: string): string => `${base}-${++counter}`;

async function createNamespace(body: Record<string, unknown>, user: TestUser = t.admin): Promise<Record<string, any>> {
  const res = await t.request('POST', NS, { user, payload: body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

function expectStatus(res: TestReply, status: number, what: string): void {
  assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
}

test('every metadefs schema is served under its name', async () => {
  const names: Record<string, string> = {
    namespace: 'namespace',
    namespaces: 'namespaces',
    resource_type: 'resource_type_association',
    resource_types: 'resource_type_associations',
    object: 'object',
    objects: 'objects',
    property: 'property',
    properties: 'properties',
    tag: 'tag',
    tags: 'tags',
  };
  for (const [path, name] of Object.entries(names)) {
    const res = await t.request('GET', `/v2/schemas/metadefs/${path}`, { user: t.alpha });
    expectStatus(res, 200, path);
    assert.equal(res.body.name, name);
  }
  const namespace = await t.request('GET', '/v2/schemas/metadefs/namespace', { user: t.alpha });
  assert.deepEqual(namespace.body.required, ['namespace']);
  assert.deepEqual(namespace.body.properties.visibility.enum, ['public', 'private']);
  assert.equal(namespace.body.additionalProperties, false);
  const properties = await t.request('GET', '/v2/schemas/metadefs/properties', { user: t.alpha });
  assert.deepEqual(properties.body.properties.properties.additionalProperties.required, ['type', 'title']);
  assert.ok(properties.body.definitions.positiveInteger, 'collection schemas carry the definitions at the top');
  const objects = await t.request('GET', '/v2/schemas/metadefs/objects', { user: t.alpha });
  assert.equal(objects.body.properties.objects.items.definitions, undefined, 'the item schema has no definitions of its own');
});

test('seeded resource types and the seeded namespace are there for everyone', async () => {
  const types = await t.request('GET', '/v2/metadefs/resource_types', { user: t.alphaReader });
  expectStatus(types, 200, 'list resource types');
  const names = types.body.resource_types.map((r: { name: string }) => r.name);
  assert.equal(names[0], 'OS::Glance::Image');
  for (const name of ['OS::Cinder::Volume', 'OS::Nova::Flavor', 'OS::Nova::Aggregate', 'OS::Nova::Server', 'OS::Trove::Instance']) assert.ok(names.includes(name), `${name} is seeded`);
  assert.match(types.body.resource_types[0].created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const seeded = await t.request('GET', `${NS}/Stratus::Compute::GuestHardware`, { user: t.beta });
  expectStatus(seeded, 200, 'show the seeded namespace');
  assert.equal(seeded.body.protected, true);
  assert.equal(seeded.body.visibility, 'public');
  assert.ok(seeded.body.properties.disk_bus, 'properties are shown without prefix');
  const prefixed = await t.request('GET', `${NS}/Stratus::Compute::GuestHardware?resource_type=OS::Glance::Image`, { user: t.beta });
  assert.ok(prefixed.body.properties.hw_disk_bus, 'with resource_type the prefix goes in front');
  assert.equal(prefixed.body.properties.disk_bus, undefined, 'and the bare name is gone');
  const viaPrefix = await t.request('GET', `${NS}/Stratus::Compute::GuestHardware/properties/hw_vif_model?resource_type=OS::Glance::Image`, { user: t.beta });
  expectStatus(viaPrefix, 200, 'show a property by its prefixed name');
  assert.equal(viaPrefix.body.name, 'vif_model');
  const wrongPrefix = await t.request('GET', `${NS}/Stratus::Compute::GuestHardware/properties/vif_model?resource_type=OS::Glance::Image`, { user: t.beta });
  expectStatus(wrongPrefix, 404, 'a name without the prefix');
  const notAssociated = await t.request('GET', `${NS}/Stratus::Compute::GuestHardware/properties/hw_vif_model?resource_type=OS::Nova::Flavor`, { user: t.beta });
  expectStatus(notAssociated, 404, 'a resource type the namespace is not associated with');
  const del = await t.request('DELETE', `${NS}/Stratus::Compute::GuestHardware`, { user: t.admin });
  expectStatus(del, 403, 'deleting a protected namespace');
});

test('namespaces: create, show, list, replace, delete', async () => {
  const name = unique('Test::Namespace');
  const created = await t.request('POST', NS, { user: t.admin, payload: { namespace: name, display_name: 'A test', description: 'For tests.', visibility: 'public' } });
  expectStatus(created, 201, 'create');
  assert.equal(created.headers.location, `http://image.test:9292${NS}/${name}`);
  assert.equal(created.body.namespace, name);
  assert.equal(created.body.display_name, 'A test');
  assert.equal(created.body.visibility, 'public');
  assert.equal(created.body.protected, false);
  assert.equal(created.body.owner, t.admin.projectId);
  assert.equal(created.body.self, `${NS}/${name}`);
  assert.equal(created.body.schema, '/v2/schemas/metadefs/namespace');
  assert.match(created.body.created_at, /Z$/);
  assert.equal(created.body.properties, undefined, 'empty content is left out');

  const shown = await t.request('GET', `${NS}/${name}`, { user: t.alpha });
  expectStatus(shown, 200, 'show');
  assert.deepEqual(shown.body, created.body);

  const list = await t.request('GET', NS, { user: t.alpha });
  expectStatus(list, 200, 'list');
  assert.ok(list.body.namespaces.some((n: { namespace: string }) => n.namespace === name), 'the namespace is listed');
  assert.equal(list.body.schema, '/v2/schemas/metadefs/namespaces');
  assert.equal(list.body.first, NS);

  const renamed = `${name}-renamed`;
  const updated = await t.request('PUT', `${NS}/${name}`, { user: t.admin, payload: { namespace: renamed, visibility: 'public', protected: true } });
  expectStatus(updated, 200, 'replace');
  assert.equal(updated.body.namespace, renamed);
  assert.equal(updated.body.protected, true);
  assert.equal(updated.body.display_name, undefined, 'what the body leaves out is reset');
  assert.equal(updated.body.owner, t.admin.projectId, 'the owner stays');
  expectStatus(await t.request('GET', `${NS}/${name}`, { user: t.admin }), 404, 'the old name');

  expectStatus(await t.request('DELETE', `${NS}/${renamed}`, { user: t.admin }), 403, 'delete while protected');
  const unprotected = await t.request('PUT', `${NS}/${renamed}`, { user: t.admin, payload: { namespace: renamed } });
  assert.equal(unprotected.body.visibility, 'private', 'visibility defaults to private on replace');
  assert.equal(unprotected.body.protected, false);
  expectStatus(await t.request('DELETE', `${NS}/${renamed}`, { user: t.admin }), 204, 'delete');
  expectStatus(await t.request('GET', `${NS}/${renamed}`, { user: t.admin }), 404, 'after delete');
  expectStatus(await t.request('DELETE', `${NS}/${renamed}`, { user: t.admin }), 404, 'delete again');

  const odd = unique('Test::Odd name/with slash');
  const oddCreated = await t.request('POST', NS, { user: t.admin, payload: { namespace: odd } });
  assert.equal(oddCreated.headers.location, `http://image.test:9292${NS}/${encodeURIComponent(odd).replaceAll('%3A', ':')}`);
  expectStatus(await t.request('GET', `${NS}/${encodeURIComponent(odd)}`, { user: t.admin }), 200, 'a name with a space and a slash, encoded');
});

test('namespaces: duplicates, validation and read-only attributes', async () => {
  const name = unique('Test::Dup');
  await createNamespace({ namespace: name });
  expectStatus(await t.request('POST', NS, { user: t.admin, payload: { namespace: name } }), 409, 'same name');
  const other = unique('Test::Other');
  await createNamespace({ namespace: other });
  const clash = await t.request('PUT', `${NS}/${other}`, { user: t.admin, payload: { namespace: name } });
  expectStatus(clash, 409, 'rename onto an existing name');

  const cases: [unknown, number, string][] = [
    [undefined, 400, 'no body'],
    [{}, 400, 'no namespace'],
    [{ namespace: '' }, 400, 'empty name'],
    [{ namespace: 'x'.repeat(81) }, 400, 'name too long'],
    [{ namespace: unique('Test::Bad'), visibility: 'shared' }, 400, 'bad visibility'],
    [{ namespace: unique('Test::Bad'), protected: 'yes' }, 400, 'protected not a boolean'],
    [{ namespace: unique('Test::Bad'), colour: 'blue' }, 400, 'unknown attribute'],
    [{ namespace: unique('Test::Bad'), properties: { p: { type: 'string' } } }, 400, 'property without title'],
    [{ namespace: unique('Test::Bad'), self: '/x' }, 403, 'self is read-only'],
    [{ namespace: unique('Test::Bad'), created_at: 'now' }, 403, 'created_at is read-only'],
  ];
  for (const [payload, status, what] of cases) {
    const res = await t.request('POST', NS, { user: t.admin, payload });
    expectStatus(res, status, what);
    assert.equal(res.body.code, `${status} ${status === 400 ? 'Bad Request' : 'Forbidden'}`);
  }
  const unknown = await t.request('POST', NS, { user: t.admin, payload: { namespace: 'Test::X', colour: 'blue' } });
  assert.match(unknown.body.message, /'colour' was unexpected/);
  const badType = await t.request('POST', NS, { user: t.admin, payload: { namespace: 'Test::X', properties: { p: { title: 'P', type: 'text' } } } });
  assert.match(badType.body.message, /properties\.p\.type/);

  const listErrors: [string, string][] = [
    ['?visibility=shared', 'visibility'],
    ['?sort_dir=up', 'sort direction'],
    ['?sort_key=colour', 'sort key'],
    ['?limit=x', 'limit'],
    ['?limit=-1', 'negative limit'],
  ];
  for (const [query, what] of listErrors) expectStatus(await t.request('GET', `${NS}${query}`, { user: t.alpha }), 400, what);
  expectStatus(await t.request('GET', `${NS}?marker=No::Such`, { user: t.alpha }), 404, 'unknown marker');
});

test('namespaces: created with content, all of it is shown', async () => {
  const name = unique('Test::Full');
  const created = await createNamespace({
    namespace: name,
    visibility: 'public',
    resource_type_associations: [{ name: 'OS::Glance::Image', prefix: 'hw_' }, { name: 'OS::Test::Brand::New' }],
    properties: { cpu_policy: { title: 'CPU Policy', type: 'string', enum: ['shared', 'dedicated'], colour: 'dropped' } },
    objects: [{ name: 'Limits', description: 'Some limits.', required: ['period'], properties: { period: { title: 'Period', type: 'integer', minimum: 1 } } }],
    tags: [{ name: 'fast' }, { name: 'slow' }],
  });
  assert.deepEqual(created.properties, { cpu_policy: { title: 'CPU Policy', type: 'string', enum: ['shared', 'dedicated'] } });
  assert.equal(created.objects[0].name, 'Limits');
  assert.deepEqual(created.objects[0].required, ['period']);
  assert.equal(created.objects[0].self, `${NS}/${name}/objects/Limits`);
  assert.deepEqual(
    created.tags.map((tag: { name: string }) => tag.name),
    ['fast', 'slow'],
  );
  assert.deepEqual(
    created.resource_type_associations.map((a: { name: string }) => a.name).sort(),
    ['OS::Glance::Image', 'OS::Test::Brand::New'],
  );
  const types = await t.request('GET', '/v2/metadefs/resource_types', { user: t.alpha });
  assert.ok(
    types.body.resource_types.some((r: { name: string }) => r.name === 'OS::Test::Brand::New'),
    'a new resource type is created by its first association',
  );

  const prefixed = await t.request('GET', `${NS}/${name}?resource_type=OS::Glance::Image`, { user: t.alpha });
  assert.ok(prefixed.body.properties.hw_cpu_policy, 'namespace properties take the prefix');
  assert.ok(prefixed.body.objects[0].properties.hw_period, 'object properties take the prefix');
  assert.deepEqual(prefixed.body.objects[0].required, ['hw_period']);

  const dupTags = await t.request('POST', NS, { user: t.admin, payload: { namespace: unique('Test::DupTags'), tags: [{ name: 'a' }, { name: 'a' }] } });
  expectStatus(dupTags, 409, 'the same tag twice');
  const list = await t.request('GET', NS, { user: t.admin, headers: {} });
  assert.ok(!list.body.namespaces.some((n: { namespace: string }) => n.namespace.startsWith('Test::DupTags')), 'a failed create leaves nothing behind');
});

test('namespaces: private ones are seen by their owner and admins only', async () => {
  const mine = unique('Test::AlphaPrivate');
  await createNamespace({ namespace: mine, visibility: 'private', owner: t.alpha.projectId });
  const adminOnly = unique('Test::AdminPrivate');
  await createNamespace({ namespace: adminOnly });

  expectStatus(await t.request('GET', `${NS}/${mine}`, { user: t.alpha }), 200, 'owner sees its private namespace');
  expectStatus(await t.request('GET', `${NS}/${mine}`, { user: t.alphaReader }), 200, 'a reader of the owner sees it');
  expectStatus(await t.request('GET', `${NS}/${mine}`, { user: t.beta }), 404, 'another project does not');
  expectStatus(await t.request('GET', `${NS}/${mine}/objects`, { user: t.beta }), 404, 'nor its objects');
  expectStatus(await t.request('DELETE', `${NS}/${mine}`, { user: t.beta }), 404, 'nor can it try to delete it');
  expectStatus(await t.request('GET', `${NS}/${adminOnly}`, { user: t.alpha }), 404, 'private to the admin project');
  expectStatus(await t.request('GET', `${NS}/${mine}`, { user: t.admin }), 200, 'admins see everything');

  const names = async (user: TestUser, query = ''): Promise<string[]> => {
    const res = await t.request('GET', `${NS}?limit=1000${query}`, { user });
    expectStatus(res, 200, 'list');
    return res.body.namespaces.map((n: { namespace: string }) => n.namespace);
  };
  assert.ok((await names(t.alpha)).includes(mine), 'alpha lists its private namespace');
  assert.ok(!(await names(t.beta)).includes(mine), 'beta does not');
  assert.ok(!(await names(t.alpha)).includes(adminOnly), 'alpha does not list the admin project private one');
  assert.ok((await names(t.admin)).includes(adminOnly), 'admin lists all');
  const publicOnly = await names(t.alpha, '&visibility=public');
  assert.ok(!publicOnly.includes(mine), 'visibility=public leaves private ones out');
  assert.ok(publicOnly.includes('Stratus::Compute::GuestHardware'), 'and keeps public ones');
  assert.deepEqual(await names(t.alpha, '&visibility=private'), [mine]);
});

test('namespaces: members can read but not write', async () => {
  const name = unique('Test::ReadOnly');
  await createNamespace({ namespace: name, visibility: 'public' });
  const writes: [string, string, unknown][] = [
    ['POST', NS, { namespace: unique('Test::ByMember') }],
    ['PUT', `${NS}/${name}`, { namespace: name }],
    ['DELETE', `${NS}/${name}`, undefined],
    ['POST', `${NS}/${name}/objects`, { name: 'o' }],
    ['POST', `${NS}/${name}/properties`, { name: 'p', title: 'P', type: 'string' }],
    ['POST', `${NS}/${name}/tags/t`, undefined],
    ['POST', `${NS}/${name}/tags`, { tags: [{ name: 't' }] }],
    ['POST', `${NS}/${name}/resource_types`, { name: 'OS::Glance::Image' }],
    ['DELETE', `${NS}/${name}/objects`, undefined],
    ['DELETE', `${NS}/${name}/properties`, undefined],
    ['DELETE', `${NS}/${name}/tags`, undefined],
  ];
  for (const [method, url, payload] of writes) {
    expectStatus(await t.request(method as 'POST', url, { user: t.alpha, payload }), 403, `${method} ${url} by a member`);
  }
  for (const url of [`${NS}/${name}`, `${NS}/${name}/objects`, `${NS}/${name}/properties`, `${NS}/${name}/tags`, `${NS}/${name}/resource_types`]) {
    expectStatus(await t.request('GET', url, { user: t.alphaReader }), 200, `GET ${url} by a reader`);
  }
  expectStatus(await t.request('GET', NS, { user: null }), 401, 'no token');
});

test('namespaces: pages follow sort order and the next link', async () => {
  const type = unique('OS::Test::Paged');
  const names = [unique('Test::Page-a'), unique('Test::Page-b'), unique('Test::Page-c')];
  for (const name of names) await createNamespace({ namespace: name, visibility: 'public', resource_type_associations: [{ name: type }] });
  const first = await t.request('GET', `${NS}?resource_types=${type}&limit=2&sort_key=namespace&sort_dir=asc`, { user: t.alpha });
  expectStatus(first, 200, 'first page');
  assert.deepEqual(
    first.body.namespaces.map((n: { namespace: string }) => n.namespace),
    names.slice(0, 2),
  );
  assert.equal(first.body.namespaces[0].resource_type_associations[0].name, type);
  assert.ok(typeof first.body.next === 'string' && first.body.next.includes(`marker=${encodeURIComponent(names[1] ?? '')}`), 'next names the last one');
  const second = await t.request('GET', first.body.next as string, { user: t.alpha });
  assert.deepEqual(
    second.body.namespaces.map((n: { namespace: string }) => n.namespace),
    names.slice(2),
  );
  assert.equal(second.body.next, undefined, 'no next on the last page');
  const newest = await t.request('GET', `${NS}?resource_types=${type},OS::No::Such`, { user: t.alpha });
  assert.deepEqual(
    newest.body.namespaces.map((n: { namespace: string }) => n.namespace),
    [...names].reverse(),
    'newest first by default',
  );
  const none = await t.request('GET', `${NS}?resource_types=OS::No::Such`, { user: t.alpha });
  assert.deepEqual(none.body.namespaces, []);
});

test('objects: create, list, show, replace, delete', async () => {
  const ns = unique('Test::Objects');
  await createNamespace({ namespace: ns, visibility: 'public' });
  const url = `${NS}/${ns}/objects`;
  const created = await t.request('POST', url, {
    user: t.admin,
    payload: { name: 'CPU Limits', description: 'Limits.', properties: { 'quota:cpu_period': { title: 'Period', type: 'integer', minimum: 1000 } }, required: [] },
  });
  expectStatus(created, 201, 'create');
  assert.equal(created.body.name, 'CPU Limits');
  assert.deepEqual(created.body.required, []);
  assert.deepEqual(created.body.properties, { 'quota:cpu_period': { title: 'Period', type: 'integer', minimum: 1000 } });
  assert.equal(created.body.self, `${url}/CPU Limits`);
  assert.equal(created.body.schema, '/v2/schemas/metadefs/object');

  expectStatus(await t.request('POST', url, { user: t.admin, payload: { name: 'CPU Limits' } }), 409, 'duplicate');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { description: 'no name' } }), 400, 'no name');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { name: 'x', properties: { p: { title: 'P', type: 'string', colour: 'red' } } } }), 400, 'unknown keyword in a property');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { name: 'x', schema: '/x' } }), 403, 'schema is read-only');
  expectStatus(await t.request('POST', `${NS}/No::Such/objects`, { user: t.admin, payload: { name: 'x' } }), 404, 'no such namespace');

  const list = await t.request('GET', url, { user: t.beta });
  expectStatus(list, 200, 'list');
  assert.equal(list.body.objects.length, 1);
  assert.equal(list.body.schema, '/v2/schemas/metadefs/objects');
  const shown = await t.request('GET', `${url}/${encodeURIComponent('CPU Limits')}`, { user: t.beta });
  expectStatus(shown, 200, 'show');
  assert.deepEqual(shown.body, created.body);
  expectStatus(await t.request('GET', `${url}/nothing`, { user: t.beta }), 404, 'show missing');

  const replaced = await t.request('PUT', `${url}/${encodeURIComponent('CPU Limits')}`, { user: t.admin, payload: { name: 'Limits' } });
  expectStatus(replaced, 200, 'replace');
  assert.equal(replaced.body.name, 'Limits');
  assert.deepEqual(replaced.body.properties, {}, 'properties left out are gone');
  assert.equal(replaced.body.description, undefined);
  await t.request('POST', url, { user: t.admin, payload: { name: 'Other' } });
  expectStatus(await t.request('PUT', `${url}/Other`, { user: t.admin, payload: { name: 'Limits' } }), 409, 'rename onto another object');

  expectStatus(await t.request('DELETE', `${url}/Limits`, { user: t.admin }), 204, 'delete');
  expectStatus(await t.request('DELETE', `${url}/Limits`, { user: t.admin }), 404, 'delete again');
  expectStatus(await t.request('DELETE', url, { user: t.admin }), 204, 'delete all');
  const empty = await t.request('GET', url, { user: t.admin });
  assert.deepEqual(empty.body.objects, []);
});

test('properties: create, list, show, replace, delete', async () => {
  const ns = unique('Test::Properties');
  await createNamespace({ namespace: ns, visibility: 'public' });
  const url = `${NS}/${ns}/properties`;
  const body = { name: 'hypervisor_type', title: 'Hypervisor Type', type: 'string', enum: ['qemu', 'kvm'] };
  const created = await t.request('POST', url, { user: t.admin, payload: body });
  expectStatus(created, 201, 'create');
  assert.deepEqual(created.body, body);
  expectStatus(await t.request('POST', url, { user: t.admin, payload: body }), 409, 'duplicate');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { name: 'x', type: 'string' } }), 400, 'no title');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { title: 'X', type: 'string' } }), 400, 'no name');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { name: 'x', title: 'X', type: 'string', maxLength: -1 } }), 400, 'negative maxLength');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { ...body, name: 'y', updated_at: 'now' } }), 403, 'updated_at is read-only');

  const list = await t.request('GET', url, { user: t.beta });
  expectStatus(list, 200, 'list');
  assert.deepEqual(list.body.properties, { hypervisor_type: { title: 'Hypervisor Type', type: 'string', enum: ['qemu', 'kvm'] } });
  const shown = await t.request('GET', `${url}/hypervisor_type`, { user: t.beta });
  assert.deepEqual(shown.body, body);

  const replaced = await t.request('PUT', `${url}/hypervisor_type`, { user: t.admin, payload: { name: 'hv_type', title: 'HV', type: 'string' } });
  expectStatus(replaced, 200, 'replace');
  assert.deepEqual(replaced.body, { name: 'hv_type', title: 'HV', type: 'string' });
  expectStatus(await t.request('GET', `${url}/hypervisor_type`, { user: t.beta }), 404, 'old name');
  expectStatus(await t.request('DELETE', `${url}/hv_type`, { user: t.admin }), 204, 'delete');
  expectStatus(await t.request('DELETE', `${url}/hv_type`, { user: t.admin }), 404, 'delete again');
});

test('tags: one, several (replace or append), rename, list, delete', async () => {
  const ns = unique('Test::Tags');
  await createNamespace({ namespace: ns, visibility: 'public' });
  const url = `${NS}/${ns}/tags`;
  const one = await t.request('POST', `${url}/alpha`, { user: t.admin });
  expectStatus(one, 201, 'create one');
  assert.equal(one.body.name, 'alpha');
  assert.match(one.body.created_at, /Z$/);
  expectStatus(await t.request('POST', `${url}/alpha`, { user: t.admin }), 409, 'duplicate');
  expectStatus(await t.request('POST', `${url}/${'x'.repeat(81)}`, { user: t.admin }), 400, 'too long');

  const replaced = await t.request('POST', url, { user: t.admin, payload: { tags: [{ name: 'one' }, { name: 'two' }, { name: 'three' }] } });
  expectStatus(replaced, 201, 'create several');
  assert.deepEqual(replaced.body, { tags: [{ name: 'one' }, { name: 'two' }, { name: 'three' }] });
  const names = async (query = ''): Promise<string[]> => (await t.request('GET', `${url}${query}`, { user: t.beta })).body.tags.map((tag: { name: string }) => tag.name);
  assert.deepEqual((await names('?sort_key=name&sort_dir=asc')).join(','), 'one,three,two', 'without append the old tags are gone');

  const appended = await t.request('POST', url, { user: t.admin, payload: { tags: [{ name: 'four' }] }, headers: { 'X-Openstack-Append': 'True' } });
  expectStatus(appended, 201, 'append');
  assert.deepEqual(await names('?sort_key=name&sort_dir=asc'), ['four', 'one', 'three', 'two']);
  const clash = await t.request('POST', url, { user: t.admin, payload: { tags: [{ name: 'five' }, { name: 'one' }] }, headers: { 'X-Openstack-Append': 'true' } });
  expectStatus(clash, 409, 'appending an existing tag');
  assert.ok(!(await names()).includes('five'), 'a failed batch adds nothing');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { tags: [{ title: 'x' }] } }), 400, 'tag without name');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: {} }), 400, 'no tags');

  assert.deepEqual(await names('?sort_key=name&sort_dir=asc&limit=2'), ['four', 'one']);
  assert.deepEqual(await names('?sort_key=name&sort_dir=asc&limit=2&marker=one'), ['three', 'two']);
  expectStatus(await t.request('GET', `${url}?marker=nothing`, { user: t.beta }), 404, 'unknown marker');

  const renamed = await t.request('PUT', `${url}/one`, { user: t.admin, payload: { name: 'uno' } });
  expectStatus(renamed, 200, 'rename');
  assert.equal(renamed.body.name, 'uno');
  expectStatus(await t.request('PUT', `${url}/uno`, { user: t.admin, payload: { name: 'two' } }), 409, 'rename onto another tag');
  expectStatus(await t.request('GET', `${url}/uno`, { user: t.beta }), 200, 'show');
  expectStatus(await t.request('DELETE', `${url}/uno`, { user: t.admin }), 204, 'delete');
  expectStatus(await t.request('GET', `${url}/uno`, { user: t.beta }), 404, 'deleted');
  expectStatus(await t.request('DELETE', url, { user: t.admin }), 204, 'delete all');
  assert.deepEqual(await names(), []);
});

test('resource type associations: create, list, delete', async () => {
  const ns = unique('Test::Associations');
  await createNamespace({ namespace: ns, visibility: 'public' });
  const url = `${NS}/${ns}/resource_types`;
  const created = await t.request('POST', url, { user: t.admin, payload: { name: 'OS::Cinder::Volume', prefix: 'hw_', properties_target: 'image' } });
  expectStatus(created, 201, 'create');
  assert.equal(created.body.name, 'OS::Cinder::Volume');
  assert.equal(created.body.prefix, 'hw_');
  assert.equal(created.body.properties_target, 'image');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { name: 'OS::Cinder::Volume' } }), 409, 'duplicate');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { prefix: 'x' } }), 400, 'no name');
  expectStatus(await t.request('POST', url, { user: t.admin, payload: { name: 'x', colour: 'red' } }), 400, 'unknown attribute');

  const list = await t.request('GET', url, { user: t.beta });
  expectStatus(list, 200, 'list');
  assert.deepEqual(
    list.body.resource_type_associations.map((a: { name: string }) => a.name),
    ['OS::Cinder::Volume'],
  );
  const filtered = await t.request('GET', `${NS}?resource_types=OS::Cinder::Volume&limit=1000`, { user: t.beta });
  assert.ok(
    filtered.body.namespaces.some((n: { namespace: string }) => n.namespace === ns),
    'the namespace is found by its resource type',
  );

  expectStatus(await t.request('DELETE', `${url}/OS::Cinder::Volume`, { user: t.admin }), 204, 'delete');
  expectStatus(await t.request('DELETE', `${url}/OS::Cinder::Volume`, { user: t.admin }), 404, 'delete again');
  const after = await t.request('GET', url, { user: t.beta });
  assert.deepEqual(after.body.resource_type_associations, []);
});

test('protected namespaces keep their content until unprotected', async () => {
  const ns = unique('Test::Protected');
  await createNamespace({
    namespace: ns,
    visibility: 'public',
    protected: true,
    properties: { p: { title: 'P', type: 'string' } },
    objects: [{ name: 'o' }],
    tags: [{ name: 't' }],
    resource_type_associations: [{ name: 'OS::Nova::Flavor' }],
  });
  const base = `${NS}/${ns}`;
  for (const url of [base, `${base}/objects`, `${base}/properties`, `${base}/tags`, `${base}/objects/o`, `${base}/properties/p`, `${base}/tags/t`, `${base}/resource_types/OS::Nova::Flavor`]) {
    const res = await t.request('DELETE', url, { user: t.admin });
    expectStatus(res, 403, `DELETE ${url}`);
    assert.match(res.body.message, /is protected and cannot be deleted/);
  }
  expectStatus(await t.request('POST', `${base}/tags/added`, { user: t.admin }), 201, 'adding to a protected namespace is allowed');
  await t.request('PUT', base, { user: t.admin, payload: { namespace: ns, visibility: 'public', protected: false } });
  expectStatus(await t.request('DELETE', `${base}/objects/o`, { user: t.admin }), 204, 'delete after unprotecting');
  expectStatus(await t.request('DELETE', base, { user: t.admin }), 204, 'delete the namespace with its content');
  expectStatus(await t.request('GET', `${base}/tags`, { user: t.admin }), 404, 'its tags are gone with it');
});
