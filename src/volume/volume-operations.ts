import type { RequestContext } from '../core/auth/context.js';
import type { VolumeRow } from './db/schema.js';
import { badRequest, conflict, invalidVolume } from './errors.js';
import { finishDetach, volumeAttachments } from './attachments.js';
import { reserveQuota } from './quotas.js';
import { AgentRpc, type BackendReport } from './rpc.js';
import { agentSnapshot, updateSnapshotIf } from './snapshots.js';
import { checkTypeSize, isMultiattachType, typeZones } from './volume-type-rules.js';
import { findVolumeType, loadTypes } from './volume-types.js';
import { agentVolume, backendOf, deleteVolumeMetadataItem, NOT_MIGRATING, notifyVolume, setVolumeMetadata, updateVolume, updateVolumeIf, volumeTarget } from './volumes.js';
import { authorize, type VolumeService } from './volume.js';
import { capabilitiesFilter, type PoolState } from './scheduler/filters.js';
import { retypeWithMigration } from './volume-migration.js';

/**
 * Volume actions that change a volume's state on the API side (Cinder's
 * `volume.API`): extend, retype, reset status, read-only flag, bootable,
 * revert to a snapshot. Each moves the volume only from the statuses Cinder
 * allows, and casts the work to the volume's agent where there is some.
 */

/** The last report of the backend that holds `host` (`host@backend#pool`), or null. */
async function backendReport(volume: VolumeService, host: string | null): Promise<BackendReport | null> {
  const backend = backendOf(host);
  if (!backend) return null;
  const row = await volume.db.selectFrom('service').select('capabilities').where('host', '=', backend).where('binary', '=', 'cinder-volume').executeTakeFirst();
  if (!row?.capabilities) return null;
  try {
    return JSON.parse(row.capabilities) as BackendReport;
  } catch {
    return null;
  }
}

/** The pool of `host` in its backend's report, with what extra specs match against. */
function poolOf(report: BackendReport, host: string): PoolState | null {
  const poolName = host.split('#')[1];
  const stats = report.pools.find((p) => p.pool_name === poolName) ?? report.pools[0];
  if (!stats) return null;
  const { pools: _pools, ...backend } = report;
  void _pools;
  return {
    name: host,
    backend: report.host,
    availability_zone: report.availability_zone,
    stats,
    capabilities: { ...backend, ...stats },
    reported_at: '',
  };
}

/**
 * `os-extend`: `available` (or `in-use` from 3.42, on a backend that
 * extends attached volumes) to `extending`, within quota; the agent grows
 * it and the conductor records the new size.
 */
export async function extendVolume(volume: VolumeService, ctx: RequestContext, row: VolumeRow, newSize: number, attached: boolean): Promise<void> {
  authorize(volume, ctx, attached ? 'volume:extend_attached_volume' : 'volume:extend', volumeTarget(row));
  const increase = newSize - row.size;
  if (increase <= 0) throw badRequest(`Invalid input received: New size for extend must be greater than current size. (current: ${row.size}, extended: ${newSize}).`);
  const [type] = await loadTypes(volume, [row.volume_type_id]);
  if (type) checkTypeSize(type, newSize);
  const expected = attached ? 'in-use' : 'available';
  if (attached) {
    const report = await backendReport(volume, row.host);
    const pool = report && row.host ? poolOf(report, row.host) : null;
    if (!pool?.stats.online_extend_support) throw invalidVolume(`The backend of volume ${row.id} cannot extend an attached volume.`);
  }
  const changed = await updateVolumeIf(volume.db, row.id, { status: 'extending', previous_status: row.status }, { status: [expected] });
  if (!changed) throw invalidVolume(`Volume ${row.id} status must be '{'status': '${expected}'}' to extend, currently ${row.status}.`);
  try {
    await reserveQuota(volume, row.project_id, { gigabytes: increase }, type?.name ?? null, { size: newSize });
  } catch (err) {
    await updateVolumeIf(volume.db, row.id, { status: row.status, previous_status: null }, { status: ['extending'] });
    throw err;
  }
  await notifyVolume(volume, row.id, 'resize.start');
  await new AgentRpc(volume.bus).extendVolume(agentVolume(row), newSize, attached);
}

/**
 * `os-retype`: to a type the volume's backend satisfies, at once. A type
 * that needs another backend needs a migration: with `migration_policy:
 * on-demand` the volume migrates (see volume-migration.ts) and takes the
 * type when it arrives; otherwise it is refused (400) and the volume keeps
 * its type and status.
 */
export async function retypeVolume(volume: VolumeService, ctx: RequestContext, row: VolumeRow, newType: string, migrationPolicy: string | null): Promise<void> {
  authorize(volume, ctx, 'volume:retype', volumeTarget(row));
  const type = await findVolumeType(volume, null, newType);
  checkTypeSize(type, row.size);
  const targetMultiattach = isMultiattachType(type);
  if ((row.multiattach === 1) !== targetMultiattach) {
    if (row.status !== 'available') {
      throw badRequest(`Invalid input received: Invalid volume_type passed, retypes affecting multiattach are only allowed on available volumes, the specified volume however currently has a status of: ${row.status}.`);
    }
    if (targetMultiattach) authorize(volume, ctx, 'volume:multiattach', volumeTarget(row));
  }
  const changed = await updateVolumeIf(
    volume.db,
    row.id,
    { status: 'retyping', previous_status: row.status },
    { status: ['available', 'in-use'], migration_status: NOT_MIGRATING, notVolumeTypeId: type.id },
  );
  if (!changed) {
    throw invalidVolume(
      'Retype needs volume to be in available or in-use state, not be part of an active migration or a consistency group, requested type has to be different that the one from the volume, and for in-use volumes front-end qos specs cannot change.',
    );
  }
  const report = await backendReport(volume, row.host);
  const pool = report && row.host ? poolOf(report, row.host) : null;
  const zones = typeZones(type);
  const fits = row.host === null || (pool !== null && capabilitiesFilter.passes(pool, { size: row.size, availability_zone: null, extra_specs: type.extra_specs, source_backend: null, excluded: [] }) && (zones === null || zones.includes(row.availability_zone)));
  if (!fits && migrationPolicy === 'on-demand') {
    await retypeWithMigration(volume, row, type);
    return;
  }
  if (!fits) {
    await updateVolume(volume.db, row.id, { status: row.status, previous_status: null });
    throw invalidVolume(`Volume ${row.id} cannot be retyped to ${type.name}: its backend does not satisfy the type and migration_policy is 'never'.`);
  }
  await updateVolume(volume.db, row.id, { volume_type_id: type.id, multiattach: targetMultiattach ? 1 : 0, status: row.status, previous_status: null });
  await notifyVolume(volume, row.id, 'retype');
}

/**
 * `os-reset_status` (administrators): sets any of status, attach status
 * and migration status. `deleting` is refused, `in-use` needs an
 * attachment; `attach_status: detached` removes the attachments.
 */
export async function resetVolumeStatus(volume: VolumeService, row: VolumeRow, update: { status?: string; attach_status?: string; migration_status?: string | null }): Promise<void> {
  // Cinder's check reads ('deleting', 'error_deleting' 'detaching'): only `deleting` (and that joined word) is refused.
  if (update.status === 'deleting' || update.status === 'error_deletingdetaching') throw badRequest(`Cannot reset-state to ${update.status}`);
  if (update.status === 'in-use' && (await volumeAttachments(volume, row.id)).length === 0) {
    throw badRequest('Cannot reset-state to in-use because volume does not have any attachments.');
  }
  await notifyVolume(volume, row.id, 'reset_status.start', row);
  await updateVolume(volume.db, row.id, update);
  if (update.attach_status === 'detached') {
    for (const attachment of await volumeAttachments(volume, row.id)) await finishDetach(volume, row.id, attachment.id);
    // Removing the attachments sets the status from those left (`available`); an asked status wins over that.
    if (update.status) await updateVolume(volume.db, row.id, { status: update.status });
    await deleteVolumeMetadataItem(volume.db, row.id, 'attached_mode', 'volume_admin_metadata');
  }
  await notifyVolume(volume, row.id, 'reset_status.end');
}

/** `os-update_readonly_flag`: an `available` volume's admin metadata `readonly`. */
export async function setReadonly(volume: VolumeService, ctx: RequestContext, row: VolumeRow, readonly: boolean): Promise<void> {
  authorize(volume, ctx, 'volume:update_readonly_flag', volumeTarget(row));
  if (row.status !== 'available') {
    throw invalidVolume(`Volume ${row.id} status must be available to update readonly flag, but current status is: ${row.status}.`);
  }
  await setVolumeMetadata(volume.db, row.id, { readonly: readonly ? 'True' : 'False' }, false, 'volume_admin_metadata');
}

/** `os-set_bootable` (Cinder's volume update). */
export async function setBootable(volume: VolumeService, ctx: RequestContext, row: VolumeRow, bootable: boolean): Promise<void> {
  authorize(volume, ctx, 'volume:update', volumeTarget(row));
  if (row.status === 'maintenance') throw invalidVolume('The volume cannot be updated during maintenance.');
  await updateVolume(volume.db, row.id, { bootable: bootable ? 1 : 0 });
}

/**
 * `revert` (3.40): to the volume's latest snapshot, of the same size; the
 * volume goes to `reverting` and the snapshot to `restoring` (409 when
 * either is not `available`) and the agent copies it back.
 */
export async function revertVolume(volume: VolumeService, ctx: RequestContext, row: VolumeRow, snapshotId: string | null): Promise<void> {
  const latest = await volume.db.selectFrom('snapshot').selectAll().where('volume_id', '=', row.id).orderBy('created_at', 'desc').orderBy('id', 'desc').executeTakeFirst();
  if (!latest) throw badRequest(`Volume ${row.id} doesn't have any snapshots.`);
  if (snapshotId === null || snapshotId !== latest.id) throw badRequest(`Specified snapshot ${snapshotId ?? 'None'} is None or not the latest one of volume ${row.id}.`);
  if (row.size !== latest.volume_size) {
    throw badRequest(`Can't revert volume ${row.id} to its latest snapshot ${latest.id}. The volume size must be equal to the snapshot size.`);
  }
  authorize(volume, ctx, 'volume:revert_to_snapshot', volumeTarget(row));
  if (!(await updateVolumeIf(volume.db, row.id, { status: 'reverting' }, { status: ['available'] }))) {
    throw conflict(`Invalid volume: Can't revert volume ${row.id} to its latest snapshot ${latest.id}. Volume's status must be 'available'.`);
  }
  if (!(await updateSnapshotIf(volume.db, latest.id, { status: 'restoring' }, ['available']))) {
    await updateVolumeIf(volume.db, row.id, { status: 'available' }, { status: ['reverting'] });
    throw conflict(`Invalid snapshot: Can't revert volume ${row.id} to its latest snapshot ${latest.id}. Snapshot's status must be 'available'.`);
  }
  await notifyVolume(volume, row.id, 'revert.start');
  await new AgentRpc(volume.bus).revertToSnapshot(agentVolume(row), agentSnapshot(latest));
}
