import type { Kysely } from 'kysely';
import type { RequestContext } from '../core/auth/context.js';
import type { VolumeSchema, AttachmentRow, VolumeRow } from './db/schema.js';
import { volumeNotFound } from './errors.js';
import type { AgentVolume } from './rpc.js';
import { allowed, authorize, isAdmin, now, type VolumeService } from './volume.js';

/**
 * Volumes as the API sees them: loading one the caller may see (Cinder's
 * 404 for another project's), the facts a view needs (metadata, admin
 * metadata, attachments, type, image metadata), status changes made only
 * from the expected statuses (Cinder's `conditional_update`), and removal
 * of a volume's rows.
 */

/** What a volume's view is built from, besides its row. */
export interface VolumeFacts {
  row: VolumeRow;
  /** The user's metadata. */
  metadata: Record<string, string>;
  /** Admin metadata (`readonly`, `attached_mode`, ...). */
  adminMetadata: Record<string, string>;
  attachments: AttachmentRow[];
  /** The volume type's name (null when the type is gone). */
  typeName: string | null;
  /** `volume_image_metadata`: the image the volume came from. */
  imageMetadata: Record<string, string>;
}

/** The target of a policy check on a volume (its owner). */
export function volumeTarget(row: Pick<VolumeRow, 'project_id' | 'user_id'>): Record<string, unknown> {
  return { project_id: row.project_id, user_id: row.user_id };
}

/**
 * A volume the caller may see: another project's is 404 for a
 * non-administrator, and so is one `volume:get` refuses (Cinder hides
 * existence). Checks `rule` too when given (403 when refused).
 */
export async function getVolume(volume: VolumeService, ctx: RequestContext, id: string, rule?: string, db: Kysely<VolumeSchema> = volume.db): Promise<VolumeRow> {
  const row = await db.selectFrom('volume').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (row.project_id !== ctx.projectId && !isAdmin(volume, ctx))) throw volumeNotFound(id);
  if (!allowed(volume, ctx, 'volume:get', volumeTarget(row))) throw volumeNotFound(id);
  if (rule) authorize(volume, ctx, rule, volumeTarget(row));
  return row;
}

/** A volume by id, or undefined. */
export function volumeRow(db: Kysely<VolumeSchema>, id: string): Promise<VolumeRow | undefined> {
  return db.selectFrom('volume').selectAll().where('id', '=', id).executeTakeFirst();
}

function group<T extends { key: string; value: string }>(rows: (T & { owner: string })[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const r of rows) {
    const m = out.get(r.owner) ?? {};
    m[r.key] = r.value;
    out.set(r.owner, m);
  }
  return out;
}

/** The facts of each row's view, in the rows' order (a few queries for the lot). */
export async function volumeFacts(db: Kysely<VolumeSchema>, rows: VolumeRow[]): Promise<VolumeFacts[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const typeIds = [...new Set(rows.map((r) => r.volume_type_id))];
  const [metadata, admin, glance, attachments, types] = await Promise.all([
    db.selectFrom('volume_metadata').select(['volume_id as owner', 'key', 'value']).where('volume_id', 'in', ids).execute(),
    db.selectFrom('volume_admin_metadata').select(['volume_id as owner', 'key', 'value']).where('volume_id', 'in', ids).execute(),
    db.selectFrom('volume_glance_metadata').select(['volume_id as owner', 'key', 'value']).where('volume_id', 'in', ids).where('snapshot_id', '=', '').execute(),
    db.selectFrom('attachment').selectAll().where('volume_id', 'in', ids).orderBy('created_at').orderBy('id').execute(),
    db.selectFrom('volume_type').select(['id', 'name']).where('id', 'in', typeIds).execute(),
  ]);
  const meta = group(metadata);
  const adminMeta = group(admin);
  const glanceMeta = group(glance);
  const typeName = new Map(types.map((t) => [t.id, t.name]));
  const byVolume = new Map<string, AttachmentRow[]>();
  for (const a of attachments) byVolume.set(a.volume_id, [...(byVolume.get(a.volume_id) ?? []), a]);
  return rows.map((row) => ({
    row,
    metadata: meta.get(row.id) ?? {},
    adminMetadata: adminMeta.get(row.id) ?? {},
    attachments: byVolume.get(row.id) ?? [],
    typeName: typeName.get(row.volume_type_id) ?? null,
    imageMetadata: glanceMeta.get(row.id) ?? {},
  }));
}

/** One volume's facts. */
export async function oneVolumeFacts(db: Kysely<VolumeSchema>, row: VolumeRow): Promise<VolumeFacts> {
  const [facts] = await volumeFacts(db, [row]);
  if (!facts) throw new Error('no facts');
  return facts;
}

/** A volume's user metadata. */
export async function volumeMetadata(db: Kysely<VolumeSchema>, id: string): Promise<Record<string, string>> {
  const rows = await db.selectFrom('volume_metadata').select(['key', 'value']).where('volume_id', '=', id).execute();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

/** A volume's admin metadata. */
export async function adminMetadata(db: Kysely<VolumeSchema>, id: string): Promise<Record<string, string>> {
  const rows = await db.selectFrom('volume_admin_metadata').select(['key', 'value']).where('volume_id', '=', id).execute();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

type MetadataTable = 'volume_metadata' | 'volume_admin_metadata';

/**
 * Sets metadata items of a volume (all of them when `replace`: the others
 * go). Returns the whole metadata afterwards. One transaction.
 */
export async function setVolumeMetadata(db: Kysely<VolumeSchema>, id: string, values: Record<string, string>, replace: boolean, table: MetadataTable = 'volume_metadata'): Promise<Record<string, string>> {
  await db.transaction().execute(async (trx) => {
    if (replace) await trx.deleteFrom(table).where('volume_id', '=', id).execute();
    else if (Object.keys(values).length > 0) await trx.deleteFrom(table).where('volume_id', '=', id).where('key', 'in', Object.keys(values)).execute();
    const rows = Object.entries(values).map(([key, value]) => ({ volume_id: id, key, value }));
    if (rows.length > 0) await trx.insertInto(table).values(rows).execute();
    await trx.updateTable('volume').set({ updated_at: now() }).where('id', '=', id).execute();
  });
  return table === 'volume_metadata' ? volumeMetadata(db, id) : adminMetadata(db, id);
}

/** Removes one metadata item. */
export async function deleteVolumeMetadataItem(db: Kysely<VolumeSchema>, id: string, key: string, table: MetadataTable = 'volume_metadata'): Promise<void> {
  await db.deleteFrom(table).where('volume_id', '=', id).where('key', '=', key).execute();
}

/** The image metadata (`volume_image_metadata`) of a volume. */
export async function imageMetadata(db: Kysely<VolumeSchema>, id: string): Promise<Record<string, string>> {
  const rows = await db.selectFrom('volume_glance_metadata').select(['key', 'value']).where('volume_id', '=', id).where('snapshot_id', '=', '').execute();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

/** Sets image metadata items of a volume (merging); returns all of it. */
export async function setImageMetadata(db: Kysely<VolumeSchema>, id: string, values: Record<string, string>): Promise<Record<string, string>> {
  await db.transaction().execute(async (trx) => {
    const keys = Object.keys(values);
    if (keys.length > 0) await trx.deleteFrom('volume_glance_metadata').where('volume_id', '=', id).where('snapshot_id', '=', '').where('key', 'in', keys).execute();
    const rows = Object.entries(values).map(([key, value]) => ({ volume_id: id, snapshot_id: '', key, value }));
    if (rows.length > 0) await trx.insertInto('volume_glance_metadata').values(rows).execute();
  });
  return imageMetadata(db, id);
}

/** Removes one image metadata item. */
export async function deleteImageMetadataItem(db: Kysely<VolumeSchema>, id: string, key: string): Promise<void> {
  await db.deleteFrom('volume_glance_metadata').where('volume_id', '=', id).where('snapshot_id', '=', '').where('key', '=', key).execute();
}

/** What a status change may require of the current row. */
export interface Expected {
  status?: string[];
  attach_status?: string[];
  /** Any attach status but this one. */
  attachStatusNot?: string;
  /** Migration statuses allowed (null included: not migrating). */
  migration_status?: (string | null)[];
  /** The volume has no snapshot. */
  noSnapshots?: boolean;
  /** Not this volume type (a retype). */
  notVolumeTypeId?: string;
}

/** Migration statuses of a volume that is not being migrated (Cinder's `AVAILABLE_MIGRATION_STATUS`). */
export const NOT_MIGRATING: (string | null)[] = [null, 'deleting', 'error', 'success'];

/**
 * Changes a volume's columns only when it is as `expected` (Cinder's
 * `conditional_update`, one UPDATE, safe against concurrent requests).
 * Returns whether it changed.
 */
export async function updateVolumeIf(db: Kysely<VolumeSchema>, id: string, values: Partial<VolumeRow>, expected: Expected): Promise<boolean> {
  let query = db
    .updateTable('volume')
    .set({ ...values, updated_at: now() })
    .where('id', '=', id);
  if (expected.status) query = query.where('status', 'in', expected.status);
  if (expected.attach_status) query = query.where('attach_status', 'in', expected.attach_status);
  if (expected.attachStatusNot !== undefined) query = query.where('attach_status', '!=', expected.attachStatusNot);
  if (expected.migration_status) {
    const statuses = expected.migration_status.filter((s): s is string => s !== null);
    const withNull = expected.migration_status.includes(null);
    query = query.where((eb) => (withNull ? eb.or([eb('migration_status', 'is', null), ...(statuses.length > 0 ? [eb('migration_status', 'in', statuses)] : [])]) : eb('migration_status', 'in', statuses)));
  }
  if (expected.noSnapshots) query = query.where((eb) => eb.not(eb.exists(eb.selectFrom('snapshot').select('snapshot.id').whereRef('snapshot.volume_id', '=', 'volume.id'))));
  if (expected.notVolumeTypeId !== undefined) query = query.where('volume_type_id', '!=', expected.notVolumeTypeId);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Sets columns of a volume unconditionally. */
export async function updateVolume(db: Kysely<VolumeSchema>, id: string, values: Partial<VolumeRow>): Promise<void> {
  await db
    .updateTable('volume')
    .set({ ...values, updated_at: now() })
    .where('id', '=', id)
    .execute();
}

/** Cinder's `build_or_str`: `a or b or c`. */
export function orList(items: readonly string[]): string {
  return items.join(' or ');
}

/**
 * Removes a volume's record and everything that hangs off it (metadata,
 * admin and image metadata, attachments). Its snapshots are not touched.
 */
export async function destroyVolumeRows(db: Kysely<VolumeSchema>, id: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('volume_metadata').where('volume_id', '=', id).execute();
    await trx.deleteFrom('volume_admin_metadata').where('volume_id', '=', id).execute();
    await trx.deleteFrom('volume_glance_metadata').where('volume_id', '=', id).where('snapshot_id', '=', '').execute();
    await trx.deleteFrom('attachment').where('volume_id', '=', id).execute();
    await trx.deleteFrom('volume').where('id', '=', id).execute();
  });
}

/** The volume as its agent needs it (the row must have a host). */
export function agentVolume(row: VolumeRow): AgentVolume {
  return { id: row.id, size: row.size, host: row.host ?? '', provider_location: row.provider_location, project_id: row.project_id };
}

/** `host@backend` of a scheduled volume (`host@backend#pool` without the pool), or null. */
export function backendOf(host: string | null): string | null {
  return host ? (host.split('#')[0] ?? null) : null;
}

/**
 * The notification payload of a volume (Cinder's `_usage_from_volume`):
 * `volume.create.start`, `volume.delete.end`, ... carry it.
 */
export function volumeUsage(row: VolumeRow, extra: { typeName?: string | null; metadata?: Record<string, string>; attachments?: AttachmentRow[] } = {}): Record<string, unknown> {
  return {
    tenant_id: row.project_id,
    host: row.host,
    user_id: row.user_id,
    availability_zone: row.availability_zone,
    volume_id: row.id,
    volume_type: row.volume_type_id,
    volume_type_name: extra.typeName ?? null,
    display_name: row.display_name,
    launched_at: row.launched_at,
    created_at: row.created_at,
    status: row.status,
    snapshot_id: row.snapshot_id,
    size: row.size,
    replication_status: row.replication_status,
    replication_extended_status: null,
    replication_driver_data: null,
    metadata: extra.metadata ?? {},
    volume_attachment: (extra.attachments ?? []).map((a) => ({ id: a.id, instance_uuid: a.instance_uuid, attached_host: a.attached_host, mountpoint: a.mountpoint, attach_status: a.attach_status })),
  };
}

/** Publishes `volume.<event>` with the volume's usage payload (re-reading it, so the payload is current). */
export async function notifyVolume(volume: VolumeService, id: string, event: string, fallback?: VolumeRow): Promise<void> {
  const row = (await volumeRow(volume.db, id)) ?? fallback;
  if (!row) return;
  const [facts] = await volumeFacts(volume.db, [row]);
  volume.notify(`volume.${event}`, volumeUsage(row, { typeName: facts?.typeName ?? null, metadata: facts?.metadata ?? {}, attachments: facts?.attachments ?? [] }));
}
