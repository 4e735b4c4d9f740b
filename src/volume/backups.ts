import type { Kysely } from 'kysely';
import type { RequestContext } from '../core/auth/context.js';
import type { BackupRow, VolumeRow, VolumeSchema } from './db/schema.js';
import { badRequest, notFound, VolumeError } from './errors.js';
import type { AgentBackup } from './backup/rpc.js';
import { resourceLinks, type ViewContext } from './views.js';
import { serviceIsUp } from './volume-services.js';
import { imageMetadata, volumeMetadata } from './volumes.js';
import { allowed, apiTime, atLeast, authorize, isAdmin, now, type VolumeService } from './volume.js';

/**
 * Backups as the API sees them: loading one the caller may see, their
 * metadata, views, notification payload, the backup service hosts, and
 * the volume metadata a backup keeps.
 */

/** Cinder's binary of the backup services. */
export const BACKUP_BINARY = 'cinder-backup';

/** Every backup status (Cinder's `BackupStatus.ALL`). */
export const BACKUP_STATUSES = ['error', 'error_deleting', 'creating', 'available', 'deleting', 'deleted', 'restoring'] as const;

/** The statuses `os-reset_status` accepts (Cinder's `backup_status` format). */
export const BACKUP_RESET_STATUSES = ['available', 'error'] as const;

/** The volume id of an imported backup record (Cinder's `IMPORT_VOLUME_ID`). */
export const IMPORT_VOLUME_ID = '00000000-0000-0000-0000-000000000000';

/** Cinder's `BackupNotFound`. */
export const backupNotFound = (id: string): VolumeError => notFound(`Backup ${id} could not be found.`);

/** Cinder's `InvalidBackup` (400). */
export const invalidBackup = (reason: string): VolumeError => badRequest(`Invalid backup: ${reason}`);

/** The target of a policy check on a backup. */
export function backupTarget(row: Pick<BackupRow, 'project_id' | 'user_id'>): Record<string, unknown> {
  return { project_id: row.project_id, user_id: row.user_id };
}

/** A backup by id, or undefined. */
export function backupRow(db: Kysely<VolumeSchema>, id: string): Promise<BackupRow | undefined> {
  return db.selectFrom('backup').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * A backup the caller may see (another project's is 404 for a
 * non-administrator; `backup:get` refused is 403); checks `rule` too.
 */
export async function getBackup(volume: VolumeService, ctx: RequestContext, id: string, rule?: string): Promise<BackupRow> {
  const row = await backupRow(volume.db, id);
  if (!row || (row.project_id !== ctx.projectId && !isAdmin(volume, ctx))) throw backupNotFound(id);
  authorize(volume, ctx, 'backup:get', backupTarget(row));
  if (rule) authorize(volume, ctx, rule, backupTarget(row));
  return row;
}

/** A backup's metadata. */
export async function backupMetadata(db: Kysely<VolumeSchema>, id: string): Promise<Record<string, string>> {
  const rows = await db.selectFrom('backup_metadata').select(['key', 'value']).where('backup_id', '=', id).execute();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

/** The metadata of each backup, by id. */
export async function backupsMetadata(db: Kysely<VolumeSchema>, ids: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('backup_metadata')
      .select(['backup_id', 'key', 'value'])
      .where('backup_id', 'in', ids.slice(i, i + 500))
      .execute();
    for (const r of rows) out.set(r.backup_id, { ...(out.get(r.backup_id) ?? {}), [r.key]: r.value });
  }
  return out;
}

/** Replaces a backup's metadata. */
export async function replaceBackupMetadata(db: Kysely<VolumeSchema>, id: string, values: Record<string, string>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('backup_metadata').where('backup_id', '=', id).execute();
    const rows = Object.entries(values).map(([key, value]) => ({ backup_id: id, key, value }));
    if (rows.length > 0) await trx.insertInto('backup_metadata').values(rows).execute();
  });
}

/** Removes a backup's record and its metadata. */
export async function destroyBackupRows(db: Kysely<VolumeSchema>, id: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('backup_metadata').where('backup_id', '=', id).execute();
    await trx.deleteFrom('backup').where('id', '=', id).execute();
  });
}

/** Changes a backup's columns when its status is one of `statuses` (any, when null); returns whether it changed. */
export async function updateBackupIf(db: Kysely<VolumeSchema>, id: string, values: Partial<BackupRow>, statuses: readonly string[] | null): Promise<boolean> {
  let query = db
    .updateTable('backup')
    .set({ ...values, updated_at: now() })
    .where('id', '=', id);
  if (statuses) query = query.where('status', 'in', statuses);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** The backup as the backup manager needs it. */
export function agentBackup(row: BackupRow): AgentBackup {
  return {
    id: row.id,
    volume_id: row.volume_id,
    project_id: row.project_id,
    snapshot_id: row.snapshot_id,
    parent_id: row.parent_id,
    display_name: row.display_name,
    display_description: row.display_description,
    container: row.container,
    service_metadata: row.service_metadata,
    created_at: row.created_at,
    size: row.size,
    service: row.service,
  };
}

/** The summary view of a backup (create, update, import, `GET /backups`). */
export function backupSummary(view: ViewContext, row: BackupRow): Record<string, unknown> {
  return { id: row.id, name: row.display_name, links: resourceLinks(view, 'backups', row.id) };
}

/** The detailed view of a backup (show, `/backups/detail`), field by field as Cinder at the request's microversion. */
export function backupDetail(volume: VolumeService, view: ViewContext, row: BackupRow, metadata: Record<string, string>): Record<string, unknown> {
  const { req } = view;
  const out: Record<string, unknown> = {
    id: row.id,
    status: row.status,
    size: row.size,
    object_count: row.object_count,
    availability_zone: row.availability_zone,
    container: row.container,
    created_at: apiTime(row.created_at),
    updated_at: apiTime(row.updated_at),
    name: row.display_name,
    description: row.display_description,
    fail_reason: row.fail_reason,
    volume_id: row.volume_id,
    links: resourceLinks(view, 'backups', row.id),
    is_incremental: row.parent_id !== null,
    has_dependent_backups: row.num_dependent_backups > 0,
    snapshot_id: row.snapshot_id,
    data_timestamp: apiTime(row.data_timestamp),
  };
  if (atLeast(req, '3.43')) out.metadata = metadata;
  if (atLeast(req, '3.64') && row.encryption_key_id) out.encryption_key_id = row.encryption_key_id;
  const showOwner = allowed(volume, view.ctx, 'backup:backup_project_attribute', backupTarget(row));
  if (showOwner && atLeast(req, '3.18')) out['os-backup-project-attr:project_id'] = row.project_id;
  if (showOwner && atLeast(req, '3.56')) out.user_id = row.user_id;
  return out;
}

/** The notification payload of a backup (Cinder's `_usage_from_backup`). */
export function backupUsage(row: BackupRow): Record<string, unknown> {
  return {
    tenant_id: row.project_id,
    user_id: row.user_id,
    availability_zone: row.availability_zone,
    backup_id: row.id,
    host: row.host,
    display_name: row.display_name,
    created_at: row.created_at,
    status: row.status,
    volume_id: row.volume_id,
    size: row.size,
    service_metadata: row.service_metadata,
    service: row.service,
    fail_reason: row.fail_reason,
    parent_id: row.parent_id,
    num_dependent_backups: row.num_dependent_backups,
    snapshot_id: row.snapshot_id,
  };
}

/** Publishes `backup.<event>` with the backup's payload (re-read, so it is current; `fallback` when it is gone). */
export async function notifyBackup(volume: VolumeService, id: string, event: string, fallback?: BackupRow): Promise<void> {
  const row = (await backupRow(volume.db, id)) ?? fallback;
  if (row) volume.notify(`backup.${event}`, backupUsage(row));
}

/**
 * The backup services that may take work: enabled, and up (heartbeats
 * within `service_down_time`; every registered one when heartbeats are
 * off), in the zone when one is given.
 */
export async function backupHosts(volume: VolumeService, zone: string | null = null): Promise<string[]> {
  const rows = await volume.db.selectFrom('service').selectAll().where('binary', '=', BACKUP_BINARY).where('disabled', '=', 0).orderBy('id').execute();
  const at = Date.now();
  const beating = volume.config.volume.report_interval > 0;
  return rows.filter((r) => (!zone || r.availability_zone === zone) && (!beating || serviceIsUp(volume, r, at))).map((r) => r.host);
}

/** Cinder's `ServiceNotFound` for the backup service: 404, or 503 where Cinder maps it so (create, import). */
export function backupServiceNotFound(status: 404 | 503, service = BACKUP_BINARY): VolumeError {
  return new VolumeError(status, `Service ${service} could not be found.`);
}

/**
 * The backup service that works on a volume: the one of the host that holds
 * it (its drivers read and write the volume), in `zone` when one is asked.
 * Throws `ServiceNotFound` (`status`) when that host has none up.
 */
export async function backupHostOfVolume(volume: VolumeService, row: VolumeRow, status: 404 | 503, zone: string | null = null): Promise<string> {
  const host = (row.host ?? '').split('@')[0] ?? '';
  if (host && (await backupHosts(volume, zone)).includes(host)) return host;
  throw backupServiceNotFound(status);
}

/** A backup service for work that needs no volume (delete, import): `preferred` when it is up, else any. */
export async function anyBackupHost(volume: VolumeService, preferred: string | null, status: 404 | 503, service?: string): Promise<string> {
  const hosts = await backupHosts(volume);
  if (preferred && hosts.includes(preferred)) return preferred;
  const host = hosts[Math.floor(Math.random() * hosts.length)];
  if (host === undefined) throw backupServiceNotFound(status, service);
  return host;
}

/**
 * What a backup keeps of its volume (Cinder's backup metadata, version 2):
 * the volume's fields, its metadata and its image metadata, the sections
 * that have something.
 */
export async function volumeMetaOf(db: Kysely<VolumeSchema>, row: VolumeRow): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {
    version: 2,
    'volume-base-metadata': {
      id: row.id,
      display_name: row.display_name,
      display_description: row.display_description,
      size: row.size,
      volume_type_id: row.volume_type_id,
      availability_zone: row.availability_zone,
      bootable: row.bootable === 1,
      multiattach: row.multiattach === 1,
      encryption_key_id: row.encryption_key_id,
      created_at: row.created_at,
    },
  };
  const metadata = await volumeMetadata(db, row.id);
  if (Object.keys(metadata).length > 0) out['volume-metadata'] = metadata;
  const image = await imageMetadata(db, row.id);
  if (Object.keys(image).length > 0) out['volume-glance-metadata'] = image;
  return out;
}
