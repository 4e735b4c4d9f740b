import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
});
after(async () => {
  await t.close();
});

test('GET / lists v2.0 then v2.1 with its microversion range, without a token', async () => {
  const res = await t.request('GET', '//');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const [legacy, v] = res.body.versions;
  assert.equal(legacy.id, 'v2.0', 'the legacy version first');
  assert.equal(legacy.status, 'SUPPORTED', 'legacy status');
  assert.equal(v.id, 'v2.1', 'id');
  assert.equal(v.version, '2.93', 'max');
  assert.equal(v.min_version, '2.1', 'min');
  assert.equal(v.links[0].href, 'http://compute.test:8774/v2.1/', 'self link');
});

test('GET /v2 describes the legacy version', async () => {
  const res = await t.request('GET', '//v2');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.version.id, 'v2.0', 'id');
  assert.equal(res.body.version.links[0].href, 'http://compute.test:8774/v2/', 'self link');
});

test('GET /v2.1 describes the version; the microversion is negotiated and echoed', async () => {
  const res = await t.request('GET', '', { version: '2.60' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.version.status, 'CURRENT', 'status');
  assert.equal(res.headers['openstack-api-version'], 'compute 2.60', 'echoed');
  assert.equal(res.headers['x-openstack-nova-api-version'], '2.60', 'legacy header');
  const latest = await t.request('GET', '', { version: 'latest' });
  assert.equal(latest.headers['openstack-api-version'], 'compute 2.93', 'latest is 2.93');
  const legacy = await t.request('GET', '', { headers: { 'X-OpenStack-Nova-API-Version': '2.10' } });
  assert.equal(legacy.headers['openstack-api-version'], 'compute 2.10', 'the legacy header is honoured');
});

test('an unsupported microversion is 406, a malformed one 400', async () => {
  expectComputeError(await t.request('GET', '', { version: '2.94' }), 406, /Version 2.94 is not supported by the API/);
  expectComputeError(await t.request('GET', '', { version: '2.x' }), 400, /invalid format/);
});

test('a route that needs a token answers 401 without one, with a request id', async () => {
  const res = await t.request('GET', '/servers');
  assert.ok([401, 404].includes(res.status), `status ${res.status}`);
  assert.match(String(res.headers['x-compute-request-id']), /^req-/, 'x-compute-request-id');
});
