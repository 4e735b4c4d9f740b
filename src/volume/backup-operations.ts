import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestContext } from '../core/auth/context.js';
import { BackupRpc } from './backup/rpc.js';
import {
  agentBackup,
  anyBackupHost,
  backupHostOfVolume,
  backupRow,
  backupTarget,
  destroyBackupRows,
  IMPORT_VOLUME_ID,
  invalidBackup,
  notifyBackup,
  replaceBackupMetadata,
  updateBackupIf,
  volumeMetaOf,
} from './backups.js';
import type { BackupRow, SnapshotRow, VolumeRow } from './db/schema.js';
import { badRequest, invalidVolume } from './errors.js';
import { checkBackupQuota } from './quotas.js';
import { agentSnapshot, getSnapshot, updateSnapshotIf } from './snapshots.js';
import { createVolume } from './volume-create.js';
import { agentVolume, getVolume, updateVolumeIf, volumeRow } from './volumes.js';
import { authorize, now, type VolumeService } from './volume.js';

/**
 * Making, restoring and deleting backups (Cinder's `backup.API`): the API
 * records the change (`creating`, `restoring`, `deleting`; the volume
 * `backing-up` or `restoring-backup`) and casts the work to the backup
 * service of the host that holds the volume; the conductor records the
 * outcome. A refused request changes nothing.
 */

/** A new backup's fields, checked for type by the API layer. */
export interface NewBackup {
  volumeId: string;
  name: string | null;
  description: string | null;
  container: string | null;
  incremental: boolean;
  force: boolean;
  snapshotId: string | null;
  metadata: Record<string, string>;
  availabilityZone: string | null;
}

/** How long a restore waits for the volume it creates (Cinder polls without end). */
const NEW_VOLUME_WAIT_MS = 10 * 60_000;

/** The parent of an incremental backup of `row` (Cinder: the latest available by data time, before the snapshot's for a snapshot backup). */
async function parentBackup(volume: VolumeService, ctx: RequestContext, row: VolumeRow, snapshot: SnapshotRow | null): Promise<BackupRow> {
  const backups = await volume.db
    .selectFrom('backup')
    .selectAll()
    .where('volume_id', '=', row.id)
    .where('project_id', '=', ctx.projectId ?? row.project_id)
    .execute();
  const candidates = backups.filter((b) => b.status === 'available' && (!snapshot || (b.data_timestamp ?? b.created_at) < snapshot.created_at));
  candidates.sort((a, b) => ((a.data_timestamp ?? a.created_at) < (b.data_timestamp ?? b.created_at) ? 1 : -1));
  const latest = candidates[0];
  if (!latest) throw invalidBackup('No backups available to do an incremental backup.');
  return latest;
}

/**
 * Checks and records a backup of a volume (or of one of its snapshots),
 * within the `backups` and `backup_gigabytes` quotas, and casts it to the
 * volume host's backup service; publishes `backup.create.start`.
 */
export async function createBackup(volume: VolumeService, ctx: RequestContext, input: NewBackup): Promise<BackupRow> {
  const vol = await getVolume(volume, ctx, input.volumeId);
  authorize(volume, ctx, 'backup:create', { project_id: vol.project_id, user_id: vol.user_id });
  let snapshot: SnapshotRow | null = null;
  if (input.snapshotId !== null) {
    snapshot = await getSnapshot(volume, ctx, input.snapshotId);
    if (snapshot.volume_id !== vol.id) throw invalidVolume(`Volume ${vol.id} does not match with snapshot.volume_id ${snapshot.volume_id}.`);
    if (snapshot.status !== 'available') throw badRequest(`Invalid snapshot: Snapshot to be backed up must be available, but the current status is "${snapshot.status}".`);
  } else if (!['available', 'in-use'].includes(vol.status)) {
    throw invalidVolume(`Volume to be backed up must be available or in-use, but the current status is "${vol.status}".`);
  } else if (vol.status === 'in-use' && !input.force) {
    throw invalidVolume('Backing up an in-use volume must use the force flag.');
  }
  const projectId = ctx.projectId ?? vol.project_id;
  await checkBackupQuota(volume, projectId, vol.size, false);
  const parent = input.incremental ? await parentBackup(volume, ctx, vol, snapshot) : null;
  const host = await backupHostOfVolume(volume, vol, 503, input.availabilityZone);
  const created = now();
  const backup: BackupRow = {
    id: randomUUID(),
    project_id: projectId,
    user_id: ctx.userId,
    volume_id: vol.id,
    snapshot_id: snapshot?.id ?? null,
    host,
    availability_zone: input.availabilityZone,
    display_name: input.name,
    display_description: input.description,
    container: input.container,
    status: 'creating',
    fail_reason: null,
    service_metadata: null,
    service: null,
    size: vol.size,
    object_count: 0,
    parent_id: parent?.id ?? null,
    num_dependent_backups: 0,
    data_timestamp: snapshot?.created_at ?? created,
    restore_volume_id: null,
    encryption_key_id: vol.encryption_key_id,
    created_at: created,
    updated_at: null,
  };
  // The volume (or snapshot) is taken first, from the status checked above: a concurrent change wins and this request fails.
  const taken = snapshot
    ? await updateSnapshotIf(volume.db, snapshot.id, { status: 'backing-up' }, ['available'])
    : await updateVolumeIf(volume.db, vol.id, { status: 'backing-up', previous_status: vol.status }, { status: [vol.status] });
  if (!taken) {
    if (snapshot) throw badRequest('Invalid snapshot: Snapshot to be backed up must be available, but the current status is "backing-up".');
    const current = await volumeRow(volume.db, vol.id);
    throw invalidVolume(`Volume to be backed up must be available or in-use, but the current status is "${current?.status ?? 'deleted'}".`);
  }
  const release = async (): Promise<void> => {
    if (snapshot) await updateSnapshotIf(volume.db, snapshot.id, { status: 'available' }, ['backing-up']);
    else await updateVolumeIf(volume.db, vol.id, { status: vol.status, previous_status: vol.previous_status }, { status: ['backing-up'] });
  };
  try {
    await volume.db.transaction().execute(async (trx) => {
      await trx.insertInto('backup').values(backup).execute();
      const metadata = Object.entries(input.metadata).map(([key, value]) => ({ backup_id: backup.id, key, value }));
      if (metadata.length > 0) await trx.insertInto('backup_metadata').values(metadata).execute();
    });
  } catch (err) {
    await release();
    throw err;
  }
  try {
    await checkBackupQuota(volume, projectId, vol.size, true);
    await notifyBackup(volume, backup.id, 'create.start');
    await new BackupRpc(volume.bus).createBackup(host, {
      backup: agentBackup(backup),
      volume: agentVolume(vol),
      snapshot: snapshot ? agentSnapshot(snapshot) : null,
      parent: parent ? agentBackup(parent) : null,
      volume_meta: await volumeMetaOf(volume.db, vol),
      user_token: ctx.authToken,
      request_id: ctx.requestId,
    });
  } catch (err) {
    await destroyBackupRows(volume.db, backup.id);
    await release();
    throw err;
  }
  return backup;
}

/** What a restore answers. */
export interface RestoreAnswer {
  backup_id: string;
  volume_id: string;
  volume_name: string | null;
}

/** Creates the volume a restore without `volume_id` writes to (Cinder's size, name and description), waiting until it is made. */
async function newRestoreVolume(volume: VolumeService, ctx: RequestContext, backup: BackupRow, name: string | null): Promise<VolumeRow> {
  const made = await createVolume(volume, ctx, {
    size: backup.size,
    name: name ?? `restore_backup_${backup.id}`,
    description: 'auto-created_from_restore_from_backup',
    volumeType: null,
    metadata: {},
    snapshotId: null,
    sourceVolid: null,
    imageRef: null,
    backupId: null,
    groupId: null,
    availabilityZone: null,
  });
  const deadline = Date.now() + NEW_VOLUME_WAIT_MS;
  for (;;) {
    const row = await volumeRow(volume.db, made.id);
    if (row && row.status !== 'creating') {
      if (row.status === 'error') throw invalidVolume(`Error while creating volume ${made.id} for restoring backup ${backup.id}.`);
      return row;
    }
    if (!row || Date.now() > deadline) throw invalidVolume(`Error while creating volume ${made.id} for restoring backup ${backup.id}.`);
    await sleep(25);
  }
}

/**
 * Restores a backup into a volume (`volume_id`, `available` and at least as
 * large) or into a new one; the backup goes `restoring`, the volume
 * `restoring-backup`, and the volume host's backup service writes it.
 */
export async function restoreBackup(volume: VolumeService, ctx: RequestContext, backup: BackupRow, volumeId: string | null, name: string | null): Promise<RestoreAnswer> {
  authorize(volume, ctx, 'backup:restore', backupTarget(backup));
  if (backup.status !== 'available') throw invalidBackup('Backup status must be available');
  const isNew = volumeId === null;
  let target = isNew ? await newRestoreVolume(volume, ctx, backup, name) : await getVolume(volume, ctx, volumeId);
  if (target.status !== 'available') throw invalidVolume('Volume to be restored to must be available');
  if (backup.size > target.size) throw invalidVolume(`volume size ${target.size} is too small to restore backup of size ${backup.size}.`);
  const host = await backupHostOfVolume(volume, target, 404);
  if (!(await updateBackupIf(volume.db, backup.id, { status: 'restoring', restore_volume_id: target.id, host }, ['available']))) {
    throw invalidBackup('Backup status must be available');
  }
  if (!(await updateVolumeIf(volume.db, target.id, { status: 'restoring-backup' }, { status: ['available'] }))) {
    await updateBackupIf(volume.db, backup.id, { status: 'available', restore_volume_id: null }, ['restoring']);
    throw invalidVolume('Volume to be restored to must be available');
  }
  target = (await volumeRow(volume.db, target.id)) ?? target;
  try {
    await notifyBackup(volume, backup.id, 'restore.start');
    await new BackupRpc(volume.bus).restoreBackup(host, { backup: agentBackup(backup), volume: agentVolume(target), volume_is_new: isNew, user_token: ctx.authToken, request_id: ctx.requestId });
  } catch (err) {
    await updateVolumeIf(volume.db, target.id, { status: 'available' }, { status: ['restoring-backup'] });
    await updateBackupIf(volume.db, backup.id, { status: 'available', restore_volume_id: null }, ['restoring']);
    throw err;
  }
  return { backup_id: backup.id, volume_id: target.id, volume_name: target.display_name };
}

/**
 * Deletes a backup: `available` or `error` (any status when forced) to
 * `deleting`, unless incremental backups build on it; a backup service
 * removes its objects and the conductor its record.
 */
export async function deleteBackup(volume: VolumeService, ctx: RequestContext, backup: BackupRow, force: boolean): Promise<void> {
  authorize(volume, ctx, 'backup:delete', backupTarget(backup));
  if (!force && !['available', 'error'].includes(backup.status)) throw invalidBackup('Backup status must be available or error');
  const dependent = await volume.db.selectFrom('backup').select('id').where('parent_id', '=', backup.id).executeTakeFirst();
  if (dependent) throw invalidBackup('Incremental backups exist for this backup.');
  // The service that made the backup (that cancels it when it is being made), else any.
  const host = await anyBackupHost(volume, backup.host, 404);
  if (!(await updateBackupIf(volume.db, backup.id, { status: 'deleting', host }, force ? null : ['available', 'error']))) {
    throw invalidBackup('Backup status must be available or error');
  }
  const current = (await backupRow(volume.db, backup.id)) ?? backup;
  await notifyBackup(volume, backup.id, 'delete.start');
  try {
    await new BackupRpc(volume.bus).deleteBackup(host, { backup: agentBackup(current), user_token: ctx.authToken, request_id: ctx.requestId });
  } catch (err) {
    await updateBackupIf(volume.db, backup.id, { status: 'error_deleting', fail_reason: 'The delete could not be sent to a backup service.' }, ['deleting']);
    throw err;
  }
}

/** `os-reset_status` (administrators): the backup's status becomes `status`, with `backup.reset_status.start` and `.end`. */
export async function resetBackupStatus(volume: VolumeService, ctx: RequestContext, backup: BackupRow, status: string): Promise<void> {
  authorize(volume, ctx, 'volume_extension:backup_admin_actions:reset_status', backupTarget(backup));
  await notifyBackup(volume, backup.id, 'reset_status.start');
  await updateBackupIf(volume.db, backup.id, { status }, null);
  await notifyBackup(volume, backup.id, 'reset_status.end');
}

/** Updates a backup's name, description and (3.43) metadata. */
export async function updateBackup(volume: VolumeService, ctx: RequestContext, backup: BackupRow, values: { name?: string | null; description?: string | null; metadata?: Record<string, string> }): Promise<BackupRow> {
  authorize(volume, ctx, 'backup:update', backupTarget(backup));
  const set: Partial<BackupRow> = {};
  if (values.name !== undefined) set.display_name = values.name;
  if (values.description !== undefined) set.display_description = values.description;
  await updateBackupIf(volume.db, backup.id, set, null);
  if (values.metadata !== undefined) await replaceBackupMetadata(volume.db, backup.id, values.metadata);
  return (await backupRow(volume.db, backup.id)) ?? backup;
}

/** The fields of a backup record (Cinder's `Backup.encode_record`), with the metadata. */
function recordOf(row: BackupRow, metadata: Record<string, string>): Record<string, unknown> {
  return {
    id: row.id,
    user_id: row.user_id,
    project_id: row.project_id,
    volume_id: row.volume_id,
    host: row.host,
    availability_zone: row.availability_zone,
    container: row.container,
    parent_id: row.parent_id,
    status: row.status,
    fail_reason: row.fail_reason,
    size: row.size,
    display_name: row.display_name,
    display_description: row.display_description,
    service_metadata: row.service_metadata,
    service: row.service,
    object_count: row.object_count,
    temp_volume_id: null,
    temp_snapshot_id: null,
    num_dependent_backups: row.num_dependent_backups,
    snapshot_id: row.snapshot_id,
    data_timestamp: row.data_timestamp,
    restore_volume_id: row.restore_volume_id,
    metadata,
    encryption_key_id: row.encryption_key_id,
    created_at: row.created_at,
    updated_at: row.updated_at,
    deleted_at: null,
    deleted: false,
    driver_info: {},
  };
}

/** `export_record` (administrators): an `available` backup's record, base64 JSON, to import into another cloud's database. */
export async function exportRecord(volume: VolumeService, ctx: RequestContext, backup: BackupRow, metadata: Record<string, string>): Promise<{ backup_service: string; backup_url: string }> {
  authorize(volume, ctx, 'backup:export-import', backupTarget(backup));
  if (backup.status !== 'available') throw invalidBackup(`Backup status must be available and not ${backup.status}.`);
  return { backup_service: backup.service ?? '', backup_url: Buffer.from(JSON.stringify(recordOf(backup, metadata))).toString('base64') };
}

/** Decodes a record (Cinder's `decode_record`): 400 when it is not base64 JSON of an object. */
function decodeRecord(url: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(url, 'base64').toString('utf8'));
  } catch {
    throw badRequest("Invalid input received: Can't parse backup record.");
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw badRequest("Invalid input received: Can't parse backup record.");
  return value as Record<string, unknown>;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : v === null || v === undefined ? null : String(v));
const int = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : Number.parseInt(String(v ?? 0), 10) || 0);

/**
 * `import_record` (administrators): records a backup from an exported
 * record (same id; within quota) in the caller's project, and has a backup
 * service check that its data is in the store: `available` then, `error`
 * with the reason otherwise.
 */
export async function importRecord(volume: VolumeService, ctx: RequestContext, service: string, url: string): Promise<BackupRow> {
  authorize(volume, ctx, 'backup:backup-import');
  const host = await anyBackupHost(volume, null, 503, service);
  const record = decodeRecord(url);
  if (!('id' in record)) throw badRequest('Invalid input received: Provided backup record is missing an id');
  if (!('size' in record)) throw badRequest('Invalid input received: Provided backup record is missing size attribute');
  const id = str(record.id) ?? '';
  if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(id)) throw badRequest("Invalid input received: Can't parse backup record.");
  if (await backupRow(volume.db, id)) throw invalidBackup('Backup already exists in database.');
  const projectId = ctx.projectId ?? '';
  const size = int(record.size);
  await checkBackupQuota(volume, projectId, size, false);
  const created = now();
  const row: BackupRow = {
    id,
    project_id: projectId,
    user_id: ctx.userId,
    volume_id: IMPORT_VOLUME_ID,
    snapshot_id: null,
    host,
    availability_zone: null,
    display_name: null,
    display_description: null,
    container: null,
    status: 'creating',
    fail_reason: null,
    service_metadata: null,
    service: null,
    size,
    object_count: 0,
    parent_id: null,
    num_dependent_backups: 0,
    data_timestamp: null,
    restore_volume_id: null,
    encryption_key_id: null,
    created_at: created,
    updated_at: null,
  };
  await volume.db.insertInto('backup').values(row).execute();
  try {
    await checkBackupQuota(volume, projectId, size, true);
  } catch (err) {
    await destroyBackupRows(volume.db, id);
    throw err;
  }
  const missing = ['display_name', 'display_description', 'container', 'size', 'service_metadata', 'object_count', 'id'].filter((k) => !(k in record));
  const imported: Partial<BackupRow> = {
    volume_id: str(record.volume_id) ?? IMPORT_VOLUME_ID,
    snapshot_id: str(record.snapshot_id),
    display_name: str(record.display_name),
    display_description: str(record.display_description),
    container: str(record.container),
    service_metadata: str(record.service_metadata),
    object_count: int(record.object_count),
    parent_id: str(record.parent_id),
    data_timestamp: str(record.data_timestamp),
    encryption_key_id: str(record.encryption_key_id),
  };
  try {
    if (missing.length > 0) throw new Error(`Driver successfully decoded imported backup data, but there are missing fields (${missing.join(', ')}).`);
    const checked = await new BackupRpc(volume.bus).verifyBackup(host, { backup: { ...agentBackup({ ...row, ...imported }), service }, user_token: ctx.authToken, request_id: ctx.requestId });
    await updateBackupIf(volume.db, id, { ...imported, service: checked.service, status: 'available' }, ['creating']);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    await updateBackupIf(volume.db, id, { ...imported, status: 'error', fail_reason: reason }, ['creating']);
  }
  return (await backupRow(volume.db, id)) ?? row;
}
