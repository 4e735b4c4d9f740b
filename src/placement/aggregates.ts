import { concurrentUpdate } from './errors.js';
import type { PlacementService } from './placement.js';
import { bumpGeneration, requireProvider } from './providers.js';

/** The aggregate UUIDs a provider is in, sorted. */
export async function providerAggregates(svc: PlacementService, providerId: number): Promise<string[]> {
  const rows = await svc.db.selectFrom('resource_provider_aggregates').select('aggregate_uuid').where('resource_provider_id', '=', providerId).orderBy('aggregate_uuid').execute();
  return rows.map((r) => r.aggregate_uuid);
}

/**
 * Replaces the aggregates of a provider. With a `generation` (1.19) it must
 * match (409 `placement.concurrent_update`) and it is bumped; without one
 * (1.1 to 1.18) the generation stays. Returns the generation afterwards.
 */
export async function setProviderAggregates(svc: PlacementService, uuid: string, aggregates: string[], generation: number | undefined): Promise<number> {
  return svc.db.transaction().execute(async (trx) => {
    const provider = await requireProvider(trx, uuid);
    let result = provider.generation;
    if (generation !== undefined) {
      if (provider.generation !== generation || !(await bumpGeneration(trx, provider.id, generation))) {
        throw concurrentUpdate("Resource provider's generation already changed. Please update the generation and try again.");
      }
      result = generation + 1;
    }
    const existing = new Set((await trx.selectFrom('resource_provider_aggregates').select('aggregate_uuid').where('resource_provider_id', '=', provider.id).execute()).map((r) => r.aggregate_uuid));
    const wanted = new Set(aggregates);
    const toDelete = [...existing].filter((a) => !wanted.has(a));
    const toAdd = [...wanted].filter((a) => !existing.has(a));
    if (toDelete.length > 0) await trx.deleteFrom('resource_provider_aggregates').where('resource_provider_id', '=', provider.id).where('aggregate_uuid', 'in', toDelete).execute();
    if (toAdd.length > 0) await trx.insertInto('resource_provider_aggregates').values(toAdd.map((aggregate_uuid) => ({ resource_provider_id: provider.id, aggregate_uuid }))).execute();
    return result;
  });
}
