import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ComputeNodeRow, ServiceRow } from '../db/schema.js';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertComputeHost } from './hosts.test-util.js';
import { insertServer } from './server-fixtures.test-util.js';

let t: TestCompute;
let one: { service: ServiceRow; node: ComputeNodeRow };
let two: { service: ServiceRow; node: ComputeNodeRow };
let serverUuid: string;
before(async () => {
  t = await createTestCompute();
  one = await insertComputeHost(t.compute.db, 'hv-one');
  two = await insertComputeHost(t.compute.db, 'hv-two', { service: { disabled: 1, disabled_reason: 'maintenance' } });
  const flavor = JSON.stringify({ flavorid: 'x', name: 'x', vcpus: 2, memory_mb: 1024, root_gb: 10, ephemeral_gb: 5, swap: 2048, rxtx_factor: 1, is_public: true, description: null, extra_specs: {} });
  serverUuid = (await insertServer(t.compute.db, t.alpha, { host: 'hv-one', node: 'hv-one', vcpus: 2, memory_mb: 1024, flavor, display_name: 'on-one' })).uuid;
  await insertServer(t.compute.db, t.alpha, { host: 'hv-one', node: 'hv-one', vcpus: 2, memory_mb: 1024, flavor, task_state: 'rebuilding' });
  await insertServer(t.compute.db, t.alpha, { host: 'hv-one', node: 'hv-one', vcpus: 4, memory_mb: 4096, flavor, deleted: 1 });
});
after(async () => {
  await t.close();
});

test('list: admin only; ids are integers before 2.53, uuids from 2.53', async () => {
  expectComputeError(await t.request('GET', '/os-hypervisors', { user: t.alpha }), 403, /os-hypervisors:list/);
  const v21 = await t.request('GET', '/os-hypervisors', { user: t.admin });
  assert.equal(v21.status, 200, JSON.stringify(v21.body));
  assert.deepEqual(v21.body.hypervisors, [
    { id: one.node.id, hypervisor_hostname: 'hv-one', state: 'up', status: 'enabled' },
    { id: two.node.id, hypervisor_hostname: 'hv-two', state: 'up', status: 'disabled' },
  ], 'v2.1 list');
  const v253 = await t.request('GET', '/os-hypervisors', { user: t.admin, version: '2.53' });
  assert.equal(v253.body.hypervisors[0].id, one.node.uuid, 'uuid ids');
});

test('detail: resource figures with usage of the servers on the node', async () => {
  const res = await t.request('GET', `/os-hypervisors/${one.node.id}`, { user: t.admin });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const h = res.body.hypervisor;
  // Two live servers of 2 vcpus, 1024 MB, 10 + 5 GB and 2 GB swap; 512 MB reserved for the host.
  assert.deepEqual(
    [h.vcpus, h.vcpus_used, h.memory_mb, h.memory_mb_used, h.free_ram_mb, h.local_gb, h.local_gb_used, h.free_disk_gb, h.running_vms, h.current_workload],
    [8, 4, 16384, 2560, 13824, 200, 34, 166, 2, 1],
    'usage',
  );
  assert.equal(typeof h.cpu_info, 'string', 'cpu_info is text before 2.28');
  assert.deepEqual(h.service, { id: one.service.id, host: 'hv-one', disabled_reason: null }, 'service');
  assert.deepEqual([h.hypervisor_type, h.hypervisor_version, h.host_ip], ['fake', 1000, '192.0.2.10'], 'driver figures');
  const v228 = await t.request('GET', `/os-hypervisors/${one.node.id}`, { user: t.admin, version: '2.28' });
  assert.equal(v228.body.hypervisor.cpu_info.arch, 'x86_64', 'cpu_info is an object from 2.28');
  const v288 = await t.request('GET', `/os-hypervisors/${one.node.uuid}`, { user: t.admin, version: '2.88' });
  assert.deepEqual(
    Object.keys(v288.body.hypervisor).sort(),
    ['host_ip', 'hypervisor_hostname', 'hypervisor_type', 'hypervisor_version', 'id', 'service', 'state', 'status', 'uptime'],
    'no resource figures from 2.88, uptime instead',
  );
  const list = await t.request('GET', '/os-hypervisors/detail', { user: t.admin, version: '2.53' });
  assert.equal(list.body.hypervisors[1].service.disabled_reason, 'maintenance', 'detail list');
});

test('show: bad and unknown ids', async () => {
  expectComputeError(await t.request('GET', '/os-hypervisors/abc', { user: t.admin }), 404, "Hypervisor with ID 'abc' could not be found.");
  expectComputeError(await t.request('GET', '/os-hypervisors/999', { user: t.admin }), 404, "Hypervisor with ID '999' could not be found.");
  expectComputeError(await t.request('GET', '/os-hypervisors/999', { user: t.admin, version: '2.53' }), 400, 'Invalid uuid 999');
  expectComputeError(await t.request('GET', '/os-hypervisors/00000000-0000-4000-8000-000000000000', { user: t.admin, version: '2.53' }), 404);
});

test('with_servers and the hostname pattern (2.53)', async () => {
  const res = await t.request('GET', '/os-hypervisors?with_servers=true&hypervisor_hostname_pattern=one', { user: t.admin, version: '2.53' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.hypervisors.length, 1, 'one match');
  assert.deepEqual(res.body.hypervisors[0].servers.map((s: any) => s.uuid).includes(serverUuid), true, 'servers listed');
  const empty = await t.request('GET', `/os-hypervisors/${two.node.uuid}?with_servers=1`, { user: t.admin, version: '2.75' });
  assert.deepEqual(empty.body.hypervisor.servers, [], 'an empty list from 2.75');
  const omitted = await t.request('GET', `/os-hypervisors/${two.node.uuid}?with_servers=1`, { user: t.admin, version: '2.74' });
  assert.equal('servers' in omitted.body.hypervisor, false, 'no servers key before 2.75 when there are none');
  expectComputeError(await t.request('GET', '/os-hypervisors?hypervisor_hostname_pattern=zzz', { user: t.admin, version: '2.53' }), 404, "No hypervisor matching 'zzz' could be found.");
  expectComputeError(await t.request('GET', '/os-hypervisors?hypervisor_hostname_pattern=hv&limit=1', { user: t.admin, version: '2.53' }), 400, /Paging over hypervisors/);
  expectComputeError(await t.request('GET', '/os-hypervisors?with_servers=maybe', { user: t.admin, version: '2.53' }), 400, /with_servers/);
  expectComputeError(await t.request('GET', '/os-hypervisors?foo=1', { user: t.admin, version: '2.53' }), 400, /Additional properties/);
});

test('paging from 2.33', async () => {
  const first = await t.request('GET', '/os-hypervisors?limit=1', { user: t.admin, version: '2.33' });
  assert.equal(first.body.hypervisors.length, 1, 'one per page');
  assert.equal(first.body.hypervisors_links[0].href, `http://compute.test:8774/v2.1/os-hypervisors?limit=1&marker=${one.node.id}`, 'next link');
  const second = await t.request('GET', `/os-hypervisors?limit=1&marker=${one.node.id}`, { user: t.admin, version: '2.33' });
  assert.equal(second.body.hypervisors[0].hypervisor_hostname, 'hv-two', 'second page');
  expectComputeError(await t.request('GET', '/os-hypervisors?marker=999', { user: t.admin, version: '2.33' }), 400, 'marker [999] not found');
  const uuids = await t.request('GET', `/os-hypervisors/detail?limit=1&marker=${one.node.uuid}`, { user: t.admin, version: '2.53' });
  assert.equal(uuids.body.hypervisors[0].id, two.node.uuid, 'uuid markers from 2.53');
});

test('statistics (enabled hosts) and uptime, until 2.87', async () => {
  const res = await t.request('GET', '/os-hypervisors/statistics', { user: t.admin });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(
    [res.body.hypervisor_statistics.count, res.body.hypervisor_statistics.vcpus, res.body.hypervisor_statistics.vcpus_used, res.body.hypervisor_statistics.running_vms],
    [1, 8, 4, 2],
    'the disabled host is left out',
  );
  expectComputeError(await t.request('GET', '/os-hypervisors/statistics', { user: t.admin, version: '2.88' }), 404);
  expectComputeError(await t.request('GET', '/os-hypervisors/statistics', { user: t.alpha }), 403);
  const uptime = await t.request('GET', `/os-hypervisors/${one.node.id}/uptime`, { user: t.admin });
  assert.equal(uptime.status, 200, JSON.stringify(uptime.body));
  assert.match(uptime.body.hypervisor.uptime, /up .*load average/, 'an uptime line');
  expectComputeError(await t.request('GET', '/os-hypervisors/999/uptime', { user: t.admin }), 404);
  expectComputeError(await t.request('GET', `/os-hypervisors/${one.node.uuid}/uptime`, { user: t.admin, version: '2.88' }), 404);
});

test('search and servers by pattern, until 2.52', async () => {
  const search = await t.request('GET', '/os-hypervisors/hv/search', { user: t.admin });
  assert.deepEqual(search.body.hypervisors.map((h: any) => h.hypervisor_hostname), ['hv-one', 'hv-two'], 'search');
  const servers = await t.request('GET', '/os-hypervisors/hv/servers', { user: t.admin });
  assert.equal(servers.body.hypervisors[0].servers.length, 2, 'servers of hv-one');
  assert.equal('servers' in servers.body.hypervisors[1], false, 'none on hv-two');
  expectComputeError(await t.request('GET', '/os-hypervisors/nothing/search', { user: t.admin }), 404, "No hypervisor matching 'nothing' could be found.");
  expectComputeError(await t.request('GET', '/os-hypervisors/hv/search', { user: t.admin, version: '2.53' }), 404);
  expectComputeError(await t.request('GET', '/os-hypervisors/hv/servers', { user: t.alpha }), 403);
});
