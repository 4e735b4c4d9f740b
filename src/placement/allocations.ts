import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Transaction } from 'kysely';
import { isUniqueViolation } from '../core/db/database.js';
import type { PlacementSchema } from './db/schema.js';
import { badRequest, concurrentUpdate, conflict, notFound } from './errors.js';
import { chunks, isoNow, num, type PlacementService } from './placement.js';

/** The project and user of consumers written before 1.8, which sent none (placement's `incomplete_consumer_*`). */
export const INCOMPLETE_CONSUMER_ID = '00000000-0000-0000-0000-000000000000';

/** One consumer's wanted allocations, as `PUT /allocations/{uuid}` or one entry of `POST /allocations` says. */
export interface AllocationRequest {
  consumer: string;
  projectId: string;
  userId: string;
  /** The consumer type to record (1.38); undefined leaves an existing consumer's type as it is. */
  consumerType?: string;
  /** The consumer generation the caller saw, null for a new consumer (1.28); undefined: not checked. */
  consumerGeneration?: number | null;
  /** Amounts by class, by provider UUID; empty removes the consumer's allocations. */
  allocations: Map<string, Map<string, number>>;
}

/** How errors name the request: `PUT /allocations/{uuid}` mentions the consumer. */
export interface AllocationWriteOptions {
  consumerInMessages?: string;
}

type Trx = Transaction<PlacementSchema>;

/** A provider generation moved under the transaction: run it again. */
class GenerationMoved extends Error {}

const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);

function isRetryable(err: unknown): boolean {
  if (err instanceof GenerationMoved || isUniqueViolation(err)) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE_SQLSTATES.has(code);
}

/**
 * Replaces the allocations of every consumer in `requests`, atomically, the
 * way placement does: in one transaction it removes the consumers' current
 * allocations, checks that each (provider, class) keeps used + wanted within
 * (total - reserved) * allocation_ratio and that each amount respects
 * min_unit, max_unit and step_size, writes the new allocations, and bumps the
 * generation of every provider touched with `generation = generation + 1
 * WHERE generation = <read>`. If a provider moved meanwhile (another claim
 * committed), the transaction rolls back and runs again, up to
 * `allocationRetries` times, then 409 `placement.concurrent_update`. So two
 * claims for the last unit can never both succeed, on SQLite or PostgreSQL.
 * A stale consumer generation is 409 `placement.concurrent_update` at once;
 * not enough room is 409 with placement's message.
 */
export async function replaceAllocations(svc: PlacementService, requests: AllocationRequest[], options: AllocationWriteOptions = {}): Promise<void> {
  // Class names are resolved outside the transaction: a cache miss reads the database.
  const classNames = [...new Set(requests.flatMap((r) => [...r.allocations.values()].flatMap((m) => [...m.keys()])))];
  const { ids: classIds, missing } = await svc.resourceClasses.ids(classNames);
  await withAllocationRetries(svc, (trx) => writeAllocationsIn(trx, requests, classIds, missing, options));
}

/**
 * Runs `write` in a transaction, again (up to `allocationRetries` times,
 * with a little jitter) when a provider generation moved under it or the
 * database reports a serialisation failure or deadlock; then 409
 * `placement.concurrent_update`. Other errors roll back and propagate.
 */
export async function withAllocationRetries(svc: PlacementService, write: (trx: Trx) => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await svc.db.transaction().execute(write);
      return;
    } catch (err) {
      if (!isRetryable(err)) throw err;
      if (attempt >= svc.allocationRetries) {
        svc.log.warn({ attempts: attempt }, 'exceeded retry limit on allocations write');
        throw concurrentUpdate('Inventory and/or allocations changed while attempting to allocate: Another thread concurrently updated the resource provider data. Please retry your update');
      }
      // Spread the retries of racing writers a little.
      await sleep(Math.random() * 4 * attempt);
    }
  }
}

/**
 * One attempt of {@link replaceAllocations} inside the caller's transaction
 * (the reshaper's too); throws a retryable error when a generation moved.
 */
export async function writeAllocationsIn(trx: Trx, requests: AllocationRequest[], classIds: Map<string, number>, missing: string[], options: AllocationWriteOptions): Promise<void> {
  const now = isoNow();
  const consumers = requests.map((r) => r.consumer);

  // Providers and classes named in the request.
  const providerUuids = [...new Set(requests.flatMap((r) => [...r.allocations.keys()]))];
  const providers = new Map<string, number>();
  for (const part of chunks(providerUuids)) {
    for (const row of await trx.selectFrom('resource_providers').select(['id', 'uuid']).where('uuid', 'in', part).execute()) providers.set(row.uuid, row.id);
  }
  for (const uuid of providerUuids) {
    if (!providers.has(uuid)) throw badRequest(`Allocation for resource provider '${uuid}' that does not exist.`);
  }
  if (missing.length > 0) {
    const where = options.consumerInMessages ? ` for consumer ${options.consumerInMessages}:` : '';
    throw badRequest(`Unable to allocate inventory${where} No such resource class ${missing[0]}.`);
  }

  // Consumers: check generations, create the new ones, record who they belong to.
  const existing = new Map((await trx.selectFrom('consumers').selectAll().where('uuid', 'in', consumers).execute()).map((c) => [c.uuid, c]));
  const generations = new Map<string, number>();
  for (const r of requests) {
    const current = existing.get(r.consumer);
    if (r.consumerGeneration !== undefined) {
      if (current && current.generation !== r.consumerGeneration) {
        throw concurrentUpdate(`consumer generation conflict - expected ${current.generation} but got ${r.consumerGeneration}`);
      }
      if (!current && r.consumerGeneration !== null) throw concurrentUpdate(`consumer generation conflict - expected null but got ${r.consumerGeneration}`);
    }
    if (current) {
      generations.set(r.consumer, current.generation);
      const type = r.consumerType ?? current.consumer_type;
      if (current.project_id !== r.projectId || current.user_id !== r.userId || current.consumer_type !== type) {
        await trx
          .updateTable('consumers')
          .set({ project_id: r.projectId, user_id: r.userId, consumer_type: type, updated_at: now })
          .where('uuid', '=', r.consumer)
          .where('generation', '=', current.generation)
          .execute();
      }
    } else {
      // A racing creator makes this a unique violation: the whole write runs again and sees its consumer.
      await trx
        .insertInto('consumers')
        .values({ uuid: r.consumer, project_id: r.projectId, user_id: r.userId, consumer_type: r.consumerType ?? null, generation: 0, created_at: now, updated_at: now })
        .execute();
      generations.set(r.consumer, 0);
    }
  }

  // Clean slate for these consumers; the providers they leave are touched too.
  const previous = await trx.selectFrom('allocations').select('resource_provider_id').distinct().where('consumer_uuid', 'in', consumers).execute();
  await trx.deleteFrom('allocations').where('consumer_uuid', 'in', consumers).execute();

  const wanted: { consumer: string; providerId: number; providerUuid: string; classId: number; className: string; used: number }[] = [];
  for (const r of requests) {
    for (const [providerUuid, resources] of r.allocations) {
      for (const [className, used] of resources) {
        wanted.push({ consumer: r.consumer, providerId: providers.get(providerUuid) ?? -1, providerUuid, classId: classIds.get(className) ?? -1, className, used });
      }
    }
  }
  const touched = [...new Set([...previous.map((p) => p.resource_provider_id), ...wanted.map((w) => w.providerId)])].sort((a, b) => a - b);

  // Generations first, then usage: a claim committing in between moves the generation, so we retry.
  const seen = new Map<number, number>();
  for (const part of chunks(touched)) {
    for (const row of await trx.selectFrom('resource_providers').select(['id', 'generation']).where('id', 'in', part).execute()) seen.set(row.id, row.generation);
  }
  if (wanted.length > 0) await checkCapacity(trx, wanted);

  for (const part of chunks(wanted, 200)) {
    await trx
      .insertInto('allocations')
      .values(part.map((w) => ({ consumer_uuid: w.consumer, resource_provider_id: w.providerId, resource_class_id: w.classId, used: w.used, created_at: now, updated_at: now })))
      .execute();
  }
  for (const id of touched) {
    const generation = seen.get(id);
    if (generation === undefined) throw new GenerationMoved();
    const result = await trx.updateTable('resource_providers').set({ generation: generation + 1 }).where('id', '=', id).where('generation', '=', generation).executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) throw new GenerationMoved();
  }
  for (const consumer of [...new Set(consumers)].sort()) {
    const generation = generations.get(consumer) ?? 0;
    const result = await trx.updateTable('consumers').set({ generation: generation + 1, updated_at: now }).where('uuid', '=', consumer).where('generation', '=', generation).executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) {
      throw concurrentUpdate('Inventory and/or allocations changed while attempting to allocate: Another thread concurrently updated the data. Please retry your update');
    }
  }
  const emptied = requests.filter((r) => r.allocations.size === 0).map((r) => r.consumer);
  if (emptied.length > 0) await trx.deleteFrom('consumers').where('uuid', 'in', emptied).execute();
}

/** Placement's 409 for an allocation that does not fit (capacity or inventory constraints). */
async function checkCapacity(trx: Trx, wanted: { providerId: number; providerUuid: string; classId: number; className: string; used: number }[]): Promise<void> {
  const providerIds = [...new Set(wanted.map((w) => w.providerId))];
  const classIds = [...new Set(wanted.map((w) => w.classId))];
  const usage = trx
    .selectFrom('allocations')
    .select(['resource_provider_id', 'resource_class_id'])
    .select((eb) => eb.fn.sum<number>('used').as('used'))
    .where('resource_provider_id', 'in', providerIds)
    .where('resource_class_id', 'in', classIds)
    .groupBy(['resource_provider_id', 'resource_class_id'])
    .as('u');
  const rows = await trx
    .selectFrom('inventories as i')
    .leftJoin(usage, (join) => join.onRef('u.resource_provider_id', '=', 'i.resource_provider_id').onRef('u.resource_class_id', '=', 'i.resource_class_id'))
    .select(['i.resource_provider_id', 'i.resource_class_id', 'i.total', 'i.reserved', 'i.min_unit', 'i.max_unit', 'i.step_size', 'i.allocation_ratio', sql<number | string | null>`u.used`.as('used')])
    .where('i.resource_provider_id', 'in', providerIds)
    .where('i.resource_class_id', 'in', classIds)
    .execute();
  const inventory = new Map(rows.map((r) => [`${r.resource_provider_id}:${r.resource_class_id}`, r]));
  const requested = new Map<string, number>();
  for (const w of wanted) {
    const key = `${w.providerId}:${w.classId}`;
    requested.set(key, (requested.get(key) ?? 0) + w.used);
    const inv = inventory.get(key);
    const prefix = 'Unable to allocate inventory: ';
    if (!inv) throw conflict(`${prefix}Inventory for '${w.className}' on resource provider '${w.providerUuid}' invalid.`);
    if (w.used < inv.min_unit || w.used > inv.max_unit || w.used % inv.step_size !== 0) {
      throw conflict(`${prefix}Unable to create allocation for '${w.className}' on resource provider '${w.providerUuid}'. The requested amount would violate inventory constraints.`);
    }
    const capacity = (inv.total - inv.reserved) * num(inv.allocation_ratio);
    const used = num(inv.used);
    if (capacity < used + w.used || capacity < used + (requested.get(key) ?? 0)) {
      throw conflict(`${prefix}Unable to create allocation for '${w.className}' on resource provider '${w.providerUuid}'. The requested amount would exceed the capacity.`);
    }
  }
}

/**
 * Removes every allocation of a consumer and the consumer (`DELETE
 * /allocations/{uuid}`); 404 when it has none. The providers it leaves get a
 * new generation.
 */
export async function deleteConsumerAllocations(svc: PlacementService, consumer: string): Promise<void> {
  await svc.db.transaction().execute(async (trx) => {
    const providers = await trx.selectFrom('allocations').select('resource_provider_id').distinct().where('consumer_uuid', '=', consumer).execute();
    if (providers.length === 0) throw notFound(`No allocations for consumer '${consumer}'`);
    await trx.deleteFrom('allocations').where('consumer_uuid', '=', consumer).execute();
    await trx.deleteFrom('consumers').where('uuid', '=', consumer).execute();
    const ids = providers.map((p) => p.resource_provider_id).sort((a, b) => a - b);
    for (const id of ids) await trx.updateTable('resource_providers').set({ generation: sql`generation + 1` }).where('id', '=', id).execute();
  });
}

/** A consumer's allocations as `GET /allocations/{uuid}` shows them. */
export interface ConsumerAllocations {
  /** By provider UUID: its generation and the amounts by class. */
  allocations: Map<string, { generation: number; resources: Record<string, number> }>;
  /** Null when the consumer has no allocations. */
  consumer: { project_id: string; user_id: string; generation: number; consumer_type: string | null } | null;
  /** The newest allocation's creation time. */
  lastModified: string | null;
}

/** What a consumer holds. */
export async function consumerAllocations(svc: PlacementService, consumer: string): Promise<ConsumerAllocations> {
  const rows = await svc.db
    .selectFrom('allocations as a')
    .innerJoin('resource_providers as rp', 'rp.id', 'a.resource_provider_id')
    .innerJoin('consumers as c', 'c.uuid', 'a.consumer_uuid')
    .select(['a.resource_class_id', 'a.used', 'a.created_at', 'rp.uuid', 'rp.generation', 'c.project_id', 'c.user_id', 'c.generation as consumer_generation', 'c.consumer_type'])
    .where('a.consumer_uuid', '=', consumer)
    .orderBy('rp.id')
    .orderBy('a.resource_class_id')
    .execute();
  const allocations = new Map<string, { generation: number; resources: Record<string, number> }>();
  let lastModified: string | null = null;
  for (const row of rows) {
    const entry = allocations.get(row.uuid) ?? { generation: row.generation, resources: {} };
    entry.resources[await svc.resourceClasses.name(row.resource_class_id)] = row.used;
    allocations.set(row.uuid, entry);
    if (lastModified === null || row.created_at > lastModified) lastModified = row.created_at;
  }
  const first = rows[0];
  return {
    allocations,
    consumer: first ? { project_id: first.project_id, user_id: first.user_id, generation: first.consumer_generation, consumer_type: first.consumer_type } : null,
    lastModified,
  };
}

/** The allocations against a provider, by consumer: amounts by class and the consumer's generation. */
export async function providerAllocations(svc: PlacementService, providerId: number): Promise<{ allocations: Map<string, { resources: Record<string, number>; consumer_generation: number }>; lastModified: string | null }> {
  const rows = await svc.db
    .selectFrom('allocations as a')
    .innerJoin('consumers as c', 'c.uuid', 'a.consumer_uuid')
    .select(['a.consumer_uuid', 'a.resource_class_id', 'a.used', 'a.created_at', 'c.generation'])
    .where('a.resource_provider_id', '=', providerId)
    .orderBy('a.consumer_uuid')
    .orderBy('a.resource_class_id')
    .execute();
  const allocations = new Map<string, { resources: Record<string, number>; consumer_generation: number }>();
  let lastModified: string | null = null;
  for (const row of rows) {
    const entry = allocations.get(row.consumer_uuid) ?? { resources: {}, consumer_generation: row.generation };
    entry.resources[await svc.resourceClasses.name(row.resource_class_id)] = row.used;
    allocations.set(row.consumer_uuid, entry);
    if (lastModified === null || row.created_at > lastModified) lastModified = row.created_at;
  }
  return { allocations, lastModified };
}
