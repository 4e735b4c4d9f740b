import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertComputeHost, insertService } from './hosts.test-util.js';
import { insertServer } from './server-fixtures.test-util.js';

let t: TestCompute;
let compute1: { uuid: string; id: number };
let scheduler: { uuid: string; id: number };
before(async () => {
  t = await createTestCompute();
  compute1 = (await insertComputeHost(t.compute.db, 'svc-compute-1')).service;
  await insertComputeHost(t.compute.db, 'svc-compute-2', { service: { last_seen_up: '2020-01-01T00:00:00.000Z' } });
  scheduler = await insertService(t.compute.db, 'svc-control', 'nova-scheduler');
  await insertService(t.compute.db, 'svc-control', 'nova-conductor');
});
after(async () => {
  await t.close();
});

async function listServices(query = '', version?: string): Promise<any[]> {
  const res = await t.request('GET', `/os-services${query}`, { user: t.admin, ...(version ? { version } : {}) });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.services;
}

test('list: admin only; v2.1, 2.11 and 2.53 views', async () => {
  expectComputeError(await t.request('GET', '/os-services', { user: t.alpha }), 403, /os-services:list/);
  const v21 = await listServices();
  const one = v21.find((s) => s.host === 'svc-compute-1');
  assert.deepEqual(Object.keys(one).sort(), ['binary', 'disabled_reason', 'host', 'id', 'state', 'status', 'updated_at', 'zone'], 'v2.1 keys');
  assert.equal(one.id, compute1.id, 'integer id before 2.53');
  assert.deepEqual([one.binary, one.zone, one.status, one.state], ['nova-compute', 'nova', 'enabled', 'up'], 'compute service in the default zone');
  assert.match(one.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/, 'updated_at as Nova writes it');
  assert.equal(v21.find((s) => s.binary === 'nova-scheduler').zone, 'internal', 'scheduler in the internal zone');
  assert.equal(v21.find((s) => s.host === 'svc-compute-2').state, 'down', 'not seen for long: down');
  const v211 = await listServices('', '2.11');
  assert.equal(v211[0].forced_down, false, 'forced_down from 2.11');
  const v253 = await listServices('', '2.53');
  assert.equal(v253.find((s) => s.host === 'svc-compute-1').id, compute1.uuid, 'uuid from 2.53');
});

test('list: host and binary filters', async () => {
  assert.deepEqual((await listServices('?binary=nova-conductor')).map((s) => s.host), ['svc-control'], 'by binary');
  assert.deepEqual((await listServices('?host=svc-control')).map((s) => s.binary).sort(), ['nova-conductor', 'nova-scheduler'], 'by host');
  assert.deepEqual(await listServices('?host=svc-control&binary=xxx'), [], 'no match');
  assert.equal((await listServices('?xxx=nova-compute', '2.74')).length, 4, 'unknown filters are ignored before 2.75');
  expectComputeError(await t.request('GET', '/os-services?xxx=1', { user: t.admin, version: '2.75' }), 400, /Additional properties/);
});

test('2.53 update: disable with a reason, enable, force down', async () => {
  const url = `/os-services/${compute1.uuid}`;
  const disabled = await t.request('PUT', url, { user: t.admin, payload: { status: 'disabled', disabled_reason: 'maintenance' }, version: '2.53' });
  assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
  assert.deepEqual([disabled.body.service.status, disabled.body.service.disabled_reason, disabled.body.service.id], ['disabled', 'maintenance', compute1.uuid], 'disabled');
  assert.deepEqual(
    Object.keys(disabled.body.service).sort(),
    ['binary', 'disabled_reason', 'forced_down', 'host', 'id', 'state', 'status', 'updated_at', 'zone'],
    'the full service',
  );
  const enabled = await t.request('PUT', url, { user: t.admin, payload: { status: 'enabled' }, version: '2.53' });
  assert.deepEqual([enabled.body.service.status, enabled.body.service.disabled_reason], ['enabled', null], 'enabled, reason cleared');
  const down = await t.request('PUT', url, { user: t.admin, payload: { forced_down: true }, version: '2.53' });
  assert.deepEqual([down.body.service.forced_down, down.body.service.state], [true, 'down'], 'forced down is down');
  const up = await t.request('PUT', url, { user: t.admin, payload: { forced_down: false }, version: '2.53' });
  assert.deepEqual([up.body.service.forced_down, up.body.service.state], [false, 'up'], 'up again');
});

test('2.53 update: errors', async () => {
  const put = (id: string, payload: unknown) => t.request('PUT', `/os-services/${id}`, { user: t.admin, payload, version: '2.53' });
  expectComputeError(await put('00000000-0000-4000-8000-000000000000', { status: 'enabled' }), 404, 'Service 00000000-0000-4000-8000-000000000000 could not be found.');
  expectComputeError(await put('not-a-uuid', { status: 'enabled' }), 400, 'Invalid uuid not-a-uuid');
  expectComputeError(await put(scheduler.uuid, { status: 'disabled' }), 400, 'Updating a nova-scheduler service is not supported. Only nova-compute services can be updated.');
  expectComputeError(await put(compute1.uuid, { status: 'enabled', disabled_reason: 'x' }), 400, "Specifying 'disabled_reason' with status 'enabled' is invalid.");
  expectComputeError(await put(compute1.uuid, {}), 400, "No updates were requested. Fields 'status' or 'forced_down' should be specified.");
  expectComputeError(await put(compute1.uuid, { status: 'sleeping' }), 400, /field\/attribute status/);
  expectComputeError(await put(compute1.uuid, { host: 'x' }), 400, /'host' was unexpected/);
  expectComputeError(await t.request('PUT', `/os-services/${compute1.uuid}`, { user: t.alpha, payload: { status: 'disabled' }, version: '2.53' }), 403);
});

test('update before 2.53: enable, disable, disable-log-reason, force-down', async () => {
  const body = { host: 'svc-compute-1', binary: 'nova-compute' };
  const disable = await t.request('PUT', '/os-services/disable', { user: t.admin, payload: body });
  assert.deepEqual(disable.body, { service: { host: 'svc-compute-1', binary: 'nova-compute', status: 'disabled' } }, 'disable');
  const reason = await t.request('PUT', '/os-services/disable-log-reason', { user: t.admin, payload: { ...body, disabled_reason: 'test' } });
  assert.deepEqual(reason.body.service, { host: 'svc-compute-1', binary: 'nova-compute', status: 'disabled', disabled_reason: 'test' }, 'disable with a reason');
  assert.equal((await listServices('?host=svc-compute-1'))[0].disabled_reason, 'test', 'reason kept');
  const enable = await t.request('PUT', '/os-services/enable', { user: t.admin, payload: body });
  assert.equal(enable.body.service.status, 'enabled', 'enable');
  expectComputeError(await t.request('PUT', '/os-services/force-down', { user: t.admin, payload: { ...body, forced_down: true } }), 400, /'forced_down' was unexpected/);
  const forced = await t.request('PUT', '/os-services/force-down', { user: t.admin, payload: { ...body, forced_down: true }, version: '2.11' });
  assert.deepEqual(forced.body, { service: { host: 'svc-compute-1', binary: 'nova-compute', forced_down: true } }, 'force down');
  await t.request('PUT', '/os-services/force-down', { user: t.admin, payload: { ...body, forced_down: false }, version: '2.11' });
  expectComputeError(await t.request('PUT', '/os-services/disable-log-reason', { user: t.admin, payload: body }), 400, 'Missing disabled reason field');
  expectComputeError(await t.request('PUT', '/os-services/frobnicate', { user: t.admin, payload: body }), 404, 'Unknown action');
  expectComputeError(await t.request('PUT', '/os-services/enable', { user: t.admin, payload: { host: 'nowhere', binary: 'nova-compute' } }), 404, 'Could not find binary nova-compute on host nowhere.');
  expectComputeError(await t.request('PUT', '/os-services/enable', { user: t.admin, payload: { host: 'svc-control', binary: 'nova-scheduler' } }), 400, /Only nova-compute services can be updated/);
  expectComputeError(await t.request('PUT', '/os-services/enable', { user: t.admin, payload: { host: 'svc-compute-1' } }), 400, /'binary' is a required property/);
});

test('delete: 204; 409 while the host has servers; ids by version', async () => {
  const busy = await insertComputeHost(t.compute.db, 'svc-busy');
  await insertServer(t.compute.db, t.alpha, { host: 'svc-busy', node: 'svc-busy' });
  expectComputeError(await t.request('DELETE', `/os-services/${busy.service.uuid}`, { user: t.admin, version: '2.53' }), 409, 'Unable to delete compute service that is hosting instances. Migrate or delete the instances first.');
  const idle = await insertComputeHost(t.compute.db, 'svc-idle');
  expectComputeError(await t.request('DELETE', '/os-services/abc', { user: t.admin }), 400, 'Invalid input received: id must be an integer');
  expectComputeError(await t.request('DELETE', '/os-services/12', { user: t.admin, version: '2.53' }), 400, 'Invalid uuid 12');
  expectComputeError(await t.request('DELETE', `/os-services/${idle.service.id}`, { user: t.alpha }), 403);
  const res = await t.request('DELETE', `/os-services/${idle.service.id}`, { user: t.admin });
  assert.equal(res.status, 204, 'deleted');
  const nodes = await t.compute.db.selectFrom('compute_node').select('id').where('host', '=', 'svc-idle').execute();
  assert.deepEqual(nodes, [], 'its compute node went with it');
  expectComputeError(await t.request('DELETE', `/os-services/${idle.service.id}`, { user: t.admin }), 404, `Service ${idle.service.id} not found.`);
});
