import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../core/db/database.js';
import { isoNow, newUuid, nextId } from './common.js';
import type { ComputeService } from './compute.js';
import type { AggregateRow, ComputeSchema } from './db/schema.js';
import { badRequest, conflict, notFound } from './errors.js';

/**
 * Host aggregates: named groups of compute hosts with metadata. The
 * `availability_zone` key makes an aggregate an availability zone; a host
 * may be in several aggregates, but not in two zones. Hosts must be
 * compute hosts (a `nova-compute` service).
 */

type Db = Kysely<ComputeSchema>;

/** An aggregate with its hosts and metadata. */
export interface Aggregate extends AggregateRow {
  hosts: string[];
  metadata: Record<string, string>;
}

/** Nova's 404 for an aggregate id that is not there. */
export function aggregateNotFound(id: number | string): Error {
  return notFound(`Aggregate ${id} could not be found.`);
}

async function withMembers(db: Db, rows: AggregateRow[]): Promise<Aggregate[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const hosts = await db.selectFrom('aggregate_host').selectAll().where('aggregate_id', 'in', ids).orderBy('host').execute();
  const metadata = await db.selectFrom('aggregate_metadata').selectAll().where('aggregate_id', 'in', ids).orderBy('key').execute();
  return rows.map((row) => ({
    ...row,
    id: Number(row.id),
    hosts: hosts.filter((h) => Number(h.aggregate_id) === Number(row.id)).map((h) => h.host),
    metadata: Object.fromEntries(metadata.filter((m) => Number(m.aggregate_id) === Number(row.id)).map((m) => [m.key, m.value])),
  }));
}

/** Every aggregate, by id. */
export async function listAggregates(db: Db): Promise<Aggregate[]> {
  return withMembers(db, await db.selectFrom('aggregate').selectAll().orderBy('id').execute());
}

/** One aggregate, or 404 `Aggregate X could not be found.`. */
export async function getAggregate(db: Db, id: number): Promise<Aggregate> {
  const row = await db.selectFrom('aggregate').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw aggregateNotFound(id);
  const [aggregate] = await withMembers(db, [row]);
  if (!aggregate) throw aggregateNotFound(id);
  return aggregate;
}

function nameExists(name: string): Error {
  return conflict(`Aggregate ${name} already exists.`);
}

/** Creates an aggregate (with its zone as `availability_zone` metadata); 409 when the name is taken. */
export async function createAggregate(db: Db, name: string, availabilityZone: string | null): Promise<Aggregate> {
  for (let attempt = 0; ; attempt++) {
    try {
      const id = await db.transaction().execute(async (trx) => {
        if (await trx.selectFrom('aggregate').select('id').where('name', '=', name).executeTakeFirst()) throw nameExists(name);
        const row: AggregateRow = { id: await nextId(trx, 'aggregate'), uuid: newUuid(), name, created_at: isoNow(), updated_at: null };
        await trx.insertInto('aggregate').values(row).execute();
        if (availabilityZone) await trx.insertInto('aggregate_metadata').values({ aggregate_id: row.id, key: 'availability_zone', value: availabilityZone }).execute();
        return row.id;
      });
      return await getAggregate(db, id);
    } catch (err) {
      if (!isUniqueViolation(err) || attempt >= 10) throw err;
      // A concurrent create took the id (retry) or the name (then the check above answers 409).
    }
  }
}

/** Hosts that run a `nova-compute` service. */
async function isComputeHost(db: Db, host: string): Promise<boolean> {
  return (await db.selectFrom('service').select('id').where('host', '=', host).where('binary', '=', 'nova-compute').executeTakeFirst()) !== undefined;
}

async function hostHasServers(db: Db, hosts: string[]): Promise<boolean> {
  if (hosts.length === 0) return false;
  const row = await db.selectFrom('instance').select('uuid').where('host', 'in', hosts).where('deleted', '=', 0).executeTakeFirst();
  return row !== undefined;
}

type Action = 'add' | 'update' | 'updateMeta';

function invalidAction(action: Action, id: number, reason: string): string {
  switch (action) {
    case 'add':
      return `Cannot add host to aggregate ${id}. Reason: ${reason}.`;
    case 'update':
      return `Cannot update aggregate ${id}. Reason: ${reason}.`;
    case 'updateMeta':
      return `Cannot update metadata of aggregate ${id}. Reason: ${reason}.`;
    default: {
      const never: never = action;
      throw new Error(`unknown aggregate action ${String(never)}`);
    }
  }
}

/**
 * Nova's check before a zone changes or a host joins: no empty zone name,
 * no host left in two zones, and (for a change of zone) no servers on the
 * hosts. Throws what the caller's action answers (`status`).
 */
async function checkZoneChange(db: Db, aggregate: Aggregate, zone: string | null | undefined, action: Action, status: 400 | 409, hosts: string[], checkServers: boolean): Promise<void> {
  if (zone === undefined) return;
  const fail = (reason: string): Error => (status === 400 ? badRequest(invalidAction(action, aggregate.id, reason)) : conflict(invalidAction(action, aggregate.id, reason)));
  if (!zone) throw fail(`Aggregate ${aggregate.name} does not support empty named availability zone`);
  if (hosts.length > 0) {
    const others = await db
      .selectFrom('aggregate_host')
      .innerJoin('aggregate_metadata', 'aggregate_metadata.aggregate_id', 'aggregate_host.aggregate_id')
      .select(['aggregate_host.aggregate_id', 'aggregate_metadata.value'])
      .where('aggregate_host.host', 'in', hosts)
      .where('aggregate_metadata.key', '=', 'availability_zone')
      .execute();
    const conflicting = [...new Set(others.filter((o) => Number(o.aggregate_id) !== aggregate.id && o.value !== zone).map((o) => o.value))];
    if (conflicting.length > 0) throw fail(`One or more hosts already in availability zone(s) [${conflicting.map((z) => `'${z}'`).join(', ')}]`);
  }
  if (checkServers && aggregate.metadata.availability_zone !== zone && (await hostHasServers(db, hosts))) {
    throw fail('One or more hosts contain instances in this zone');
  }
}

/** Writes metadata changes: a null value removes the key. */
async function applyMetadata(db: Db, id: number, changes: Record<string, string | null>): Promise<void> {
  const keys = Object.keys(changes);
  if (keys.length === 0) return;
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('aggregate_metadata').where('aggregate_id', '=', id).where('key', 'in', keys).execute();
    const rows = Object.entries(changes)
      .filter((e): e is [string, string] => e[1] !== null)
      .map(([key, value]) => ({ aggregate_id: id, key, value }));
    if (rows.length > 0) await trx.insertInto('aggregate_metadata').values(rows).execute();
    await trx.updateTable('aggregate').set({ updated_at: isoNow() }).where('id', '=', id).execute();
  });
}

/**
 * Renames an aggregate and/or moves it to another zone; 409 when the name
 * is taken, 400 when the zone change is not allowed.
 */
export async function updateAggregate(db: Db, id: number, changes: { name?: string; availability_zone?: string | null }): Promise<Aggregate> {
  const aggregate = await getAggregate(db, id);
  if (changes.name !== undefined && changes.name !== aggregate.name) {
    if (await db.selectFrom('aggregate').select('id').where('name', '=', changes.name).executeTakeFirst()) throw nameExists(changes.name);
    try {
      await db.updateTable('aggregate').set({ name: changes.name, updated_at: isoNow() }).where('id', '=', id).execute();
    } catch (err) {
      throw isUniqueViolation(err) ? nameExists(changes.name) : err;
    }
    aggregate.name = changes.name;
  }
  if ('availability_zone' in changes) {
    await checkZoneChange(db, aggregate, changes.availability_zone, 'update', 400, aggregate.hosts, true);
    await applyMetadata(db, id, { availability_zone: changes.availability_zone ?? null });
  } else if (changes.name !== undefined) {
    await db.updateTable('aggregate').set({ updated_at: isoNow() }).where('id', '=', id).execute();
  }
  return getAggregate(db, id);
}

/** Sets metadata (a null value removes a key); 400 when the `availability_zone` change is not allowed. */
export async function setAggregateMetadata(db: Db, id: number, metadata: Record<string, string | null>): Promise<Aggregate> {
  const aggregate = await getAggregate(db, id);
  if ('availability_zone' in metadata) await checkZoneChange(db, aggregate, metadata.availability_zone, 'updateMeta', 400, aggregate.hosts, true);
  await applyMetadata(db, id, metadata);
  return getAggregate(db, id);
}

/** Deletes an aggregate without hosts; 400 `... Reason: Host aggregate is not empty.` otherwise. */
export async function deleteAggregate(db: Db, id: number): Promise<void> {
  const aggregate = await getAggregate(db, id);
  if (aggregate.hosts.length > 0) throw badRequest(`Cannot remove host from aggregate ${id}. Reason: Host aggregate is not empty.`);
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('aggregate_metadata').where('aggregate_id', '=', id).execute();
    await trx.deleteFrom('aggregate').where('id', '=', id).execute();
  });
}

/**
 * Adds a compute host: 404 `Compute host X could not be found.` for a host
 * without a `nova-compute` service, 409 when it is there already or would
 * end up in two zones.
 */
export async function addAggregateHost(db: Db, id: number, host: string): Promise<Aggregate> {
  if (!(await isComputeHost(db, host))) throw notFound(`Compute host ${host} could not be found.`);
  const aggregate = await getAggregate(db, id);
  await checkZoneChange(db, aggregate, aggregate.metadata.availability_zone, 'add', 409, [host], false);
  const exists = conflict(`Aggregate ${id} already has host ${host}.`);
  if (aggregate.hosts.includes(host)) throw exists;
  try {
    await db.insertInto('aggregate_host').values({ aggregate_id: id, host }).execute();
  } catch (err) {
    throw isUniqueViolation(err) ? exists : err;
  }
  return getAggregate(db, id);
}

/** Removes a host; 404 `Cannot remove host X in aggregate Y` when it is not there. */
export async function removeAggregateHost(db: Db, id: number, host: string): Promise<Aggregate> {
  const missing = notFound(`Cannot remove host ${host} in aggregate ${id}`);
  const exists = await db.selectFrom('aggregate').select('id').where('id', '=', id).executeTakeFirst();
  if (!exists) throw missing;
  const result = await db.deleteFrom('aggregate_host').where('aggregate_id', '=', id).where('host', '=', host).executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) throw missing;
  return getAggregate(db, id);
}

/** The availability zone of every host in an aggregate that names one (several are joined with `,`, as Nova does). */
export async function hostZones(db: Db): Promise<Map<string, string>> {
  const rows = await db
    .selectFrom('aggregate_host')
    .innerJoin('aggregate_metadata', 'aggregate_metadata.aggregate_id', 'aggregate_host.aggregate_id')
    .select(['aggregate_host.host', 'aggregate_metadata.value'])
    .where('aggregate_metadata.key', '=', 'availability_zone')
    .orderBy('aggregate_host.aggregate_id')
    .execute();
  const zones = new Map<string, string[]>();
  for (const row of rows) {
    const list = zones.get(row.host) ?? [];
    if (!list.includes(row.value)) list.push(row.value);
    zones.set(row.host, list);
  }
  return new Map([...zones].map(([host, list]) => [host, list.join(',')]));
}

/** Removes a host from every aggregate (when its service is deleted). */
export async function removeHostFromAggregates(db: Db, host: string): Promise<void> {
  await db.deleteFrom('aggregate_host').where('host', '=', host).execute();
}

/** The availability zone of a host: its aggregates' `availability_zone`, else the default. */
export async function zoneOfHost(compute: ComputeService, host: string): Promise<string> {
  const row = await compute.db
    .selectFrom('aggregate_host')
    .innerJoin('aggregate_metadata', 'aggregate_metadata.aggregate_id', 'aggregate_host.aggregate_id')
    .select('aggregate_metadata.value')
    .where('aggregate_host.host', '=', host)
    .where('aggregate_metadata.key', '=', 'availability_zone')
    .executeTakeFirst();
  return row?.value ?? compute.config.compute.default_availability_zone;
}
