import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { RequestContext } from '../../core/auth/context.js';
import { bool, int, isoNow, json, newStandardColumns, nullableUuid, owner, readBody, readCreate, standardView, STANDARD_ATTRS, uuid, type Attrs } from '../common.js';
import type { NetworkRow, NetworkSchema, SubnetpoolRow, SubnetRow } from '../db/schema.js';
import { conflict, invalidInput, NeutronError, notFound } from '../errors.js';
import { defaultPools, firstHost, formatCidr, formatIp, overlaps, parseCidr, parseIp, type Cidr, type IpVersion, type Range } from '../ipam/addresses.js';
import { cidrOf, isAutoAddressSubnet, poolsOf, retryOnConflict, ROUTER_INTERFACE_OWNERS_SNAT } from '../ipam/allocator.js';
import { allocateFromPool } from '../ipam/pools.js';
import {
  badResourceRequest,
  checkAllocationPools,
  checkGatewayOutOfPools,
  checkSubnet,
  hostRoutes,
  invalidOperation,
  ipAddressOrNull,
  ipPools,
  ipv6Mode,
  nameservers,
  poolsText,
  serviceTypes,
  subnetCidrOrNull,
  type HostRoute,
  type Ipv6Mode,
  type PoolText,
} from '../ipam/subnet-rules.js';
import { listResponse, parseListQuery, selectFields, showFields, STANDARD_ATTRIBUTES, type ListSpec } from '../lists.js';
import { allowed, authorize, hideAttributes, isAdmin, type NetworkService } from '../network.js';
import { AUTO_DELETE_PORT_OWNERS, findNetwork, lockNetwork, lockNetworkFor, networkInfo, onNetworkTarget, saveTags, tagsAttr } from '../networks.js';
import { checkQuota } from '../quotas.js';
import { loadTags } from '../tags.js';
import { defaultSubnetpoolFor, loadSubnetpoolFor } from './subnetpools.js';

/**
 * `/v2.0/subnets`: IPv4 and IPv6 subnets of a network, with the
 * `subnet_allocation` (subnet pools, `prefixlen`), `default-subnetpools`
 * (`use_default_subnetpool`) and standard attribute extensions. A subnet's
 * changes are made with its network's row locked, so that concurrent
 * creates cannot both take overlapping CIDRs.
 */

type Db = Kysely<NetworkSchema>;

const readOnly = { post: false, put: false };

const ROUTER_PORT_OWNERS = [...ROUTER_INTERFACE_OWNERS_SNAT, 'network:router_gateway'];

function ipVersion(value: unknown, name: string): IpVersion {
  const n = int(value, name);
  if (n !== 4 && n !== 6) throw invalidInput(name, `${n} is not in [4, 6]`);
  return n;
}

function segmentId(value: unknown, name: string): null {
  if (value === null) return null;
  uuid(value, name);
  throw new NeutronError(404, 'SegmentNotFound', `Segment ${String(value)} could not be found.`);
}

const SUBNET_ATTRS: Attrs = {
  ...STANDARD_ATTRS,
  network_id: { post: true, required: true, convert: uuid },
  ip_version: { post: true, required: true, convert: ipVersion },
  cidr: { post: true, convert: subnetCidrOrNull },
  prefixlen: { post: true, convert: (v, n) => int(v, n, 0) },
  subnetpool_id: { post: true, convert: nullableUuid },
  use_default_subnetpool: { post: true, convert: bool },
  gateway_ip: { post: true, put: true, convert: ipAddressOrNull },
  allocation_pools: { post: true, put: true, convert: ipPools },
  dns_nameservers: { post: true, put: true, convert: nameservers },
  host_routes: { post: true, put: true, convert: hostRoutes },
  enable_dhcp: { post: true, put: true, default: true, convert: bool },
  ipv6_ra_mode: { post: true, convert: ipv6Mode },
  ipv6_address_mode: { post: true, convert: ipv6Mode },
  service_types: { post: true, put: true, convert: serviceTypes },
  segment_id: { post: true, put: true, convert: segmentId },
  tags: { post: true, convert: tagsAttr },
  id: readOnly,
  created_at: readOnly,
  updated_at: readOnly,
  revision_number: readOnly,
};

/** A subnet with the network attributes its policy reads. */
type SubnetWithNetwork = SubnetRow & { network_project_id: string; network_shared: number; network_router_external: number };

const sharedOf = new WeakMap<Record<string, unknown>, boolean>();

const LIST_SPEC: ListSpec = {
  collection: 'subnets',
  resource: 'subnet',
  attributes: [
    ...STANDARD_ATTRIBUTES,
    'network_id',
    'ip_version',
    'cidr',
    'gateway_ip',
    'enable_dhcp',
    'ipv6_ra_mode',
    'ipv6_address_mode',
    'subnetpool_id',
    'segment_id',
    'service_types',
    'dns_nameservers',
  ],
  custom: {
    shared: (item, values) => values.some((v) => /^(true|1)$/i.test(v) === (sharedOf.get(item) ?? false)),
  },
};

/** The policy target of a subnet: its owner and its network's (`network:project_id`, `network:shared`). */
export function subnetTarget(subnet: SubnetRow, network: Pick<NetworkRow, 'id' | 'project_id' | 'shared' | 'router_external'>): Record<string, unknown> {
  return { id: subnet.id, project_id: subnet.project_id, tenant_id: subnet.project_id, ...onNetworkTarget(network) };
}

function withNetwork(row: SubnetRow, network: Pick<NetworkRow, 'project_id' | 'shared' | 'router_external'>): SubnetWithNetwork {
  return { ...row, network_project_id: network.project_id, network_shared: network.shared, network_router_external: network.router_external };
}

function withNetworkTarget(row: SubnetWithNetwork): Record<string, unknown> {
  return subnetTarget(row, { id: row.network_id, project_id: row.network_project_id, shared: Number(row.network_shared), router_external: Number(row.network_router_external) });
}

/** The full view of a subnet. */
export function subnetView(row: SubnetRow, tags: string[]): Record<string, unknown> {
  return {
    ...standardView(row, tags),
    network_id: row.network_id,
    ip_version: Number(row.ip_version),
    cidr: row.cidr,
    gateway_ip: row.gateway_ip,
    enable_dhcp: row.enable_dhcp === 1,
    ipv6_ra_mode: row.ipv6_ra_mode,
    ipv6_address_mode: row.ipv6_address_mode,
    subnetpool_id: row.subnetpool_id,
    dns_nameservers: json<string[]>(row.dns_nameservers, []),
    host_routes: json<HostRoute[]>(row.host_routes, []),
    allocation_pools: json<PoolText[]>(row.allocation_pools, []),
    service_types: json<string[]>(row.service_types, []),
    segment_id: row.segment_id,
  };
}

function selectWithNetwork(db: Db) {
  return db
    .selectFrom('subnet')
    .innerJoin('network', 'network.id', 'subnet.network_id')
    .selectAll('subnet')
    .select(['network.project_id as network_project_id', 'network.shared as network_shared', 'network.router_external as network_router_external']);
}

/** The subnet as the caller may see it; 404 `SubnetNotFound` otherwise. */
export async function loadSubnetFor(net: NetworkService, ctx: RequestContext, id: string, db: Db = net.db): Promise<SubnetWithNetwork> {
  const row = await selectWithNetwork(db).where('subnet.id', '=', id).executeTakeFirst();
  if (!row || !allowed(net, ctx, 'get_subnet', withNetworkTarget(row))) throw notFound('subnet', id);
  return row;
}

async function tellDriver(net: NetworkService, networkId: string): Promise<void> {
  try {
    const network = await findNetwork(net.db, networkId);
    if (network) await net.driver.networkUpdated(networkInfo(network));
  } catch (err) {
    net.log.error({ err }, `network driver failed on network ${networkId} subnet change`);
  }
}

// --- create ---

interface PreparedSubnet {
  item: Record<string, unknown>;
  project: string;
  version: IpVersion;
  /** The CIDR asked for (null: from a pool). */
  cidr: Cidr | null;
}

function prepareCreate(ctx: RequestContext, item: Record<string, unknown>): PreparedSubnet {
  const project = owner(ctx, item);
  const version = item.ip_version as IpVersion;
  const cidrText = (item.cidr as string | null | undefined) ?? null;
  const cidr = cidrText === null ? null : parseCidr(cidrText);
  if (cidr && item.prefixlen !== undefined) throw badResourceRequest('subnets', 'cidr and prefixlen must not be supplied together');
  const poolId = (item.subnetpool_id as string | null | undefined) ?? null;
  if (poolId !== null && item.use_default_subnetpool === true) throw badResourceRequest('subnets', 'subnetpool_id and use_default_subnetpool cannot both be specified');
  const fromPool = poolId !== null || item.use_default_subnetpool === true;
  if (fromPool && !cidr && item.allocation_pools !== undefined) throw badResourceRequest('subnets', 'allocation_pools allowed only for specific subnet requests.');
  if (!fromPool && !cidr) throw badResourceRequest('subnets', 'a subnetpool must be specified in the absence of a cidr');
  return { item, project, version, cidr };
}

async function resolvePool(net: NetworkService, ctx: RequestContext, trx: Db, p: PreparedSubnet): Promise<SubnetpoolRow | null> {
  const poolId = (p.item.subnetpool_id as string | null | undefined) ?? null;
  let pool: SubnetpoolRow | null = null;
  if (poolId !== null) pool = await loadSubnetpoolFor(net, ctx, poolId, trx);
  else if (p.item.use_default_subnetpool === true) {
    const version = p.cidr?.version ?? p.version;
    pool = (await defaultSubnetpoolFor(net, ctx, version, trx)) ?? null;
    if (!pool) throw badResourceRequest('subnets', `No default subnetpool found for IPv${version}`);
  }
  if (pool && Number(pool.ip_version) !== p.version) throw badResourceRequest('subnets', `Cannot allocate IPv${p.version} subnet from IPv${pool.ip_version} subnet pool`);
  return pool;
}

/**
 * The gateway and allocation pools of a new subnet on `cidr`, checked
 * (Neutron's `_validate_subnet`, the overlap with the network's other
 * subnets, the pools' bounds and the gateway's place outside them).
 */
function layout(item: Record<string, unknown>, version: IpVersion, cidr: Cidr, existing: { cidr: string }[], networkId: string): { gateway: string | null; pools: Range[] } {
  const cidrText = formatCidr(cidr);
  const first = firstHost(cidr);
  const gateway = item.gateway_ip === undefined ? (first === null ? null : formatIp(version, first)) : (item.gateway_ip as string | null);
  checkSubnet({
    ip_version: version,
    cidr,
    // Neutron checks only a gateway the request names, not the default one.
    ...(item.gateway_ip === undefined ? {} : { gateway_ip: gateway }),
    enable_dhcp: item.enable_dhcp as boolean,
    ...(item.dns_nameservers === undefined ? {} : { dns_nameservers: item.dns_nameservers as string[] }),
    ...(item.host_routes === undefined ? {} : { host_routes: item.host_routes as HostRoute[] }),
    ipv6_ra_mode: (item.ipv6_ra_mode as Ipv6Mode | null | undefined) ?? null,
    ipv6_address_mode: (item.ipv6_address_mode as Ipv6Mode | null | undefined) ?? null,
  });
  for (const other of existing) {
    const c = parseCidr(other.cidr);
    if (c && overlaps(c, cidr)) throw invalidOperation(`Requested subnet with cidr: ${cidrText} for network: ${networkId} overlaps with another subnet`);
  }
  let pools = defaultPools(cidr, gateway === null ? null : (parseIp(gateway)?.value ?? null));
  if (item.allocation_pools !== undefined) {
    pools = checkAllocationPools(item.allocation_pools as PoolText[], cidr);
    checkGatewayOutOfPools(version, gateway, pools);
  }
  return { gateway, pools };
}

async function insertSubnet(net: NetworkService, ctx: RequestContext, trx: Db, p: PreparedSubnet): Promise<SubnetWithNetwork> {
  const { item, project, version } = p;
  const networkId = item.network_id as string;
  const network = await lockNetworkFor(net, ctx, networkId, trx);
  // Neutron hides a network the caller may see (external) but not use from subnet creation.
  if (!isAdmin(net, ctx) && network.shared !== 1 && network.project_id !== project) throw new NeutronError(404, 'HTTPNotFound', 'The resource could not be found.');
  const explicit = ['service_types', 'segment_id'].filter((a) => item[a] !== undefined && item[a] !== null);
  authorize(net, ctx, 'create_subnet', { project_id: project, tenant_id: project, ...onNetworkTarget(network) }, explicit);
  const existing = await trx.selectFrom('subnet').select(['cidr', 'ip_version', 'subnetpool_id']).where('network_id', '=', networkId).execute();
  const pool = await resolvePool(net, ctx, trx, p);
  if (existing.some((s) => Number(s.ip_version) === version && (s.subnetpool_id ?? null) !== (pool?.id ?? null))) {
    throw new NeutronError(400, 'NetworkSubnetPoolAffinityError', 'Subnets hosted on the same network must be allocated from the same subnet pool.');
  }
  if (p.cidr && p.cidr.version !== version) throw invalidOperation(`cidr '${formatCidr(p.cidr)}' does not match the ip_version '${version}'`);
  const cidr = pool ? await allocateFromPool(trx, net.dialect, pool, project, { cidr: p.cidr, ...(item.prefixlen === undefined ? {} : { prefixlen: item.prefixlen as number }) }) : p.cidr;
  if (!cidr) throw badResourceRequest('subnets', 'a subnetpool must be specified in the absence of a cidr');
  const cidrText = formatCidr(cidr);
  const { gateway, pools } = layout(item, version, cidr, existing, networkId);
  const row: SubnetRow = {
    ...newStandardColumns(project, item),
    // Neutron shows a new subnet at revision 0.
    revision_number: 0,
    network_id: networkId,
    ip_version: version,
    cidr: cidrText,
    gateway_ip: gateway,
    enable_dhcp: item.enable_dhcp === false ? 0 : 1,
    ipv6_ra_mode: (item.ipv6_ra_mode as string | null | undefined) ?? null,
    ipv6_address_mode: (item.ipv6_address_mode as string | null | undefined) ?? null,
    subnetpool_id: pool?.id ?? null,
    dns_nameservers: JSON.stringify(item.dns_nameservers ?? []),
    host_routes: JSON.stringify(item.host_routes ?? []),
    allocation_pools: JSON.stringify(poolsText(version, pools)),
    service_types: JSON.stringify(item.service_types ?? []),
    segment_id: null,
  };
  await trx.insertInto('subnet').values(row).execute();
  await saveTags(trx, 'subnets', row.id, (item.tags as string[] | undefined) ?? []);
  return withNetwork(row, network);
}

async function createSubnets(net: NetworkService, req: FastifyRequest): Promise<{ rows: SubnetWithNetwork[]; bulk: boolean }> {
  const ctx = req.ctx;
  const { items, bulk } = readCreate(req.body, 'subnet', 'subnets', SUBNET_ATTRS);
  const prepared = items.map((item) => prepareCreate(ctx, item));
  const perProject = new Map<string, number>();
  for (const p of prepared) perProject.set(p.project, (perProject.get(p.project) ?? 0) + 1);
  const rows = await retryOnConflict(() =>
    net.db.transaction().execute(async (trx) => {
      for (const [project, count] of perProject) await checkQuota(trx, net.config.network, project, 'subnet', count);
      const out: SubnetWithNetwork[] = [];
      for (const p of prepared) out.push(await insertSubnet(net, ctx, trx, p));
      return out;
    }),
  );
  return { rows, bulk };
}

// --- update ---

async function updateSubnet(net: NetworkService, ctx: RequestContext, id: string, body: Record<string, unknown>): Promise<SubnetWithNetwork> {
  return net.db.transaction().execute(async (trx) => {
    const seen = await loadSubnetFor(net, ctx, id, trx);
    await lockNetwork(net, trx, seen.network_id);
    const row = await loadSubnetFor(net, ctx, id, trx);
    authorize(net, ctx, 'update_subnet', withNetworkTarget(row), Object.keys(body));
    const version = Number(row.ip_version) as IpVersion;
    const cidr = cidrOf(row);
    checkSubnet(
      {
        ip_version: version,
        cidr,
        ...(body.gateway_ip === undefined ? {} : { gateway_ip: body.gateway_ip as string | null }),
        ...(body.enable_dhcp === undefined ? {} : { enable_dhcp: body.enable_dhcp as boolean }),
        ...(body.dns_nameservers === undefined ? {} : { dns_nameservers: body.dns_nameservers as string[] }),
        ...(body.host_routes === undefined ? {} : { host_routes: body.host_routes as HostRoute[] }),
      },
      { id, enable_dhcp: row.enable_dhcp === 1, ipv6_ra_mode: row.ipv6_ra_mode, ipv6_address_mode: row.ipv6_address_mode },
    );
    const gateway = body.gateway_ip === undefined ? row.gateway_ip : (body.gateway_ip as string | null);
    const gatewayChanged = gateway !== row.gateway_ip;
    if (gatewayChanged && row.gateway_ip !== null) {
      const user = await trx
        .selectFrom('ip_allocation')
        .innerJoin('port', 'port.id', 'ip_allocation.port_id')
        .select('port.id')
        .where('ip_allocation.subnet_id', '=', id)
        .where('ip_allocation.ip_address', '=', row.gateway_ip)
        .where('port.device_owner', 'in', ROUTER_PORT_OWNERS)
        .executeTakeFirst();
      if (user) throw conflict('GatewayIpInUse', `Current gateway ip ${row.gateway_ip} already in use by port ${user.id}. Unable to update.`);
    }
    let pools = poolsOf(row);
    if (body.allocation_pools !== undefined) pools = checkAllocationPools(body.allocation_pools as PoolText[], cidr);
    if (gatewayChanged || body.allocation_pools !== undefined) checkGatewayOutOfPools(version, gateway, pools);
    const next: SubnetWithNetwork = {
      ...row,
      name: (body.name as string | undefined) ?? row.name,
      description: (body.description as string | undefined) ?? row.description,
      gateway_ip: gateway,
      enable_dhcp: body.enable_dhcp === undefined ? row.enable_dhcp : body.enable_dhcp ? 1 : 0,
      dns_nameservers: body.dns_nameservers === undefined ? row.dns_nameservers : JSON.stringify(body.dns_nameservers),
      host_routes: body.host_routes === undefined ? row.host_routes : JSON.stringify(body.host_routes),
      allocation_pools: body.allocation_pools === undefined ? row.allocation_pools : JSON.stringify(poolsText(version, pools)),
      service_types: body.service_types === undefined ? row.service_types : JSON.stringify(body.service_types),
      revision_number: Number(row.revision_number) + 1,
      updated_at: isoNow(),
    };
    const { id: _id, network_project_id: _a, network_shared: _b, network_router_external: _c, ...changes } = next;
    await trx.updateTable('subnet').set(changes).where('id', '=', id).execute();
    return next;
  });
}

// --- delete ---

async function deleteSubnet(net: NetworkService, ctx: RequestContext, id: string): Promise<SubnetWithNetwork> {
  return net.db.transaction().execute(async (trx) => {
    const seen = await loadSubnetFor(net, ctx, id, trx);
    await lockNetwork(net, trx, seen.network_id);
    const row = await loadSubnetFor(net, ctx, id, trx);
    authorize(net, ctx, 'delete_subnet', withNetworkTarget(row));
    const owners = await trx.selectFrom('ip_allocation').innerJoin('port', 'port.id', 'ip_allocation.port_id').select('port.device_owner').where('ip_allocation.subnet_id', '=', id).execute();
    const inUse = (): NeutronError => conflict('SubnetInUse', `Unable to complete operation on subnet ${id}: One or more ports have an IP allocation from this subnet.`);
    if (owners.some((o) => ROUTER_INTERFACE_OWNERS_SNAT.includes(o.device_owner))) throw inUse();
    // Addresses of SLAAC subnets are computed, not chosen: they go with the subnet.
    if (!isAutoAddressSubnet(row) && owners.some((o) => !AUTO_DELETE_PORT_OWNERS.includes(o.device_owner))) throw inUse();
    await trx.deleteFrom('ip_allocation').where('subnet_id', '=', id).execute();
    await trx.deleteFrom('tag').where('resource_type', '=', 'subnets').where('resource_id', '=', id).execute();
    await trx.deleteFrom('subnet').where('id', '=', id).execute();
    return row;
  });
}

// --- routes ---

function callerView(net: NetworkService, ctx: RequestContext, row: SubnetWithNetwork, tags: Map<string, string[]>): Record<string, unknown> {
  const view = hideAttributes(net, ctx, 'subnet', subnetView(row, tags.get(row.id) ?? []), withNetworkTarget(row));
  sharedOf.set(view, Number(row.network_shared) === 1);
  return view;
}

export function registerSubnets(app: FastifyInstance, net: NetworkService): void {
  app.get('/v2.0/subnets', async (req) => {
    const ctx = req.ctx;
    const query = parseListQuery(req, LIST_SPEC, net.config.network.pagination_max_limit);
    let select = selectWithNetwork(net.db);
    if (!isAdmin(net, ctx)) {
      const project = ctx.projectId ?? '';
      select = select.where((eb) => eb.or([eb('subnet.project_id', '=', project), eb('network.project_id', '=', project), eb('network.shared', '=', 1)]));
    }
    const networkIds = query.filters.get('network_id');
    if (networkIds && networkIds.length > 0) select = select.where('subnet.network_id', 'in', networkIds);
    const ids = query.filters.get('id');
    if (ids && ids.length > 0) select = select.where('subnet.id', 'in', ids);
    const rows = (await select.execute()).filter((row) => allowed(net, ctx, 'get_subnet', withNetworkTarget(row)));
    const tags = await loadTags(net.db, 'subnets', rows.map((r) => r.id));
    return listResponse(req, LIST_SPEC, rows.map((row) => callerView(net, ctx, row, tags)), query);
  });

  app.get<{ Params: { id: string } }>('/v2.0/subnets/:id', async (req) => {
    const row = await loadSubnetFor(net, req.ctx, req.params.id);
    const tags = await loadTags(net.db, 'subnets', [row.id]);
    return { subnet: selectFields(callerView(net, req.ctx, row, tags), showFields(req)) };
  });

  app.post('/v2.0/subnets', async (req, reply) => {
    const { rows, bulk } = await createSubnets(net, req);
    const tags = await loadTags(net.db, 'subnets', rows.map((r) => r.id));
    for (const row of rows) net.notify('subnet.create.end', { subnet: subnetView(row, tags.get(row.id) ?? []) }, req.ctx);
    const views = rows.map((row) => callerView(net, req.ctx, row, tags));
    for (const networkId of new Set(rows.map((r) => r.network_id))) await tellDriver(net, networkId);
    reply.code(201);
    return bulk ? { subnets: views } : { subnet: views[0] };
  });

  app.put<{ Params: { id: string } }>('/v2.0/subnets/:id', async (req) => {
    const body = readBody(req.body, 'subnet', SUBNET_ATTRS, 'update');
    const row = await updateSubnet(net, req.ctx, req.params.id, body);
    const tags = await loadTags(net.db, 'subnets', [row.id]);
    net.notify('subnet.update.end', { subnet: subnetView(row, tags.get(row.id) ?? []) }, req.ctx);
    await tellDriver(net, row.network_id);
    return { subnet: callerView(net, req.ctx, row, tags) };
  });

  app.delete<{ Params: { id: string } }>('/v2.0/subnets/:id', async (req, reply) => {
    const row = await deleteSubnet(net, req.ctx, req.params.id);
    net.notify('subnet.delete.end', { subnet_id: row.id, subnet: subnetView(row, []) }, req.ctx);
    await tellDriver(net, row.network_id);
    reply.code(204);
  });
}
