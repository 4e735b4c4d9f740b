import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import type { GroupRow, VolumeRow } from '../db/schema.js';
import { badRequest } from '../errors.js';
import { createGroup, createGroupFromSource, deleteGroup, getGroup, GROUP_SNAPSHOT_STATUSES, GROUP_STATUSES, groupVolumeTypes, resetGroupStatus, updateGroup, type GroupMember } from '../groups.js';
import { pageOf } from '../listing.js';
import { AgentRpc } from '../rpc.js';
import { createVolume } from '../volume-create.js';
import { agentVolume, destroyVolumeRows } from '../volumes.js';
import { allowed, apiTime, atLeast, authorize, contextOf, isAdmin, type VolumeService } from '../volume.js';
import { versionNotSupported } from './catalog-input.js';
import { bodyMember, booleanField, checkMembers, invalidField, invalidInput, isObject, isUuidLike, lenientBool, nextLinks, notOfType, pagination, pyRepr, queryOf, sortParams, stringField } from './volume-input.js';
import { viewContext } from '../views.js';

/**
 * `/groups` (3.13): create, list, detail, show, update (name,
 * description, `add_volumes`, `remove_volumes`), and the actions `delete`
 * (`delete-volumes`), `reset_status` (3.20), `create-from-src` (3.14, on
 * `/groups/action`); replication actions (3.38) are refused: no Stratus
 * backend replicates.
 */

type IdParams = { Params: { id: string } };

const GROUP_COLUMNS = ['id', 'project_id', 'user_id', 'host', 'availability_zone', 'name', 'description', 'status', 'group_type_id', 'group_snapshot_id', 'source_group_id', 'replication_status', 'created_at', 'updated_at'];

function requireVersion(req: FastifyRequest, version: string): void {
  if (!atLeast(req, version)) throw versionNotSupported(req);
}

/** Cinder's detailed group view at the request's microversion. */
function groupDetail(volume: VolumeService, req: FastifyRequest, ctx: RequestContext, row: GroupRow, typeIds: string[], volumeIds: string[] | null): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: row.id,
    status: row.status,
    availability_zone: row.availability_zone,
    created_at: apiTime(row.created_at),
    name: row.name,
    description: row.description,
    group_type: row.group_type_id,
    volume_types: typeIds,
  };
  if (atLeast(req, '3.14')) {
    out.group_snapshot_id = row.group_snapshot_id;
    out.source_group_id = row.source_group_id;
  }
  if (volumeIds !== null) out.volumes = volumeIds;
  if (atLeast(req, '3.38')) out.replication_status = row.replication_status;
  if (atLeast(req, '3.58') && allowed(volume, ctx, 'group:group_project_attribute')) out.project_id = row.project_id;
  return out;
}

/** The volume ids of each group when `list_volume` (3.25) asks for them, else null. */
async function volumeIdsOf(volume: VolumeService, req: FastifyRequest, groupIds: string[]): Promise<Map<string, string[]> | null> {
  const flag = queryOf(req).get('list_volume');
  if (!atLeast(req, '3.25') || flag === undefined || !lenientBool(flag)) return null;
  const out = new Map<string, string[]>(groupIds.map((id) => [id, []]));
  if (groupIds.length === 0) return out;
  const rows = await volume.db.selectFrom('volume').select(['id', 'group_id']).where('group_id', 'in', groupIds).orderBy('created_at').execute();
  for (const r of rows) if (r.group_id) out.get(r.group_id)?.push(r.id);
  return out;
}

async function showGroup(volume: VolumeService, req: FastifyRequest, row: GroupRow): Promise<Record<string, unknown>> {
  const types = await groupVolumeTypes(volume, [row.id]);
  const volumes = await volumeIdsOf(volume, req, [row.id]);
  return { group: groupDetail(volume, req, contextOf(req), row, types.get(row.id) ?? [], volumes ? (volumes.get(row.id) ?? []) : null) };
}

async function listGroups(volume: VolumeService, req: FastifyRequest, detail: boolean): Promise<unknown> {
  requireVersion(req, '3.13');
  const ctx = contextOf(req);
  authorize(volume, ctx, 'group:get_all');
  const admin = isAdmin(volume, ctx);
  const query = queryOf(req);
  const page = pagination(query, volume.config.volume.max_limit);
  const sort = sortParams(query);
  query.delete('list_volume');
  const all = admin && query.has('all_tenants');
  query.delete('all_tenants');
  if (atLeast(req, '3.31') && !admin) {
    const like = atLeast(req, '3.34');
    const invalid = [...query.keys()].filter((k) => !(k === 'name' || (like && k === 'name~')));
    if (invalid.length > 0) throw badRequest(`Invalid filters ${invalid.join(',')} are found in query options.`);
  }
  let sql = volume.db.selectFrom('volume_group').selectAll();
  if (!all) sql = sql.where('project_id', '=', ctx.projectId ?? '');
  let rows = await sql.execute();
  for (const [rawKey, value] of query) {
    const like = rawKey.endsWith('~') && atLeast(req, '3.34');
    const key = like ? rawKey.slice(0, -1) : rawKey;
    const column = key === 'group_type' ? 'group_type_id' : key;
    if (!GROUP_COLUMNS.includes(column)) {
      rows = [];
      break;
    }
    rows = rows.filter((r) => {
      const v = (r as unknown as Record<string, unknown>)[column];
      return like ? typeof v === 'string' && v.includes(value) : String(v ?? '') === value;
    });
  }
  const keys = sort.keys.map((k) => {
    const column = k === 'group_type' ? 'group_type_id' : k;
    if (!GROUP_COLUMNS.includes(column)) throw invalidInput('Invalid sort key');
    return column;
  });
  let marker: GroupRow | null = null;
  if (page.marker !== null) {
    marker = rows.find((r) => r.id === page.marker) ?? (await getGroup(volume, ctx, page.marker));
  }
  const pageRows = pageOf(rows, { keys, dirs: sort.dirs, marker, offset: page.offset, limit: page.limit });
  let items: Record<string, unknown>[];
  if (detail) {
    const ids = pageRows.map((r) => r.id);
    const types = await groupVolumeTypes(volume, ids);
    const volumes = await volumeIdsOf(volume, req, ids);
    items = pageRows.map((r) => groupDetail(volume, req, ctx, r, types.get(r.id) ?? [], volumes ? (volumes.get(r.id) ?? []) : null));
  } else items = pageRows.map((r) => ({ id: r.id, name: r.name }));
  const out: Record<string, unknown> = { groups: items };
  const links = nextLinks(req, viewContext(volume, req).base, detail ? 'groups/detail' : 'groups', pageRows, page.limit);
  if (links.length > 0) out.group_links = links;
  return out;
}

/** `name`/`description` of a group body (`name_allow_zero_min_length`, `description`), trimmed as Cinder does. */
function textMember(body: Record<string, unknown>, key: string): string | null | undefined {
  if (body[key] === undefined) return undefined;
  const value = stringField(key, body[key], { max: 255, nullable: true });
  return value === null ? null : value.trim();
}

function uuidMember(body: Record<string, unknown>, key: string): string | null {
  const value = body[key];
  if (value === undefined) return null;
  if (!isUuidLike(value)) throw invalidField(key, value, `${pyRepr(value, true)} is not a 'uuid'`);
  return value;
}

/** Creates a volume of a group made from a source, through the volume create path. */
function memberCreator(volume: VolumeService, ctx: RequestContext): (group: GroupRow, member: GroupMember) => Promise<void> {
  return async (group, member) => {
    await createVolume(volume, ctx, {
      size: member.size,
      name: null,
      description: null,
      volumeType: member.volumeTypeId,
      metadata: {},
      snapshotId: member.snapshotId,
      sourceVolid: member.sourceVolid,
      imageRef: null,
      backupId: null,
      groupId: group.id,
      availabilityZone: group.availability_zone,
      groupSource: true,
    });
  };
}

/** Deletes a volume of a group being deleted: its agent removes it (a volume never scheduled just goes). */
function memberDeleter(volume: VolumeService): (row: VolumeRow) => Promise<void> {
  const rpc = new AgentRpc(volume.bus);
  return async (row) => {
    if (!row.host) {
      await destroyVolumeRows(volume.db, row.id);
      return;
    }
    await rpc.deleteVolume(agentVolume(row));
  };
}

async function groupAction(volume: VolumeService, req: FastifyRequest<IdParams>, reply: FastifyReply): Promise<unknown> {
  const body = req.body;
  if (!isObject(body)) throw badRequest('Malformed request body');
  const keys = Object.keys(body);
  if (keys.length !== 1) throw badRequest('Malformed message body: too many body keys');
  const action = keys[0] ?? '';
  const args = body[action];
  const ctx = contextOf(req);
  switch (action) {
    case 'delete': {
      requireVersion(req, '3.13');
      if (!isObject(args)) throw invalidField('delete', args, notOfType(args, 'object'));
      checkMembers(args, 'delete', ['delete-volumes']);
      const deleteVolumes = args['delete-volumes'] === undefined ? false : booleanField('delete-volumes', args['delete-volumes']);
      const group = await getGroup(volume, ctx, req.params.id);
      await deleteGroup(volume, ctx, group, deleteVolumes, memberDeleter(volume));
      return reply.code(202).send();
    }
    case 'reset_status': {
      requireVersion(req, '3.20');
      if (!isObject(args)) throw invalidField('reset_status', args, notOfType(args, 'object'));
      checkMembers(args, 'reset_status', ['status'], ['status']);
      const status = args.status;
      if (status === null) throw badRequest("The 'status' can not be None.");
      if (typeof status !== 'string') throw invalidField('status', status, notOfType(status, 'string'));
      if (status.trim().length === 0) throw badRequest("Invalid Group Status: The 'status' can not be empty.");
      if (!(GROUP_SNAPSHOT_STATUSES as readonly string[]).includes(status.toLowerCase())) {
        throw badRequest(`Invalid Group Status: Group status: ${status} is invalid, valid status are: (${GROUP_STATUSES.map((s) => `'${s}'`).join(', ')}).`);
      }
      const group = await getGroup(volume, ctx, req.params.id);
      volume.notify('groups.reset_status.start', { id: group.id, update: status.toLowerCase() });
      await resetGroupStatus(volume, ctx, group, status.toLowerCase());
      volume.notify('groups.reset_status.end', { id: group.id, update: status.toLowerCase() });
      return reply.code(202).send();
    }
    case 'enable_replication':
    case 'disable_replication':
    case 'failover_replication':
    case 'list_replication_targets': {
      requireVersion(req, '3.38');
      const group = await getGroup(volume, ctx, req.params.id);
      authorize(volume, ctx, `group:${action}`, { project_id: group.project_id });
      throw badRequest(`Invalid group type: Group ${group.id} is not a replication group type.`);
    }
    default:
      throw badRequest(`There is no such action: ${action}`);
  }
}

/** Registers `/groups` and its actions. */
export function registerGroups(app: FastifyInstance, volume: VolumeService): void {
  app.post('/v3/groups', async (req, reply) => {
    requireVersion(req, '3.13');
    const body = bodyMember(req, 'group');
    checkMembers(body, 'group', ['description', 'group_type', 'name', 'volume_types', 'availability_zone'], ['group_type', 'volume_types']);
    const groupType = stringField('group_type', body.group_type) ?? '';
    const types = body.volume_types;
    if (!Array.isArray(types)) throw invalidField('volume_types', types, notOfType(types, 'array'));
    if (types.length === 0) throw invalidField('volume_types', types, '[] is too short');
    for (const t of types) if (typeof t !== 'string' || t.length > 255) throw invalidField('volume_types', types, `${pyRepr(t, true)} is not of type 'string'`);
    if (new Set(types).size !== types.length) throw invalidField('volume_types', types, `${pyRepr(types, true)} has non-unique elements`);
    const zone = body.availability_zone === undefined ? null : stringField('availability_zone', body.availability_zone, { nullable: true });
    const ctx = contextOf(req);
    const group = await createGroup(volume, ctx, { name: textMember(body, 'name') ?? null, description: textMember(body, 'description') ?? null, groupType, volumeTypes: types as string[], availabilityZone: zone });
    return reply.code(202).send({ group: { id: group.id, name: group.name } });
  });

  app.post('/v3/groups/action', async (req, reply) => {
    const body = req.body;
    if (!isObject(body) || !('create-from-src' in body)) throw badRequest(`There is no such action: ${isObject(body) ? (Object.keys(body)[0] ?? '') : ''}`);
    requireVersion(req, '3.14');
    checkMembers(body, 'body', ['create-from-src'], ['create-from-src']);
    const inner = body['create-from-src'];
    if (!isObject(inner)) throw invalidField('create-from-src', inner, notOfType(inner, 'object'));
    checkMembers(inner, 'create-from-src', ['description', 'name', 'source_group_id', 'group_snapshot_id']);
    const groupSnapshotId = uuidMember(inner, 'group_snapshot_id');
    const sourceGroupId = uuidMember(inner, 'source_group_id');
    if ((groupSnapshotId === null) === (sourceGroupId === null)) {
      throw invalidField('create-from-src', inner, `${pyRepr(inner, true)} is ${groupSnapshotId === null ? 'not' : 'valid under each of'} ${groupSnapshotId === null ? 'valid under any of the given schemas' : "{'required': ['source_group_id']}, {'required': ['group_snapshot_id']}"}`);
    }
    const ctx = contextOf(req);
    const group = await createGroupFromSource(
      volume,
      ctx,
      { name: textMember(inner, 'name') ?? null, description: textMember(inner, 'description') ?? null, groupSnapshotId, sourceGroupId },
      memberCreator(volume, ctx),
      async (g) => {
        const remove = memberDeleter(volume);
        for (const row of await volume.db.selectFrom('volume').selectAll().where('group_id', '=', g.id).execute()) await remove(row);
      },
    );
    return reply.code(202).send({ group: { id: group.id, name: group.name } });
  });

  app.get('/v3/groups', (req) => listGroups(volume, req, false));
  app.get('/v3/groups/detail', (req) => listGroups(volume, req, true));

  app.get<IdParams>('/v3/groups/:id', async (req) => {
    requireVersion(req, '3.13');
    return showGroup(volume, req, await getGroup(volume, contextOf(req), req.params.id));
  });

  app.put<IdParams>('/v3/groups/:id', async (req, reply) => {
    requireVersion(req, '3.13');
    const body = bodyMember(req, 'group');
    checkMembers(body, 'group', ['description', 'name', 'add_volumes', 'remove_volumes']);
    if (Object.keys(body).length === 0) throw invalidField('group', body, '{} is not valid under any of the given schemas');
    const name = textMember(body, 'name');
    const description = textMember(body, 'description');
    const addVolumes = textMember(body, 'add_volumes') ?? null;
    const removeVolumes = textMember(body, 'remove_volumes') ?? null;
    const ctx = contextOf(req);
    const group = await getGroup(volume, ctx, req.params.id);
    await updateGroup(volume, ctx, group, { name, description, addVolumes, removeVolumes });
    return reply.code(202).send();
  });

  app.post<IdParams>('/v3/groups/:id/action', async (req, reply) => groupAction(volume, req, reply));
}
