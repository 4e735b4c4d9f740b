import type { Kysely } from 'kysely';
import type { ComputeConfig } from '../core/config.js';
import { hostZones, removeHostFromAggregates } from './aggregates.js';
import { isoNow } from './common.js';
import type { ComputeSchema, ServiceRow } from './db/schema.js';
import { badRequest, conflict, notFound } from './errors.js';

/**
 * The services of the compute roles (`nova-compute` per hypervisor host,
 * `nova-scheduler`, `nova-conductor`) as the agents' heartbeats record them:
 * a service is up when it reported within `service_down_time` seconds and
 * is not forced down. Compute services are in the zone of their host's
 * aggregates (else the default zone), the others in `internal`.
 */

type Db = Kysely<ComputeSchema>;

/** The zone Nova puts the non-compute services in (`internal_service_availability_zone`). */
export const INTERNAL_ZONE = 'internal';

/** A service with what the API shows besides its row. */
export interface ServiceState extends ServiceRow {
  up: boolean;
  zone: string;
}

/** Whether a service is up: not forced down and seen within `service_down_time`. */
export function serviceIsUp(config: ComputeConfig, row: Pick<ServiceRow, 'forced_down' | 'last_seen_up' | 'created_at'>, now = Date.now()): boolean {
  if (Number(row.forced_down) === 1) return false;
  const seen = Date.parse(row.last_seen_up ?? row.created_at);
  return Number.isFinite(seen) && Math.abs(now - seen) <= config.service_down_time * 1000;
}

/** The zone of a service's host, given the zones of aggregated hosts. */
export function serviceZone(config: ComputeConfig, row: Pick<ServiceRow, 'binary' | 'host'>, zones: Map<string, string>): string {
  if (row.binary !== 'nova-compute') return INTERNAL_ZONE;
  return zones.get(row.host) ?? config.default_availability_zone;
}

/** Services (optionally of one host and/or binary), by id, with their state and zone. */
export async function listServices(db: Db, config: ComputeConfig, filters: { host?: string; binary?: string } = {}): Promise<ServiceState[]> {
  let query = db.selectFrom('service').selectAll().orderBy('id');
  if (filters.host) query = query.where('host', '=', filters.host);
  if (filters.binary) query = query.where('binary', '=', filters.binary);
  const rows = await query.execute();
  const zones = await hostZones(db);
  const now = Date.now();
  return rows.map((row) => ({ ...row, id: Number(row.id), up: serviceIsUp(config, row, now), zone: serviceZone(config, row, zones) }));
}

/** A service by its uuid (from 2.53) or integer id (before); 404 `Service X could not be found.`. */
export async function getService(db: Db, config: ComputeConfig, id: string | number): Promise<ServiceState> {
  let query = db.selectFrom('service').selectAll();
  query = typeof id === 'number' ? query.where('id', '=', id) : query.where('uuid', '=', id);
  const row = await query.executeTakeFirst();
  if (!row) throw notFound(`Service ${id} could not be found.`);
  const zones = await hostZones(db);
  return { ...row, id: Number(row.id), up: serviceIsUp(config, row), zone: serviceZone(config, row, zones) };
}

/** The compute service of a host by host and binary (the pre-2.53 update form); 404 when there is none. */
export async function serviceByHostBinary(db: Db, host: string, binary: string): Promise<ServiceRow> {
  const row = await db.selectFrom('service').selectAll().where('host', '=', host).where('binary', '=', binary).executeTakeFirst();
  if (!row) throw notFound(`Could not find binary ${binary} on host ${host}.`);
  return row;
}

/** What an update may change. */
export interface ServiceChanges {
  disabled?: boolean;
  disabled_reason?: string | null;
  forced_down?: boolean;
}

/**
 * Enables, disables or forces down a compute service. Forcing a host back
 * up is refused (400) while evacuations from it are `done` but not yet
 * `completed` by its restarted agent, as Nova does.
 */
export async function updateService(db: Db, row: ServiceRow, changes: ServiceChanges): Promise<void> {
  if (changes.forced_down === false) {
    const pending = await db.selectFrom('migration').select('id').where('source_compute', '=', row.host).where('status', '=', 'done').where('migration_type', '=', 'evacuation').executeTakeFirst();
    if (pending) {
      throw badRequest(
        `Unable to force up host ${row.host} as \`done\` evacuation migration records remain associated with the host. Ensure the compute service has been restarted, allowing these records to move to \`completed\` before retrying this request.`,
      );
    }
  }
  const set: Partial<ServiceRow> = { updated_at: isoNow() };
  if (changes.disabled !== undefined) set.disabled = changes.disabled ? 1 : 0;
  if (changes.disabled_reason !== undefined) set.disabled_reason = changes.disabled_reason;
  if (changes.forced_down !== undefined) set.forced_down = changes.forced_down ? 1 : 0;
  await db.updateTable('service').set(set).where('id', '=', row.id).execute();
}

/** Migration statuses Nova no longer counts as in progress. */
const SETTLED = ['accepted', 'confirmed', 'reverted', 'error', 'failed', 'completed', 'cancelled', 'done'];

/**
 * Deletes a service. A compute service with servers, or with migrations in
 * progress, is 409; else its host leaves its aggregates and its compute
 * nodes are removed with it. Returns the removed nodes' uuids (their
 * resource providers in placement).
 */
export async function deleteService(db: Db, row: ServiceRow): Promise<string[]> {
  let nodes: string[] = [];
  if (row.binary === 'nova-compute') {
    const server = await db.selectFrom('instance').select('uuid').where('host', '=', row.host).where('deleted', '=', 0).executeTakeFirst();
    if (server) throw conflict('Unable to delete compute service that is hosting instances. Migrate or delete the instances first.');
    const migration = await db
      .selectFrom('migration')
      .select('id')
      .where((eb) => eb.or([eb('source_compute', '=', row.host), eb('dest_compute', '=', row.host)]))
      .where('status', 'not in', SETTLED)
      .executeTakeFirst();
    if (migration) throw conflict('Unable to delete compute service that has in-progress migrations. Complete the migrations or delete the instances first.');
    nodes = (await db.selectFrom('compute_node').select('uuid').where('service_id', '=', row.id).execute()).map((n) => n.uuid);
    await removeHostFromAggregates(db, row.host);
    await db.deleteFrom('compute_node').where('service_id', '=', row.id).execute();
  }
  await db.deleteFrom('service').where('id', '=', row.id).execute();
  return nodes;
}
