import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { VolumeRow } from '../db/schema.js';
import { badRequest, invalidVolume, notFound } from '../errors.js';
import { createVolume, type NewVolume } from '../volume-create.js';
import { deleteVolume } from '../volume-delete.js';
import { volumeSummary as summaryOf } from '../volume-queries.js';
import { volumeDetail, viewContext } from '../views.js';
import { deleteVolumeMetadataItem, getVolume, notifyVolume, oneVolumeFacts, setVolumeMetadata, updateVolume, volumeMetadata, volumeRow, volumeTarget } from '../volumes.js';
import { atLeast, authorize, contextOf, isAdmin, type VolumeService } from '../volume.js';
import { listVolumes } from './volume-list.js';
import { bodyMember, bodyValue, booleanField, checkMembers, invalidField, isObject, lenientBool, metadataField, notOfType, pyRepr, isUuidLike, queryOf, requireVersion, sizeField, stringField, textField } from './volume-input.js';

/**
 * `/volumes`: create (202, `creating`), list, detail, summary (3.12),
 * show, update, delete (`cascade`, `force` 3.23), and
 * `/volumes/{id}/metadata`.
 */

type IdParams = { Params: { volume_id: string } };
type KeyParams = { Params: { volume_id: string; key: string } };

const CREATE_MEMBERS = ['name', 'description', 'display_name', 'display_description', 'volume_type', 'metadata', 'snapshot_id', 'source_volid', 'consistencygroup_id', 'size', 'availability_zone', 'multiattach', 'image_id', 'imageRef'];

/** An optional uuid member (`optional_uuid`: null or a uuid). */
function optionalUuid(body: Record<string, unknown>, name: string): string | null {
  const value = body[name];
  if (value === undefined || value === null) return null;
  if (!isUuidLike(value)) throw invalidField(name, value, `${pyRepr(value, true)} is not valid under any of the given schemas`);
  return value;
}

/** A create body checked as Cinder's schema of the request's microversion. */
function newVolumeOf(req: FastifyRequest): NewVolume {
  const body = bodyMember(req, 'volume', { extra: ['OS-SCH-HNT:scheduler_hints'] });
  const hints = (req.body as Record<string, unknown>)['OS-SCH-HNT:scheduler_hints'];
  if (hints !== undefined && hints !== null && !isObject(hints)) throw invalidField('OS-SCH-HNT:scheduler_hints', hints, notOfType(hints, ['object', 'null']));
  const members = [...CREATE_MEMBERS, ...(atLeast(req, '3.13') ? ['group_id'] : []), ...(atLeast(req, '3.47') ? ['backup_id'] : [])];
  if (atLeast(req, '3.53')) checkMembers(body, 'volume', members);
  const name = textField('display_name', body.display_name, 'name');
  const description = textField('display_description', body.display_description, 'description');
  const text = (key: string): string | null => (body[key] === undefined ? null : stringField(key, body[key], { max: 255, nullable: true }));
  const zone = body.availability_zone === undefined ? null : stringField('availability_zone', body.availability_zone, { min: 1, max: 255, nullable: true });
  if (body.multiattach !== undefined && body.multiattach !== null && booleanField('multiattach', body.multiattach)) {
    throw badRequest('multiattach parameter has been removed. The default behavior is to use multiattach enabled volume types. Contact your administrator to create a multiattach enabled volume type and use it to create multiattach volumes.');
  }
  const consistencyGroup = optionalUuid(body, 'consistencygroup_id');
  const imageRef = text('imageRef') ?? text('image_id');
  return {
    size: body.size === undefined ? null : sizeField('size', body.size, true),
    name: body.name !== undefined ? textField('name', body.name, 'name') : name,
    description: body.description !== undefined ? textField('description', body.description, 'description') : description,
    volumeType: text('volume_type') || null,
    metadata: body.metadata === undefined ? {} : metadataField('metadata', body.metadata, { nullable: true }),
    snapshotId: optionalUuid(body, 'snapshot_id'),
    sourceVolid: optionalUuid(body, 'source_volid'),
    imageRef,
    backupId: atLeast(req, '3.47') ? optionalUuid(body, 'backup_id') : null,
    groupId: consistencyGroup ?? (atLeast(req, '3.13') ? text('group_id') : null),
    availabilityZone: zone,
  };
}

/** The md5 of the metadata document, as Cinder's ETag (3.15). */
function metadataEtag(metadata: Record<string, string>): string {
  const items = Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return createHash('md5').update(`{"metadata": {${items.join(', ')}}}`).digest('hex');
}

/** Cinder refuses metadata changes of a volume in maintenance or being uploaded. */
function checkMetadataEditable(row: VolumeRow, verb: 'Updating' | 'Deleting'): void {
  if (row.status === 'maintenance' || row.status === 'uploading') throw invalidVolume(`${verb} volume metadata is not allowed for volumes in ${row.status} status.`);
}

/** False when the request's `If-Match` (3.15) does not match the metadata's ETag. */
async function etagMatches(volume: VolumeService, req: FastifyRequest, id: string): Promise<boolean> {
  const ifMatch = req.headers['if-match'];
  if (!atLeast(req, '3.15') || !ifMatch) return true;
  const tag = metadataEtag(await volumeMetadata(volume.db, id));
  return String(ifMatch)
    .split(',')
    .map((t) => t.trim().replace(/^W\//, '').replace(/^"|"$/g, ''))
    .some((t) => t === '*' || t === tag);
}

/** Registers `/volumes` and `/volumes/{id}/metadata`. */
export function registerVolumes(app: FastifyInstance, volume: VolumeService): void {
  const show = async (req: FastifyRequest, row: VolumeRow, extended: boolean): Promise<Record<string, unknown>> => ({ volume: volumeDetail(volume, viewContext(volume, req), await oneVolumeFacts(volume.db, row), extended) });

  app.post('/v3/volumes', async (req, reply) => {
    const input = newVolumeOf(req);
    const row = await createVolume(volume, contextOf(req), input);
    return reply.code(202).send(await show(req, row, false));
  });

  app.get('/v3/volumes', (req) => listVolumes(volume, req, false));
  app.get('/v3/volumes/detail', (req) => listVolumes(volume, req, true));

  app.get('/v3/volumes/summary', async (req) => {
    requireVersion(req, '3.12');
    const ctx = contextOf(req);
    authorize(volume, ctx, 'volume:get_all');
    const query = queryOf(req);
    const all = isAdmin(volume, ctx) && lenientBool(query.get('all_tenants') ?? 'false');
    const summary = await summaryOf(volume.db, all ? null : (ctx.projectId ?? ''));
    return { 'volume-summary': { total_count: summary.count, total_size: summary.size, ...(atLeast(req, '3.36') ? { metadata: summary.metadata } : {}) } };
  });

  app.get<IdParams>('/v3/volumes/:volume_id', async (req) => show(req, await getVolume(volume, contextOf(req), req.params.volume_id), true));

  app.put<IdParams>('/v3/volumes/:volume_id', async (req) => {
    const body = bodyMember(req, 'volume');
    checkMembers(body, 'volume', ['name', 'description', 'display_name', 'display_description', 'metadata']);
    if (atLeast(req, '3.53') && Object.keys(body).length === 0) throw invalidField('volume', body, '{} is not valid under any of the given schemas');
    const values: Partial<VolumeRow> = {};
    if (body.display_name !== undefined) values.display_name = textField('display_name', body.display_name, 'name');
    if (body.display_description !== undefined) values.display_description = textField('display_description', body.display_description, 'description');
    if (body.name !== undefined) values.display_name = textField('name', body.name, 'name');
    if (body.description !== undefined) values.display_description = textField('description', body.description, 'description');
    const metadata = body.metadata === undefined ? undefined : metadataField('metadata', body.metadata);
    const ctx = contextOf(req);
    const row = await getVolume(volume, ctx, req.params.volume_id, 'volume:update');
    await notifyVolume(volume, row.id, 'update.start', row);
    if (row.status === 'maintenance') throw invalidVolume('The volume cannot be updated during maintenance.');
    await updateVolume(volume.db, row.id, values);
    if (metadata !== undefined) await setVolumeMetadata(volume.db, row.id, metadata, true);
    await notifyVolume(volume, row.id, 'update.end');
    const updated = (await volumeRow(volume.db, row.id)) ?? { ...row, ...values };
    return show(req, updated, false);
  });

  app.delete<IdParams>('/v3/volumes/:volume_id', async (req, reply) => {
    const query = queryOf(req);
    const cascade = lenientBool(query.get('cascade') ?? 'false');
    const force = atLeast(req, '3.23') && lenientBool(query.get('force') ?? 'false');
    const ctx = contextOf(req);
    const row = await getVolume(volume, ctx, req.params.volume_id);
    if (force) authorize(volume, ctx, 'volume:force_delete', volumeTarget(row));
    await deleteVolume(volume, ctx, row, { cascade, force });
    return reply.code(202).send();
  });

  registerVolumeMetadata(app, volume);
}

function registerVolumeMetadata(app: FastifyInstance, volume: VolumeService): void {
  const load = (req: FastifyRequest<IdParams | KeyParams>, rule: string): Promise<VolumeRow> => getVolume(volume, contextOf(req), req.params.volume_id, rule);
  const preconditionFailed = (reply: FastifyReply): FastifyReply => reply.code(412).send();

  app.get<IdParams>('/v3/volumes/:volume_id/metadata', async (req, reply) => {
    const row = await load(req, 'volume:get_volume_metadata');
    const metadata = await volumeMetadata(volume.db, row.id);
    if (atLeast(req, '3.15')) reply.header('ETag', metadataEtag(metadata));
    return { metadata };
  });

  app.post<IdParams>('/v3/volumes/:volume_id/metadata', async (req) => {
    const metadata = metadataField('metadata', bodyValue(req, 'metadata'));
    const row = await load(req, 'volume:create_volume_metadata');
    checkMetadataEditable(row, 'Updating');
    return { metadata: await setVolumeMetadata(volume.db, row.id, metadata, false) };
  });

  app.put<IdParams>('/v3/volumes/:volume_id/metadata', async (req, reply) => {
    const metadata = metadataField('metadata', bodyValue(req, 'metadata'));
    if (!(await etagMatches(volume, req, req.params.volume_id))) return preconditionFailed(reply);
    const row = await load(req, 'volume:update_volume_metadata');
    checkMetadataEditable(row, 'Updating');
    return { metadata: await setVolumeMetadata(volume.db, row.id, metadata, true) };
  });

  app.get<KeyParams>('/v3/volumes/:volume_id/metadata/:key', async (req) => {
    const row = await load(req, 'volume:get_volume_metadata');
    const metadata = await volumeMetadata(volume.db, row.id);
    if (!Object.hasOwn(metadata, req.params.key)) throw notFound(`Volume ${row.id} has no metadata with key ${req.params.key}.`);
    return { meta: { [req.params.key]: metadata[req.params.key] } };
  });

  app.put<KeyParams>('/v3/volumes/:volume_id/metadata/:key', async (req, reply) => {
    const meta = metadataField('meta', bodyValue(req, 'meta'), { count: 1 });
    if (!(await etagMatches(volume, req, req.params.volume_id))) return preconditionFailed(reply);
    if (!Object.hasOwn(meta, req.params.key)) throw badRequest('Request body and URI mismatch');
    const row = await load(req, 'volume:update_volume_metadata');
    checkMetadataEditable(row, 'Updating');
    await setVolumeMetadata(volume.db, row.id, meta, false);
    return { meta };
  });

  app.delete<KeyParams>('/v3/volumes/:volume_id/metadata/:key', async (req, reply) => {
    const row = await getVolume(volume, contextOf(req), req.params.volume_id, 'volume:get_volume_metadata');
    const metadata = await volumeMetadata(volume.db, row.id);
    if (!Object.hasOwn(metadata, req.params.key)) throw notFound(`Volume ${row.id} has no metadata with key ${req.params.key}.`);
    authorize(volume, contextOf(req), 'volume:delete_volume_metadata', volumeTarget(row));
    checkMetadataEditable(row, 'Deleting');
    await deleteVolumeMetadataItem(volume.db, row.id, req.params.key);
    return reply.code(200).send();
  });
}
