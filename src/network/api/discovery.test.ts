import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EXTENSIONS } from '../extensions.js';
import { createTestNetwork, type TestNetwork } from '../testing.js';

// Facts from neutron-lib's api-ref (versions.inc, extensions.inc).

let t: TestNetwork;

before(async () => {
  t = await createTestNetwork();
});

after(async () => {
  await t.close();
});

test('GET / lists v2.0 as CURRENT without a token', async () => {
  const res = await t.request('GET', '/', { user: null, headers: { host: 'net.example:9696' } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.versions, [{ id: 'v2.0', status: 'CURRENT', links: [{ href: 'http://net.example:9696/v2.0/', rel: 'self' }] }]);
});

test('GET /v2.0 needs a token and then lists the collections', async () => {
  const anonymous = await t.request('GET', '/v2.0', { user: null });
  assert.equal(anonymous.status, 401, 'no token is 401');
  const res = await t.request('GET', '/v2.0/', { user: t.alpha });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const collections = (res.body.resources as { collection: string }[]).map((r) => r.collection);
  for (const c of ['networks', 'subnets', 'ports', 'routers', 'floatingips', 'security-groups']) assert.ok(collections.includes(c), `${c} listed in ${collections.join(',')}`);
});

test('GET /v2.0/extensions lists exactly our extensions; one by alias; an unknown alias is 404', async () => {
  const res = await t.request('GET', '/v2.0/extensions', { user: t.alpha });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual((res.body.extensions as { alias: string }[]).map((e) => e.alias).sort(), EXTENSIONS.map((e) => e.alias).sort());
  const one = await t.request('GET', '/v2.0/extensions/router', { user: t.alpha });
  assert.equal(one.status, 200, JSON.stringify(one.body));
  assert.equal(one.body.extension.alias, 'router');
  const missing = await t.request('GET', '/v2.0/extensions/no-such', { user: t.alpha });
  assert.equal(missing.status, 404, JSON.stringify(missing.body));
  assert.equal(missing.body.NeutronError.message, 'Extension with alias no-such does not exist');
});

test('an unknown URL is a Neutron 404', async () => {
  const res = await t.request('GET', '/v2.0/nothing-here', { user: t.alpha });
  assert.equal(res.status, 404, JSON.stringify(res.body));
  assert.equal(typeof res.body.NeutronError?.message, 'string', 'NeutronError body');
});
