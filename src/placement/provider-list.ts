import { sql, type Kysely } from 'kysely';
import type { PlacementSchema } from './db/schema.js';
import { badRequest } from './errors.js';
import type { PlacementService } from './placement.js';
import { selectProviders, toProvider, type Provider } from './providers.js';
import type { AggregateFilter, TraitFilter } from './query-filters.js';

/** Filters of `GET /resource_providers`, all ANDed. */
export interface ProviderListFilter {
  name?: string;
  uuid?: string;
  /** A provider UUID: only providers of its tree (1.14). */
  inTree?: string;
  memberOf?: AggregateFilter;
  /** Amounts each provider must have room for, by class (1.4). */
  resources?: Map<string, number>;
  traits?: TraitFilter;
}

/**
 * Ids of providers with room for `amount` of a class: capacity
 * ((total - reserved) * allocation_ratio) not exceeded by what is used, and
 * the amount within min_unit, max_unit and step_size.
 */
export function providersWithCapacity(db: Kysely<PlacementSchema>, classId: number, amount: number) {
  const usage = db
    .selectFrom('allocations')
    .select('resource_provider_id')
    .select((eb) => eb.fn.sum<number>('used').as('used'))
    .where('resource_class_id', '=', classId)
    .groupBy('resource_provider_id')
    .as('u');
  return db
    .selectFrom('inventories as i')
    .leftJoin(usage, 'u.resource_provider_id', 'i.resource_provider_id')
    .select('i.resource_provider_id')
    .where('i.resource_class_id', '=', classId)
    .where(sql<boolean>`(i.total - i.reserved) * i.allocation_ratio >= COALESCE(u.used, 0) + ${amount}`)
    .where('i.min_unit', '<=', amount)
    .where('i.max_unit', '>=', amount)
    .where(sql<boolean>`${sql.lit(amount)} % i.step_size = 0`);
}

/** Ids of providers in at least one of the aggregates. */
function inAggregates(db: Kysely<PlacementSchema>, aggregates: string[]) {
  return db.selectFrom('resource_provider_aggregates').select('resource_provider_id').where('aggregate_uuid', 'in', aggregates);
}

/** Ids of providers with at least one of the traits. */
function withTraits(db: Kysely<PlacementSchema>, traitIds: number[]) {
  return db.selectFrom('resource_provider_traits').select('resource_provider_id').where('trait_id', 'in', traitIds);
}

/**
 * The providers matching every filter, by id. 400 for an unknown resource
 * class or trait; an unknown `in_tree` provider matches nothing.
 */
export async function listProviders(svc: PlacementService, filter: ProviderListFilter): Promise<Provider[]> {
  const db = svc.db;
  let query = selectProviders(db);
  if (filter.name !== undefined) query = query.where('rp.name', '=', filter.name);
  if (filter.uuid !== undefined) query = query.where('rp.uuid', '=', filter.uuid);
  if (filter.inTree !== undefined) {
    const tree = await db.selectFrom('resource_providers').select('root_provider_id').where('uuid', '=', filter.inTree).executeTakeFirst();
    if (!tree || tree.root_provider_id === null) return [];
    query = query.where('rp.root_provider_id', '=', tree.root_provider_id);
  }
  if (filter.traits) {
    const names = [...new Set([...filter.traits.required.flat(), ...filter.traits.forbidden])];
    const { ids, missing } = await svc.traits.ids(names);
    if (missing.length > 0) throw badRequest(`Invalid trait(s) in "required" parameter: No such trait(s): ${missing.join(', ')}.`);
    for (const any of filter.traits.required) {
      query = query.where('rp.id', 'in', withTraits(db, any.map((t) => ids.get(t) ?? -1)));
    }
    if (filter.traits.forbidden.size > 0) {
      query = query.where('rp.id', 'not in', withTraits(db, [...filter.traits.forbidden].map((t) => ids.get(t) ?? -1)));
    }
  }
  if (filter.memberOf) {
    for (const any of filter.memberOf.required) query = query.where('rp.id', 'in', inAggregates(db, any));
    if (filter.memberOf.forbidden.size > 0) query = query.where('rp.id', 'not in', inAggregates(db, [...filter.memberOf.forbidden]));
  }
  if (filter.resources) {
    for (const [name, amount] of filter.resources) {
      const classId = await svc.resourceClasses.id(name);
      if (classId === undefined) throw badRequest(`Invalid resource class in resources parameter: No such resource class ${name}.`);
      query = query.where('rp.id', 'in', providersWithCapacity(db, classId, amount));
    }
  }
  const rows = await query.orderBy('rp.id').execute();
  return rows.map(toProvider);
}
