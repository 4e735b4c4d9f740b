import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, test } from 'node:test';
import { createTestPlacement, expectPlacementError, type TestPlacement } from '../testing.js';

// Facts from placement's api-ref (allocation_candidates.inc and its samples),
// rest_api_version_history.rst (1.10 to 1.39) and its allocation candidate
// objects at Zed: nested trees, sharing providers, granular groups.

const v = '1.39';
let t: TestPlacement | null = null;

afterEach(async () => {
  await t?.close();
  t = null;
});

async function fresh(): Promise<TestPlacement> {
  t = await createTestPlacement();
  return t;
}

async function provider(p: TestPlacement, name: string, inventories: Record<string, Record<string, number>>, options: { parent?: string; traits?: string[]; aggregates?: string[] } = {}): Promise<string> {
  const rp = await p.request('POST', '/resource_providers', { user: p.admin, version: v, payload: { name, ...(options.parent ? { parent_provider_uuid: options.parent } : {}) } });
  assert.equal(rp.status, 200, JSON.stringify(rp.body));
  const uuid = rp.body.uuid as string;
  let generation = 0;
  if (Object.keys(inventories).length > 0) {
    const inv = await p.request('PUT', `/resource_providers/${uuid}/inventories`, { user: p.admin, version: v, payload: { resource_provider_generation: generation, inventories } });
    assert.equal(inv.status, 200, JSON.stringify(inv.body));
    generation = inv.body.resource_provider_generation;
  }
  if (options.traits) {
    for (const trait of options.traits.filter((tr) => tr.startsWith('CUSTOM_'))) await p.request('PUT', `/traits/${trait}`, { user: p.admin, version: v });
    const res = await p.request('PUT', `/resource_providers/${uuid}/traits`, { user: p.admin, version: v, payload: { traits: options.traits, resource_provider_generation: generation } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    generation = res.body.resource_provider_generation;
  }
  if (options.aggregates) {
    const res = await p.request('PUT', `/resource_providers/${uuid}/aggregates`, { user: p.admin, version: v, payload: { aggregates: options.aggregates, resource_provider_generation: generation } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  return uuid;
}

const COMPUTE = { VCPU: { total: 4 }, MEMORY_MB: { total: 2048 }, DISK_GB: { total: 20 } };

test('single providers: only hosts with room, summaries with capacity and usage, limit, traits and aggregates filters', async () => {
  const p = await fresh();
  const agg = randomUUID();
  const a = await provider(p, 'cn-a', COMPUTE, { traits: ['HW_CPU_X86_AVX2'], aggregates: [agg] });
  const b = await provider(p, 'cn-b', COMPUTE, { traits: ['COMPUTE_STATUS_DISABLED'] });
  const full = await provider(p, 'cn-full', { VCPU: { total: 1 }, MEMORY_MB: { total: 2048 }, DISK_GB: { total: 20 } });
  const claim = await p.request('PUT', `/allocations/${randomUUID()}`, {
    user: p.admin,
    version: v,
    payload: { allocations: { [a]: { resources: { VCPU: 1, MEMORY_MB: 256 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' },
  });
  assert.equal(claim.status, 204);

  const res = await p.request('GET', '/allocation_candidates?resources=VCPU:2,MEMORY_MB:512,DISK_GB:1', { user: p.admin, version: v });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const hosts = res.body.allocation_requests.map((r: { allocations: Record<string, unknown> }) => Object.keys(r.allocations)[0]);
  assert.deepEqual(hosts.sort(), [a, b].sort(), 'the full host is left out');
  assert.ok(!hosts.includes(full), 'no room on cn-full');
  const first = res.body.allocation_requests.find((r: { allocations: Record<string, unknown> }) => a in r.allocations);
  assert.deepEqual(first.allocations[a], { resources: { VCPU: 2, MEMORY_MB: 512, DISK_GB: 1 } }, 'the dict format (1.12)');
  assert.deepEqual(first.mappings, { '': [a] }, 'mappings (1.34)');
  const summary = res.body.provider_summaries[a];
  assert.deepEqual(summary.resources.VCPU, { capacity: 4, used: 1 }, 'capacity and usage');
  assert.deepEqual(summary.traits, ['HW_CPU_X86_AVX2'], 'traits (1.17)');
  assert.equal(summary.root_provider_uuid, a, 'root (1.29)');
  assert.equal(summary.parent_provider_uuid, null, 'parent (1.29)');

  const limited = await p.request('GET', '/allocation_candidates?resources=VCPU:1&limit=1', { user: p.admin, version: v });
  assert.equal(limited.body.allocation_requests.length, 1, 'limit');
  assert.equal(Object.keys(limited.body.provider_summaries).length, 1, 'summaries follow the limit');
  const avx = await p.request('GET', '/allocation_candidates?resources=VCPU:1&required=HW_CPU_X86_AVX2', { user: p.admin, version: v });
  assert.deepEqual(avx.body.allocation_requests.map((r: { allocations: Record<string, unknown> }) => Object.keys(r.allocations)[0]), [a], 'required trait');
  const notDisabled = await p.request('GET', '/allocation_candidates?resources=VCPU:1&root_required=!COMPUTE_STATUS_DISABLED', { user: p.admin, version: v });
  assert.ok(!notDisabled.body.allocation_requests.some((r: { allocations: Record<string, unknown> }) => b in r.allocations), 'root_required forbids the disabled host (1.35)');
  const inAgg = await p.request('GET', `/allocation_candidates?resources=VCPU:1&member_of=${agg}`, { user: p.admin, version: v });
  assert.deepEqual(inAgg.body.allocation_requests.map((r: { allocations: Record<string, unknown> }) => Object.keys(r.allocations)[0]), [a], 'member_of (1.21)');
  const none = await p.request('GET', '/allocation_candidates?resources=VCPU:5', { user: p.admin, version: v });
  assert.deepEqual(none.body, { allocation_requests: [], provider_summaries: {} }, 'nothing fits');

  const list = await p.request('GET', '/allocation_candidates?resources=VCPU:1', { user: p.admin, version: '1.10' });
  assert.ok(Array.isArray(list.body.allocation_requests[0].allocations), 'the list format before 1.12');
  assert.ok(!('traits' in (Object.values(list.body.provider_summaries)[0] as object)), 'no traits before 1.17');
  const tooOld = await p.request('GET', '/allocation_candidates?resources=VCPU:1', { user: p.admin, version: '1.9' });
  expectPlacementError(tooOld, 404);
  const badClass = await p.request('GET', '/allocation_candidates?resources=CUSTOM_NOPE:1', { user: p.admin, version: v });
  expectPlacementError(badClass, 400, undefined, 'No such resource class CUSTOM_NOPE');
  const badForm = await p.request('GET', '/allocation_candidates?resources=VCPU', { user: p.admin, version: v });
  expectPlacementError(badForm, 400, undefined, 'Badly formed resources parameter.');
  const noResources = await p.request('GET', '/allocation_candidates?limit=1', { user: p.admin, version: '1.20' });
  expectPlacementError(noResources, 400, undefined, "'resources' is a required property");
  const member = await p.request('GET', '/allocation_candidates?resources=VCPU:1', { user: p.alpha, version: v });
  expectPlacementError(member, 403);
});

test('a tree: the unsuffixed group spans a root and its children from 1.29, not before', async () => {
  const p = await fresh();
  const root = await provider(p, 'cn', { MEMORY_MB: { total: 4096 }, DISK_GB: { total: 100 } });
  const numa0 = await provider(p, 'cn-numa0', { VCPU: { total: 4 } }, { parent: root });
  const numa1 = await provider(p, 'cn-numa1', { VCPU: { total: 4 } }, { parent: root, traits: ['CUSTOM_FAST'] });
  const res = await p.request('GET', '/allocation_candidates?resources=VCPU:2,MEMORY_MB:1024', { user: p.admin, version: v });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.allocation_requests.length, 2, 'one per NUMA child');
  for (const req of res.body.allocation_requests) {
    assert.deepEqual(req.allocations[root], { resources: { MEMORY_MB: 1024 } }, 'memory from the root');
    assert.ok(numa0 in req.allocations || numa1 in req.allocations, 'VCPU from a child');
  }
  assert.deepEqual(Object.keys(res.body.provider_summaries).sort(), [root, numa0, numa1].sort(), 'the whole tree is summarised');
  assert.equal(res.body.provider_summaries[numa1].parent_provider_uuid, root, 'parent of a child');
  const fast = await p.request('GET', '/allocation_candidates?resources=VCPU:2,MEMORY_MB:1024&required=CUSTOM_FAST', { user: p.admin, version: v });
  assert.equal(fast.body.allocation_requests.length, 1, 'traits are met by the providers used, together');
  assert.ok(numa1 in fast.body.allocation_requests[0].allocations, 'the fast NUMA node');
  const inTree = await p.request('GET', `/allocation_candidates?resources=VCPU:1&in_tree=${numa0}`, { user: p.admin, version: v });
  assert.equal(inTree.body.allocation_requests.length, 2, 'in_tree names any provider of the tree (1.31)');
  const old = await p.request('GET', '/allocation_candidates?resources=VCPU:2,MEMORY_MB:1024', { user: p.admin, version: '1.28' });
  assert.equal(old.body.allocation_requests.length, 0, 'before 1.29 one tree cannot combine providers');
});

test('numbered groups: one provider each, group_policy isolate, mappings', async () => {
  const p = await fresh();
  const root = await provider(p, 'cn', { VCPU: { total: 8 } });
  const pf1 = await provider(p, 'pf1', { SRIOV_NET_VF: { total: 2 } }, { parent: root, traits: ['CUSTOM_PHYSNET_A'] });
  const pf2 = await provider(p, 'pf2', { SRIOV_NET_VF: { total: 2 } }, { parent: root, traits: ['CUSTOM_PHYSNET_A'] });
  const noPolicy = await p.request('GET', '/allocation_candidates?resources=VCPU:1&resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1', { user: p.admin, version: v });
  expectPlacementError(noPolicy, 400, undefined, 'The "group_policy" parameter is required');
  const isolate = await p.request('GET', '/allocation_candidates?resources=VCPU:1&resources1=SRIOV_NET_VF:1&required1=CUSTOM_PHYSNET_A&resources2=SRIOV_NET_VF:1&group_policy=isolate', { user: p.admin, version: v });
  assert.equal(isolate.status, 200, JSON.stringify(isolate.body));
  assert.equal(isolate.body.allocation_requests.length, 2, 'pf1/pf2 and pf2/pf1');
  for (const req of isolate.body.allocation_requests) {
    assert.deepEqual(req.mappings[''], [root], 'unsuffixed group on the root');
    assert.notDeepEqual(req.mappings['1'], req.mappings['2'], 'isolated on different PFs');
  }
  const none = await p.request('GET', '/allocation_candidates?resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&group_policy=none', { user: p.admin, version: v });
  const shared = none.body.allocation_requests.filter((r: { allocations: Record<string, { resources: Record<string, number> }> }) => Object.values(r.allocations).some((a) => a.resources.SRIOV_NET_VF === 2));
  assert.equal(shared.length, 2, 'with none, both groups may land on one PF (amounts summed)');
  assert.ok([pf1, pf2].every((pf) => shared.some((r: { allocations: Record<string, unknown> }) => pf in r.allocations)), 'on either PF');
  const orphan = await p.request('GET', '/allocation_candidates?resources=VCPU:1&required1=CUSTOM_PHYSNET_A', { user: p.admin, version: '1.35' });
  expectPlacementError(orphan, 400, undefined, 'orphaned traits keys: required1');
  const numberedOld = await p.request('GET', '/allocation_candidates?resources1=VCPU:1', { user: p.admin, version: '1.24' });
  expectPlacementError(numberedOld, 400, undefined, "'resources1' was unexpected");
  const named = await p.request('GET', '/allocation_candidates?resources_NIC=SRIOV_NET_VF:1', { user: p.admin, version: v });
  assert.equal(named.body.allocation_requests.length, 2, 'string suffixes (1.33)');
  const subtree = await p.request('GET', `/allocation_candidates?resources_A=SRIOV_NET_VF:1&required_ROOT=!CUSTOM_PHYSNET_A&in_tree_ROOT=${root}&same_subtree=_A,_ROOT&group_policy=none`, { user: p.admin, version: v });
  assert.equal(subtree.status, 200, JSON.stringify(subtree.body));
  assert.equal(subtree.body.allocation_requests.length, 2, 'a resourceless group in same_subtree (1.36)');
  for (const req of subtree.body.allocation_requests) assert.deepEqual(req.mappings._ROOT, [root], 'the resourceless group maps to the root');
});

test('a sharing provider serves the trees of its aggregate', async () => {
  const p = await fresh();
  const agg = randomUUID();
  const cn1 = await provider(p, 'cn1', { VCPU: { total: 4 }, MEMORY_MB: { total: 2048 } }, { aggregates: [agg] });
  await provider(p, 'cn2', { VCPU: { total: 4 }, MEMORY_MB: { total: 2048 } });
  const storage = await provider(p, 'shared-storage', { DISK_GB: { total: 1000 } }, { traits: ['MISC_SHARES_VIA_AGGREGATE'], aggregates: [agg] });
  const res = await p.request('GET', '/allocation_candidates?resources=VCPU:1,MEMORY_MB:256,DISK_GB:10', { user: p.admin, version: v });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.allocation_requests.length, 1, 'only the host in the aggregate gets disk');
  const req = res.body.allocation_requests[0];
  assert.deepEqual(req.allocations[cn1], { resources: { VCPU: 1, MEMORY_MB: 256 } }, 'compute from the host');
  assert.deepEqual(req.allocations[storage], { resources: { DISK_GB: 10 } }, 'disk from the shared storage');
  assert.ok(storage in res.body.provider_summaries && cn1 in res.body.provider_summaries, 'both summarised');
});
