import { notifyComputePortDeleted } from './compute-notifier.js';
import { randomInt } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { RequestContext } from '../core/auth/context.js';
import { isoNow, json, newStandardColumns, standardView } from './common.js';
import type { NetworkRow, NetworkSchema, PortRow, SubnetRow } from './db/schema.js';
import type { NetworkInfo, PortInfo } from './drivers/driver.js';
import { conflict, NeutronError, notFound } from './errors.js';
import { BITS, contains, formatIp, lastAddress, parseIp } from './ipam/addresses.js';
import { allocate, cidrOf, type Allocation, type FixedIpRequest } from './ipam/allocator.js';
import { allowed, hideAttributes, type NetworkService } from './network.js';
import { findNetwork, networkInfo, onNetworkTarget, saveTags, subnetsOf } from './networks.js';
import { checkQuota } from './quotas.js';
import { deleteTags, loadTags } from './tags.js';

export type { Allocation, FixedIpRequest } from './ipam/allocator.js';

/**
 * Ports: their rows, addresses and security group bindings, the driver's
 * view of them, and their API views. Other parts of the service (routers,
 * floating IPs, DHCP) create and delete ports through these functions so
 * that every port is made the same way.
 */

/** What a service (router interface, gateway, floating IP, DHCP) asks for. */
export interface InternalPortSpec {
  network_id: string;
  project_id: string;
  device_id: string;
  device_owner: string;
  name?: string;
  admin_state_up?: boolean;
  fixed_ips?: FixedIpRequest[];
  /** null: no security groups (router and DHCP ports); absent: the project's default group, which must exist already. */
  security_groups?: string[] | null;
  /** count against the project's port quota */
  checkQuota?: boolean;
}

/** The rest of a port the API may set; absent attributes take Neutron's defaults. */
export interface PortExtras {
  id?: string;
  description?: string;
  mac_address?: string;
  status?: string;
  port_security_enabled?: boolean;
  allowed_address_pairs?: { ip_address: string; mac_address?: string }[];
  extra_dhcp_opts?: { opt_name: string; opt_value: string | null; ip_version?: number }[];
  binding_host_id?: string;
  binding_vnic_type?: string;
  binding_profile?: Record<string, unknown>;
  dns_name?: string;
  tags?: string[];
}

/** Device owners whose ports belong to a router or floating IP: not deletable through the port API. */
const L3_PORT_OWNERS: ReadonlySet<string> = new Set([
  'network:ha_router_replicated_interface',
  'network:router_interface',
  'network:router_gateway',
  'network:floatingip',
]);

type Db = Kysely<NetworkSchema>;

/** A random MAC under the configured base (`fa:16:3e`), as Neutron's `base_mac`. */
function randomMac(baseMac: string): string {
  const base = baseMac.toLowerCase().split(':').slice(0, 3);
  const tail = [randomInt(256), randomInt(256), randomInt(256)].map((b) => b.toString(16).padStart(2, '0'));
  return [...base, ...tail].join(':');
}

/**
 * The subnets automatic addresses may come from for a device owner: those
 * whose `service_types` name it, else those without service types.
 */
function subnetsForOwner(subnets: SubnetRow[], deviceOwner: string): SubnetRow[] {
  const typed = subnets.filter((s) => json<string[]>(s.service_types, []).includes(deviceOwner));
  if (typed.length > 0) return [...typed, ...subnets.filter((s) => json<string[]>(s.service_types, []).length === 0)];
  return subnets.filter((s) => json<string[]>(s.service_types, []).length === 0);
}

/**
 * Creates a port's rows inside the caller's transaction `db`: the port (MAC
 * random under `base_mac` unless given, unique on the network), its
 * addresses (explicit or automatic), its security groups and, with
 * `checkQuota`, the project's port quota. Throws Neutron's errors
 * (`NetworkNotFound`, `MacAddressInUse`, `IpAddressGenerationFailure`,
 * `OverQuota`, ...); a unique violation (a racing request took the same
 * address or MAC) propagates so that `retryOnConflict` re-runs the whole
 * transaction. Tells no driver: call {@link afterPortChange} after commit.
 */
export async function createPortRecord(net: NetworkService, db: Db, spec: InternalPortSpec & PortExtras): Promise<{ id: string; mac_address: string; fixed_ips: Allocation[] }> {
  // A share lock: ports are made side by side, while subnet changes and the
  // network's deletion (which lock it for update) wait (SQLite writes one at a time anyway).
  const select = db.selectFrom('network').selectAll().where('id', '=', spec.network_id);
  const network = await (net.dialect === 'sqlite' ? select : select.forShare()).executeTakeFirst();
  if (!network) throw notFound('network', spec.network_id);
  if (spec.checkQuota) {
    await checkQuota(db, net.config.network, spec.project_id, 'port');
  }
  let mac = spec.mac_address;
  if (mac !== undefined) {
    const taken = await db.selectFrom('port').select('id').where('network_id', '=', spec.network_id).where('mac_address', '=', mac).executeTakeFirst();
    if (taken) throw macInUse(spec.network_id, mac);
  } else {
    mac = randomMac(net.config.network.base_mac);
  }
  const portSecurity = spec.port_security_enabled ?? Number(network.port_security_enabled) === 1;
  let groups: string[] = [];
  if (spec.security_groups === undefined) {
    if (portSecurity && !spec.device_owner.startsWith('network:')) {
      const own = await db.selectFrom('default_security_group').select('security_group_id').where('project_id', '=', spec.project_id).executeTakeFirst();
      if (!own) throw new Error(`project ${spec.project_id} has no default security group yet: call ensureDefaultSecurityGroup before the transaction`);
      groups = [own.security_group_id];
    }
  } else if (spec.security_groups !== null) {
    groups = await checkGroups(db, spec.project_id, spec.security_groups);
    if (!portSecurity && groups.length > 0) throw portSecurityForGroups();
  }
  if (!portSecurity && (spec.allowed_address_pairs ?? []).length > 0) throw addressPairsNeedPortSecurity();
  const row: PortRow = {
    ...newStandardColumns(spec.project_id, { name: spec.name, description: spec.description }),
    ...(spec.id === undefined ? {} : { id: spec.id }),
    network_id: spec.network_id,
    mac_address: mac,
    admin_state_up: spec.admin_state_up === false ? 0 : 1,
    status: spec.status ?? 'DOWN',
    device_id: spec.device_id,
    device_owner: spec.device_owner,
    binding_host_id: spec.binding_host_id ?? '',
    binding_vif_type: 'unbound',
    binding_vif_details: '{}',
    binding_vnic_type: spec.binding_vnic_type ?? 'normal',
    binding_profile: JSON.stringify(spec.binding_profile ?? {}),
    port_security_enabled: portSecurity ? 1 : 0,
    allowed_address_pairs: JSON.stringify((spec.allowed_address_pairs ?? []).map((p) => ({ ip_address: p.ip_address, mac_address: p.mac_address ?? mac }))),
    extra_dhcp_opts: JSON.stringify(keptDhcpOpts(spec.extra_dhcp_opts ?? [])),
    dns_name: spec.dns_name ?? '',
  };
  await db.insertInto('port').values(row).execute();
  const id = row.id;
  const subnets = await subnetsOf(db, spec.network_id);
  if (spec.fixed_ips !== undefined) checkExplicitIps(subnets, spec.fixed_ips, spec.device_owner);
  const pool = spec.fixed_ips === undefined ? subnetsForOwner(subnets, spec.device_owner) : subnets;
  const fixedIps = await allocate(db, { id, network_id: spec.network_id, mac_address: mac, device_owner: spec.device_owner }, pool, spec.fixed_ips);
  if (groups.length > 0) await db.insertInto('port_security_group').values(groups.map((g) => ({ port_id: id, security_group_id: g }))).execute();
  await saveTags(db, 'ports', id, [...new Set(spec.tags ?? [])]);
  return { id, mac_address: mac, fixed_ips: fixedIps };
}

/**
 * Deletes a port's rows inside the caller's transaction: floating IPs on it
 * are disassociated, its addresses given back to their subnets, its security
 * group bindings and tags removed, then the port. A port that is already
 * gone is not an error. Tells no driver: call {@link afterPortDelete} with
 * the {@link portInfo} read before.
 */
export async function deletePortRecord(db: Db, portId: string): Promise<void> {
  await db
    .updateTable('floatingip')
    .set({ fixed_port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN', updated_at: isoNow(), revision_number: sql<number>`revision_number + 1` })
    .where('fixed_port_id', '=', portId)
    .execute();
  await db.deleteFrom('ip_allocation').where('port_id', '=', portId).execute();
  await db.deleteFrom('port_security_group').where('port_id', '=', portId).execute();
  await db.deleteFrom('router_port').where('port_id', '=', portId).execute();
  await deleteTags(db, 'ports', portId);
  await db.deleteFrom('port').where('id', '=', portId).execute();
}

/**
 * Neutron's guard on `DELETE /v2.0/ports/<id>`: a port of a router
 * (interface, gateway) or of a floating IP that still exists, and that has
 * addresses, is removed through the router or floating IP API instead
 * (409 `ServicePortInUse`).
 */
export async function checkPortDeletable(db: Db, row: PortRow, fixedIps: Allocation[]): Promise<void> {
  if (!L3_PORT_OWNERS.has(row.device_owner) || fixedIps.length === 0) return;
  const owner =
    row.device_owner === 'network:floatingip'
      ? await db.selectFrom('floatingip').select('id').where('id', '=', row.device_id).executeTakeFirst()
      : await db.selectFrom('router').select('id').where('id', '=', row.device_id).executeTakeFirst();
  if (!owner) return;
  throw conflict('ServicePortInUse', `Port ${row.id} cannot be deleted directly via the port API: has device owner ${row.device_owner}.`);
}

/** The port as the driver sees it, or null when it does not exist. */
export async function portInfo(net: NetworkService, portId: string): Promise<PortInfo | null> {
  const row = await net.db.selectFrom('port').selectAll().where('id', '=', portId).executeTakeFirst();
  return row ? portInfoOf(net.db, row) : null;
}

/** The port of a row already read as the driver sees it (its addresses and security groups read). */
export async function portInfoOf(db: Db, row: PortRow): Promise<PortInfo> {
  const [ips, groups] = await Promise.all([fixedIpsOf(db, [row.id]), groupsOf(db, [row.id])]);
  return infoOf(row, ips.get(row.id) ?? [], groups.get(row.id) ?? []);
}

function infoOf(row: PortRow, fixedIps: Allocation[], groups: string[]): PortInfo {
  return {
    id: row.id,
    network_id: row.network_id,
    project_id: row.project_id,
    mac_address: row.mac_address,
    admin_state_up: Number(row.admin_state_up) === 1,
    device_id: row.device_id,
    device_owner: row.device_owner,
    fixed_ips: fixedIps,
    host: row.binding_host_id,
    vnic_type: row.binding_vnic_type,
    profile: json<Record<string, unknown>>(row.binding_profile, {}),
    port_security_enabled: Number(row.port_security_enabled) === 1,
    security_groups: groups,
    allowed_address_pairs: json<{ ip_address: string; mac_address: string }[]>(row.allowed_address_pairs, []),
  };
}

/** The addresses of many ports: id -> `[{subnet_id, ip_address}]`, IPv4 first, then by address. */
export async function fixedIpsOf(db: Db, portIds: string[]): Promise<Map<string, Allocation[]>> {
  const byId = new Map<string, Allocation[]>();
  for (let i = 0; i < portIds.length; i += 500) {
    const rows = await db.selectFrom('ip_allocation').select(['port_id', 'subnet_id', 'ip_address']).where('port_id', 'in', portIds.slice(i, i + 500)).execute();
    for (const r of rows) {
      const list = byId.get(r.port_id) ?? [];
      list.push({ subnet_id: r.subnet_id, ip_address: r.ip_address });
      byId.set(r.port_id, list);
    }
  }
  for (const list of byId.values()) list.sort(compareAllocations);
  return byId;
}

function compareAllocations(a: Allocation, b: Allocation): number {
  const va = a.ip_address.includes(':') ? 6 : 4;
  const vb = b.ip_address.includes(':') ? 6 : 4;
  if (va !== vb) return va - vb;
  return a.ip_address < b.ip_address ? -1 : a.ip_address > b.ip_address ? 1 : 0;
}

/** The security groups of many ports: id -> sorted group ids. */
export async function groupsOf(db: Db, portIds: string[]): Promise<Map<string, string[]>> {
  const byId = new Map<string, string[]>();
  for (let i = 0; i < portIds.length; i += 500) {
    const rows = await db.selectFrom('port_security_group').select(['port_id', 'security_group_id']).where('port_id', 'in', portIds.slice(i, i + 500)).execute();
    for (const r of rows) {
      const list = byId.get(r.port_id) ?? [];
      list.push(r.security_group_id);
      byId.set(r.port_id, list);
    }
  }
  for (const list of byId.values()) list.sort();
  return byId;
}

/** `network` for the service owners Neutron's `network_device` rule matches (`network:*`), else ''. */
export function deviceOwnerPrefix(deviceOwner: string): string {
  return deviceOwner.startsWith('network:') ? 'network' : '';
}

/** The policy target of a port: its owner, device owner (`device_owner_prefix` for `network:` owners) and its network's `network:*` keys. */
/** The port as the caller may see it (policy `get_port`) and its policy target; 404 `PortNotFound` otherwise. */
export async function loadPortFor(net: NetworkService, ctx: RequestContext, id: string, db: Kysely<NetworkSchema> = net.db): Promise<{ row: PortRow; target: Record<string, unknown> }> {
  const row = await db.selectFrom('port').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('port', id);
  const target = portTarget(row, await findNetwork(db, row.network_id));
  if (!allowed(net, ctx, 'get_port', target)) throw notFound('port', id);
  return { row, target };
}

export function portTarget(row: Pick<PortRow, 'project_id' | 'device_owner' | 'network_id'>, network: NetworkRow | undefined): Record<string, unknown> {
  return {
    ...(network ? onNetworkTarget(network) : { 'network:project_id': '', 'network:tenant_id': '', 'network:shared': false }),
    project_id: row.project_id,
    tenant_id: row.project_id,
    network_id: row.network_id,
    device_owner: row.device_owner,
    device_owner_prefix: deviceOwnerPrefix(row.device_owner),
  };
}

/** The API view of a port, every attribute (no policy applied). */
function portView(row: PortRow, fixedIps: Allocation[], groups: string[], tags: string[]): Record<string, unknown> {
  // Assigned one by one: a spread into a large literal is ten times slower, which lists of 10,000 ports feel.
  const view = standardView(row, tags);
  view.network_id = row.network_id;
  view.admin_state_up = Number(row.admin_state_up) === 1;
  view.mac_address = row.mac_address;
  view.fixed_ips = fixedIps.map((ip) => ({ subnet_id: ip.subnet_id, ip_address: ip.ip_address }));
  view.device_id = row.device_id;
  view.device_owner = row.device_owner;
  view.status = row.status;
  view.security_groups = groups;
  view.port_security_enabled = Number(row.port_security_enabled) === 1;
  view.allowed_address_pairs = json<unknown[]>(row.allowed_address_pairs, []);
  view.extra_dhcp_opts = json<unknown[]>(row.extra_dhcp_opts, []);
  view.dns_name = row.dns_name;
  view['binding:host_id'] = row.binding_host_id;
  view['binding:vif_type'] = row.binding_vif_type;
  view['binding:vif_details'] = json<Record<string, unknown>>(row.binding_vif_details, {});
  view['binding:vnic_type'] = row.binding_vnic_type;
  view['binding:profile'] = json<Record<string, unknown>>(row.binding_profile, {});
  return view;
}

/** The API views of ports with every attribute (no policy applied); fixed IPs, security groups and tags read in batches. */
export async function fullPortViews(db: Db, rows: PortRow[]): Promise<Record<string, unknown>[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const [ips, groups, tags] = await Promise.all([fixedIpsOf(db, ids), groupsOf(db, ids), loadTags(db, 'ports', ids)]);
  return rows.map((row) => portView(row, ips.get(row.id) ?? [], groups.get(row.id) ?? [], tags.get(row.id) ?? []));
}

/**
 * The API views of ports ({@link fullPortViews}) with the attributes the
 * caller may not read left out (binding details for non-admins). Does not
 * decide visibility: pass only rows the caller may see.
 */
export async function portViews(net: NetworkService, ctx: RequestContext, rows: PortRow[]): Promise<Record<string, unknown>[]> {
  if (rows.length === 0) return [];
  const [views, networks] = await Promise.all([fullPortViews(net.db, rows), networksById(net.db, [...new Set(rows.map((r) => r.network_id))])]);
  // Which attributes policy hides depends only on the target, which many ports share: decide once per target.
  const hiddenByTarget = new Map<string, string[]>();
  return rows.map((row, i) => {
    const view = views[i] ?? {};
    const key = `${row.project_id}\n${row.network_id}\n${deviceOwnerPrefix(row.device_owner)}\n${row.device_owner}`;
    let hidden = hiddenByTarget.get(key);
    if (!hidden) {
      const shown = hideAttributes(net, ctx, 'port', Object.assign({}, view), portTarget(row, networks.get(row.network_id)));
      hidden = Object.keys(view).filter((k) => !(k in shown));
      hiddenByTarget.set(key, hidden);
    }
    for (const k of hidden) delete view[k];
    return view;
  });
}

/** Networks by id, read in batches. */
export async function networksById(db: Db, ids: string[]): Promise<Map<string, NetworkRow>> {
  const byId = new Map<string, NetworkRow>();
  for (let i = 0; i < ids.length; i += 500) {
    for (const row of await db.selectFrom('network').selectAll().where('id', 'in', ids.slice(i, i + 500)).execute()) byId.set(row.id, row);
  }
  return byId;
}

/**
 * After a committed create or change: binds the port when it has a host and
 * is not bound yet (storing `binding:vif_type`/`vif_details`, or
 * `binding_failed`), then tells the driver with `portUpdated`. Never throws:
 * the change is committed, a driver failure is logged.
 */
export async function afterPortChange(net: NetworkService, portId: string): Promise<void> {
  await afterPortsChange(net, [portId]);
}

/** {@link afterPortChange} for many ports (a bulk create), their rows read at once; the driver hears of them in order. */
export async function afterPortsChange(net: NetworkService, portIds: string[]): Promise<void> {
  if (portIds.length === 0) return;
  let ports: { row: PortRow; info: PortInfo; network: NetworkRow | undefined }[];
  try {
    const rows = await net.db.selectFrom('port').selectAll().where('id', 'in', portIds).execute();
    const [ips, groups, networks] = await Promise.all([fixedIpsOf(net.db, portIds), groupsOf(net.db, portIds), networksById(net.db, [...new Set(rows.map((r) => r.network_id))])]);
    const byId = new Map(rows.map((row) => [row.id, row]));
    ports = portIds.flatMap((id) => {
      const row = byId.get(id);
      return row ? [{ row, info: infoOf(row, ips.get(id) ?? [], groups.get(id) ?? []), network: networks.get(row.network_id) }] : [];
    });
  } catch (err) {
    net.log.warn({ err, ports: portIds }, 'telling the driver about ports failed');
    return;
  }
  for (const { row, info, network } of ports) {
    if (network) await bindAndTell(net, row, info, networkInfo(network));
  }
}

async function bindAndTell(net: NetworkService, row: PortRow, info: PortInfo, netInfo: NetworkInfo): Promise<void> {
  try {
    if (row.binding_host_id !== '' && (row.binding_vif_type === 'unbound' || row.binding_vif_type === 'binding_failed')) {
      let vifType = 'binding_failed';
      let vifDetails: Record<string, unknown> = {};
      try {
        const binding = await net.driver.bindPort(info, netInfo);
        if (binding) {
          vifType = binding.vif_type;
          vifDetails = binding.vif_details;
        }
      } catch (err) {
        net.log.warn({ err, port: row.id }, 'binding the port failed');
      }
      await net.db.updateTable('port').set({ binding_vif_type: vifType, binding_vif_details: JSON.stringify(vifDetails) }).where('id', '=', row.id).where('binding_host_id', '=', row.binding_host_id).execute();
    }
    await net.driver.portUpdated(info, netInfo);
  } catch (err) {
    net.log.warn({ err, port: row.id }, 'telling the driver about a port failed');
  }
}

/** After a committed delete: tells the driver to unplug the port. Never throws. */
export async function afterPortDelete(net: NetworkService, info: PortInfo): Promise<void> {
  notifyComputePortDeleted(net, info);
  try {
    await net.driver.portDeleted(info);
  } catch (err) {
    net.log.warn({ err, port: info.id }, 'telling the driver about a deleted port failed');
  }
}

/** 409 `MacAddressInUse`. */
function macInUse(networkId: string, mac: string): Error {
  return conflict('MacAddressInUse', `Unable to complete operation for network ${networkId}. The mac address ${mac} is in use.`);
}

/** Options with a value (or, for `router` and `classless-static-route`, an empty one) are kept; the rest are not stored. */
function keptDhcpOpts(opts: { opt_name: string; opt_value: string | null; ip_version?: number }[]): { opt_name: string; opt_value: string; ip_version: number }[] {
  const out: { opt_name: string; opt_value: string; ip_version: number }[] = [];
  for (const o of opts) {
    const blankOk = o.opt_name === 'router' || o.opt_name === 'classless-static-route';
    if (o.opt_value === null || (!blankOk && o.opt_value === '')) continue;
    out.push({ opt_name: o.opt_name, opt_value: o.opt_value, ip_version: o.ip_version ?? 4 });
  }
  return out;
}

const ROUTER_INTERFACE_OWNERS = new Set(['network:router_interface', 'network:router_interface_distributed', 'network:ha_router_replicated_interface', 'network:router_centralized_snat']);

/**
 * Refuses explicit addresses a subnet cannot give: its network address
 * (IPv6 router interfaces excepted: the subnet-router anycast address) and
 * IPv4's broadcast address (400 `InvalidIpForSubnet`, as Neutron's IPAM).
 */
function checkExplicitIps(subnets: SubnetRow[], requests: FixedIpRequest[], deviceOwner: string): void {
  for (const request of requests) {
    if (request.ip_address === undefined) continue;
    const ip = parseIp(request.ip_address);
    if (!ip) continue;
    const subnet = subnets.find((s) => (request.subnet_id === undefined || s.id === request.subnet_id) && contains(cidrOf(s), ip));
    if (!subnet) continue;
    const cidr = cidrOf(subnet);
    if (cidr.prefix >= BITS[cidr.version] - 1) continue;
    const isNetwork = ip.value === cidr.network && !(cidr.version === 6 && ROUTER_INTERFACE_OWNERS.has(deviceOwner));
    const isBroadcast = cidr.version === 4 && ip.value === lastAddress(cidr);
    if (isNetwork || isBroadcast) throw new NeutronError(400, 'InvalidIpForSubnet', `IP address ${request.ip_address} is not a valid IP for the specified subnet.`);
  }
}

/** What a port update may change (the API's names, binding ones as columns). */
export interface PortChanges {
  name?: string;
  description?: string;
  admin_state_up?: boolean;
  mac_address?: string;
  fixed_ips?: FixedIpRequest[];
  device_id?: string;
  device_owner?: string;
  security_groups?: string[];
  port_security_enabled?: boolean;
  allowed_address_pairs?: { ip_address: string; mac_address?: string }[];
  /** Merged into the port's options as Neutron does: a null value removes an option. */
  extra_dhcp_opts?: { opt_name: string; opt_value: string | null; ip_version?: number }[];
  binding_host_id?: string;
  binding_vnic_type?: string;
  binding_profile?: Record<string, unknown>;
  dns_name?: string;
}

/** What an update changed that others must hear of after commit. */
export interface PortUpdateResult {
  /** Security groups whose members (addresses) changed: the old and new groups of the port. */
  groupsTouched: string[];
  /** The port's fixed IPs changed (compute hears `network-changed`). */
  addressesChanged: boolean;
}

/**
 * Applies `changes` to port `portId` inside the caller's transaction `db`:
 * fixed IPs replace the set (unchanged addresses kept, removed ones given
 * back, new ones allocated), security groups replace theirs, extra DHCP
 * options merge, a new host unbinds the port so that {@link afterPortChange}
 * binds it again; `revision_number` and `updated_at` move. Throws Neutron's
 * errors; a unique violation propagates for `retryOnConflict`.
 */
export async function updatePortRecord(net: NetworkService, db: Db, portId: string, changes: PortChanges): Promise<PortUpdateResult> {
  const row = await db.selectFrom('port').selectAll().where('id', '=', portId).executeTakeFirst();
  if (!row) throw notFound('port', portId);
  const set: Partial<PortRow> = { updated_at: isoNow(), revision_number: Number(row.revision_number) + 1 };
  for (const key of ['name', 'description', 'device_id', 'device_owner', 'dns_name'] as const) {
    const value = changes[key];
    if (value !== undefined) set[key] = value;
  }
  if (changes.admin_state_up !== undefined) set.admin_state_up = changes.admin_state_up ? 1 : 0;
  const bound = row.binding_vif_type !== 'unbound' && row.binding_vif_type !== 'binding_failed';
  const mac = changes.mac_address ?? row.mac_address;
  if (mac !== row.mac_address) {
    if (bound) throw conflict('PortBound', `Unable to complete operation on port ${portId}, port is already bound, port type: ${row.binding_vif_type}, old_mac ${row.mac_address}, new_mac ${mac}.`);
    const taken = await db.selectFrom('port').select('id').where('network_id', '=', row.network_id).where('mac_address', '=', mac).executeTakeFirst();
    if (taken) throw macInUse(row.network_id, mac);
    set.mac_address = mac;
  }

  const currentGroups = (await groupsOf(db, [portId])).get(portId) ?? [];
  const groups = changes.security_groups === undefined ? currentGroups : await checkGroups(db, row.project_id, changes.security_groups);
  const portSecurity = changes.port_security_enabled ?? Number(row.port_security_enabled) === 1;
  const pairs = changes.allowed_address_pairs?.map((p) => ({ ip_address: p.ip_address, mac_address: p.mac_address ?? mac })) ?? json<{ ip_address: string; mac_address: string }[]>(row.allowed_address_pairs, []);
  if (!portSecurity) {
    if (changes.security_groups !== undefined && groups.length > 0) throw portSecurityForGroups();
    if (groups.length > 0) throw conflict('PortSecurityPortHasSecurityGroup', 'Port has security group associated. Cannot disable port security or IP address until security group is removed.');
    if (pairs.length > 0) throw addressPairsNeedPortSecurity();
  }
  if (changes.port_security_enabled !== undefined) set.port_security_enabled = portSecurity ? 1 : 0;
  if (changes.allowed_address_pairs !== undefined) set.allowed_address_pairs = JSON.stringify(pairs);
  if (changes.extra_dhcp_opts !== undefined) set.extra_dhcp_opts = JSON.stringify(mergeDhcpOpts(json(row.extra_dhcp_opts, []), changes.extra_dhcp_opts));

  const host = changes.binding_host_id ?? row.binding_host_id;
  const rebind = host !== row.binding_host_id || (changes.binding_vnic_type !== undefined && changes.binding_vnic_type !== row.binding_vnic_type) || changes.binding_profile !== undefined;
  if (changes.binding_host_id !== undefined) set.binding_host_id = host;
  if (changes.binding_vnic_type !== undefined) set.binding_vnic_type = changes.binding_vnic_type;
  if (changes.binding_profile !== undefined) set.binding_profile = JSON.stringify(changes.binding_profile);
  if (rebind) {
    set.binding_vif_type = 'unbound';
    set.binding_vif_details = '{}';
    // Unbound from every host (a detached interface): nothing carries its traffic.
    if (host === '') set.status = 'DOWN';
  }

  let addressesChanged = false;
  if (changes.fixed_ips !== undefined) {
    addressesChanged = await replaceFixedIps(db, { ...row, mac_address: mac, device_owner: changes.device_owner ?? row.device_owner }, changes.fixed_ips);
  }
  await db.updateTable('port').set(set).where('id', '=', portId).execute();
  if (changes.security_groups !== undefined) {
    await db.deleteFrom('port_security_group').where('port_id', '=', portId).execute();
    if (groups.length > 0) await db.insertInto('port_security_group').values(groups.map((g) => ({ port_id: portId, security_group_id: g }))).execute();
  }
  const groupsChanged = changes.security_groups !== undefined && groups.join() !== [...currentGroups].sort().join();
  const groupsTouched = groupsChanged || addressesChanged ? [...new Set([...currentGroups, ...groups])] : [];
  return { groupsTouched, addressesChanged };
}

/**
 * Neutron's update of fixed IPs: requested addresses the port has are kept,
 * a subnet-only request is satisfied by an address the port has there, the
 * rest are allocated; addresses not asked for are given back (SLAAC ones are
 * kept, as the subnet gives them by itself). True when anything changed.
 */
async function replaceFixedIps(db: Db, row: PortRow, requests: FixedIpRequest[]): Promise<boolean> {
  const subnets = await subnetsOf(db, row.network_id);
  checkExplicitIps(subnets, requests, row.device_owner);
  const original = (await fixedIpsOf(db, [row.id])).get(row.id) ?? [];
  const byIp = new Map(original.map((a) => [a.ip_address, a]));
  const kept: Allocation[] = [];
  const add: FixedIpRequest[] = [];
  for (const request of requests) {
    if (request.ip_address === undefined) continue;
    const text = normalIp(request.ip_address);
    const have = byIp.get(text);
    if (have && (request.subnet_id === undefined || request.subnet_id === have.subnet_id)) {
      kept.push(have);
      byIp.delete(text);
    } else {
      add.push(request);
    }
  }
  const bySubnet = new Map<string, Allocation[]>();
  for (const a of byIp.values()) bySubnet.set(a.subnet_id, [...(bySubnet.get(a.subnet_id) ?? []), a]);
  for (const request of requests) {
    if (request.ip_address !== undefined) continue;
    const have = request.subnet_id === undefined ? undefined : bySubnet.get(request.subnet_id)?.pop();
    if (have) kept.push(have);
    else add.push(request);
  }
  const autoSubnets = new Set(subnets.filter((s) => s.ip_version === 6 && (s.ipv6_address_mode === 'slaac' || s.ipv6_address_mode === 'dhcpv6-stateless')).map((s) => s.id));
  const removed: Allocation[] = [];
  for (const list of bySubnet.values()) {
    for (const a of list) {
      if (autoSubnets.has(a.subnet_id) && !ROUTER_INTERFACE_OWNERS.has(row.device_owner)) kept.push(a);
      else removed.push(a);
    }
  }
  // A network's subnets do not overlap: the port's address alone names the allocation.
  if (removed.length > 0) await db.deleteFrom('ip_allocation').where('port_id', '=', row.id).where('ip_address', 'in', removed.map((a) => a.ip_address)).execute();
  if (add.length > 0) await allocate(db, { id: row.id, network_id: row.network_id, mac_address: row.mac_address, device_owner: row.device_owner }, subnets, add);
  return removed.length > 0 || add.length > 0;
}

function normalIp(text: string): string {
  const ip = parseIp(text);
  return ip ? formatIp(ip.version, ip.value) : text;
}

/** Neutron's merge of extra DHCP options: same name and IP version replace (a null value removes), others are added. */
function mergeDhcpOpts(current: { opt_name: string; opt_value: string; ip_version: number }[], updates: { opt_name: string; opt_value: string | null; ip_version?: number }[]): { opt_name: string; opt_value: string; ip_version: number }[] {
  const out = current.map((o) => ({ ...o }));
  for (const u of updates) {
    const version = u.ip_version ?? 4;
    const at = out.findIndex((o) => o.opt_name === u.opt_name && o.ip_version === version);
    if (at >= 0) {
      if (u.opt_value === null) out.splice(at, 1);
      else if (keptDhcpOpts([u]).length > 0) out[at] = { opt_name: u.opt_name, opt_value: u.opt_value, ip_version: version };
    } else {
      out.push(...keptDhcpOpts([{ ...u, ip_version: version }]));
    }
  }
  return out;
}

/**
 * The distinct security groups asked for, all of which must exist and belong
 * to the port's project (404 `SecurityGroupNotFound` naming the others, as
 * Neutron's).
 */
async function checkGroups(db: Db, projectId: string, ids: string[]): Promise<string[]> {
  const wanted = [...new Set(ids)];
  if (wanted.length === 0) return [];
  const found = new Set((await db.selectFrom('security_group').select('id').where('id', 'in', wanted).where('project_id', '=', projectId).execute()).map((r) => r.id));
  const missing = wanted.filter((id) => !found.has(id));
  if (missing.length > 0) throw notFound('security_group', missing.join(', '));
  return wanted.sort();
}

/** 400 `PortSecurityAndIPRequiredForSecurityGroups` (Neutron's InvalidInput). */
function portSecurityForGroups(): NeutronError {
  return new NeutronError(400, 'PortSecurityAndIPRequiredForSecurityGroups', 'Port security must be enabled and port must have an IP address in order to use security groups.');
}

/** 409 `AddressPairAndPortSecurityRequired`. */
function addressPairsNeedPortSecurity(): NeutronError {
  return conflict('AddressPairAndPortSecurityRequired', 'Port Security must be enabled in order to have allowed address pairs on a port.');
}

