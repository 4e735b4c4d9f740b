import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newUuid, nextId } from '../common.js';
import type { MigrationRow } from '../db/schema.js';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertServer } from './server-fixtures.test-util.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
});
after(async () => {
  await t.close();
});

async function insertMigration(values: Partial<MigrationRow> & { instance_uuid: string }): Promise<MigrationRow> {
  const time = values.created_at ?? '2026-05-01T00:00:00.000Z';
  const row: MigrationRow = {
    id: await nextId(t.compute.db, 'migration'),
    uuid: newUuid(),
    migration_type: 'resize',
    status: 'finished',
    source_compute: 'host-1',
    source_node: 'host-1',
    dest_compute: 'host-2',
    dest_node: 'host-2',
    dest_host: '10.0.0.2',
    old_flavorid: '1',
    new_flavorid: '2',
    project_id: t.alpha.projectId,
    user_id: t.alpha.userId,
    created_at: time,
    updated_at: time,
    ...values,
  };
  await t.compute.db.insertInto('migration').values(row).execute();
  return row;
}

test('os-migrations: admin only; the view grows with the microversion', async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  const resize = await insertMigration({ instance_uuid: server.uuid, created_at: '2026-05-01T00:00:00.000Z' });
  const live = await insertMigration({ instance_uuid: server.uuid, migration_type: 'live-migration', status: 'running', created_at: '2026-05-02T00:00:00.000Z', old_flavorid: 'abc', new_flavorid: 'abc' });
  expectComputeError(await t.request('GET', '/os-migrations', { user: t.alpha }), 403, /os-migrations:index/);
  const v21 = await t.request('GET', `/os-migrations?instance_uuid=${server.uuid}`, { user: t.admin });
  assert.equal(v21.status, 200, JSON.stringify(v21.body));
  assert.deepEqual(v21.body.migrations.map((m: { id: number }) => m.id), [live.id, resize.id], 'newest first');
  assert.deepEqual(
    v21.body.migrations[1],
    {
      id: resize.id,
      status: 'finished',
      instance_uuid: server.uuid,
      source_node: 'host-1',
      source_compute: 'host-1',
      dest_node: 'host-2',
      dest_compute: 'host-2',
      dest_host: '10.0.0.2',
      old_instance_type_id: 1,
      new_instance_type_id: 2,
      created_at: '2026-05-01T00:00:00.000000',
      updated_at: '2026-05-01T00:00:00.000000',
    },
    'the 2.1 view',
  );
  assert.equal(v21.body.migrations[0].old_instance_type_id, null, 'a flavor id that is not a number has no instance type id');
  const v223 = await t.request('GET', `/os-migrations?instance_uuid=${server.uuid}`, { user: t.admin, version: '2.23' });
  assert.equal(v223.body.migrations[1].migration_type, 'resize', 'migration_type from 2.23');
  assert.equal(v223.body.migrations[1].links, undefined, 'no links for a resize');
  assert.deepEqual(
    v223.body.migrations[0].links,
    [
      { rel: 'self', href: `http://compute.test:8774/v2.1/servers/${server.uuid}/migrations/${live.id}` },
      { rel: 'bookmark', href: `http://compute.test:8774/servers/${server.uuid}/migrations/${live.id}` },
    ],
    'links for a live migration under way',
  );
  const v259 = await t.request('GET', `/os-migrations?instance_uuid=${server.uuid}`, { user: t.admin, version: '2.59' });
  assert.equal(v259.body.migrations[0].uuid, live.uuid, 'uuid from 2.59');
  assert.equal(v259.body.migrations[0].user_id, undefined, 'no user_id before 2.80');
  const v280 = await t.request('GET', `/os-migrations?instance_uuid=${server.uuid}`, { user: t.admin, version: '2.80' });
  assert.equal(v280.body.migrations[0].user_id, t.alpha.userId, 'user_id from 2.80');
  assert.equal(v280.body.migrations[0].project_id, t.alpha.projectId, 'project_id from 2.80');
});

test('os-migrations filters; a deleted server takes its migrations with it', async () => {
  const a = await insertServer(t.compute.db, t.alpha);
  const b = await insertServer(t.compute.db, t.beta);
  const gone = await insertServer(t.compute.db, t.alpha, { deleted: 1, vm_state: 'deleted' });
  const m1 = await insertMigration({ instance_uuid: a.uuid, source_compute: 'h-a', dest_compute: 'h-b', status: 'confirmed', created_at: '2026-06-01T00:00:00.000Z' });
  const m2 = await insertMigration({ instance_uuid: b.uuid, source_compute: 'h-b', dest_compute: 'h-c', migration_type: 'migration', status: 'error', project_id: t.beta.projectId, user_id: t.beta.userId, created_at: '2026-06-02T00:00:00.000Z' });
  const m3 = await insertMigration({ instance_uuid: gone.uuid, source_compute: 'h-b', dest_compute: 'h-a', created_at: '2026-06-03T00:00:00.000Z' });
  const ids = async (query: string, version?: string): Promise<number[]> => {
    const res = await t.request('GET', `/os-migrations?${query}`, { user: t.admin, ...(version ? { version } : {}) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.migrations.map((m: { id: number }) => m.id).filter((id: number) => [m1.id, m2.id, m3.id].includes(id));
  };
  assert.deepEqual(await ids('host=h-b'), [m2.id, m1.id], 'host is source or destination; the deleted server is gone');
  assert.deepEqual(await ids('source_compute=h-b'), [m2.id], 'source_compute');
  assert.deepEqual(await ids('host=h-a&source_compute=h-b'), [m1.id], 'host wins over source_compute');
  assert.deepEqual(await ids('status=error'), [m2.id], 'status');
  assert.deepEqual(await ids('migration_type=migration'), [m2.id], 'migration_type');
  assert.deepEqual(await ids(`instance_uuid=${a.uuid}`), [m1.id], 'instance_uuid');
  assert.deepEqual(await ids(`project_id=${t.beta.projectId}`, '2.80'), [m2.id], 'project_id from 2.80');
  assert.deepEqual(await ids(`user_id=${t.alpha.userId}&host=h-b`, '2.80'), [m1.id], 'user_id from 2.80');
  expectComputeError(await t.request('GET', `/os-migrations?user_id=${t.alpha.userId}`, { user: t.admin, version: '2.79' }), 400, /'user_id' was unexpected/);
  const lax = await t.request('GET', '/os-migrations?color=red', { user: t.admin, version: '2.58' });
  assert.equal(lax.status, 200, 'unknown parameters are ignored before 2.59');
  expectComputeError(await t.request('GET', '/os-migrations?color=red', { user: t.admin, version: '2.59' }), 400, /'color' was unexpected/);
});

test('os-migrations paging from 2.59: limit, marker (uuid), migrations_links, changes-since/-before', async () => {
  const server = await insertServer(t.compute.db, t.alpha);
  const rows: MigrationRow[] = [];
  for (let i = 1; i <= 3; i++) rows.push(await insertMigration({ instance_uuid: server.uuid, created_at: `2026-07-0${i}T00:00:00.000Z` }));
  const [r1, r2, r3] = rows as [MigrationRow, MigrationRow, MigrationRow];
  const base = `/os-migrations?instance_uuid=${server.uuid}`;
  const page = await t.request('GET', `${base}&limit=2`, { user: t.admin, version: '2.59' });
  assert.deepEqual(page.body.migrations.map((m: { uuid: string }) => m.uuid), [r3.uuid, r2.uuid], 'first page');
  assert.deepEqual(page.body.migrations_links, [{ rel: 'next', href: `http://compute.test:8774/v2.1/os-migrations?instance_uuid=${server.uuid}&limit=2&marker=${r2.uuid}` }], 'next link');
  const next = await t.request('GET', `${base}&limit=2&marker=${r2.uuid}`, { user: t.admin, version: '2.59' });
  assert.deepEqual(next.body.migrations.map((m: { uuid: string }) => m.uuid), [r1.uuid], 'last page');
  assert.equal(next.body.migrations_links, undefined, 'no link on a short page');
  expectComputeError(await t.request('GET', `${base}&marker=nope`, { user: t.admin, version: '2.59' }), 400, 'Marker nope could not be found.');
  const old = await t.request('GET', `${base}&limit=1`, { user: t.admin, version: '2.58' });
  assert.equal(old.body.migrations.length, 3, 'limit is ignored before 2.59');
  const since = await t.request('GET', `${base}&changes-since=2026-07-02T00:00:00Z`, { user: t.admin, version: '2.59' });
  assert.deepEqual(since.body.migrations.map((m: { uuid: string }) => m.uuid), [r3.uuid, r2.uuid], 'changes-since');
  const ignored = await t.request('GET', `${base}&changes-since=2026-07-02T00:00:00Z`, { user: t.admin, version: '2.58' });
  assert.equal(ignored.body.migrations.length, 3, 'changes-since is ignored before 2.59');
  const window = await t.request('GET', `${base}&changes-since=2026-07-01T12:00:00Z&changes-before=2026-07-02T12:00:00Z`, { user: t.admin, version: '2.66' });
  assert.deepEqual(window.body.migrations.map((m: { uuid: string }) => m.uuid), [r2.uuid], 'a window from 2.66');
  expectComputeError(await t.request('GET', `${base}&changes-before=2026-07-02T12:00:00Z`, { user: t.admin, version: '2.65' }), 400, /'changes-before' was unexpected/);
});

test('server migrations (2.23): live migrations under way only', async () => {
  const server = await insertServer(t.compute.db, t.alpha, { task_state: 'migrating' });
  const running = await insertMigration({ instance_uuid: server.uuid, migration_type: 'live-migration', status: 'running' });
  const done = await insertMigration({ instance_uuid: server.uuid, migration_type: 'live-migration', status: 'completed' });
  const resize = await insertMigration({ instance_uuid: server.uuid, migration_type: 'resize', status: 'finished' });
  const url = `/servers/${server.uuid}/migrations`;
  expectComputeError(await t.request('GET', url, { user: t.admin, version: '2.22' }), 404, 'The resource could not be found.');
  expectComputeError(await t.request('GET', url, { user: t.alpha, version: '2.23' }), 403, /servers:migrations:index/);
  const list = await t.request('GET', url, { user: t.admin, version: '2.23' });
  assert.equal(list.status, 200, JSON.stringify(list.body));
  assert.deepEqual(list.body.migrations.map((m: { id: number }) => m.id), [running.id], 'only the running live migration');
  assert.deepEqual(
    Object.keys(list.body.migrations[0]).sort(),
    ['created_at', 'dest_compute', 'dest_host', 'dest_node', 'disk_processed_bytes', 'disk_remaining_bytes', 'disk_total_bytes', 'id', 'memory_processed_bytes', 'memory_remaining_bytes', 'memory_total_bytes', 'server_uuid', 'source_compute', 'source_node', 'status', 'updated_at'],
    'the 2.23 view',
  );
  const show = await t.request('GET', `${url}/${running.id}`, { user: t.admin, version: '2.80' });
  assert.equal(show.body.migration.uuid, running.uuid, 'uuid from 2.59');
  assert.equal(show.body.migration.project_id, t.alpha.projectId, 'project_id from 2.80');
  expectComputeError(await t.request('GET', `${url}/${done.id}`, { user: t.admin, version: '2.23' }), 404, `Live migration ${done.id} for server ${server.uuid} is not in progress.`);
  expectComputeError(await t.request('GET', `${url}/${resize.id}`, { user: t.admin, version: '2.23' }), 404, `Migration ${resize.id} for server ${server.uuid} is not live-migration.`);
  expectComputeError(await t.request('GET', `${url}/999999`, { user: t.admin, version: '2.23' }), 404, `In-progress live migration 999999 is not found for server ${server.uuid}.`);
  expectComputeError(await t.request('GET', `${url}/abc`, { user: t.admin, version: '2.23' }), 404, /In-progress live migration abc is not found/);
});

test('abort (2.24) and force_complete (2.22): the checks Nova makes', async () => {
  const idle = await insertServer(t.compute.db, t.alpha);
  const finished = await insertMigration({ instance_uuid: idle.uuid, migration_type: 'live-migration', status: 'completed' });
  expectComputeError(await t.request('DELETE', `/servers/${idle.uuid}/migrations/${finished.id}`, { user: t.admin, version: '2.23' }), 404, 'The resource could not be found.');
  expectComputeError(await t.request('DELETE', `/servers/${idle.uuid}/migrations/${finished.id}`, { user: t.admin, version: '2.24' }), 409, `Cannot 'abort live migration' instance ${idle.uuid} while it is in task_state None`);
  expectComputeError(await t.request('DELETE', `/servers/${idle.uuid}/migrations/${finished.id}`, { user: t.alpha, version: '2.24' }), 403, /servers:migrations:delete/);

  const moving = await insertServer(t.compute.db, t.alpha, { task_state: 'migrating' });
  const queued = await insertMigration({ instance_uuid: moving.uuid, migration_type: 'live-migration', status: 'queued' });
  const running = await insertMigration({ instance_uuid: moving.uuid, migration_type: 'live-migration', status: 'running' });
  expectComputeError(await t.request('DELETE', `/servers/${moving.uuid}/migrations/424242`, { user: t.admin, version: '2.24' }), 404, `Migration 424242 not found for instance ${moving.uuid}`);
  expectComputeError(
    await t.request('DELETE', `/servers/${moving.uuid}/migrations/${queued.id}`, { user: t.admin, version: '2.64' }),
    400,
    `Migration ${queued.id} state of instance ${moving.uuid} is queued. Cannot abort live migration while the migration is in this state.`,
  );
  const queuedAbort = await t.request('DELETE', `/servers/${moving.uuid}/migrations/${queued.id}`, { user: t.admin, version: '2.65' });
  assert.equal(queuedAbort.status, 202, 'a queued one can be aborted from 2.65');
  const abort = await t.request('DELETE', `/servers/${moving.uuid}/migrations/${running.id}`, { user: t.admin, version: '2.24' });
  assert.equal(abort.status, 202, JSON.stringify(abort.body));
  const actions = await t.compute.db.selectFrom('instance_action').select('action').where('instance_uuid', '=', moving.uuid).execute();
  assert.deepEqual(actions.map((a) => a.action), ['live_migration_cancel', 'live_migration_cancel'], 'each abort is recorded');

  const action = (id: number | string, payload: unknown, version = '2.22') => t.request('POST', `/servers/${moving.uuid}/migrations/${id}/action`, { user: t.admin, version, payload });
  expectComputeError(await action(running.id, { force_complete: null }, '2.21'), 404, 'The resource could not be found.');
  expectComputeError(await action(running.id, { force: null }), 400, /'force_complete' is a required property/);
  expectComputeError(await action(running.id, { force_complete: 1 }), 400, /is not of type 'null'/);
  expectComputeError(await action(424242, { force_complete: null }), 400, `Migration 424242 not found for instance ${moving.uuid}`);
  expectComputeError(await action(queued.id, { force_complete: null }), 400, /is queued\. Cannot force complete while the migration is in this state\./);
  const forced = await action(running.id, { force_complete: null });
  assert.equal(forced.status, 202, JSON.stringify(forced.body));
  expectComputeError(await t.request('POST', `/servers/${idle.uuid}/migrations/${finished.id}/action`, { user: t.admin, version: '2.22', payload: { force_complete: null } }), 409, `Cannot 'force_complete' instance ${idle.uuid} while it is in task_state None`);
});
