import { sql, type Kysely, type Transaction } from 'kysely';
import { isUniqueViolation } from '../core/db/database.js';
import type { PlacementSchema } from './db/schema.js';
import { ErrorCode, badRequest, conflict, notFound } from './errors.js';
import { isoNow, type PlacementService } from './placement.js';

type Db = Kysely<PlacementSchema> | Transaction<PlacementSchema>;

/** A resource provider with the UUIDs of its root and parent. */
export interface Provider {
  id: number;
  uuid: string;
  name: string;
  generation: number;
  root_provider_id: number;
  parent_provider_id: number | null;
  root_provider_uuid: string;
  parent_provider_uuid: string | null;
  created_at: string;
  updated_at: string;
}

/** The select of providers with their root and parent UUIDs (`rp`, `root`, `parent`). */
export function selectProviders(db: Db) {
  return db
    .selectFrom('resource_providers as rp')
    .leftJoin('resource_providers as root', 'root.id', 'rp.root_provider_id')
    .leftJoin('resource_providers as parent', 'parent.id', 'rp.parent_provider_id')
    .select([
      'rp.id',
      'rp.uuid',
      'rp.name',
      'rp.generation',
      'rp.root_provider_id',
      'rp.parent_provider_id',
      'root.uuid as root_provider_uuid',
      'parent.uuid as parent_provider_uuid',
      'rp.created_at',
      'rp.updated_at',
    ]);
}

type SelectedProvider = Awaited<ReturnType<ReturnType<typeof selectProviders>['execute']>>[number];

/** A row of {@link selectProviders} as a Provider. */
export function toProvider(row: SelectedProvider): Provider {
  return {
    ...row,
    root_provider_id: row.root_provider_id ?? row.id,
    root_provider_uuid: row.root_provider_uuid ?? row.uuid,
    parent_provider_uuid: row.parent_provider_uuid ?? null,
  };
}

/** A provider by UUID, or undefined. */
export async function findProvider(db: Db, uuid: string): Promise<Provider | undefined> {
  const row = await selectProviders(db).where('rp.uuid', '=', uuid).executeTakeFirst();
  return row ? toProvider(row) : undefined;
}

/** A provider by UUID; 404 `No resource provider with uuid <uuid> found` (or `message`). */
export async function requireProvider(db: Db, uuid: string, message?: string): Promise<Provider> {
  const provider = await findProvider(db, uuid);
  if (!provider) throw notFound(message ?? `No resource provider with uuid ${uuid} found`);
  return provider;
}

/**
 * Bumps a provider's generation if it still is `expected`; false when
 * another writer got there first (nothing changed then). On PostgreSQL the
 * row stays locked until the transaction ends, which serialises writers.
 */
export async function bumpGeneration(trx: Db, providerId: number, expected: number, now = isoNow()): Promise<boolean> {
  const result = await trx
    .updateTable('resource_providers')
    .set({ generation: expected + 1, updated_at: now })
    .where('id', '=', providerId)
    .where('generation', '=', expected)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

async function insertProviderRow(svc: PlacementService, trx: Db, values: { uuid: string; name: string; root_provider_id: number | null; parent_provider_id: number | null }): Promise<number> {
  const now = isoNow();
  const row = { ...values, generation: 0, created_at: now, updated_at: now };
  if (svc.dialect === 'mysql') {
    const result = await trx.insertInto('resource_providers').values(row).executeTakeFirst();
    return Number(result.insertId);
  }
  const inserted = await trx.insertInto('resource_providers').values(row).returning('id').executeTakeFirstOrThrow();
  return inserted.id;
}

async function duplicates(db: Db, uuid: string, name: string): Promise<string[]> {
  const rows = await db.selectFrom('resource_providers').select(['uuid', 'name']).where((eb) => eb.or([eb('uuid', '=', uuid), eb('name', '=', name)])).execute();
  const found: string[] = [];
  if (rows.some((r) => r.uuid === uuid)) found.push(`uuid: ${uuid}`);
  if (rows.some((r) => r.name === name)) found.push(`name: ${name}`);
  return found;
}

/**
 * Creates a provider (generation 0), under `parentUuid` when given: 409
 * `placement.duplicate_name` when the UUID or the name is taken, 400 when
 * the parent is itself or does not exist.
 */
export async function createProvider(svc: PlacementService, input: { uuid: string; name: string; parentUuid: string | null }): Promise<Provider> {
  const failure = (reason: string): Error => badRequest(`Unable to create resource provider "${input.name}", ${input.uuid}: Object action create failed because: ${reason}`);
  try {
    return await svc.db.transaction().execute(async (trx) => {
      const dup = await duplicates(trx, input.uuid, input.name);
      if (dup.length > 0) throw conflict(`Conflicting resource provider ${dup.join(', ')} already exists.`, ErrorCode.DUPLICATE_NAME);
      let rootId: number | null = null;
      let parentId: number | null = null;
      if (input.parentUuid !== null) {
        if (input.parentUuid === input.uuid) throw failure('parent provider UUID cannot be same as UUID. Please set parent provider UUID to None if there is no parent.');
        const parent = await findProvider(trx, input.parentUuid);
        if (!parent) throw failure('parent provider UUID does not exist.');
        rootId = parent.root_provider_id;
        parentId = parent.id;
      }
      const id = await insertProviderRow(svc, trx, { uuid: input.uuid, name: input.name, root_provider_id: rootId, parent_provider_id: parentId });
      if (rootId === null) await trx.updateTable('resource_providers').set({ root_provider_id: id }).where('id', '=', id).execute();
      return requireProvider(trx, input.uuid);
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const dup = await duplicates(svc.db, input.uuid, input.name);
    throw conflict(`Conflicting resource provider ${dup.join(', ') || `name: ${input.name}`} already exists.`, ErrorCode.DUPLICATE_NAME);
  }
}

/** The ids of a provider and all its descendants. */
async function subtreeIds(trx: Db, provider: Provider): Promise<Set<number>> {
  const tree = await trx.selectFrom('resource_providers').select(['id', 'parent_provider_id']).where('root_provider_id', '=', provider.root_provider_id).execute();
  const children = new Map<number, number[]>();
  for (const row of tree) {
    if (row.parent_provider_id === null) continue;
    const list = children.get(row.parent_provider_id) ?? [];
    list.push(row.id);
    children.set(row.parent_provider_id, list);
  }
  const out = new Set<number>();
  const stack = [provider.id];
  for (let id = stack.pop(); id !== undefined; id = stack.pop()) {
    out.add(id);
    stack.push(...(children.get(id) ?? []));
  }
  return out;
}

/**
 * Renames a provider and, when `parentUuid` is given (1.14+), sets its
 * parent: a first parent always, another parent or none only when
 * `allowReparenting` (1.37), never one of its own descendants. The provider's
 * subtree follows it to its new root. Does not change the generation.
 */
export async function updateProvider(svc: PlacementService, uuid: string, input: { name: string; parentUuid?: string | null }, allowReparenting: boolean): Promise<Provider> {
  const failure = (action: string, reason: string): Error => badRequest(`Unable to save resource provider ${uuid}: Object action ${action} failed because: ${reason}`);
  try {
    return await svc.db.transaction().execute(async (trx) => {
      const current = await requireProvider(trx, uuid);
      const now = isoNow();
      let move: { parentId: number | null; rootId: number } | null = null;
      if (input.parentUuid !== undefined) {
        if (input.parentUuid !== null) {
          const parent = await findProvider(trx, input.parentUuid);
          if (!parent) throw failure('create', 'parent provider UUID does not exist.');
          if (current.parent_provider_id !== null && current.parent_provider_id !== parent.id && !allowReparenting) {
            throw failure('update', 're-parenting a provider is not currently allowed.');
          }
          if ((await subtreeIds(trx, current)).has(parent.id)) throw failure('update', 'creating loop in the provider tree is not allowed.');
          move = { parentId: parent.id, rootId: parent.root_provider_id };
        } else if (current.parent_provider_id !== null) {
          if (!allowReparenting) throw failure('update', 'un-parenting a provider is not currently allowed.');
          move = { parentId: null, rootId: current.id };
        }
      }
      await trx.updateTable('resource_providers').set({ name: input.name, updated_at: now }).where('id', '=', current.id).execute();
      if (move) {
        const subtree = [...(await subtreeIds(trx, current))];
        await trx.updateTable('resource_providers').set({ parent_provider_id: move.parentId }).where('id', '=', current.id).execute();
        await trx.updateTable('resource_providers').set({ root_provider_id: move.rootId }).where('id', 'in', subtree).execute();
      }
      return requireProvider(trx, uuid);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`Conflicting resource provider ${input.name} already exists.`, ErrorCode.DUPLICATE_NAME);
    throw err;
  }
}

/**
 * Deletes a provider with its inventories, traits and aggregate links: 404
 * when unknown, 409 when it has children or allocations.
 */
export async function deleteProvider(svc: PlacementService, uuid: string): Promise<void> {
  await svc.db.transaction().execute(async (trx) => {
    const provider = await findProvider(trx, uuid);
    // Bumping the generation locks the row: allocation writers racing with us retry and find it gone.
    const locked = provider ? await trx.updateTable('resource_providers').set({ generation: sql`generation + 1` }).where('id', '=', provider.id).executeTakeFirst() : null;
    if (!provider || Number(locked?.numUpdatedRows ?? 0) !== 1) throw notFound(`No resource provider with uuid ${uuid} found for delete`);
    const child = await trx.selectFrom('resource_providers').select('id').where('parent_provider_id', '=', provider.id).limit(1).executeTakeFirst();
    if (child) throw conflict(`Unable to delete parent resource provider ${uuid}: It has child resource providers.`, ErrorCode.PROVIDER_CANNOT_DELETE_PARENT);
    const allocation = await trx.selectFrom('allocations').select('consumer_uuid').where('resource_provider_id', '=', provider.id).limit(1).executeTakeFirst();
    if (allocation) throw conflict(`Unable to delete resource provider ${uuid}: Resource provider has allocations.`, ErrorCode.PROVIDER_IN_USE);
    await trx.deleteFrom('inventories').where('resource_provider_id', '=', provider.id).execute();
    await trx.deleteFrom('resource_provider_aggregates').where('resource_provider_id', '=', provider.id).execute();
    await trx.deleteFrom('resource_provider_traits').where('resource_provider_id', '=', provider.id).execute();
    await trx.deleteFrom('resource_providers').where('id', '=', provider.id).execute();
  });
}
