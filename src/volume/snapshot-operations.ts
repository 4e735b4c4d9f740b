import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../core/auth/context.js';
import type { SnapshotRow, VolumeRow } from './db/schema.js';
import { badRequest, invalidVolume } from './errors.js';
import { checkQuotaAfterInsert, reserveQuota } from './quotas.js';
import { AgentRpc } from './rpc.js';
import { agentSnapshot, destroySnapshotRows, notifySnapshot, snapshotTarget, updateSnapshotIf } from './snapshots.js';
import { SNAPSHOT_DELETABLE, SNAPSHOTTABLE, SNAPSHOTTABLE_IN_USE } from './volume-states.js';
import { loadTypes } from './volume-types.js';
import { agentVolume, NOT_MIGRATING, volumeRow, volumeTarget } from './volumes.js';
import { authorize, now, type VolumeService } from './volume.js';

/**
 * Taking and deleting snapshots (Cinder's `volume.API.create_snapshot` and
 * `delete_snapshot`): the snapshot is recorded `creating` (within quota:
 * a snapshot and the volume's size in gigabytes) and its volume's agent
 * takes it; the conductor moves it to `available` or `error`, and removes
 * the record after a delete.
 */

/** A new snapshot's fields. */
export interface NewSnapshot {
  name: string | null;
  description: string | null;
  metadata: Record<string, string>;
  /** `force` (or 3.66): an `in-use` volume may be snapshotted. */
  allowInUse: boolean;
  /** The group snapshot this snapshot is part of (a group snapshot takes one of each volume). */
  groupSnapshotId?: string | null;
}

/** Checks, records and casts a snapshot of `row`; returns the snapshot. */
export async function createSnapshot(volume: VolumeService, ctx: RequestContext, row: VolumeRow, input: NewSnapshot): Promise<SnapshotRow> {
  authorize(volume, ctx, 'volume:create_snapshot', volumeTarget(row));
  if (!row.host) throw invalidVolume('The snapshot cannot be created because volume has not been scheduled to any host.');
  if (row.status === 'maintenance') throw invalidVolume('The snapshot cannot be created when the volume is in maintenance mode.');
  if (!NOT_MIGRATING.includes(row.migration_status)) throw invalidVolume('Snapshot cannot be created while volume is migrating.');
  if (row.status === 'error') throw invalidVolume('The snapshot cannot be created when the volume is in error status.');
  const valid = input.allowInUse ? SNAPSHOTTABLE_IN_USE : SNAPSHOTTABLE;
  if (!valid.includes(row.status)) throw invalidVolume(`Volume ${row.id} status must be ${valid.join(', ')}, but current status is: ${row.status}.`);
  const projectId = ctx.projectId ?? row.project_id;
  const [type] = await loadTypes(volume, [row.volume_type_id]);
  const typeName = type?.name ?? null;
  await reserveQuota(volume, projectId, { snapshots: 1, gigabytes: row.size }, typeName);
  const snapshot: SnapshotRow = {
    id: randomUUID(),
    volume_id: row.id,
    project_id: projectId,
    user_id: ctx.userId,
    status: 'creating',
    progress: '0%',
    volume_size: row.size,
    display_name: input.name,
    display_description: input.description,
    volume_type_id: row.volume_type_id,
    provider_location: null,
    group_snapshot_id: input.groupSnapshotId ?? null,
    created_at: now(),
    updated_at: null,
  };
  await volume.db.transaction().execute(async (trx) => {
    await trx.insertInto('snapshot').values(snapshot).execute();
    const metadata = Object.entries(input.metadata).map(([key, value]) => ({ snapshot_id: snapshot.id, key, value }));
    if (metadata.length > 0) await trx.insertInto('snapshot_metadata').values(metadata).execute();
  });
  try {
    await checkQuotaAfterInsert(volume, projectId, { snapshots: 1, gigabytes: row.size }, typeName);
    // The volume may have changed while the snapshot was recorded (Cinder checks again).
    const current = await volumeRow(volume.db, row.id);
    if (!current || !valid.includes(current.status)) {
      throw invalidVolume(`Volume ${row.id} status must be ${valid.join(', ')} , but current status is: ${current?.status ?? 'deleted'}.`);
    }
  } catch (err) {
    await destroySnapshotRows(volume.db, snapshot.id);
    throw err;
  }
  await notifySnapshot(volume, snapshot, 'create.start');
  await new AgentRpc(volume.bus).createSnapshot(agentVolume(row), agentSnapshot(snapshot));
  return snapshot;
}

/**
 * Deletes a snapshot: `available` or `error` (any status when forced) to
 * `deleting`, and its volume's agent removes it. 400 otherwise.
 */
export async function deleteSnapshot(volume: VolumeService, ctx: RequestContext, snapshot: SnapshotRow, force: boolean): Promise<void> {
  authorize(volume, ctx, 'volume:delete_snapshot', snapshotTarget(snapshot));
  const changed = snapshot.group_snapshot_id === null && (await updateSnapshotIf(volume.db, snapshot.id, { status: 'deleting' }, force ? null : SNAPSHOT_DELETABLE));
  if (!changed) {
    const status = force ? '' : `status must be ${SNAPSHOT_DELETABLE.join(' or ')} and`;
    throw badRequest(`Invalid snapshot: Snapshot ${status} must not be part of a group.`);
  }
  const row = await volumeRow(volume.db, snapshot.volume_id);
  await notifySnapshot(volume, { ...snapshot, status: 'deleting' }, 'delete.start');
  if (!row?.host) {
    // Without its volume (or a backend) there is nothing to remove but the record.
    await destroySnapshotRows(volume.db, snapshot.id);
    await notifySnapshot(volume, { ...snapshot, status: 'deleted' }, 'delete.end');
    return;
  }
  await new AgentRpc(volume.bus).deleteSnapshot(agentVolume(row), agentSnapshot(snapshot));
}
