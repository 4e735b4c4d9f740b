import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { SnapshotRow, VolumeRow } from '../db/schema.js';
import { SchedulerRpc, type CreateRequest, type VolumeSource } from '../rpc.js';
import type { TestVolumeCloud } from '../testing.js';
import { now } from '../volume.js';

/**
 * Helpers for the scheduler, conductor and agent tests: volumes recorded
 * straight in the database (as the API records them) and driven through
 * the bus, so these tests do not depend on the API's routes.
 */

export async function defaultTypeId(cloud: TestVolumeCloud): Promise<string> {
  const row = await cloud.volume.db.selectFrom('volume_type').select('id').where('name', '=', cloud.config.volume.default_volume_type).executeTakeFirstOrThrow();
  return row.id;
}

/** Records a volume as the API does before casting its create (status `creating`, no host). */
export async function insertVolume(cloud: TestVolumeCloud, values: Partial<VolumeRow> = {}): Promise<VolumeRow> {
  const row: VolumeRow = {
    id: randomUUID(),
    project_id: cloud.alpha.projectId,
    user_id: cloud.alpha.userId,
    host: null,
    size: 1,
    availability_zone: 'nova',
    status: 'creating',
    attach_status: 'detached',
    migration_status: null,
    display_name: 'test volume',
    display_description: null,
    volume_type_id: await defaultTypeId(cloud),
    source_volid: null,
    snapshot_id: null,
    image_id: null,
    bootable: 0,
    multiattach: 0,
    encryption_key_id: null,
    provider_location: null,
    previous_status: null,
    replication_status: null,
    group_id: null,
    scheduling_attempts: null,
    created_at: now(),
    updated_at: null,
    launched_at: null,
    ...values,
  };
  await cloud.volume.db.insertInto('volume').values(row).execute();
  return row;
}

export async function insertSnapshot(cloud: TestVolumeCloud, volume: VolumeRow, values: Partial<SnapshotRow> = {}): Promise<SnapshotRow> {
  const row: SnapshotRow = {
    id: randomUUID(),
    volume_id: volume.id,
    project_id: volume.project_id,
    user_id: volume.user_id,
    status: 'creating',
    progress: '0%',
    volume_size: volume.size,
    display_name: 'test snapshot',
    display_description: null,
    volume_type_id: volume.volume_type_id,
    provider_location: null,
    group_snapshot_id: null,
    created_at: now(),
    updated_at: null,
    ...values,
  };
  await cloud.volume.db.insertInto('snapshot').values(row).execute();
  return row;
}

/** The create request the API casts for `volume`. */
export function createRequest(volume: VolumeRow, options: { extra_specs?: Record<string, string>; source?: VolumeSource; source_backend?: string | null } = {}): CreateRequest {
  return {
    volume_id: volume.id,
    project_id: volume.project_id,
    size: volume.size,
    availability_zone: volume.availability_zone,
    volume_type: { id: volume.volume_type_id, name: '__DEFAULT__', extra_specs: options.extra_specs ?? {} },
    source: options.source ?? { kind: 'empty' },
    source_backend: options.source_backend ?? null,
    attempts: [],
    request_id: `req-${randomUUID()}`,
  };
}

/** Records a volume and casts its create to the scheduler, as the API does. */
export async function scheduleVolume(cloud: TestVolumeCloud, values: Partial<VolumeRow> = {}, options: Parameters<typeof createRequest>[1] = {}): Promise<VolumeRow> {
  const volume = await insertVolume(cloud, values);
  await new SchedulerRpc(cloud.bus).createVolume(createRequest(volume, options));
  return volume;
}

/** Polls the volume's row until `done` holds (or the row is gone, when `done` accepts undefined). */
export async function waitRow(cloud: TestVolumeCloud, id: string, done: (row: VolumeRow | undefined) => boolean, what = 'the expected state'): Promise<VolumeRow | undefined> {
  let row: VolumeRow | undefined;
  for (let i = 0; i < 500; i++) {
    row = await cloud.volume.db.selectFrom('volume').selectAll().where('id', '=', id).executeTakeFirst();
    if (done(row)) return row;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`volume ${id} did not reach ${what}; last seen: ${JSON.stringify(row)}`);
}

export async function waitSnapshot(cloud: TestVolumeCloud, id: string, done: (row: SnapshotRow | undefined) => boolean): Promise<SnapshotRow | undefined> {
  let row: SnapshotRow | undefined;
  for (let i = 0; i < 500; i++) {
    row = await cloud.volume.db.selectFrom('snapshot').selectAll().where('id', '=', id).executeTakeFirst();
    if (done(row)) return row;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`snapshot ${id} did not reach the expected state; last seen: ${JSON.stringify(row)}`);
}

/** Waits for a settled status (not `creating`). */
export async function settled(cloud: TestVolumeCloud, id: string): Promise<VolumeRow> {
  const row = await waitRow(cloud, id, (r) => r !== undefined && r.status !== 'creating', 'a settled status');
  assert.ok(row);
  return row;
}

export async function messagesOf(cloud: TestVolumeCloud, resourceId: string): Promise<{ event_id: string; action_id: string; detail_id: string; project_id: string; resource_type: string; request_id: string | null }[]> {
  return cloud.volume.db.selectFrom('message').select(['event_id', 'action_id', 'detail_id', 'project_id', 'resource_type', 'request_id']).where('resource_uuid', '=', resourceId).execute();
}
