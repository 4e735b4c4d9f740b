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

test('policies: create, show, list (with a type filter), update, delete', async () => {
  const created = await call('POST', '/v3/policies', { policy: { blob: '{"rule": "x"}', type: 'application/json', owner: 'ops' } });
  assert.equal(created.status, 201);
  const policy = created.body.policy as Json;
  assert.match(policy.id, /^[0-9a-f]{32}$/);
  assert.deepEqual(policy, { id: policy.id, blob: '{"rule": "x"}', type: 'application/json', owner: 'ops', links: { self: `http://identity.test:5000/v3/policies/${policy.id}` } });
  assert.deepEqual((await call('GET', `/v3/policies/${policy.id}`)).body.policy, policy);

  const other = (await call('POST', '/v3/policies', { policy: { blob: 'b', type: 'text/plain' } })).body.policy as Json;
  const all = await call('GET', '/v3/policies');
  assert.equal(all.status, 200);
  assert.deepEqual(new Set(all.body.policies.map((p: Json) => p.id)), new Set([policy.id, other.id]));
  assert.equal(all.body.links.self, 'http://identity.test:5000/v3/policies');
  assert.deepEqual((await call('GET', '/v3/policies?type=text/plain')).body.policies.map((p: Json) => p.id), [other.id]);

  const updated = await call('PATCH', `/v3/policies/${policy.id}`, { policy: { type: 'updated-type' } });
  assert.equal(updated.status, 200);
  assert.equal(updated.body.policy.type, 'updated-type');
  assert.equal(updated.body.policy.blob, '{"rule": "x"}');
  assert.equal(updated.body.policy.owner, 'ops');
  assert.deepEqual((await call('GET', `/v3/policies/${policy.id}`)).body.policy, updated.body.policy);

  assert.equal((await call('DELETE', `/v3/policies/${policy.id}`)).status, 204);
  const gone = await call('GET', `/v3/policies/${policy.id}`);
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.message, `Could not find policy: ${policy.id}.`);
  assert.equal((await call('DELETE', `/v3/policies/${policy.id}`)).status, 404);
});

test('policies: bad input is 400, members are refused (403)', async () => {
  assert.equal((await call('POST', '/v3/policies', { policy: { type: 'no-blob' } })).status, 400);
  assert.equal((await call('POST', '/v3/policies', { policy: { blob: 'no type' } })).status, 400);
  assert.equal((await call('POST', '/v3/policies', { policy: { blob: {}, type: 't' } })).status, 400);
  assert.equal((await call('POST', '/v3/policies', { policy: { blob: 'b', type: 'x'.repeat(256) } })).status, 400);
  const policy = (await call('POST', '/v3/policies', { policy: { blob: 'b', type: 't' } })).body.policy as Json;
  assert.equal((await call('PATCH', `/v3/policies/${policy.id}`, { policy: {} })).status, 400);
  assert.equal((await call('PATCH', `/v3/policies/${policy.id}`, { policy: { id: 'another' } })).status, 400);
  assert.equal((await call('PATCH', '/v3/policies/nope', { policy: { type: 't' } })).status, 404);

  const m = t.memberToken;
  assert.equal((await call('GET', '/v3/policies', undefined, m)).status, 403);
  assert.equal((await call('GET', `/v3/policies/${policy.id}`, undefined, m)).status, 403);
  assert.equal((await call('POST', '/v3/policies', { policy: { blob: 'b', type: 't' } }, m)).status, 403);
  assert.equal((await call('PATCH', `/v3/policies/${policy.id}`, { policy: { type: 'u' } }, m)).status, 403);
  assert.equal((await call('DELETE', `/v3/policies/${policy.id}`, undefined, m)).status, 403);
  assert.equal((await call('GET', `/v3/policies/${policy.id}`)).body.policy.type, 't');
});

test('consumers: the secret is returned once, stored hashed, and cannot be changed', async () => {
  const created = await call('POST', '/v3/OS-OAUTH1/consumers', { consumer: { description: 'my app' } });
  assert.equal(created.status, 201);
  const consumer = created.body.consumer as Json;
  assert.match(consumer.secret, /^[0-9a-f]{32}$/);
  assert.equal(consumer.description, 'my app');
  assert.deepEqual(consumer.links, { self: `http://identity.test:5000/v3/OS-OAUTH1/consumers/${consumer.id}` });

  const shown = await call('GET', `/v3/OS-OAUTH1/consumers/${consumer.id}`);
  assert.equal(shown.status, 200);
  const { secret, ...withoutSecret } = consumer;
  assert.deepEqual(shown.body.consumer, withoutSecret);
  const row = await t.identity.db.selectFrom('consumer').selectAll().where('id', '=', consumer.id).executeTakeFirstOrThrow();
  assert.notEqual(row.secret_hash, secret);
  assert.equal(await t.identity.hasher.verify(row.secret_hash, secret as string), true);

  const listed = await call('GET', '/v3/OS-OAUTH1/consumers');
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body.consumers.find((c: Json) => c.id === consumer.id), withoutSecret);
  assert.ok(!listed.body.consumers.some((c: Json) => 'secret' in c));

  assert.equal((await call('PATCH', `/v3/OS-OAUTH1/consumers/${consumer.id}`, { consumer: { secret: 'mine' } })).status, 400);
  assert.equal((await call('PATCH', `/v3/OS-OAUTH1/consumers/${consumer.id}`, { consumer: {} })).status, 400);
  assert.equal((await call('PATCH', `/v3/OS-OAUTH1/consumers/${consumer.id}`, { consumer: { description: 7 } })).status, 400);
  const updated = await call('PATCH', `/v3/OS-OAUTH1/consumers/${consumer.id}`, { consumer: { description: 'renamed' } });
  assert.equal(updated.status, 200);
  assert.equal(updated.body.consumer.description, 'renamed');
  assert.equal('secret' in updated.body.consumer, false);
  assert.equal((await call('GET', `/v3/OS-OAUTH1/consumers/${consumer.id}`)).body.consumer.description, 'renamed');
  const after = await t.identity.db.selectFrom('consumer').select('secret_hash').where('id', '=', consumer.id).executeTakeFirstOrThrow();
  assert.equal(after.secret_hash, row.secret_hash);

  assert.equal((await call('DELETE', `/v3/OS-OAUTH1/consumers/${consumer.id}`)).status, 204);
  assert.equal((await call('GET', `/v3/OS-OAUTH1/consumers/${consumer.id}`)).status, 404);
  assert.equal((await call('DELETE', `/v3/OS-OAUTH1/consumers/${consumer.id}`)).status, 404);
  assert.equal((await call('PATCH', `/v3/OS-OAUTH1/consumers/${consumer.id}`, { consumer: { description: 'x' } })).status, 404);
});

test('consumers: made from an empty body; members are refused (403)', async () => {
  const res = await t.app.inject({ method: 'POST', url: '/v3/OS-OAUTH1/consumers', headers: { 'x-auth-token': t.adminToken } });
  assert.equal(res.statusCode, 201, res.body);
  const consumer = (JSON.parse(res.body) as Json).consumer as Json;
  assert.equal(consumer.description, '');
  assert.equal(typeof consumer.secret, 'string');
  assert.equal((await call('POST', '/v3/OS-OAUTH1/consumers', { consumer: { description: 3 } })).status, 400);

  const m = t.memberToken;
  assert.equal((await call('GET', '/v3/OS-OAUTH1/consumers', undefined, m)).status, 403);
  assert.equal((await call('GET', `/v3/OS-OAUTH1/consumers/${consumer.id}`, undefined, m)).status, 403);
  assert.equal((await call('POST', '/v3/OS-OAUTH1/consumers', { consumer: {} }, m)).status, 403);
  assert.equal((await call('PATCH', `/v3/OS-OAUTH1/consumers/${consumer.id}`, { consumer: { description: 'x' } }, m)).status, 403);
  assert.equal((await call('DELETE', `/v3/OS-OAUTH1/consumers/${consumer.id}`, undefined, m)).status, 403);
  assert.equal((await call('GET', `/v3/OS-OAUTH1/consumers/${consumer.id}`)).status, 200);
});
