import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../core/auth/context.js';
import { EndpointNotFound } from '../core/auth/service-client.js';
import type { AttachmentRow, VolumeRow } from './db/schema.js';
import { conflict, invalidVolume, notFound, VolumeError } from './errors.js';
import { AgentRpc, type ConnectionInfo, type Connector } from './rpc.js';
import { reservable, statusFromAttachments } from './volume-states.js';
import { adminMetadata, agentVolume, deleteVolumeMetadataItem, orList, setVolumeMetadata, updateVolume, updateVolumeIf, volumeRow, volumeTarget } from './volumes.js';
import { authorize, isAdmin, now, type VolumeService } from './volume.js';

/**
 * Attachments of volumes to servers and hosts (Block Storage 3.27+, and
 * the records the legacy `os-attach` makes): reserving a volume, connecting
 * it to a host through its agent, completing, and removing an attachment
 * with the volume's status following what is left.
 */

/** Cinder's `VolumeAttachmentNotFound`. */
export function attachmentNotFound(id: string): VolumeError {
  return notFound(`Volume attachment could not be found with filter: attachment_id = ${id}.`);
}

/** An attachment the caller may see (another project's is 404 for a non-administrator). */
export async function getAttachment(volume: VolumeService, ctx: RequestContext, id: string): Promise<AttachmentRow> {
  const row = await volume.db.selectFrom('attachment').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (row.project_id !== ctx.projectId && !isAdmin(volume, ctx))) throw attachmentNotFound(id);
  return row;
}

/** The attachments of a volume, oldest first. */
export function volumeAttachments(volume: VolumeService, volumeId: string): Promise<AttachmentRow[]> {
  return volume.db.selectFrom('attachment').selectAll().where('volume_id', '=', volumeId).orderBy('created_at').orderBy('id').execute();
}

/** A new attachment row of `row` (not stored). */
export function newAttachment(row: VolumeRow, values: Partial<AttachmentRow>): AttachmentRow {
  return {
    id: randomUUID(),
    volume_id: row.id,
    project_id: row.project_id,
    instance_uuid: null,
    attached_host: null,
    mountpoint: null,
    attach_status: 'reserved',
    attach_mode: 'null',
    connector: null,
    connection_info: null,
    attach_time: null,
    detach_time: null,
    created_at: now(),
    updated_at: null,
    ...values,
  };
}

/**
 * Cinder's `_attachment_reserve`: the volume goes to `reserved` from a
 * status that allows a new attachment (an `in-use` multiattach volume too;
 * the same server attaching again is allowed, as a move does), and a
 * `reserved` attachment is recorded. 400 otherwise.
 */
export async function reserveAttachment(volume: VolumeService, ctx: RequestContext, row: VolumeRow, instanceUuid: string | null): Promise<AttachmentRow> {
  const multiattach = row.multiattach === 1;
  if (multiattach && row.status === 'in-use' && row.bootable) authorize(volume, ctx, 'volume:multiattach_bootable_volume', volumeTarget(row));
  const expected = reservable(multiattach);
  // A volume being copied to another backend takes no new attachment: writes through it would miss the copy.
  const reserved = await updateVolumeIf(volume.db, row.id, { status: 'reserved' }, { status: expected, migration_status: [null, 'success', 'error'] });
  if (!reserved) {
    const current = (await volumeRow(volume.db, row.id)) ?? row;
    if (current.migration_status !== null && !['success', 'error'].includes(current.migration_status)) throw invalidVolume(`Volume ${row.id} is migrating (migration status ${current.migration_status}).`);
    const sameServer = instanceUuid !== null && ['in-use', 'reserved'].includes(current.status) && (await volumeAttachments(volume, row.id)).some((a) => a.instance_uuid === instanceUuid);
    if (!sameServer) throw invalidVolume(`Volume ${row.id} status must be ${orList(expected)} to reserve, but the current status is ${current.status}.`);
  }
  const attachment = newAttachment(row, { instance_uuid: instanceUuid, attach_status: 'reserved' });
  await volume.db.insertInto('attachment').values(attachment).execute();
  return attachment;
}

/** A connector's `mode`, unless the attachment was created with one (3.54) or the volume is read-only. */
function attachMode(attachment: AttachmentRow, connector: Connector, readonly: boolean): string {
  if (readonly) return 'ro';
  if (attachment.attach_mode !== 'null') return attachment.attach_mode;
  return typeof connector.mode === 'string' && connector.mode !== '' ? connector.mode : 'rw';
}

/**
 * Connects an attachment to the host of `connector` (Cinder's
 * `attachment_update` on the volume service): the agent exports the volume
 * and answers how to attach it; the attachment and the volume go to
 * `attaching`. Returns the connection info as Cinder hands it out (the
 * driver's `data` flattened, with `driver_volume_type`, `attachment_id`
 * and `enforce_multipath`). A driver failure leaves the attachment
 * `error_attaching` and is a 500.
 */
export async function connectAttachment(volume: VolumeService, attachment: AttachmentRow, row: VolumeRow, connector: Connector): Promise<Record<string, unknown>> {
  const readonly = (await adminMetadata(volume.db, row.id)).readonly === 'True';
  const mode = attachMode(attachment, connector, readonly);
  let info: ConnectionInfo;
  try {
    info = await new AgentRpc(volume.bus).initializeConnection(agentVolume(row), { ...connector, mode }, attachment.id);
  } catch (err) {
    volume.log.error({ err, volume_id: row.id, attachment_id: attachment.id }, 'the agent could not connect the volume');
    await volume.db.updateTable('attachment').set({ attach_status: 'error_attaching', updated_at: now() }).where('id', '=', attachment.id).execute();
    throw new VolumeError(500, `Unable to update attachment (Bad or unexpected response from the storage volume backend API: Driver initialize connection failed (error: ${err instanceof Error ? err.message : String(err)}).).`);
  }
  const connectionInfo: Record<string, unknown> = { qos_specs: null, encrypted: false, ...info.data, access_mode: mode, driver_volume_type: info.driver_volume_type, attachment_id: attachment.id, enforce_multipath: connector.enforce_multipath === true };
  await volume.db
    .updateTable('attachment')
    .set({
      attach_status: 'attaching',
      connector: JSON.stringify(connector),
      connection_info: JSON.stringify(connectionInfo),
      attached_host: typeof connector.host === 'string' ? connector.host : '',
      mountpoint: typeof connector.mountpoint === 'string' ? connector.mountpoint : 'na',
      attach_mode: mode,
      attach_time: now(),
      updated_at: now(),
    })
    .where('id', '=', attachment.id)
    .execute();
  await updateVolume(volume.db, row.id, { status: 'attaching', attach_status: 'attaching' });
  return connectionInfo;
}

/** `os-complete` (3.44): the attachment is `attached`, the volume `in-use`. */
export async function completeAttachment(volume: VolumeService, attachment: AttachmentRow): Promise<void> {
  await volume.db.updateTable('attachment').set({ attach_status: 'attached', updated_at: now() }).where('id', '=', attachment.id).execute();
  await updateVolume(volume.db, attachment.volume_id, { status: 'in-use', attach_status: 'attached' });
}

/**
 * Removes an attachment and sets the volume's status from the ones left
 * (Cinder's `finish_detach`; an uploading or migrating volume keeps its
 * status). Returns the attachments left.
 */
export async function finishDetach(volume: VolumeService, volumeId: string, attachmentId: string): Promise<AttachmentRow[]> {
  await volume.db.deleteFrom('attachment').where('id', '=', attachmentId).execute();
  await deleteVolumeMetadataItem(volume.db, volumeId, 'attached_mode', 'volume_admin_metadata');
  const left = await volumeAttachments(volume, volumeId);
  const row = await volumeRow(volume.db, volumeId);
  if (!row) return left;
  const { status, attach_status } = statusFromAttachments(left.map((a) => a.attach_status));
  const keepStatus = attach_status === 'detached' && ((row.migration_status !== null && !['success', 'error'].includes(row.migration_status)) || row.status === 'uploading');
  await updateVolume(volume.db, volumeId, keepStatus ? { attach_status } : { status, attach_status });
  return left;
}

/** Ends an attachment's export at the volume's agent when it was connected to a host. */
export async function terminateAttachment(volume: VolumeService, row: VolumeRow, attachment: AttachmentRow): Promise<void> {
  if (!attachment.connector || !row.host) return;
  let connector: Connector | null = null;
  try {
    connector = JSON.parse(attachment.connector) as Connector;
  } catch {
    connector = null;
  }
  await new AgentRpc(volume.bus).terminateConnection(agentVolume(row), connector, attachment.id);
}

/** True when the request comes from a service (a service token, or a service user). */
export function isServiceRequest(ctx: RequestContext): boolean {
  return ctx.serviceRoles.includes('service') || ctx.roles.includes('service');
}

/**
 * Cinder's `attachment_deletion_allowed` (bug #2004555): a user may not
 * remove an attachment compute still uses for a server (409 `Detach
 * volume from instance <id> using the Compute API`); services may.
 * Compute is asked, with the user's token, whether the server still has
 * this attachment; no compute service, or no such server, allows it.
 */
export async function checkDeletionAllowed(volume: VolumeService, ctx: RequestContext, attachment: AttachmentRow | null): Promise<void> {
  if (isServiceRequest(ctx)) return;
  if (!attachment) throw conflict('Detach volume from instance  using the Compute API');
  const serverId = attachment.instance_uuid;
  if (!serverId || !attachment.connection_info) return;
  let res: { status: number; body: unknown };
  try {
    res = await volume.client.request('compute', 'GET', `/servers/${serverId}/os-volume_attachments/${attachment.volume_id}`, {
      userToken: ctx.authToken,
      requestId: ctx.requestId,
      headers: { 'OpenStack-API-Version': 'compute 2.89', 'X-OpenStack-Nova-API-Version': '2.89' },
    });
  } catch (err) {
    if (err instanceof EndpointNotFound) return;
    throw new VolumeError(503, 'Service is unavailable at this time.');
  }
  if (res.status === 404) return;
  if (res.status >= 500) throw new VolumeError(503, 'Service is unavailable at this time.');
  const used = (res.body as { volumeAttachment?: { attachment_id?: string } } | null)?.volumeAttachment?.attachment_id;
  if (res.status < 300 && used !== undefined && used !== attachment.id) return;
  throw conflict(`Detach volume from instance ${serverId} using the Compute API`);
}

/** The admin metadata `readonly` and `attached_mode` of an attachment being made (legacy `os-attach`). */
export async function recordAttachedMode(volume: VolumeService, volumeId: string, mode: string): Promise<void> {
  const meta = await adminMetadata(volume.db, volumeId);
  await setVolumeMetadata(volume.db, volumeId, { ...(meta.readonly === undefined ? { readonly: 'False' } : {}), attached_mode: mode }, false, 'volume_admin_metadata');
}
