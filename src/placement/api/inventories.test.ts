import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createTestPlacement, expectPlacementError, type TestPlacement } from '../testing.js';

// Facts from placement's api-ref (inventories.inc, inventory.inc) and its
// inventory handler and schemas at Zed.

let t: TestPlacement;
const v = '1.39';

before(async () => {
  t = await createTestPlacement();
});

after(async () => {
  await t.close();
});

async function provider(name: string): Promise<string> {
  const res = await t.request('POST', '/resource_providers', { user: t.admin, version: v, payload: { name } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.uuid as string;
}

test('PUT inventories sets them with defaults and bumps the generation; a stale generation is 409', async () => {
  const rp = await provider('inv-1');
  const put = await t.request('PUT', `/resource_providers/${rp}/inventories`, {
    user: t.admin,
    version: v,
    payload: { resource_provider_generation: 0, inventories: { VCPU: { total: 8, allocation_ratio: 4.0 }, MEMORY_MB: { total: 4096, reserved: 512, max_unit: 4096 } } },
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.resource_provider_generation, 1, 'generation bumped');
  assert.deepEqual(put.body.inventories.VCPU, { total: 8, reserved: 0, min_unit: 1, max_unit: 2147483647, step_size: 1, allocation_ratio: 4 }, 'defaults filled');

  const get = await t.request('GET', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v });
  assert.equal(get.status, 200);
  assert.deepEqual(Object.keys(get.body.inventories).sort(), ['MEMORY_MB', 'VCPU'], 'both classes');
  assert.equal(get.body.inventories.MEMORY_MB.reserved, 512, 'reserved kept');

  const stale = await t.request('PUT', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v, payload: { resource_provider_generation: 0, inventories: {} } });
  expectPlacementError(stale, 409, 'placement.concurrent_update', 'resource provider generation conflict');

  const one = await t.request('GET', `/resource_providers/${rp}/inventories/VCPU`, { user: t.admin, version: v });
  assert.equal(one.status, 200);
  assert.equal(one.body.resource_provider_generation, 1, 'generation in a single inventory');
  const none = await t.request('GET', `/resource_providers/${rp}/inventories/DISK_GB`, { user: t.admin, version: v });
  expectPlacementError(none, 404);
});

test('inventory validation: reserved >= total is 400 (equal allowed from 1.26), unknown class 400, bad fields 400', async () => {
  const rp = await provider('inv-2');
  const equal = { resource_provider_generation: 0, inventories: { DISK_GB: { total: 10, reserved: 10 } } };
  const old = await t.request('PUT', `/resource_providers/${rp}/inventories`, { user: t.admin, version: '1.25', payload: equal });
  expectPlacementError(old, 400, undefined, 'The reserved value is greater than or equal to total.');
  const ok = await t.request('PUT', `/resource_providers/${rp}/inventories`, { user: t.admin, version: '1.26', payload: equal });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const unknown = await t.request('PUT', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v, payload: { resource_provider_generation: 1, inventories: { CUSTOM_NOPE: { total: 1 } } } });
  expectPlacementError(unknown, 400, undefined, 'No such resource class CUSTOM_NOPE');
  const zero = await t.request('PUT', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v, payload: { resource_provider_generation: 1, inventories: { VCPU: { total: 0 } } } });
  expectPlacementError(zero, 400, undefined, 'JSON does not validate');
  const missing = await t.request('PUT', `/resource_providers/${randomUUID()}/inventories`, { user: t.admin, version: v, payload: { resource_provider_generation: 0, inventories: {} } });
  expectPlacementError(missing, 404);
});

test('POST, PUT and DELETE of one inventory; DELETE of all is 405 before 1.5', async () => {
  const rp = await provider('inv-3');
  const post = await t.request('POST', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v, payload: { resource_class: 'DISK_GB', total: 100, step_size: 10 } });
  assert.equal(post.status, 201, JSON.stringify(post.body));
  assert.equal(post.headers.location, `/resource_providers/${rp}/inventories/DISK_GB`, 'location');
  assert.equal(post.body.resource_provider_generation, 1, 'generation bumped');
  const again = await t.request('POST', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v, payload: { resource_class: 'DISK_GB', total: 100 } });
  expectPlacementError(again, 409, 'placement.concurrent_update');
  const put = await t.request('PUT', `/resource_providers/${rp}/inventories/DISK_GB`, { user: t.admin, version: v, payload: { resource_provider_generation: 1, total: 200 } });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.total, 200, 'updated');
  assert.equal(put.body.resource_provider_generation, 2, 'bumped');
  const putMissing = await t.request('PUT', `/resource_providers/${rp}/inventories/VCPU`, { user: t.admin, version: v, payload: { resource_provider_generation: 2, total: 2 } });
  expectPlacementError(putMissing, 400, undefined, 'No inventory of class VCPU found');
  const oldDelete = await t.request('DELETE', `/resource_providers/${rp}/inventories`, { user: t.admin, version: '1.4' });
  expectPlacementError(oldDelete, 405);
  const del = await t.request('DELETE', `/resource_providers/${rp}/inventories/DISK_GB`, { user: t.admin, version: v });
  assert.equal(del.status, 204, JSON.stringify(del.body));
  const delAgain = await t.request('DELETE', `/resource_providers/${rp}/inventories/DISK_GB`, { user: t.admin, version: v });
  expectPlacementError(delAgain, 404);
});

test('removing allocated inventory is 409 placement.inventory.inuse; shrinking below usage is allowed', async () => {
  const rp = await provider('inv-4');
  await t.request('PUT', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v, payload: { resource_provider_generation: 0, inventories: { VCPU: { total: 4 }, MEMORY_MB: { total: 1024 } } } });
  const consumer = randomUUID();
  const alloc = await t.request('PUT', `/allocations/${consumer}`, {
    user: t.admin,
    version: v,
    payload: { allocations: { [rp]: { resources: { VCPU: 3 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' },
  });
  assert.equal(alloc.status, 204, JSON.stringify(alloc.body));
  const gen = (await t.request('GET', `/resource_providers/${rp}`, { user: t.admin, version: v })).body.generation as number;
  const remove = await t.request('PUT', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v, payload: { resource_provider_generation: gen, inventories: { MEMORY_MB: { total: 1024 } } } });
  expectPlacementError(remove, 409, 'placement.inventory.inuse', "Inventory for 'VCPU'");
  const removeAll = await t.request('DELETE', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v });
  expectPlacementError(removeAll, 409, 'placement.inventory.inuse');
  const shrink = await t.request('PUT', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v, payload: { resource_provider_generation: gen, inventories: { VCPU: { total: 2 }, MEMORY_MB: { total: 1024 } } } });
  assert.equal(shrink.status, 200, 'placement allows shrinking below usage (and warns)');
  const usages = await t.request('GET', `/resource_providers/${rp}/usages`, { user: t.admin, version: v });
  assert.deepEqual(usages.body.usages, { VCPU: 3, MEMORY_MB: 0 }, 'usage per class, 0 where unused');
  const delRp = await t.request('DELETE', `/resource_providers/${rp}`, { user: t.admin, version: v });
  expectPlacementError(delRp, 409, 'placement.resource_provider.inuse');
});
