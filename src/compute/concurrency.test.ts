import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { addBootFixtures, createTestCloud, hostNames, type TestCloud } from './test-cloud/testing.js';

// Compute under concurrent load, through the public APIs only: quota holds
// when many creates race for the last places, and a few hundred servers
// booted and deleted at once leave nothing behind (placement allocations,
// quota usage, compute ports in the network service). On the bus of
// STRATUS_TEST_BUS_URL when it is set (RabbitMQ in `./stratus test`).

let cloud: TestCloud;
let imageId: string;
let networkId: string;

const PLACEMENT = { 'OpenStack-API-Version': 'placement 1.39' };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `work` on every item, at most `width` at a time; results in item order. */
async function bounded<T, R>(items: T[], width: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return results;
}

/**
 * Polls the project's servers (one `GET /servers/detail` per round, never one
 * per server) until each of `ids` is ACTIVE or ERROR (or, with `gone`, no
 * longer listed). Returns the status of each.
 */
async function settle(ids: string[], options: { gone?: boolean; user?: TestCloud['alpha'] } = {}): Promise<Map<string, string>> {
  const user = options.user ?? cloud.alpha;
  const wanted = new Set(ids);
  let last = new Map<string, string>();
  for (let round = 0; round < 3000; round++) {
    const res = await cloud.request('GET', '/servers/detail?limit=1000', { user, version: '2.93' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const listed = new Map<string, string>((res.body.servers as { id: string; status: string }[]).filter((s) => wanted.has(s.id)).map((s) => [s.id, s.status]));
    last = listed;
    const done = options.gone ? listed.size === 0 : [...wanted].every((id) => listed.get(id) === 'ACTIVE' || listed.get(id) === 'ERROR');
    if (done) return listed;
    await sleep(50);
  }
  throw new Error(`servers did not settle: ${JSON.stringify(Object.fromEntries(last))}`);
}

async function boot(name: string, user = cloud.alpha): Promise<{ status: number; body: Record<string, any> }> {
  return cloud.request('POST', '/servers', { user, version: '2.93', payload: { server: { name, imageRef: imageId, flavorRef: '1', networks: [{ uuid: networkId }] } } });
}

async function setQuota(projectId: string, quota: Record<string, number>): Promise<void> {
  const res = await cloud.request('PUT', `/os-quota-sets/${projectId}`, { user: cloud.admin, payload: { quota_set: quota } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

/** What placement says the project uses, by resource class (zero classes left out). */
async function projectUsage(projectId: string): Promise<Record<string, number>> {
  const res = await cloud.call('placement', 'GET', `/usages?project_id=${projectId}`, { user: cloud.admin, headers: PLACEMENT });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const usages = res.body.usages as Record<string, Record<string, number> | number>;
  const total: Record<string, number> = {};
  // 1.38+ groups usages by consumer type.
  for (const [key, value] of Object.entries(usages)) {
    if (typeof value === 'number') total[key] = (total[key] ?? 0) + value;
    else for (const [rc, n] of Object.entries(value)) if (rc !== 'consumer_count') total[rc] = (total[rc] ?? 0) + n;
  }
  return Object.fromEntries(Object.entries(total).filter(([, n]) => n !== 0));
}

/**
 * The project's placement usage once it is empty, or what is left after a
 * bounded wait: an agent frees a server's allocations just after the server
 * is gone from the API (as Nova's compute does), so a loaded machine may
 * show them for a moment.
 */
async function usageOnceFreed(projectId: string): Promise<Record<string, number>> {
  let usage = await projectUsage(projectId);
  for (let i = 0; i < 200 && Object.keys(usage).length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    usage = await projectUsage(projectId);
  }
  return usage;
}

/** The compute ports (device_owner `compute:*`) the network service still has. */
async function computePorts(): Promise<{ id: string; device_id: string; device_owner: string }[]> {
  const res = await cloud.call('network', 'GET', '/v2.0/ports', { user: cloud.admin });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body.ports as { id: string; device_id: string; device_owner: string }[]).filter((p) => p.device_owner.startsWith('compute:'));
}

before(async () => {
  cloud = await createTestCloud({
    hosts: hostNames(20),
    sharedBus: true,
    overrides: { 'compute.fake_host_resources': { vcpus: 16, memory_mb: 65536, local_gb: 1000 } },
  });
  ({ imageId, networkId } = await addBootFixtures(cloud, '10.20.0.0/22'));
});

after(async () => {
  await cloud.close();
});

describe('concurrent compute', () => {
  test('40 concurrent creates against an instances quota of 20: exactly 20 servers, 20 clean refusals', async () => {
    await setQuota(cloud.alpha.projectId, { instances: 20, cores: 100, ram: 512000 });
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => boot(`quota-${i}`)));
    const accepted = replies.filter((r) => r.status === 202);
    const refused = replies.filter((r) => r.status !== 202);
    assert.equal(accepted.length, 20, `accepted: ${JSON.stringify(refused.map((r) => [r.status, r.body]).slice(0, 3))}`);
    assert.equal(refused.length, 20, 'refused');
    for (const r of refused) {
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.body.forbidden?.code, 403, JSON.stringify(r.body));
      assert.match(r.body.forbidden?.message ?? '', /^Quota exceeded for instances: Requested 1, but already used 20 of 20 instances/, JSON.stringify(r.body));
    }
    const ids = accepted.map((r) => r.body.server.id as string);
    assert.equal(new Set(ids).size, 20, 'twenty different servers');
    const states = await settle(ids);
    assert.deepEqual([...states.values()].filter((s) => s !== 'ACTIVE'), [], 'every accepted server is ACTIVE');

    const detail = await cloud.request('GET', `/os-quota-sets/${cloud.alpha.projectId}/detail`, { user: cloud.alpha });
    assert.equal(detail.status, 200, JSON.stringify(detail.body));
    assert.deepEqual(detail.body.quota_set.instances, { limit: 20, in_use: 20, reserved: 0 }, 'quota usage');
    assert.equal(detail.body.quota_set.cores.in_use, 20, 'cores in use');
    const limits = await cloud.request('GET', '/limits', { user: cloud.alpha });
    assert.equal(limits.body.limits.absolute.totalInstancesUsed, 20, 'limits');
    assert.equal(limits.body.limits.absolute.maxTotalInstances, 20, 'limits');
    assert.deepEqual(await projectUsage(cloud.alpha.projectId), { VCPU: 20, MEMORY_MB: 20 * 512, DISK_GB: 20 }, 'placement holds exactly twenty claims');

    // The 21st is refused the same way once they all run.
    const more = await boot('quota-21st');
    assert.equal(more.status, 403, JSON.stringify(more.body));

    await bounded(ids, 20, async (id) => {
      const del = await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha });
      assert.equal(del.status, 204, JSON.stringify(del.body));
    });
    await settle(ids, { gone: true });
    assert.deepEqual(await usageOnceFreed(cloud.alpha.projectId), {}, 'placement usage freed');
  });

  test('200 servers booted then deleted 20 at a time on 20 hosts leave no allocation, usage or port behind', async () => {
    await setQuota(cloud.alpha.projectId, { instances: -1, cores: -1, ram: -1 });
    const names = Array.from({ length: 200 }, (_, i) => `load-${i}`);
    const ids = await bounded(names, 20, async (name) => {
      const res = await boot(name);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return res.body.server.id as string;
    });
    const states = await settle(ids);
    assert.deepEqual([...states.entries()].filter(([, s]) => s !== 'ACTIVE'), [], 'all ACTIVE');
    assert.deepEqual(await projectUsage(cloud.alpha.projectId), { VCPU: 200, MEMORY_MB: 200 * 512, DISK_GB: 200 }, 'placement holds 200 claims');
    assert.equal((await computePorts()).length, 200, 'one port each');
    const hosts = await cloud.request('GET', '/servers/detail?all_tenants=1&limit=1000', { user: cloud.admin, version: '2.93' });
    const used = new Set((hosts.body.servers as Record<string, string>[]).filter((s) => ids.includes(s.id ?? '')).map((s) => s['OS-EXT-SRV-ATTR:host']));
    assert.equal(used.size, 20, `spread over every host: ${[...used].join(',')}`);

    await bounded(ids, 20, async (id) => {
      const del = await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha });
      assert.equal(del.status, 204, JSON.stringify(del.body));
    });
    await settle(ids, { gone: true });
    await assertNothingLeft();
  });

  test('servers deleted while they build leave nothing behind either', async () => {
    const ids = await bounded(Array.from({ length: 40 }, (_, i) => `short-${i}`), 20, async (name) => {
      const res = await boot(name);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const id = res.body.server.id as string;
      const del = await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha });
      assert.equal(del.status, 204, JSON.stringify(del.body));
      return id;
    });
    await settle(ids, { gone: true });
    // A delete can overtake the build: wait until each build's conductor step is over (it frees what it claimed for a deleted server).
    await bounded(ids, 10, buildFinished);
    await assertNothingLeft();
  });
});

/** Waits until the create action of a (deleted) server has its conductor event and every event finished (2.21+: deleted servers' actions). */
async function buildFinished(id: string): Promise<void> {
  for (let round = 0; round < 1000; round++) {
    const actions = await cloud.request('GET', `/servers/${id}/os-instance-actions`, { user: cloud.admin, version: '2.93' });
    assert.equal(actions.status, 200, JSON.stringify(actions.body));
    const create = (actions.body.instanceActions as { action: string; request_id: string }[]).find((a) => a.action === 'create');
    assert.ok(create, `server ${id} has its create action`);
    const detail = await cloud.request('GET', `/servers/${id}/os-instance-actions/${create.request_id}`, { user: cloud.admin, version: '2.93' });
    const events = (detail.body.instanceAction?.events ?? []) as { event: string; finish_time: string | null }[];
    if (events.some((e) => e.event === 'conductor_schedule_and_build_instances') && events.every((e) => e.finish_time)) return;
    await sleep(50);
  }
  throw new Error(`the build of ${id} never finished`);
}

/** Placement (project and every host), quota and the network service are back to nothing, once the deletes finished. */
async function assertNothingLeft(): Promise<void> {
  // Deletes finish on the hosts after the servers leave the list: wait for the last frees, then check.
  for (let i = 0; i < 200 && Object.keys(await projectUsage(cloud.alpha.projectId)).length > 0; i++) await sleep(50);
  assert.deepEqual(await usageOnceFreed(cloud.alpha.projectId), {}, 'no placement usage for the project');
  const providers = await cloud.call('placement', 'GET', '/resource_providers', { user: cloud.admin, headers: PLACEMENT });
  assert.equal(providers.body.resource_providers.length, 20, 'twenty hosts');
  for (const rp of providers.body.resource_providers as { uuid: string; name: string }[]) {
    const usages = await cloud.call('placement', 'GET', `/resource_providers/${rp.uuid}/usages`, { user: cloud.admin, headers: PLACEMENT });
    assert.deepEqual(usages.body.usages, { VCPU: 0, MEMORY_MB: 0, DISK_GB: 0 }, `nothing used on ${rp.name}`);
  }
  const detail = await cloud.request('GET', `/os-quota-sets/${cloud.alpha.projectId}/detail`, { user: cloud.alpha });
  assert.equal(detail.body.quota_set.instances.in_use, 0, 'no instances counted');
  assert.equal(detail.body.quota_set.cores.in_use, 0, 'no cores counted');
  assert.equal(detail.body.quota_set.ram.in_use, 0, 'no ram counted');
  for (let i = 0; i < 200 && (await computePorts()).length > 0; i++) await sleep(50);
  assert.deepEqual(await computePorts(), [], 'no compute ports left');
}
