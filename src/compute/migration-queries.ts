import type { Kysely } from 'kysely';
import type { ComputeSchema, MigrationRow } from './db/schema.js';
import { badRequest } from './errors.js';

/**
 * Reading migrations (resizes, cold and live migrations, evacuations) for
 * `os-migrations` and `/servers/{id}/migrations`. A deleted server's
 * migrations are gone with it, as Nova soft-deletes them together.
 */

type Db = Kysely<ComputeSchema>;

/** The statuses of a live migration that is still under way. */
export const LIVE_MIGRATION_IN_PROGRESS = ['queued', 'preparing', 'running', 'post-migrating'];

/** The filters of `GET /os-migrations`, each optional. */
export interface MigrationFilters {
  /** Migrations from or to this host. */
  host?: string;
  /** Migrations from this host (ignored when `host` is given, as Nova does). */
  source_compute?: string;
  status?: string;
  instance_uuid?: string;
  migration_type?: string;
  user_id?: string;
  project_id?: string;
  /** Updated at or after (ISO 8601, as stored). */
  since?: string;
  /** Updated at or before. */
  before?: string;
}

/**
 * Migrations matching `filters`, newest first (created_at, then id), at
 * most `limit` after the one with uuid `marker`; 400 `Marker X could not be
 * found.` when the marker matches no migration.
 */
export async function listMigrations(db: Db, filters: MigrationFilters, page: { limit?: number; marker?: string } = {}): Promise<MigrationRow[]> {
  if (page.limit === 0) return [];
  let query = db
    .selectFrom('migration')
    .selectAll()
    .where('instance_uuid', 'in', (eb) => eb.selectFrom('instance').select('uuid').where('deleted', '=', 0));
  if (filters.since !== undefined) query = query.where('updated_at', '>=', filters.since);
  if (filters.before !== undefined) query = query.where('updated_at', '<=', filters.before);
  if (filters.status !== undefined) query = query.where('status', '=', filters.status);
  const { host, source_compute: source } = filters;
  if (host !== undefined) query = query.where((eb) => eb.or([eb('source_compute', '=', host), eb('dest_compute', '=', host)]));
  else if (source !== undefined) query = query.where('source_compute', '=', source);
  if (filters.migration_type !== undefined) query = query.where('migration_type', '=', filters.migration_type);
  if (filters.instance_uuid !== undefined) query = query.where('instance_uuid', '=', filters.instance_uuid);
  if (filters.user_id !== undefined) query = query.where('user_id', '=', filters.user_id);
  if (filters.project_id !== undefined) query = query.where('project_id', '=', filters.project_id);
  if (page.marker !== undefined) {
    const marker = await db.selectFrom('migration').select(['id', 'created_at']).where('uuid', '=', page.marker).executeTakeFirst();
    if (!marker) throw badRequest(`Marker ${page.marker} could not be found.`);
    query = query.where((eb) => eb.or([eb('created_at', '<', marker.created_at), eb.and([eb('created_at', '=', marker.created_at), eb('id', '<', marker.id)])]));
  }
  query = query.orderBy('created_at', 'desc').orderBy('id', 'desc');
  if (page.limit !== undefined) query = query.limit(page.limit);
  return query.execute();
}

/** A server's live migrations under way, oldest first. */
export async function inProgressLiveMigrations(db: Db, instanceUuid: string): Promise<MigrationRow[]> {
  return db
    .selectFrom('migration')
    .selectAll()
    .where('instance_uuid', '=', instanceUuid)
    .where('migration_type', '=', 'live-migration')
    .where('status', 'in', LIVE_MIGRATION_IN_PROGRESS)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

/** A migration of a server by its integer id (given as the URL has it); undefined when the server has none such. */
export async function migrationOfServer(db: Db, instanceUuid: string, id: string): Promise<MigrationRow | undefined> {
  if (!/^[0-9]{1,15}$/.test(id)) return undefined;
  return db.selectFrom('migration').selectAll().where('id', '=', Number(id)).where('instance_uuid', '=', instanceUuid).executeTakeFirst();
}
