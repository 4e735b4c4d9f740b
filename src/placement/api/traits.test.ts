import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createTestPlacement, expectPlacementError, type TestPlacement } from '../testing.js';

// Facts from placement's api-ref (traits.inc, resource_provider_traits.inc,
// resource_classes.inc, resource_class.inc) and its handlers at Zed.

let t: TestPlacement;
const v = '1.39';

before(async () => {
  t = await createTestPlacement();
});

after(async () => {
  await t.close();
});

test('standard traits exist; custom traits are created by PUT and listed with name filters', async () => {
  const std = await t.request('GET', '/traits/HW_CPU_X86_AVX2', { user: t.admin, version: v });
  assert.equal(std.status, 204, 'a standard trait exists');
  const created = await t.request('PUT', '/traits/CUSTOM_GOLD', { user: t.admin, version: v });
  assert.equal(created.status, 201, 'created');
  assert.equal(created.headers.location, '/traits/CUSTOM_GOLD', 'location');
  const again = await t.request('PUT', '/traits/CUSTOM_GOLD', { user: t.admin, version: v });
  assert.equal(again.status, 204, 'idempotent');
  const bad = await t.request('PUT', '/traits/GOLD', { user: t.admin, version: v });
  expectPlacementError(bad, 400, undefined, 'The trait is invalid.');
  const list = await t.request('GET', '/traits?name=startswith:CUSTOM_', { user: t.admin, version: v });
  assert.deepEqual(list.body.traits, ['CUSTOM_GOLD'], 'startswith');
  const inList = await t.request('GET', '/traits?name=in:CUSTOM_GOLD,STORAGE_DISK_SSD,NOPE', { user: t.admin, version: v });
  assert.deepEqual(inList.body.traits, ['CUSTOM_GOLD', 'STORAGE_DISK_SSD'], 'in:');
  const badName = await t.request('GET', '/traits?name=CUSTOM_GOLD', { user: t.admin, version: v });
  expectPlacementError(badName, 400, undefined, 'Badly formatted name parameter.');
  const old = await t.request('GET', '/traits', { user: t.admin, version: '1.5' });
  expectPlacementError(old, 404);
  const std2 = await t.request('DELETE', '/traits/HW_CPU_X86_AVX2', { user: t.admin, version: v });
  expectPlacementError(std2, 400, undefined, 'Cannot delete standard trait HW_CPU_X86_AVX2.');
  const missing = await t.request('GET', '/traits/CUSTOM_NOPE', { user: t.admin, version: v });
  expectPlacementError(missing, 404, undefined, 'No such trait(s): CUSTOM_NOPE.');
});

test('provider traits: PUT with generation, associated filter, in-use delete refused, required filter (1.18, 1.22, 1.39)', async () => {
  const rp = (await t.request('POST', '/resource_providers', { user: t.admin, version: v, payload: { name: 'traity' } })).body.uuid as string;
  await t.request('PUT', '/traits/CUSTOM_SILVER', { user: t.admin, version: v });
  const set = await t.request('PUT', `/resource_providers/${rp}/traits`, { user: t.admin, version: v, payload: { traits: ['CUSTOM_SILVER', 'STORAGE_DISK_SSD'], resource_provider_generation: 0 } });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.deepEqual(set.body, { traits: ['CUSTOM_SILVER', 'STORAGE_DISK_SSD'], resource_provider_generation: 1 }, 'traits and new generation');
  const stale = await t.request('PUT', `/resource_providers/${rp}/traits`, { user: t.admin, version: v, payload: { traits: [], resource_provider_generation: 0 } });
  expectPlacementError(stale, 409, 'placement.concurrent_update');
  const unknown = await t.request('PUT', `/resource_providers/${rp}/traits`, { user: t.admin, version: v, payload: { traits: ['CUSTOM_NOPE'], resource_provider_generation: 1 } });
  expectPlacementError(unknown, 400, undefined, 'No such trait CUSTOM_NOPE');
  const get = await t.request('GET', `/resource_providers/${rp}/traits`, { user: t.admin, version: v });
  assert.deepEqual(get.body, { traits: ['CUSTOM_SILVER', 'STORAGE_DISK_SSD'], resource_provider_generation: 1 }, 'GET shows them');
  const associated = await t.request('GET', '/traits?associated=true', { user: t.admin, version: v });
  assert.deepEqual(associated.body.traits, ['CUSTOM_SILVER', 'STORAGE_DISK_SSD'], 'associated');
  const inUse = await t.request('DELETE', '/traits/CUSTOM_SILVER', { user: t.admin, version: v });
  expectPlacementError(inUse, 409, undefined, 'is in use by a resource provider');

  const withTrait = await t.request('GET', '/resource_providers?required=CUSTOM_SILVER', { user: t.admin, version: v });
  assert.deepEqual(withTrait.body.resource_providers.map((p: { uuid: string }) => p.uuid), [rp], 'required trait');
  const forbidden = await t.request('GET', '/resource_providers?required=!CUSTOM_SILVER&name=traity', { user: t.admin, version: v });
  assert.equal(forbidden.body.resource_providers.length, 0, 'forbidden trait (1.22)');
  const forbiddenOld = await t.request('GET', '/resource_providers?required=!CUSTOM_SILVER', { user: t.admin, version: '1.21' });
  expectPlacementError(forbiddenOld, 400);
  const anyOf = await t.request('GET', '/resource_providers?required=in:CUSTOM_GOLD,CUSTOM_SILVER', { user: t.admin, version: v });
  assert.deepEqual(anyOf.body.resource_providers.map((p: { uuid: string }) => p.uuid), [rp], 'any-of (1.39)');
  const anyOld = await t.request('GET', '/resource_providers?required=in:CUSTOM_GOLD,CUSTOM_SILVER', { user: t.admin, version: '1.38' });
  expectPlacementError(anyOld, 400, undefined, 'only supported since microversion 1.39');
  const unknownFilter = await t.request('GET', '/resource_providers?required=CUSTOM_NOPE', { user: t.admin, version: v });
  expectPlacementError(unknownFilter, 400, undefined, 'No such trait(s): CUSTOM_NOPE');

  const del = await t.request('DELETE', `/resource_providers/${rp}/traits`, { user: t.admin, version: v });
  assert.equal(del.status, 204);
  const after = await t.request('GET', `/resource_providers/${rp}/traits`, { user: t.admin, version: v });
  assert.deepEqual(after.body, { traits: [], resource_provider_generation: 2 }, 'cleared, generation bumped');
  assert.equal((await t.request('DELETE', '/traits/CUSTOM_SILVER', { user: t.admin, version: v })).status, 204, 'unused custom trait deleted');
  const noRp = await t.request('GET', `/resource_providers/${randomUUID()}/traits`, { user: t.admin, version: v });
  expectPlacementError(noRp, 404);
});

test('resource classes: standard ones listed, custom created by POST or PUT (1.7), deletion rules', async () => {
  const list = await t.request('GET', '/resource_classes', { user: t.admin, version: v });
  assert.equal(list.status, 200);
  const names = list.body.resource_classes.map((rc: { name: string }) => rc.name);
  for (const name of ['VCPU', 'MEMORY_MB', 'DISK_GB', 'PCPU', 'VGPU', 'NET_BW_EGR_KILOBIT_PER_SEC', 'NET_PACKET_RATE_KILOPACKET_PER_SEC']) assert.ok(names.includes(name), `${name} is standard`);
  assert.deepEqual(list.body.resource_classes[0], { name: 'VCPU', links: [{ rel: 'self', href: '/resource_classes/VCPU' }] }, 'view');
  const post = await t.request('POST', '/resource_classes', { user: t.admin, version: v, payload: { name: 'CUSTOM_FPGA_X' } });
  assert.equal(post.status, 201, JSON.stringify(post.body));
  assert.equal(post.headers.location, '/resource_classes/CUSTOM_FPGA_X', 'location');
  const dup = await t.request('POST', '/resource_classes', { user: t.admin, version: v, payload: { name: 'CUSTOM_FPGA_X' } });
  expectPlacementError(dup, 409);
  const notCustom = await t.request('POST', '/resource_classes', { user: t.admin, version: v, payload: { name: 'FPGA_Y' } });
  expectPlacementError(notCustom, 400, undefined, 'JSON does not validate');
  const put = await t.request('PUT', '/resource_classes/CUSTOM_BAREMETAL', { user: t.admin, version: v });
  assert.equal(put.status, 201, 'created by PUT from 1.7');
  const putAgain = await t.request('PUT', '/resource_classes/CUSTOM_BAREMETAL', { user: t.admin, version: v });
  assert.equal(putAgain.status, 204, 'verified by PUT from 1.7');
  const rename = await t.request('PUT', '/resource_classes/CUSTOM_BAREMETAL', { user: t.admin, version: '1.6', payload: { name: 'CUSTOM_BAREMETAL_GOLD' } });
  assert.equal(rename.status, 200, JSON.stringify(rename.body));
  assert.equal(rename.body.name, 'CUSTOM_BAREMETAL_GOLD', 'renamed before 1.7');
  const show = await t.request('GET', '/resource_classes/CUSTOM_BAREMETAL_GOLD', { user: t.admin, version: v });
  assert.equal(show.status, 200, 'shown under the new name');
  const std = await t.request('DELETE', '/resource_classes/VCPU', { user: t.admin, version: v });
  expectPlacementError(std, 400, undefined, 'Cannot delete standard resource class VCPU.');

  const rp = (await t.request('POST', '/resource_providers', { user: t.admin, version: v, payload: { name: 'rc-user' } })).body.uuid as string;
  const inv = await t.request('PUT', `/resource_providers/${rp}/inventories`, { user: t.admin, version: v, payload: { resource_provider_generation: 0, inventories: { CUSTOM_FPGA_X: { total: 2 } } } });
  assert.equal(inv.status, 200, 'a custom class is usable in inventories at once');
  const inUse = await t.request('DELETE', '/resource_classes/CUSTOM_FPGA_X', { user: t.admin, version: v });
  expectPlacementError(inUse, 409, undefined, 'Class is in use in inventory.');
  assert.equal((await t.request('DELETE', '/resource_classes/CUSTOM_BAREMETAL_GOLD', { user: t.admin, version: v })).status, 204, 'unused custom class deleted');
  const gone = await t.request('GET', '/resource_classes/CUSTOM_BAREMETAL_GOLD', { user: t.admin, version: v });
  expectPlacementError(gone, 404, undefined, 'No such resource class CUSTOM_BAREMETAL_GOLD.');
  const old = await t.request('GET', '/resource_classes', { user: t.admin, version: '1.1' });
  expectPlacementError(old, 404);
});
