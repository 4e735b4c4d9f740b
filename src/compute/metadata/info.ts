import net from 'node:net';
import type { ComputeService } from '../compute.js';
import { parseJson } from '../common.js';
import type { InstanceRow } from '../db/schema.js';
import type { EmbeddedFlavor, NetworkInfo } from '../rpc.js';
import type { InstanceMetadataInfo } from './content.js';

/** What reading a server's metadata needs of compute: its database. */
export type MetadataSource = Pick<ComputeService, 'db'>;

/**
 * Everything the metadata of the server `row` says, read from compute's
 * database: its metadata items, key pair type, network info cache, flavor,
 * security groups and block devices. Reads only.
 */
export async function metadataInfoOf(compute: MetadataSource, row: InstanceRow): Promise<InstanceMetadataInfo> {
  const [items, keypair, bdms] = await Promise.all([
    compute.db.selectFrom('instance_metadata').select(['key', 'value']).where('instance_uuid', '=', row.uuid).execute(),
    row.key_name === null
      ? Promise.resolve(undefined)
      : compute.db.selectFrom('key_pair').select('type').where('user_id', '=', row.user_id).where('name', '=', row.key_name).executeTakeFirst(),
    compute.db.selectFrom('block_device_mapping').select(['device_name', 'destination_type', 'source_type', 'guest_format']).where('instance_uuid', '=', row.uuid).execute(),
  ]);
  const flavor = parseJson<Partial<EmbeddedFlavor>>(row.flavor, {});
  const networkInfo = parseJson<NetworkInfo>(row.network_info, []);
  const groups = parseJson<unknown[]>(row.security_groups, []);
  return {
    uuid: row.uuid,
    name: row.display_name,
    hostname: row.hostname,
    projectId: row.project_id,
    availabilityZone: row.availability_zone,
    launchIndex: row.launch_index,
    reservationId: row.reservation_id,
    flavorName: flavor.name ?? '',
    imageRef: row.image_ref,
    keyName: row.key_name,
    keyData: row.key_data,
    keyType: keypair?.type ?? 'ssh',
    userData: row.user_data,
    metadata: Object.fromEntries(items.map((i) => [i.key, i.value])),
    vifs: networkInfo.map((vif) => ({
      portId: vif.port_id,
      networkId: vif.network_id,
      mac: vif.mac_address,
      mtu: null,
      fixedIps: vif.fixed_ips.map((ip) => ({ address: ip.ip_address, version: ip.version, subnetId: ip.subnet_id, floatingIps: [...(ip.floating_ips ?? [])] })),
    })),
    createdAt: row.created_at,
    securityGroups: groups.map((g) => (typeof g === 'string' ? g : typeof g === 'object' && g !== null && 'name' in g ? String(g.name) : '')).filter(Boolean),
    rootDeviceName: row.root_device_name,
    blockDevices: bdms.map((b) => ({ deviceName: b.device_name, destinationType: b.destination_type, sourceType: b.source_type, guestFormat: b.guest_format })),
  };
}

/** The server `uuid` when it exists and is not deleted. */
export async function instanceByUuid(compute: MetadataSource, uuid: string): Promise<InstanceRow | null> {
  return (await compute.db.selectFrom('instance').selectAll().where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst()) ?? null;
}

/**
 * The one live server with the fixed IP `address` (on one of `networkIds`
 * when given), from compute's network info caches; null when none or when
 * the address is on more than one server (overlapping tenant networks: the
 * asker cannot be told apart).
 */
export async function instanceByFixedIp(compute: MetadataSource, address: string, networkIds: string[] | null = null): Promise<InstanceRow | null> {
  if (net.isIP(address) === 0) return null;
  // An IP address has no LIKE wildcards, so the text search is exact enough to narrow; the JSON decides.
  const candidates = await compute.db.selectFrom('instance').selectAll().where('deleted', '=', 0).where('network_info', 'like', `%${address}%`).execute();
  const matches = candidates.filter((row) =>
    parseJson<NetworkInfo>(row.network_info, []).some((vif) => (networkIds === null || networkIds.includes(vif.network_id)) && vif.fixed_ips.some((ip) => sameAddress(ip.ip_address, address))),
  );
  return matches.length === 1 ? (matches[0] ?? null) : null;
}

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  if (net.isIPv6(a) && net.isIPv6(b)) {
    const list = new net.BlockList();
    list.addAddress(a, 'ipv6');
    return list.check(b, 'ipv6');
  }
  return false;
}
