import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertComputeHost, insertService } from './hosts.test-util.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
  await insertComputeHost(t.compute.db, 'az-host-1');
  await insertComputeHost(t.compute.db, 'az-host-2');
  await insertComputeHost(t.compute.db, 'az-host-3', { service: { disabled: 1, disabled_reason: 'off' } });
  await insertService(t.compute.db, 'az-control', 'nova-scheduler');
});
after(async () => {
  await t.close();
});

async function zoneAggregate(name: string, zone: string, hosts: string[]): Promise<void> {
  const res = await t.request('POST', '/os-aggregates', { user: t.admin, payload: { aggregate: { name, availability_zone: zone } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  for (const host of hosts) {
    const add = await t.request('POST', `/os-aggregates/${res.body.aggregate.id}/action`, { user: t.admin, payload: { add_host: { host } } });
    assert.equal(add.status, 200, JSON.stringify(add.body));
  }
}

test('list: zones of services, internal hidden, any user', async () => {
  const res = await t.request('GET', '/os-availability-zone', { user: t.alpha });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body, { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: null }] }, 'only the default zone');
});

test('zones from aggregates; a zone with only disabled services is unavailable', async () => {
  await zoneAggregate('az-east', 'east', ['az-host-2']);
  await zoneAggregate('az-west', 'west', ['az-host-3']);
  const res = await t.request('GET', '/os-availability-zone', { user: t.alpha });
  assert.deepEqual(
    res.body.availabilityZoneInfo,
    [
      { zoneName: 'east', zoneState: { available: true }, hosts: null },
      { zoneName: 'nova', zoneState: { available: true }, hosts: null },
      { zoneName: 'west', zoneState: { available: false }, hosts: null },
    ],
    'available zones sorted, then unavailable ones',
  );
});

test('detail: admin only, hosts and their services', async () => {
  expectComputeError(await t.request('GET', '/os-availability-zone/detail', { user: t.alpha }), 403, /os-availability-zone:detail/);
  const res = await t.request('GET', '/os-availability-zone/detail', { user: t.admin });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const byName = Object.fromEntries(res.body.availabilityZoneInfo.map((z: any) => [z.zoneName, z]));
  assert.deepEqual(Object.keys(byName).sort(), ['east', 'internal', 'nova', 'west'], 'the internal zone shows in the detail');
  const service = byName.east.hosts['az-host-2']['nova-compute'];
  assert.deepEqual([service.available, service.active], [true, true], 'compute service of az-host-2');
  assert.match(service.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/, 'updated_at');
  assert.ok(byName.internal.hosts['az-control']['nova-scheduler'], 'scheduler in internal');
  assert.equal(byName.west.hosts, null, 'no hosts for an unavailable zone');
  assert.deepEqual(Object.keys(byName.nova.hosts), ['az-host-1'], 'the default zone holds the rest');
});
