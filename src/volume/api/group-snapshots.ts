import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import type { GroupSnapshotRow } from '../db/schema.js';
import { badRequest } from '../errors.js';
import { createGroupSnapshot, deleteGroupSnapshot, getGroup, getGroupSnapshot, GROUP_SNAPSHOT_STATUSES, resetGroupSnapshotStatus } from '../groups.js';
import { pageOf } from '../listing.js';
import { AgentRpc } from '../rpc.js';
import { createSnapshot } from '../snapshot-operations.js';
import { agentSnapshot, destroySnapshotRows } from '../snapshots.js';
import { viewContext } from '../views.js';
import { agentVolume, volumeRow } from '../volumes.js';
import { allowed, apiTime, atLeast, authorize, contextOf, isAdmin, type VolumeService } from '../volume.js';
import { versionNotSupported } from './catalog-input.js';
import { bodyMember, checkMembers, invalidField, invalidInput, isObject, isUuidLike, nextLinks, notOfType, pagination, pyRepr, queryOf, sortParams, stringField } from './volume-input.js';

/**
 * `/group_snapshots` (3.14): create (a snapshot of each volume of the
 * group), list, detail, show, delete (its snapshots with it), and the
 * `reset_status` action (3.19, administrators).
 */

type IdParams = { Params: { id: string } };

const COLUMNS = ['id', 'group_id', 'project_id', 'user_id', 'name', 'description', 'status', 'group_type_id', 'created_at', 'updated_at'];

function requireVersion(req: FastifyRequest, version: string): void {
  if (!atLeast(req, version)) throw versionNotSupported(req);
}

/** Cinder's detailed group snapshot view. */
function detailView(volume: VolumeService, req: FastifyRequest, ctx: RequestContext, row: GroupSnapshotRow): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: row.id,
    group_id: row.group_id,
    group_type_id: row.group_type_id,
    status: row.status,
    created_at: apiTime(row.created_at),
    name: row.name,
    description: row.description,
  };
  if (atLeast(req, '3.58') && allowed(volume, ctx, 'group:group_snapshot_project_attribute')) out.project_id = row.project_id;
  return out;
}

async function listGroupSnapshots(volume: VolumeService, req: FastifyRequest, detail: boolean): Promise<unknown> {
  requireVersion(req, '3.14');
  const ctx = contextOf(req);
  authorize(volume, ctx, 'group:get_all_group_snapshots');
  const admin = isAdmin(volume, ctx);
  // Before 3.29 Cinder takes no pagination, sorting or filters here.
  const query = atLeast(req, '3.29') ? queryOf(req) : new Map<string, string>();
  const page = pagination(query, volume.config.volume.max_limit);
  const sort = sortParams(query);
  const all = admin && query.has('all_tenants');
  query.delete('all_tenants');
  if (atLeast(req, '3.31') && !admin) {
    const like = atLeast(req, '3.34');
    const allowedKeys = ['name', 'status', 'group_id'];
    const invalid = [...query.keys()].filter((k) => !(allowedKeys.includes(k) || (like && k.endsWith('~') && allowedKeys.includes(k.slice(0, -1)))));
    if (invalid.length > 0) throw badRequest(`Invalid filters ${invalid.join(',')} are found in query options.`);
  }
  let sql = volume.db.selectFrom('group_snapshot').selectAll();
  if (!all) sql = sql.where('project_id', '=', ctx.projectId ?? '');
  let rows = await sql.execute();
  for (const [rawKey, value] of query) {
    const like = rawKey.endsWith('~') && atLeast(req, '3.34');
    const key = like ? rawKey.slice(0, -1) : rawKey;
    if (!COLUMNS.includes(key)) {
      rows = [];
      break;
    }
    rows = rows.filter((r) => {
      const v = (r as unknown as Record<string, unknown>)[key];
      return like ? typeof v === 'string' && v.includes(value) : String(v ?? '') === value;
    });
  }
  const keys = sort.keys.map((k) => {
    if (!COLUMNS.includes(k)) throw invalidInput('Invalid sort key');
    return k;
  });
  let marker: GroupSnapshotRow | null = null;
  if (page.marker !== null) marker = rows.find((r) => r.id === page.marker) ?? (await getGroupSnapshot(volume, ctx, page.marker));
  const pageRows = pageOf(rows, { keys, dirs: sort.dirs, marker, offset: page.offset, limit: page.limit });
  const items = pageRows.map((r) => (detail ? detailView(volume, req, ctx, r) : { id: r.id, name: r.name }));
  const out: Record<string, unknown> = { group_snapshots: items };
  const links = nextLinks(req, viewContext(volume, req).base, detail ? 'group_snapshots/detail' : 'group_snapshots', pageRows, page.limit);
  if (links.length > 0) out.group_snapshot_links = links;
  return out;
}

/** Deletes one snapshot of a group snapshot through its volume's agent (a snapshot without a backend just goes). */
function snapshotDeleter(volume: VolumeService): (snapshotId: string) => Promise<void> {
  const rpc = new AgentRpc(volume.bus);
  return async (snapshotId) => {
    const snapshot = await volume.db.selectFrom('snapshot').selectAll().where('id', '=', snapshotId).executeTakeFirst();
    if (!snapshot) return;
    const row = await volumeRow(volume.db, snapshot.volume_id);
    if (!row?.host) {
      await destroySnapshotRows(volume.db, snapshot.id);
      return;
    }
    await rpc.deleteSnapshot(agentVolume(row), agentSnapshot(snapshot));
  };
}

async function createGroupSnapshotRoute(volume: VolumeService, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  requireVersion(req, '3.14');
  const body = bodyMember(req, 'group_snapshot');
  checkMembers(body, 'group_snapshot', ['group_id', 'name', 'description'], ['group_id']);
  if (!isUuidLike(body.group_id)) throw invalidField('group_id', body.group_id, `${pyRepr(body.group_id, true)} is not a 'uuid'`);
  const name = body.name === undefined ? null : stringField('name', body.name, { max: 255, nullable: true });
  const description = body.description === undefined ? null : stringField('description', body.description, { max: 255, nullable: true });
  const ctx = contextOf(req);
  const group = await getGroup(volume, ctx, body.group_id);
  const row = await createGroupSnapshot(
    volume,
    ctx,
    group,
    { name, description },
    async (vol, groupSnapshot) => {
      await createSnapshot(volume, ctx, vol, { name: groupSnapshot.name, description: groupSnapshot.description, metadata: {}, allowInUse: true, groupSnapshotId: groupSnapshot.id });
    },
    async (groupSnapshot) => {
      for (const snap of await volume.db.selectFrom('snapshot').select('id').where('group_snapshot_id', '=', groupSnapshot.id).execute()) await destroySnapshotRows(volume.db, snap.id);
    },
  );
  return reply.code(202).send({ group_snapshot: { id: row.id, name: row.name, group_type_id: row.group_type_id } });
}

async function groupSnapshotAction(volume: VolumeService, req: FastifyRequest<IdParams>, reply: FastifyReply): Promise<unknown> {
  const body = req.body;
  if (!isObject(body)) throw badRequest('Malformed request body');
  const keys = Object.keys(body);
  if (keys.length !== 1) throw badRequest('Malformed message body: too many body keys');
  const action = keys[0] ?? '';
  if (action !== 'reset_status') throw badRequest(`There is no such action: ${action}`);
  requireVersion(req, '3.19');
  const args = body[action];
  if (!isObject(args)) throw invalidField('reset_status', args, notOfType(args, 'object'));
  checkMembers(args, 'reset_status', ['status'], ['status']);
  const status = args.status;
  if (typeof status !== 'string') throw invalidField('status', status, notOfType(status, 'string'));
  if (status.trim().length === 0) throw badRequest("Invalid GroupSnapshot Status: The 'status' can not be empty.");
  if (!(GROUP_SNAPSHOT_STATUSES as readonly string[]).includes(status.toLowerCase())) {
    throw badRequest(`Invalid GroupSnapshot Status: Group snapshot status: ${status} is invalid, valid statuses are: (${GROUP_SNAPSHOT_STATUSES.map((s) => `'${s}'`).join(', ')}).`);
  }
  const ctx = contextOf(req);
  const row = await getGroupSnapshot(volume, ctx, req.params.id);
  volume.notify('groupsnapshots.reset_status.start', { id: row.id, update: status.toLowerCase() });
  await resetGroupSnapshotStatus(volume, ctx, row, status.toLowerCase());
  volume.notify('groupsnapshots.reset_status.end', { id: row.id, update: status.toLowerCase() });
  return reply.code(202).send();
}

/** Registers `/group_snapshots` and its action. */
export function registerGroupSnapshots(app: FastifyInstance, volume: VolumeService): void {
  app.post('/v3/group_snapshots', async (req, reply) => createGroupSnapshotRoute(volume, req, reply));
  app.get('/v3/group_snapshots', (req) => listGroupSnapshots(volume, req, false));
  app.get('/v3/group_snapshots/detail', (req) => listGroupSnapshots(volume, req, true));
  app.get<IdParams>('/v3/group_snapshots/:id', async (req) => {
    requireVersion(req, '3.14');
    const ctx = contextOf(req);
    return { group_snapshot: detailView(volume, req, ctx, await getGroupSnapshot(volume, ctx, req.params.id)) };
  });
  app.delete<IdParams>('/v3/group_snapshots/:id', async (req, reply) => {
    requireVersion(req, '3.14');
    const ctx = contextOf(req);
    const row = await getGroupSnapshot(volume, ctx, req.params.id);
    await deleteGroupSnapshot(volume, ctx, row, snapshotDeleter(volume));
    return reply.code(202).send();
  });
  app.post<IdParams>('/v3/group_snapshots/:id/action', async (req, reply) => groupSnapshotAction(volume, req, reply));
}
