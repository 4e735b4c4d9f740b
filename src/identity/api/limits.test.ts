import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestIdentity, type InjectMethod, type TestIdentity, type TestReply } from '../testing.js';

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

const unique = (prefix: string): string => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;

async function createService(): Promise<string> {
  const res = await call('POST', '/v3/services', { service: { type: unique('type'), name: unique('svc') } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.service.id as string;
}

async function createRegion(): Promise<string> {
  const res = await call('POST', '/v3/regions', { region: { id: unique('region') } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.region.id as string;
}

async function registerLimits(...items: Json[]): Promise<Json[]> {
  const res = await call('POST', '/v3/registered_limits', { registered_limits: items });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.registered_limits as Json[];
}

async function createLimits(...items: Json[]): Promise<Json[]> {
  const res = await call('POST', '/v3/limits', { limits: items });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.limits as Json[];
}

const ids = (items: Json[]): string[] => items.map((i) => i.id as string);

test('limits/model: the flat model, for any token', async () => {
  for (const token of [t.adminToken, t.memberToken]) {
    const res = await call('GET', '/v3/limits/model', undefined, token);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { model: { name: 'flat', description: 'Limit enforcement and validation does not take project hierarchy into consideration.' } });
  }
  assert.equal((await call('GET', '/v3/limits/model', undefined, '')).status, 401);
});

test('registered limits: create several, show, list, filter, update and delete', async () => {
  const service = await createService();
  const [snapshot, volume] = await registerLimits(
    { service_id: service, region_id: 'RegionOne', resource_name: 'snapshot', default_limit: 5 },
    { service_id: service, resource_name: 'volume', default_limit: 10, description: 'Number of volumes' },
  );
  assert.ok(snapshot && volume, 'both registered limits are returned');
  assert.deepEqual(Object.keys(snapshot).sort(), ['default_limit', 'description', 'id', 'links', 'region_id', 'resource_name', 'service_id']);
  assert.match(snapshot.id, /^[0-9a-f]{32}$/);
  assert.deepEqual(
    { ...snapshot, id: undefined },
    { id: undefined, service_id: service, region_id: 'RegionOne', resource_name: 'snapshot', default_limit: 5, description: null, links: { self: `http://identity.test:5000/v3/registered_limits/${snapshot.id}` } },
  );
  assert.equal(volume.region_id, null);
  assert.equal(volume.description, 'Number of volumes');

  const shown = await call('GET', `/v3/registered_limits/${volume.id}`);
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.body, { registered_limit: volume });

  const list = await call('GET', '/v3/registered_limits');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.links, { self: 'http://identity.test:5000/v3/registered_limits', previous: null, next: null });
  assert.ok(ids(list.body.registered_limits).includes(snapshot.id) && ids(list.body.registered_limits).includes(volume.id), 'both are listed');
  const byService = await call('GET', `/v3/registered_limits?service_id=${service}`);
  assert.deepEqual(ids(byService.body.registered_limits).sort(), [snapshot.id, volume.id].sort());
  assert.deepEqual(ids((await call('GET', `/v3/registered_limits?service_id=${service}&resource_name=volume`)).body.registered_limits), [volume.id]);
  assert.deepEqual(ids((await call('GET', `/v3/registered_limits?service_id=${service}&region_id=RegionOne`)).body.registered_limits), [snapshot.id]);

  const region = await createRegion();
  const updated = await call('PATCH', `/v3/registered_limits/${snapshot.id}`, { registered_limit: { region_id: region, default_limit: 7, description: 'Number of snapshots' } });
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
  assert.deepEqual(updated.body.registered_limit, { ...snapshot, region_id: region, default_limit: 7, description: 'Number of snapshots' });
  assert.deepEqual((await call('GET', `/v3/registered_limits/${snapshot.id}`)).body.registered_limit, updated.body.registered_limit);
  const cleared = await call('PATCH', `/v3/registered_limits/${snapshot.id}`, { registered_limit: { region_id: null, description: null } });
  assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
  assert.equal(cleared.body.registered_limit.region_id, null);
  assert.equal(cleared.body.registered_limit.description, null);
  // Naming the values it already has is not a conflict with itself (Keystone says 409 here).
  const same = await call('PATCH', `/v3/registered_limits/${snapshot.id}`, { registered_limit: { service_id: service, resource_name: 'snapshot', region_id: null } });
  assert.equal(same.status, 200, JSON.stringify(same.body));

  for (const r of [snapshot, volume]) assert.equal((await call('DELETE', `/v3/registered_limits/${r.id}`)).status, 204);
  const gone = await call('GET', `/v3/registered_limits/${volume.id}`);
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.message, `Could not find registered limit for ${volume.id}.`);
  assert.equal((await call('PATCH', `/v3/registered_limits/${volume.id}`, { registered_limit: { default_limit: 1 } })).status, 404);
  assert.equal((await call('DELETE', `/v3/registered_limits/${volume.id}`)).status, 404);
});

test('registered limits: duplicates are 409, in one request, across requests and by update', async () => {
  const service = await createService();
  const item = { service_id: service, resource_name: 'cores', default_limit: 20 };
  const inOne = await call('POST', '/v3/registered_limits', { registered_limits: [item, item] });
  assert.equal(inOne.status, 409);
  assert.equal(inOne.body.error.message, 'Conflict occurred attempting to store registered_limit - Duplicate entry.');
  assert.deepEqual((await call('GET', `/v3/registered_limits?service_id=${service}`)).body.registered_limits, [], 'nothing of a failed request is kept');

  const [cores] = await registerLimits(item);
  assert.equal((await call('POST', '/v3/registered_limits', { registered_limits: [item] })).status, 409, 'no region twice');
  const [regional] = await registerLimits({ ...item, region_id: 'RegionOne' });
  assert.equal((await call('POST', '/v3/registered_limits', { registered_limits: [{ ...item, region_id: 'RegionOne' }] })).status, 409, 'same region twice');
  // Moving the regional one to no region collides with the first.
  assert.equal((await call('PATCH', `/v3/registered_limits/${regional?.id}`, { registered_limit: { region_id: null } })).status, 409);
  assert.equal((await call('PATCH', `/v3/registered_limits/${cores?.id}`, { registered_limit: { resource_name: 'ram' } })).status, 200);
  assert.equal((await call('PATCH', `/v3/registered_limits/${regional?.id}`, { registered_limit: { region_id: null } })).status, 200);
});

test('registered limits: bad input is 400 naming the field; unknown service and region are 400 as in Keystone', async () => {
  const service = await createService();
  const good = { service_id: service, resource_name: 'instances', default_limit: 10 };
  const cases: [unknown, string][] = [
    [{}, 'registered_limits'],
    [{ registered_limits: [] }, 'registered_limits'],
    [{ registered_limits: good }, 'registered_limits'],
    [{ registered_limits: [good], extra: 1 }, 'extra'],
    [{ registered_limits: [{ resource_name: 'x', default_limit: 1 }] }, 'service_id'],
    [{ registered_limits: [{ service_id: service, default_limit: 1 }] }, 'resource_name'],
    [{ registered_limits: [{ service_id: service, resource_name: 'x' }] }, 'default_limit'],
    [{ registered_limits: [{ ...good, default_limit: 'ten' }] }, 'default_limit'],
    [{ registered_limits: [{ ...good, default_limit: -2 }] }, 'default_limit'],
    [{ registered_limits: [{ ...good, default_limit: 2 ** 31 }] }, 'default_limit'],
    [{ registered_limits: [{ ...good, default_limit: 1.5 }] }, 'default_limit'],
    [{ registered_limits: [{ ...good, resource_name: 123 }] }, 'resource_name'],
    [{ registered_limits: [{ ...good, resource_name: '' }] }, 'resource_name'],
    [{ registered_limits: [{ ...good, resource_name: 'x'.repeat(256) }] }, 'resource_name'],
    [{ registered_limits: [{ ...good, region_id: '' }] }, 'region_id'],
    [{ registered_limits: [{ ...good, description: 7 }] }, 'description'],
    [{ registered_limits: [{ ...good, id: 'mine' }] }, 'id'],
    [{ registered_limits: [{ ...good, service_id: 'not-a-uuid' }] }, 'service_id'],
    [{ registered_limits: [{ ...good, service_id: 'f'.repeat(32) }] }, 'service_id'],
    [{ registered_limits: [{ ...good, region_id: 'no-such-region' }] }, 'region_id'],
  ];
  for (const [payload, field] of cases) {
    const res = await call('POST', '/v3/registered_limits', payload);
    assert.equal(res.status, 400, JSON.stringify(payload));
    assert.equal(res.body.error.code, 400);
    assert.ok(String(res.body.error.message).includes(field), `the message names ${field}: ${res.body.error.message}`);
  }
  const unknown = await call('POST', '/v3/registered_limits', { registered_limits: [{ ...good, service_id: 'f'.repeat(32) }] });
  assert.match(unknown.body.error.message, /^Expecting to find service_id in registered_limit\./);
  assert.deepEqual((await call('GET', `/v3/registered_limits?service_id=${service}`)).body.registered_limits, [], 'nothing was created');

  const [row] = await registerLimits(good);
  const updates: [unknown, string][] = [
    [{ registered_limit: { default_limit: 'x' } }, 'default_limit'],
    [{ registered_limit: { service_id: 'f'.repeat(32) } }, 'service_id'],
    [{ registered_limit: { region_id: 'no-such-region' } }, 'region_id'],
    [{ registered_limit: { region_id: '' } }, 'region_id'],
    [{ registered_limit: { description: 123 } }, 'description'],
    [{ registered_limit: { resource_name: null } }, 'resource_name'],
    [{ registered_limit: { id: 'other' } }, 'id'],
    [{}, 'registered_limit'],
  ];
  for (const [payload, field] of updates) {
    const res = await call('PATCH', `/v3/registered_limits/${row?.id}`, payload);
    assert.equal(res.status, 400, JSON.stringify(payload));
    assert.ok(String(res.body.error.message).includes(field), `the message names ${field}: ${res.body.error.message}`);
  }
  assert.deepEqual((await call('GET', `/v3/registered_limits/${row?.id}`)).body.registered_limit, row, 'a refused update changes nothing');
});

test('limits: create for a project and a domain, show, list, filter, update and delete', async () => {
  const service = await createService();
  await registerLimits(
    { service_id: service, region_id: 'RegionOne', resource_name: 'snapshot', default_limit: 5 },
    { service_id: service, resource_name: 'volume', default_limit: 10 },
  );
  const domain = (await call('POST', '/v3/domains', { domain: { name: unique('domain') } })).body.domain as Json;
  const [snapshot, volume] = await createLimits(
    { service_id: service, project_id: t.memberProjectId, region_id: 'RegionOne', resource_name: 'snapshot', resource_limit: 5 },
    { service_id: service, domain_id: domain.id, resource_name: 'volume', resource_limit: 10, description: 'Volumes of the domain' },
  );
  assert.ok(snapshot && volume, 'both limits are returned');
  assert.deepEqual(Object.keys(snapshot).sort(), ['description', 'domain_id', 'id', 'links', 'project_id', 'region_id', 'resource_limit', 'resource_name', 'service_id']);
  assert.deepEqual(
    { ...snapshot, id: undefined },
    {
      id: undefined,
      project_id: t.memberProjectId,
      domain_id: null,
      service_id: service,
      region_id: 'RegionOne',
      resource_name: 'snapshot',
      resource_limit: 5,
      description: null,
      links: { self: `http://identity.test:5000/v3/limits/${snapshot.id}` },
    },
  );
  assert.equal(volume.project_id, null);
  assert.equal(volume.domain_id, domain.id);
  assert.equal(volume.region_id, null);

  const shown = await call('GET', `/v3/limits/${snapshot.id}`);
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.body, { limit: snapshot });

  const list = await call('GET', `/v3/limits?service_id=${service}`);
  assert.equal(list.status, 200);
  assert.deepEqual(ids(list.body.limits).sort(), [snapshot.id, volume.id].sort());
  assert.deepEqual(list.body.links, { self: `http://identity.test:5000/v3/limits?service_id=${service}`, previous: null, next: null });
  const filtered = async (query: string): Promise<string[]> => ids((await call('GET', `/v3/limits?service_id=${service}&${query}`)).body.limits as Json[]);
  assert.deepEqual(await filtered(`project_id=${t.memberProjectId}`), [snapshot.id]);
  assert.deepEqual(await filtered(`domain_id=${domain.id}`), [volume.id]);
  assert.deepEqual(await filtered('region_id=RegionOne'), [snapshot.id]);
  assert.deepEqual(await filtered('resource_name=volume'), [volume.id]);
  assert.deepEqual(await filtered('resource_name=nothing'), []);

  const updated = await call('PATCH', `/v3/limits/${snapshot.id}`, { limit: { resource_limit: 8, description: 'Snapshots of the member project' } });
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
  assert.deepEqual(updated.body.limit, { ...snapshot, resource_limit: 8, description: 'Snapshots of the member project' });
  // Keystone ignores a limit of 0 and an empty description here; they are applied.
  const zero = await call('PATCH', `/v3/limits/${snapshot.id}`, { limit: { resource_limit: 0, description: null } });
  assert.equal(zero.body.limit.resource_limit, 0);
  assert.equal(zero.body.limit.description, null);
  assert.deepEqual((await call('GET', `/v3/limits/${snapshot.id}`)).body.limit, zero.body.limit);
  for (const payload of [{ limit: { resource_limit: -2 } }, { limit: { resource_name: 'other' } }, { limit: { resource_limit: '3' } }, {}]) {
    const res = await call('PATCH', `/v3/limits/${snapshot.id}`, payload);
    assert.equal(res.status, 400, JSON.stringify(payload));
  }
  assert.deepEqual((await call('GET', `/v3/limits/${snapshot.id}`)).body.limit, zero.body.limit, 'a refused update changes nothing');

  for (const l of [snapshot, volume]) assert.equal((await call('DELETE', `/v3/limits/${l.id}`)).status, 204);
  const gone = await call('GET', `/v3/limits/${snapshot.id}`);
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.message, `Could not find limit for ${snapshot.id}.`);
  assert.equal((await call('PATCH', `/v3/limits/${snapshot.id}`, { limit: { resource_limit: 1 } })).status, 404);
  assert.equal((await call('DELETE', `/v3/limits/${snapshot.id}`)).status, 404);
});

test('limits: a project_id naming a domain makes a domain limit', async () => {
  const service = await createService();
  await registerLimits({ service_id: service, resource_name: 'ports', default_limit: 50 });
  const domain = (await call('POST', '/v3/domains', { domain: { name: unique('domain') } })).body.domain as Json;
  const [limit] = await createLimits({ service_id: service, project_id: domain.id, resource_name: 'ports', resource_limit: 60 });
  assert.equal(limit?.project_id, null);
  assert.equal(limit?.domain_id, domain.id);
});

test('limits: needs a registered limit (403), once per project (409), and valid input (400)', async () => {
  const service = await createService();
  await registerLimits({ service_id: service, resource_name: 'images', default_limit: 10 }, { service_id: service, region_id: 'RegionOne', resource_name: 'images', default_limit: 5 });
  const good = { service_id: service, project_id: t.memberProjectId, resource_name: 'images', resource_limit: 20 };

  const orphan = await call('POST', '/v3/limits', { limits: [{ ...good, resource_name: 'unregistered' }] });
  assert.equal(orphan.status, 403);
  assert.equal(orphan.body.error.message, 'Unable to create a limit that has no corresponding registered limit.');
  const otherRegion = await createRegion();
  assert.equal((await call('POST', '/v3/limits', { limits: [{ ...good, region_id: otherRegion }] })).status, 403, 'the region must match too');

  const twice = await call('POST', '/v3/limits', { limits: [good, good] });
  assert.equal(twice.status, 409);
  assert.equal(twice.body.error.message, 'Conflict occurred attempting to store limit - Duplicate entry.');
  assert.deepEqual((await call('GET', `/v3/limits?service_id=${service}`)).body.limits, [], 'nothing of a failed request is kept');
  await createLimits(good, { ...good, region_id: 'RegionOne' }, { ...good, project_id: t.adminProjectId });
  assert.equal((await call('POST', '/v3/limits', { limits: [good] })).status, 409);

  const cases: [unknown, string][] = [
    [{}, 'limits'],
    [{ limits: [] }, 'limits'],
    [{ limits: [{ ...good, resource_limit: -2 }] }, 'resource_limit'],
    [{ limits: [{ ...good, resource_limit: 'many' }] }, 'resource_limit'],
    [{ limits: [{ ...good, resource_limit: undefined }] }, 'resource_limit'],
    [{ limits: [{ ...good, resource_name: '' }] }, 'resource_name'],
    [{ limits: [{ ...good, service_id: undefined }] }, 'service_id'],
    [{ limits: [{ ...good, project_id: 'not valid!' }] }, 'project_id'],
    [{ limits: [{ ...good, default_limit: 3 }] }, 'default_limit'],
    [{ limits: [{ ...good, project_id: undefined }] }, 'project_id'],
    [{ limits: [{ ...good, domain_id: t.adminProjectId }] }, 'domain_id'],
    [{ limits: [{ ...good, project_id: 'f'.repeat(32) }] }, 'project_id'],
    [{ limits: [{ ...good, project_id: undefined, domain_id: t.adminProjectId }] }, 'domain_id'],
    [{ limits: [{ ...good, service_id: 'f'.repeat(32) }] }, 'service_id'],
    [{ limits: [{ ...good, region_id: 'no-such-region' }] }, 'region_id'],
  ];
  for (const [payload, field] of cases) {
    const res = await call('POST', '/v3/limits', payload);
    assert.equal(res.status, 400, JSON.stringify(payload));
    assert.ok(String(res.body.error.message).includes(field), `the message names ${field}: ${res.body.error.message}`);
  }
});

test('registered limits that project limits use cannot be updated or deleted (403, as Keystone)', async () => {
  const service = await createService();
  const [registered] = await registerLimits({ service_id: service, resource_name: 'gigabytes', default_limit: 1000 });
  const [limit] = await createLimits({ service_id: service, project_id: t.memberProjectId, resource_name: 'gigabytes', resource_limit: 2000 });
  const message = `Unable to update or delete registered limit ${registered?.id} because there are project limits associated with it.`;
  for (const change of [{ default_limit: 500 }, { description: 'only the description' }, { resource_name: 'other' }]) {
    const res = await call('PATCH', `/v3/registered_limits/${registered?.id}`, { registered_limit: change });
    assert.equal(res.status, 403, JSON.stringify(change));
    assert.equal(res.body.error.message, message);
  }
  const del = await call('DELETE', `/v3/registered_limits/${registered?.id}`);
  assert.equal(del.status, 403);
  assert.equal(del.body.error.message, message);
  assert.equal((await call('DELETE', `/v3/limits/${limit?.id}`)).status, 204);
  assert.equal((await call('PATCH', `/v3/registered_limits/${registered?.id}`, { registered_limit: { default_limit: 500 } })).status, 200);
  assert.equal((await call('DELETE', `/v3/registered_limits/${registered?.id}`)).status, 204);
});

test('limits: a member reads registered limits and their own project limits only, and writes nothing', async () => {
  const service = await createService();
  const [registered] = await registerLimits({ service_id: service, resource_name: 'networks', default_limit: 3 });
  const domain = (await call('POST', '/v3/domains', { domain: { name: unique('domain') } })).body.domain as Json;
  const [own, other, ofDomain] = await createLimits(
    { service_id: service, project_id: t.memberProjectId, resource_name: 'networks', resource_limit: 4 },
    { service_id: service, project_id: t.adminProjectId, resource_name: 'networks', resource_limit: 5 },
    { service_id: service, domain_id: domain.id, resource_name: 'networks', resource_limit: 6 },
  );
  const member = (method: InjectMethod, url: string, payload?: unknown): Promise<TestReply> => call(method, url, payload, t.memberToken);

  assert.equal((await member('GET', `/v3/registered_limits/${registered?.id}`)).status, 200);
  assert.deepEqual(ids((await member('GET', `/v3/registered_limits?service_id=${service}`)).body.registered_limits), [registered?.id]);

  const seen = (await member('GET', '/v3/limits')).body.limits as Json[];
  assert.ok(seen.every((l) => l.project_id === t.memberProjectId), 'only the limits of the project of the token');
  assert.deepEqual(ids((await member('GET', `/v3/limits?service_id=${service}`)).body.limits), [own?.id]);
  assert.deepEqual(ids((await member('GET', `/v3/limits?project_id=${t.adminProjectId}`)).body.limits), [], 'a filter does not widen the view');
  assert.deepEqual(ids((await call('GET', `/v3/limits?service_id=${service}`)).body.limits).sort(), ids([own ?? {}, other ?? {}, ofDomain ?? {}]).sort(), 'the admin sees all');
  assert.equal((await member('GET', `/v3/limits/${own?.id}`)).status, 200);
  assert.equal((await member('GET', `/v3/limits/${other?.id}`)).status, 403);
  assert.equal((await member('GET', `/v3/limits/${ofDomain?.id}`)).status, 403);
  assert.equal((await member('GET', '/v3/limits/no-such-limit')).status, 403, 'a member learns nothing of other ids');
  assert.equal((await call('GET', '/v3/limits/no-such-limit')).status, 404);

  const refused: [InjectMethod, string, unknown][] = [
    ['POST', '/v3/registered_limits', { registered_limits: [{ service_id: service, resource_name: 'routers', default_limit: 1 }] }],
    ['PATCH', `/v3/registered_limits/${registered?.id}`, { registered_limit: { description: 'mine' } }],
    ['DELETE', `/v3/registered_limits/${registered?.id}`, undefined],
    ['POST', '/v3/limits', { limits: [{ service_id: service, project_id: t.memberProjectId, resource_name: 'networks', resource_limit: 100 }] }],
    ['PATCH', `/v3/limits/${own?.id}`, { limit: { resource_limit: 100 } }],
    ['DELETE', `/v3/limits/${own?.id}`, undefined],
  ];
  for (const [method, url, payload] of refused) {
    const res = await member(method, url, payload);
    assert.equal(res.status, 403, `${method} ${url}`);
    assert.equal(res.body.error.code, 403);
  }
  assert.equal((await call('GET', `/v3/limits/${own?.id}`)).body.limit.resource_limit, 4, 'nothing changed');
  assert.equal((await call('GET', `/v3/registered_limits?service_id=${service}`)).body.registered_limits.length, 1, 'nothing created');
  for (const l of [own, other, ofDomain]) assert.equal((await call('DELETE', `/v3/limits/${l?.id}`)).status, 204);
});

test('limits: a domain-scoped reader sees the limits of the domain and of its projects', async () => {
  const service = await createService();
  await registerLimits({ service_id: service, resource_name: 'volumes', default_limit: 3 });
  const domain = (await call('POST', '/v3/domains', { domain: { name: unique('domain') } })).body.domain as Json;
  const project = (await call('POST', '/v3/projects', { project: { name: unique('project'), domain_id: domain.id } })).body.project as Json;
  const user = (await call('POST', '/v3/users', { user: { name: unique('user'), password: 'reader-secret', domain_id: domain.id } })).body.user as Json;
  const reader = ((await call('GET', '/v3/roles?name=reader')).body.roles as Json[])[0]?.id as string;
  assert.equal((await call('PUT', `/v3/domains/${domain.id}/users/${user.id}/roles/${reader}`)).status, 204);
  const auth = await t.app.inject({
    method: 'POST',
    url: '/v3/auth/tokens',
    payload: { auth: { identity: { methods: ['password'], password: { user: { id: user.id, password: 'reader-secret' } } }, scope: { domain: { id: domain.id } } } },
  });
  assert.equal(auth.statusCode, 201, auth.body);
  const token = String(auth.headers['x-subject-token']);
  const [inProject, ofDomain, elsewhere] = await createLimits(
    { service_id: service, project_id: project.id, resource_name: 'volumes', resource_limit: 4 },
    { service_id: service, domain_id: domain.id, resource_name: 'volumes', resource_limit: 5 },
    { service_id: service, project_id: t.memberProjectId, resource_name: 'volumes', resource_limit: 6 },
  );
  const seen = ids((await call('GET', '/v3/limits', undefined, token)).body.limits as Json[]);
  assert.deepEqual(seen.sort(), [inProject?.id, ofDomain?.id].sort());
  assert.equal((await call('GET', `/v3/limits/${inProject?.id}`, undefined, token)).status, 200);
  assert.equal((await call('GET', `/v3/limits/${ofDomain?.id}`, undefined, token)).status, 200);
  assert.equal((await call('GET', `/v3/limits/${elsewhere?.id}`, undefined, token)).status, 403);
});

test('limits go with their project or domain, and registered limits with their service', async () => {
  const service = await createService();
  const [registered] = await registerLimits({ service_id: service, resource_name: 'floating_ips', default_limit: 2 });
  const project = (await call('POST', '/v3/projects', { project: { name: unique('project'), domain_id: 'default' } })).body.project as Json;
  const [doomed] = await createLimits({ service_id: service, project_id: project.id, resource_name: 'floating_ips', resource_limit: 3 });
  const [kept] = await createLimits({ service_id: service, project_id: t.memberProjectId, resource_name: 'floating_ips', resource_limit: 4 });
  assert.equal((await call('DELETE', `/v3/projects/${project.id}`)).status, 204);
  assert.equal((await call('GET', `/v3/limits/${doomed?.id}`)).status, 404, "the deleted project's limit is gone");
  assert.equal((await call('GET', `/v3/limits/${kept?.id}`)).status, 200);

  const domain = (await call('POST', '/v3/domains', { domain: { name: unique('domain') } })).body.domain as Json;
  const [ofDomain] = await createLimits({ service_id: service, domain_id: domain.id, resource_name: 'floating_ips', resource_limit: 5 });
  assert.equal((await call('PATCH', `/v3/domains/${domain.id}`, { domain: { enabled: false } })).status, 200);
  assert.equal((await call('DELETE', `/v3/domains/${domain.id}`)).status, 204);
  assert.equal((await call('GET', `/v3/limits/${ofDomain?.id}`)).status, 404, "the deleted domain's limit is gone");

  assert.equal((await call('DELETE', `/v3/services/${service}`)).status, 204);
  assert.equal((await call('GET', `/v3/registered_limits/${registered?.id}`)).status, 404, "the deleted service's registered limit is gone");
  assert.equal((await call('GET', `/v3/limits/${kept?.id}`)).status, 404, 'and so are the limits on it');
});
