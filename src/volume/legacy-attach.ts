import type { RequestContext } from '../core/auth/context.js';
import type { VolumeRow } from './db/schema.js';
import { badRequest, invalidVolume, VolumeError } from './errors.js';
import { attachmentNotFound, checkDeletionAllowed, finishDetach, newAttachment, recordAttachedMode, terminateAttachment, volumeAttachments } from './attachments.js';
import { AgentRpc, type ConnectionInfo, type Connector } from './rpc.js';
import { legacyReservable } from './volume-states.js';
import { adminMetadata, agentVolume, NOT_MIGRATING, notifyVolume, orList, updateVolume, updateVolumeIf, volumeTarget } from './volumes.js';
import { authorize, now, type VolumeService } from './volume.js';

/**
 * The attach calls of Block Storage before attachments (3.27), which older
 * compute services and scripts use: `os-reserve`, `os-initialize_connection`,
 * `os-attach`, `os-begin_detaching`, `os-terminate_connection`,
 * `os-detach`, ... The bookkeeping Cinder's volume service does for them
 * is done here (the API role has the database); the agent only exports.
 * Connections made this way are named after the volume.
 */

/** `os-reserve`: `available` (or `in-use` when multiattach) to `attaching`. */
export async function reserveVolume(volume: VolumeService, ctx: RequestContext, row: VolumeRow): Promise<void> {
  authorize(volume, ctx, 'volume_extension:volume_actions:reserve', volumeTarget(row));
  const expected = legacyReservable(row.multiattach === 1);
  if (!(await updateVolumeIf(volume.db, row.id, { status: 'attaching' }, { status: expected }))) {
    throw invalidVolume(`Volume status must be ${orList(expected)} to reserve, but the status is ${row.status}.`);
  }
}

/** `os-unreserve`: `attaching` back to `in-use` (it has attachments) or `available`; nothing when not reserved. */
export async function unreserveVolume(volume: VolumeService, ctx: RequestContext, row: VolumeRow): Promise<void> {
  authorize(volume, ctx, 'volume_extension:volume_actions:unreserve', volumeTarget(row));
  const attached = (await volumeAttachments(volume, row.id)).length > 0;
  await updateVolumeIf(volume.db, row.id, { status: attached ? 'in-use' : 'available' }, { status: ['attaching'] });
}

/** `os-begin_detaching`: an attached `in-use` volume to `detaching`. */
export async function beginDetaching(volume: VolumeService, ctx: RequestContext, row: VolumeRow): Promise<void> {
  authorize(volume, ctx, 'volume_extension:volume_actions:begin_detaching', volumeTarget(row));
  const changed = await updateVolumeIf(volume.db, row.id, { status: 'detaching' }, { status: ['in-use'], attach_status: ['attached'], migration_status: NOT_MIGRATING });
  if (!changed && NOT_MIGRATING.includes(row.migration_status)) {
    throw invalidVolume("Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.");
  }
}

/** `os-roll_detaching`: `detaching` back to `in-use`. */
export async function rollDetaching(volume: VolumeService, ctx: RequestContext, row: VolumeRow): Promise<void> {
  authorize(volume, ctx, 'volume_extension:volume_actions:roll_detaching', volumeTarget(row));
  await updateVolumeIf(volume.db, row.id, { status: 'in-use' }, { status: ['detaching'] });
}

/** A failure of the legacy attach and detach, as Cinder words its volume service's errors. */
function attachError(verb: 'attaching' | 'detaching' | 'force detaching', type: string, message: string): VolumeError {
  return badRequest(`Error ${verb} volume - ${type}: ${message}`);
}

/**
 * `os-attach`: records the volume attached to a server (or host) at
 * `mountpoint` and marks it `in-use` (Cinder's volume manager
 * `attach_volume`). Attaching it again to the same server is a no-op.
 */
export async function attachVolume(volume: VolumeService, ctx: RequestContext, row: VolumeRow, target: { instanceUuid: string | null; hostName: string | null; mountpoint: string; mode: string }): Promise<void> {
  authorize(volume, ctx, 'volume_extension:volume_actions:attach', volumeTarget(row));
  if (row.status === 'maintenance') throw invalidVolume('The volume cannot be attached in maintenance mode.');
  const meta = await adminMetadata(volume.db, row.id);
  if (meta.readonly === 'True' && target.mode !== 'ro') {
    throw attachError('attaching', 'InvalidVolumeAttachMode', `Invalid attaching mode '${target.mode}' for volume ${row.id}.`);
  }
  if (row.status === 'attaching' && meta.attached_mode && meta.attached_mode !== target.mode) {
    throw attachError('attaching', 'InvalidVolume', 'Invalid volume: being attached by different mode');
  }
  const existing = await volumeAttachments(volume, row.id);
  const same = existing.find((a) => (target.instanceUuid !== null ? a.instance_uuid === target.instanceUuid : a.attached_host === target.hostName));
  if (same) {
    await updateVolume(volume.db, row.id, { status: 'in-use' });
    return;
  }
  if (row.status === 'in-use' && row.multiattach !== 1 && !row.migration_status) {
    throw attachError('attaching', 'InvalidVolume', 'Invalid volume: volume is already attached and multiple attachments are not enabled');
  }
  await notifyVolume(volume, row.id, 'attach.start', row);
  const attachment = newAttachment(row, {
    instance_uuid: target.instanceUuid,
    attached_host: target.hostName,
    mountpoint: target.mountpoint,
    attach_status: 'attached',
    attach_mode: target.mode,
    attach_time: now(),
  });
  await volume.db.insertInto('attachment').values(attachment).execute();
  await recordAttachedMode(volume, row.id, target.mode);
  await updateVolume(volume.db, row.id, { status: 'in-use', attach_status: 'attached' });
  await notifyVolume(volume, row.id, 'attach.end');
}

/**
 * `os-detach` (and the second half of `os-force_detach`): removes the
 * attachment (the only one when none is named) and sets the volume's status
 * from what is left. A user may not detach what compute still uses.
 */
export async function detachVolume(volume: VolumeService, ctx: RequestContext, row: VolumeRow, attachmentId: string | null, verb: 'detaching' | 'force detaching' = 'detaching'): Promise<void> {
  authorize(volume, ctx, 'volume_extension:volume_actions:detach', volumeTarget(row));
  const attachments = await volumeAttachments(volume, row.id);
  const named = attachmentId === null ? null : (attachments.find((a) => a.id === attachmentId) ?? null);
  // As Cinder: with no attachment named, the only one is checked, none is fine, several cannot be told apart.
  if (attachmentId !== null || attachments.length > 0) await checkDeletionAllowed(volume, ctx, attachmentId !== null ? named : attachments.length === 1 ? (attachments[0] ?? null) : null);
  if (row.status === 'maintenance') throw invalidVolume('The volume cannot be detached in maintenance mode.');
  let attachment = named;
  if (attachmentId !== null && !named) {
    await finishDetach(volume, row.id, attachmentId);
    return;
  }
  if (attachmentId === null) {
    if (attachments.length > 1) throw attachError(verb, 'InvalidVolume', 'Invalid volume: Detach volume failed: More than one attachment, but no attachment_id provided.');
    if (attachments.length === 0) {
      await updateVolume(volume.db, row.id, { status: 'available', attach_status: 'detached' });
      return;
    }
    attachment = attachments[0] ?? null;
  }
  if (!attachment) throw attachmentNotFound(attachmentId ?? '');
  await notifyVolume(volume, row.id, 'detach.start');
  await terminateAttachment(volume, row, attachment);
  await finishDetach(volume, row.id, attachment.id);
  await notifyVolume(volume, row.id, 'detach.end');
}

/**
 * `os-initialize_connection`: the agent exports the volume to the host of
 * `connector` and answers how to attach it (`access_mode` from the
 * volume's read-only flag).
 */
export async function initializeConnection(volume: VolumeService, ctx: RequestContext, row: VolumeRow, connector: Connector): Promise<ConnectionInfo & { enforce_multipath: boolean }> {
  authorize(volume, ctx, 'volume_extension:volume_actions:initialize_connection', volumeTarget(row));
  if (row.status === 'maintenance') throw invalidVolume('The volume connection cannot be initialized in maintenance mode.');
  if (!row.host) throw invalidVolume(`Volume ${row.id} has not been scheduled to any host.`);
  const readonly = (await adminMetadata(volume.db, row.id)).readonly === 'True';
  let info: ConnectionInfo;
  try {
    info = await new AgentRpc(volume.bus).initializeConnection(agentVolume(row), connector, row.id);
  } catch (err) {
    volume.log.error({ err, volume_id: row.id }, 'the agent could not connect the volume');
    throw new VolumeError(500, 'Unable to fetch connection information from backend.');
  }
  return { driver_volume_type: info.driver_volume_type, data: { ...info.data, access_mode: readonly ? 'ro' : 'rw' }, enforce_multipath: connector.enforce_multipath === true };
}

/**
 * `os-terminate_connection`: ends the export made by
 * `os-initialize_connection` and unreserves the volume. A user may not
 * cut what compute still uses.
 */
export async function terminateConnection(volume: VolumeService, ctx: RequestContext, row: VolumeRow, connector: Connector | null): Promise<void> {
  authorize(volume, ctx, 'volume_extension:volume_actions:terminate_connection', volumeTarget(row));
  const attachments = await volumeAttachments(volume, row.id);
  if (attachments.length > 0) await checkDeletionAllowed(volume, ctx, attachments.length === 1 ? (attachments[0] ?? null) : null);
  if (row.host) {
    try {
      await new AgentRpc(volume.bus).terminateConnection(agentVolume(row), connector, row.id);
    } catch (err) {
      volume.log.error({ err, volume_id: row.id }, 'the agent could not end the connection');
      throw new VolumeError(500, 'Unable to terminate volume connection from backend.');
    }
  }
  await updateVolumeIf(volume.db, row.id, { status: attachments.length > 0 ? 'in-use' : 'available' }, { status: ['attaching'] });
}
