import type { Kysely } from 'kysely';
import type { RequestContext } from '../core/auth/context.js';
import type { SnapshotRow, VolumeSchema } from './db/schema.js';
import { snapshotNotFound } from './errors.js';
import type { AgentSnapshot } from './rpc.js';
import { allowed, authorize, isAdmin, now, type VolumeService } from './volume.js';

/**
 * Snapshots as the API sees them: loading one the caller may see, their
 * metadata, status changes from expected statuses, removal of their rows,
 * and their notification payload.
 */

/** The target of a policy check on a snapshot. */
export function snapshotTarget(row: Pick<SnapshotRow, 'project_id' | 'user_id'>): Record<string, unknown> {
  return { project_id: row.project_id, user_id: row.user_id };
}

/**
 * A snapshot the caller may see (another project's is 404 for a
 * non-administrator; `volume:get_snapshot` refused is 403, as Cinder's
 * `get_snapshot`); checks `rule` too when given.
 */
export async function getSnapshot(volume: VolumeService, ctx: RequestContext, id: string, rule?: string): Promise<SnapshotRow> {
  const row = await volume.db.selectFrom('snapshot').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (row.project_id !== ctx.projectId && !isAdmin(volume, ctx))) throw snapshotNotFound(id);
  authorize(volume, ctx, 'volume:get_snapshot', snapshotTarget(row));
  if (rule) authorize(volume, ctx, rule, snapshotTarget(row));
  return row;
}

/** True when the caller may see snapshots of `row`'s project under `rule` (no throw). */
export function maySeeSnapshot(volume: VolumeService, ctx: RequestContext, row: SnapshotRow, rule: string): boolean {
  return allowed(volume, ctx, rule, snapshotTarget(row));
}

/** A snapshot's metadata. */
export async function snapshotMetadata(db: Kysely<VolumeSchema>, id: string): Promise<Record<string, string>> {
  const rows = await db.selectFrom('snapshot_metadata').select(['key', 'value']).where('snapshot_id', '=', id).execute();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

/** The metadata of each snapshot, by id. */
export async function snapshotsMetadata(db: Kysely<VolumeSchema>, ids: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  if (ids.length === 0) return out;
  const rows = await db.selectFrom('snapshot_metadata').select(['snapshot_id', 'key', 'value']).where('snapshot_id', 'in', ids).execute();
  for (const r of rows) out.set(r.snapshot_id, { ...(out.get(r.snapshot_id) ?? {}), [r.key]: r.value });
  return out;
}

/** Sets metadata items of a snapshot (all of them when `replace`); returns the whole metadata. */
export async function setSnapshotMetadata(db: Kysely<VolumeSchema>, id: string, values: Record<string, string>, replace: boolean): Promise<Record<string, string>> {
  await db.transaction().execute(async (trx) => {
    if (replace) await trx.deleteFrom('snapshot_metadata').where('snapshot_id', '=', id).execute();
    else if (Object.keys(values).length > 0) await trx.deleteFrom('snapshot_metadata').where('snapshot_id', '=', id).where('key', 'in', Object.keys(values)).execute();
    const rows = Object.entries(values).map(([key, value]) => ({ snapshot_id: id, key, value }));
    if (rows.length > 0) await trx.insertInto('snapshot_metadata').values(rows).execute();
    await trx.updateTable('snapshot').set({ updated_at: now() }).where('id', '=', id).execute();
  });
  return snapshotMetadata(db, id);
}

/** Removes one metadata item of a snapshot. */
export async function deleteSnapshotMetadataItem(db: Kysely<VolumeSchema>, id: string, key: string): Promise<void> {
  await db.deleteFrom('snapshot_metadata').where('snapshot_id', '=', id).where('key', '=', key).execute();
}

/** Changes a snapshot's columns when its status is one of `statuses` (any, when null); returns whether it changed. */
export async function updateSnapshotIf(db: Kysely<VolumeSchema>, id: string, values: Partial<SnapshotRow>, statuses: string[] | null): Promise<boolean> {
  let query = db
    .updateTable('snapshot')
    .set({ ...values, updated_at: now() })
    .where('id', '=', id);
  if (statuses) query = query.where('status', 'in', statuses);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Removes a snapshot's record and its metadata. */
export async function destroySnapshotRows(db: Kysely<VolumeSchema>, id: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('snapshot_metadata').where('snapshot_id', '=', id).execute();
    await trx.deleteFrom('volume_glance_metadata').where('snapshot_id', '=', id).execute();
    await trx.deleteFrom('snapshot').where('id', '=', id).execute();
  });
}

/** The snapshot as its volume's agent needs it. */
export function agentSnapshot(row: SnapshotRow): AgentSnapshot {
  return { id: row.id, volume_id: row.volume_id, volume_size: row.volume_size, provider_location: row.provider_location };
}

/** The notification payload of a snapshot (Cinder's `_usage_from_snapshot`). */
export function snapshotUsage(row: SnapshotRow, availabilityZone: string | null, metadata: Record<string, string> = {}): Record<string, unknown> {
  return {
    tenant_id: row.project_id,
    user_id: row.user_id,
    availability_zone: availabilityZone,
    deleted: '',
    snapshot_id: row.id,
    display_name: row.display_name,
    created_at: row.created_at,
    status: row.status,
    volume_id: row.volume_id,
    volume_size: row.volume_size,
    metadata: Object.entries(metadata)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
  };
}

/** Publishes `snapshot.<event>` with the snapshot's payload. */
export async function notifySnapshot(volume: VolumeService, row: SnapshotRow, event: string): Promise<void> {
  const vol = await volume.db.selectFrom('volume').select('availability_zone').where('id', '=', row.volume_id).executeTakeFirst();
  volume.notify(`snapshot.${event}`, snapshotUsage(row, vol?.availability_zone ?? null, await snapshotMetadata(volume.db, row.id)));
}
