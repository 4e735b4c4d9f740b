import type { FastifyInstance } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { authorize, contextOf, isAdmin, type ComputeService } from '../compute.js';
import { notFound } from '../errors.js';
import { neutron, proxyUntil235 } from './network-proxy.js';

/**
 * `os-networks` and `os-tenant-networks` (up to 2.35, read only): the
 * network service's networks the caller sees, in Nova's nova-network era
 * shape (`label` is the name; fields nova-network had and the network
 * service does not are null). Creating or changing networks here is gone
 * from Nova (410), as the network service does that.
 */

interface NeutronNetwork {
  id: string;
  name: string;
  subnets?: string[];
  project_id?: string;
  mtu?: number;
  created_at?: string;
  updated_at?: string;
}

interface NeutronSubnet {
  id: string;
  network_id: string;
  cidr: string;
  ip_version: number;
  gateway_ip: string | null;
  enable_dhcp: boolean;
  dns_nameservers?: string[];
}

const ADMIN_FIELDS = ['created_at', 'updated_at', 'deleted_at', 'deleted', 'injected', 'bridge', 'vlan', 'vpn_public_address', 'vpn_public_port', 'vpn_private_address', 'dhcp_start', 'project_id', 'host', 'bridge_interface', 'multi_host', 'priority', 'rxtx_base', 'mtu', 'dhcp_server', 'enable_dhcp', 'share_address'];

function networkView(network: NeutronNetwork, subnets: NeutronSubnet[], admin: boolean): Record<string, unknown> {
  const v4 = subnets.find((s) => s.network_id === network.id && s.ip_version === 4);
  const v6 = subnets.find((s) => s.network_id === network.id && s.ip_version === 6);
  const view: Record<string, unknown> = {
    id: network.id,
    label: network.name,
    cidr: v4?.cidr ?? null,
    netmask: null,
    gateway: v4?.gateway_ip ?? null,
    broadcast: null,
    dns1: v4?.dns_nameservers?.[0] ?? null,
    dns2: v4?.dns_nameservers?.[1] ?? null,
    cidr_v6: v6?.cidr ?? null,
    gateway_v6: v6?.gateway_ip ?? null,
    netmask_v6: null,
  };
  if (admin) {
    for (const field of ADMIN_FIELDS) view[field] = null;
    Object.assign(view, { project_id: network.project_id ?? null, mtu: network.mtu ?? null, created_at: network.created_at ?? null, updated_at: network.updated_at ?? null, deleted: false, enable_dhcp: v4?.enable_dhcp ?? null });
  }
  return view;
}

/** `os-tenant-networks` shows only the id, the name as `label` and the IPv4 cidr. */
function tenantView(network: NeutronNetwork, subnets: NeutronSubnet[]): Record<string, unknown> {
  const v4 = subnets.find((s) => s.network_id === network.id && s.ip_version === 4);
  return { id: network.id, label: network.name, cidr: v4?.cidr ?? null };
}

async function networks(compute: ComputeService, ctx: RequestContext, id?: string): Promise<{ networks: NeutronNetwork[]; subnets: NeutronSubnet[] }> {
  const list = id
    ? [(await neutron<{ network: NeutronNetwork }>(compute, ctx, 'GET', `/v2.0/networks/${encodeURIComponent(id)}`, undefined, (status) => (status === 404 || status === 400 ? notFound('Network could not be found.') : null))).network]
    : (await neutron<{ networks: NeutronNetwork[] }>(compute, ctx, 'GET', '/v2.0/networks')).networks;
  const subnets = (await neutron<{ subnets: NeutronSubnet[] }>(compute, ctx, 'GET', '/v2.0/subnets')).subnets;
  return { networks: list, subnets };
}

export function registerNetworks(app: FastifyInstance, compute: ComputeService): void {
  for (const [path, rule, adminView] of [
    ['os-networks', 'os-networks', true],
    ['os-tenant-networks', 'os-tenant-networks', false],
  ] as const) {
    app.get(`/v2.1/${path}`, async (req) => {
      proxyUntil235(req);
      const ctx = contextOf(req);
      authorize(compute, ctx, `${rule}:list`, { project_id: ctx.projectId });
      const found = await networks(compute, ctx);
      return { networks: found.networks.map((n) => (adminView ? networkView(n, found.subnets, isAdmin(compute, ctx)) : tenantView(n, found.subnets))) };
    });
    app.get<{ Params: { id: string } }>(`/v2.1/${path}/:id`, async (req) => {
      proxyUntil235(req);
      const ctx = contextOf(req);
      authorize(compute, ctx, `${rule}:show`, { project_id: ctx.projectId });
      const found = await networks(compute, ctx, req.params.id);
      const network = found.networks[0];
      if (!network) throw notFound('Network could not be found.');
      return { network: adminView ? networkView(network, found.subnets, isAdmin(compute, ctx)) : tenantView(network, found.subnets) };
    });
  }
}
