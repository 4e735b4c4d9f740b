import { sql } from 'kysely';
import { num, type PlacementService } from './placement.js';

/** Used amounts of a provider for every class it has inventory of (0 when nothing is allocated). */
export async function providerUsages(svc: PlacementService, providerId: number): Promise<Record<string, number>> {
  const rows = await svc.db
    .selectFrom('inventories as i')
    .leftJoin('allocations as a', (join) => join.onRef('a.resource_provider_id', '=', 'i.resource_provider_id').onRef('a.resource_class_id', '=', 'i.resource_class_id'))
    .select('i.resource_class_id')
    .select(sql<number | string>`COALESCE(SUM(a.used), 0)`.as('used'))
    .where('i.resource_provider_id', '=', providerId)
    .groupBy('i.resource_class_id')
    .orderBy('i.resource_class_id')
    .execute();
  const out: Record<string, number> = {};
  for (const row of rows) out[await svc.resourceClasses.name(row.resource_class_id)] = num(row.used);
  return out;
}

function consumersOf(svc: PlacementService, projectId: string, userId: string | undefined) {
  let query = svc.db.selectFrom('allocations as a').innerJoin('consumers as c', 'c.uuid', 'a.consumer_uuid').where('c.project_id', '=', projectId);
  if (userId !== undefined) query = query.where('c.user_id', '=', userId);
  return query;
}

/** What a project (and optionally one of its users) uses, by class (`GET /usages` before 1.38). */
export async function projectUsages(svc: PlacementService, projectId: string, userId?: string): Promise<Record<string, number>> {
  const rows = await consumersOf(svc, projectId, userId)
    .select('a.resource_class_id')
    .select((eb) => eb.fn.sum<number | string>('a.used').as('used'))
    .groupBy('a.resource_class_id')
    .orderBy('a.resource_class_id')
    .execute();
  const out: Record<string, number> = {};
  for (const row of rows) out[await svc.resourceClasses.name(row.resource_class_id)] = num(row.used);
  return out;
}

/**
 * What a project (and optionally one of its users) uses, by consumer type,
 * with the number of consumers of each type (`GET /usages` from 1.38):
 * consumers written before 1.38 are `unknown`; `consumerType` `all` sums
 * every type under `all`, `unknown` keeps only the untyped ones.
 */
export async function projectUsagesByType(svc: PlacementService, projectId: string, userId?: string, consumerType?: string): Promise<Record<string, Record<string, number>>> {
  let base = consumersOf(svc, projectId, userId);
  if (consumerType === 'unknown') base = base.where('c.consumer_type', 'is', null);
  else if (consumerType !== undefined && consumerType !== 'all') base = base.where('c.consumer_type', '=', consumerType);
  const merged = consumerType === 'all' || consumerType === 'unknown';
  const typeOf = (value: string | null): string => (merged ? (consumerType ?? 'all') : (value ?? 'unknown'));
  const sums = await base
    .select(['c.consumer_type', 'a.resource_class_id'])
    .select((eb) => eb.fn.sum<number | string>('a.used').as('used'))
    .groupBy(['c.consumer_type', 'a.resource_class_id'])
    .execute();
  const counts = await base
    .select('c.consumer_type')
    .select(sql<number | string>`COUNT(DISTINCT a.consumer_uuid)`.as('consumers'))
    .groupBy('c.consumer_type')
    .execute();
  const out: Record<string, Record<string, number>> = {};
  for (const row of sums) {
    const entry = (out[typeOf(row.consumer_type)] ??= {});
    const name = await svc.resourceClasses.name(row.resource_class_id);
    entry[name] = (entry[name] ?? 0) + num(row.used);
  }
  for (const row of counts) {
    const entry = (out[typeOf(row.consumer_type)] ??= {});
    entry.consumer_count = (entry.consumer_count ?? 0) + num(row.consumers);
  }
  return out;
}
