import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';

let cloud: TestVolumeCloud;
before(async () => {
  cloud = await createVolumeTestCloud();
});
after(async () => {
  await cloud.close();
});

const expected = (base: string): Record<string, unknown> => ({
  id: 'v3.0',
  status: 'CURRENT',
  version: '3.70',
  min_version: '3.0',
  updated: '2022-08-31T00:00:00Z',
  links: [
    { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' },
    { rel: 'self', href: `${base}/v3/` },
  ],
  'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
});

test('GET / is 300 Multiple Choices with the v3.0 document, without a token', async () => {
  const res = await fetch(`${cloud.urls.volume}/`);
  assert.equal(res.status, 300);
  assert.deepEqual(await res.json(), { versions: [expected(cloud.urls.volume)] });
});

test('GET /v3/ and /v3 answer the same document with a microversion header, with a token as in Cinder', async () => {
  assert.equal((await fetch(`${cloud.urls.volume}/v3/`)).status, 401);
  for (const path of ['/v3/', '/v3', `/v3/${cloud.alpha.projectId}/`]) {
    const res = await fetch(`${cloud.urls.volume}${path}`, { headers: { 'OpenStack-API-Version': 'volume 3.70', 'X-Auth-Token': cloud.alpha.token } });
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('openstack-api-version'), 'volume 3.70');
    assert.deepEqual(await res.json(), { versions: [expected(cloud.urls.volume)] });
  }
  const tooNew = await fetch(`${cloud.urls.volume}/v3/`, { headers: { 'OpenStack-API-Version': 'volume 3.71', 'X-Auth-Token': cloud.alpha.token } });
  assert.equal(tooNew.status, 406);
});

test('GET /extensions lists what Stratus serves, with Cinder names and aliases', async () => {
  const res = await cloud.request('GET', '/extensions', { user: cloud.alpha });
  assert.equal(res.status, 200);
  const hosts = res.body.extensions.find((e: any) => e.name === 'Hosts');
  assert.deepEqual(hosts, { alias: 'os-hosts', description: 'Admin-only host administration.', links: [], name: 'Hosts', updated: '2011-06-29T00:00:00+00:00' });
  const aliases = res.body.extensions.map((e: any) => e.alias);
  for (const alias of ['os-quota-sets', 'qos-specs', 'os-volume-transfer', 'os-volume-type-access', 'scheduler-stats', 'os-availability-zone']) assert.ok(aliases.includes(alias), alias);
  assert.ok(aliases.includes('backups'));
});

test('os-availability-zone lists the zones of the volume services for any user; a zone whose services are all disabled is not available', async () => {
  for (let i = 0; i < 500; i++) {
    if ((await cloud.volume.db.selectFrom('service').select('id').where('binary', '=', 'cinder-volume').execute()).length >= 2) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const res = await cloud.request('GET', '/os-availability-zone', { user: cloud.alphaReader });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true } }] });
  await cloud.volume.db.updateTable('service').set({ disabled: 1 }).where('binary', '=', 'cinder-volume').execute();
  try {
    assert.deepEqual((await cloud.request('GET', '/os-availability-zone')).body, { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: false } }] });
  } finally {
    await cloud.volume.db.updateTable('service').set({ disabled: 0 }).where('binary', '=', 'cinder-volume').execute();
  }
  assert.equal((await cloud.request('GET', '/os-availability-zone', { user: null })).status, 401);
});
