import type { Kysely } from 'kysely';
import type { NetworkConfig } from '../core/config.js';
import { isoNow, newStandardColumns } from './common.js';
import type { NetworkSchema } from './db/schema.js';
import { defaultPools, formatCidr, formatIp, parseCidr, parseIp, type Range } from './ipam/addresses.js';

/**
 * Creates, when `network.public_network.enabled`, the shared external network
 * (`public` by default: flat on physical network `public`, owned by the admin
 * project) with its subnet, so that routers have a gateway and floating IPs
 * work out of the box. Idempotent: an existing external network of that name
 * is left alone. Returns the network's id (null when disabled).
 */
export async function ensurePublicNetwork(db: Kysely<NetworkSchema>, config: NetworkConfig, adminProjectId: string): Promise<string | null> {
  const wanted = config.public_network;
  if (!wanted.enabled) return null;
  const existing = await db.selectFrom('network').select('id').where('name', '=', wanted.name).where('router_external', '=', 1).executeTakeFirst();
  if (existing) return existing.id;
  const cidr = parseCidr(wanted.cidr, true);
  if (!cidr) throw new Error(`network.public_network.cidr '${wanted.cidr}' is not a network address with a prefix`);
  const gateway = wanted.gateway_ip ? parseIp(wanted.gateway_ip) : null;
  if (wanted.gateway_ip && !gateway) throw new Error(`network.public_network.gateway_ip '${wanted.gateway_ip}' is not an address`);
  const pools: Range[] = wanted.allocation_pool ? [poolFrom(wanted.allocation_pool)] : defaultPools(cidr, gateway?.value ?? null);
  const now = isoNow();
  const network = newStandardColumns(adminProjectId, { name: wanted.name }, now);
  const id = network.id;
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('network')
      .values({
        ...network,
        admin_state_up: 1,
        status: 'ACTIVE',
        shared: 0,
        router_external: 1,
        is_default: 1,
        mtu: config.global_physnet_mtu,
        port_security_enabled: 1,
        network_type: 'flat',
        physical_network: wanted.physical_network,
        segmentation_id: null,
        availability_zone_hints: '[]',
        dns_domain: '',
      })
      .execute();
    await trx.insertInto('segment_allocation').values({ network_type: 'flat', physical_network: wanted.physical_network, segmentation_id: 0, network_id: id }).execute();
    const subnet = (name: string, c: typeof cidr, gw: string | null, p: Range[]) => ({
      ...newStandardColumns(adminProjectId, { name }, now),
      network_id: id,
      ip_version: c.version,
      cidr: formatCidr(c),
      gateway_ip: gw,
      enable_dhcp: 0,
      ipv6_ra_mode: null,
      ipv6_address_mode: null,
      subnetpool_id: null,
      dns_nameservers: '[]',
      host_routes: '[]',
      allocation_pools: JSON.stringify(p.map((r) => ({ start: formatIp(c.version, r.start), end: formatIp(c.version, r.end) }))),
      service_types: '[]',
      segment_id: null,
    });
    await trx.insertInto('subnet').values(subnet(`${wanted.name}-subnet`, cidr, gateway ? formatIp(gateway.version, gateway.value) : null, pools)).execute();
    if (wanted.cidr_v6) {
      const v6 = parseCidr(wanted.cidr_v6, true);
      if (!v6 || v6.version !== 6) throw new Error(`network.public_network.cidr_v6 '${wanted.cidr_v6}' is not an IPv6 network`);
      const gw6 = v6.network + 1n;
      await trx.insertInto('subnet').values(subnet(`${wanted.name}-subnet-v6`, v6, formatIp(6, gw6), defaultPools(v6, gw6))).execute();
    }
  });
  return id;
}

function poolFrom(text: string): Range {
  const [start, end] = text.split('-').map((part) => parseIp(part.trim()));
  if (!start || !end || start.value > end.value) throw new Error(`network.public_network.allocation_pool '${text}' is not 'first-last'`);
  return { start: start.value, end: end.value };
}
