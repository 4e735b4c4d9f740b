import type { Handler } from '../../core/bus/index.js';
import { agentBackup, BACKUP_BINARY, backupRow, backupUsage, notifyBackup, updateBackupIf } from '../backups.js';
import type { BackupRow } from '../db/schema.js';
import { MessageAction, MessageDetail, MessageResource } from '../message-fields.js';
import { insertMessage, type Conductor } from '../scheduler/conductor.js';
import { recordHeartbeat } from '../scheduler/services.js';
import { updateSnapshotIf } from '../snapshots.js';
import { setImageMetadata, setVolumeMetadata, updateVolumeIf, volumeMetadata, volumeRow } from '../volumes.js';
import { now, type VolumeService } from '../volume.js';
import type { BackupHostWork, BackupValues } from './rpc.js';

/**
 * The conductor's side of backups: what the backup managers (which have no
 * database) record through `volume-conductor`: heartbeats of the
 * `cinder-backup` services, the outcome of each backup, restore and delete
 * with its `backup.*.end` notification and user message, and what a
 * restarted manager left halfway.
 */
export function backupConductorHandlers(volume: VolumeService, conductor: Conductor): Record<string, Handler> {
  return {
    backup_service_report: (args: { host: string; availability_zone: string }) => recordHeartbeat(volume.db, { host: args.host, binary: BACKUP_BINARY, availability_zone: args.availability_zone }),
    backup_host_work: (args: { host: string }) => hostWork(volume, args.host),
    backup_created: (args: { backup_id: string; values: BackupValues }) => backupCreated(volume, args.backup_id, args.values),
    backup_create_failed: (args: { backup_id: string; reason: string; detail_id: string; values: Partial<BackupValues> }) => backupCreateFailed(volume, args.backup_id, args.reason, args.detail_id, args.values),
    backup_restored: (args: { backup_id: string; volume_id: string; volume_meta: Record<string, unknown> | null }) => backupRestored(volume, conductor, args.backup_id, args.volume_id, args.volume_meta),
    backup_restore_failed: (args: { backup_id: string; volume_id: string; reason: string; detail_id: string }) => backupRestoreFailed(volume, conductor, args.backup_id, args.volume_id, args.reason, args.detail_id),
    backup_deleted: (args: { backup_id: string }) => backupDeleted(volume, args.backup_id),
    backup_delete_failed: (args: { backup_id: string; reason: string }) => backupDeleteFailed(volume, args.backup_id, args.reason),
  };
}

async function message(volume: VolumeService, backup: BackupRow, actionId: string, detailId: string): Promise<void> {
  await insertMessage(volume.db, { project_id: backup.project_id, resource_type: MessageResource.VOLUME_BACKUP, resource_uuid: backup.id, action_id: actionId, detail_id: detailId }).catch((err: unknown) =>
    volume.log.warn({ err, backup_id: backup.id }, 'could not record a user message'),
  );
}

/** The volume (or snapshot) a backup read goes back to what it was (Cinder keeps `previous_status` as the outcome: `backing-up` or `error_backing-up`). */
async function releaseSource(volume: VolumeService, backup: BackupRow, failed: boolean): Promise<void> {
  if (backup.snapshot_id) {
    await updateSnapshotIf(volume.db, backup.snapshot_id, { status: 'available' }, ['backing-up']);
    return;
  }
  const row = await volumeRow(volume.db, backup.volume_id);
  if (!row || row.status !== 'backing-up') return;
  const back = row.previous_status && row.previous_status !== 'backing-up' ? row.previous_status : row.attach_status === 'attached' ? 'in-use' : 'available';
  await updateVolumeIf(volume.db, row.id, { status: back, previous_status: failed ? 'error_backing-up' : 'backing-up' }, { status: ['backing-up'] });
}

/**
 * A restarted manager's leftovers (Cinder's `_cleanup_incomplete_backup_operations`):
 * a backup being made is `error` (its volume released), a restore ends
 * (the backup `available`, the volume `error_restoring`, or `error` when it
 * was being created for the restore); the deletes are answered to finish.
 */
async function hostWork(volume: VolumeService, host: string): Promise<BackupHostWork> {
  const rows = await volume.db.selectFrom('backup').selectAll().where('status', 'in', ['creating', 'restoring', 'deleting']).execute();
  const deleting: BackupHostWork['deleting'] = [];
  for (const row of rows) {
    // A restore into a volume created from the backup (3.47) is this host's when the volume is.
    const restoresHere = row.status === 'restoring' && row.restore_volume_id !== null && ((await volumeRow(volume.db, row.restore_volume_id))?.host ?? '').startsWith(`${host}@`);
    if (row.host !== host && !restoresHere) continue;
    if (row.status === 'deleting') {
      deleting.push(agentBackup(row));
    } else if (row.status === 'creating') {
      if (await updateBackupIf(volume.db, row.id, { status: 'error', fail_reason: 'The backup service restarted while the backup was being made.' }, ['creating'])) await releaseSource(volume, row, true);
    } else if (row.status === 'restoring') {
      if (row.restore_volume_id) {
        await updateVolumeIf(volume.db, row.restore_volume_id, { status: 'error_restoring' }, { status: ['restoring-backup'] });
        await updateVolumeIf(volume.db, row.restore_volume_id, { status: 'error' }, { status: ['creating'] });
      }
      await updateBackupIf(volume.db, row.id, { status: 'available', restore_volume_id: null }, ['restoring']);
    }
  }
  return { deleting };
}

/** The backup is made: `available` with where its objects are, unless it was deleted meanwhile; its parent gains a dependent. */
async function backupCreated(volume: VolumeService, id: string, values: BackupValues): Promise<void> {
  const row = await backupRow(volume.db, id);
  if (!row) return;
  // Available and counted by its parent at once: a client that sees it available sees the parent's dependent too.
  const updated = await volume.db.transaction().execute(async (trx) => {
    const done = await updateBackupIf(trx, id, { ...values, availability_zone: row.availability_zone ?? values.availability_zone, status: 'available' }, ['creating']);
    if (done && row.parent_id) {
      await trx
        .updateTable('backup')
        .set((eb) => ({ num_dependent_backups: eb('num_dependent_backups', '+', 1), updated_at: now() }))
        .where('id', '=', row.parent_id)
        .execute();
    }
    return done;
  });
  await releaseSource(volume, row, false);
  if (!updated) {
    // Deleted while it was being made: its delete removes the objects.
    volume.log.info({ backup_id: id }, 'backup create aborted: the backup is being deleted');
    return;
  }
  await notifyBackup(volume, id, 'create.end');
}

/** The backup failed: `error` with the reason (and where its objects went), the volume released, a user message. */
async function backupCreateFailed(volume: VolumeService, id: string, reason: string, detailId: string, values: Partial<BackupValues>): Promise<void> {
  const row = await backupRow(volume.db, id);
  if (!row) return;
  const set: Partial<BackupRow> = { status: 'error', fail_reason: reason };
  if (values.container !== undefined) set.container = values.container;
  if (values.service_metadata !== undefined) set.service_metadata = values.service_metadata;
  if (values.service !== undefined) set.service = values.service;
  if (values.availability_zone !== undefined && !row.availability_zone) set.availability_zone = values.availability_zone;
  const failed = await updateBackupIf(volume.db, id, set, ['creating']);
  await releaseSource(volume, row, true);
  if (!failed) {
    // Being deleted: it still needs to know where the objects went.
    const where: Partial<BackupRow> = {};
    if (set.container !== undefined) where.container = set.container;
    if (set.service_metadata !== undefined) where.service_metadata = set.service_metadata;
    if (Object.keys(where).length > 0) await updateBackupIf(volume.db, id, where, ['deleting']);
    return;
  }
  await message(volume, row, MessageAction.BACKUP_CREATE, detailId);
  volume.log.warn({ backup_id: id, reason }, 'backup failed');
}

/**
 * Applies the volume metadata a backup kept to the volume it was restored
 * to (Cinder's backup metadata restore): the user metadata (replaced), the
 * image metadata (and bootable), the name and description when the volume
 * was made for the restore; `src_backup_id` names the backup when it came
 * from another volume.
 */
async function applyVolumeMeta(volume: VolumeService, backup: BackupRow, volumeId: string, meta: Record<string, unknown> | null): Promise<void> {
  const target = await volumeRow(volume.db, volumeId);
  if (!target) return;
  const section = (name: string): Record<string, unknown> | null => {
    const value = meta?.[name];
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  };
  const strings = (value: Record<string, unknown>): Record<string, string> => Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
  const oldSource = (await volumeMetadata(volume.db, volumeId)).src_backup_id;
  const userMeta = section('volume-metadata');
  if (userMeta) await setVolumeMetadata(volume.db, volumeId, strings(userMeta), true);
  const imageMeta = section('volume-glance-metadata');
  if (imageMeta && Object.keys(imageMeta).length > 0) {
    await volume.db.deleteFrom('volume_glance_metadata').where('volume_id', '=', volumeId).where('snapshot_id', '=', '').execute();
    await setImageMetadata(volume.db, volumeId, strings(imageMeta));
    await volume.db.updateTable('volume').set({ bootable: 1 }).where('id', '=', volumeId).execute();
  }
  const base = section('volume-base-metadata');
  const name = target.display_name ?? '';
  if (base && typeof base.display_name === 'string' && base.display_name && (!name || name.startsWith('restore_backup_'))) {
    await volume.db
      .updateTable('volume')
      .set({ display_name: base.display_name, display_description: typeof base.display_description === 'string' ? base.display_description : null })
      .where('id', '=', volumeId)
      .execute();
  }
  if (backup.volume_id !== volumeId || (oldSource !== undefined && oldSource !== backup.id)) await setVolumeMetadata(volume.db, volumeId, { src_backup_id: backup.id }, false);
}

/** The backup is in the volume: the volume `available` (a volume created from the backup ends its create), its metadata restored; the backup `available`. */
async function backupRestored(volume: VolumeService, conductor: Conductor, id: string, volumeId: string, meta: Record<string, unknown> | null): Promise<void> {
  const row = await backupRow(volume.db, id);
  if (row) await applyVolumeMeta(volume, row, volumeId, meta);
  const target = await volumeRow(volume.db, volumeId);
  if (target?.status === 'creating') await conductor.volumeUpdate(volumeId, { status: 'available', launched_at: now() }, 'volume.create.end');
  else await updateVolumeIf(volume.db, volumeId, { status: 'available' }, { status: ['restoring-backup'] });
  if (!row) return;
  await updateBackupIf(volume.db, id, { status: 'available', restore_volume_id: null }, ['restoring']);
  await notifyBackup(volume, id, 'restore.end');
}

/** The restore failed: the volume `error_restoring` (`error` when it was being created from the backup), the backup `available`, a user message. */
async function backupRestoreFailed(volume: VolumeService, conductor: Conductor, id: string, volumeId: string, reason: string, detailId: string): Promise<void> {
  volume.log.warn({ backup_id: id, volume_id: volumeId, reason }, 'backup restore failed');
  const target = await volumeRow(volume.db, volumeId);
  if (target?.status === 'creating') await conductor.volumeUpdate(volumeId, { status: 'error' }, 'volume.create.error');
  else await updateVolumeIf(volume.db, volumeId, { status: 'error_restoring' }, { status: ['restoring-backup'] });
  const row = await backupRow(volume.db, id);
  if (!row) return;
  await updateBackupIf(volume.db, id, { status: 'available', restore_volume_id: null }, ['restoring']);
  await message(volume, row, MessageAction.BACKUP_RESTORE, detailId);
}

/** The objects are gone: the record goes (its parent loses a dependent), then `backup.delete.end`. */
async function backupDeleted(volume: VolumeService, id: string): Promise<void> {
  const row = await backupRow(volume.db, id);
  if (!row) return;
  await volume.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('backup_metadata').where('backup_id', '=', id).execute();
    await trx.deleteFrom('backup').where('id', '=', id).execute();
    if (row.parent_id) {
      await trx
        .updateTable('backup')
        .set((eb) => ({ num_dependent_backups: eb('num_dependent_backups', '-', 1), updated_at: now() }))
        .where('id', '=', row.parent_id)
        .where('num_dependent_backups', '>', 0)
        .execute();
    }
  });
  volume.notify('backup.delete.end', backupUsage({ ...row, status: 'deleted' }));
}

/** The delete failed: `error_deleting` with the reason, a user message. */
async function backupDeleteFailed(volume: VolumeService, id: string, reason: string): Promise<void> {
  const row = await backupRow(volume.db, id);
  if (!row) return;
  await updateBackupIf(volume.db, id, { status: 'error_deleting', fail_reason: reason }, ['deleting']);
  await message(volume, row, MessageAction.BACKUP_DELETE, MessageDetail.BACKUP_DELETE_DRIVER_ERROR);
  volume.log.warn({ backup_id: id, reason }, 'backup delete failed');
}
