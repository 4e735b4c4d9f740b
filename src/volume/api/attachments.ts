import type { FastifyInstance, FastifyRequest } from 'fastify';
import { attachmentNotFound, checkDeletionAllowed, completeAttachment, connectAttachment, finishDetach, getAttachment, reserveAttachment, terminateAttachment, volumeAttachments } from '../attachments.js';
import type { AttachmentRow } from '../db/schema.js';
import { conflict, invalidVolume, volumeNotFound } from '../errors.js';
import { pageOf } from '../listing.js';
import type { Connector } from '../rpc.js';
import { attachmentDetail, attachmentSummary } from '../views.js';
import { adminMetadata, notifyVolume, volumeRow } from '../volumes.js';
import { atLeast, authorize, contextOf, isAdmin, type VolumeService } from '../volume.js';
import { bodyMember, checkFilters, checkMembers, enumField, invalidField, invalidInput, isObject, notOfType, pagination, queryOf, requireVersion, sortParams, uuidField } from './volume-input.js';

/**
 * `/attachments` (3.27; `os-complete` 3.44): how compute attaches volumes.
 * Create reserves the volume (and connects it when a connector is given),
 * update connects it to a host (the agent exports it and answers the
 * connection info), complete marks it `in-use`, delete ends the export and
 * the volume goes back to `available` when nothing else holds it.
 */

type IdParams = { Params: { attachment_id: string } };

const ATTACHMENT_COLUMNS = ['id', 'volume_id', 'project_id', 'instance_uuid', 'attached_host', 'mountpoint', 'attach_status', 'attach_mode', 'attach_time', 'detach_time', 'created_at', 'updated_at'];

/** The target of a policy check on an attachment (its volume's project). */
function attachmentTarget(row: AttachmentRow): Record<string, unknown> {
  return { project_id: row.project_id };
}

/** The attachments of a list request: the project's (or all, for an administrator's `all_tenants`), filtered, sorted and paged. */
async function listAttachments(volume: VolumeService, req: FastifyRequest): Promise<AttachmentRow[]> {
  const ctx = contextOf(req);
  const admin = isAdmin(volume, ctx);
  const query = queryOf(req);
  const sort = sortParams(query);
  const page = pagination(query, volume.config.volume.max_limit);
  checkFilters(req, query, 'attachment', admin, ['volume_id', 'status', 'instance_id', 'attach_status']);
  const all = admin && query.has('all_tenants');
  query.delete('all_tenants');
  let sql = volume.db.selectFrom('attachment').selectAll();
  if (!all) sql = sql.where('project_id', '=', ctx.projectId ?? '');
  let rows = await sql.execute();
  for (const [key, value] of query) {
    const column = key === 'instance_id' ? 'instance_uuid' : key === 'status' ? 'attach_status' : key;
    if (!ATTACHMENT_COLUMNS.includes(column)) return [];
    rows = rows.filter((r) => String((r as unknown as Record<string, unknown>)[column]) === value);
  }
  for (const key of sort.keys) if (!ATTACHMENT_COLUMNS.includes(key)) throw invalidInput('Invalid sort key');
  let marker: AttachmentRow | null = null;
  if (page.marker !== null) {
    marker = (await volume.db.selectFrom('attachment').selectAll().where('id', '=', page.marker).executeTakeFirst()) ?? null;
    if (!marker || (!all && marker.project_id !== ctx.projectId)) throw attachmentNotFound(page.marker);
  }
  return pageOf(rows, { keys: sort.keys, dirs: sort.dirs, marker, offset: page.offset, limit: page.limit });
}

/** A connector member: an object (or null where allowed). */
function connectorOf(value: unknown, name: string, nullable: boolean): Connector | null {
  if (value === null && nullable) return null;
  if (!isObject(value)) throw invalidField(name, value, notOfType(value, nullable ? ['object', 'null'] : 'object'));
  return value as Connector;
}

/** Registers `/attachments`. */
export function registerAttachments(app: FastifyInstance, volume: VolumeService): void {
  app.get('/v3/attachments', async (req) => {
    requireVersion(req, '3.27');
    return { attachments: (await listAttachments(volume, req)).map(attachmentSummary) };
  });

  app.get('/v3/attachments/detail', async (req) => {
    requireVersion(req, '3.27');
    return { attachments: (await listAttachments(volume, req)).map(attachmentDetail) };
  });

  app.get<IdParams>('/v3/attachments/:attachment_id', async (req) => {
    requireVersion(req, '3.27');
    return { attachment: attachmentDetail(await getAttachment(volume, contextOf(req), req.params.attachment_id)) };
  });

  app.post('/v3/attachments', async (req) => {
    requireVersion(req, '3.27');
    const body = bodyMember(req, 'attachment');
    checkMembers(body, 'attachment', ['instance_uuid', 'connector', 'volume_uuid', ...(atLeast(req, '3.54') ? ['mode'] : [])], ['volume_uuid']);
    const volumeId = uuidField('volume_uuid', body.volume_uuid) ?? '';
    const instanceUuid = body.instance_uuid === undefined ? null : uuidField('instance_uuid', body.instance_uuid);
    const connector = body.connector === undefined ? null : connectorOf(body.connector, 'connector', true);
    const mode = body.mode === undefined ? null : enumField('mode', body.mode, ['rw', 'ro'] as const);
    const ctx = contextOf(req);
    const row = await volumeRow(volume.db, volumeId);
    if (!row || (row.project_id !== ctx.projectId && !isAdmin(volume, ctx))) throw volumeNotFound(volumeId);
    authorize(volume, ctx, 'volume:attachment_create', { project_id: row.project_id, user_id: row.user_id });
    if (row.status.includes('error')) {
      throw invalidVolume(`Volume attachments can not be created if the volume is in an error state. The Volume ${row.id} currently has a status of: ${row.status} `);
    }
    let attachment = await reserveAttachment(volume, ctx, row, instanceUuid);
    const readonly = (await adminMetadata(volume.db, row.id)).readonly === 'True';
    const attachMode = readonly ? 'ro' : (mode ?? 'null');
    if (attachMode !== attachment.attach_mode) {
      await volume.db.updateTable('attachment').set({ attach_mode: attachMode }).where('id', '=', attachment.id).execute();
      attachment = { ...attachment, attach_mode: attachMode };
    }
    if (connector) {
      const current = (await volumeRow(volume.db, row.id)) ?? row;
      await connectAttachment(volume, attachment, current, connector);
    }
    return { attachment: attachmentDetail(await getAttachment(volume, ctx, attachment.id)) };
  });

  app.put<IdParams>('/v3/attachments/:attachment_id', async (req) => {
    requireVersion(req, '3.27');
    const body = bodyMember(req, 'attachment');
    checkMembers(body, 'attachment', ['connector'], ['connector']);
    const connector = connectorOf(body.connector, 'connector', false) ?? {};
    if (Object.keys(connector).length === 0) throw invalidField('connector', connector, '{} does not have enough properties');
    const ctx = contextOf(req);
    const attachment = await getAttachment(volume, ctx, req.params.attachment_id);
    authorize(volume, ctx, 'volume:attachment_update', attachmentTarget(attachment));
    const row = await volumeRow(volume.db, attachment.volume_id);
    if (!row) throw volumeNotFound(attachment.volume_id);
    if (row.status.includes('error')) {
      throw conflict(`Resource conflict: Volume attachments can not be updated if the volume is in an error state. The Volume ${row.id} currently has a status of: ${row.status} `);
    }
    const all = await volumeAttachments(volume, row.id);
    if (all.length > 1 && row.multiattach !== 1 && all.some((a) => a.connection_info !== null)) {
      throw conflict(`Resource conflict: duplicate connectors detected on volume ${row.id}`);
    }
    await connectAttachment(volume, attachment, row, connector as Connector);
    return { attachment: attachmentDetail(await getAttachment(volume, ctx, attachment.id)) };
  });

  app.post<IdParams>('/v3/attachments/:attachment_id/action', async (req, reply) => {
    requireVersion(req, '3.44');
    bodyMember(req, 'os-complete', { anyValue: true });
    const ctx = contextOf(req);
    const attachment = await getAttachment(volume, ctx, req.params.attachment_id);
    const row = await volumeRow(volume.db, attachment.volume_id);
    if (!row) throw volumeNotFound(attachment.volume_id);
    authorize(volume, ctx, 'volume:attachment_complete', attachmentTarget(attachment));
    await completeAttachment(volume, attachment);
    await notifyVolume(volume, row.id, 'attach.end');
    return reply.code(204).send();
  });

  app.delete<IdParams>('/v3/attachments/:attachment_id', async (req) => {
    requireVersion(req, '3.27');
    const ctx = contextOf(req);
    const attachment = await getAttachment(volume, ctx, req.params.attachment_id);
    authorize(volume, ctx, 'volume:attachment_delete', attachmentTarget(attachment));
    await checkDeletionAllowed(volume, ctx, attachment);
    const row = await volumeRow(volume.db, attachment.volume_id);
    if (row) {
      await notifyVolume(volume, row.id, 'detach.start');
      if (attachment.attach_status !== 'reserved') await terminateAttachment(volume, row, attachment);
    }
    const left = await finishDetach(volume, attachment.volume_id, attachment.id);
    if (row) await notifyVolume(volume, row.id, 'detach.end');
    return { attachments: left.map(attachmentSummary) };
  });
}
