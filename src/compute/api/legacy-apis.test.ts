import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertComputeHost, insertService } from './hosts.test-util.js';
import { insertServer } from './server-fixtures.test-util.js';

/**
 * The compute APIs Nova keeps for older clients and that need no other
 * service: `/extensions`, `/os-hosts`, `/os-instance_usage_audit_log`,
 * server diagnostics and password, the proxies' 404 from 2.36, and the
 * server list's `tenant_id`/`changes-since` rules.
 */
let t: TestCompute;
before(async () => {
  t = await createTestCompute();
  await insertComputeHost(t.compute.db, 'legacy-1');
  await insertService(t.compute.db, 'legacy-control', 'nova-conductor');
});
after(async () => {
  await t.close();
});

test('extensions: listed and shown by alias, 404 for an unknown one', async () => {
  const list = await t.request('GET', '/extensions', { user: t.alpha });
  assert.equal(list.status, 200, JSON.stringify(list.body));
  assert.ok(list.body.extensions.some((e: { name: string }) => e.name === 'Hosts'), 'Hosts listed');
  const one = await t.request('GET', '/extensions/os-hosts', { user: t.alpha });
  assert.equal(one.body.extension.alias, 'os-hosts');
  expectComputeError(await t.request('GET', '/extensions/os-nothing', { user: t.alpha }), 404);
});

test('os-hosts: admin only; zones; a host with its resources; 404 for an unknown host; gone from 2.43', async () => {
  expectComputeError(await t.request('GET', '/os-hosts', { user: t.alpha }), 403);
  const list = await t.request('GET', '/os-hosts', { user: t.admin });
  assert.equal(list.status, 200, JSON.stringify(list.body));
  assert.deepEqual(
    list.body.hosts.filter((h: { host_name: string }) => h.host_name.startsWith('legacy')).sort((a: { service: string }, b: { service: string }) => a.service.localeCompare(b.service)),
    [
      { host_name: 'legacy-1', service: 'compute', zone: 'nova' },
      { host_name: 'legacy-control', service: 'conductor', zone: 'internal' },
    ],
  );
  assert.deepEqual((await t.request('GET', '/os-hosts?zone=nowhere', { user: t.admin })).body.hosts, [], 'zone filter');
  await insertServer(t.compute.db, { projectId: t.alpha.projectId, userId: t.alpha.userId }, { host: 'legacy-1', node: 'legacy-1', vcpus: 2, memory_mb: 1024 });
  const show = await t.request('GET', '/os-hosts/legacy-1', { user: t.admin });
  assert.equal(show.status, 200, JSON.stringify(show.body));
  const [total, usedNow] = show.body.host;
  assert.equal(total.resource.project, '(total)');
  assert.equal(total.resource.cpu, 8, 'the node');
  assert.equal(usedNow.resource.cpu, 2, 'the server on it');
  assert.ok(show.body.host.some((r: { resource: { project: string } }) => r.resource.project === t.alpha.projectId), 'per project');
  expectComputeError(await t.request('GET', '/os-hosts/nowhere', { user: t.admin }), 404, /Compute host nowhere could not be found/);
  expectComputeError(await t.request('PUT', '/os-hosts/legacy-1', { user: t.admin, payload: { status: 'sideways' } }), 400);
  const disabled = await t.request('PUT', '/os-hosts/legacy-1', { user: t.admin, payload: { status: 'disable' } });
  assert.deepEqual(disabled.body, { host: 'legacy-1', status: 'disabled' });
  await t.request('PUT', '/os-hosts/legacy-1', { user: t.admin, payload: { status: 'enable' } });
  expectComputeError(await t.request('GET', '/os-hosts/legacy-1/reboot', { user: t.admin }), 501);
  expectComputeError(await t.request('GET', '/os-hosts', { user: t.admin, version: '2.43' }), 404);
});

test('instance usage audit log: admin only; every host not run; 400 for a bad time', async () => {
  expectComputeError(await t.request('GET', '/os-instance_usage_audit_log', { user: t.alpha }), 403);
  const res = await t.request('GET', '/os-instance_usage_audit_log', { user: t.admin });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const log = res.body.instance_usage_audit_logs;
  assert.ok(log.hosts_not_run.includes('legacy-1'), 'the compute host');
  assert.equal(log.num_hosts_done, 0);
  assert.match(log.period_beginning, /^\d{4}-\d\d-01 00:00:00$/);
  const at = await t.request('GET', `/os-instance_usage_audit_log/${encodeURIComponent('2020-03-15 10:00:00')}`, { user: t.admin });
  assert.equal(at.body.instance_usage_audit_log.period_beginning, '2020-02-01 00:00:00', 'the month before');
  expectComputeError(await t.request('GET', '/os-instance_usage_audit_log/invalid_time', { user: t.admin }), 400, /Invalid timestamp/);
});

test('server diagnostics (admin; 2.48 form) and server password', async () => {
  const server = await insertServer(t.compute.db, { projectId: t.alpha.projectId, userId: t.alpha.userId }, { host: 'legacy-1', node: 'legacy-1', vcpus: 1, memory_mb: 512 });
  expectComputeError(await t.request('GET', `/servers/${server.uuid}/diagnostics`, { user: t.alpha }), 403);
  const diag = await t.request('GET', `/servers/${server.uuid}/diagnostics`, { user: t.admin, version: '2.48' });
  assert.equal(diag.status, 200, JSON.stringify(diag.body));
  assert.equal(diag.body.num_cpus, 1);
  assert.equal(diag.body.memory_details.maximum, 512);
  const old = await t.request('GET', `/servers/${server.uuid}/diagnostics`, { user: t.admin });
  assert.ok(Object.keys(old.body).length > 0, 'the pre-2.48 map');
  const password = await t.request('GET', `/servers/${server.uuid}/os-server-password`, { user: t.alpha });
  assert.deepEqual(password.body, { password: '' });
  assert.equal((await t.request('DELETE', `/servers/${server.uuid}/os-server-password`, { user: t.alpha })).status, 204);
});

test('the proxy APIs are 404 from 2.36', async () => {
  for (const path of ['/os-security-groups', '/os-floating-ips', '/os-networks', '/os-tenant-networks', '/images', '/os-floating-ip-pools']) {
    expectComputeError(await t.request('GET', path, { user: t.alpha, version: '2.36' }), 404);
  }
});

test('server list: tenant_id counts only with all_tenants; changes-since must be a date-time', async () => {
  const mine = await insertServer(t.compute.db, { projectId: t.admin.projectId, userId: t.admin.userId });
  const theirs = await insertServer(t.compute.db, { projectId: t.alpha.projectId, userId: t.alpha.userId });
  const ids = async (query: string): Promise<string[]> => (await t.request('GET', `/servers${query}`, { user: t.admin })).body.servers.map((s: { id: string }) => s.id);
  const plain = await ids(`?tenant_id=${t.alpha.projectId}`);
  assert.ok(plain.includes(mine.uuid) && !plain.includes(theirs.uuid), 'without all_tenants: the admin project');
  const all = await ids(`?all_tenants=1&tenant_id=${t.alpha.projectId}`);
  assert.ok(all.includes(theirs.uuid) && !all.includes(mine.uuid), 'with all_tenants: that project');
  expectComputeError(await t.request('GET', '/servers?changes-since=2011/01/01', { user: t.alpha }), 400, /changes-since/);
});
