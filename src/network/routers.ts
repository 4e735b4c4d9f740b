import type { Kysely } from 'kysely';
import type { RequestContext } from '../core/auth/context.js';
import { bool, dict, isoNow, isRecord, json, standardView, uuid } from './common.js';
import type { FloatingIpRow, NetworkSchema, RouterRow, SubnetRow } from './db/schema.js';
import { badRequest, conflict, invalidInput, NeutronError, notFound } from './errors.js';
import { contains, formatCidr, overlaps, parseCidr, parseIp, type Cidr } from './ipam/addresses.js';
import { ROUTER_INTERFACE_OWNERS_SNAT } from './ipam/allocator.js';
import { ipAddress } from './ipam/subnet-rules.js';
import { allowed, hideAttributes, type NetworkService } from './network.js';
import { findNetwork, networkVisible, subnetsOf } from './networks.js';
import { createPortRecord, deletePortRecord, fixedIpsOf } from './ports.js';
import { loadTags } from './tags.js';

/**
 * The L3 internals that routers and floating IPs share (Neutron's l3_db):
 * router views, extra routes, the external gateway, the subnets a router is
 * on, which router serves a floating IP and which floating IPs need a
 * router's interface. Functions that take `trx` run inside the caller's
 * transaction and never read through `net.db` (SQLite has one connection).
 */

type Db = Kysely<NetworkSchema>;

export const ROUTER_GATEWAY = 'network:router_gateway';
export const ROUTER_INTERFACE = 'network:router_interface';
export const FLOATINGIP_OWNER = 'network:floatingip';
/** Device owners of the ports a router routes through (Neutron's ROUTER_INTERFACE_OWNERS). */
export const ROUTER_INTERFACE_OWNERS = ['network:router_interface', 'network:ha_router_replicated_interface', 'network:router_interface_distributed'];
/** Every device owner of a port that belongs to a router. */
export const ROUTER_PORT_OWNERS = [...ROUTER_INTERFACE_OWNERS_SNAT, ROUTER_GATEWAY];
/** Neutron's `max_routes`. */
export const MAX_ROUTES = 30;

export interface Route {
  destination: string;
  nexthop: string;
}

/** The policy target of a router (or of a floating IP: same owner keys). */
export function ownerTarget(row: { id: string; project_id: string }): Record<string, unknown> {
  return { id: row.id, project_id: row.project_id, tenant_id: row.project_id };
}

/** The router as the caller may see it; 404 `RouterNotFound` when it does not exist or is not visible. */
export async function loadRouterFor(net: NetworkService, ctx: RequestContext, id: string, db: Db = net.db): Promise<RouterRow> {
  const row = await db.selectFrom('router').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || !allowed(net, ctx, 'get_router', ownerTarget(row))) throw notFound('router', id);
  return row;
}

/**
 * Reads the router again inside a transaction, locking its row on
 * PostgreSQL so that concurrent changes of one router (interfaces, gateway,
 * routes) run one after the other. 404 when it was deleted meanwhile.
 */
export async function lockRouter(net: NetworkService, trx: Db, id: string): Promise<RouterRow> {
  let query = trx.selectFrom('router').selectAll().where('id', '=', id);
  if (net.dialect === 'postgres' || net.dialect === 'mysql') query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) throw notFound('router', id);
  return row;
}

/** Bumps a router's revision (every change of it, its gateway, interfaces or routes). */
export async function touchRouter(trx: Db, id: string, changes: Partial<RouterRow> = {}): Promise<void> {
  await trx
    .updateTable('router')
    .set((eb) => ({ ...changes, updated_at: isoNow(), revision_number: eb('revision_number', '+', 1) }))
    .where('id', '=', id)
    .execute();
}

/** Runs `in` queries over long id lists in chunks. */
async function chunked<T>(ids: string[], run: (chunk: string[]) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < ids.length; i += 500) out.push(...(await run(ids.slice(i, i + 500))));
  return out;
}

/**
 * The views of routers as the caller sees them: gateway with its addresses,
 * routes, availability zones, tags; `distributed` and `ha` only for those
 * the policy lets read them. Three batched queries whatever the number of routers.
 */
export async function routerViews(net: NetworkService, ctx: RequestContext, rows: RouterRow[], db: Db = net.db): Promise<Record<string, unknown>[]> {
  const ids = rows.map((r) => r.id);
  const gwPortIds = rows.map((r) => r.gw_port_id).filter((id): id is string => id !== null);
  const [tags, gwIps, zones] = await Promise.all([loadTags(db, 'routers', ids), fixedIpsOf(db, gwPortIds), hostingZones(db, ids)]);
  return rows.map((row) => {
    const view: Record<string, unknown> = {
      ...standardView(row, tags.get(row.id) ?? []),
      admin_state_up: row.admin_state_up === 1,
      status: row.status,
      external_gateway_info:
        row.gw_port_id && row.external_network_id
          ? { network_id: row.external_network_id, enable_snat: row.enable_snat === 1, external_fixed_ips: gwIps.get(row.gw_port_id) ?? [] }
          : null,
      routes: json<Route[]>(row.routes, []),
      availability_zone_hints: json<string[]>(row.availability_zone_hints, []),
      availability_zones: zones.get(row.id) ?? [net.config.network.availability_zone],
      distributed: row.distributed === 1,
      ha: row.ha === 1,
    };
    return hideAttributes(net, ctx, 'router', view, ownerTarget(row));
  });
}

/** The availability zones of the L3 agents hosting each router (routers without agents are absent). */
async function hostingZones(db: Db, routerIds: string[]): Promise<Map<string, string[]>> {
  const rows = await chunked(routerIds, (chunk) =>
    db
      .selectFrom('router_l3_agent')
      .innerJoin('agent', 'agent.id', 'router_l3_agent.agent_id')
      .select(['router_l3_agent.router_id as router_id', 'agent.availability_zone as zone'])
      .where('router_l3_agent.router_id', 'in', chunk)
      .execute(),
  );
  const byRouter = new Map<string, string[]>();
  for (const row of rows) {
    if (!row.zone) continue;
    const list = byRouter.get(row.router_id) ?? [];
    if (!list.includes(row.zone)) list.push(row.zone);
    byRouter.set(row.router_id, list.sort());
  }
  return byRouter;
}

// Extra routes.

/** Python's repr of routes, as Neutron's messages print them. */
export function routesText(routes: Route[]): string {
  return `[${routes.map((r) => `{'destination': '${r.destination}', 'nexthop': '${r.nexthop}'}`).join(', ')}]`;
}

/**
 * Converter of `routes` (neutron-lib's hostroutes): a list of unique
 * `{destination, nexthop}` with a network CIDR and an address; `null` is the
 * empty list. Values are stored in canonical form.
 */
export function readRoutes(value: unknown, name = 'routes'): Route[] {
  if (value === null) return [];
  if (!Array.isArray(value)) throw invalidInput(name, `Invalid data format for hostroute: '${JSON.stringify(value)}'`);
  const routes: Route[] = [];
  for (const item of value) {
    if (!isRecord(item)) throw invalidInput(name, `Invalid input. '${JSON.stringify(item)}' must be a dictionary with keys: ['destination', 'nexthop']`);
    const keys = Object.keys(item).sort();
    if (keys.length !== 2 || keys[0] !== 'destination' || keys[1] !== 'nexthop') {
      throw invalidInput(name, `Validation of dictionary's keys failed. Expected keys: {'destination', 'nexthop'} Provided keys: {${keys.map((k) => `'${k}'`).join(', ')}}`);
    }
    const destination = routeCidr(item.destination, name);
    const nexthop = ipAddress(item.nexthop, name);
    if (routes.some((r) => r.destination === destination && r.nexthop === nexthop)) {
      throw invalidInput(name, `Duplicate hostroute '{'destination': '${destination}', 'nexthop': '${nexthop}'}'`);
    }
    routes.push({ destination, nexthop });
  }
  return routes;
}

function routeCidr(value: unknown, name: string): string {
  const text = typeof value === 'string' ? value : String(value);
  const loose = typeof value === 'string' ? parseCidr(value) : null;
  if (!loose) throw invalidInput(name, `'${text}' is not a valid CIDR`);
  const strict = parseCidr(text, true);
  if (!text.includes('/') || !strict) throw invalidInput(name, `'${text}' is not a recognized CIDR, '${formatCidr(loose)}' is recommended`);
  if (strict.version === 4 ? strict.network >> 24n === 127n : strict.network === 1n && strict.prefix === 128) {
    throw invalidInput(name, `'${text}' is not a routable CIDR`);
  }
  return formatCidr(strict);
}

/** Merges routes (extraroute-atomic's add): exact duplicates once. */
export function addRoutes(old: Route[], add: Route[]): Route[] {
  const out = [...old];
  for (const r of add) if (!out.some((o) => o.destination === r.destination && o.nexthop === r.nexthop)) out.push(r);
  return out;
}

/** Removes routes (extraroute-atomic's remove); routes that are absent are ignored. */
export function removeRoutes(old: Route[], remove: Route[]): Route[] {
  return old.filter((o) => !remove.some((r) => r.destination === o.destination && r.nexthop === o.nexthop));
}

/** The CIDRs of the subnets a router's ports are on and the router's own addresses. */
export async function routerAddresses(trx: Db, routerId: string, skipGateway = false): Promise<{ cidrs: Cidr[]; ips: string[] }> {
  let query = trx
    .selectFrom('port')
    .innerJoin('ip_allocation', 'ip_allocation.port_id', 'port.id')
    .innerJoin('subnet', 'subnet.id', 'ip_allocation.subnet_id')
    .select(['subnet.cidr as cidr', 'ip_allocation.ip_address as ip_address'])
    .where('port.device_id', '=', routerId)
    .where('port.device_owner', 'in', ROUTER_PORT_OWNERS);
  if (skipGateway) query = query.where('port.device_owner', '!=', ROUTER_GATEWAY);
  const rows = await query.execute();
  const cidrs = rows.map((r) => parseCidr(r.cidr)).filter((c): c is Cidr => c !== null);
  return { cidrs, ips: rows.map((r) => r.ip_address) };
}

/**
 * Refuses routes a router cannot use: more than {@link MAX_ROUTES} (400
 * `RoutesExhausted`), a nexthop outside every subnet the router is on or
 * equal to one of its own addresses (400 `InvalidRoutes`).
 */
export function checkRoutes(routerId: string, routes: Route[], cidrs: Cidr[], ips: string[]): void {
  if (routes.length > MAX_ROUTES) {
    throw new NeutronError(400, 'RoutesExhausted', `Unable to complete operation for ${routerId}. The number of routes exceeds the maximum ${MAX_ROUTES}.`);
  }
  for (const route of routes) {
    const hop = parseIp(route.nexthop);
    if (!hop || !cidrs.some((c) => contains(c, hop))) {
      throw new NeutronError(400, 'InvalidRoutes', `Invalid format for routes: ${routesText(routes)}, the nexthop is not connected with router`);
    }
    if (ips.includes(route.nexthop)) {
      throw new NeutronError(400, 'InvalidRoutes', `Invalid format for routes: ${routesText(routes)}, the nexthop is used by router`);
    }
  }
}

// The subnets a router is on.

/**
 * Refuses a new port of the router on `newSubnets` when the router already
 * has a port on one of them, or on a subnet whose CIDR overlaps (400, as
 * Neutron's `_check_for_dup_router_subnets`). A gateway counts with every
 * subnet of its external network.
 */
export async function checkDuplicateSubnets(trx: Db, routerId: string, newSubnets: SubnetRow[]): Promise<void> {
  const ports = await trx
    .selectFrom('port')
    .innerJoin('router_port', 'router_port.port_id', 'port.id')
    .leftJoin('ip_allocation', 'ip_allocation.port_id', 'port.id')
    .select(['port.id as id', 'port.network_id as network_id', 'port.device_owner as device_owner', 'ip_allocation.subnet_id as subnet_id'])
    .where('router_port.router_id', '=', routerId)
    .execute();
  const newIds = new Set(newSubnets.map((s) => s.id));
  const routerSubnetIds = new Set<string>();
  const gatewayNetworks = new Set<string>();
  for (const p of ports) {
    if (p.subnet_id === null) continue;
    if (newIds.has(p.subnet_id)) throw badRequest(`Bad router request: Router already has a port on subnet ${p.subnet_id}.`, 'BadRequest');
    if (p.device_owner === ROUTER_GATEWAY) gatewayNetworks.add(p.network_id);
    else routerSubnetIds.add(p.subnet_id);
  }
  const existing: SubnetRow[] = [];
  for (const networkId of gatewayNetworks) existing.push(...(await subnetsOf(trx, networkId)));
  const ids = [...routerSubnetIds];
  if (ids.length > 0) existing.push(...(await chunked(ids, (chunk) => trx.selectFrom('subnet').selectAll().where('id', 'in', chunk).execute())));
  for (const sub of existing) {
    const cidr = parseCidr(sub.cidr);
    for (const s of newSubnets) {
      const other = parseCidr(s.cidr);
      if (cidr && other && overlaps(cidr, other)) {
        throw badRequest(`Bad router request: Cidr ${s.cidr} of subnet ${s.id} overlaps with cidr ${sub.cidr} of subnet ${sub.id}.`, 'BadRequest');
      }
    }
  }
}

// The external gateway.

export interface GatewayInfo {
  network_id: string;
  enable_snat?: boolean;
  external_fixed_ips?: { subnet_id?: string; ip_address?: string }[];
}

/**
 * Converter of `external_gateway_info`: null or `{}` clears the gateway;
 * otherwise `network_id` is required, `enable_snat` a boolean and
 * `external_fixed_ips` a list of `{subnet_id, ip_address}`.
 */
export function readGatewayInfo(value: unknown, name = 'external_gateway_info'): GatewayInfo | null {
  if (value === null || value === undefined || (isRecord(value) && Object.keys(value).length === 0)) return null;
  const info = dict(value, name);
  if (!('network_id' in info)) {
    throw invalidInput(name, `Validation of dictionary's keys failed. Expected keys: {'network_id'} Provided keys: {${Object.keys(info).map((k) => `'${k}'`).join(', ')}}`);
  }
  const unexpected = Object.keys(info).filter((k) => !['network_id', 'enable_snat', 'external_fixed_ips'].includes(k));
  if (unexpected.length > 0) throw invalidInput(name, `Unexpected keys supplied: ${unexpected.join(', ')}`);
  const out: GatewayInfo = { network_id: uuid(info.network_id, name) };
  if ('enable_snat' in info) out.enable_snat = bool(info.enable_snat, name);
  if ('external_fixed_ips' in info) out.external_fixed_ips = readFixedIps(info.external_fixed_ips, name);
  return out;
}

function readFixedIps(value: unknown, name: string): { subnet_id?: string; ip_address?: string }[] {
  if (!Array.isArray(value)) throw invalidInput(name, `Invalid data format for fixed IP: '${JSON.stringify(value)}'`);
  const seen: string[] = [];
  return value.map((item) => {
    if (!isRecord(item)) throw invalidInput(name, `Invalid data format for fixed IP: '${JSON.stringify(item)}'`);
    const out: { subnet_id?: string; ip_address?: string } = {};
    if ('ip_address' in item) {
      const ip = ipAddress(item.ip_address, name);
      if (seen.includes(ip)) throw invalidInput(name, `Duplicate IP address '${ip}'`);
      seen.push(ip);
      out.ip_address = ip;
    }
    if ('subnet_id' in item) {
      out.subnet_id = uuid(item.subnet_id, name);
    }
    return out;
  });
}

/** What a gateway change did, for the work after the commit. */
export interface GatewayChange {
  deletedPortId: string | null;
  createdPortId: string | null;
}

/**
 * Sets, changes or clears (`info` null) a router's external gateway inside
 * the caller's transaction, as Neutron's ext-gw-mode does: the network must
 * be visible (404) and external (400); the router's routes must stay
 * reachable; a `network:router_gateway` port (project '') takes the
 * addresses; clearing or moving the gateway is refused (409) while floating
 * IPs use it. `enable_snat` is the given value or true. Does not bump the
 * router's revision: the caller does, once per request.
 */
export async function applyGateway(net: NetworkService, ctx: RequestContext, trx: Db, router: RouterRow, info: GatewayInfo | null, routes: Route[]): Promise<GatewayChange> {
  const change: GatewayChange = { deletedPortId: null, createdPortId: null };
  const extIps = info?.external_fixed_ips ?? [];
  let gwSubnets: SubnetRow[] = [];
  if (info) {
    const network = await findNetwork(trx, info.network_id);
    if (!network || !networkVisible(net, ctx, network)) throw notFound('network', info.network_id);
    if (network.router_external !== 1) throw badRequest(`Bad router request: Network ${network.id} is not an external network.`, 'BadRequest');
    gwSubnets = await subnetsOf(trx, network.id);
    for (const ip of extIps) {
      if (ip.ip_address !== undefined && gwSubnets.some((s) => s.gateway_ip === ip.ip_address)) {
        throw badRequest(`Bad router request: External IP ${ip.ip_address} is the same as the gateway IP.`, 'BadRequest');
      }
    }
  }
  if (routes.length > 0) {
    const inside = await routerAddresses(trx, router.id, true);
    const cidrs = [...inside.cidrs, ...gwSubnets.map((s) => parseCidr(s.cidr)).filter((c): c is Cidr => c !== null)];
    checkRoutes(router.id, routes, cidrs, inside.ips);
  }
  const current = router.gw_port_id ? await trx.selectFrom('port').select(['id', 'network_id']).where('id', '=', router.gw_port_id).executeTakeFirst() : undefined;
  const snat = info ? (info.enable_snat ?? true) : true;
  const sameNetwork = current !== undefined && info !== null && current.network_id === info.network_id;
  if (sameNetwork && !(await fixedIpsChange(trx, current.id, extIps))) {
    await trx.updateTable('router').set({ enable_snat: snat ? 1 : 0 }).where('id', '=', router.id).execute();
    return change;
  }
  if (current) {
    if (!sameNetwork) {
      const used = await trx.selectFrom('floatingip').select('id').where('router_id', '=', router.id).executeTakeFirst();
      if (used) {
        throw conflict('RouterExternalGatewayInUseByFloatingIp', `Gateway cannot be updated for router ${router.id}, since a gateway to external network ${current.network_id} is required by one or more floating IPs.`);
      }
    }
    await trx.updateTable('router').set({ gw_port_id: null, external_network_id: null }).where('id', '=', router.id).execute();
    await deletePortRecord(trx, current.id);
    change.deletedPortId = current.id;
  }
  if (info) {
    await checkDuplicateSubnets(trx, router.id, gwSubnets);
    const port = await createPortRecord(net, trx, {
      network_id: info.network_id,
      project_id: '',
      device_id: router.id,
      device_owner: ROUTER_GATEWAY,
      name: '',
      admin_state_up: true,
      ...(extIps.length > 0 ? { fixed_ips: extIps } : {}),
      security_groups: null,
      checkQuota: false,
    });
    await trx.insertInto('router_port').values({ router_id: router.id, port_id: port.id, port_type: ROUTER_GATEWAY }).execute();
    change.createdPortId = port.id;
  }
  await trx
    .updateTable('router')
    .set({ gw_port_id: change.createdPortId, external_network_id: info?.network_id ?? null, enable_snat: snat ? 1 : 0 })
    .where('id', '=', router.id)
    .execute();
  return change;
}

/** True when the requested external IPs differ from the gateway port's (Neutron's `_check_for_external_ip_change`). */
async function fixedIpsChange(trx: Db, portId: string, wanted: { subnet_id?: string; ip_address?: string }[]): Promise<boolean> {
  if (wanted.length === 0) return false;
  const have = (await fixedIpsOf(trx, [portId])).get(portId) ?? [];
  const same = (a: Set<string>, b: Set<string>): boolean => a.size === b.size && [...a].every((x) => b.has(x));
  const wantedSubnets = new Set(wanted.map((w) => w.subnet_id).filter((s): s is string => s !== undefined));
  if (!same(wantedSubnets, new Set(have.map((h) => h.subnet_id)))) return true;
  const wantedIps = new Set(wanted.map((w) => w.ip_address).filter((s): s is string => s !== undefined));
  return !same(wantedIps, new Set(have.map((h) => h.ip_address)));
}

// Floating IPs and the ports behind them.

/**
 * The router that connects the internal subnet of a port to the external
 * network (an interface on that subnet, a gateway on that network): the one
 * whose interface holds the subnet's gateway address, else the first; 404
 * `ExternalGatewayForFloatingIPNotFound` when there is none.
 */
export async function routerForFloatingIp(db: Db, port: { id: string; network_id: string }, subnet: SubnetRow, externalNetworkId: string): Promise<string> {
  const rows = await db
    .selectFrom('router_port')
    .innerJoin('port', 'port.id', 'router_port.port_id')
    .innerJoin('ip_allocation', 'ip_allocation.port_id', 'port.id')
    .innerJoin('router', 'router.id', 'router_port.router_id')
    .innerJoin('port as gw', 'gw.id', 'router.gw_port_id')
    .select(['router_port.router_id as router_id', 'ip_allocation.ip_address as ip_address'])
    .where('port.network_id', '=', port.network_id)
    .where('router_port.port_type', 'in', ROUTER_INTERFACE_OWNERS)
    .where('ip_allocation.subnet_id', '=', subnet.id)
    .where('gw.network_id', '=', externalNetworkId)
    .orderBy('router.created_at')
    .orderBy('router.id')
    .execute();
  const preferred = rows.find((r) => r.ip_address === subnet.gateway_ip) ?? rows[0];
  if (!preferred) {
    throw new NeutronError(
      404,
      'ExternalGatewayForFloatingIPNotFound',
      `External network ${externalNetworkId} is not reachable from subnet ${subnet.id}.  Therefore, cannot associate Port ${port.id} with a Floating IP.`,
    );
  }
  return preferred.router_id;
}

/** Tells the data plane that routers changed; after the commit. A driver failure is logged, never undoes the change. */
export async function routersUpdated(net: NetworkService, routerIds: Iterable<string | null | undefined>): Promise<void> {
  for (const id of new Set(routerIds)) {
    if (!id) continue;
    try {
      await net.driver.routerUpdated(id);
    } catch (err) {
      net.log.warn({ err, router_id: id }, 'the driver failed to apply a router change');
    }
  }
}

/**
 * The floating IPs whose fixed address is on `subnet` and that `routerId`
 * serves: while there are any, the router's interface there may not go away
 * (Neutron's `_confirm_router_interface_not_in_use`).
 */
export async function floatingIpsBehind(trx: Db, routerId: string, subnet: SubnetRow): Promise<FloatingIpRow[]> {
  return trx
    .selectFrom('floatingip')
    .innerJoin('ip_allocation', (join) => join.onRef('ip_allocation.port_id', '=', 'floatingip.fixed_port_id').onRef('ip_allocation.ip_address', '=', 'floatingip.fixed_ip_address'))
    .selectAll('floatingip')
    .where('floatingip.router_id', '=', routerId)
    .where('ip_allocation.subnet_id', '=', subnet.id)
    .execute();
}

