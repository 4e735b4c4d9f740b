import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { isoNow, isUuid, newUuid } from '../common.js';
import type { BlockDeviceMappingRow, InstanceRow } from '../db/schema.js';
import { badRequest, ComputeError, conflict, invalidState, notFound } from '../errors.js';
import { checkActionState, loadInstanceFor } from '../instances.js';
import { VolumeApi, type Volume } from '../volume-api.js';
import { checkLock, recordFor, toAgent } from './action-common.js';
import { booleanLike } from './request-checks.js';
import { checkObject, invalidField, notOfType, pyRepr } from './nova-input.js';

/**
 * `/servers/{id}/os-volume_attachments`: the server's volumes, read from
 * its block device mappings (so volumes it booted with show too); attach
 * (reserved in the block storage service, connected by the host), update
 * (`delete_on_termination` from 2.85; swap, for admins), detach.
 *
 * Every call about a volume goes through `VolumeApi`: without a block
 * storage service in the catalog every volume is unknown (404), as Nova
 * answers for a volume that does not exist.
 */

const DEVICE = /^(\/dev\/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$/;

function view(req: FastifyRequest, bdm: BlockDeviceMappingRow): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!atLeast(req, '2.89')) out.id = bdm.volume_id;
  out.volumeId = bdm.volume_id;
  out.serverId = bdm.instance_uuid;
  if (bdm.device_name) out.device = bdm.device_name;
  if (atLeast(req, '2.70')) out.tag = bdm.tag;
  if (atLeast(req, '2.79')) out.delete_on_termination = bdm.delete_on_termination === 1;
  if (atLeast(req, '2.89')) {
    out.attachment_id = bdm.attachment_id;
    out.bdm_uuid = bdm.id;
  }
  return out;
}

async function bdmsOf(compute: ComputeService, uuid: string): Promise<BlockDeviceMappingRow[]> {
  return compute.db.selectFrom('block_device_mapping').selectAll().where('instance_uuid', '=', uuid).where('volume_id', 'is not', null).orderBy('created_at').orderBy('id').execute();
}

async function bdmOf(compute: ComputeService, instance: InstanceRow, volumeId: string): Promise<BlockDeviceMappingRow | undefined> {
  return compute.db.selectFrom('block_device_mapping').selectAll().where('instance_uuid', '=', instance.uuid).where('volume_id', '=', volumeId).executeTakeFirst();
}

/**
 * Nova's `_check_volume_already_attached`: a volume that is not multiattach
 * may be mapped to one server only, and a volume to a server only once
 * (the block storage service would allow a second attachment).
 */
async function checkNotAttached(compute: ComputeService, instance: InstanceRow, volume: Volume): Promise<void> {
  const mapped = await compute.db.selectFrom('block_device_mapping').select('instance_uuid').where('volume_id', '=', volume.id).execute();
  if (mapped.length === 0) return;
  if (!volume.multiattach) throw badRequest(`Invalid volume: volume ${volume.id} is already attached to instances: ${mapped.map((m) => m.instance_uuid).join(' ')}`);
  if (mapped.some((m) => m.instance_uuid === instance.uuid)) throw badRequest(`Invalid volume: volume ${volume.id} already attached`);
}

function notAttached(instance: InstanceRow, volumeId: string): Error {
  return notFound(`Instance ${instance.uuid} is not attached to volume ${volumeId}`);
}

/** Before 2.20 a shelved server takes no volume change (Nova's 409 with the method's name). */
function checkShelvedVersion(req: FastifyRequest, instance: InstanceRow, method: string): void {
  if ((instance.vm_state === 'shelved' || instance.vm_state === 'shelved_offloaded') && !atLeast(req, '2.20')) throw invalidState('vm_state', instance.vm_state, method, instance.uuid);
}

/** The next free `/dev/vdX` of the server (its root is `vda`). */
async function nextDevice(compute: ComputeService, instance: InstanceRow): Promise<string> {
  const used = new Set((await compute.db.selectFrom('block_device_mapping').select('device_name').where('instance_uuid', '=', instance.uuid).execute()).map((b) => b.device_name));
  used.add(instance.root_device_name ?? '/dev/vda');
  for (let i = 1; i < 26; i++) {
    const name = `/dev/vd${String.fromCharCode(97 + i)}`;
    if (!used.has(name)) return name;
  }
  throw new ComputeError(403, 'The maximum allowed number of disk devices (26) to attach to a single instance has been exceeded.');
}

function readCreate(req: FastifyRequest): { volumeId: string; device: string | null; tag: string | null; deleteOnTermination: boolean } {
  checkObject(req.body ?? null, null, ['volumeAttachment'], ['volumeAttachment']);
  const allowed = ['volumeId', 'device', ...(atLeast(req, '2.49') ? ['tag'] : []), ...(atLeast(req, '2.79') ? ['delete_on_termination'] : [])];
  const a = checkObject((req.body as Record<string, unknown>).volumeAttachment, 'volumeAttachment', ['volumeId'], allowed);
  if (!isUuid(a.volumeId)) throw invalidField('volumeId', a.volumeId, `${pyRepr(a.volumeId, true)} is not a 'uuid'`);
  let device: string | null = null;
  if (a.device !== undefined && a.device !== null) {
    if (typeof a.device !== 'string') throw invalidField('device', a.device, notOfType(a.device, 'string'));
    if (!DEVICE.test(a.device)) throw invalidField('device', a.device, `'${a.device}' does not match '${DEVICE.source}'`);
    device = a.device;
  }
  let tag: string | null = null;
  if (a.tag !== undefined) {
    if (typeof a.tag !== 'string' || a.tag.length > 60 || /[,/]/.test(a.tag)) throw invalidField('tag', a.tag, `'${String(a.tag)}' does not match "^[^,/]*$"`);
    tag = a.tag;
  }
  const deleteOnTermination = a.delete_on_termination === undefined ? false : booleanLike(a.delete_on_termination, 'delete_on_termination');
  return { volumeId: a.volumeId, device, tag, deleteOnTermination };
}

async function attach(compute: ComputeService, req: FastifyRequest<ServerParams>, ctx: RequestContext): Promise<Record<string, unknown>> {
  const ask = readCreate(req);
  const instance = await loadInstanceFor(compute, ctx, req.params.server_id, 'os-volumes-attachments:create');
  checkShelvedVersion(req, instance, 'attach_volume');
  checkLock(compute, ctx, instance);
  checkActionState(instance, 'attach_volume');
  const volumes = new VolumeApi(compute.client);
  const volume = await volumes.get(ask.volumeId, ctx.authToken);
  await checkNotAttached(compute, instance, volume);
  const offloaded = instance.vm_state === 'shelved_offloaded';
  if (offloaded && ask.tag) throw badRequest('Tagged volume attachment is not supported for shelved-offloaded instances.');
  if (offloaded && volume.multiattach) throw badRequest('Attaching multiattach volumes is not supported for shelved-offloaded instances.');
  if (volume.multiattach && !atLeast(req, '2.60')) throw badRequest('Multiattach volumes are only supported starting with compute API version 2.60.');
  if (volume.status !== 'available' && !(volume.multiattach && volume.status === 'in-use')) throw badRequest(`Invalid volume: volume '${ask.volumeId}' status must be 'available'. Currently in '${volume.status}'`);
  const device = ask.device ?? (await nextDevice(compute, instance));
  const attachmentId = await volumes.createAttachment(ask.volumeId, instance.uuid, ctx.authToken);
  const bdm: BlockDeviceMappingRow = {
    id: newUuid(),
    instance_uuid: instance.uuid,
    source_type: 'volume',
    destination_type: 'volume',
    boot_index: null,
    device_name: device,
    device_type: 'disk',
    disk_bus: null,
    guest_format: null,
    image_id: null,
    volume_id: ask.volumeId,
    snapshot_id: null,
    volume_size: volume.size,
    volume_type: null,
    delete_on_termination: ask.deleteOnTermination ? 1 : 0,
    tag: ask.tag,
    attachment_id: attachmentId,
    connection_info: null,
    created_at: isoNow(),
  };
  await compute.db.insertInto('block_device_mapping').values(bdm).execute();
  try {
    if (offloaded || !instance.host) {
      // No host to connect it: the attachment is completed without one (the volume shows `in-use`), connected at unshelve.
      await recordFor(compute, req, ctx, instance, 'attach_volume');
      await volumes.completeAttachment(attachmentId);
    } else {
      await toAgent(compute, req, ctx, instance, 'attach_volume', { kind: 'attach_volume', bdm_id: bdm.id });
    }
  } catch (err) {
    await compute.db.deleteFrom('block_device_mapping').where('id', '=', bdm.id).execute();
    await volumes.deleteAttachment(attachmentId).catch(() => undefined);
    throw err;
  }
  const out: Record<string, unknown> = { id: ask.volumeId, serverId: instance.uuid, volumeId: ask.volumeId, device };
  if (atLeast(req, '2.70')) out.tag = ask.tag;
  if (atLeast(req, '2.79')) out.delete_on_termination = ask.deleteOnTermination;
  return { volumeAttachment: out };
}

async function update(compute: ComputeService, req: FastifyRequest<VolumeParams>, ctx: RequestContext): Promise<void> {
  const v285 = atLeast(req, '2.85');
  checkObject(req.body ?? null, null, ['volumeAttachment'], ['volumeAttachment']);
  const a = checkObject((req.body as Record<string, unknown>).volumeAttachment, 'volumeAttachment', ['volumeId'], ['volumeId', ...(v285 ? ['id', 'serverId', 'device', 'tag', 'delete_on_termination'] : [])]);
  if (!isUuid(a.volumeId)) throw invalidField('volumeId', a.volumeId, `${pyRepr(a.volumeId, true)} is not a 'uuid'`);
  const instance = await loadInstanceFor(compute, ctx, req.params.server_id, 'servers:show');
  const oldId = req.params.volume_id;
  const swap = !v285 || a.volumeId !== oldId;
  if (swap) authorize(compute, ctx, 'os-volumes-attachments:swap', {});
  else authorize(compute, ctx, 'os-volumes-attachments:update', { project_id: instance.project_id });
  if (v285) {
    const bdm = await bdmOf(compute, instance, oldId);
    if (!bdm) throw notFound(`No volume Block Device Mapping with id ${oldId}.`);
    if (a.id !== undefined && a.id !== oldId) throw badRequest('The id property is not mutable');
    if (a.serverId !== undefined && a.serverId !== instance.uuid) throw badRequest('The serverId property is not mutable');
    if (a.device !== undefined && a.device !== bdm.device_name) throw badRequest('The device property is not mutable');
    if (a.tag !== undefined && a.tag !== bdm.tag) throw badRequest('The tag property is not mutable');
    if (a.delete_on_termination !== undefined) {
      const flag = booleanLike(a.delete_on_termination, 'delete_on_termination');
      await compute.db.updateTable('block_device_mapping').set({ delete_on_termination: flag ? 1 : 0 }).where('id', '=', bdm.id).execute();
    }
    if (!swap) return;
  }
  await swapVolume(compute, req, ctx, instance, oldId, a.volumeId);
}

/** Swap (called by the block storage service while it migrates a volume): only for a volume that is migrating. */
async function swapVolume(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, oldId: string, newId: string): Promise<void> {
  const volumes = new VolumeApi(compute.client);
  const old = await volumes.get(oldId, ctx.authToken);
  // The body is checked before the state: an unknown new volume is 400 (as
  // Tempest expects) even when the swap would be refused as not migrating.
  const next = await volumes.get(newId, ctx.authToken).catch((err: unknown) => {
    throw err instanceof Error ? badRequest(err.message) : err;
  });
  if (!old.migration_status) throw conflict(`volume ${oldId} is not migrating; this API should only be called by Cinder`);
  const bdm = await bdmOf(compute, instance, oldId);
  if (!bdm) throw notFound(`No volume Block Device Mapping with id ${oldId}.`);
  checkLock(compute, ctx, instance);
  if (!['active', 'paused', 'resized'].includes(instance.vm_state) || instance.task_state !== null) {
    throw invalidState(instance.task_state !== null && ['active', 'paused', 'resized'].includes(instance.vm_state) ? 'task_state' : 'vm_state', instance.task_state !== null && ['active', 'paused', 'resized'].includes(instance.vm_state) ? instance.task_state : instance.vm_state, 'swap_volume', instance.uuid);
  }
  if (next.status !== 'available') throw badRequest(`Invalid volume: The new volume must be available`);
  const attachmentId = await volumes.createAttachment(newId, instance.uuid, ctx.authToken);
  await toAgent(compute, req, ctx, instance, 'swap_volume', { kind: 'swap_volume', bdm_id: bdm.id, new_volume_id: newId, new_attachment_id: attachmentId });
}

async function detach(compute: ComputeService, req: FastifyRequest<VolumeParams>, ctx: RequestContext): Promise<void> {
  const instance = await loadInstanceFor(compute, ctx, req.params.server_id, 'os-volumes-attachments:delete');
  const volumeId = req.params.volume_id;
  checkShelvedVersion(req, instance, 'detach_volume');
  const volumes = new VolumeApi(compute.client);
  const volume = await volumes.get(volumeId, ctx.authToken);
  const bdm = await bdmOf(compute, instance, volumeId);
  if (!bdm) throw notAttached(instance, volumeId);
  if (bdm.boot_index === 0) throw badRequest('Cannot detach a root device volume');
  checkLock(compute, ctx, instance);
  checkActionState(instance, 'detach_volume');
  if (instance.host && instance.vm_state !== 'shelved_offloaded') {
    // Cinder's `os-begin_detaching` check: a volume still being attached cannot be detached yet.
    if (volume.status !== 'in-use') throw badRequest(`Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.`);
    await toAgent(compute, req, ctx, instance, 'detach_volume', { kind: 'detach_volume', bdm_id: bdm.id });
    return;
  }
  // Not on a host: nothing to unplug, the attachment and the record go here (Nova's local detach).
  await recordFor(compute, req, ctx, instance, 'detach_volume');
  if (bdm.attachment_id) await volumes.deleteAttachment(bdm.attachment_id);
  await compute.db.deleteFrom('block_device_mapping').where('id', '=', bdm.id).execute();
}

type ServerParams = { Params: { server_id: string } };
type VolumeParams = { Params: { server_id: string; volume_id: string } };

/** Registers `/servers/{id}/os-volume_attachments`. */
export function registerVolumeAttachments(app: FastifyInstance, compute: ComputeService): void {
  app.get<ServerParams>('/v2.1/servers/:server_id/os-volume_attachments', async (req) => {
    const ctx = contextOf(req);
    const instance = await loadInstanceFor(compute, ctx, req.params.server_id, 'os-volumes-attachments:index');
    const q = req.query as Record<string, string | undefined>;
    let rows = await bdmsOf(compute, instance.uuid);
    if (atLeast(req, '2.89')) rows = rows.filter((b) => b.attachment_id !== null);
    const offset = q.offset !== undefined && /^[0-9]+$/.test(q.offset) ? Number(q.offset) : 0;
    const limit = q.limit !== undefined && /^[0-9]+$/.test(q.limit) ? Math.min(Number(q.limit), compute.config.compute.max_limit) : compute.config.compute.max_limit;
    return { volumeAttachments: rows.slice(offset, offset + limit).map((b) => view(req, b)) };
  });

  app.get<VolumeParams>('/v2.1/servers/:server_id/os-volume_attachments/:volume_id', async (req) => {
    const ctx = contextOf(req);
    const instance = await loadInstanceFor(compute, ctx, req.params.server_id, 'os-volumes-attachments:show');
    const bdm = await bdmOf(compute, instance, req.params.volume_id);
    if (!bdm || (atLeast(req, '2.89') && bdm.attachment_id === null)) throw notAttached(instance, req.params.volume_id);
    return { volumeAttachment: view(req, bdm) };
  });

  app.post<ServerParams>('/v2.1/servers/:server_id/os-volume_attachments', async (req, reply) => {
    const body = await attach(compute, req, contextOf(req));
    return reply.code(200).send(body);
  });

  app.put<VolumeParams>('/v2.1/servers/:server_id/os-volume_attachments/:volume_id', async (req, reply) => {
    await update(compute, req, contextOf(req));
    return reply.code(202).send();
  });

  app.delete<VolumeParams>('/v2.1/servers/:server_id/os-volume_attachments/:volume_id', async (req, reply) => {
    await detach(compute, req, contextOf(req));
    return reply.code(202).send();
  });
}
