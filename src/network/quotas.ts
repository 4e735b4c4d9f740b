import { PostgresAdapter, sql, type Kysely } from 'kysely';
import { isUniqueViolation } from '../core/db/database.js';
import type { NetworkConfig } from '../core/config.js';
import type { NetworkSchema } from './db/schema.js';
import { overQuota } from './errors.js';

/** The resources Neutron counts against per-project quotas; each is counted in the table of its name. */
const COUNTED = ['network', 'subnet', 'subnetpool', 'port', 'router', 'floatingip', 'security_group', 'security_group_rule'] as const;

export type QuotaResource = (typeof COUNTED)[number];

function isCounted(resource: string): resource is QuotaResource {
  return (COUNTED as readonly string[]).includes(resource);
}

/** Every quota resource, with the ones that have no table (rbac_policy) counted as zero. */
export function quotaResources(config: NetworkConfig): string[] {
  return Object.keys(config.default_quotas);
}

/** The configured default limit of each resource (`GET /v2.0/quotas/{id}/default`). */
export function defaultLimits(config: NetworkConfig): Record<string, number> {
  return Object.fromEntries(quotaResources(config).map((resource) => [resource, config.default_quotas[resource] ?? -1]));
}

/** A project's limit for a resource: its own, else the configured default (-1: unlimited). */
export async function limitOf(db: Kysely<NetworkSchema>, config: NetworkConfig, projectId: string, resource: string): Promise<number> {
  const row = await db.selectFrom('quota').select('hard_limit').where('project_id', '=', projectId).where('resource', '=', resource).executeTakeFirst();
  return row ? Number(row.hard_limit) : (config.default_quotas[resource] ?? -1);
}

/** A project's limit of every resource: the defaults overlaid with the project's own. */
export async function projectLimits(db: Kysely<NetworkSchema>, config: NetworkConfig, projectId: string): Promise<Record<string, number>> {
  const limits = defaultLimits(config);
  const rows = await db.selectFrom('quota').select(['resource', 'hard_limit']).where('project_id', '=', projectId).execute();
  for (const row of rows) if (row.resource in limits) limits[row.resource] = Number(row.hard_limit);
  return limits;
}

/**
 * Every project that has a limit of its own, with all its limits (the
 * defaults where it has none): `GET /v2.0/quotas`.
 */
export async function allProjectLimits(db: Kysely<NetworkSchema>, config: NetworkConfig): Promise<Record<string, number | string>[]> {
  const rows = await db.selectFrom('quota').select(['project_id', 'resource', 'hard_limit']).orderBy('project_id').execute();
  const byProject = new Map<string, Record<string, number | string>>();
  for (const row of rows) {
    let entry = byProject.get(row.project_id);
    if (!entry) {
      entry = { ...defaultLimits(config), project_id: row.project_id, tenant_id: row.project_id };
      byProject.set(row.project_id, entry);
    }
    if (row.resource in config.default_quotas) entry[row.resource] = Number(row.hard_limit);
  }
  return [...byProject.values()];
}

/** How many of a resource the project has. */
export async function usageOf(db: Kysely<NetworkSchema>, projectId: string, resource: string): Promise<number> {
  if (!isCounted(resource)) return 0;
  const row = await db
    .selectFrom(resource)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * Sets some of a project's limits (the others keep theirs), all or none.
 * Idempotent; when a concurrent request sets the same limit first, the
 * transaction is re-run once and updates it.
 */
export async function setLimits(db: Kysely<NetworkSchema>, projectId: string, limits: Record<string, number>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await db.transaction().execute(async (trx) => {
        for (const [resource, hardLimit] of Object.entries(limits)) {
          const updated = await trx.updateTable('quota').set({ hard_limit: hardLimit }).where('project_id', '=', projectId).where('resource', '=', resource).executeTakeFirst();
          if (Number(updated.numUpdatedRows) === 0) await trx.insertInto('quota').values({ project_id: projectId, resource, hard_limit: hardLimit }).execute();
        }
      });
      return;
    } catch (err) {
      if (attempt > 0 || !isUniqueViolation(err)) throw err;
    }
  }
}

/** Drops a project's own limits (back to the defaults). False when it had none. */
export async function resetLimits(db: Kysely<NetworkSchema>, projectId: string): Promise<boolean> {
  const result = await db.deleteFrom('quota').where('project_id', '=', projectId).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/**
 * Refuses with Neutron's 409 `OverQuota` when adding `count` more of a
 * resource would pass the project's limit. Call it inside the transaction
 * that creates the resources, so that a refused request creates nothing.
 *
 * On PostgreSQL the project's creations of this resource then count one
 * after another until the transaction ends (an advisory lock): under READ
 * COMMITTED two transactions would otherwise both see room for the last one.
 * SQLite writes one transaction at a time already.
 */
export async function checkQuota(db: Kysely<NetworkSchema>, config: NetworkConfig, projectId: string, resource: QuotaResource, count = 1): Promise<void> {
  const limit = await limitOf(db, config, projectId, resource);
  if (limit < 0) return;
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`select pg_advisory_xact_lock(hashtext(${`stratus-quota:${resource}:${projectId}`}))`.execute(db);
  }
  const used = await usageOf(db, projectId, resource);
  if (used + count > limit) throw overQuota(resource);
}

/**
 * Neutron's `quota_limit_check`: refuses (409 `OverQuota`) only when the
 * limit itself is below `count`, whatever the usage. Neutron applies it to
 * the rules a new security group comes with, so that a full rule quota does
 * not stop groups from being created.
 */
export async function checkLimit(db: Kysely<NetworkSchema>, config: NetworkConfig, projectId: string, resource: QuotaResource, count: number): Promise<void> {
  const limit = await limitOf(db, config, projectId, resource);
  if (limit >= 0 && limit < count) throw overQuota(resource);
}
