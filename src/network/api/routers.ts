import type { FastifyInstance } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { bool, isRecord, json, newStandardColumns, owner, readBody, STANDARD_ATTRS, UUID_PATTERN, type Attrs } from '../common.js';
import type { PortRow, RouterRow, SubnetRow } from '../db/schema.js';
import type { PortInfo } from '../drivers/driver.js';
import { badRequest, conflict, NeutronError } from '../errors.js';
import { contains, parseCidr, parseIp } from '../ipam/addresses.js';
import { poolsOf, retryOnConflict } from '../ipam/allocator.js';
import { listResponse, parseListQuery, selectFields, showFields, STANDARD_ATTRIBUTES, type ListSpec } from '../lists.js';
import { allowed, authorize, isAdmin, type NetworkService } from '../network.js';
import { afterPortChange, afterPortDelete, createPortRecord, deletePortRecord, fixedIpsOf, loadPortFor, portInfo, updatePortRecord } from '../ports.js';
import { availabilityZoneHints, checkAvailabilityZoneHints, saveTags, tagsAttr } from '../networks.js';
import { checkQuota } from '../quotas.js';
import {
  addRoutes,
  applyGateway,
  checkDuplicateSubnets,
  checkRoutes,
  floatingIpsBehind,
  loadRouterFor,
  lockRouter,
  ownerTarget,
  readGatewayInfo,
  readRoutes,
  removeRoutes,
  routerAddresses,
  routersUpdated,
  routerViews,
  ROUTER_INTERFACE,
  ROUTER_INTERFACE_OWNERS,
  touchRouter,
  type GatewayChange,
  type GatewayInfo,
  type Route,
} from '../routers.js';
import { deleteTags, loadTags } from '../tags.js';
import { loadSubnetFor } from './subnets.js';

/**
 * Routers (Neutron's `router`, `extraroute`, `extraroute-atomic`,
 * `ext-gw-mode`, `router_availability_zone`): CRUD, the external gateway,
 * interfaces on subnets and ports, extra routes. Every change is one
 * transaction; the driver hears of it after the commit.
 */

/** `distributed` and `ha` exist for admins and are always false: this cloud has neither DVR nor L3 HA. */
function alwaysFalse(value: unknown, name: string): boolean {
  if (bool(value, name)) throw badRequest(`Bad router request: ${name === 'ha' ? 'HA' : 'distributed'} routers are not supported by this cloud.`, 'BadRequest');
  return false;
}

const ROUTER_ATTRS: Attrs = {
  ...STANDARD_ATTRS,
  admin_state_up: { post: true, put: true, default: true, convert: bool },
  external_gateway_info: { post: true, put: true, convert: (v, n) => readGatewayInfo(v, n) },
  routes: { put: true, convert: (v, n) => readRoutes(v, n) },
  availability_zone_hints: { post: true, default: [], convert: availabilityZoneHints },
  tags: { post: true, convert: tagsAttr },
  distributed: { post: true, put: true, convert: alwaysFalse },
  ha: { post: true, put: true, convert: alwaysFalse },
};

const ROUTES_ATTRS: Attrs = { routes: { put: true, convert: (v, n) => readRoutes(v, n) } };

const LIST_SPEC: ListSpec = {
  collection: 'routers',
  resource: 'router',
  attributes: [...STANDARD_ATTRIBUTES, 'admin_state_up', 'status', 'distributed', 'ha', 'availability_zone_hints'],
};

/**
 * The attributes a request sets, for `<action>:<attribute>` policy rules;
 * `external_gateway_info`'s keys as `external_gateway_info:<key>`.
 */
function requested(body: unknown, resource: string): string[] {
  const item = isRecord(body) ? body[resource] : undefined;
  if (!isRecord(item)) return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(item)) {
    out.push(key);
    if (key === 'external_gateway_info' && isRecord(value)) for (const sub of Object.keys(value)) out.push(`${key}:${sub}`);
  }
  return out;
}

async function viewOf(net: NetworkService, ctx: RequestContext, id: string): Promise<Record<string, unknown>> {
  const row = await net.db.selectFrom('router').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const [view] = await routerViews(net, ctx, [row]);
  return view ?? {};
}

/** After a committed gateway change: the driver hears of the ports that went and came. */
async function afterGateway(net: NetworkService, change: GatewayChange | null, oldGateway: PortInfo | null): Promise<void> {
  if (!change) return;
  if (change.deletedPortId && oldGateway) await afterPortDelete(net, oldGateway);
  if (change.createdPortId) await afterPortChange(net, change.createdPortId);
}

export function registerRouters(app: FastifyInstance, net: NetworkService): void {
  app.post('/v2.0/routers', async (req, reply) => {
    const ctx = req.ctx;
    const item = readBody(req.body, 'router', ROUTER_ATTRS, 'create');
    const project = owner(ctx, item);
    authorize(net, ctx, 'create_router', { project_id: project, tenant_id: project }, requested(req.body, 'router'));
    const hints = item.availability_zone_hints as string[];
    await checkAvailabilityZoneHints(net, 'router', hints);
    const gateway = (item.external_gateway_info ?? null) as GatewayInfo | null;
    const standard = newStandardColumns(project, item);
    const id = standard.id;
    const change = await retryOnConflict(() =>
      net.db.transaction().execute(async (trx) => {
        await checkQuota(trx, net.config.network, project, 'router');
        const row: RouterRow = {
          ...standard,
          admin_state_up: item.admin_state_up ? 1 : 0,
          status: 'ACTIVE',
          gw_port_id: null,
          external_network_id: null,
          enable_snat: 1,
          routes: '[]',
          distributed: 0,
          ha: 0,
          availability_zone_hints: JSON.stringify(hints),
        };
        await trx.insertInto('router').values(row).execute();
        await saveTags(trx, 'routers', id, (item.tags as string[] | undefined) ?? []);
        return gateway ? applyGateway(net, ctx, trx, row, gateway, []) : null;
      }),
    );
    await afterGateway(net, change, null);
    await routersUpdated(net, [id]);
    const view = await viewOf(net, ctx, id);
    net.notify('router.create.end', { router: view }, ctx);
    reply.code(201);
    return { router: view };
  });

  app.get('/v2.0/routers', async (req) => {
    const ctx = req.ctx;
    const query = parseListQuery(req, LIST_SPEC, net.config.network.pagination_max_limit);
    let select = net.db.selectFrom('router').selectAll();
    if (!isAdmin(net, ctx)) select = select.where('project_id', '=', ctx.projectId ?? '');
    const rows = (await select.execute()).filter((row) => allowed(net, ctx, 'get_router', ownerTarget(row)));
    return listResponse(req, LIST_SPEC, await routerViews(net, ctx, rows), query);
  });

  app.get<{ Params: { id: string } }>('/v2.0/routers/:id', async (req) => {
    const row = await loadRouterFor(net, req.ctx, req.params.id);
    const [view] = await routerViews(net, req.ctx, [row]);
    return { router: selectFields(view ?? {}, showFields(req)) };
  });

  app.put<{ Params: { id: string } }>('/v2.0/routers/:id', async (req) => {
    const ctx = req.ctx;
    const item = readBody(req.body, 'router', ROUTER_ATTRS, 'update');
    const router = await loadRouterFor(net, ctx, req.params.id);
    authorize(net, ctx, 'update_router', ownerTarget(router), requested(req.body, 'router'));
    const gatewayGiven = 'external_gateway_info' in item;
    const oldGateway = gatewayGiven && router.gw_port_id ? await portInfo(net, router.gw_port_id) : null;
    const change = await retryOnConflict(() =>
      net.db.transaction().execute(async (trx) => {
        const current = await lockRouter(net, trx, router.id);
        const routes = 'routes' in item ? (item.routes as Route[]) : json<Route[]>(current.routes, []);
        const gatewayChange = gatewayGiven ? await applyGateway(net, ctx, trx, current, item.external_gateway_info as GatewayInfo | null, routes) : null;
        if ('routes' in item) {
          const { cidrs, ips } = await routerAddresses(trx, router.id);
          checkRoutes(router.id, routes, cidrs, ips);
        }
        const set: Partial<RouterRow> = {};
        if (item.name !== undefined) set.name = item.name as string;
        if (item.description !== undefined) set.description = item.description as string;
        if (item.admin_state_up !== undefined) set.admin_state_up = item.admin_state_up ? 1 : 0;
        if ('routes' in item) set.routes = JSON.stringify(routes);
        await touchRouter(trx, router.id, set);
        return gatewayChange;
      }),
    );
    await afterGateway(net, change, oldGateway);
    await routersUpdated(net, [router.id]);
    const view = await viewOf(net, ctx, router.id);
    net.notify('router.update.end', { router: view }, ctx);
    return { router: view };
  });

  app.delete<{ Params: { id: string } }>('/v2.0/routers/:id', async (req, reply) => {
    const ctx = req.ctx;
    const router = await loadRouterFor(net, ctx, req.params.id);
    authorize(net, ctx, 'delete_router', ownerTarget(router));
    const [view] = await routerViews(net, ctx, [router]);
    const others = await net.db.selectFrom('router_port').select('port_id').where('router_id', '=', router.id).execute();
    const infos = (await Promise.all(others.map((p) => portInfo(net, p.port_id)))).filter((i): i is PortInfo => i !== null);
    await net.db.transaction().execute(async (trx) => {
      const current = await lockRouter(net, trx, router.id);
      const attached = await trx.selectFrom('router_port').select('port_id').where('router_id', '=', router.id).where('port_type', 'in', ROUTER_INTERFACE_OWNERS).execute();
      if (attached.length > 0) throw conflict('RouterInUse', `Router ${router.id} has ports still attached: ${attached.map((p) => p.port_id).join(', ')}`);
      if (current.gw_port_id) await applyGateway(net, ctx, trx, current, null, []);
      const used = await trx.selectFrom('floatingip').select('id').where('router_id', '=', router.id).executeTakeFirst();
      if (used) throw conflict('RouterInUse', `Router ${router.id} still has floating IPs associated`);
      for (const p of await trx.selectFrom('router_port').select('port_id').where('router_id', '=', router.id).execute()) await deletePortRecord(trx, p.port_id);
      await deleteTags(trx, 'routers', router.id);
      await trx.deleteFrom('router').where('id', '=', router.id).execute();
    });
    for (const info of infos) await afterPortDelete(net, info);
    try {
      await net.driver.routerDeleted(router.id);
    } catch (err) {
      net.log.warn({ err, router_id: router.id }, 'the driver failed to remove a router');
    }
    net.notify('router.delete.end', { router_id: router.id, router: view }, ctx);
    reply.code(204);
  });

  app.put<{ Params: { id: string } }>('/v2.0/routers/:id/add_router_interface', async (req) => {
    const ctx = req.ctx;
    const router = await loadRouterFor(net, ctx, req.params.id);
    authorize(net, ctx, 'add_router_interface', ownerTarget(router));
    const wanted = readInterfaceInfo(req.body, false);
    const result = await retryOnConflict(() =>
      net.db.transaction().execute(async (trx) => {
        await lockRouter(net, trx, router.id);
        const attached = wanted.port_id !== undefined ? await attachPort(net, ctx, trx, router, wanted.port_id) : await attachSubnet(net, ctx, trx, router, wanted.subnet_id ?? '');
        await trx.insertInto('router_port').values({ router_id: router.id, port_id: attached.port.id, port_type: ROUTER_INTERFACE }).execute();
        await touchRouter(trx, router.id);
        return attached;
      }),
    );
    await afterPortChange(net, result.port.id);
    await routersUpdated(net, [router.id]);
    const info = await interfaceInfo(net, router.id, result.port, result.subnets.at(-1)?.id ?? '', result.subnets);
    net.notify('router.interface.create', { router_interface: info }, ctx);
    return info;
  });

  app.put<{ Params: { id: string } }>('/v2.0/routers/:id/remove_router_interface', async (req) => {
    const ctx = req.ctx;
    const router = await loadRouterFor(net, ctx, req.params.id);
    authorize(net, ctx, 'remove_router_interface', ownerTarget(router));
    const wanted = readInterfaceInfo(req.body, true);
    const infos = new Map<string, PortInfo>();
    for (const portId of await removalCandidates(net, router.id, wanted)) {
      const info = await portInfo(net, portId);
      if (info) infos.set(portId, info);
    }
    const result = await net.db.transaction().execute(async (trx) => {
      await lockRouter(net, trx, router.id);
      const detached = wanted.port_id !== undefined ? await detachPort(net, trx, router, wanted.port_id, wanted.subnet_id) : await detachSubnet(net, ctx, trx, router, wanted.subnet_id ?? '');
      await touchRouter(trx, router.id);
      return detached;
    });
    const gone = infos.get(result.port.id);
    if (result.deleted && gone) await afterPortDelete(net, gone);
    else if (!result.deleted) await afterPortChange(net, result.port.id);
    await routersUpdated(net, [router.id]);
    const info = await interfaceInfo(net, router.id, result.port, result.subnets[0]?.id ?? '', result.subnets);
    net.notify('router.interface.delete', { router_interface: info }, ctx);
    return info;
  });

  for (const action of ['add_extraroutes', 'remove_extraroutes'] as const) {
    app.put<{ Params: { id: string } }>(`/v2.0/routers/:id/${action}`, async (req) => {
      const ctx = req.ctx;
      const item = readBody(req.body, 'router', ROUTES_ATTRS, 'update');
      if (!('routes' in item)) throw badRequest("Failed to parse request. Required attribute 'routes' not specified");
      const router = await loadRouterFor(net, ctx, req.params.id);
      authorize(net, ctx, action, ownerTarget(router));
      await net.db.transaction().execute(async (trx) => {
        const current = await lockRouter(net, trx, router.id);
        const old = json<Route[]>(current.routes, []);
        const given = item.routes as Route[];
        const routes = action === 'add_extraroutes' ? addRoutes(old, given) : removeRoutes(old, given);
        if (action === 'add_extraroutes') {
          const { cidrs, ips } = await routerAddresses(trx, router.id);
          checkRoutes(router.id, routes, cidrs, ips);
        }
        await touchRouter(trx, router.id, { routes: JSON.stringify(routes) });
      });
      await routersUpdated(net, [router.id]);
      const view = await viewOf(net, ctx, router.id);
      net.notify('router.update.end', { router: view }, ctx);
      return { router: view };
    });
  }
}

// Interfaces.

function routerBadRequest(message: string): NeutronError {
  return badRequest(`Bad router request: ${message}.`, 'BadRequest');
}

/** The body of add/remove_router_interface: `subnet_id` or `port_id` (both only for removal). */
function readInterfaceInfo(body: unknown, removal: boolean): { port_id?: string; subnet_id?: string } {
  const info = isRecord(body) ? body : {};
  const hasPort = 'port_id' in info;
  const hasSubnet = 'subnet_id' in info;
  if (!hasPort && !hasSubnet) throw routerBadRequest('Either subnet_id or port_id must be specified');
  const out: { port_id?: string; subnet_id?: string } = {};
  for (const key of ['port_id', 'subnet_id'] as const) {
    if (!(key in info)) continue;
    const value = info[key];
    if (typeof value !== 'string' || !UUID_PATTERN.test(value)) throw routerBadRequest(`'${String(value)}' is not a valid UUID`);
    out[key] = value;
  }
  if (!removal && hasPort && hasSubnet) throw routerBadRequest('Cannot specify both subnet-id and port-id');
  return out;
}

/** Neutron refuses IPv6 subnets whose hosts take router advertisements from elsewhere. */
function checkAddressMode(subnet: SubnetRow): void {
  if (subnet.ip_version === 6 && subnet.ipv6_ra_mode === null && subnet.ipv6_address_mode !== null) {
    throw routerBadRequest(`IPv6 subnet ${subnet.id} configured to receive RAs from an external router cannot be added to Neutron Router`);
  }
}

interface Attached {
  port: PortRow;
  subnets: SubnetRow[];
}

type Db = NetworkService['db'];

async function subnetsByIds(trx: Db, ids: string[]): Promise<SubnetRow[]> {
  if (ids.length === 0) return [];
  const rows = await trx.selectFrom('subnet').selectAll().where('id', 'in', ids).execute();
  return ids.map((id) => rows.find((r) => r.id === id)).filter((r): r is SubnetRow => r !== undefined);
}

/** add_router_interface with `port_id`: an unbound port with addresses becomes the router's. */
async function attachPort(net: NetworkService, ctx: RequestContext, trx: Db, router: RouterRow, portId: string): Promise<Attached> {
  const port = (await loadPortFor(net, ctx, portId, trx)).row;
  if (port.device_id !== '') {
    throw conflict('PortInUse', `Unable to complete operation on port ${port.id} for network ${port.network_id}. Port already has an attached device ${port.device_id}.`);
  }
  const ips = (await fixedIpsOf(trx, [port.id])).get(port.id) ?? [];
  if (ips.length === 0) throw routerBadRequest('Router port must have at least one fixed IP');
  const subnets = await subnetsByIds(trx, [...new Set(ips.map((ip) => ip.subnet_id))]);
  for (const subnet of subnets) checkAddressMode(subnet);
  if (ips.some((ip) => ip.ip_address.includes(':'))) {
    const other = await trx
      .selectFrom('router_port')
      .innerJoin('port', 'port.id', 'router_port.port_id')
      .innerJoin('ip_allocation', 'ip_allocation.port_id', 'port.id')
      .select(['port.id as id', 'ip_allocation.ip_address as ip_address'])
      .where('router_port.router_id', '=', router.id)
      .where('port.network_id', '=', port.network_id)
      .execute();
    const v6 = other.find((o) => o.ip_address.includes(':'));
    if (v6) {
      throw routerBadRequest(`Cannot have multiple router ports with the same network id if both contain IPv6 subnets. Existing port ${v6.id} has IPv6 subnet(s) and network id ${port.network_id}`);
    }
  }
  await checkDuplicateSubnets(trx, router.id, subnets);
  if (subnets.filter((s) => s.ip_version === 4).length > 1) throw routerBadRequest('Cannot have multiple IPv4 subnets on router port');
  if (!isAdmin(net, ctx)) {
    for (const ip of ips) {
      const subnet = subnets.find((s) => s.id === ip.subnet_id);
      const address = parseIp(ip.ip_address);
      const inPool = subnet !== undefined && address !== null && poolsOf(subnet).some((p) => address.value >= p.start && address.value <= p.end);
      if (!inPool && subnet?.project_id !== ctx.projectId) {
        throw routerBadRequest(
          `Cannot add interface to router because specified port ${port.id} has an IP address out of the allocation pool of subnet ${ip.subnet_id}, which is not owned by the project making the request`,
        );
      }
    }
  }
  await updatePortRecord(net, trx, port.id, { device_id: router.id, device_owner: ROUTER_INTERFACE });
  return { port, subnets };
}

/** add_router_interface with `subnet_id`: a new port holding the subnet's gateway address. */
async function attachSubnet(net: NetworkService, ctx: RequestContext, trx: Db, router: RouterRow, subnetId: string): Promise<Attached> {
  const subnet = await loadSubnetFor(net, ctx, subnetId, trx);
  if (!subnet.gateway_ip) throw routerBadRequest('Subnet for router interface must have a gateway IP');
  if (subnet.project_id !== ctx.projectId && !isAdmin(net, ctx)) {
    throw routerBadRequest(`Cannot add interface to router because subnet ${subnet.id} is not owned by project making the request`);
  }
  checkAddressMode(subnet);
  await checkDuplicateSubnets(trx, router.id, [subnet]);
  const created = await createPortRecord(net, trx, {
    network_id: subnet.network_id,
    project_id: router.project_id,
    device_id: router.id,
    device_owner: ROUTER_INTERFACE,
    name: '',
    admin_state_up: true,
    fixed_ips: [{ subnet_id: subnet.id, ip_address: subnet.gateway_ip }],
    security_groups: null,
    checkQuota: true,
  });
  const port = await trx.selectFrom('port').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow();
  return { port, subnets: [subnet] };
}

/**
 * Refuses to take the router off a subnet that floating IPs reach their
 * ports through (409 `RouterInterfaceInUseByFloatingIP`) or that a route's
 * nexthop is on (409 `RouterInterfaceInUseByRoute`).
 */
async function checkInterfaceNotInUse(trx: Db, router: RouterRow, subnet: SubnetRow): Promise<void> {
  if ((await floatingIpsBehind(trx, router.id, subnet)).length > 0) {
    throw conflict('RouterInterfaceInUseByFloatingIP', `Router interface for subnet ${subnet.id} on router ${router.id} cannot be deleted, as it is required by one or more floating IPs.`);
  }
  const cidr = parseCidr(subnet.cidr);
  const current = await trx.selectFrom('router').select('routes').where('id', '=', router.id).executeTakeFirst();
  const routes = json<Route[]>(current?.routes, []);
  if (
    cidr &&
    routes.some((r) => {
      const hop = parseIp(r.nexthop);
      return hop !== null && contains(cidr, hop);
    })
  ) {
    throw conflict('RouterInterfaceInUseByRoute', `Router interface for subnet ${subnet.id} on router ${router.id} cannot be deleted, as it is required by one or more routes.`);
  }
}

interface Detached extends Attached {
  /** False when the port stays (it kept addresses on other subnets). */
  deleted: boolean;
}

/**
 * The interface ports a remove_router_interface may delete: the named port,
 * or the router's interfaces with an address on the named subnet. Read before
 * the transaction, so that the driver can be told of the deleted one after it.
 */
async function removalCandidates(net: NetworkService, routerId: string, wanted: { port_id?: string; subnet_id?: string }): Promise<string[]> {
  if (wanted.port_id !== undefined) return [wanted.port_id];
  const rows = await net.db
    .selectFrom('router_port')
    .innerJoin('ip_allocation', 'ip_allocation.port_id', 'router_port.port_id')
    .select('router_port.port_id as port_id')
    .where('router_port.router_id', '=', routerId)
    .where('router_port.port_type', '=', ROUTER_INTERFACE)
    .where('ip_allocation.subnet_id', '=', wanted.subnet_id ?? '')
    .execute();
  return [...new Set(rows.map((r) => r.port_id))];
}

/** remove_router_interface with `port_id` (and maybe `subnet_id`): the port goes. */
async function detachPort(net: NetworkService, trx: Db, router: RouterRow, portId: string, subnetId: string | undefined): Promise<Detached> {
  const link = await trx.selectFrom('router_port').select('port_id').where('router_id', '=', router.id).where('port_id', '=', portId).where('port_type', '=', ROUTER_INTERFACE).executeTakeFirst();
  const port = link ? await trx.selectFrom('port').selectAll().where('id', '=', portId).executeTakeFirst() : undefined;
  if (!port) throw new NeutronError(404, 'RouterInterfaceNotFound', `Router ${router.id} does not have an interface with id ${portId}`);
  const ips = (await fixedIpsOf(trx, [port.id])).get(port.id) ?? [];
  if (subnetId !== undefined && !ips.some((ip) => ip.subnet_id === subnetId)) {
    throw new NeutronError(400, 'SubnetMismatchForPort', `Subnet on port ${port.id} does not match the requested subnet ${subnetId}.`);
  }
  const subnets = await subnetsByIds(trx, [...new Set(ips.map((ip) => ip.subnet_id))]);
  for (const subnet of subnets) await checkInterfaceNotInUse(trx, router, subnet);
  await deletePortRecord(trx, port.id);
  return { port, subnets, deleted: true };
}

/** remove_router_interface with `subnet_id`: the router's port there goes, or only its address there when it has others. */
async function detachSubnet(net: NetworkService, ctx: RequestContext, trx: Db, router: RouterRow, subnetId: string): Promise<Detached> {
  const subnet = await loadSubnetFor(net, ctx, subnetId, trx);
  const ports = await trx
    .selectFrom('router_port')
    .innerJoin('port', 'port.id', 'router_port.port_id')
    .selectAll('port')
    .where('router_port.router_id', '=', router.id)
    .where('router_port.port_type', '=', ROUTER_INTERFACE)
    .where('port.network_id', '=', subnet.network_id)
    .execute();
  if (ports.length > 0) await checkInterfaceNotInUse(trx, router, subnet);
  const ips = await fixedIpsOf(
    trx,
    ports.map((p) => p.id),
  );
  for (const port of ports) {
    const mine = ips.get(port.id) ?? [];
    if (!mine.some((ip) => ip.subnet_id === subnetId)) continue;
    const rest = mine.filter((ip) => ip.subnet_id !== subnetId);
    if (rest.length > 0) {
      await updatePortRecord(net, trx, port.id, { fixed_ips: rest.map((ip) => ({ subnet_id: ip.subnet_id, ip_address: ip.ip_address })) });
      return { port, subnets: [subnet], deleted: false };
    }
    await deletePortRecord(trx, port.id);
    return { port, subnets: [subnet], deleted: true };
  }
  throw new NeutronError(404, 'RouterInterfaceNotFoundForSubnet', `Router ${router.id} has no interface on subnet ${subnetId}`);
}

/** The body add/remove_router_interface answer with. */
async function interfaceInfo(net: NetworkService, routerId: string, port: PortRow, subnetId: string, subnets: SubnetRow[]): Promise<Record<string, unknown>> {
  const tags = (await loadTags(net.db, 'ports', [port.id])).get(port.id) ?? [];
  return {
    id: routerId,
    tenant_id: port.project_id,
    project_id: port.project_id,
    port_id: port.id,
    network_id: port.network_id,
    subnet_id: subnetId,
    subnet_ids: subnets.map((s) => s.id),
    tags,
  };
}
