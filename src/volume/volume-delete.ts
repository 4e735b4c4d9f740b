import type { RequestContext } from '../core/auth/context.js';
import type { VolumeRow } from './db/schema.js';
import { invalidVolume } from './errors.js';
import { AgentRpc } from './rpc.js';
import { agentSnapshot, updateSnapshotIf } from './snapshots.js';
import { CASCADE_SNAPSHOT_STATUSES, DELETABLE } from './volume-states.js';
import { agentVolume, destroyVolumeRows, NOT_MIGRATING, notifyVolume, orList, updateVolume, updateVolumeIf, volumeTarget } from './volumes.js';
import { authorize, isAdmin, type VolumeService } from './volume.js';

/**
 * Deleting a volume (Cinder's `volume.API.delete`): a volume never
 * scheduled is removed at once; another goes to `deleting` (only from a
 * status that allows it, unless forced) and its agent is told to delete
 * it; the conductor removes the record when the agent is done. With
 * `cascade` its snapshots go first.
 */
export async function deleteVolume(volume: VolumeService, ctx: RequestContext, row: VolumeRow, options: { cascade: boolean; force: boolean }): Promise<void> {
  authorize(volume, ctx, 'volume:delete', volumeTarget(row));
  // A volume of a group goes with its group (`delete-volumes`) or after leaving it, as in Cinder.
  if (row.group_id !== null) {
    const status = options.force ? '' : `status must be ${orList(DELETABLE)} and`;
    throw invalidVolume(`Volume ${status} must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.`);
  }
  if (!row.host) {
    await notifyVolume(volume, row.id, 'delete.start', row);
    // Snapshots need a backend: a volume never scheduled has none.
    await destroyVolumeRows(volume.db, row.id);
    await notifyVolume(volume, row.id, 'delete.end', { ...row, status: 'deleted' });
    return;
  }
  const snapshots = await volume.db.selectFrom('snapshot').selectAll().where('volume_id', '=', row.id).execute();
  const refuse = (): never => {
    const status = options.force ? '' : `status must be ${orList(DELETABLE)} and`;
    throw invalidVolume(`Volume ${status} must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.`);
  };
  if (options.cascade) {
    const admin = isAdmin(volume, ctx);
    const blocked = snapshots.some((s) => (!options.force && !CASCADE_SNAPSHOT_STATUSES.includes(s.status)) || (!admin && s.project_id !== row.project_id));
    if (blocked) refuse();
  }
  const changed = await updateVolumeIf(
    volume.db,
    row.id,
    { status: 'deleting' },
    {
      attachStatusNot: 'attached',
      migration_status: NOT_MIGRATING,
      ...(options.force ? {} : { status: DELETABLE }),
      ...(options.cascade ? {} : { noSnapshots: true }),
    },
  );
  if (!changed) refuse();

  const rpc = new AgentRpc(volume.bus);
  if (options.cascade) {
    for (const snapshot of snapshots) {
      const ok = await updateSnapshotIf(volume.db, snapshot.id, { status: 'deleting' }, options.force ? null : CASCADE_SNAPSHOT_STATUSES);
      if (!ok) {
        await updateVolume(volume.db, row.id, { status: 'error_deleting' });
        throw invalidVolume('Failed to update snapshot.');
      }
    }
  }
  await notifyVolume(volume, row.id, 'delete.start');
  for (const snapshot of options.cascade ? snapshots : []) await rpc.deleteSnapshot(agentVolume(row), agentSnapshot(snapshot));
  await rpc.deleteVolume(agentVolume(row));
}
