import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { ServiceClient } from '../../core/auth/service-client.js';
import type { Notification } from '../../core/bus/index.js';
import { roleLogger } from '../../core/logging.js';
import { FakeVolumeDriver } from '../drivers/fake.js';
import { AgentRpc, type AgentSnapshot, type AgentVolume } from '../rpc.js';
import { insertSnapshot, insertVolume, messagesOf, scheduleVolume, settled, waitRow, waitSnapshot } from '../scheduler/backend-fixtures.test-util.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';
import { now } from '../volume.js';
import { VolumeAgent } from './agent.js';

let cloud: TestVolumeCloud;
const drivers = { 'fake-a': new FakeVolumeDriver({ capacityGb: 1000 }), 'fake-b': new FakeVolumeDriver({ capacityGb: 500 }) };
const notifications: Notification[] = [];
const ON_A = { extra_specs: { volume_backend_name: 'fake-a' } };

before(async () => {
  cloud = await createVolumeTestCloud({ drivers });
  await cloud.bus.onNotification('*', (n) => void notifications.push(n));
});
after(async () => {
  await cloud.close();
});

const agentVolume = (row: { id: string; size: number; host: string | null; provider_location: string | null; project_id: string }): AgentVolume => ({ id: row.id, size: row.size, host: row.host ?? '', provider_location: row.provider_location, project_id: row.project_id });
const agentSnapshot = (row: { id: string; volume_id: string; volume_size: number; provider_location: string | null }): AgentSnapshot => ({ id: row.id, volume_id: row.volume_id, volume_size: row.volume_size, provider_location: row.provider_location });

async function availableVolume(size = 1): Promise<ReturnType<typeof agentVolume>> {
  const volume = await scheduleVolume(cloud, { size }, ON_A);
  const row = await settled(cloud, volume.id);
  assert.equal(row.status, 'available');
  return agentVolume(row);
}

async function notified(event: string, id: string, key = 'volume_id'): Promise<Notification> {
  for (let i = 0; i < 200; i++) {
    const n = notifications.find((x) => x.event_type === event && (x.payload as Record<string, unknown>)[key] === id);
    if (n) return n;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`no ${event} for ${id}`);
}

test('a delete removes the data and every row of the volume, then sends volume.delete.end', async () => {
  const volume = await availableVolume();
  await cloud.volume.db.insertInto('volume_metadata').values({ volume_id: volume.id, key: 'k', value: 'v' }).execute();
  await cloud.volume.db.insertInto('volume_admin_metadata').values({ volume_id: volume.id, key: 'readonly', value: 'False' }).execute();
  await cloud.volume.db.insertInto('volume_glance_metadata').values({ volume_id: volume.id, snapshot_id: '', key: 'image_id', value: 'x' }).execute();
  await cloud.volume.db.insertInto('attachment').values({ id: randomUUID(), volume_id: volume.id, project_id: volume.project_id, instance_uuid: null, attached_host: null, mountpoint: null, attach_status: 'detached', attach_mode: 'rw', connector: null, connection_info: null, attach_time: null, detach_time: null, created_at: now(), updated_at: null }).execute();
  await cloud.volume.db.updateTable('volume').set({ status: 'deleting' }).where('id', '=', volume.id).execute();
  await new AgentRpc(cloud.bus).deleteVolume(volume);
  await waitRow(cloud, volume.id, (r) => r === undefined, 'deletion');
  for (const table of ['volume_metadata', 'volume_admin_metadata', 'volume_glance_metadata', 'attachment'] as const) {
    assert.equal((await cloud.volume.db.selectFrom(table).select('volume_id').where('volume_id', '=', volume.id).execute()).length, 0, table);
  }
  assert.equal(drivers['fake-a'].volumes.has(volume.id), false);
  assert.equal((await notified('volume.delete.end', volume.id)).payload && ((await notified('volume.delete.end', volume.id)).payload as { status: string }).status, 'deleted');
});

test('a failed delete leaves the volume error_deleting', async () => {
  const volume = await availableVolume();
  drivers['fake-a'].failNext('deleteVolume');
  await new AgentRpc(cloud.bus).deleteVolume(volume);
  assert.equal((await waitRow(cloud, volume.id, (r) => r?.status === 'error_deleting'))?.status, 'error_deleting');
});

test('extend grows the volume and sends volume.resize.end; a failed extend is error_extending with a user message', async () => {
  const volume = await availableVolume(1);
  await cloud.volume.db.updateTable('volume').set({ status: 'extending' }).where('id', '=', volume.id).execute();
  await new AgentRpc(cloud.bus).extendVolume(volume, 4, false);
  const row = await waitRow(cloud, volume.id, (r) => r?.status === 'available');
  assert.equal(row?.size, 4);
  assert.equal(drivers['fake-a'].volumes.get(volume.id)?.size, 4);
  assert.equal(((await notified('volume.resize.end', volume.id)).payload as { size: number }).size, 4);

  drivers['fake-a'].failNext('extendVolume');
  await new AgentRpc(cloud.bus).extendVolume({ ...volume, size: 4 }, 8, false);
  await waitRow(cloud, volume.id, (r) => r?.status === 'error_extending');
  assert.deepEqual((await messagesOf(cloud, volume.id)).map((m) => m.event_id), ['VOLUME_VOLUME_007_010']);
});

test('snapshots: create (available, 100%), failure (error + message), delete, failed delete (error_deleting)', async () => {
  const volume = await availableVolume();
  const row = await cloud.volume.db.selectFrom('volume').selectAll().where('id', '=', volume.id).executeTakeFirstOrThrow();
  const rpc = new AgentRpc(cloud.bus);
  const good = await insertSnapshot(cloud, row);
  await rpc.createSnapshot(volume, agentSnapshot(good));
  const done = await waitSnapshot(cloud, good.id, (s) => s?.status === 'available');
  assert.equal(done?.progress, '100%');
  assert.equal(done?.provider_location, `fake:snapshot-${good.id}`);
  await notified('snapshot.create.end', good.id, 'snapshot_id');

  const bad = await insertSnapshot(cloud, row);
  drivers['fake-a'].failNext('createSnapshot');
  await rpc.createSnapshot(volume, agentSnapshot(bad));
  await waitSnapshot(cloud, bad.id, (s) => s?.status === 'error');
  assert.deepEqual((await messagesOf(cloud, bad.id)).map((m) => [m.event_id, m.resource_type]), [['VOLUME_VOLUME_SNAPSHOT_009_013', 'VOLUME_SNAPSHOT']]);
  assert.equal(drivers['fake-a'].snapshots.has(bad.id), false);

  drivers['fake-a'].failNext('deleteSnapshot');
  await rpc.deleteSnapshot(volume, agentSnapshot(good));
  await waitSnapshot(cloud, good.id, (s) => s?.status === 'error_deleting');
  await rpc.deleteSnapshot(volume, agentSnapshot(good));
  await waitSnapshot(cloud, good.id, (s) => s === undefined);
  assert.equal(drivers['fake-a'].snapshots.has(good.id), false);
  await notified('snapshot.delete.end', good.id, 'snapshot_id');
});

test('revert to a snapshot makes the volume and the snapshot available again', async () => {
  const volume = await availableVolume();
  const row = await cloud.volume.db.selectFrom('volume').selectAll().where('id', '=', volume.id).executeTakeFirstOrThrow();
  const snapshot = await insertSnapshot(cloud, row);
  const rpc = new AgentRpc(cloud.bus);
  await rpc.createSnapshot(volume, agentSnapshot(snapshot));
  await waitSnapshot(cloud, snapshot.id, (s) => s?.status === 'available');
  await cloud.volume.db.updateTable('volume').set({ status: 'reverting' }).where('id', '=', volume.id).execute();
  await cloud.volume.db.updateTable('snapshot').set({ status: 'restoring' }).where('id', '=', snapshot.id).execute();
  await rpc.revertToSnapshot(volume, agentSnapshot(snapshot));
  await waitRow(cloud, volume.id, (r) => r?.status === 'available');
  await waitSnapshot(cloud, snapshot.id, (s) => s?.status === 'available');
});

test('a volume made from a snapshot or cloned stays on the backend and takes its source image metadata and bootable flag', async () => {
  const volume = await availableVolume();
  await cloud.volume.db.updateTable('volume').set({ bootable: 1 }).where('id', '=', volume.id).execute();
  await cloud.volume.db.insertInto('volume_glance_metadata').values({ volume_id: volume.id, snapshot_id: '', key: 'image_name', value: 'cirros' }).execute();
  const source = await cloud.volume.db.selectFrom('volume').selectAll().where('id', '=', volume.id).executeTakeFirstOrThrow();
  const snapshot = await insertSnapshot(cloud, source);
  await new AgentRpc(cloud.bus).createSnapshot(volume, agentSnapshot(snapshot));
  await waitSnapshot(cloud, snapshot.id, (s) => s?.status === 'available');
  const fromSnapshot = await scheduleVolume(cloud, { snapshot_id: snapshot.id, size: 2 }, { source: { kind: 'snapshot', snapshot_id: snapshot.id, provider_location: null, volume_id: volume.id }, source_backend: volume.host });
  const clone = await scheduleVolume(cloud, { source_volid: volume.id }, { source: { kind: 'volume', volume_id: volume.id, provider_location: null }, source_backend: volume.host });
  for (const v of [fromSnapshot, clone]) {
    const row = await settled(cloud, v.id);
    assert.equal(row.status, 'available');
    assert.equal(row.host, volume.host);
    assert.equal(row.bootable, 1);
    const meta = await cloud.volume.db.selectFrom('volume_glance_metadata').select(['key', 'value']).where('volume_id', '=', v.id).execute();
    assert.deepEqual(meta, [{ key: 'image_name', value: 'cirros' }]);
  }
});

test('connections: the agent answers initialize_connection and terminate_connection calls', async () => {
  const volume = await availableVolume();
  const rpc = new AgentRpc(cloud.bus);
  const attachment = randomUUID();
  const info = await rpc.initializeConnection(volume, { host: 'compute-1' }, attachment);
  assert.equal(info.driver_volume_type, 'fake');
  assert.equal(info.data.volume_id, volume.id);
  assert.ok(drivers['fake-a'].connections.has(attachment));
  await rpc.terminateConnection(volume, null, attachment);
  assert.equal(drivers['fake-a'].connections.has(attachment), false);
  drivers['fake-a'].failNext('initializeConnection', 'no export today');
  await assert.rejects(rpc.initializeConnection(volume, { host: 'compute-1' }, attachment), /no export today/);
});

test('agents stopped in the middle of a create (a crash) leave the volume error, never creating, and no data', async () => {
  const blocked = drivers['fake-a'].block('createVolume');
  const volume = await scheduleVolume(cloud, {}, ON_A);
  assert.equal(await blocked.reached, volume.id);
  assert.equal(drivers['fake-a'].volumes.get(volume.id)?.partial, true);
  await cloud.restartAgents();
  const row = await settled(cloud, volume.id);
  assert.equal(row.status, 'error');
  assert.equal(drivers['fake-a'].volumes.has(volume.id), false, 'the partial volume is removed');
  blocked.release();
  const next = await scheduleVolume(cloud, {}, ON_A);
  assert.equal((await settled(cloud, next.id)).status, 'available', 'the restarted agents take work');
  assert.equal((await cloud.volume.db.selectFrom('volume').select('status').where('id', '=', volume.id).executeTakeFirstOrThrow()).status, 'error', 'the abandoned create reported nothing');
});

test('on start an agent finishes deletes, fails extends, ends uploads, fails half-made snapshots and removes orphans', async () => {
  const host = 'test-host@fake-a#fake-a';
  const driver = drivers['fake-a'];
  const deleting = await insertVolume(cloud, { host, status: 'deleting' });
  await driver.createVolume({ id: deleting.id, size: 1, provider_location: null });
  const extending = await insertVolume(cloud, { host, status: 'extending' });
  await driver.createVolume({ id: extending.id, size: 1, provider_location: null });
  const uploading = await insertVolume(cloud, { host, status: 'uploading', previous_status: 'in-use', attach_status: 'attached' });
  await driver.createVolume({ id: uploading.id, size: 1, provider_location: null });
  const uploadingDetached = await insertVolume(cloud, { host, status: 'uploading' });
  await driver.createVolume({ id: uploadingDetached.id, size: 1, provider_location: null });
  const snapshotCreating = await insertSnapshot(cloud, extending, { status: 'creating' });
  driver.snapshots.set(snapshotCreating.id, { id: snapshotCreating.id, volume_id: extending.id, size: 1, partial: true, content: null });
  const snapshotDeleting = await insertSnapshot(cloud, extending, { status: 'deleting' });
  driver.snapshots.set(snapshotDeleting.id, { id: snapshotDeleting.id, volume_id: extending.id, size: 1, partial: false, content: null });
  const orphan = randomUUID();
  await driver.createVolume({ id: orphan, size: 7, provider_location: null });
  const otherBackend = await insertVolume(cloud, { host: 'test-host@fake-b#fake-b', status: 'extending' });

  await cloud.restartAgents();
  assert.equal(await cloud.volume.db.selectFrom('volume').select('id').where('id', '=', deleting.id).executeTakeFirst(), undefined);
  assert.equal(driver.volumes.has(deleting.id), false);
  const status = async (id: string): Promise<string | undefined> => (await cloud.volume.db.selectFrom('volume').select('status').where('id', '=', id).executeTakeFirst())?.status;
  assert.equal(await status(extending.id), 'error_extending');
  assert.equal(await status(uploading.id), 'in-use');
  assert.equal(await status(uploadingDetached.id), 'available');
  assert.equal(await status(otherBackend.id), 'error_extending', "fake-b's agent did its own");
  assert.equal((await cloud.volume.db.selectFrom('snapshot').select('status').where('id', '=', snapshotCreating.id).executeTakeFirst())?.status, 'error');
  assert.equal(await cloud.volume.db.selectFrom('snapshot').select('id').where('id', '=', snapshotDeleting.id).executeTakeFirst(), undefined);
  assert.equal(driver.snapshots.has(snapshotCreating.id), false);
  assert.equal(driver.volumes.has(orphan), false, 'the orphan is removed');
  assert.equal(driver.volumes.has(extending.id), true, 'known volumes stay');
});

test('extending an attached volume tells compute (volume-extended per server, tagged with the volume id)', async () => {
  const calls: { service: string; method: string; path: string; body: unknown }[] = [];
  const client = {
    request: async (service: string, method: string, path: string, options: { body?: unknown } = {}) => {
      calls.push({ service, method, path, body: options.body });
      return { status: 200, headers: new Headers(), body: {} };
    },
  } as unknown as ServiceClient;
  const driver = new FakeVolumeDriver({ capacityGb: 10 });
  const agent = new VolumeAgent({ host: 'stub-host@stub', backend: 'stub', volumeBackendName: 'stub', availabilityZone: 'nova', driver, bus: cloud.bus, config: cloud.config.volume, client, log: roleLogger('volume-agent') });
  await agent.start();
  try {
    const row = await insertVolume(cloud, { host: 'stub-host@stub#stub', status: 'extending', attach_status: 'attached' });
    await driver.createVolume({ id: row.id, size: 1, provider_location: null });
    const server = randomUUID();
    await cloud.volume.db.insertInto('attachment').values({ id: randomUUID(), volume_id: row.id, project_id: row.project_id, instance_uuid: server, attached_host: 'compute-1', mountpoint: '/dev/vdb', attach_status: 'attached', attach_mode: 'rw', connector: null, connection_info: null, attach_time: now(), detach_time: null, created_at: now(), updated_at: null }).execute();
    await new AgentRpc(cloud.bus).extendVolume(agentVolume(row), 2, true);
    await waitRow(cloud, row.id, (r) => r?.status === 'in-use');
    await agent.idle();
    assert.deepEqual(calls, [{ service: 'compute', method: 'POST', path: '/os-server-external-events', body: { events: [{ name: 'volume-extended', server_uuid: server, tag: row.id }] } }]);
  } finally {
    await agent.stop();
    await cloud.volume.db.updateTable('service').set({ disabled: 1 }).where('host', '=', 'stub-host@stub').execute();
  }
});
