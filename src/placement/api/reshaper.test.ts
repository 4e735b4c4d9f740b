import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createTestPlacement, expectPlacementError, type TestPlacement } from '../testing.js';

// Facts from placement's api-ref (reshaper.inc), its reshaper handler,
// schema and object at Zed, and its current default policy (service only).

let t: TestPlacement;
const v = '1.39';

before(async () => {
  t = await createTestPlacement();
});

after(async () => {
  await t.close();
});

async function setup(): Promise<{ root: string; child: string; instance: string }> {
  const root = (await t.request('POST', '/resource_providers', { user: t.service, version: v, payload: { name: `host-${randomUUID()}` } })).body.uuid as string;
  await t.request('PUT', `/resource_providers/${root}/inventories`, { user: t.service, version: v, payload: { resource_provider_generation: 0, inventories: { VCPU: { total: 8 }, MEMORY_MB: { total: 1024 } } } });
  const child = (await t.request('POST', '/resource_providers', { user: t.service, version: v, payload: { name: `numa-${randomUUID()}`, parent_provider_uuid: root } })).body.uuid as string;
  const instance = randomUUID();
  const claim = await t.request('PUT', `/allocations/${instance}`, {
    user: t.service,
    version: v,
    payload: { allocations: { [root]: { resources: { VCPU: 2, MEMORY_MB: 256 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' },
  });
  assert.equal(claim.status, 204, JSON.stringify(claim.body));
  return { root, child, instance };
}

test('reshaper moves VCPU inventory and its allocations from a host to its child atomically', async () => {
  const { root, child, instance } = await setup();
  const res = await t.request('POST', '/reshaper', {
    user: t.service,
    version: v,
    payload: {
      inventories: {
        [root]: { resource_provider_generation: 2, inventories: { MEMORY_MB: { total: 1024 } } },
        [child]: { resource_provider_generation: 0, inventories: { VCPU: { total: 8 } } },
      },
      allocations: {
        [instance]: { allocations: { [root]: { resources: { MEMORY_MB: 256 } }, [child]: { resources: { VCPU: 2 } } }, project_id: 'p', user_id: 'u', consumer_generation: 1, consumer_type: 'INSTANCE' },
      },
    },
  });
  assert.equal(res.status, 204, JSON.stringify(res.body));
  const rootUsage = await t.request('GET', `/resource_providers/${root}/usages`, { user: t.service, version: v });
  assert.deepEqual(rootUsage.body.usages, { MEMORY_MB: 256 }, 'the host keeps only memory');
  const childUsage = await t.request('GET', `/resource_providers/${child}/usages`, { user: t.service, version: v });
  assert.deepEqual(childUsage.body.usages, { VCPU: 2 }, 'the child has the VCPUs and their allocation');
  const consumer = await t.request('GET', `/allocations/${instance}`, { user: t.service, version: v });
  assert.equal(consumer.body.consumer_generation, 2, 'the consumer generation moved');
});

test('reshaper refusals: stale generation, inventory still in use, unknown provider, before 1.30, not a service', async () => {
  const { root, child, instance } = await setup();
  const inventories = (rootGen: number) => ({
    [root]: { resource_provider_generation: rootGen, inventories: { MEMORY_MB: { total: 1024 } } },
    [child]: { resource_provider_generation: 0, inventories: { VCPU: { total: 8 } } },
  });
  const stale = await t.request('POST', '/reshaper', { user: t.service, version: v, payload: { inventories: inventories(1), allocations: {} } });
  expectPlacementError(stale, 409, 'placement.concurrent_update', 'resource provider generation conflict');
  const inUse = await t.request('POST', '/reshaper', { user: t.service, version: v, payload: { inventories: inventories(2), allocations: {} } });
  expectPlacementError(inUse, 409, 'placement.inventory.inuse', "Inventory for 'VCPU'");
  const unchanged = await t.request('GET', `/allocations/${instance}`, { user: t.service, version: v });
  assert.deepEqual(unchanged.body.allocations[root].resources, { VCPU: 2, MEMORY_MB: 256 }, 'nothing changed');
  const missing = await t.request('POST', '/reshaper', { user: t.service, version: v, payload: { inventories: { [randomUUID()]: { resource_provider_generation: 0, inventories: {} } }, allocations: {} } });
  expectPlacementError(missing, 400, 'placement.resource_provider.not_found');
  const old = await t.request('POST', '/reshaper', { user: t.service, version: '1.29', payload: {} });
  expectPlacementError(old, 404);
  const admin = await t.request('POST', '/reshaper', { user: t.admin, version: v, payload: { inventories: inventories(2), allocations: {} } });
  expectPlacementError(admin, 403, undefined, 'placement:reshaper:reshape');
  const overfull = await t.request('POST', '/reshaper', {
    user: t.service,
    version: v,
    payload: {
      inventories: { [root]: { resource_provider_generation: 2, inventories: { MEMORY_MB: { total: 1024 } } }, [child]: { resource_provider_generation: 0, inventories: { VCPU: { total: 1 } } } },
      allocations: { [instance]: { allocations: { [root]: { resources: { MEMORY_MB: 256 } }, [child]: { resources: { VCPU: 2 } } }, project_id: 'p', user_id: 'u', consumer_generation: 1, consumer_type: 'INSTANCE' } },
    },
  });
  expectPlacementError(overfull, 409, 'placement.undefined_code', 'would exceed the capacity');
});
