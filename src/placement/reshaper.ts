import { sql } from 'kysely';
import { writeAllocationsIn, withAllocationRetries, type AllocationRequest } from './allocations.js';
import { ErrorCode, badRequest, concurrentUpdate } from './errors.js';
import { checkInventoryCapacity, replaceInventoryIn, type InventoryFields } from './inventories.js';
import type { PlacementService } from './placement.js';
import { bumpGeneration, findProvider } from './providers.js';

/** The new inventory of one provider in a reshape, with the generation the caller saw. */
export interface ReshapeInventory {
  uuid: string;
  generation: number;
  inventories: Map<string, InventoryFields>;
}

/**
 * `POST /reshaper` (1.30): in one transaction, replaces the inventories of
 * the providers named and the allocations of the consumers named, so that
 * inventory can move (with its allocations) from a provider to another, e.g.
 * from a host to its new child. The consumers' allocations are removed
 * first, then each provider's inventory is set (a class that other
 * consumers still use cannot go: 409 `placement.inventory.inuse`), then the
 * new allocations are written against the new inventory (409 when they do
 * not fit). Stale generations, provider or consumer, are 409
 * `placement.concurrent_update`; all or nothing.
 */
export async function reshape(svc: PlacementService, inventories: ReshapeInventory[], allocations: AllocationRequest[], minor: number): Promise<void> {
  for (const entry of inventories) {
    const provider = await findProvider(svc.db, entry.uuid);
    if (!provider) {
      throw badRequest(`Resource provider ${entry.uuid} in inventories not found: No resource provider with uuid ${entry.uuid} found`, ErrorCode.RESOURCE_PROVIDER_NOT_FOUND);
    }
    if (provider.generation !== entry.generation) {
      throw concurrentUpdate(`resource provider generation conflict for provider ${entry.uuid}: actual: ${provider.generation}, given: ${entry.generation}`);
    }
    for (const [name, inv] of entry.inventories) checkInventoryCapacity(minor, entry.uuid, name, inv, `Bad inventory ${name} for resource provider ${entry.uuid}`);
  }
  const names = new Set([...inventories.flatMap((e) => [...e.inventories.keys()]), ...allocations.flatMap((r) => [...r.allocations.values()].flatMap((m) => [...m.keys()]))]);
  const { ids, missing } = await svc.resourceClasses.ids(names);
  if (missing.length > 0) throw badRequest(`malformed reshaper data: No such resource class ${missing[0]}.`);
  const consumers = allocations.map((r) => r.consumer);

  await withAllocationRetries(svc, async (trx) => {
    for (const entry of inventories) {
      const provider = await findProvider(trx, entry.uuid);
      if (!provider || provider.generation !== entry.generation || !(await bumpGeneration(trx, provider.id, entry.generation))) {
        throw concurrentUpdate(`update conflict: Another thread concurrently updated the resource provider data. Please retry your update`);
      }
    }
    // The consumers' current allocations go first, so that their inventory may move; the providers they leave get a new generation.
    if (consumers.length > 0) {
      const left = await trx.selectFrom('allocations').select('resource_provider_id').distinct().where('consumer_uuid', 'in', consumers).execute();
      await trx.deleteFrom('allocations').where('consumer_uuid', 'in', consumers).execute();
      for (const id of left.map((r) => r.resource_provider_id).sort((a, b) => a - b)) {
        await trx.updateTable('resource_providers').set({ generation: sql`generation + 1` }).where('id', '=', id).execute();
      }
    }
    for (const entry of inventories) {
      const provider = await findProvider(trx, entry.uuid);
      if (provider) await replaceInventoryIn(svc, trx, provider, entry.inventories, ids, 'update conflict: ');
    }
    if (allocations.length > 0) await writeAllocationsIn(trx, allocations, ids, [], {});
  });
}
