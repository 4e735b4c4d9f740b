import { randomUUID } from 'node:crypto';
import type { SnapshotRow, VolumeRow } from './db/schema.js';
import type { TestVolumeCloud } from './testing.js';

/**
 * Rows for the catalog tests (quotas, transfers, hosts, messages) written
 * straight to the database, so that those tests do not depend on the
 * create paths the other API modules own.
 */

/** The id of the type named `name` (default: the default type). */
export async function typeId(cloud: TestVolumeCloud, name = '__DEFAULT__'): Promise<string> {
  const row = await cloud.volume.db.selectFrom('volume_type').select('id').where('name', '=', name).executeTakeFirstOrThrow();
  return row.id;
}

/** Inserts an available volume (1 GB of the default type unless told). */
export async function insertVolume(cloud: TestVolumeCloud, values: Partial<VolumeRow> & { project_id: string }): Promise<VolumeRow> {
  const row: VolumeRow = {
    id: randomUUID(),
    user_id: 'user',
    host: 'test-host@fake-a#fake-a',
    size: 1,
    availability_zone: 'nova',
    status: 'available',
    attach_status: 'detached',
    migration_status: null,
    display_name: null,
    display_description: null,
    volume_type_id: await typeId(cloud),
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
    created_at: new Date().toISOString(),
    updated_at: null,
    launched_at: null,
    ...values,
  };
  await cloud.volume.db.insertInto('volume').values(row).execute();
  return row;
}

/** Inserts an available snapshot of `volume`. */
export async function insertSnapshot(cloud: TestVolumeCloud, volume: VolumeRow, values: Partial<SnapshotRow> = {}): Promise<SnapshotRow> {
  const row: SnapshotRow = {
    id: randomUUID(),
    volume_id: volume.id,
    project_id: volume.project_id,
    user_id: volume.user_id,
    status: 'available',
    progress: '100%',
    volume_size: volume.size,
    display_name: null,
    display_description: null,
    volume_type_id: volume.volume_type_id,
    provider_location: null,
    group_snapshot_id: null,
    created_at: new Date().toISOString(),
    updated_at: null,
    ...values,
  };
  await cloud.volume.db.insertInto('snapshot').values(row).execute();
  return row;
}

/** Removes every volume and snapshot (between tests). */
export async function clearVolumes(cloud: TestVolumeCloud): Promise<void> {
  await cloud.volume.db.deleteFrom('snapshot').execute();
  await cloud.volume.db.deleteFrom('volume').execute();
}
