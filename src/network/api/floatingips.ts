import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { RequestContext } from '../../core/auth/context.js';
import { isoNow, isRecord, newStandardColumns, nullableUuid, owner, readBody, STANDARD_ATTRS, standardView, uuid, type Attrs } from '../common.js';
import { notifyComputeNetworkChanged } from '../compute-notifier.js';
import type { FloatingIpRow, NetworkSchema } from '../db/schema.js';
import { badRequest, conflict, NeutronError, notFound } from '../errors.js';
import { parseIp } from '../ipam/addresses.js';
import { retryOnConflict } from '../ipam/allocator.js';
import { ipAddressOrNull } from '../ipam/subnet-rules.js';
import { listResponse, parseListQuery, selectFields, showFields, STANDARD_ATTRIBUTES, type ListSpec } from '../lists.js';
import { allowed, authorize, isAdmin, type NetworkService } from '../network.js';
import { findNetwork, networkVisible, saveTags, subnetsOf, tagsAttr } from '../networks.js';
import { afterPortChange, afterPortDelete, createPortRecord, deletePortRecord, fixedIpsOf, loadPortFor, portInfo } from '../ports.js';
import { checkQuota } from '../quotas.js';
import { FLOATINGIP_OWNER, ownerTarget, routerForFloatingIp, routersUpdated } from '../routers.js';
import { deleteTags, loadTags } from '../tags.js';

/**
 * Floating IPs (Neutron's `router` extension, with `fip-port-details`): an
 * address of an external network, held by a `network:floatingip` port, that
 * a router translates to a port's fixed address. Association needs a router
 * with a gateway on the floating network and an interface on the port's
 * subnet. The fake data plane applies at once: `ACTIVE` when associated,
 * `DOWN` when not.
 */

type Db = Kysely<NetworkSchema>;

// Floating IPs have every standard attribute but a name.
const { name: _name, ...UNNAMED_ATTRS } = STANDARD_ATTRS;

const FIP_ATTRS: Attrs = {
  ...UNNAMED_ATTRS,
  floating_network_id: { post: true, required: true, convert: uuid },
  floating_ip_address: { post: true, convert: ipAddressOrNull },
  subnet_id: { post: true, convert: nullableUuid },
  port_id: { post: true, put: true, convert: nullableUuid },
  fixed_ip_address: { post: true, put: true, convert: ipAddressOrNull },
  tags: { post: true, convert: tagsAttr },
};

const LIST_SPEC: ListSpec = {
  collection: 'floatingips',
  resource: 'floatingip',
  attributes: [...STANDARD_ATTRIBUTES.filter((a) => a !== 'name'), 'floating_ip_address', 'floating_network_id', 'router_id', 'port_id', 'fixed_ip_address', 'status'],
};

function fipBadRequest(message: string): NeutronError {
  return badRequest(`Bad floatingip request: ${message}.`, 'BadRequest');
}

/** The attributes a request sets, for `<action>:<attribute>` policy rules. */
function requested(body: unknown): string[] {
  const item = isRecord(body) ? body.floatingip : undefined;
  return isRecord(item) ? Object.keys(item) : [];
}

/** The floating IP as the caller may see it; 404 `FloatingIPNotFound` otherwise. */
async function loadFloatingIpFor(net: NetworkService, ctx: RequestContext, id: string): Promise<FloatingIpRow> {
  const row = await net.db.selectFrom('floatingip').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || !allowed(net, ctx, 'get_floatingip', ownerTarget(row))) throw notFound('floatingip', id);
  return row;
}

/** Views of floating IPs with tags and `port_details` (two queries whatever their number). */
async function floatingIpViews(db: Db, rows: FloatingIpRow[]): Promise<Record<string, unknown>[]> {
  const ids = rows.map((r) => r.id);
  const portIds = [...new Set(rows.map((r) => r.fixed_port_id).filter((p): p is string => p !== null))];
  const [tags, ports] = await Promise.all([
    loadTags(db, 'floatingips', ids),
    portIds.length > 0
      ? db.selectFrom('port').select(['id', 'name', 'network_id', 'mac_address', 'admin_state_up', 'status', 'device_id', 'device_owner']).where('id', 'in', portIds).execute()
      : Promise.resolve([]),
  ]);
  const byId = new Map(ports.map((p) => [p.id, p]));
  return rows.map((row) => {
    const port = row.fixed_port_id ? byId.get(row.fixed_port_id) : undefined;
    const { name: _unnamed, ...standard } = standardView(row, tags.get(row.id) ?? []);
    return {
      ...standard,
      floating_ip_address: row.floating_ip_address,
      floating_network_id: row.floating_network_id,
      router_id: row.router_id,
      port_id: row.fixed_port_id,
      fixed_ip_address: row.fixed_ip_address,
      status: row.status,
      port_details: port
        ? {
            name: port.name,
            network_id: port.network_id,
            mac_address: port.mac_address,
            admin_state_up: Number(port.admin_state_up) === 1,
            status: port.status,
            device_id: port.device_id,
            device_owner: port.device_owner,
          }
        : null,
      dns_name: row.dns_name,
      dns_domain: row.dns_domain,
      qos_policy_id: null,
    };
  });
}

async function viewOf(net: NetworkService, id: string): Promise<Record<string, unknown>> {
  const row = await net.db.selectFrom('floatingip').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const [view] = await floatingIpViews(net.db, [row]);
  return view ?? {};
}

interface Association {
  fixed_port_id: string | null;
  fixed_ip_address: string | null;
  router_id: string | null;
}

const NONE: Association = { fixed_port_id: null, fixed_ip_address: null, router_id: null };

/**
 * Checks and resolves the association of floating IP `fip` with a port (and
 * one of its IPv4 addresses), as Neutron's `_get_assoc_data`: the port must
 * be visible (404) and the floating IP owner's (400, admins excepted), not a
 * DHCP port; the address one of the port's IPv4 ones (the only one when not
 * given); a router must connect the port's subnet to the floating network
 * (404 `ExternalGatewayForFloatingIPNotFound`); no other floating IP on that
 * network may hold the same port and address (409).
 */
async function associate(
  net: NetworkService,
  ctx: RequestContext,
  trx: Db,
  fip: { id: string; project_id: string; floating_network_id: string; floating_ip_address: string },
  portId: string,
  fixedIp: string | null,
): Promise<Association> {
  const port = (await loadPortFor(net, ctx, portId, trx)).row;
  if (port.project_id !== fip.project_id && !isAdmin(net, ctx)) {
    throw fipBadRequest(`Cannot process floating IP association with Port ${port.id}, since that port is owned by a different tenant`);
  }
  if (port.device_owner === 'network:dhcp') throw fipBadRequest(`Port ${port.id} is unable to be assigned a floating IP`);
  const ips = (await fixedIpsOf(trx, [port.id])).get(port.id) ?? [];
  let chosen: { subnet_id: string; ip_address: string } | undefined;
  if (fixedIp !== null) {
    if (parseIp(fixedIp)?.version !== 4) throw fipBadRequest(`Cannot process floating IP association with ${fixedIp}, since that is not an IPv4 address`);
    chosen = ips.find((ip) => ip.ip_address === fixedIp);
    if (!chosen) throw fipBadRequest(`Port ${port.id} does not have fixed ip ${fixedIp}`);
  } else {
    const v4 = ips.filter((ip) => parseIp(ip.ip_address)?.version === 4);
    if (v4.length === 0) throw fipBadRequest(`Cannot add floating IP to port ${port.id} that has no fixed IPv4 addresses`);
    if (v4.length > 1) throw fipBadRequest(`Port ${port.id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address when assigning a floating IP`);
    chosen = v4[0];
  }
  if (!chosen) throw fipBadRequest(`Cannot add floating IP to port ${port.id} that has no fixed IPv4 addresses`);
  const subnet = await trx.selectFrom('subnet').selectAll().where('id', '=', chosen.subnet_id).executeTakeFirstOrThrow();
  const routerId = await routerForFloatingIp(trx, port, subnet, fip.floating_network_id);
  const taken = await trx
    .selectFrom('floatingip')
    .select('id')
    .where('fixed_port_id', '=', port.id)
    .where('floating_network_id', '=', fip.floating_network_id)
    .where('fixed_ip_address', '=', chosen.ip_address)
    .where('id', '!=', fip.id)
    .executeTakeFirst();
  if (taken) {
    throw conflict(
      'FloatingIPPortAlreadyAssociated',
      `Cannot associate floating IP ${fip.floating_ip_address} (${fip.id}) with port ${port.id} using fixed IP ${chosen.ip_address}, as that fixed IP already has a floating IP on external network ${fip.floating_network_id}.`,
    );
  }
  return { fixed_port_id: port.id, fixed_ip_address: chosen.ip_address, router_id: routerId };
}

export function registerFloatingIps(app: FastifyInstance, net: NetworkService): void {
  app.post('/v2.0/floatingips', async (req, reply) => {
    const ctx = req.ctx;
    const item = readBody(req.body, 'floatingip', FIP_ATTRS, 'create');
    const project = owner(ctx, item);
    authorize(net, ctx, 'create_floatingip', { project_id: project, tenant_id: project }, requested(req.body));
    const portId = (item.port_id ?? null) as string | null;
    const fixedIp = (item.fixed_ip_address ?? null) as string | null;
    if (fixedIp !== null && portId === null) throw fipBadRequest('fixed_ip_address cannot be specified without a port_id');
    const networkId = item.floating_network_id as string;
    const network = await findNetwork(net.db, networkId);
    if (!network || !networkVisible(net, ctx, network)) throw notFound('network', networkId);
    if (network.router_external !== 1) throw fipBadRequest(`Network ${networkId} is not a valid external network`);
    if (!(await subnetsOf(net.db, networkId)).some((s) => s.ip_version === 4)) throw fipBadRequest(`Network ${networkId} does not contain any IPv4 subnet`);
    const request: { subnet_id?: string; ip_address?: string } = {};
    if (typeof item.subnet_id === 'string') request.subnet_id = item.subnet_id;
    if (typeof item.floating_ip_address === 'string') request.ip_address = item.floating_ip_address;
    const standard = newStandardColumns(project, item);
    const id = standard.id;
    const created = await retryOnConflict(() =>
      net.db.transaction().execute(async (trx) => {
        await checkQuota(trx, net.config.network, project, 'floatingip');
        const port = await createPortRecord(net, trx, {
          network_id: networkId,
          project_id: '',
          device_id: id,
          device_owner: FLOATINGIP_OWNER,
          name: '',
          admin_state_up: true,
          status: 'N/A',
          ...(Object.keys(request).length > 0 ? { fixed_ips: [request] } : {}),
          security_groups: null,
          checkQuota: false,
        });
        const address = port.fixed_ips.find((ip) => parseIp(ip.ip_address)?.version === 4)?.ip_address;
        if (address === undefined) throw new NeutronError(400, 'ExternalIpAddressExhausted', `Unable to find any IP address on external network ${networkId}.`);
        const fip = { id, project_id: project, floating_network_id: networkId, floating_ip_address: address };
        const assoc = portId !== null ? await associate(net, ctx, trx, fip, portId, fixedIp) : NONE;
        await trx
          .insertInto('floatingip')
          .values({
            ...standard,
            floating_network_id: networkId,
            floating_ip_address: address,
            floating_port_id: port.id,
            ...assoc,
            status: assoc.fixed_port_id ? 'ACTIVE' : 'DOWN',
            dns_name: '',
            dns_domain: '',
          })
          .execute();
        await saveTags(trx, 'floatingips', id, (item.tags as string[] | undefined) ?? []);
        return { portId: port.id, routerId: assoc.router_id, fixedPortId: assoc.fixed_port_id };
      }),
    );
    await afterPortChange(net, created.portId);
    await routersUpdated(net, [created.routerId]);
    await serversNetworkChanged(net, [created.fixedPortId]);
    const view = await viewOf(net, id);
    net.notify('floatingip.create.end', { floatingip: view }, ctx);
    reply.code(201);
    return { floatingip: view };
  });

  app.get('/v2.0/floatingips', async (req) => {
    const ctx = req.ctx;
    const query = parseListQuery(req, LIST_SPEC, net.config.network.pagination_max_limit);
    let select = net.db.selectFrom('floatingip').selectAll();
    if (!isAdmin(net, ctx)) select = select.where('project_id', '=', ctx.projectId ?? '');
    // The filters compute asks on every server (`port_id`, `project_id`) narrow in SQL too; listResponse applies them all.
    const q = req.query as Record<string, unknown>;
    if (typeof q.port_id === 'string' && q.port_id !== '') select = select.where('fixed_port_id', '=', q.port_id);
    for (const key of ['project_id', 'tenant_id']) if (typeof q[key] === 'string' && q[key] !== '') select = select.where('project_id', '=', q[key] as string);
    const rows = (await select.execute()).filter((row) => allowed(net, ctx, 'get_floatingip', ownerTarget(row)));
    return listResponse(req, LIST_SPEC, await floatingIpViews(net.db, rows), query);
  });

  app.get<{ Params: { id: string } }>('/v2.0/floatingips/:id', async (req) => {
    const row = await loadFloatingIpFor(net, req.ctx, req.params.id);
    const [view] = await floatingIpViews(net.db, [row]);
    return { floatingip: selectFields(view ?? {}, showFields(req)) };
  });

  app.put<{ Params: { id: string } }>('/v2.0/floatingips/:id', async (req) => {
    const ctx = req.ctx;
    const item = readBody(req.body, 'floatingip', FIP_ATTRS, 'update');
    const fip = await loadFloatingIpFor(net, ctx, req.params.id);
    authorize(net, ctx, 'update_floatingip', ownerTarget(fip), requested(req.body));
    const fixedIp = (item.fixed_ip_address ?? null) as string | null;
    if (fixedIp !== null && !item.port_id) throw fipBadRequest('fixed_ip_address cannot be specified without a port_id');
    const routers = await net.db.transaction().execute(async (trx) => {
      let select = trx.selectFrom('floatingip').selectAll().where('id', '=', fip.id);
      if (net.dialect !== 'sqlite') select = select.forUpdate();
      const current = await select.executeTakeFirst();
      if (!current) throw notFound('floatingip', fip.id);
      let assoc: Association = NONE;
      if (typeof item.port_id === 'string') {
        assoc = await associate(net, ctx, trx, current, item.port_id, fixedIp);
      } else if (!('port_id' in item) && current.fixed_port_id !== null) {
        // Neutron checks the association again when it is kept (the router may be another now).
        assoc = await associate(net, ctx, trx, current, current.fixed_port_id, current.fixed_ip_address);
      }
      await trx
        .updateTable('floatingip')
        .set((eb) => ({
          ...assoc,
          status: assoc.fixed_port_id ? 'ACTIVE' : 'DOWN',
          ...(item.description !== undefined ? { description: item.description as string } : {}),
          updated_at: isoNow(),
          revision_number: eb('revision_number', '+', 1),
        }))
        .where('id', '=', fip.id)
        .execute();
      return { routers: [current.router_id, assoc.router_id], ports: current.fixed_port_id === assoc.fixed_port_id ? [] : [current.fixed_port_id, assoc.fixed_port_id] };
    });
    await routersUpdated(net, routers.routers);
    await serversNetworkChanged(net, routers.ports);
    const view = await viewOf(net, fip.id);
    net.notify('floatingip.update.end', { floatingip: view }, ctx);
    return { floatingip: view };
  });

  app.delete<{ Params: { id: string } }>('/v2.0/floatingips/:id', async (req, reply) => {
    const ctx = req.ctx;
    const fip = await loadFloatingIpFor(net, ctx, req.params.id);
    authorize(net, ctx, 'delete_floatingip', ownerTarget(fip));
    const [view] = await floatingIpViews(net.db, [fip]);
    const info = await portInfo(net, fip.floating_port_id);
    const routerId = await net.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('floatingip').select(['id', 'router_id']).where('id', '=', fip.id).executeTakeFirst();
      if (!current) throw notFound('floatingip', fip.id);
      await deleteTags(trx, 'floatingips', fip.id);
      await trx.deleteFrom('floatingip').where('id', '=', fip.id).execute();
      await deletePortRecord(trx, fip.floating_port_id);
      return current.router_id;
    });
    if (info) await afterPortDelete(net, info);
    await routersUpdated(net, [routerId]);
    await serversNetworkChanged(net, [fip.fixed_port_id]);
    net.notify('floatingip.delete.end', { floatingip_id: fip.id, floatingip: view }, ctx);
    reply.code(204);
  });
}

/** Compute hears `network-changed` for the servers whose floating IPs changed (after commit). */
async function serversNetworkChanged(net: NetworkService, portIds: (string | null)[]): Promise<void> {
  const ids = portIds.filter((id): id is string => id !== null);
  if (ids.length === 0) return;
  const ports = await net.db.selectFrom('port').select(['id', 'device_id', 'device_owner']).where('id', 'in', ids).execute();
  for (const port of ports) notifyComputeNetworkChanged(net, port);
}
