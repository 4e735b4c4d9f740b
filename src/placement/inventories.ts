import type { Transaction } from 'kysely';
import { isUniqueViolation } from '../core/db/database.js';
import type { InventoryRow, PlacementSchema } from './db/schema.js';
import { ErrorCode, badRequest, concurrentUpdate, conflict, notFound } from './errors.js';
import { MAX_INT, isoNow, num, type PlacementService } from './placement.js';
import { bumpGeneration, requireProvider, type Provider } from './providers.js';

/** What a caller sets of an inventory record. */
export interface InventoryFields {
  total: number;
  reserved: number;
  min_unit: number;
  max_unit: number;
  step_size: number;
  allocation_ratio: number;
}

/** An inventory record of a provider. */
export interface Inventory extends InventoryFields {
  resource_class: string;
  created_at: string;
  updated_at: string;
}

/** Placement's defaults for the fields a caller leaves out (only `total` is required). */
export const INVENTORY_DEFAULTS: Omit<InventoryFields, 'total'> = { reserved: 0, min_unit: 1, max_unit: MAX_INT, step_size: 1, allocation_ratio: 1.0 };

/** What can be allocated of an inventory: (total - reserved) * allocation_ratio, rounded down. */
export function capacityOf(inv: Pick<InventoryFields, 'total' | 'reserved' | 'allocation_ratio'>): number {
  return Math.floor((inv.total - inv.reserved) * inv.allocation_ratio);
}

/** A transaction on the placement database. */
export type Trx = Transaction<PlacementSchema>;

/** The provider's inventory records, by class name. */
export async function providerInventories(svc: PlacementService, providerId: number, db: Trx | PlacementService['db'] = svc.db): Promise<Inventory[]> {
  const rows = await db.selectFrom('inventories').selectAll().where('resource_provider_id', '=', providerId).orderBy('resource_class_id').execute();
  const out: Inventory[] = [];
  for (const row of rows) out.push(await toInventory(svc, row));
  return out;
}

async function toInventory(svc: PlacementService, row: InventoryRow): Promise<Inventory> {
  return {
    resource_class: await svc.resourceClasses.name(row.resource_class_id),
    total: row.total,
    reserved: row.reserved,
    min_unit: row.min_unit,
    max_unit: row.max_unit,
    step_size: row.step_size,
    allocation_ratio: num(row.allocation_ratio),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/**
 * 400 unless the inventory leaves something to allocate: reserved below total
 * (up to 1.25), or at most total (from 1.26).
 */
export function checkInventoryCapacity(minor: number, providerUuid: string, resourceClass: string, inv: InventoryFields, prefix: string): void {
  const capacity = capacityOf(inv);
  if (minor < 26 ? capacity <= 0 : capacity < 0) {
    const reason = minor < 26 ? 'greater than or equal to total' : 'greater than total';
    throw badRequest(`${prefix}: Invalid inventory for '${resourceClass}' on resource provider '${providerUuid}'. The reserved value is ${reason}.`);
  }
}

/**
 * Class ids of names, resolved before a transaction opens (a cache miss
 * reads the database, which on SQLite must not happen inside one); `check`
 * throws `onMissing` for the first unknown name, at the point the caller
 * chooses.
 */
async function resolveClasses(svc: PlacementService, names: string[]): Promise<{ ids: Map<string, number>; check: (onMissing: (name: string) => Error) => void }> {
  const { ids, missing } = await svc.resourceClasses.ids(names);
  return {
    ids,
    check: (onMissing) => {
      const first = missing[0];
      if (first !== undefined) throw onMissing(first);
    },
  };
}

/** Names of class ids, read through the transaction. */
async function classNames(trx: Trx, ids: number[]): Promise<string> {
  const rows = await trx.selectFrom('resource_classes').select('name').where('id', 'in', ids).orderBy('id').execute();
  return rows.map((r) => r.name).join(', ');
}

async function usedByClass(trx: Trx, providerId: number, classIds: number[]): Promise<Map<number, number>> {
  if (classIds.length === 0) return new Map();
  const rows = await trx
    .selectFrom('allocations')
    .select('resource_class_id')
    .select((eb) => eb.fn.sum<number>('used').as('used'))
    .where('resource_provider_id', '=', providerId)
    .where('resource_class_id', 'in', classIds)
    .groupBy('resource_class_id')
    .execute();
  return new Map(rows.map((r) => [r.resource_class_id, num(r.used)]));
}

function warnOverCapacity(svc: PlacementService, provider: Provider, name: string, inv: InventoryFields, used: number | undefined): void {
  if (used !== undefined && used > capacityOf(inv)) {
    svc.log.warn({ resource_provider: provider.uuid, resource_class: name, used, capacity: capacityOf(inv) }, 'resource provider is now over capacity');
  }
}

/**
 * Replaces all of a provider's inventory if its generation still is
 * `generation` (409 `placement.concurrent_update` otherwise), and bumps it.
 * Removing a class that has allocations is 409 `placement.inventory.inuse`;
 * shrinking below what is allocated is allowed (placement only warns), so
 * that a host whose allocation ratio or reservation changed keeps reporting.
 * All or nothing. Returns the new generation.
 */
export async function setInventories(svc: PlacementService, uuid: string, generation: number, inventories: Map<string, InventoryFields>, minor: number): Promise<number> {
  const { ids, check } = await resolveClasses(svc, [...inventories.keys()]);
  return svc.db.transaction().execute(async (trx) => {
    const provider = await requireProvider(trx, uuid);
    if (provider.generation !== generation || !(await bumpGeneration(trx, provider.id, generation))) throw concurrentUpdate('resource provider generation conflict');
    for (const [name, inv] of inventories) checkInventoryCapacity(minor, uuid, name, inv, `Unable to update inventory for resource provider ${uuid}`);
    check((name) => badRequest(`Unknown resource class in inventory for resource provider ${uuid}: No such resource class ${name}.`));
    await replaceInventoryIn(svc, trx, provider, inventories, ids, 'update conflict: ');
    return generation + 1;
  });
}

/**
 * Inside a transaction that already holds the provider's generation:
 * replaces its inventory records with `inventories` (class ids in `ids`).
 * 409 `placement.inventory.inuse` (detail after `prefix`) when a class to
 * remove still has allocations.
 */
export async function replaceInventoryIn(svc: PlacementService, trx: Trx, provider: Provider, inventories: Map<string, InventoryFields>, ids: Map<string, number>, prefix: string): Promise<void> {
  const existing = await trx.selectFrom('inventories').select('resource_class_id').where('resource_provider_id', '=', provider.id).execute();
  const wanted = new Set([...inventories.keys()].map((name) => ids.get(name) ?? -1));
  const toDelete = existing.map((r) => r.resource_class_id).filter((id) => !wanted.has(id));
  const have = new Set(existing.map((r) => r.resource_class_id));
  if (toDelete.length > 0) {
    const inUse = [...(await usedByClass(trx, provider.id, toDelete)).keys()];
    if (inUse.length > 0) {
      throw conflict(`${prefix}Inventory for '${await classNames(trx, inUse)}' on resource provider '${provider.uuid}' in use.`, ErrorCode.INVENTORY_INUSE);
    }
    await trx.deleteFrom('inventories').where('resource_provider_id', '=', provider.id).where('resource_class_id', 'in', toDelete).execute();
  }
  const used = await usedByClass(trx, provider.id, [...wanted]);
  const now = isoNow();
  for (const [name, inv] of inventories) {
    const classId = ids.get(name) ?? -1;
    if (have.has(classId)) {
      await trx.updateTable('inventories').set({ ...inv, updated_at: now }).where('resource_provider_id', '=', provider.id).where('resource_class_id', '=', classId).execute();
      warnOverCapacity(svc, provider, name, inv, used.get(classId));
    } else {
      await trx.insertInto('inventories').values({ ...inv, resource_provider_id: provider.id, resource_class_id: classId, created_at: now, updated_at: now }).execute();
    }
  }
}

/**
 * Deletes all of a provider's inventory (1.5), guarded by the generation read
 * now; 409 `placement.inventory.inuse` when some class has allocations.
 */
export async function deleteAllInventories(svc: PlacementService, uuid: string): Promise<void> {
  await svc.db.transaction().execute(async (trx) => {
    const provider = await requireProvider(trx, uuid);
    if (!(await bumpGeneration(trx, provider.id, provider.generation))) {
      throw concurrentUpdate(`Unable to delete inventory for resource provider ${uuid} because the inventory was updated by another process. Please retry your request.`);
    }
    const existing = (await trx.selectFrom('inventories').select('resource_class_id').where('resource_provider_id', '=', provider.id).execute()).map((r) => r.resource_class_id);
    const inUse = [...(await usedByClass(trx, provider.id, existing)).keys()];
    if (inUse.length > 0) {
      throw conflict(`Inventory for '${await classNames(trx, inUse)}' on resource provider '${uuid}' in use.`, ErrorCode.INVENTORY_INUSE);
    }
    await trx.deleteFrom('inventories').where('resource_provider_id', '=', provider.id).execute();
  });
}

/** Adds one inventory record (POST); 409 when the class is already there. Returns the new generation. */
export async function addInventory(svc: PlacementService, uuid: string, name: string, inv: InventoryFields, minor: number): Promise<number> {
  const prefix = `Unable to create inventory for resource provider ${uuid}`;
  const { ids, check } = await resolveClasses(svc, [name]);
  try {
    return await svc.db.transaction().execute(async (trx) => {
      const provider = await requireProvider(trx, uuid);
      checkInventoryCapacity(minor, uuid, name, inv, prefix);
      check(() => badRequest(`${prefix}: No such resource class ${name}.`));
      const now = isoNow();
      await trx.insertInto('inventories').values({ ...inv, resource_provider_id: provider.id, resource_class_id: ids.get(name) ?? -1, created_at: now, updated_at: now }).execute();
      if (!(await bumpGeneration(trx, provider.id, provider.generation))) {
        throw concurrentUpdate('Update conflict: Another thread concurrently updated the resource provider data. Please retry your update');
      }
      return provider.generation + 1;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw concurrentUpdate(`Update conflict: Inventory for '${name}' on resource provider '${uuid}' already exists.`);
    throw err;
  }
}

/** Updates one existing inventory record (PUT) if the generation matches. Returns the new generation. */
export async function updateInventory(svc: PlacementService, uuid: string, name: string, generation: number, inv: InventoryFields, minor: number): Promise<number> {
  const { ids, check } = await resolveClasses(svc, [name]);
  return svc.db.transaction().execute(async (trx) => {
    const provider = await requireProvider(trx, uuid);
    if (provider.generation !== generation || !(await bumpGeneration(trx, provider.id, generation))) throw concurrentUpdate('resource provider generation conflict');
    checkInventoryCapacity(minor, uuid, name, inv, `Unable to update inventory for resource provider ${uuid}`);
    check(() => notFound(`No such resource class ${name}.`));
    const classId = ids.get(name) ?? -1;
    const result = await trx
      .updateTable('inventories')
      .set({ ...inv, updated_at: isoNow() })
      .where('resource_provider_id', '=', provider.id)
      .where('resource_class_id', '=', classId)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) {
      throw badRequest(`No inventory record with resource class for resource provider ${uuid}: No inventory of class ${name} found.`);
    }
    warnOverCapacity(svc, provider, name, inv, (await usedByClass(trx, provider.id, [classId])).get(classId));
    return generation + 1;
  });
}

/** Deletes one inventory record; 404 when absent, 409 when allocated. */
export async function deleteInventory(svc: PlacementService, uuid: string, name: string): Promise<void> {
  const prefix = `No inventory of class ${name} found for delete`;
  const { ids, check } = await resolveClasses(svc, [name]);
  await svc.db.transaction().execute(async (trx) => {
    const provider = await requireProvider(trx, uuid);
    check(() => notFound(`${prefix}: No such resource class ${name}.`));
    const classId = ids.get(name) ?? -1;
    if (!(await bumpGeneration(trx, provider.id, provider.generation))) {
      throw concurrentUpdate(`Unable to delete inventory of class ${name}: Another thread concurrently updated the resource provider data. Please retry your update`);
    }
    if ((await usedByClass(trx, provider.id, [classId])).size > 0) {
      throw conflict(`Unable to delete inventory of class ${name}: Inventory for '${name}' on resource provider '${uuid}' in use.`, ErrorCode.CONCURRENT_UPDATE);
    }
    const result = await trx.deleteFrom('inventories').where('resource_provider_id', '=', provider.id).where('resource_class_id', '=', classId).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw notFound(`${prefix}: ${prefix}`);
  });
}
