import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestIdentity, type InjectMethod, type TestIdentity, type TestReply } from '../testing.js';
import { validEndpointUrl } from './catalog.js';

type Json = Record<string, any>;

let t: TestIdentity;

before(async () => {
  t = await createTestIdentity();
});

after(async () => {
  await t.close();
});

function call(method: InjectMethod, url: string, payload?: unknown, token = t.adminToken): Promise<TestReply> {
  return t.request(method, url, { token, payload });
}

async function createService(extra: Json = {}): Promise<Json> {
  const res = await call('POST', '/v3/services', { service: { type: `type-${Math.random().toString(36).slice(2)}`, name: 'svc', ...extra } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.service as Json;
}

async function createEndpoint(serviceId: string, extra: Json = {}): Promise<Json> {
  const res = await call('POST', '/v3/endpoints', { endpoint: { service_id: serviceId, interface: 'public', url: 'http://svc.example:1234/v1', region_id: 'RegionOne', ...extra } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.endpoint as Json;
}

test('services: create, show, list with filters, update, delete', async () => {
  const created = await call('POST', '/v3/services', { service: { type: 'compute-x', name: 'nova-x', description: 'Compute', email: 'ops@example.com' } });
  assert.equal(created.status, 201);
  const service = created.body.service as Json;
  assert.match(service.id, /^[0-9a-f]{32}$/);
  assert.deepEqual({ ...service, id: 'ID' }, {
    id: 'ID',
    type: 'compute-x',
    name: 'nova-x',
    description: 'Compute',
    email: 'ops@example.com',
    enabled: true,
    links: { self: `http://identity.test:5000/v3/services/${service.id}` },
  });
  assert.deepEqual((await call('GET', `/v3/services/${service.id}`)).body.service, service);
  const head = await t.app.inject({ method: 'HEAD', url: `/v3/services/${service.id}`, headers: { 'x-auth-token': t.adminToken } });
  assert.equal(head.statusCode, 200);
  assert.equal(head.body, '');

  const other = await createService();
  const all = await call('GET', '/v3/services');
  assert.equal(all.status, 200);
  assert.ok(all.body.services.some((s: Json) => s.id === service.id));
  assert.equal(all.body.links.self, 'http://identity.test:5000/v3/services');
  const byType = await call('GET', '/v3/services?type=compute-x');
  assert.deepEqual(byType.body.services.map((s: Json) => s.id), [service.id]);
  const byName = await call('GET', '/v3/services?name=nova-x');
  assert.deepEqual(byName.body.services.map((s: Json) => s.id), [service.id]);
  assert.ok(!byType.body.services.some((s: Json) => s.id === other.id));

  const updated = await call('PATCH', `/v3/services/${service.id}`, { service: { description: 'Compute v2', enabled: false } });
  assert.equal(updated.status, 200);
  assert.equal(updated.body.service.description, 'Compute v2');
  assert.equal(updated.body.service.enabled, false);
  assert.equal(updated.body.service.email, 'ops@example.com');
  assert.deepEqual((await call('GET', `/v3/services/${service.id}`)).body.service, updated.body.service);

  assert.equal((await call('DELETE', `/v3/services/${service.id}`)).status, 204);
  assert.equal((await call('GET', `/v3/services/${service.id}`)).status, 404);
  assert.equal((await call('DELETE', `/v3/services/${service.id}`)).status, 404);
});

test('services: a service made without a name gets an empty one', async () => {
  const res = await call('POST', '/v3/services', { service: { type: 'unnamed' } });
  assert.equal(res.status, 201);
  assert.equal(res.body.service.name, '');
  assert.equal(res.body.service.enabled, true);
  assert.equal('description' in res.body.service, false);
});

test('services: bad input is 400, unknown ids 404', async () => {
  const service = await createService();
  assert.equal((await call('POST', '/v3/services', { service: { name: 'no-type' } })).status, 400);
  assert.equal((await call('POST', '/v3/services', { service: { type: 42 } })).status, 400);
  assert.equal((await call('POST', '/v3/services', { service: { type: '' } })).status, 400);
  assert.equal((await call('POST', '/v3/services', { service: { type: 'x', enabled: 'True' } })).status, 400);
  assert.equal((await call('POST', '/v3/services', { type: 'x' })).status, 400);
  const bad = await call('PATCH', `/v3/services/${service.id}`, { service: {} });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 400);
  assert.equal((await call('PATCH', `/v3/services/${service.id}`, { service: { id: 'other' } })).status, 400);
  assert.equal((await call('PATCH', '/v3/services/nope', { service: { name: 'x' } })).status, 404);
  const missing = await call('GET', '/v3/services/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.message, 'Could not find service: nope.');
});

test('services, endpoints and region writes are refused to a member (403)', async () => {
  const service = await createService();
  const endpoint = await createEndpoint(service.id);
  const m = t.memberToken;
  assert.equal((await call('GET', '/v3/services', undefined, m)).status, 403);
  assert.equal((await call('GET', `/v3/services/${service.id}`, undefined, m)).status, 403);
  assert.equal((await call('POST', '/v3/services', { service: { type: 'x' } }, m)).status, 403);
  assert.equal((await call('PATCH', `/v3/services/${service.id}`, { service: { name: 'x' } }, m)).status, 403);
  assert.equal((await call('DELETE', `/v3/services/${service.id}`, undefined, m)).status, 403);
  assert.equal((await call('GET', '/v3/endpoints', undefined, m)).status, 403);
  assert.equal((await call('POST', '/v3/endpoints', { endpoint: { service_id: service.id, interface: 'public', url: 'http://x' } }, m)).status, 403);
  assert.equal((await call('DELETE', `/v3/endpoints/${endpoint.id}`, undefined, m)).status, 403);
  assert.equal((await call('POST', '/v3/regions', { region: {} }, m)).status, 403);
  assert.equal((await call('DELETE', '/v3/regions/RegionOne', undefined, m)).status, 403);
  // Anyone may read regions, as in Keystone.
  assert.equal((await call('GET', '/v3/regions', undefined, m)).status, 200);
  assert.equal((await call('GET', '/v3/regions/RegionOne', undefined, m)).status, 200);
  assert.equal((await call('GET', `/v3/services/${service.id}`)).status, 200);
});

test('endpoints: create with a legacy region (made on the fly), list with filters, update, delete', async () => {
  const s1 = await createService();
  const s2 = await createService();
  const created = await call('POST', '/v3/endpoints', { endpoint: { service_id: s1.id, interface: 'public', url: 'https://one.example/', region: 'legacy-region-1', enabled: true, note: 'kept' } });
  assert.equal(created.status, 201);
  const endpoint = created.body.endpoint as Json;
  assert.deepEqual({ ...endpoint, id: 'ID' }, {
    id: 'ID',
    service_id: s1.id,
    interface: 'public',
    url: 'https://one.example/',
    region: 'legacy-region-1',
    region_id: 'legacy-region-1',
    enabled: true,
    note: 'kept',
    links: { self: `http://identity.test:5000/v3/endpoints/${endpoint.id}` },
  });
  const region = await call('GET', '/v3/regions/legacy-region-1');
  assert.equal(region.status, 200);
  assert.equal(region.body.region.description, '');
  assert.deepEqual((await call('GET', `/v3/endpoints/${endpoint.id}`)).body.endpoint, endpoint);

  const internal = await createEndpoint(s2.id, { interface: 'internal' });
  const ids = async (query: string): Promise<string[]> => ((await call('GET', `/v3/endpoints${query}`)).body.endpoints as Json[]).map((e) => e.id as string);
  assert.deepEqual(await ids(`?service_id=${s1.id}`), [endpoint.id]);
  assert.deepEqual(await ids(`?service_id=${s2.id}`), [internal.id]);
  assert.ok((await ids('?interface=public')).includes(endpoint.id));
  assert.ok(!(await ids('?interface=public')).includes(internal.id));
  assert.deepEqual(await ids('?region_id=legacy-region-1'), [endpoint.id]);
  assert.ok((await ids('')).includes(internal.id));

  const updated = await call('PATCH', `/v3/endpoints/${endpoint.id}`, { endpoint: { service_id: s2.id, interface: 'internal', url: 'https://two.example/', region: 'legacy-region-2', enabled: false } });
  assert.equal(updated.status, 200);
  assert.equal(updated.body.endpoint.service_id, s2.id);
  assert.equal(updated.body.endpoint.interface, 'internal');
  assert.equal(updated.body.endpoint.url, 'https://two.example/');
  assert.equal(updated.body.endpoint.region, 'legacy-region-2');
  assert.equal(updated.body.endpoint.enabled, false);
  assert.equal(updated.body.endpoint.note, 'kept');
  assert.equal((await call('GET', '/v3/regions/legacy-region-2')).status, 200);
  assert.deepEqual((await call('GET', `/v3/endpoints/${endpoint.id}`)).body.endpoint, updated.body.endpoint);

  assert.equal((await call('DELETE', `/v3/endpoints/${endpoint.id}`)).status, 204);
  assert.ok(!(await ids('')).includes(endpoint.id));
  assert.equal((await call('GET', `/v3/endpoints/${endpoint.id}`)).status, 404);
  assert.equal((await call('DELETE', `/v3/endpoints/${endpoint.id}`)).status, 404);
});

test('endpoints: bad input is 400 (as tempest expects), unknown ids 404', async () => {
  const service = await createService();
  const base = { service_id: service.id, interface: 'public', url: 'http://ok.example/' };
  const post = async (endpoint: Json): Promise<number> => (await call('POST', '/v3/endpoints', { endpoint })).status;
  assert.equal(await post({ ...base, enabled: 'False' }), 400);
  assert.equal(await post({ ...base, enabled: 'True' }), 400);
  assert.equal(await post({ ...base, interface: 'private' }), 400);
  assert.equal(await post({ service_id: service.id, interface: 'public' }), 400);
  assert.equal(await post({ interface: 'public', url: 'http://x.example/' }), 400);
  assert.equal(await post({ ...base, url: 'not a url' }), 400);
  assert.equal(await post({ ...base, url: 'http://x.example/$(bogus)s' }), 400);
  const noService = await call('POST', '/v3/endpoints', { endpoint: { ...base, service_id: 'no-such-service' } });
  assert.equal(noService.status, 400);
  assert.match(noService.body.error.message, /^Expecting to find endpoint service_id in service table/);
  assert.equal(await post({ ...base, region_id: 'no-such-region' }), 400);
  assert.equal((await call('GET', '/v3/regions/no-such-region')).status, 404);
  assert.equal(await post({ ...base, url: 'http://x.example/v2/$(project_id)s' }), 201);

  const endpoint = await createEndpoint(service.id);
  const patch = async (change: Json): Promise<number> => (await call('PATCH', `/v3/endpoints/${endpoint.id}`, { endpoint: change })).status;
  assert.equal(await patch({ enabled: 'False' }), 400);
  assert.equal(await patch({ enabled: 'True' }), 400);
  assert.equal(await patch({ interface: 'private' }), 400);
  assert.equal(await patch({ service_id: 'no-such-service' }), 400);
  assert.equal(await patch({}), 400);
  assert.equal((await call('GET', `/v3/endpoints/${endpoint.id}`)).body.endpoint.enabled, true);
  assert.equal((await call('GET', '/v3/endpoints/nope')).status, 404);
  assert.equal((await call('PATCH', '/v3/endpoints/nope', { endpoint: { url: 'http://x.example/' } })).status, 404);
});

test('endpoint URLs: only whitelisted substitutions, as Keystone checks them', () => {
  assert.equal(validEndpointUrl('http://x.example/v2.1/$(project_id)s'), true);
  assert.equal(validEndpointUrl('http://x.example/v1/%(tenant_id)s/%(user_id)s'), true);
  assert.equal(validEndpointUrl('http://x.example/100%%'), true);
  assert.equal(validEndpointUrl('http://x.example/$(compute_host)s:$(public_port)s'), true);
  assert.equal(validEndpointUrl('http://x.example/$(admin_token)s'), false);
  assert.equal(validEndpointUrl('http://x.example/%(project_id)d'), false);
  assert.equal(validEndpointUrl('http://x.example/a%'), false);
});

test('deleting a service deletes its endpoints', async () => {
  const service = await createService();
  const endpoint = await createEndpoint(service.id);
  assert.equal((await call('DELETE', `/v3/services/${service.id}`)).status, 204);
  assert.equal((await call('GET', `/v3/endpoints/${endpoint.id}`)).status, 404);
});

test('regions: create with and without id, filter by parent, update, delete', async () => {
  const made = await call('POST', '/v3/regions', { region: { description: 'first' } });
  assert.equal(made.status, 201);
  const parent = made.body.region as Json;
  assert.match(parent.id, /^[0-9a-f]{32}$/);
  assert.deepEqual(parent, { id: parent.id, description: 'first', parent_region_id: null, links: { self: `http://identity.test:5000/v3/regions/${parent.id}` } });

  const put = await call('PUT', '/v3/regions/region-put', { region: { description: 'by put', parent_region_id: parent.id, zone: 'z1' } });
  assert.equal(put.status, 201);
  assert.deepEqual(put.body.region, {
    id: 'region-put',
    description: 'by put',
    parent_region_id: parent.id,
    zone: 'z1',
    links: { self: 'http://identity.test:5000/v3/regions/region-put' },
  });
  assert.equal((await call('PUT', '/v3/regions/region-put', { region: {} })).status, 409);
  assert.equal((await call('POST', '/v3/regions', { region: { id: 'region-put' } })).status, 409);
  const withId = await call('POST', '/v3/regions', { region: { id: 'region-post' } });
  assert.equal(withId.status, 201);
  assert.equal(withId.body.region.id, 'region-post');

  const listed = await call('GET', '/v3/regions');
  assert.ok(listed.body.regions.some((r: Json) => JSON.stringify(r) === JSON.stringify(put.body.region)));
  const children = await call('GET', `/v3/regions?parent_region_id=${parent.id}`);
  assert.deepEqual(children.body.regions, [put.body.region]);

  const other = (await call('POST', '/v3/regions', { region: {} })).body.region as Json;
  const moved = await call('PATCH', '/v3/regions/region-put', { region: { description: 'moved', parent_region_id: other.id } });
  assert.equal(moved.status, 200);
  assert.equal(moved.body.region.description, 'moved');
  assert.equal(moved.body.region.parent_region_id, other.id);
  assert.equal(moved.body.region.zone, 'z1');
  assert.deepEqual((await call('GET', '/v3/regions/region-put')).body.region, moved.body.region);
  const cleared = await call('PATCH', '/v3/regions/region-put', { region: { description: null } });
  assert.equal(cleared.body.region.description, '');

  assert.equal((await call('DELETE', '/v3/regions/region-put')).status, 204);
  assert.equal((await call('GET', '/v3/regions/region-put')).status, 404);
  assert.ok(!(await call('GET', '/v3/regions')).body.regions.some((r: Json) => r.id === 'region-put'));
});

test('regions: parents must exist, no cycles, ids must agree, 404 for unknown ids', async () => {
  const orphan = await call('POST', '/v3/regions', { region: { parent_region_id: 'no-such-parent' } });
  assert.equal(orphan.status, 404);
  assert.equal(orphan.body.error.message, 'Could not find region: no-such-parent.');
  assert.equal((await call('PUT', '/v3/regions/a-id', { region: { id: 'b-id' } })).status, 400);
  assert.equal((await call('POST', '/v3/regions', { region: { description: 5 } })).status, 400);
  assert.equal((await call('PATCH', '/v3/regions/RegionOne', { region: {} })).status, 400);

  assert.equal((await call('PUT', '/v3/regions/cyc-a', { region: {} })).status, 201);
  assert.equal((await call('PUT', '/v3/regions/cyc-b', { region: { parent_region_id: 'cyc-a' } })).status, 201);
  assert.equal((await call('PATCH', '/v3/regions/cyc-a', { region: { parent_region_id: 'cyc-b' } })).status, 400);
  assert.equal((await call('PATCH', '/v3/regions/cyc-a', { region: { parent_region_id: 'cyc-a' } })).status, 400);
  assert.equal((await call('PATCH', '/v3/regions/cyc-a', { region: { parent_region_id: 'nowhere' } })).status, 404);
  assert.equal((await call('GET', '/v3/regions/cyc-a')).body.region.parent_region_id, null);
  assert.equal((await call('PATCH', '/v3/regions/nowhere', { region: { description: 'x' } })).status, 404);
  assert.equal((await call('DELETE', '/v3/regions/nowhere')).status, 404);
});

test('regions: deleting one deletes its children, unless an endpoint uses any of them (403)', async () => {
  await call('PUT', '/v3/regions/tree-root', { region: {} });
  await call('PUT', '/v3/regions/tree-child', { region: { parent_region_id: 'tree-root' } });
  const service = await createService();
  const endpoint = await createEndpoint(service.id, { region_id: 'tree-child' });
  const refused = await call('DELETE', '/v3/regions/tree-root');
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.message, 'Unable to delete region tree-root because it or its child regions have associated endpoints.');
  assert.equal((await call('GET', '/v3/regions/tree-child')).status, 200);
  await call('DELETE', `/v3/endpoints/${endpoint.id}`);
  assert.equal((await call('DELETE', '/v3/regions/tree-root')).status, 204);
  assert.equal((await call('GET', '/v3/regions/tree-child')).status, 404);
});

async function issueCatalog(): Promise<Json[]> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v3/auth/tokens',
    payload: {
      auth: {
        identity: { methods: ['password'], password: { user: { id: t.adminUserId, password: t.adminPassword } } },
        scope: { project: { id: t.adminProjectId } },
      },
    },
  });
  assert.equal(res.statusCode, 201, res.body);
  return (JSON.parse(res.body) as Json).token.catalog as Json[];
}

test('a new token carries a new endpoint in its catalog, and not once it is deleted', async () => {
  const service = await createService({ type: 'catalog-test', name: 'catalogue' });
  const endpoint = await createEndpoint(service.id, { url: 'http://catalog.example:9999/v1' });
  const entry = (await issueCatalog()).find((s) => s.id === service.id);
  assert.ok(entry, 'the service is in the catalog');
  assert.equal(entry.type, 'catalog-test');
  assert.equal(entry.name, 'catalogue');
  assert.deepEqual(entry.endpoints, [{ id: endpoint.id, interface: 'public', region: 'RegionOne', region_id: 'RegionOne', url: 'http://catalog.example:9999/v1' }]);

  assert.equal((await call('DELETE', `/v3/endpoints/${endpoint.id}`)).status, 204);
  const after = (await issueCatalog()).find((s) => s.id === service.id);
  assert.deepEqual(after?.endpoints ?? [], []);
  assert.equal((await call('DELETE', `/v3/services/${service.id}`)).status, 204);
  assert.equal((await issueCatalog()).find((s) => s.id === service.id), undefined);
});
