import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SnapshotRow } from '../db/schema.js';
import { badRequest, notFound, snapshotNotFound, volumeNotFound } from '../errors.js';
import { pageOf } from '../listing.js';
import { createSnapshot, deleteSnapshot } from '../snapshot-operations.js';
import { deleteSnapshotMetadataItem, getSnapshot, notifySnapshot, setSnapshotMetadata, snapshotMetadata, snapshotsMetadata, snapshotTarget } from '../snapshots.js';
import { SNAPSHOT_STATUS_UPDATES, SNAPSHOT_STATUSES } from '../volume-states.js';
import { snapshotDetail, snapshotSummary, viewContext } from '../views.js';
import { getVolume } from '../volumes.js';
import { atLeast, authorize, contextOf, isAdmin, now, type VolumeService } from '../volume.js';
import { bodyMember, bodyValue, booleanField, checkFilters, checkMembers, invalidField, invalidInput, isObject, lenientBool, literalValue, metadataField, nextLinks, notOfType, pagination, pyRepr, queryOf, sortParams, stringField } from './volume-input.js';

/**
 * `/snapshots`: create (202, `creating`), list, detail, show, update,
 * delete, `/snapshots/{id}/metadata`, and the actions `os-reset_status`,
 * `os-force_delete` (administrators) and `os-update_snapshot_status`.
 */

type IdParams = { Params: { snapshot_id: string } };
type KeyParams = { Params: { snapshot_id: string; key: string } };

const SNAPSHOT_COLUMNS = ['id', 'volume_id', 'project_id', 'user_id', 'status', 'progress', 'volume_size', 'display_name', 'display_description', 'volume_type_id', 'provider_location', 'group_snapshot_id', 'created_at', 'updated_at'];

const SNAPSHOT_IN_USE_FLAG_MSG =
  "Since microversion 3.66 the 'force' flag is invalid for this request.  For backward compatability, however, when the 'force' flag is passed with a value evaluating to True, it is silently ignored.";

/** A description member (`parameter_types.description`): a string or null of at most 255 characters. */
function description(name: string, value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw invalidField(name, value, notOfType(value, ['string', 'null']));
  if ([...value].length > 255) throw invalidField(name, value, `${pyRepr(value, true)} is too long`);
  return value.trim();
}

/** A name member (`name_allow_zero_min_length`), trimmed. */
function name(key: string, value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return (stringField(key, value, { max: 255, nullable: true }) ?? '').trim();
}

/**
 * The snapshots that match the filters left in `query` (Cinder's: column
 * values, `name` and `name~` (3.34), `metadata` (3.22), the volume's
 * `availability_zone`); a filter on an unknown attribute matches nothing.
 */
async function filterSnapshots(volume: VolumeService, req: FastifyRequest, rows: SnapshotRow[], query: Map<string, string>, metadata: Map<string, Record<string, string>>): Promise<SnapshotRow[]> {
  for (const [rawKey, value] of query) {
    const like = rawKey.endsWith('~') && atLeast(req, '3.34');
    const key = like ? rawKey.slice(0, -1) : rawKey;
    if (key === 'metadata') {
      const wanted = literalValue(value);
      if (!isObject(wanted)) return [];
      rows = rows.filter((r) => Object.entries(wanted).every(([k, v]) => metadata.get(r.id)?.[k] === String(v)));
      continue;
    }
    if (key === 'consumes_quota') {
      if (!lenientBool(value)) return [];
      continue;
    }
    if (key === 'availability_zone') {
      const volumes = await volume.db.selectFrom('volume').select('id').where('availability_zone', '=', value).execute();
      const ids = new Set(volumes.map((v) => v.id));
      rows = rows.filter((r) => ids.has(r.volume_id));
      continue;
    }
    const column = key === 'name' ? 'display_name' : key;
    if (!SNAPSHOT_COLUMNS.includes(column)) return [];
    rows = rows.filter((r) => {
      const stored = (r as unknown as Record<string, unknown>)[column];
      return like ? String(stored ?? '').includes(value) : String(stored) === value;
    });
  }
  return rows;
}

/** The snapshots of a list request: the project's (or all, for an administrator's `all_tenants`), filtered, sorted, paged. */
async function listSnapshots(volume: VolumeService, req: FastifyRequest, detail: boolean): Promise<Record<string, unknown>> {
  const ctx = contextOf(req);
  authorize(volume, ctx, 'volume:get_all_snapshots');
  const admin = isAdmin(volume, ctx);
  const query = queryOf(req);
  const sort = sortParams(query);
  const page = pagination(query, volume.config.volume.max_limit);
  let withCount = false;
  if (atLeast(req, '3.45') && query.has('with_count')) {
    withCount = lenientBool(query.get('with_count'));
    query.delete('with_count');
  }
  if (!atLeast(req, '3.31')) {
    if (!atLeast(req, '3.22')) query.delete('metadata');
    if (!atLeast(req, '3.65')) query.delete('consumes_quota');
  }
  checkFilters(req, query, 'snapshot', admin, ['status', 'volume_id', 'name', 'metadata']);
  const all = admin && lenientBool(query.get('all_tenants') ?? 'false');
  query.delete('all_tenants');
  let sql = volume.db.selectFrom('snapshot').selectAll();
  if (!all) sql = sql.where('project_id', '=', ctx.projectId ?? '');
  let rows = await sql.execute();
  const metadata = await snapshotsMetadata(volume.db, rows.map((r) => r.id));
  rows = await filterSnapshots(volume, req, rows, query, metadata);
  const keys = sort.keys.map((key) => {
    const column = key === 'name' && atLeast(req, '3.30') ? 'display_name' : key;
    if (!SNAPSHOT_COLUMNS.includes(column)) throw invalidInput('Invalid sort key');
    return column;
  });
  let marker: SnapshotRow | null = null;
  if (page.marker !== null) {
    marker = (await volume.db.selectFrom('snapshot').selectAll().where('id', '=', page.marker).executeTakeFirst()) ?? null;
    if (!marker || (!admin && marker.project_id !== ctx.projectId)) throw snapshotNotFound(page.marker);
  }
  const pageRows = pageOf(rows, { keys, dirs: sort.dirs, marker, offset: page.offset, limit: page.limit });
  const view = viewContext(volume, req);
  const items = pageRows.map((r) => (detail ? snapshotDetail(volume, view, r, metadata.get(r.id) ?? {}, true) : snapshotSummary(r, metadata.get(r.id) ?? {})));
  const out: Record<string, unknown> = { snapshots: items };
  const links = nextLinks(req, view.base, detail ? 'snapshots/detail' : 'snapshots', pageRows, page.limit, withCount ? rows.length : undefined);
  if (links.length > 0) out.snapshots_links = links;
  if (withCount) out.count = rows.length;
  return out;
}

/** Registers `/snapshots`, their metadata and actions. */
export function registerSnapshots(app: FastifyInstance, volume: VolumeService): void {
  const show = async (req: FastifyRequest, row: SnapshotRow, extended: boolean): Promise<Record<string, unknown>> => ({
    snapshot: snapshotDetail(volume, viewContext(volume, req), row, await snapshotMetadata(volume.db, row.id), extended),
  });

  app.post('/v3/snapshots', async (req, reply) => {
    const body = bodyMember(req, 'snapshot');
    checkMembers(body, 'snapshot', ['name', 'display_name', 'description', 'volume_id', 'force', 'metadata'], ['volume_id']);
    const volumeId = body.volume_id;
    if (volumeId !== null && (typeof volumeId !== 'string' || !/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(volumeId))) {
      throw invalidField('volume_id', volumeId, `${pyRepr(volumeId, true)} is not valid under any of the given schemas`);
    }
    const displayName = body.name !== undefined ? name('name', body.name) : name('display_name', body.display_name);
    const desc = description('description', body.description);
    const force = body.force === undefined ? null : booleanField('force', body.force);
    const metadata = body.metadata === undefined ? {} : metadataField('metadata', body.metadata, { nullable: true });
    const ctx = contextOf(req);
    if (volumeId === null) throw volumeNotFound('None');
    const row = await getVolume(volume, ctx, volumeId);
    if (force === false && atLeast(req, '3.66')) throw badRequest(SNAPSHOT_IN_USE_FLAG_MSG);
    const snapshot = await createSnapshot(volume, ctx, row, { name: displayName, description: desc, metadata, allowInUse: force === true || atLeast(req, '3.66') });
    return reply.code(202).send(await show(req, snapshot, false));
  });

  app.get('/v3/snapshots', (req) => listSnapshots(volume, req, false));
  app.get('/v3/snapshots/detail', (req) => listSnapshots(volume, req, true));

  app.get<IdParams>('/v3/snapshots/:snapshot_id', async (req) => show(req, await getSnapshot(volume, contextOf(req), req.params.snapshot_id), true));

  app.put<IdParams>('/v3/snapshots/:snapshot_id', async (req) => {
    const body = bodyMember(req, 'snapshot');
    checkMembers(body, 'snapshot', ['name', 'description', 'display_name', 'display_description']);
    if (Object.keys(body).length === 0) throw invalidField('snapshot', body, '{} is not valid under any of the given schemas');
    const values: Partial<SnapshotRow> = {};
    if (body.display_name !== undefined) values.display_name = name('display_name', body.display_name);
    if (body.name !== undefined) values.display_name = name('name', body.name);
    if (body.display_description !== undefined) values.display_description = description('display_description', body.display_description);
    if (body.description !== undefined) values.display_description = description('description', body.description);
    const ctx = contextOf(req);
    const row = await getSnapshot(volume, ctx, req.params.snapshot_id, 'volume:update_snapshot');
    await notifySnapshot(volume, row, 'update.start');
    await volume.db
      .updateTable('snapshot')
      .set({ ...values, updated_at: now() })
      .where('id', '=', row.id)
      .execute();
    const updated = await getSnapshot(volume, ctx, row.id);
    await notifySnapshot(volume, updated, 'update.end');
    return show(req, updated, false);
  });

  app.delete<IdParams>('/v3/snapshots/:snapshot_id', async (req, reply) => {
    const ctx = contextOf(req);
    await deleteSnapshot(volume, ctx, await getSnapshot(volume, ctx, req.params.snapshot_id), false);
    return reply.code(202).send();
  });

  registerSnapshotMetadata(app, volume);
  registerSnapshotActions(app, volume);
}

function registerSnapshotMetadata(app: FastifyInstance, volume: VolumeService): void {
  const load = (req: FastifyRequest<IdParams | KeyParams>, rule: string): Promise<SnapshotRow> => getSnapshot(volume, contextOf(req), req.params.snapshot_id, rule);
  const missing = (id: string, key: string): Error => notFound(`Snapshot ${id} has no metadata with key ${key}.`);

  app.get<IdParams>('/v3/snapshots/:snapshot_id/metadata', async (req) => ({ metadata: await snapshotMetadata(volume.db, (await load(req, 'volume:get_snapshot_metadata')).id) }));

  const writeAll = (replace: boolean) => async (req: FastifyRequest<IdParams>) => {
    const metadata = metadataField('metadata', bodyValue(req, 'metadata'));
    const row = await load(req, 'volume:update_snapshot_metadata');
    return { metadata: await setSnapshotMetadata(volume.db, row.id, metadata, replace) };
  };
  app.post<IdParams>('/v3/snapshots/:snapshot_id/metadata', writeAll(false));
  app.put<IdParams>('/v3/snapshots/:snapshot_id/metadata', writeAll(true));

  app.get<KeyParams>('/v3/snapshots/:snapshot_id/metadata/:key', async (req) => {
    const row = await load(req, 'volume:get_snapshot_metadata');
    const metadata = await snapshotMetadata(volume.db, row.id);
    if (!Object.hasOwn(metadata, req.params.key)) throw missing(row.id, req.params.key);
    return { meta: { [req.params.key]: metadata[req.params.key] } };
  });

  app.put<KeyParams>('/v3/snapshots/:snapshot_id/metadata/:key', async (req) => {
    const meta = metadataField('meta', bodyValue(req, 'meta'), { count: 1 });
    if (!Object.hasOwn(meta, req.params.key)) throw badRequest('Request body and URI mismatch');
    const row = await load(req, 'volume:update_snapshot_metadata');
    await setSnapshotMetadata(volume.db, row.id, meta, false);
    return { meta };
  });

  app.delete<KeyParams>('/v3/snapshots/:snapshot_id/metadata/:key', async (req, reply) => {
    const row = await load(req, 'volume:get_snapshot_metadata');
    const metadata = await snapshotMetadata(volume.db, row.id);
    if (!Object.hasOwn(metadata, req.params.key)) throw missing(row.id, req.params.key);
    authorize(volume, contextOf(req), 'volume:delete_snapshot_metadata', snapshotTarget(row));
    await deleteSnapshotMetadataItem(volume.db, row.id, req.params.key);
    return reply.code(200).send();
  });
}

/** Cinder's `progress` format: an integer percentage, 0..100. */
function progressOf(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') return String(value);
  const n = value.slice(0, -1);
  if (!/^[+-]?\d+$/.test(n.trim())) throw invalidInput('progress must be an integer percentage');
  const pct = Number(n);
  if (pct < 0 || pct > 100 || !value.endsWith('%')) throw invalidInput('progress must be an integer percentage between 0 and 100');
  return value;
}

function registerSnapshotActions(app: FastifyInstance, volume: VolumeService): void {
  app.post<IdParams>('/v3/snapshots/:snapshot_id/action', async (req, reply) => {
    const body = req.body === undefined ? null : req.body;
    if (!isObject(body)) throw badRequest('Malformed request body');
    const keys = Object.keys(body);
    if (keys.length !== 1) throw badRequest('Malformed message body: too many body keys');
    const action = keys[0] ?? '';
    const args = body[action];
    const ctx = contextOf(req);
    const id = req.params.snapshot_id;
    const loadAny = async (): Promise<SnapshotRow> => {
      const row = await volume.db.selectFrom('snapshot').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row || (row.project_id !== ctx.projectId && !isAdmin(volume, ctx))) throw snapshotNotFound(id);
      return row;
    };
    switch (action) {
      case 'os-reset_status': {
        if (!isObject(args)) throw invalidField('os-reset_status', args, notOfType(args, 'object'));
        checkMembers(args, 'os-reset_status', ['status'], ['status']);
        const status = args.status;
        if (typeof status !== 'string') throw invalidField('status', status, notOfType(status, 'string'));
        if (!(SNAPSHOT_STATUSES as readonly string[]).includes(status.toLowerCase())) {
          throw badRequest(`Snapshot status: ${status} is invalid, valid statuses are: ${pyRepr([...SNAPSHOT_STATUSES])}.`);
        }
        const row = await loadAny();
        authorize(volume, ctx, 'volume_extension:snapshot_admin_actions:reset_status', snapshotTarget(row));
        await notifySnapshot(volume, row, 'reset_status.start');
        await volume.db.updateTable('snapshot').set({ status: status.toLowerCase(), updated_at: now() }).where('id', '=', row.id).execute();
        await notifySnapshot(volume, { ...row, status: status.toLowerCase() }, 'reset_status.end');
        return reply.code(202).send();
      }
      case 'os-force_delete': {
        const row = await getSnapshot(volume, ctx, id);
        authorize(volume, ctx, 'volume_extension:snapshot_admin_actions:force_delete', snapshotTarget(row));
        await deleteSnapshot(volume, ctx, row, true);
        return reply.code(202).send();
      }
      case 'os-update_snapshot_status': {
        if (!isObject(args)) throw invalidField('os-update_snapshot_status', args, notOfType(args, 'object'));
        checkMembers(args, 'os-update_snapshot_status', ['status', 'progress'], ['status']);
        const status = stringField('status', args.status) ?? '';
        const progress = progressOf(args.progress);
        const row = await loadAny();
        authorize(volume, ctx, 'snapshot_extension:snapshot_actions:update_snapshot_status', snapshotTarget(row));
        const allowed = SNAPSHOT_STATUS_UPDATES[row.status];
        if (!allowed) throw badRequest(`Snapshot status ${row.status} not allowed for update_snapshot_status`);
        if (!allowed.includes(status)) throw badRequest(`Provided snapshot status ${status} not allowed for snapshot with status ${row.status}.`);
        await volume.db
          .updateTable('snapshot')
          .set({ status, ...(progress ? { progress } : {}), updated_at: now() })
          .where('id', '=', row.id)
          .execute();
        return reply.code(202).send();
      }
      default:
        throw badRequest(`There is no such action: ${action}`);
    }
  });
}
