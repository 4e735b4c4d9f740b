import { sql, type Kysely } from 'kysely';
import type { ComputeConfig } from '../core/config.js';
import type { ComputeSchema } from './db/schema.js';
import { classLimits, projectLimits, projectUsage, QUOTA_RESOURCES, type QuotaResource } from './quotas.js';

/**
 * The quota sets of `os-quota-sets` and `os-quota-class-sets`: the counted
 * and per-request resources of quotas.ts, plus the four nova-network ones
 * Nova still shows before 2.36 (unlimited unless set, never used).
 */

type Db = Kysely<ComputeSchema>;

/** The nova-network quotas Nova keeps showing before 2.36 (quota classes: 2.50). */
export const LEGACY_RESOURCES = ['fixed_ips', 'floating_ips', 'security_groups', 'security_group_rules'] as const;
/** One of the nova-network quotas. */
export type LegacyResource = (typeof LEGACY_RESOURCES)[number];
/** Any resource of a quota set. */
export type AnyResource = QuotaResource | LegacyResource;
/** Every resource of a quota set, in the order views list them. */
export const ALL_RESOURCES: readonly AnyResource[] = [...QUOTA_RESOURCES, ...LEGACY_RESOURCES];

/** A limit (or a count) per resource. */
export type QuotaSet = Record<AnyResource, number>;

function isLegacy(resource: string): resource is LegacyResource {
  return (LEGACY_RESOURCES as readonly string[]).includes(resource);
}

/** The limits of a quota class (its rows over the configured defaults; nova-network ones -1 unless set). */
export async function classQuotaSet(db: Db, config: ComputeConfig, className: string): Promise<QuotaSet> {
  const main = await classLimits(db, config, className);
  const legacy = Object.fromEntries(LEGACY_RESOURCES.map((r) => [r, -1])) as Record<LegacyResource, number>;
  const rows = await db.selectFrom('quota_class').select(['resource', 'hard_limit']).where('class_name', '=', className).where('resource', 'in', [...LEGACY_RESOURCES]).execute();
  for (const row of rows) if (isLegacy(row.resource)) legacy[row.resource] = Number(row.hard_limit);
  return { ...main, ...legacy };
}

/** A project's limits, or a user's in it: the user's rows, then the project's, then the `default` class, then the configuration. */
export async function projectQuotaSet(db: Db, config: ComputeConfig, projectId: string, userId = ''): Promise<QuotaSet> {
  const main = await projectLimits(db, config, projectId, userId);
  const defaults = await classQuotaSet(db, config, 'default');
  const legacy = Object.fromEntries(LEGACY_RESOURCES.map((r) => [r, defaults[r]])) as Record<LegacyResource, number>;
  const rows = await db
    .selectFrom('quota')
    .select(['resource', 'hard_limit', 'user_id'])
    .where('project_id', '=', projectId)
    .where('user_id', 'in', userId ? ['', userId] : [''])
    .where('resource', 'in', [...LEGACY_RESOURCES])
    .execute();
  for (const row of rows.sort((a, b) => a.user_id.localeCompare(b.user_id))) if (isLegacy(row.resource)) legacy[row.resource] = Number(row.hard_limit);
  return { ...main, ...legacy };
}

/**
 * What Nova reports as `in_use`: instances, cores and ram of the project
 * (or of the user in it), its server groups (or the user's); key pairs and
 * server group members are per-user counts Nova always shows as 0 here.
 */
export async function quotaUsage(db: Db, projectId: string, userId?: string): Promise<QuotaSet> {
  const used = await projectUsage(db, projectId, userId);
  let groups = used.server_groups;
  if (userId) {
    const row = await db.selectFrom('instance_group').select((eb) => eb.fn.countAll<number>().as('n')).where('project_id', '=', projectId).where('user_id', '=', userId).executeTakeFirst();
    groups = Number(row?.n ?? 0);
  }
  const out = Object.fromEntries(ALL_RESOURCES.map((r) => [r, 0])) as QuotaSet;
  return { ...out, instances: used.instances, cores: used.cores, ram: used.ram, server_groups: groups };
}

/** The bounds a new limit must keep (Nova's settable quotas); -1 is no bound above. */
export interface QuotaRange {
  minimum: number;
  maximum: number;
}

const unlimited = (v: number): boolean => v <= -1;

/**
 * For a project: at least what is used and what its users' own limits add
 * up to. For a user: at least what the user uses, at most what the project
 * has not given to its other users.
 */
export async function settableRanges(db: Db, config: ComputeConfig, projectId: string, userId?: string): Promise<Record<AnyResource, QuotaRange>> {
  const project = await projectQuotaSet(db, config, projectId);
  const userRows = await db
    .selectFrom('quota')
    .select(['resource', sql<number>`sum(hard_limit)`.as('total')])
    .where('project_id', '=', projectId)
    .where('user_id', '!=', '')
    .groupBy('resource')
    .execute();
  const givenToUsers = new Map(userRows.map((r) => [r.resource, Number(r.total)]));
  const remains = (r: AnyResource): number => (unlimited(project[r]) ? -1 : project[r] - (givenToUsers.get(r) ?? 0));
  const out = {} as Record<AnyResource, QuotaRange>;
  if (userId) {
    const used = await quotaUsage(db, projectId, userId);
    const own = await db.selectFrom('quota').select(['resource', 'hard_limit']).where('project_id', '=', projectId).where('user_id', '=', userId).execute();
    const ownLimits = new Map(own.map((r) => [r.resource, Number(r.hard_limit)]));
    for (const r of ALL_RESOURCES) {
      const left = remains(r);
      const mine = ownLimits.get(r) ?? 0;
      out[r] = { minimum: used[r], maximum: unlimited(left) || unlimited(mine) ? -1 : left + mine };
    }
  } else {
    const used = await quotaUsage(db, projectId);
    for (const r of ALL_RESOURCES) {
      const reserved = unlimited(project[r]) || unlimited(remains(r)) ? -1 : project[r] - remains(r);
      out[r] = { minimum: Math.max(reserved, used[r]), maximum: -1 };
    }
  }
  return out;
}

/** Sets limits of a project (user '' ) or of a user in it, replacing earlier ones. */
export async function setProjectQuotas(db: Db, projectId: string, userId: string, values: Partial<Record<AnyResource, number>>): Promise<void> {
  const entries = Object.entries(values) as [AnyResource, number][];
  if (entries.length === 0) return;
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('quota').where('project_id', '=', projectId).where('user_id', '=', userId).where('resource', 'in', entries.map(([r]) => r)).execute();
    await trx
      .insertInto('quota')
      .values(entries.map(([resource, hard_limit]) => ({ project_id: projectId, user_id: userId, resource, hard_limit })))
      .execute();
  });
}

/** Drops a project's own limits (and its users'), or only a user's, back to the defaults. */
export async function deleteProjectQuotas(db: Db, projectId: string, userId?: string): Promise<void> {
  let query = db.deleteFrom('quota').where('project_id', '=', projectId);
  if (userId) query = query.where('user_id', '=', userId);
  await query.execute();
}

/** Sets limits of a quota class, replacing earlier ones. */
export async function setClassQuotas(db: Db, className: string, values: Partial<Record<AnyResource, number>>): Promise<void> {
  const entries = Object.entries(values) as [AnyResource, number][];
  if (entries.length === 0) return;
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('quota_class').where('class_name', '=', className).where('resource', 'in', entries.map(([r]) => r)).execute();
    await trx
      .insertInto('quota_class')
      .values(entries.map(([resource, hard_limit]) => ({ class_name: className, resource, hard_limit })))
      .execute();
  });
}
