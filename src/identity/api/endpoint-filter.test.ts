import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestIdentity, type InjectMethod, type TestIdentity, type TestReply } from '../testing.js';

type Json = Record<string, any>;

const EP = '/v3/OS-EP-FILTER';
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

/** A PUT as tempest sends an association: a JSON content type and no body. */
async function associate(url: string, token = t.adminToken): Promise<number> {
  const res = await t.app.inject({ method: 'PUT', url, headers: { 'x-auth-token': token, 'content-type': 'application/json', 'content-length': '0' } });
  return res.statusCode;
}

async function serviceWithEndpoints(): Promise<{ serviceId: string; publicId: string; internalId: string }> {
  const service = (await call('POST', '/v3/services', { service: { type: `t-${Math.random().toString(36).slice(2)}` } })).body.service as Json;
  const make = async (iface: string): Promise<string> =>
    ((await call('POST', '/v3/endpoints', { endpoint: { service_id: service.id, interface: iface, url: `http://${iface}.example/`, region_id: 'RegionOne' } })).body.endpoint as Json).id as string;
  return { serviceId: service.id as string, publicId: await make('public'), internalId: await make('internal') };
}

async function catalogEndpointIds(token: string): Promise<string[]> {
  const res = await call('GET', '/v3/auth/catalog', undefined, token);
  assert.equal(res.status, 200);
  return (res.body.catalog as Json[]).flatMap((s) => (s.endpoints as Json[]).map((e) => e.id as string));
}

test('endpoint groups: create, list, show, check, update, delete', async () => {
  const { serviceId, publicId, internalId } = await serviceWithEndpoints();
  const created = await call('POST', `${EP}/endpoint_groups`, { endpoint_group: { name: 'g1', description: 'first', filters: { service_id: serviceId } } });
  assert.equal(created.status, 201);
  const group = created.body.endpoint_group as Json;
  assert.deepEqual(group, {
    id: group.id,
    name: 'g1',
    description: 'first',
    filters: { service_id: serviceId },
    links: { self: `http://identity.test:5000/v3/OS-EP-FILTER/endpoint_groups/${group.id}` },
  });
  const listed = await call('GET', `${EP}/endpoint_groups`);
  assert.deepEqual(listed.body.endpoint_groups, [group]);
  assert.deepEqual((await call('GET', `${EP}/endpoint_groups?name=other`)).body.endpoint_groups, []);
  assert.deepEqual((await call('GET', `${EP}/endpoint_groups/${group.id}`)).body.endpoint_group, group);
  assert.equal((await call('HEAD', `${EP}/endpoint_groups/${group.id}`)).status, 200);
  const endpoints = await call('GET', `${EP}/endpoint_groups/${group.id}/endpoints`);
  assert.deepEqual(new Set(endpoints.body.endpoints.map((e: Json) => e.id)), new Set([publicId, internalId]));

  const narrowed = await call('PATCH', `${EP}/endpoint_groups/${group.id}`, { endpoint_group: { name: 'g2', description: 'second', filters: { service_id: serviceId, interface: 'internal' } } });
  assert.equal(narrowed.status, 200);
  assert.equal(narrowed.body.endpoint_group.name, 'g2');
  assert.equal(narrowed.body.endpoint_group.description, 'second');
  assert.deepEqual(narrowed.body.endpoint_group.filters, { service_id: serviceId, interface: 'internal' });
  assert.deepEqual((await call('GET', `${EP}/endpoint_groups/${group.id}/endpoints`)).body.endpoints.map((e: Json) => e.id), [internalId]);

  assert.equal((await call('DELETE', `${EP}/endpoint_groups/${group.id}`)).status, 204);
  assert.equal((await call('GET', `${EP}/endpoint_groups/${group.id}`)).status, 404);
  assert.equal((await call('HEAD', `${EP}/endpoint_groups/${group.id}`)).status, 404);
  assert.equal((await call('DELETE', `${EP}/endpoint_groups/${group.id}`)).status, 404);
  assert.equal((await call('GET', `${EP}/endpoint_groups/${group.id}/endpoints`)).status, 404);
});

test('endpoint groups: bad input is 400, members are refused (403)', async () => {
  const post = async (group: Json): Promise<number> => (await call('POST', `${EP}/endpoint_groups`, { endpoint_group: group })).status;
  assert.equal(await post({ filters: { interface: 'public' } }), 400);
  assert.equal(await post({ name: 'n' }), 400);
  assert.equal(await post({ name: 'n', filters: {} }), 400);
  assert.equal(await post({ name: 'n', filters: { enabled: true } }), 400);
  assert.equal(await post({ name: 'n', filters: 'interface=public' }), 400);
  const group = (await call('POST', `${EP}/endpoint_groups`, { endpoint_group: { name: 'ok', filters: { interface: 'public' } } })).body.endpoint_group as Json;
  assert.equal((await call('PATCH', `${EP}/endpoint_groups/${group.id}`, { endpoint_group: { filters: { url: 'x' } } })).status, 400);
  assert.equal((await call('PATCH', `${EP}/endpoint_groups/${group.id}`, { endpoint_group: {} })).status, 400);
  assert.equal((await call('PATCH', `${EP}/endpoint_groups/nope`, { endpoint_group: { name: 'x' } })).status, 404);

  const m = t.memberToken;
  assert.equal((await call('GET', `${EP}/endpoint_groups`, undefined, m)).status, 403);
  assert.equal((await call('POST', `${EP}/endpoint_groups`, { endpoint_group: { name: 'm', filters: { interface: 'public' } } }, m)).status, 403);
  assert.equal((await call('PATCH', `${EP}/endpoint_groups/${group.id}`, { endpoint_group: { name: 'm' } }, m)).status, 403);
  assert.equal((await call('DELETE', `${EP}/endpoint_groups/${group.id}`, undefined, m)).status, 403);
  assert.equal(await associate(`${EP}/endpoint_groups/${group.id}/projects/${t.memberProjectId}`, m), 403);
  assert.equal((await call('GET', `${EP}/endpoint_groups/${group.id}`)).body.endpoint_group.name, 'ok');
  await call('DELETE', `${EP}/endpoint_groups/${group.id}`);
});

test('endpoint groups and projects: associate, check, list both ways, filter the catalog, remove', async () => {
  const { serviceId, publicId, internalId } = await serviceWithEndpoints();
  const group = (await call('POST', `${EP}/endpoint_groups`, { endpoint_group: { name: 'pub', filters: { service_id: serviceId, interface: 'public' } } })).body.endpoint_group as Json;
  const project = t.memberProjectId;
  const link = `${EP}/endpoint_groups/${group.id}/projects/${project}`;
  assert.equal((await call('GET', link)).status, 404);
  assert.ok((await catalogEndpointIds(t.memberToken)).includes(internalId), 'no filter: every endpoint');

  assert.equal(await associate(link), 204);
  assert.equal(await associate(link), 409);
  const shown = await call('GET', link);
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.body.project_endpoint_group, { endpoint_group_id: group.id, project_id: project, links: { self: `http://identity.test:5000${link}` } });
  assert.deepEqual((await call('GET', `${EP}/endpoint_groups/${group.id}/projects`)).body.projects.map((p: Json) => p.id), [project]);
  assert.deepEqual((await call('GET', `${EP}/projects/${project}/endpoint_groups`)).body.endpoint_groups, [group]);
  assert.deepEqual((await call('GET', `${EP}/projects/${project}/endpoints`)).body.endpoints.map((e: Json) => e.id), [publicId]);
  assert.deepEqual(await catalogEndpointIds(t.memberToken), [publicId]);

  assert.equal(await associate(`${EP}/endpoint_groups/${group.id}/projects/no-such-project`), 404);
  assert.equal(await associate(`${EP}/endpoint_groups/no-such-group/projects/${project}`), 404);
  assert.equal((await call('GET', `${EP}/projects/no-such-project/endpoint_groups`)).status, 404);
  assert.deepEqual((await call('GET', `${EP}/endpoint_groups/no-such-group/projects`)).body.projects, []);

  assert.equal((await call('DELETE', link)).status, 204);
  assert.equal((await call('DELETE', link)).status, 404);
  assert.equal((await call('GET', link)).status, 404);
  assert.deepEqual((await call('GET', `${EP}/projects/${project}/endpoint_groups`)).body.endpoint_groups, []);
  assert.ok((await catalogEndpointIds(t.memberToken)).includes(internalId), 'filter removed: every endpoint again');
});

test('projects and endpoints: associate, check (204), list both ways, filter the catalog, remove', async () => {
  const { publicId, internalId } = await serviceWithEndpoints();
  const project = t.memberProjectId;
  const link = `${EP}/projects/${project}/endpoints/${internalId}`;
  assert.equal((await call('HEAD', link)).status, 404);

  assert.equal(await associate(link), 204);
  assert.equal((await call('HEAD', link)).status, 204);
  assert.equal((await call('GET', link)).status, 204);
  assert.deepEqual((await call('GET', `${EP}/projects/${project}/endpoints`)).body.endpoints.map((e: Json) => e.id), [internalId]);
  const projects = await call('GET', `${EP}/endpoints/${internalId}/projects`);
  assert.deepEqual(projects.body.projects.map((p: Json) => p.id), [project]);
  assert.equal(projects.body.projects[0].name, 'member-project');
  assert.deepEqual((await call('GET', `${EP}/endpoints/${publicId}/projects`)).body.projects, []);
  assert.deepEqual(await catalogEndpointIds(t.memberToken), [internalId]);

  assert.equal(await associate(`${EP}/projects/no-such-project/endpoints/${internalId}`), 404);
  assert.equal(await associate(`${EP}/projects/${project}/endpoints/no-such-endpoint`), 404);
  assert.equal((await call('GET', `${EP}/projects/no-such-project/endpoints`)).status, 404);
  assert.equal((await call('GET', `${EP}/endpoints/no-such-endpoint/projects`)).status, 404);
  assert.equal(await associate(link, t.memberToken), 403);
  assert.equal((await call('DELETE', link, undefined, t.memberToken)).status, 403);
  assert.equal((await call('GET', `${EP}/projects/${project}/endpoints`, undefined, t.memberToken)).status, 403);

  assert.equal((await call('DELETE', link)).status, 204);
  assert.equal((await call('HEAD', link)).status, 404);
  assert.equal((await call('DELETE', link)).status, 404);
  assert.ok((await catalogEndpointIds(t.memberToken)).includes(publicId));
});

test('deleting an endpoint removes its project associations', async () => {
  const { internalId } = await serviceWithEndpoints();
  assert.equal(await associate(`${EP}/projects/${t.memberProjectId}/endpoints/${internalId}`), 204);
  assert.equal((await call('DELETE', `/v3/endpoints/${internalId}`)).status, 204);
  const rows = await t.identity.db.selectFrom('project_endpoint').selectAll().where('endpoint_id', '=', internalId).execute();
  assert.deepEqual(rows, []);
});
