import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createBackup, deleteBackup, exportRecord, importRecord, resetBackupStatus, restoreBackup, updateBackup } from '../backup-operations.js';
import { BACKUP_RESET_STATUSES, backupDetail, backupMetadata, backupNotFound, backupsMetadata, backupSummary, getBackup } from '../backups.js';
import type { BackupRow } from '../db/schema.js';
import { badRequest } from '../errors.js';
import { pageOf } from '../listing.js';
import { viewContext } from '../views.js';
import { atLeast, authorize, contextOf, isAdmin, type VolumeService } from '../volume.js';
import {
  bodyMember,
  booleanField,
  checkFilters,
  checkMembers,
  invalidField,
  invalidInput,
  isObject,
  lenientBool,
  literalValue,
  metadataField,
  nextLinks,
  notOfType,
  pagination,
  pyRepr,
  queryOf,
  requireVersion,
  sortParams,
  stringField,
  strictBool,
  uuidField,
} from './volume-input.js';

/**
 * `/backups`: create (202, `creating`), list, detail, show, update (3.9),
 * delete, restore, the actions `os-reset_status` and `os-force_delete`
 * (administrators), `export_record` and `import_record` (administrators).
 */

type IdParams = { Params: { backup_id: string } };

const BACKUP_COLUMNS = [
  'id',
  'project_id',
  'user_id',
  'volume_id',
  'snapshot_id',
  'host',
  'availability_zone',
  'display_name',
  'display_description',
  'container',
  'status',
  'fail_reason',
  'service_metadata',
  'service',
  'size',
  'object_count',
  'parent_id',
  'num_dependent_backups',
  'data_timestamp',
  'restore_volume_id',
  'encryption_key_id',
  'created_at',
  'updated_at',
];

/** A name or description member (`name_allow_zero_min_length`, `description`): a string or null of at most 255 characters, trimmed. */
function text(name: string, value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return (stringField(name, value, { max: 255, nullable: true }) ?? '').trim();
}

/** The backups that match the filters left in `query` (columns, `name`, and `name~` like filters from 3.34); an unknown attribute matches nothing. */
function filterBackups(req: FastifyRequest, rows: BackupRow[], query: Map<string, string>, metadata: Map<string, Record<string, string>>): BackupRow[] {
  for (const [rawKey, value] of query) {
    const like = rawKey.endsWith('~') && atLeast(req, '3.34');
    const key = like ? rawKey.slice(0, -1) : rawKey;
    if (key === 'metadata') {
      const wanted = literalValue(value);
      if (!isObject(wanted)) return [];
      rows = rows.filter((r) => Object.entries(wanted).every(([k, v]) => metadata.get(r.id)?.[k] === String(v)));
      continue;
    }
    const column = key === 'name' ? 'display_name' : key === 'description' ? 'display_description' : key;
    if (!BACKUP_COLUMNS.includes(column)) return [];
    rows = rows.filter((r) => {
      const stored = (r as unknown as Record<string, unknown>)[column];
      return like ? String(stored ?? '').includes(value) : String(stored) === value;
    });
  }
  return rows;
}

/** The backups of a list request: the project's (or every project's, for an administrator's `all_tenants`), filtered, sorted, paged. */
async function listBackups(volume: VolumeService, req: FastifyRequest, detail: boolean): Promise<Record<string, unknown>> {
  const ctx = contextOf(req);
  authorize(volume, ctx, 'backup:get_all');
  const admin = isAdmin(volume, ctx);
  const query = queryOf(req);
  const sort = sortParams(query);
  const page = pagination(query, volume.config.volume.max_limit);
  let withCount = false;
  if (atLeast(req, '3.45') && query.has('with_count')) {
    withCount = lenientBool(query.get('with_count'));
    query.delete('with_count');
  }
  checkFilters(req, query, 'backup', admin, ['name', 'status', 'volume_id']);
  const allTenants = query.get('all_tenants') ?? '0';
  if (strictBool(allTenants) === null) throw badRequest(`Invalid input received: all_tenants must be a boolean, got '${allTenants}'.`);
  const all = admin && strictBool(allTenants) === true;
  query.delete('all_tenants');
  let sql = volume.db.selectFrom('backup').selectAll();
  if (!all) sql = sql.where('project_id', '=', ctx.projectId ?? '');
  let rows = await sql.execute();
  const metadata = await backupsMetadata(
    volume.db,
    rows.map((r) => r.id),
  );
  rows = filterBackups(req, rows, query, metadata);
  const keys = sort.keys.map((key) => {
    const column = key === 'name' && atLeast(req, '3.37') ? 'display_name' : key;
    if (!BACKUP_COLUMNS.includes(column)) throw invalidInput('Invalid sort key');
    return column;
  });
  let marker: BackupRow | null = null;
  if (page.marker !== null) {
    marker = (await volume.db.selectFrom('backup').selectAll().where('id', '=', page.marker).executeTakeFirst()) ?? null;
    if (!marker || (!all && marker.project_id !== ctx.projectId)) throw backupNotFound(page.marker);
  }
  const pageRows = pageOf(rows, { keys, dirs: sort.dirs, marker, offset: page.offset, limit: page.limit });
  const view = viewContext(volume, req);
  const items = pageRows.map((r) => (detail ? backupDetail(volume, view, r, metadata.get(r.id) ?? {}) : backupSummary(view, r)));
  const out: Record<string, unknown> = { backups: items };
  const links = nextLinks(req, view.base, detail ? 'backups/detail' : 'backups', pageRows, page.limit, withCount ? rows.length : undefined);
  if (links.length > 0) out.backups_links = links;
  if (withCount) out.count = rows.length;
  return out;
}

/** Registers `/backups` and its actions. */
export function registerBackups(app: FastifyInstance, volume: VolumeService): void {
  app.post('/v3/backups', async (req, reply) => {
    const body = bodyMember(req, 'backup');
    const members = ['volume_id', 'container', 'description', 'incremental', 'force', 'name', 'snapshot_id', ...(atLeast(req, '3.43') ? ['metadata'] : []), ...(atLeast(req, '3.51') ? ['availability_zone'] : [])];
    checkMembers(body, 'backup', members, ['volume_id']);
    const input = {
      volumeId: uuidField('volume_id', body.volume_id) ?? '',
      container: body.container === undefined ? null : stringField('container', body.container, { max: 255, nullable: true }),
      description: text('description', body.description),
      incremental: body.incremental === undefined ? false : booleanField('incremental', body.incremental),
      force: body.force === undefined ? false : booleanField('force', body.force),
      name: text('name', body.name),
      snapshotId: body.snapshot_id === undefined ? null : uuidField('snapshot_id', body.snapshot_id, true),
      metadata: body.metadata === undefined ? {} : metadataField('metadata', body.metadata, { nullable: true }),
      availabilityZone: body.availability_zone === undefined ? null : stringField('availability_zone', body.availability_zone, { max: 255, nullable: true }),
    };
    const backup = await createBackup(volume, contextOf(req), input);
    return reply.code(202).send({ backup: backupSummary(viewContext(volume, req), backup) });
  });

  app.get('/v3/backups', (req) => listBackups(volume, req, false));
  app.get('/v3/backups/detail', (req) => listBackups(volume, req, true));

  app.get<IdParams>('/v3/backups/:backup_id', async (req) => {
    const row = await getBackup(volume, contextOf(req), req.params.backup_id);
    return { backup: backupDetail(volume, viewContext(volume, req), row, await backupMetadata(volume.db, row.id)) };
  });

  app.put<IdParams>('/v3/backups/:backup_id', async (req) => {
    requireVersion(req, '3.9');
    const body = bodyMember(req, 'backup', { nullable: true });
    checkMembers(body, 'backup', ['name', 'description', ...(atLeast(req, '3.43') ? ['metadata'] : [])]);
    const values: { name?: string | null; description?: string | null; metadata?: Record<string, string> } = {};
    if ('name' in body) values.name = text('name', body.name);
    if ('description' in body) values.description = text('description', body.description);
    if ('metadata' in body) values.metadata = metadataField('metadata', body.metadata);
    const ctx = contextOf(req);
    const updated = await updateBackup(volume, ctx, await getBackup(volume, ctx, req.params.backup_id), values);
    return { backup: backupSummary(viewContext(volume, req), updated) };
  });

  app.delete<IdParams>('/v3/backups/:backup_id', async (req, reply) => {
    const ctx = contextOf(req);
    await deleteBackup(volume, ctx, await getBackup(volume, ctx, req.params.backup_id), false);
    return reply.code(202).send();
  });

  app.post<IdParams>('/v3/backups/:backup_id/restore', async (req, reply) => {
    const body = bodyMember(req, 'restore', { nullable: true });
    checkMembers(body, 'restore', ['name', 'volume_id']);
    const name = text('name', body.name);
    const volumeId = body.volume_id === undefined ? null : uuidField('volume_id', body.volume_id, true);
    const ctx = contextOf(req);
    const answer = await restoreBackup(volume, ctx, await getBackup(volume, ctx, req.params.backup_id), volumeId, name);
    return reply.code(202).send({ restore: answer });
  });

  app.get<IdParams>('/v3/backups/:backup_id/export_record', async (req) => {
    const ctx = contextOf(req);
    const row = await getBackup(volume, ctx, req.params.backup_id);
    return { 'backup-record': await exportRecord(volume, ctx, row, await backupMetadata(volume.db, row.id)) };
  });

  app.post('/v3/backups/import_record', async (req, reply) => {
    const body = bodyMember(req, 'backup-record');
    checkMembers(body, 'backup-record', ['backup_service', 'backup_url'], ['backup_service', 'backup_url']);
    const service = stringField('backup_service', body.backup_service, { max: 255 }) ?? '';
    const url = stringField('backup_url', body.backup_url, { min: 1 }) ?? '';
    const row = await importRecord(volume, contextOf(req), service, url);
    return reply.code(201).send({ backup: backupSummary(viewContext(volume, req), row) });
  });

  app.post<IdParams>('/v3/backups/:backup_id/action', async (req, reply) => {
    const body = req.body === undefined ? null : req.body;
    if (!isObject(body)) throw badRequest('Malformed request body');
    const keys = Object.keys(body);
    if (keys.length !== 1) throw badRequest('Malformed message body: too many body keys');
    const action = keys[0] ?? '';
    const args = body[action];
    const ctx = contextOf(req);
    switch (action) {
      case 'os-reset_status': {
        if (!isObject(args)) throw invalidField('os-reset_status', args, notOfType(args, 'object'));
        checkMembers(args, 'os-reset_status', ['status'], ['status']);
        const status = args.status;
        if (typeof status !== 'string') throw invalidField('status', status, notOfType(status, 'string'));
        if (!(BACKUP_RESET_STATUSES as readonly string[]).includes(status.toLowerCase())) {
          throw badRequest(`Backup status: ${status} is invalid, valid statuses are: ${pyRepr([...BACKUP_RESET_STATUSES])}.`);
        }
        const row = await getBackup(volume, ctx, req.params.backup_id);
        await resetBackupStatus(volume, ctx, row, status.toLowerCase());
        return reply.code(202).send();
      }
      case 'os-force_delete': {
        const row = await getBackup(volume, ctx, req.params.backup_id);
        authorize(volume, ctx, 'volume_extension:backup_admin_actions:force_delete', { project_id: row.project_id, user_id: row.user_id });
        await deleteBackup(volume, ctx, row, true);
        return reply.code(202).send();
      }
      default:
        throw badRequest(`There is no such action: ${action}`);
    }
  });
}
