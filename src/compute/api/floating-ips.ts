import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { isoNow, parseJson } from '../common.js';
import type { InstanceRow } from '../db/schema.js';
import { badRequest, conflict, forbidden, notFound } from '../errors.js';
import type { NetworkInfo } from '../rpc.js';
import { isObject } from './nova-input.js';
import { neutron, proxyUntil235 } from './network-proxy.js';

/**
 * `os-floating-ips` and `os-floating-ip-pools` (up to 2.35) and the
 * `addFloatingIp`/`removeFloatingIp` server actions (up to 2.43): Nova's
 * view of the network service's floating IPs, whose pools are the
 * external networks. Calls go with the caller's token.
 */

interface NeutronFloatingIp {
  id: string;
  floating_ip_address: string;
  floating_network_id: string;
  fixed_ip_address: string | null;
  port_id: string | null;
}

interface NeutronNetwork {
  id: string;
  name: string;
}

async function externalNetworks(compute: ComputeService, ctx: RequestContext): Promise<NeutronNetwork[]> {
  const body = await neutron<{ networks: NeutronNetwork[] }>(compute, ctx, 'GET', '/v2.0/networks?router:external=true');
  return body.networks;
}

/** Nova's floating IP view: `instance_id` is the device of the port it is on. */
async function views(compute: ComputeService, ctx: RequestContext, fips: NeutronFloatingIp[]): Promise<Record<string, unknown>[]> {
  const pools = new Map((await externalNetworks(compute, ctx)).map((n) => [n.id, n.name]));
  const portIds = [...new Set(fips.map((f) => f.port_id).filter((p): p is string => !!p))];
  const devices = new Map<string, string>();
  if (portIds.length > 0) {
    const query = portIds.map((id) => `id=${encodeURIComponent(id)}`).join('&');
    const res = await compute.client.request<{ ports?: { id: string; device_id: string }[] }>('network', 'GET', `/v2.0/ports?${query}`);
    for (const p of res.body.ports ?? []) devices.set(p.id, p.device_id);
  }
  return fips.map((f) => ({
    id: f.id,
    ip: f.floating_ip_address,
    pool: pools.get(f.floating_network_id) ?? null,
    fixed_ip: f.fixed_ip_address,
    instance_id: f.port_id ? (devices.get(f.port_id) || null) : null,
  }));
}

async function loadFloatingIp(compute: ComputeService, ctx: RequestContext, id: string): Promise<NeutronFloatingIp> {
  const body = await neutron<{ floatingip: NeutronFloatingIp }>(compute, ctx, 'GET', `/v2.0/floatingips/${encodeURIComponent(id)}`, undefined, (status) =>
    status === 404 || status === 400 ? notFound(`Floating IP not found for ID ${id}`) : null,
  );
  return body.floatingip;
}

async function floatingIpByAddress(compute: ComputeService, ctx: RequestContext, address: string): Promise<NeutronFloatingIp> {
  const body = await neutron<{ floatingips: NeutronFloatingIp[] }>(compute, ctx, 'GET', `/v2.0/floatingips?floating_ip_address=${encodeURIComponent(address)}`);
  const fip = body.floatingips.find((f) => f.floating_ip_address === address);
  if (!fip) throw notFound(`Floating IP not found for address ${address}.`);
  return fip;
}

/** Marks `address` as floating on (or off) `fixed` in the server's network info cache. */
async function cacheFloatingIp(compute: ComputeService, uuid: string, address: string, fixed: string | null): Promise<void> {
  const row = await compute.db.selectFrom('instance').select(['network_info']).where('uuid', '=', uuid).executeTakeFirst();
  if (!row) return;
  const info = parseJson<NetworkInfo>(row.network_info, []);
  for (const vif of info) {
    for (const ip of vif.fixed_ips) {
      ip.floating_ips = ip.floating_ips.filter((f) => f !== address);
      if (fixed !== null && ip.ip_address === fixed) ip.floating_ips.push(address);
    }
  }
  await compute.db.updateTable('instance').set({ network_info: JSON.stringify(info), updated_at: isoNow() }).where('uuid', '=', uuid).execute();
}

function addressArg(arg: unknown, action: string): string {
  const address = isObject(arg) ? arg.address : undefined;
  if (typeof address !== 'string' || !/^[0-9a-fA-F:.]+$/.test(address)) throw badRequest(`Invalid input for field/attribute address. Value: ${String(address)}. '${String(address)}' is not a 'ip-address' (in ${action})`);
  return address;
}

/** The `addFloatingIp` action: the floating IP onto the server's first IPv4 fixed address (or `fixed_address`). */
export async function addFloatingIp(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, arg: unknown): Promise<void> {
  if (atLeast(req, '2.44')) throw badRequest('There is no such action: addFloatingIp');
  authorize(compute, ctx, 'os-floating-ips:add', { project_id: instance.project_id });
  const address = addressArg(arg, 'addFloatingIp');
  const info = parseJson<NetworkInfo>(instance.network_info, []);
  if (info.length === 0) throw badRequest('Instance network is not ready yet');
  const fixed = info.flatMap((v) => v.fixed_ips.map((ip) => ({ port: v.port_id, ...ip })));
  if (fixed.length === 0) throw badRequest('No fixed IPs associated to instance');
  const wanted = isObject(arg) && typeof arg.fixed_address === 'string' ? arg.fixed_address : null;
  const target = wanted ? fixed.find((f) => f.ip_address === wanted) : fixed.find((f) => f.version === 4);
  if (wanted && !target) throw badRequest('Specified fixed address not assigned to instance');
  if (!target) throw badRequest(`Unable to associate floating IP ${address} to any fixed IPs for instance ${instance.uuid}. Instance has no fixed IPv4 addresses to associate.`);
  const fip = await floatingIpByAddress(compute, ctx, address);
  const taken = await neutron<{ floatingips: NeutronFloatingIp[] }>(compute, ctx, 'GET', `/v2.0/floatingips?port_id=${encodeURIComponent(target.port)}`);
  if (taken.floatingips.some((f) => f.id !== fip.id && f.fixed_ip_address === target.ip_address)) throw badRequest(`Fixed IP ${target.ip_address} already has a floating IP: floating IP is already associated`);
  const previous = fip.port_id ? await compute.client.request<{ port?: { device_id: string } }>('network', 'GET', `/v2.0/ports/${fip.port_id}`) : null;
  await neutron(compute, ctx, 'PUT', `/v2.0/floatingips/${fip.id}`, { floatingip: { port_id: target.port, fixed_ip_address: target.ip_address } }, (status, message) =>
    status === 409 ? badRequest(`floating IP is already associated: ${message}`) : null,
  );
  const before = previous?.body.port?.device_id;
  if (before && before !== instance.uuid) await cacheFloatingIp(compute, before, address, null);
  await cacheFloatingIp(compute, instance.uuid, address, target.ip_address);
}

/** The `removeFloatingIp` action: 409 when the address is not on this server. */
export async function removeFloatingIp(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, arg: unknown): Promise<void> {
  if (atLeast(req, '2.44')) throw badRequest('There is no such action: removeFloatingIp');
  authorize(compute, ctx, 'os-floating-ips:remove', { project_id: instance.project_id });
  const address = addressArg(arg, 'removeFloatingIp');
  const fip = await floatingIpByAddress(compute, ctx, address);
  const port = fip.port_id ? await compute.client.request<{ port?: { device_id: string } }>('network', 'GET', `/v2.0/ports/${fip.port_id}`) : null;
  if (!fip.port_id || port?.body.port?.device_id !== instance.uuid) throw conflict(`Floating IP ${address} is not associated with instance ${instance.uuid}.`);
  await neutron(compute, ctx, 'PUT', `/v2.0/floatingips/${fip.id}`, { floatingip: { port_id: null } });
  await cacheFloatingIp(compute, instance.uuid, address, null);
}

export function registerFloatingIps(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-floating-ip-pools', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-floating-ip-pools', { project_id: ctx.projectId });
    return { floating_ip_pools: (await externalNetworks(compute, ctx)).map((n) => ({ name: n.name })) };
  });

  app.get('/v2.1/os-floating-ips', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-floating-ips:list', { project_id: ctx.projectId });
    const body = await neutron<{ floatingips: NeutronFloatingIp[] }>(compute, ctx, 'GET', `/v2.0/floatingips?project_id=${encodeURIComponent(ctx.projectId ?? '')}`);
    return { floating_ips: await views(compute, ctx, body.floatingips) };
  });

  app.post('/v2.1/os-floating-ips', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-floating-ips:create', { project_id: ctx.projectId });
    const pool = isObject(req.body) && typeof req.body.pool === 'string' ? req.body.pool : null;
    const networks = await externalNetworks(compute, ctx);
    const network = pool === null ? networks[0] : networks.find((n) => n.id === pool) ?? networks.find((n) => n.name === pool);
    if (!network) throw notFound(pool === null ? 'Floating IP pool not found.' : `Floating IP pool not found: ${pool}`);
    const created = await neutron<{ floatingip: NeutronFloatingIp }>(compute, ctx, 'POST', '/v2.0/floatingips', { floatingip: { floating_network_id: network.id } }, (status, message) =>
      status === 409 ? forbidden(`Quota exceeded for floating_ips: ${message}`) : status === 503 || status === 400 ? notFound(`No more floating IPs in pool ${network.name}.`) : null,
    );
    const [view] = await views(compute, ctx, [created.floatingip]);
    return { floating_ip: view };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-floating-ips/:id', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-floating-ips:show', { project_id: ctx.projectId });
    const [view] = await views(compute, ctx, [await loadFloatingIp(compute, ctx, req.params.id)]);
    return { floating_ip: view };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/os-floating-ips/:id', async (req, reply) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-floating-ips:delete', { project_id: ctx.projectId });
    const fip = await loadFloatingIp(compute, ctx, req.params.id);
    if (fip.port_id) {
      const port = await compute.client.request<{ port?: { device_id: string } }>('network', 'GET', `/v2.0/ports/${fip.port_id}`);
      const device = port.body.port?.device_id;
      if (device) await cacheFloatingIp(compute, device, fip.floating_ip_address, null);
    }
    await neutron(compute, ctx, 'DELETE', `/v2.0/floatingips/${fip.id}`, undefined, (status) => (status === 404 ? notFound(`Floating IP not found for ID ${fip.id}`) : null));
    return reply.code(202).send();
  });
}
