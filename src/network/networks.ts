import type { Kysely } from 'kysely';
import type { RequestContext } from '../core/auth/context.js';
import type { NetworkRow, NetworkSchema, SubnetRow } from './db/schema.js';
import type { NetworkInfo } from './drivers/driver.js';
import { invalidInput, NeutronError, notFound } from './errors.js';
import { allowed, type NetworkService } from './network.js';

/**
 * Lookups of networks and their subnets that other resources (ports,
 * routers, floating IPs) share. Read-only: none of them changes anything.
 */

type Db = Kysely<NetworkSchema>;

/**
 * The policy target of a network: its owner (`project_id`, `tenant_id`) and
 * whether it is `shared` and `router:external` (booleans; the policy engine
 * compares them with `'True'`).
 */
export function networkTarget(row: NetworkRow): Record<string, unknown> {
  return {
    id: row.id,
    project_id: row.project_id,
    tenant_id: row.project_id,
    shared: row.shared === 1,
    'router:external': row.router_external === 1,
  };
}

/**
 * The `network:*` keys a resource on this network adds to its own policy
 * target (`network:project_id`, `network:shared`, `network:router:external`),
 * as Neutron's rules for ports and subnets read them.
 */
export function onNetworkTarget(row: Pick<NetworkRow, 'id' | 'project_id' | 'shared' | 'router_external'>): Record<string, unknown> {
  return {
    network_id: row.id,
    'network:project_id': row.project_id,
    'network:tenant_id': row.project_id,
    'network:shared': row.shared === 1,
    'network:router:external': row.router_external === 1,
  };
}

/** True when the caller may see the network: owner, admin, shared or external (policy `get_network`). */
export function networkVisible(net: NetworkService, ctx: RequestContext, row: NetworkRow): boolean {
  return allowed(net, ctx, 'get_network', networkTarget(row));
}

/** The network row, or undefined when there is none (no visibility check). */
export async function findNetwork(db: Db, id: string): Promise<NetworkRow | undefined> {
  return db.selectFrom('network').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * The network `id` as the caller may see it; Neutron's 404
 * `NetworkNotFound` when it does not exist or the caller may not see it
 * (never 403). Pass a transaction as `db` to read inside it.
 */
export async function loadNetworkFor(net: NetworkService, ctx: RequestContext, id: string, db: Db = net.db): Promise<NetworkRow> {
  const row = await findNetwork(db, id);
  if (!row || !networkVisible(net, ctx, row)) throw notFound('network', id);
  return row;
}

/** {@link loadNetworkFor} with the row locked until the transaction `trx` ends ({@link lockNetwork}). */
export async function lockNetworkFor(net: NetworkService, ctx: RequestContext, id: string, trx: Db): Promise<NetworkRow> {
  const row = await lockNetwork(net, trx, id);
  if (!row || !networkVisible(net, ctx, row)) throw notFound('network', id);
  return row;
}

/** Ports that do not keep a network or subnet in use: its deletion takes them, or their addresses, along (Neutron's AUTO_DELETE_PORT_OWNERS). */
export const AUTO_DELETE_PORT_OWNERS = ['network:dhcp', 'network:router_interface_distributed', 'network:floatingip_agent_gateway'];

/** What the driver is told about a network. */
export function networkInfo(row: NetworkRow): NetworkInfo {
  return {
    id: row.id,
    project_id: row.project_id,
    network_type: row.network_type,
    physical_network: row.physical_network,
    segmentation_id: row.segmentation_id === null ? null : Number(row.segmentation_id),
    mtu: Number(row.mtu),
    admin_state_up: row.admin_state_up === 1,
    router_external: row.router_external === 1,
  };
}

/** The subnets of a network, oldest first (the order IPAM tries them in). */
export async function subnetsOf(db: Db, networkId: string): Promise<SubnetRow[]> {
  return db.selectFrom('subnet').selectAll().where('network_id', '=', networkId).orderBy('created_at').orderBy('id').execute();
}

/** Converter for `tags` in a create: unique strings of 1 to 255 characters without commas. */
export function tagsAttr(value: unknown, name: string): string[] {
  if (!Array.isArray(value)) throw invalidInput(name, `'${JSON.stringify(value)}' is not a list`);
  for (const tag of value) {
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > 255 || tag.includes(',')) throw invalidInput(name, `'${String(tag)}' is not a valid tag`);
  }
  return [...new Set(value as string[])].sort();
}

/** Stores the tags of a new resource (`resourceType` is the collection: `networks`, `subnets`, ...). */
export async function saveTags(db: Db, resourceType: string, id: string, tags: string[]): Promise<void> {
  if (tags.length === 0) return;
  await db
    .insertInto('tag')
    .values(tags.map((tag) => ({ resource_type: resourceType, resource_id: id, tag })))
    .execute();
}

/**
 * The availability zones a resource may name in `availability_zone_hints`:
 * the configured zone, and the zones agents of the kind that serves it
 * report (`DHCP agent` for networks, `L3 agent` for routers).
 */
export async function knownAvailabilityZones(net: NetworkService, resource: 'network' | 'router'): Promise<string[]> {
  const agentType = resource === 'network' ? 'DHCP agent' : 'L3 agent';
  const rows = await net.db.selectFrom('agent').select('availability_zone').where('agent_type', '=', agentType).execute();
  const zones = new Set<string>([net.config.network.availability_zone]);
  for (const row of rows) if (row.availability_zone) zones.add(row.availability_zone);
  return [...zones].sort();
}

/** 404 `AvailabilityZoneNotFound` for the first hint that names no known zone. */
export async function checkAvailabilityZoneHints(net: NetworkService, resource: 'network' | 'router', hints: string[]): Promise<void> {
  if (hints.length === 0) return;
  const known = await knownAvailabilityZones(net, resource);
  const unknown = hints.find((h) => !known.includes(h));
  if (unknown !== undefined) throw new NeutronError(404, 'AvailabilityZoneNotFound', `AvailabilityZone ${unknown} could not be found.`);
}

/** Converter for `availability_zone_hints`: unique strings of up to 255 characters. */
export function availabilityZoneHints(value: unknown, name: string): string[] {
  if (!Array.isArray(value)) throw invalidInput(name, `'${JSON.stringify(value)}' is not a list`);
  const seen = new Set<string>();
  for (const item of value) {
    if (typeof item !== 'string' || item.length > 255) throw invalidInput(name, `'${String(item)}' is not a valid string`);
    if (seen.has(item)) throw invalidInput(name, `Duplicate items in the list: '${item}'`);
    seen.add(item);
  }
  return [...seen];
}

/**
 * Locks the network's row until the caller's transaction ends (PostgreSQL,
 * MySQL: `SELECT ... FOR UPDATE`; SQLite runs one write transaction at a
 * time, so nothing is needed), so that changes to its subnets, and the
 * network's deletion, happen one after another. Returns the row, or
 * undefined when it is gone.
 */
export async function lockNetwork(net: NetworkService, db: Db, id: string): Promise<NetworkRow | undefined> {
  const query = db.selectFrom('network').selectAll().where('id', '=', id);
  return net.dialect === 'sqlite' ? query.executeTakeFirst() : query.forUpdate().executeTakeFirst();
}
