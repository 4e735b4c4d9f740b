import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { ServiceClient } from '../core/auth/service-client.js';
import { createTestPlacement, type TestPlacement } from '../placement/testing.js';
import { PlacementApiError, PlacementClient } from './placement-client.js';

// The client against a real placement listening on loopback, found through
// the catalog, with a service user's token (as compute will use it).

let t: TestPlacement;
let placement: PlacementClient;

before(async () => {
  t = await createTestPlacement();
  await t.listen();
  const service = new ServiceClient({ authUrl: t.authUrl, username: t.serviceUser.username, password: t.serviceUser.password, projectName: t.serviceUser.projectName, region: 'RegionOne' });
  placement = new PlacementClient(service);
});

after(async () => {
  await t.close();
});

async function host(name: string, vcpus = 4): Promise<string> {
  const uuid = randomUUID();
  await placement.ensureProvider(uuid, name);
  await placement.setInventory(uuid, { VCPU: { total: vcpus }, MEMORY_MB: { total: 4096, reserved: 512 }, DISK_GB: { total: 100 } });
  return uuid;
}

test('ensureProvider creates once and returns the generation; setInventory writes only changes', async () => {
  const uuid = randomUUID();
  assert.equal(await placement.ensureProvider(uuid, 'client-cn1'), 0, 'new provider at generation 0');
  assert.equal(await placement.ensureProvider(uuid, 'client-cn1'), 0, 'idempotent');
  const g1 = await placement.setInventory(uuid, { VCPU: { total: 8, allocation_ratio: 4 } });
  assert.equal(g1, 1, 'inventory written');
  assert.equal(await placement.setInventory(uuid, { VCPU: { total: 8, allocation_ratio: 4 } }), 1, 'no write when unchanged');
  // Someone else moves the generation: the client re-reads and retries.
  const bump = await t.request('PUT', `/resource_providers/${uuid}/traits`, { user: t.admin, version: '1.39', payload: { traits: ['HW_CPU_X86_AVX2'], resource_provider_generation: 1 } });
  assert.equal(bump.status, 200, 'generation moved out of band');
  assert.equal(await placement.setInventory(uuid, { VCPU: { total: 16 } }), 3, 'written on the fresh generation');
  const usage = await placement.providerUsages(uuid);
  assert.deepEqual(usage, { generation: 3, usages: { VCPU: 0 } }, 'provider usages');
});

test('allocationCandidates groups candidates by host; claim is true, then false when full; stale consumer generations throw', async () => {
  const a = await host('client-a', 2);
  const candidates = await placement.allocationCandidates({ resources: { VCPU: 2, MEMORY_MB: 512, DISK_GB: 1 }, inTree: a });
  assert.equal(candidates.candidates.length, 1, 'one candidate in that tree');
  const mine = candidates.byProvider.get(a);
  assert.ok(mine && mine.length === 1, 'grouped by host');
  assert.deepEqual(mine[0]?.allocations, { [a]: { VCPU: 2, MEMORY_MB: 512, DISK_GB: 1 } }, 'what to claim');
  assert.deepEqual(candidates.providers[a]?.resources.MEMORY_MB, { capacity: 3584, used: 0 }, 'summary');

  const consumer = randomUUID();
  assert.equal(await placement.claim(consumer, mine[0]?.allocations ?? {}, 'proj', 'user', null), true, 'claimed');
  assert.equal(await placement.claim(randomUUID(), { [a]: { VCPU: 1 } }, 'proj', 'user', null), false, 'no room left');
  await assert.rejects(
    placement.claim(consumer, { [a]: { VCPU: 1 } }, 'proj', 'user', null),
    (err: unknown) => err instanceof PlacementApiError && err.consumerGenerationConflict && err.code === 'placement.concurrent_update',
    'a stale consumer generation throws',
  );
  const held = await placement.getAllocations(consumer);
  assert.equal(held.consumerGeneration, 1, 'consumer generation');
  // Without a generation the client reads it: an existing consumer's claim is replaced.
  assert.equal(await placement.claim(consumer, { [a]: { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 } }, 'proj', 'user'), true, 'replaced');
  assert.deepEqual(await placement.allocations(consumer), { [a]: { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 } }, 'the new claim');
  assert.equal(await placement.claim(consumer, { [a]: { VCPU: 2, MEMORY_MB: 512, DISK_GB: 1 } }, 'proj', 'user'), true, 'grown back');
  assert.equal(held.consumerType, 'INSTANCE', 'consumer type');
  assert.deepEqual(await placement.usages('proj'), { VCPU: 2, MEMORY_MB: 512, DISK_GB: 1 }, 'project usages');
  await placement.deleteAllocations(consumer);
  await placement.deleteAllocations(consumer);
  assert.deepEqual(await placement.usages('proj'), {}, 'nothing used after delete (idempotent)');
});

test('moveAllocations moves an instance to a migration consumer and back', async () => {
  const a = await host('client-move', 2);
  const instance = randomUUID();
  const migration = randomUUID();
  assert.equal(await placement.claim(instance, { [a]: { VCPU: 2 } }, 'proj-m', 'user', null), true, 'instance holds all of it');
  assert.equal(await placement.moveAllocations(instance, migration), true, 'moved');
  const mig = await placement.getAllocations(migration);
  assert.deepEqual(mig.allocations, { [a]: { VCPU: 2 } }, 'the migration holds it');
  assert.equal(mig.consumerType, 'MIGRATION', 'as a migration');
  assert.deepEqual((await placement.getAllocations(instance)).allocations, {}, 'the instance holds nothing');
  assert.equal(await placement.moveAllocations(instance, migration), true, 'already moved is true');
  assert.equal(await placement.moveAllocations(migration, instance, 'proj-m', 'user'), true, 'moved back (revert)');
  assert.equal((await placement.getAllocations(instance)).consumerType, 'INSTANCE', 'an instance again');
  assert.equal(await placement.moveAllocations(randomUUID(), randomUUID()), false, 'nothing to move');
});

test('setAggregates and setTraits (custom traits created), used by candidates filters', async () => {
  const a = await host('client-agg');
  const agg = randomUUID();
  assert.equal(await placement.setAggregates(a, [agg]), 2, 'aggregates bump the generation');
  assert.equal(await placement.setTraits(a, ['CUSTOM_CLIENT_GOLD', 'COMPUTE_STATUS_DISABLED']), 3, 'traits bump it');
  const inAgg = await placement.allocationCandidates({ resources: { VCPU: 1 }, memberOf: [agg], required: ['CUSTOM_CLIENT_GOLD'] });
  assert.deepEqual([...inAgg.byProvider.keys()], [a], 'aggregate and trait filters');
  const enabled = await placement.allocationCandidates({ resources: { VCPU: 1 }, memberOf: [agg], rootForbidden: ['COMPUTE_STATUS_DISABLED'] });
  assert.equal(enabled.candidates.length, 0, 'disabled hosts left out');
  await placement.setTraits(a, []);
  await placement.setAggregates(a, []);
  await placement.deleteProvider(a);
  await placement.deleteProvider(a);
});

test('concurrent claims through the client never overcommit', async () => {
  const a = await host('client-race', 3);
  const results = await Promise.all(Array.from({ length: 12 }, () => placement.claim(randomUUID(), { [a]: { VCPU: 1 } }, 'proj-r', 'user', null)));
  assert.equal(results.filter(Boolean).length, 3, `exactly three claims succeed: ${JSON.stringify(results)}`);
  assert.deepEqual((await placement.providerUsages(a)).usages.VCPU, 3, 'full, not over');
});
