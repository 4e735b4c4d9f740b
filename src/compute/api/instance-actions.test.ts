import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { finishActionEvent, recordAction, startActionEvent } from '../instances.js';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertServer } from './server-fixtures.test-util.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
});
after(async () => {
  await t.close();
});

/** Records an action at a given time, with one finished event on `host-1`. */
async function action(uuid: string, projectId: string, name: string, requestId: string, time: string, error?: { message: string; traceback: string }): Promise<void> {
  const id = await recordAction(t.compute.db, { uuid, project_id: projectId }, name, { requestId, userId: 'u-1', projectId });
  await t.compute.db.updateTable('instance_action').set({ start_time: time, updated_at: time }).where('id', '=', id).execute();
  const event = await startActionEvent(t.compute.db, id, `compute_${name}_instance`, 'host-1');
  await finishActionEvent(t.compute.db, event, error);
  await t.compute.db.updateTable('instance_action_event').set({ start_time: time, finish_time: time }).where('id', '=', event).execute();
  await t.compute.db.updateTable('instance_action').set({ updated_at: time }).where('id', '=', id).execute();
}

const req = (n: number): string => `req-00000000-0000-0000-0000-00000000000${n}`;

test('list: newest first; 2.1 keys, updated_at from 2.58', async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  await action(server.uuid, t.alpha.projectId, 'create', req(1), '2026-01-01T10:00:00.000Z');
  await action(server.uuid, t.alpha.projectId, 'reboot', req(2), '2026-01-01T11:00:00.000Z');
  const res = await t.request('GET', `/servers/${server.uuid}/os-instance-actions`, { user: t.alpha });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.instanceActions.map((a: { action: string }) => a.action), ['reboot', 'create'], 'newest first');
  assert.deepEqual(
    res.body.instanceActions[1],
    { action: 'create', instance_uuid: server.uuid, request_id: req(1), user_id: 'u-1', project_id: t.alpha.projectId, start_time: '2026-01-01T10:00:00.000000', message: null },
    'the 2.1 view',
  );
  assert.equal(res.body.links, undefined, 'no links before 2.58');
  const v258 = await t.request('GET', `/servers/${server.uuid}/os-instance-actions`, { user: t.alpha, version: '2.58' });
  assert.equal(v258.body.instanceActions[0].updated_at, '2026-01-01T11:00:00.000000', 'updated_at from 2.58');
});

test('2.58 paging: limit, marker, next link; changes-since; 2.66 changes-before', async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  for (let i = 1; i <= 4; i++) await action(server.uuid, t.alpha.projectId, i === 1 ? 'create' : 'reboot', req(i), `2026-02-0${i}T00:00:00.000Z`);
  const url = `/servers/${server.uuid}/os-instance-actions`;
  const page = await t.request('GET', `${url}?limit=2`, { user: t.alpha, version: '2.58' });
  assert.deepEqual(page.body.instanceActions.map((a: { request_id: string }) => a.request_id), [req(4), req(3)], 'first page');
  assert.deepEqual(page.body.links, [{ rel: 'next', href: `http://compute.test:8774/v2.1/servers/${server.uuid}/os-instance-actions?limit=2&marker=${req(3)}` }], 'next link');
  const next = await t.request('GET', `${url}?limit=2&marker=${req(3)}`, { user: t.alpha, version: '2.58' });
  assert.deepEqual(next.body.instanceActions.map((a: { request_id: string }) => a.request_id), [req(2), req(1)], 'second page');
  const last = await t.request('GET', `${url}?limit=2&marker=${req(1)}`, { user: t.alpha, version: '2.58' });
  assert.deepEqual(last.body, { instanceActions: [] }, 'past the end: empty, no links');
  expectComputeError(await t.request('GET', `${url}?marker=req-nope`, { user: t.alpha, version: '2.58' }), 400, 'Marker req-nope could not be found.');

  const since = await t.request('GET', `${url}?changes-since=2026-02-03T00:00:00Z`, { user: t.alpha, version: '2.58' });
  assert.deepEqual(since.body.instanceActions.map((a: { request_id: string }) => a.request_id), [req(4), req(3)], 'changes-since is inclusive');
  expectComputeError(await t.request('GET', `${url}?changes-before=2026-02-02T00:00:00Z`, { user: t.alpha, version: '2.65' }), 400, /'changes-before' was unexpected/);
  const window = await t.request('GET', `${url}?changes-since=2026-02-02T00:00:00Z&changes-before=2026-02-03T00:00:00Z`, { user: t.alpha, version: '2.66' });
  assert.deepEqual(window.body.instanceActions.map((a: { request_id: string }) => a.request_id), [req(3), req(2)], 'a window');
  expectComputeError(await t.request('GET', `${url}?changes-since=2026-02-03T00:00:00Z&changes-before=2026-02-02T00:00:00Z`, { user: t.alpha, version: '2.66' }), 400, 'The value of changes-since must be less than or equal to changes-before.');
  expectComputeError(await t.request('GET', `${url}?changes-since=yesterday`, { user: t.alpha, version: '2.58' }), 400, "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'");
  expectComputeError(await t.request('GET', `${url}?limit=x`, { user: t.alpha, version: '2.58' }), 400, /query parameters limit/);
  expectComputeError(await t.request('GET', `${url}?foo=1`, { user: t.alpha, version: '2.58' }), 400, /'foo' was unexpected/);
  const lax = await t.request('GET', `${url}?foo=1&limit=1`, { user: t.alpha, version: '2.57' });
  assert.equal(lax.body.instanceActions.length, 4, 'before 2.58 parameters are ignored');
  const none = await t.request('GET', `${url}?limit=0`, { user: t.alpha, version: '2.58' });
  assert.deepEqual(none.body, { instanceActions: [] }, 'limit=0 is an empty page');
});

test('show: events by microversion and role', async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  await action(server.uuid, t.alpha.projectId, 'stop', req(5), '2026-03-01T00:00:00.000Z', { message: 'it broke', traceback: 'Traceback: boom' });
  const url = `/servers/${server.uuid}/os-instance-actions/${req(5)}`;
  const member21 = await t.request('GET', url, { user: t.alpha });
  assert.equal(member21.status, 200, JSON.stringify(member21.body));
  assert.equal(member21.body.instanceAction.events, undefined, 'no events for a member before 2.51');
  assert.equal(member21.body.instanceAction.message, 'Error', 'a failed event marks the action');
  const admin21 = await t.request('GET', url, { user: t.admin });
  assert.deepEqual(
    admin21.body.instanceAction.events,
    [{ event: 'compute_stop_instance', start_time: '2026-03-01T00:00:00.000000', finish_time: '2026-03-01T00:00:00.000000', result: 'Error', traceback: 'Traceback: boom' }],
    'an admin sees events with the traceback',
  );
  const member251 = await t.request('GET', url, { user: t.alpha, version: '2.51' });
  assert.deepEqual(Object.keys(member251.body.instanceAction.events[0]).sort(), ['event', 'finish_time', 'result', 'start_time'], 'a member sees events without traceback from 2.51');
  const hostId = createHash('sha224').update(`${t.alpha.projectId}host-1`).digest('hex');
  const member262 = await t.request('GET', url, { user: t.alpha, version: '2.62' });
  assert.equal(member262.body.instanceAction.events[0].hostId, hostId, 'hostId from 2.62');
  assert.equal(member262.body.instanceAction.events[0].host, undefined, 'no host for a member');
  const admin262 = await t.request('GET', url, { user: t.admin, version: '2.62' });
  assert.equal(admin262.body.instanceAction.events[0].host, 'host-1', 'host for an admin from 2.62');
  assert.equal(admin262.body.instanceAction.events[0].details, undefined, 'no details before 2.84');
  const admin284 = await t.request('GET', url, { user: t.admin, version: '2.84' });
  assert.equal(admin284.body.instanceAction.events[0].details, 'it broke', 'details for an admin from 2.84');
  const member284 = await t.request('GET', url, { user: t.alpha, version: '2.84' });
  assert.equal(member284.body.instanceAction.events[0].details, undefined, 'no details for a member');
  expectComputeError(await t.request('GET', `/servers/${server.uuid}/os-instance-actions/999`, { user: t.alpha }), 404, 'Action 999 not found');
});

test("deleted servers from 2.21; another project's server is 404", async () => {
  const server = await insertServer(t.compute.db, t.alpha, { deleted: 1, vm_state: 'deleted', deleted_at: '2026-04-01T00:00:00.000Z' });
  await action(server.uuid, t.alpha.projectId, 'create', req(6), '2026-04-01T00:00:00.000Z');
  await action(server.uuid, t.alpha.projectId, 'delete', req(7), '2026-04-01T00:01:00.000Z');
  const url = `/servers/${server.uuid}/os-instance-actions`;
  expectComputeError(await t.request('GET', url, { user: t.alpha, version: '2.20' }), 404, `Instance ${server.uuid} could not be found.`);
  const res = await t.request('GET', url, { user: t.alpha, version: '2.21' });
  assert.deepEqual(res.body.instanceActions.map((a: { action: string }) => a.action).sort(), ['create', 'delete'], 'a deleted server keeps its actions');
  const show = await t.request('GET', `${url}/${req(7)}`, { user: t.alpha, version: '2.21' });
  assert.equal(show.body.instanceAction.action, 'delete', 'show on a deleted server');
  const live = await insertServer(t.compute.db, t.alpha);
  expectComputeError(await t.request('GET', `/servers/${live.uuid}/os-instance-actions`, { user: t.beta }), 404, /could not be found/);
  expectComputeError(await t.request('GET', '/servers/9128d044-7b61-403e-b766-7547076ff6c1/os-instance-actions', { user: t.alpha }), 404, /could not be found/);
});
