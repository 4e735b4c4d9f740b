import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertServer } from './server-fixtures.test-util.js';

let t: TestCompute;
const flavor = JSON.stringify({ flavorid: '2', name: 'm1.small', vcpus: 2, memory_mb: 2048, root_gb: 20, ephemeral_gb: 5, swap: 0, rxtx_factor: 1, is_public: true, description: null, extra_specs: {} });
let running: string;
let ended: string;
before(async () => {
  t = await createTestCompute();
  running = (await insertServer(t.compute.db, t.alpha, { flavor, launched_at: '2026-01-01T00:00:00.000Z', display_name: 'running' })).uuid;
  ended = (
    await insertServer(t.compute.db, t.alpha, {
      flavor,
      launched_at: '2026-01-01T06:00:00.000Z',
      terminated_at: '2026-01-01T09:00:00.000Z',
      deleted: 1,
      vm_state: 'deleted',
      display_name: 'ended',
    })
  ).uuid;
  await insertServer(t.compute.db, t.beta, { flavor, launched_at: '2026-01-01T10:00:00.000Z' });
  await insertServer(t.compute.db, t.beta, { flavor, launched_at: null, vm_state: 'building' });
});
after(async () => {
  await t.close();
});

const PERIOD = 'start=2026-01-01T00:00:00&end=2026-01-01T12:00:00.000000';

test('one project: hours in the period per server, totals', async () => {
  const res = await t.request('GET', `/os-simple-tenant-usage/${t.alpha.projectId}?${PERIOD}`, { user: t.alphaReader });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const usage = res.body.tenant_usage;
  assert.deepEqual([usage.tenant_id, usage.start, usage.stop], [t.alpha.projectId, '2026-01-01T00:00:00.000000', '2026-01-01T12:00:00.000000'], 'the period');
  const byName = Object.fromEntries(usage.server_usages.map((s: any) => [s.name, s]));
  assert.deepEqual([byName.running.hours, byName.running.state, byName.running.ended_at], [12, 'active', null], 'ran the whole period');
  assert.deepEqual([byName.ended.hours, byName.ended.state, byName.ended.ended_at, byName.ended.uptime], [3, 'terminated', '2026-01-01T09:00:00.000000', 10800], 'ran three hours');
  assert.deepEqual([byName.running.flavor, byName.running.vcpus, byName.running.memory_mb, byName.running.local_gb], ['m1.small', 2, 2048, 25], 'flavor figures');
  assert.deepEqual(
    [usage.total_hours, usage.total_vcpus_usage, usage.total_memory_mb_usage, usage.total_local_gb_usage],
    [15, 30, 30720, 375],
    'totals: hours times the flavor',
  );
  assert.equal(byName.running.instance_id, running, 'instance_id');
  assert.equal(byName.ended.instance_id, ended, 'deleted servers count');
});

test('all projects: admin only, server lists with detailed=1', async () => {
  expectComputeError(await t.request('GET', `/os-simple-tenant-usage?${PERIOD}`, { user: t.alpha }), 403, /os-simple-tenant-usage:list/);
  const brief = await t.request('GET', `/os-simple-tenant-usage?${PERIOD}`, { user: t.admin });
  assert.equal(brief.status, 200, JSON.stringify(brief.body));
  assert.equal(brief.body.tenant_usages.length, 2, 'two projects');
  assert.equal('server_usages' in brief.body.tenant_usages[0], false, 'no servers without detailed');
  const beta = brief.body.tenant_usages.find((u: any) => u.tenant_id === t.beta.projectId);
  assert.equal(beta.total_hours, 2, 'beta\'s server ran two hours; the unlaunched one none');
  const detailed = await t.request('GET', `/os-simple-tenant-usage?${PERIOD}&detailed=1`, { user: t.admin });
  assert.ok(detailed.body.tenant_usages.every((u: any) => Array.isArray(u.server_usages)), 'servers with detailed=1');
});

test('periods: defaults, bad times, another project', async () => {
  const empty = await t.request('GET', `/os-simple-tenant-usage/${t.alpha.projectId}?start=2020-01-01T00:00:00&end=2020-01-02T00:00:00`, { user: t.alpha });
  assert.deepEqual(empty.body, { tenant_usage: {} }, 'nothing ran then');
  const now = await t.request('GET', `/os-simple-tenant-usage/${t.alpha.projectId}`, { user: t.alpha });
  assert.equal(now.status, 200, JSON.stringify(now.body));
  expectComputeError(await t.request('GET', `/os-simple-tenant-usage/${t.alpha.projectId}?start=yesterday`, { user: t.alpha }), 400, 'Invalid datetime string: Datetime is in invalid format');
  expectComputeError(
    await t.request('GET', `/os-simple-tenant-usage/${t.alpha.projectId}?start=2026-01-02T00:00:00&end=2026-01-01T00:00:00`, { user: t.alpha }),
    400,
    'Invalid start time. The start time cannot occur after the end time.',
  );
  expectComputeError(await t.request('GET', `/os-simple-tenant-usage/${t.beta.projectId}?${PERIOD}`, { user: t.alpha }), 403);
  const future = await t.request('GET', `/os-simple-tenant-usage/${t.alpha.projectId}?start=2026-01-01T00:00:00&end=2999-01-01T00:00:00`, { user: t.alpha });
  assert.ok(Date.parse(`${future.body.tenant_usage.stop}Z`) <= Date.now(), 'the end is cut at now');
});

test('paging by server from 2.40', async () => {
  const first = await t.request('GET', `/os-simple-tenant-usage?${PERIOD}&detailed=1&limit=1`, { user: t.admin, version: '2.40' });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const servers = first.body.tenant_usages.flatMap((u: any) => u.server_usages);
  assert.equal(servers.length, 1, 'one server per page');
  const next = first.body.tenant_usages_links[0].href as string;
  assert.match(next, new RegExp(`/v2.1/os-simple-tenant-usage\\?detailed=1&end=.*&limit=1&start=.*&marker=${servers[0].instance_id}$`), 'next link');
  const marker = servers[0].instance_id;
  const second = await t.request('GET', `/os-simple-tenant-usage?${PERIOD}&detailed=1&limit=1&marker=${marker}`, { user: t.admin, version: '2.40' });
  assert.notEqual(second.body.tenant_usages[0].server_usages[0].instance_id, marker, 'the next server');
  expectComputeError(await t.request('GET', `/os-simple-tenant-usage?${PERIOD}&marker=nope`, { user: t.admin, version: '2.40' }), 400, 'Marker nope could not be found.');
  const show = await t.request('GET', `/os-simple-tenant-usage/${t.alpha.projectId}?${PERIOD}&limit=1`, { user: t.alpha, version: '2.40' });
  assert.match(show.body.tenant_usage_links[0].href, new RegExp(`/os-simple-tenant-usage/${t.alpha.projectId}\\?`), 'per-project next link');
  expectComputeError(await t.request('GET', `/os-simple-tenant-usage?${PERIOD}&foo=1`, { user: t.admin, version: '2.75' }), 400, /Additional properties/);
});
