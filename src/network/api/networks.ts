import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { RequestContext } from '../../core/auth/context.js';
import { bool, int, isoNow, newStandardColumns, nullableStr, owner, readBody, readCreate, standardView, STANDARD_ATTRS, type Attrs } from '../common.js';
import type { NetworkRow, NetworkSchema } from '../db/schema.js';
import { conflict } from '../errors.js';
import { retryOnConflict } from '../ipam/allocator.js';
import { invalidOperation } from '../ipam/subnet-rules.js';
import { listResponse, parseListQuery, selectFields, showFields, STANDARD_ATTRIBUTES, type ListSpec } from '../lists.js';
import { authorize, hideAttributes, isAdmin, type NetworkService } from '../network.js';
import {
  AUTO_DELETE_PORT_OWNERS,
  availabilityZoneHints,
  checkAvailabilityZoneHints,
  loadNetworkFor,
  lockNetworkFor,
  networkInfo,
  networkTarget,
  networkVisible,
  saveTags,
  tagsAttr,
} from '../networks.js';
import { checkQuota } from '../quotas.js';
import { allocateSegment, changeSegmentationId, hasProviderAttributes, releaseSegments, segmentMtu, validateProviderSegment, type Segment } from '../segments.js';
import { loadTags } from '../tags.js';

/**
 * `/v2.0/networks`: Neutron's networks with the `external-net`,
 * `provider`, `net-mtu(-writable)`, `port-security`,
 * `network_availability_zone` and standard attribute extensions.
 *
 * `availability_zones` (read-only) is the zones of the network's DHCP
 * service: the configured zone once the network has a subnet with
 * `enable_dhcp`, else `[]` (no DHCP agent hosts it).
 */

type Db = Kysely<NetworkSchema>;

/** Smallest MTU a network may have (IPv4's minimum). */
export const MIN_MTU = 68;

const readOnly = { post: false, put: false };

const NETWORK_ATTRS: Attrs = {
  ...STANDARD_ATTRS,
  admin_state_up: { post: true, put: true, default: true, convert: bool },
  shared: { post: true, put: true, default: false, convert: bool },
  'router:external': { post: true, put: true, default: false, convert: bool },
  is_default: { post: true, put: true, convert: bool },
  mtu: { post: true, put: true, convert: (v, n) => int(v, n, 0) },
  port_security_enabled: { post: true, put: true, default: true, convert: bool },
  availability_zone_hints: { post: true, default: [], convert: availabilityZoneHints },
  'provider:network_type': { post: true, put: true, convert: (v, n) => nullableStr(v, n, 32) },
  'provider:physical_network': { post: true, put: true, convert: (v, n) => nullableStr(v, n, 64) },
  'provider:segmentation_id': { post: true, put: true, convert: (v, n) => (v === null ? null : int(v, n)) },
  tags: { post: true, convert: tagsAttr },
  id: readOnly,
  status: readOnly,
  subnets: readOnly,
  availability_zones: readOnly,
  ipv4_address_scope: readOnly,
  ipv6_address_scope: readOnly,
  created_at: readOnly,
  updated_at: readOnly,
  revision_number: readOnly,
};

const PROVIDER = ['provider:network_type', 'provider:physical_network', 'provider:segmentation_id'] as const;

const LIST_SPEC: ListSpec = {
  collection: 'networks',
  resource: 'network',
  attributes: [
    ...STANDARD_ATTRIBUTES,
    'admin_state_up',
    'status',
    'shared',
    'router:external',
    'is_default',
    'mtu',
    'port_security_enabled',
    'availability_zone_hints',
    'availability_zones',
    'subnets',
    ...PROVIDER,
  ],
};

/** What a network's view needs besides its row. */
interface Extras {
  tags: Map<string, string[]>;
  subnets: Map<string, { id: string; enable_dhcp: number }[]>;
}

async function loadExtras(db: Db, ids: string[]): Promise<Extras> {
  const subnets = new Map<string, { id: string; enable_dhcp: number }[]>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('subnet')
      .select(['id', 'network_id', 'enable_dhcp'])
      .where('network_id', 'in', ids.slice(i, i + 500))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    for (const row of rows) {
      const list = subnets.get(row.network_id) ?? [];
      list.push({ id: row.id, enable_dhcp: Number(row.enable_dhcp) });
      subnets.set(row.network_id, list);
    }
  }
  return { tags: await loadTags(db, 'networks', ids), subnets };
}

/** The full views of networks (what admins and notifications see), with their subnets and tags read at once. */
export async function networkViews(net: NetworkService, rows: NetworkRow[]): Promise<Record<string, unknown>[]> {
  const extras = await loadExtras(net.db, rows.map((r) => r.id));
  return rows.map((row) => networkView(net, row, extras));
}

/** The full view of a network (what admins and notifications see). */
function networkView(net: NetworkService, row: NetworkRow, extras: Extras): Record<string, unknown> {
  const subnets = extras.subnets.get(row.id) ?? [];
  const external = row.router_external === 1;
  return {
    ...standardView(row, extras.tags.get(row.id) ?? []),
    admin_state_up: row.admin_state_up === 1,
    status: row.status,
    shared: row.shared === 1,
    'router:external': external,
    is_default: external && row.is_default === 1,
    mtu: Number(row.mtu),
    port_security_enabled: row.port_security_enabled === 1,
    availability_zone_hints: JSON.parse(row.availability_zone_hints || '[]') as string[],
    availability_zones: subnets.some((s) => s.enable_dhcp === 1) ? [net.config.network.availability_zone] : [],
    subnets: subnets.map((s) => s.id),
    ipv4_address_scope: null,
    ipv6_address_scope: null,
    'provider:network_type': row.network_type,
    'provider:physical_network': row.physical_network,
    'provider:segmentation_id': row.segmentation_id === null ? null : Number(row.segmentation_id),
  };
}

/** The caller's view: without the attributes policy hides (`provider:*` for non-admins). */
function callerView(net: NetworkService, ctx: RequestContext, row: NetworkRow, extras: Extras): Record<string, unknown> {
  return hideAttributes(net, ctx, 'network', networkView(net, row, extras), networkTarget(row));
}

/** Attributes a create sets to other than their defaults: the ones `create_network:<attr>` rules check. */
function explicitAttributes(item: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (item.shared === true) out.push('shared');
  if (item['router:external'] === true) out.push('router:external');
  if (item.is_default !== undefined) out.push('is_default');
  if (item.port_security_enabled === false) out.push('port_security_enabled');
  for (const attr of PROVIDER) if (item[attr] !== undefined && item[attr] !== null) out.push(attr);
  return out;
}

function mtuFor(requested: number | undefined, max: number): number {
  if (requested === undefined || requested === 0) return max;
  if (requested < MIN_MTU) throw invalidOperation(`Requested MTU is too small, minimum is ${MIN_MTU}`);
  if (requested > max) throw invalidOperation(`Requested MTU is too big, maximum is ${max}`);
  return requested;
}

async function checkDefaultExternal(db: Db, networkId: string): Promise<void> {
  const other = await db.selectFrom('network').select('id').where('is_default', '=', 1).where('router_external', '=', 1).where('id', '!=', networkId).executeTakeFirst();
  if (other) throw conflict('DefaultExternalNetworkExists', `A default external network already exists: ${other.id}.`);
}

/** Tells the driver after a commit; a driver failure is logged, never undoes the change. */
async function tellDriver(net: NetworkService, what: string, call: () => Promise<void>): Promise<void> {
  try {
    await call();
  } catch (err) {
    net.log.error({ err }, `network driver failed on ${what}`);
  }
}

interface PreparedNetwork {
  item: Record<string, unknown>;
  project: string;
  segment: Segment | null;
}

function prepareCreate(net: NetworkService, ctx: RequestContext, item: Record<string, unknown>): PreparedNetwork {
  const project = owner(ctx, item);
  const target = { project_id: project, tenant_id: project, shared: item.shared === true, 'router:external': item['router:external'] === true };
  authorize(net, ctx, 'create_network', target, explicitAttributes(item));
  const provider = { network_type: item['provider:network_type'] as string | null | undefined, physical_network: item['provider:physical_network'] as string | null | undefined, segmentation_id: item['provider:segmentation_id'] as number | null | undefined };
  const segment = hasProviderAttributes(provider) ? validateProviderSegment(net.config.network, provider) : null;
  return { item, project, segment };
}

async function insertNetwork(net: NetworkService, trx: Db, prepared: PreparedNetwork): Promise<NetworkRow> {
  const { item, project } = prepared;
  const external = item['router:external'] === true;
  const row: NetworkRow = {
    ...newStandardColumns(project, item),
    admin_state_up: item.admin_state_up === false ? 0 : 1,
    status: 'ACTIVE',
    shared: item.shared === true ? 1 : 0,
    router_external: external ? 1 : 0,
    is_default: external && item.is_default === true ? 1 : 0,
    mtu: 0,
    port_security_enabled: item.port_security_enabled === false ? 0 : 1,
    network_type: prepared.segment?.network_type ?? net.config.network.tenant_network_type,
    physical_network: null,
    segmentation_id: null,
    availability_zone_hints: JSON.stringify(item.availability_zone_hints ?? []),
    dns_domain: '',
  };
  if (row.is_default === 1) await checkDefaultExternal(trx, row.id);
  await trx.insertInto('network').values(row).execute();
  const segment = await allocateSegment(trx, net.config.network, row.id, prepared.segment);
  row.network_type = segment.network_type;
  row.physical_network = segment.physical_network;
  row.segmentation_id = segment.segmentation_id;
  row.mtu = mtuFor(item.mtu as number | undefined, segmentMtu(net.config.network, segment.network_type));
  await trx.updateTable('network').set({ network_type: row.network_type, physical_network: row.physical_network, segmentation_id: row.segmentation_id, mtu: row.mtu }).where('id', '=', row.id).execute();
  await saveTags(trx, 'networks', row.id, (item.tags as string[] | undefined) ?? []);
  return row;
}

async function createNetworks(net: NetworkService, req: FastifyRequest): Promise<{ rows: NetworkRow[]; bulk: boolean }> {
  const ctx = req.ctx;
  const { items, bulk } = readCreate(req.body, 'network', 'networks', NETWORK_ATTRS);
  const prepared = items.map((item) => prepareCreate(net, ctx, item));
  await checkAvailabilityZoneHints(net, 'network', prepared.flatMap((p) => (p.item.availability_zone_hints as string[] | undefined) ?? []));
  const perProject = new Map<string, number>();
  for (const p of prepared) perProject.set(p.project, (perProject.get(p.project) ?? 0) + 1);
  const rows = await retryOnConflict(() =>
    net.db.transaction().execute(async (trx) => {
      for (const [project, count] of perProject) await checkQuota(trx, net.config.network, project, 'network', count);
      const out: NetworkRow[] = [];
      for (const p of prepared) out.push(await insertNetwork(net, trx, p));
      return out;
    }),
  );
  return { rows, bulk };
}

async function updateNetwork(net: NetworkService, ctx: RequestContext, id: string, body: Record<string, unknown>): Promise<NetworkRow> {
  return retryOnConflict(() =>
    net.db.transaction().execute(async (trx) => {
      const row = await lockNetworkFor(net, ctx, id, trx);
      authorize(net, ctx, 'update_network', networkTarget(row), Object.keys(body));
      const next: NetworkRow = { ...row };
      if (body.name !== undefined) next.name = body.name as string;
      if (body.description !== undefined) next.description = body.description as string;
      if (body.admin_state_up !== undefined) next.admin_state_up = body.admin_state_up ? 1 : 0;
      if (body.port_security_enabled !== undefined) next.port_security_enabled = body.port_security_enabled ? 1 : 0;
      await updateProvider(trx, row, next, body);
      if (body.mtu !== undefined) next.mtu = mtuFor(body.mtu as number, segmentMtu(net.config.network, next.network_type));
      if (body.shared !== undefined) {
        next.shared = body.shared ? 1 : 0;
        if (row.shared === 1 && next.shared === 0) await checkUnshare(trx, row);
      }
      if (body['router:external'] !== undefined) {
        next.router_external = body['router:external'] ? 1 : 0;
        if (row.router_external === 1 && next.router_external === 0) {
          const gateway = await trx.selectFrom('port').select('id').where('network_id', '=', id).where('device_owner', '=', 'network:router_gateway').executeTakeFirst();
          if (gateway) throw conflict('ExternalNetworkInUse', `External network ${id} cannot be updated to be made non-external, since it has existing gateway ports.`);
          next.is_default = 0;
        }
      }
      if (body.is_default !== undefined && next.router_external === 1) {
        next.is_default = body.is_default ? 1 : 0;
        if (next.is_default === 1) await checkDefaultExternal(trx, id);
      }
      next.revision_number = Number(row.revision_number) + 1;
      next.updated_at = isoNow();
      const { id: _id, ...changes } = next;
      await trx.updateTable('network').set(changes).where('id', '=', id).execute();
      return next;
    }),
  );
}

async function updateProvider(trx: Db, row: NetworkRow, next: NetworkRow, body: Record<string, unknown>): Promise<void> {
  const changesType = body['provider:network_type'] !== undefined && body['provider:network_type'] !== null && body['provider:network_type'] !== row.network_type;
  const changesPhysnet = body['provider:physical_network'] !== undefined && body['provider:physical_network'] !== null && body['provider:physical_network'] !== row.physical_network;
  if (changesType || changesPhysnet) {
    throw invalidOperation('Plugin does not support updating the following provider network attributes: provider:network_type, provider:physical_network');
  }
  const segmentationId = body['provider:segmentation_id'];
  if (typeof segmentationId === 'number' && segmentationId !== row.segmentation_id) {
    const current = { network_type: row.network_type, physical_network: row.physical_network, segmentation_id: row.segmentation_id === null ? null : Number(row.segmentation_id) };
    const segment = await changeSegmentationId(trx, row.id, current, segmentationId);
    next.segmentation_id = segment.segmentation_id;
  }
}

/** Neutron's `_validate_shared_update`: a network other projects use stays shared (409 `InvalidSharedSetting`). */
async function checkUnshare(trx: Db, row: NetworkRow): Promise<void> {
  const ports = await trx.selectFrom('port').select('project_id').where('network_id', '=', row.id).where('device_owner', 'not like', 'network:%').execute();
  const subnets = await trx.selectFrom('subnet').select('project_id').where('network_id', '=', row.id).execute();
  const projects = new Set([...ports, ...subnets].map((r) => r.project_id));
  projects.delete(row.project_id);
  if (projects.size > 0) throw conflict('InvalidSharedSetting', `Unable to reconfigure sharing settings for network ${row.name}. Multiple tenants are using it.`);
}

/**
 * Deletes a network with what it owns: DHCP (and other network-owned) ports,
 * floating IPs no port uses, subnets, addresses, segments, tags. 409
 * `NetworkInUse` while other ports remain.
 */
async function deleteNetwork(net: NetworkService, ctx: RequestContext, id: string): Promise<{ row: NetworkRow; extras: Extras; floatingips: string[] }> {
  return retryOnConflict(() =>
    net.db.transaction().execute(async (trx) => {
      const row = await lockNetworkFor(net, ctx, id, trx);
      authorize(net, ctx, 'delete_network', networkTarget(row));
      const extras = await loadExtras(trx, [id]);
      const ports = await trx.selectFrom('port').select(['id', 'device_owner']).where('network_id', '=', id).execute();
      const floatingips = await trx.selectFrom('floatingip').select(['id', 'floating_port_id']).where('floating_network_id', '=', id).where('fixed_port_id', 'is', null).execute();
      const floatingPorts = new Set(floatingips.map((f) => f.floating_port_id));
      const inUse = ports.filter((p) => !AUTO_DELETE_PORT_OWNERS.includes(p.device_owner) && !floatingPorts.has(p.id));
      if (inUse.length > 0) {
        throw conflict('NetworkInUse', `Unable to complete operation on network ${id}. There are one or more ports still in use on the network, id for these ports is: ${inUse.map((p) => p.id).join(',')}.`);
      }
      const portIds = ports.map((p) => p.id);
      if (floatingips.length > 0) {
        const fipIds = floatingips.map((f) => f.id);
        await trx.deleteFrom('tag').where('resource_type', '=', 'floatingips').where('resource_id', 'in', fipIds).execute();
        await trx.deleteFrom('floatingip').where('id', 'in', fipIds).execute();
      }
      await trx.deleteFrom('ip_allocation').where('network_id', '=', id).execute();
      for (let i = 0; i < portIds.length; i += 500) {
        const chunk = portIds.slice(i, i + 500);
        await trx.deleteFrom('tag').where('resource_type', '=', 'ports').where('resource_id', 'in', chunk).execute();
        await trx.deleteFrom('port').where('id', 'in', chunk).execute();
      }
      const subnetIds = (extras.subnets.get(id) ?? []).map((s) => s.id);
      if (subnetIds.length > 0) {
        await trx.deleteFrom('ip_allocation').where('subnet_id', 'in', subnetIds).execute();
        await trx.deleteFrom('tag').where('resource_type', '=', 'subnets').where('resource_id', 'in', subnetIds).execute();
        await trx.deleteFrom('subnet').where('network_id', '=', id).execute();
      }
      await releaseSegments(trx, id);
      await trx.deleteFrom('network_dhcp_agent').where('network_id', '=', id).execute();
      await trx.deleteFrom('tag').where('resource_type', '=', 'networks').where('resource_id', '=', id).execute();
      await trx.deleteFrom('network').where('id', '=', id).execute();
      return { row, extras, floatingips: floatingips.map((f) => f.id) };
    }),
  );
}

async function listNetworks(net: NetworkService, req: FastifyRequest): Promise<Record<string, unknown>> {
  const ctx = req.ctx;
  const query = parseListQuery(req, LIST_SPEC, net.config.network.pagination_max_limit);
  let select = net.db.selectFrom('network').selectAll();
  if (!isAdmin(net, ctx)) {
    const project = ctx.projectId ?? '';
    select = select.where((eb) => eb.or([eb('project_id', '=', project), eb('shared', '=', 1), eb('router_external', '=', 1)]));
  }
  const ids = query.filters.get('id');
  if (ids && ids.length > 0) select = select.where('id', 'in', ids);
  const rows = (await select.execute()).filter((row) => networkVisible(net, ctx, row));
  const extras = await loadExtras(net.db, rows.map((r) => r.id));
  return listResponse(req, LIST_SPEC, rows.map((row) => callerView(net, ctx, row, extras)), query);
}

export function registerNetworks(app: FastifyInstance, net: NetworkService): void {
  app.get('/v2.0/networks', async (req) => listNetworks(net, req));

  app.get<{ Params: { id: string } }>('/v2.0/networks/:id', async (req) => {
    const row = await loadNetworkFor(net, req.ctx, req.params.id);
    const extras = await loadExtras(net.db, [row.id]);
    return { network: selectFields(callerView(net, req.ctx, row, extras), showFields(req)) };
  });

  app.post('/v2.0/networks', async (req, reply) => {
    const { rows, bulk } = await createNetworks(net, req);
    const extras = await loadExtras(net.db, rows.map((r) => r.id));
    for (const row of rows) {
      net.notify('network.create.end', { network: networkView(net, row, extras) }, req.ctx);
      await tellDriver(net, `network ${row.id} create`, () => net.driver.networkUpdated(networkInfo(row)));
    }
    reply.code(201);
    const views = rows.map((row) => callerView(net, req.ctx, row, extras));
    return bulk ? { networks: views } : { network: views[0] };
  });

  app.put<{ Params: { id: string } }>('/v2.0/networks/:id', async (req) => {
    const body = readBody(req.body, 'network', NETWORK_ATTRS, 'update');
    const row = await updateNetwork(net, req.ctx, req.params.id, body);
    const extras = await loadExtras(net.db, [row.id]);
    net.notify('network.update.end', { network: networkView(net, row, extras) }, req.ctx);
    await tellDriver(net, `network ${row.id} update`, () => net.driver.networkUpdated(networkInfo(row)));
    return { network: callerView(net, req.ctx, row, extras) };
  });

  app.delete<{ Params: { id: string } }>('/v2.0/networks/:id', async (req, reply) => {
    const { row, extras, floatingips } = await deleteNetwork(net, req.ctx, req.params.id);
    for (const fip of floatingips) net.notify('floatingip.delete.end', { floatingip_id: fip }, req.ctx);
    net.notify('network.delete.end', { network_id: row.id, network: networkView(net, row, extras) }, req.ctx);
    await tellDriver(net, `network ${row.id} delete`, () => net.driver.networkDeleted(row.id));
    reply.code(204);
  });
}
