import { sql, type Kysely } from 'kysely';
import { isUniqueViolation } from '../core/db/database.js';
import type { PlacementSchema } from './db/schema.js';
import { badRequest, concurrentUpdate, conflict, notFound } from './errors.js';
import { isoNow, type PlacementService } from './placement.js';
import { bumpGeneration, requireProvider } from './providers.js';
import { STANDARD_TRAITS } from './standard-traits.js';

/** A trait as stored. */
export interface Trait {
  id: number;
  name: string;
  created_at: string;
  updated_at: string;
}

const STANDARD = new Set(STANDARD_TRAITS);

/** True for a trait of os-traits (which cannot be deleted). */
export function isStandardTrait(name: string): boolean {
  return STANDARD.has(name);
}

/** Inserts the standard traits the table lacks. Idempotent; safe when several processes start at once. */
export async function syncStandardTraits(db: Kysely<PlacementSchema>): Promise<void> {
  const have = new Set((await db.selectFrom('traits').select('name').execute()).map((r) => r.name));
  const missing = STANDARD_TRAITS.filter((name) => !have.has(name));
  if (missing.length === 0) return;
  const now = isoNow();
  try {
    await db
      .insertInto('traits')
      .values(missing.map((name) => ({ name, created_at: now, updated_at: now })))
      .execute();
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    // Another process is syncing too: insert one by one, skipping what it added.
    for (const name of missing) {
      try {
        await db.insertInto('traits').values({ name, created_at: now, updated_at: now }).execute();
      } catch (inner) {
        if (!isUniqueViolation(inner)) throw inner;
      }
    }
  }
}

/** Filters of `GET /traits`. */
export interface TraitListFilter {
  nameIn?: string[];
  prefix?: string;
  /** true: only traits some provider has; false: only traits no provider has. */
  associated?: boolean;
}

/** Traits by name, filtered. */
export async function listTraits(svc: PlacementService, filter: TraitListFilter = {}): Promise<Trait[]> {
  let query = svc.db.selectFrom('traits').selectAll();
  if (filter.nameIn) {
    if (filter.nameIn.length === 0) return [];
    query = query.where('name', 'in', filter.nameIn);
  }
  if (filter.prefix !== undefined) {
    const escaped = filter.prefix.replace(/[\\%_]/g, (c) => `\\${c}`);
    query = query.where(sql<boolean>`name LIKE ${`${escaped}%`} ESCAPE '\\'`);
  }
  if (filter.associated !== undefined) {
    const sub = svc.db.selectFrom('resource_provider_traits').select('trait_id');
    query = query.where('id', filter.associated ? 'in' : 'not in', sub);
  }
  return query.orderBy('name').execute();
}

/** One trait; 404 `No such trait(s): <name>.` */
export async function getTrait(svc: PlacementService, name: string): Promise<Trait> {
  const row = await svc.db.selectFrom('traits').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw notFound(`No such trait(s): ${name}.`);
  return row;
}

/** Creates a custom trait unless it exists; true when it created it. Idempotent. */
export async function ensureTrait(svc: PlacementService, name: string): Promise<{ created: boolean; row: Trait }> {
  const existing = await svc.db.selectFrom('traits').selectAll().where('name', '=', name).executeTakeFirst();
  if (existing) return { created: false, row: existing };
  const now = isoNow();
  try {
    await svc.db.insertInto('traits').values({ name, created_at: now, updated_at: now }).execute();
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    return { created: false, row: await getTrait(svc, name) };
  }
  const row = await getTrait(svc, name);
  svc.traits.remember(row.id, name);
  return { created: true, row };
}

/** Deletes a custom trait no provider has. */
export async function deleteTrait(svc: PlacementService, name: string): Promise<void> {
  const row = await getTrait(svc, name);
  if (isStandardTrait(name)) throw badRequest(`Cannot delete standard trait ${name}.`);
  await svc.db.transaction().execute(async (trx) => {
    const used = await trx.selectFrom('resource_provider_traits').select('resource_provider_id').where('trait_id', '=', row.id).limit(1).executeTakeFirst();
    if (used) throw conflict(`The trait ${name} is in use by a resource provider.`);
    await trx.deleteFrom('traits').where('id', '=', row.id).execute();
  });
  svc.traits.forget(name);
}

/** The trait names of a provider, sorted. */
export async function providerTraits(svc: PlacementService, providerId: number): Promise<string[]> {
  const rows = await svc.db
    .selectFrom('resource_provider_traits as rpt')
    .innerJoin('traits as t', 't.id', 'rpt.trait_id')
    .select('t.name')
    .where('rpt.resource_provider_id', '=', providerId)
    .orderBy('t.name')
    .execute();
  return rows.map((r) => r.name);
}

/** Trait ids of names; 400 `No such trait <names>` when some do not exist. */
export async function traitIdsOrFail(svc: PlacementService, names: string[], message: (missing: string[]) => string): Promise<Map<string, number>> {
  const { ids, missing } = await svc.traits.ids(names);
  if (missing.length > 0) throw badRequest(message(missing));
  return ids;
}

/**
 * Replaces a provider's traits if its generation still is `generation`
 * (409 `placement.concurrent_update` otherwise; null skips the check, for
 * DELETE). Unknown traits are 400. The generation moves only when the set
 * changes. Returns the provider's generation afterwards.
 */
export async function setProviderTraits(svc: PlacementService, uuid: string, generation: number | null, names: string[]): Promise<number> {
  const ids = await traitIdsOrFail(svc, names, (missing) => `No such trait ${missing.join(', ')}`);
  return svc.db.transaction().execute(async (trx) => {
    const provider = await requireProvider(trx, uuid);
    const expected = generation ?? provider.generation;
    if (provider.generation !== expected) throw concurrentUpdate("Resource provider's generation already changed. Please update the generation and try again.");
    const existing = new Set((await trx.selectFrom('resource_provider_traits').select('trait_id').where('resource_provider_id', '=', provider.id).execute()).map((r) => r.trait_id));
    const wanted = new Set(ids.values());
    const toAdd = [...wanted].filter((id) => !existing.has(id));
    const toDelete = [...existing].filter((id) => !wanted.has(id));
    if (toAdd.length === 0 && toDelete.length === 0) return expected;
    if (!(await bumpGeneration(trx, provider.id, expected))) throw concurrentUpdate("Resource provider's generation already changed. Please update the generation and try again.");
    if (toDelete.length > 0) await trx.deleteFrom('resource_provider_traits').where('resource_provider_id', '=', provider.id).where('trait_id', 'in', toDelete).execute();
    if (toAdd.length > 0) await trx.insertInto('resource_provider_traits').values(toAdd.map((trait_id) => ({ resource_provider_id: provider.id, trait_id }))).execute();
    return expected + 1;
  });
}
