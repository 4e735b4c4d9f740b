import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { atLeast, authorize, contextOf, isAdmin, type ComputeService } from '../compute.js';
import { apiTimeNoZone } from '../common.js';
import type { InstanceRow, MigrationRow } from '../db/schema.js';
import { badRequest, ComputeError, invalidState, notFound } from '../errors.js';
import { loadInstanceFor, recordAction } from '../instances.js';
import { inProgressLiveMigrations, listMigrations, LIVE_MIGRATION_IN_PROGRESS, migrationOfServer, type MigrationFilters } from '../migration-queries.js';
import { bodyOf, changesWindow, checkObject, lastValue, nextLinks, nonNegativeInteger, pageLimit, pyRepr, queryOf, rejectUnknownQuery, requireVersion, singleValue } from './nova-input.js';

/**
 * `GET /os-migrations` (admins): every migration, filtered by `host`,
 * `source_compute`, `status`, `instance_uuid`, `migration_type`; from 2.23
 * with `migration_type` and links to live migrations under way; from 2.59
 * paged (`limit`, `marker` = uuid) with `uuid` in the view and filtered by
 * `changes-since` (`changes-before` from 2.66); `user_id`/`project_id` from
 * 2.80. And `/servers/{id}/migrations` (2.23): the server's live migrations
 * under way, abort (`DELETE`, 2.24) and `force_complete` (2.22).
 */

/** Nova's internal flavor id, which we do not have: the flavor id when it is a number, else null. */
function instanceTypeId(flavorid: string | null): number | null {
  return flavorid !== null && /^[0-9]{1,15}$/.test(flavorid) ? Number(flavorid) : null;
}

function migrationLinks(compute: ComputeService, row: MigrationRow): { rel: string; href: string }[] {
  const path = `servers/${row.instance_uuid}/migrations/${row.id}`;
  return [
    { rel: 'self', href: `${compute.publicUrl}/v2.1/${path}` },
    { rel: 'bookmark', href: `${compute.publicUrl}/${path}` },
  ];
}

function listView(compute: ComputeService, req: FastifyRequest, row: MigrationRow): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: row.id,
    status: row.status,
    instance_uuid: row.instance_uuid,
    source_node: row.source_node,
    source_compute: row.source_compute,
    dest_node: row.dest_node,
    dest_compute: row.dest_compute,
    dest_host: row.dest_host,
    old_instance_type_id: instanceTypeId(row.old_flavorid),
    new_instance_type_id: instanceTypeId(row.new_flavorid),
    created_at: apiTimeNoZone(row.created_at),
    updated_at: apiTimeNoZone(row.updated_at),
  };
  if (atLeast(req, '2.23')) {
    view.migration_type = row.migration_type;
    if (row.migration_type === 'live-migration' && LIVE_MIGRATION_IN_PROGRESS.includes(row.status)) view.links = migrationLinks(compute, row);
  }
  if (atLeast(req, '2.59')) view.uuid = row.uuid;
  if (atLeast(req, '2.80')) {
    view.user_id = row.user_id;
    view.project_id = row.project_id;
  }
  return view;
}

function serverMigrationView(req: FastifyRequest, row: MigrationRow): Record<string, unknown> {
  const view: Record<string, unknown> = {
    created_at: apiTimeNoZone(row.created_at),
    dest_compute: row.dest_compute,
    dest_host: row.dest_host,
    dest_node: row.dest_node,
    // The drivers do not report a live migration's progress.
    disk_processed_bytes: null,
    disk_remaining_bytes: null,
    disk_total_bytes: null,
    id: row.id,
    memory_processed_bytes: null,
    memory_remaining_bytes: null,
    memory_total_bytes: null,
    server_uuid: row.instance_uuid,
    source_compute: row.source_compute,
    source_node: row.source_node,
    status: row.status,
    updated_at: apiTimeNoZone(row.updated_at),
  };
  if (atLeast(req, '2.59')) view.uuid = row.uuid;
  if (atLeast(req, '2.80')) {
    view.user_id = row.user_id;
    view.project_id = row.project_id;
  }
  return view;
}

const FILTERS = ['hidden', 'host', 'instance_uuid', 'source_compute', 'status', 'migration_type'] as const;

/** Reads the query of `GET /os-migrations` as its microversion's schema says. */
function readListQuery(compute: ComputeService, req: FastifyRequest): { filters: MigrationFilters; page: { limit?: number; marker?: string } } {
  const query = queryOf(req);
  const paged = atLeast(req, '2.59');
  const v280 = atLeast(req, '2.80');
  if (paged) rejectUnknownQuery(query, [...FILTERS, 'limit', 'marker', 'changes-since', ...(atLeast(req, '2.66') ? ['changes-before'] : []), ...(v280 ? ['user_id', 'project_id'] : [])]);
  const filters: MigrationFilters = {};
  for (const name of ['host', 'source_compute', 'status', 'instance_uuid', 'migration_type'] as const) {
    const value = lastValue(query, name);
    if (value !== undefined) filters[name] = value;
  }
  // Before 2.59 Nova passed any parameter through to its filters; from 2.80 these two are in the schema.
  for (const name of ['user_id', 'project_id'] as const) {
    const value = v280 ? singleValue(query, name) : paged ? undefined : lastValue(query, name);
    if (value !== undefined) filters[name] = value;
  }
  if (!paged) return { filters, page: {} };
  Object.assign(filters, changesWindow(query, { since: true, before: atLeast(req, '2.66') }));
  const limitText = singleValue(query, 'limit');
  const marker = singleValue(query, 'marker');
  return {
    filters,
    page: { limit: pageLimit(compute, limitText === undefined ? undefined : nonNegativeInteger('limit', limitText)), ...(marker === undefined ? {} : { marker }) },
  };
}

/** Nova's 409 when a live migration action may not run on the server now (lock, then states). */
function checkLiveMigrationAction(server: InstanceRow, ctx: { admin: boolean }, action: string, vmStates: string[] | null): void {
  if (server.locked && !ctx.admin) throw new ComputeError(409, `Instance ${server.uuid} is locked`);
  if (vmStates && !vmStates.includes(server.vm_state)) throw invalidState('vm_state', server.vm_state, action, server.uuid);
  if (server.task_state !== 'migrating') throw invalidState('task_state', server.task_state, action, server.uuid);
  if (!server.launched_at) throw invalidState('launched_at', null, action, server.uuid);
}

function invalidMigrationState(row: MigrationRow, server: InstanceRow, method: string): ComputeError {
  return badRequest(`Migration ${row.id} state of instance ${server.uuid} is ${row.status}. Cannot ${method} while the migration is in this state.`);
}

async function recordOn(compute: ComputeService, ctx: RequestContext, server: InstanceRow, action: string): Promise<void> {
  await recordAction(compute.db, server, action, { requestId: ctx.requestId, userId: ctx.userId, projectId: ctx.projectId });
}

type ServerParams = { Params: { server_id: string } };
type MigrationParams = { Params: { server_id: string; id: string } };

/*
 * Abort and force_complete answer as Nova up to the point of telling the
 * host. No driver here live-migrates slowly enough for either to find a
 * running migration (the fake one finishes at once), so nothing on a host
 * is asked yet; the action is recorded.
 */

/** `DELETE /servers/{id}/migrations/{migration}` (2.24; queued and preparing ones too from 2.65). */
async function abortLiveMigration(compute: ComputeService, req: FastifyRequest<MigrationParams>): Promise<void> {
  requireVersion(req, '2.24');
  const ctx = contextOf(req);
  const server = await loadInstanceFor(compute, ctx, req.params.server_id, 'servers:migrations:delete');
  checkLiveMigrationAction(server, { admin: isAdmin(compute, ctx) }, 'abort live migration', null);
  const row = await migrationOfServer(compute.db, server.uuid, req.params.id);
  if (!row) throw notFound(`Migration ${req.params.id} not found for instance ${server.uuid}`);
  const abortable = atLeast(req, '2.65') ? ['running', 'queued', 'preparing'] : ['running'];
  if (!abortable.includes(row.status)) throw invalidMigrationState(row, server, 'abort live migration');
  await recordOn(compute, ctx, server, 'live_migration_cancel');
}

/** `POST /servers/{id}/migrations/{migration}/action` with `force_complete` (2.22). */
async function forceComplete(compute: ComputeService, req: FastifyRequest<MigrationParams>): Promise<void> {
  requireVersion(req, '2.22');
  const body = checkObject(bodyOf(req), null, ['force_complete'], ['force_complete']);
  if (body.force_complete !== null) throw badRequest(`Invalid input for field/attribute force_complete. Value: ${pyRepr(body.force_complete)}. ${pyRepr(body.force_complete, true)} is not of type 'null'`);
  const ctx = contextOf(req);
  const server = await loadInstanceFor(compute, ctx, req.params.server_id, 'servers:migrations:force_complete');
  checkLiveMigrationAction(server, { admin: isAdmin(compute, ctx) }, 'force_complete', ['active']);
  const row = await migrationOfServer(compute.db, server.uuid, req.params.id);
  if (!row) throw badRequest(`Migration ${req.params.id} not found for instance ${server.uuid}`);
  if (row.status !== 'running') throw invalidMigrationState(row, server, 'force complete');
  await recordOn(compute, ctx, server, 'live_migration_force_complete');
}

/** Registers `/os-migrations` and `/servers/{id}/migrations`. */
export function registerMigrations(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-migrations', async (req) => {
    const { filters, page } = readListQuery(compute, req);
    authorize(compute, contextOf(req), 'os-migrations:index');
    const rows = await listMigrations(compute.db, filters, page);
    const body: Record<string, unknown> = { migrations: rows.map((row) => listView(compute, req, row)) };
    if (atLeast(req, '2.59')) {
      const links = nextLinks(compute, req, 'os-migrations', rows.length, rows.at(-1)?.uuid);
      if (links.length > 0) body.migrations_links = links;
    }
    return body;
  });

  const load = (req: FastifyRequest<ServerParams | MigrationParams>, rule: string): Promise<InstanceRow> => loadInstanceFor(compute, contextOf(req), req.params.server_id, `servers:migrations:${rule}`);

  app.get<ServerParams>('/v2.1/servers/:server_id/migrations', async (req) => {
    requireVersion(req, '2.23');
    const server = await load(req, 'index');
    const rows = await inProgressLiveMigrations(compute.db, server.uuid);
    return { migrations: rows.map((row) => serverMigrationView(req, row)) };
  });

  app.get<MigrationParams>('/v2.1/servers/:server_id/migrations/:id', async (req) => {
    requireVersion(req, '2.23');
    const server = await load(req, 'show');
    const { id } = req.params;
    const row = await migrationOfServer(compute.db, server.uuid, id);
    if (!row) throw notFound(`In-progress live migration ${id} is not found for server ${server.uuid}.`);
    if (row.migration_type !== 'live-migration') throw notFound(`Migration ${id} for server ${server.uuid} is not live-migration.`);
    if (!LIVE_MIGRATION_IN_PROGRESS.includes(row.status)) throw notFound(`Live migration ${id} for server ${server.uuid} is not in progress.`);
    return { migration: serverMigrationView(req, row) };
  });

  app.delete<MigrationParams>('/v2.1/servers/:server_id/migrations/:id', async (req, reply) => {
    await abortLiveMigration(compute, req);
    return reply.code(202).send();
  });

  app.post<MigrationParams>('/v2.1/servers/:server_id/migrations/:id/action', async (req, reply) => {
    await forceComplete(compute, req);
    return reply.code(202).send();
  });
}
