import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createTestPlacement, expectPlacementError, type TestPlacement } from '../testing.js';

// Facts from placement's api-ref (allocations.inc, resource_provider_allocations.inc,
// usages.inc), its allocation handler, schemas and objects at Zed.

let t: TestPlacement;
const v = '1.39';

before(async () => {
  t = await createTestPlacement();
});

after(async () => {
  await t.close();
});

async function host(name: string, inventories: Record<string, Record<string, number>>): Promise<string> {
  const rp = await t.request('POST', '/resource_providers', { user: t.admin, version: v, payload: { name } });
  assert.equal(rp.status, 200, JSON.stringify(rp.body));
  const inv = await t.request('PUT', `/resource_providers/${rp.body.uuid}/inventories`, { user: t.admin, version: v, payload: { resource_provider_generation: 0, inventories } });
  assert.equal(inv.status, 200, JSON.stringify(inv.body));
  return rp.body.uuid as string;
}

function claim(consumer: string, allocations: Record<string, Record<string, number>>, generation: number | null, extra: Record<string, unknown> = {}) {
  const body = Object.fromEntries(Object.entries(allocations).map(([rp, resources]) => [rp, { resources }]));
  return t.request('PUT', `/allocations/${consumer}`, {
    user: t.admin,
    version: v,
    payload: { allocations: body, project_id: 'proj-a', user_id: 'user-a', consumer_generation: generation, consumer_type: 'INSTANCE', ...extra },
  });
}

test('PUT /allocations writes, GET shows them with generations; a stale consumer generation is 409', async () => {
  const rp = await host('alloc-1', { VCPU: { total: 8 }, MEMORY_MB: { total: 2048 } });
  const consumer = randomUUID();
  const put = await claim(consumer, { [rp]: { VCPU: 2, MEMORY_MB: 512 } }, null);
  assert.equal(put.status, 204, JSON.stringify(put.body));
  const get = await t.request('GET', `/allocations/${consumer}`, { user: t.admin, version: v });
  assert.equal(get.status, 200);
  assert.deepEqual(get.body.allocations[rp].resources, { VCPU: 2, MEMORY_MB: 512 }, 'resources by provider');
  assert.equal(get.body.allocations[rp].generation, 2, 'provider generation: inventory (1) then allocation (2)');
  assert.equal(get.body.consumer_generation, 1, 'a new consumer is at generation 1 after its first write');
  assert.equal(get.body.project_id, 'proj-a', 'project');
  assert.equal(get.body.user_id, 'user-a', 'user');
  assert.equal(get.body.consumer_type, 'INSTANCE', 'consumer type from 1.38');

  const old = await t.request('GET', `/allocations/${consumer}`, { user: t.admin, version: '1.11' });
  assert.ok(!('project_id' in old.body), 'no project before 1.12');
  const at28 = await t.request('GET', `/allocations/${consumer}`, { user: t.admin, version: '1.28' });
  assert.ok(!('consumer_type' in at28.body), 'no consumer_type before 1.38');

  const stale = await claim(consumer, { [rp]: { VCPU: 1 } }, null);
  expectPlacementError(stale, 409, 'placement.concurrent_update', 'consumer generation conflict - expected 1 but got None'.replace('None', 'null'));
  const replace = await claim(consumer, { [rp]: { VCPU: 1 } }, 1);
  assert.equal(replace.status, 204, JSON.stringify(replace.body));
  const after = await t.request('GET', `/allocations/${consumer}`, { user: t.admin, version: v });
  assert.deepEqual(after.body.allocations[rp].resources, { VCPU: 1 }, 'replaced, not merged');
  assert.equal(after.body.consumer_generation, 2, 'consumer generation bumped');

  const byRp = await t.request('GET', `/resource_providers/${rp}/allocations`, { user: t.admin, version: v });
  assert.equal(byRp.status, 200);
  assert.deepEqual(byRp.body.allocations[consumer], { resources: { VCPU: 1 }, consumer_generation: 2 }, 'allocations by consumer');
  assert.equal(byRp.body.resource_provider_generation, after.body.allocations[rp].generation, 'provider generation');

  const empty = await claim(consumer, {}, 2);
  assert.equal(empty.status, 204, 'an empty allocations object removes them (1.28)');
  const gone = await t.request('GET', `/allocations/${consumer}`, { user: t.admin, version: v });
  assert.deepEqual(gone.body, { allocations: {} }, 'no allocations, no consumer fields');
  const fresh = await claim(consumer, { [rp]: { VCPU: 1 } }, null);
  assert.equal(fresh.status, 204, 'the consumer is new again after losing its allocations');
  const del = await t.request('DELETE', `/allocations/${consumer}`, { user: t.admin, version: v });
  assert.equal(del.status, 204);
  const delAgain = await t.request('DELETE', `/allocations/${consumer}`, { user: t.admin, version: v });
  expectPlacementError(delAgain, 404, undefined, 'No allocations for consumer');
});

test('capacity, inventory constraints and unknown things are refused with placement messages', async () => {
  const rp = await host('alloc-2', { VCPU: { total: 4, reserved: 1, allocation_ratio: 2.0 }, DISK_GB: { total: 100, step_size: 10, max_unit: 50 } });
  const fits = await claim(randomUUID(), { [rp]: { VCPU: 6 } }, null);
  assert.equal(fits.status, 204, '(4 - 1) * 2 = 6 fits');
  const over = await claim(randomUUID(), { [rp]: { VCPU: 1 } }, null);
  expectPlacementError(over, 409, 'placement.undefined_code', 'The requested amount would exceed the capacity.');
  const step = await claim(randomUUID(), { [rp]: { DISK_GB: 15 } }, null);
  expectPlacementError(step, 409, undefined, 'would violate inventory constraints');
  const max = await claim(randomUUID(), { [rp]: { DISK_GB: 60 } }, null);
  expectPlacementError(max, 409, undefined, 'would violate inventory constraints');
  const noInv = await claim(randomUUID(), { [rp]: { MEMORY_MB: 1 } }, null);
  expectPlacementError(noInv, 409, undefined, "Inventory for 'MEMORY_MB' on resource provider");
  const noRp = await claim(randomUUID(), { [randomUUID()]: { VCPU: 1 } }, null);
  expectPlacementError(noRp, 400, undefined, 'that does not exist.');
  const noClass = await claim(randomUUID(), { [rp]: { CUSTOM_MISSING: 1 } }, null);
  expectPlacementError(noClass, 400, undefined, 'No such resource class CUSTOM_MISSING');
  const badConsumer = await t.request('PUT', '/allocations/not-a-uuid', { user: t.admin, version: v, payload: {} });
  expectPlacementError(badConsumer, 400, undefined, 'Malformed consumer_uuid');
  const noType = await t.request('PUT', `/allocations/${randomUUID()}`, {
    user: t.admin,
    version: v,
    payload: { allocations: { [rp]: { resources: { DISK_GB: 10 } } }, project_id: 'p', user_id: 'u', consumer_generation: null },
  });
  expectPlacementError(noType, 400, undefined, "'consumer_type' is a required property");
  const member = await t.request('GET', `/allocations/${randomUUID()}`, { user: t.alpha, version: v });
  expectPlacementError(member, 403);
});

test('older microversions: the list format (1.0) and no consumer generation (1.27)', async () => {
  const rp = await host('alloc-3', { VCPU: { total: 4 } });
  const consumer = randomUUID();
  const list = await t.request('PUT', `/allocations/${consumer}`, { user: t.admin, version: '1.0', payload: { allocations: [{ resource_provider: { uuid: rp }, resources: { VCPU: 1 } }] } });
  assert.equal(list.status, 204, JSON.stringify(list.body));
  const get = await t.request('GET', `/allocations/${consumer}`, { user: t.admin, version: '1.12' });
  assert.equal(get.body.project_id, '00000000-0000-0000-0000-000000000000', 'incomplete consumer project before 1.8');
  const again = await t.request('PUT', `/allocations/${consumer}`, { user: t.admin, version: '1.27', payload: { allocations: { [rp]: { resources: { VCPU: 2 } } }, project_id: 'p', user_id: 'u' } });
  assert.equal(again.status, 204, 'no generation needed before 1.28');
  const typed = await t.request('GET', `/allocations/${consumer}`, { user: t.admin, version: v });
  assert.equal(typed.body.consumer_type, 'unknown', 'consumers written before 1.38 are unknown');
  const postOld = await t.request('POST', '/allocations', { user: t.admin, version: '1.12', payload: {} });
  expectPlacementError(postOld, 404, undefined, 'The resource could not be found.');
});

test('POST /allocations moves an instance to a migration consumer atomically (1.13+)', async () => {
  const rp = await host('alloc-4', { VCPU: { total: 2 } });
  const instance = randomUUID();
  const migration = randomUUID();
  assert.equal((await claim(instance, { [rp]: { VCPU: 2 } }, null)).status, 204, 'instance holds the whole host');
  const move = await t.request('POST', '/allocations', {
    user: t.admin,
    version: v,
    payload: {
      [instance]: { allocations: {}, project_id: 'proj-a', user_id: 'user-a', consumer_generation: 1, consumer_type: 'INSTANCE' },
      [migration]: { allocations: { [rp]: { resources: { VCPU: 2 } } }, project_id: 'proj-a', user_id: 'user-a', consumer_generation: null, consumer_type: 'MIGRATION' },
    },
  });
  assert.equal(move.status, 204, `the freed capacity is counted in the same transaction: ${JSON.stringify(move.body)}`);
  const inst = await t.request('GET', `/allocations/${instance}`, { user: t.admin, version: v });
  assert.deepEqual(inst.body.allocations, {}, 'instance has nothing');
  const mig = await t.request('GET', `/allocations/${migration}`, { user: t.admin, version: v });
  assert.equal(mig.body.consumer_type, 'MIGRATION', 'migration consumer');
  assert.deepEqual(mig.body.allocations[rp].resources, { VCPU: 2 }, 'migration holds it');
  const usages = await t.request('GET', '/usages?project_id=proj-a', { user: t.admin, version: v });
  assert.equal(usages.status, 200, JSON.stringify(usages.body));
  assert.deepEqual(usages.body.usages.MIGRATION, { VCPU: 2, consumer_count: 1 }, 'usages by consumer type from 1.38');
  const all = await t.request('GET', '/usages?project_id=proj-a&consumer_type=all', { user: t.admin, version: v });
  assert.ok(all.body.usages.all.consumer_count >= 1, 'all types together');
  const flat = await t.request('GET', '/usages?project_id=proj-a', { user: t.admin, version: '1.9' });
  assert.ok(flat.body.usages.VCPU >= 2, 'flat usages before 1.38');
  const noProject = await t.request('GET', '/usages', { user: t.admin, version: v });
  expectPlacementError(noProject, 400, undefined, "'project_id' is a required property");
  const reader = await t.request('GET', `/usages?project_id=${t.alphaReader.projectId}`, { user: t.alphaReader, version: v });
  assert.equal(reader.status, 200, 'a project reader may see its own usages');
  const otherReader = await t.request('GET', '/usages?project_id=proj-a', { user: t.alphaReader, version: v });
  expectPlacementError(otherReader, 403);
});

test('20 concurrent claims for 4 VCPUs: exactly 4 succeed, 16 get 409, usage is 4', async () => {
  const rp = await host('alloc-race', { VCPU: { total: 4 } });
  const results = await Promise.all(Array.from({ length: 20 }, () => claim(randomUUID(), { [rp]: { VCPU: 1 } }, null)));
  const statuses = results.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 204).length, 4, `exactly 4 claims succeed: ${JSON.stringify(statuses)}`);
  assert.equal(statuses.filter((s) => s === 409).length, 16, 'the other 16 are conflicts');
  const usages = await t.request('GET', `/resource_providers/${rp}/usages`, { user: t.admin, version: v });
  assert.deepEqual(usages.body.usages, { VCPU: 4 }, 'usage is exactly the capacity');
  const allocs = await t.request('GET', `/resource_providers/${rp}/allocations`, { user: t.admin, version: v });
  assert.equal(Object.keys(allocs.body.allocations).length, 4, 'four consumers hold it');
  assert.equal(allocs.body.resource_provider_generation, 5, 'one generation per successful claim after the inventory');
});

test('POST /allocations with many consumers racing on two hosts never overcommits', async () => {
  const a = await host('race-a', { VCPU: { total: 3 } });
  const b = await host('race-b', { VCPU: { total: 3 } });
  const results = await Promise.all(
    Array.from({ length: 10 }, () =>
      t.request('POST', '/allocations', {
        user: t.admin,
        version: v,
        payload: { [randomUUID()]: { allocations: { [a]: { resources: { VCPU: 1 } }, [b]: { resources: { VCPU: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
      }),
    ),
  );
  assert.equal(results.filter((r) => r.status === 204).length, 3, `three succeed: ${JSON.stringify(results.map((r) => r.status))}`);
  for (const rp of [a, b]) {
    const usages = await t.request('GET', `/resource_providers/${rp}/usages`, { user: t.admin, version: v });
    assert.deepEqual(usages.body.usages, { VCPU: 3 }, 'full, not over');
  }
});
