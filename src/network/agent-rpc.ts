import { createHash } from 'node:crypto';
import type { Consumer, Handler } from '../core/bus/index.js';
import { scheduleUnhosted } from './agent-scheduler.js';
import { agentOnHost, isAlive, recordHeartbeat } from './agent-store.js';
import {
  AGENT_TYPES,
  PLUGIN_TOPIC,
  type AgentSecurityGroupRule,
  type AgentState,
  type DeviceDetails,
  type DhcpNetwork,
  type DhcpPort,
  type PluginRpc,
  type RouterDetails,
  type RouterPort,
  type SecurityGroupInfo,
} from './agents/interfaces.js';
import { isRecord, json } from './common.js';
import type { PortRow, SubnetRow } from './db/schema.js';
import type { NetworkService } from './network.js';
import { portStatusChanged } from './port-status.js';
import { type Allocation, retryOnConflict } from './ipam/allocator.js';
import { afterPortChange, afterPortDelete, createPortRecord, deletePortRecord, fixedIpsOf, groupsOf, networksById, portInfoOf, updatePortRecord } from './ports.js';
import { ROUTER_GATEWAY } from './routers.js';

/**
 * The server side of the agents' bus API ({@link PluginRpc}) on the
 * `network-plugin` topic: heartbeats, and everything a data-plane agent
 * reads to (re)build its state. Agents hold no database credentials; this
 * is their only way in. Every call is idempotent.
 */

type Handlers = { [M in keyof PluginRpc]: (args: Parameters<PluginRpc[M]>[0]) => Promise<ReturnType<PluginRpc[M]>> };

function need(ok: boolean, message: string): asserts ok {
  if (!ok) throw new TypeError(message);
}

function strings(value: unknown, name: string): string[] {
  need(Array.isArray(value) && value.every((v) => typeof v === 'string'), `${name} must be a list of strings`);
  return value as string[];
}

function text(value: unknown, name: string): string {
  need(typeof value === 'string', `${name} must be a string`);
  return value as string;
}

function agentState(value: unknown): AgentState {
  need(isRecord(value), 'agent_state must be a mapping');
  const state = value as Record<string, unknown>;
  for (const key of ['agent_type', 'binary', 'topic', 'host']) need(typeof state[key] === 'string' && state[key] !== '', `agent_state.${key} must be a non-empty string`);
  need(state.configurations === undefined || isRecord(state.configurations), 'agent_state.configurations must be a mapping');
  need(state.availability_zone === undefined || typeof state.availability_zone === 'string', 'agent_state.availability_zone must be a string');
  return state as unknown as AgentState;
}

async function portsByIds(net: NetworkService, ids: string[]): Promise<PortRow[]> {
  const rows: PortRow[] = [];
  for (let i = 0; i < ids.length; i += 500) rows.push(...(await net.db.selectFrom('port').selectAll().where('id', 'in', ids.slice(i, i + 500)).execute()));
  return rows;
}

/** Rows by their `network_id`, in their order. */
function byNetwork<T extends { network_id: string }>(rows: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const group = groups.get(row.network_id);
    if (group) group.push(row);
    else groups.set(row.network_id, [row]);
  }
  return groups;
}

/** A port as the DHCP agent sees it, with its addresses from `fixedIpsOf`. */
function dhcpPortOf(port: PortRow, ips: Map<string, Allocation[]>): DhcpPort {
  return {
    id: port.id,
    mac_address: port.mac_address,
    device_owner: port.device_owner,
    device_id: port.device_id,
    admin_state_up: Number(port.admin_state_up) === 1,
    fixed_ips: ips.get(port.id) ?? [],
    dns_name: port.dns_name,
    extra_dhcp_opts: json(port.extra_dhcp_opts, []),
  };
}

/** A UUID version 5 (SHA-1, RFC 4122) of `name` in the DNS namespace, as Neutron derives a host's id for its DHCP ports. */
function hostUuid(name: string): string {
  const namespace = Buffer.from('6ba7b8109dad11d180b400c04fd430c8', 'hex');
  const bytes = createHash('sha1').update(namespace).update(name).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The `device_id` of a host's DHCP port on a network (Neutron's `dhcp<host uuid>-<network id>`). */
export function dhcpDeviceId(host: string, networkId: string): string {
  return `dhcp${hostUuid(host)}-${networkId}`;
}

/** A port's host device name (`tap` + 11 characters of its id): the id prefix, or null for another name. */
function devicePrefix(device: string): string | null {
  return /^tap[0-9a-f-]{11}$/.test(device) ? device.slice(3) : null;
}

function prefixlen(cidr: string): number {
  return Number(cidr.slice(cidr.indexOf('/') + 1));
}

/** The handlers {@link serveAgentRpc} serves. */
function agentRpcHandlers(net: NetworkService): Handlers {
  const deviceDetails = async (host: string, portIds: string[]): Promise<(DeviceDetails | { device: string })[]> => {
    const rows = await portsByIds(net, portIds);
    const [ips, groups, networks] = await Promise.all([fixedIpsOf(net.db, portIds), groupsOf(net.db, portIds), networksById(net.db, [...new Set(rows.map((r) => r.network_id))])]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    return portIds.map((id) => {
      const row = byId.get(id);
      const network = row && networks.get(row.network_id);
      if (!row || !network) return { device: id };
      if (host && row.binding_host_id && row.binding_host_id !== host) net.log.debug({ port: id, host, bound: row.binding_host_id }, 'agent asked for a port bound elsewhere');
      return {
        device: id,
        port_id: id,
        network_id: row.network_id,
        mac_address: row.mac_address,
        admin_state_up: Number(row.admin_state_up) === 1,
        status: row.status,
        network_type: network.network_type,
        physical_network: network.physical_network,
        segmentation_id: network.segmentation_id === null ? null : Number(network.segmentation_id),
        mtu: Number(network.mtu),
        fixed_ips: ips.get(id) ?? [],
        device_owner: row.device_owner,
        device_id: row.device_id,
        port_security_enabled: Number(row.port_security_enabled) === 1,
        security_groups: groups.get(id) ?? [],
        allowed_address_pairs: json(row.allowed_address_pairs, []),
        host: row.binding_host_id,
      };
    });
  };

  const deviceStatus = async (args: { port_id: string; host: string }, status: 'ACTIVE' | 'DOWN'): Promise<{ device: string; exists: boolean }> => {
    const portId = text(args?.port_id, 'port_id');
    const host = text(args?.host ?? '', 'host');
    const row = await net.db.selectFrom('port').select(['id', 'binding_host_id']).where('id', '=', portId).executeTakeFirst();
    if (!row) return { device: portId, exists: false };
    // A port bound to another host (being moved) is that host's to report.
    if (host && row.binding_host_id && row.binding_host_id !== host) return { device: portId, exists: true };
    return { device: portId, exists: await portStatusChanged(net, portId, status) };
  };

  const dhcpNetworks = async (host: string, autoSchedule: boolean): Promise<DhcpNetwork[]> => {
    const agent = await agentOnHost(net.db, AGENT_TYPES.dhcp, host);
    if (!agent || agent.admin_state_up !== 1) return [];
    // Networks that need DHCP and have no agent yet come to the agent asking.
    if (autoSchedule) await scheduleUnhosted(net, 'dhcp', agent);
    // What the agent hosts, in three queries however many networks that is.
    const [networks, subnets, ports] = await Promise.all([
      net.db.selectFrom('network_dhcp_agent').innerJoin('network', 'network.id', 'network_dhcp_agent.network_id').selectAll('network').where('network_dhcp_agent.agent_id', '=', agent.id).execute(),
      net.db.selectFrom('network_dhcp_agent').innerJoin('subnet', 'subnet.network_id', 'network_dhcp_agent.network_id').selectAll('subnet').where('network_dhcp_agent.agent_id', '=', agent.id).orderBy('subnet.created_at').execute(),
      net.db.selectFrom('network_dhcp_agent').innerJoin('port', 'port.network_id', 'network_dhcp_agent.network_id').selectAll('port').where('network_dhcp_agent.agent_id', '=', agent.id).execute(),
    ]);
    const ips = await fixedIpsOf(
      net.db,
      ports.map((p) => p.id),
    );
    const subnetsOf = byNetwork(subnets);
    const portsOf = byNetwork(ports);
    return networks.map((network) => ({
      id: network.id,
      project_id: network.project_id,
      admin_state_up: network.admin_state_up === 1,
      mtu: Number(network.mtu),
      network_type: network.network_type,
      physical_network: network.physical_network,
      segmentation_id: network.segmentation_id === null ? null : Number(network.segmentation_id),
      subnets: (subnetsOf.get(network.id) ?? []).map((s) => ({
        id: s.id,
        cidr: s.cidr,
        ip_version: Number(s.ip_version),
        gateway_ip: s.gateway_ip,
        enable_dhcp: Number(s.enable_dhcp) === 1,
        dns_nameservers: json(s.dns_nameservers, []),
        host_routes: json(s.host_routes, []),
        allocation_pools: json(s.allocation_pools, []),
        ipv6_ra_mode: s.ipv6_ra_mode,
        ipv6_address_mode: s.ipv6_address_mode,
      })),
      ports: (portsOf.get(network.id) ?? []).map((p) => dhcpPortOf(p, ips)),
    }));
  };

  const routers = async (host: string, routerIds: string[] | undefined, autoSchedule: boolean): Promise<RouterDetails[]> => {
    const agent = await agentOnHost(net.db, AGENT_TYPES.l3, host);
    if (!agent || agent.admin_state_up !== 1) return [];
    if (autoSchedule) await scheduleUnhosted(net, 'l3', agent);
    let query = net.db.selectFrom('router_l3_agent').innerJoin('router', 'router.id', 'router_l3_agent.router_id').selectAll('router').where('router_l3_agent.agent_id', '=', agent.id);
    if (routerIds) {
      if (routerIds.length === 0) return [];
      query = query.where('router.id', 'in', routerIds);
    }
    const rows = await query.execute();
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const ports = await net.db
      .selectFrom('router_port')
      .innerJoin('port', 'port.id', 'router_port.port_id')
      .innerJoin('network', 'network.id', 'port.network_id')
      .select(['router_port.router_id as router_id', 'router_port.port_type as port_type', 'port.id as id', 'port.network_id as network_id', 'port.mac_address as mac_address', 'network.mtu as mtu'])
      .where('router_port.router_id', 'in', ids)
      .execute();
    const ips = await fixedIpsOf(
      net.db,
      ports.map((p) => p.id),
    );
    const subnetIds = [...new Set([...ips.values()].flat().map((ip) => ip.subnet_id))];
    const subnets = new Map<string, SubnetRow>();
    if (subnetIds.length > 0) for (const s of await net.db.selectFrom('subnet').selectAll().where('id', 'in', subnetIds).execute()) subnets.set(s.id, s);
    const floating = await net.db.selectFrom('floatingip').selectAll().where('router_id', 'in', ids).execute();
    const routerPort = (p: (typeof ports)[number]): RouterPort => {
      const fixed = ips.get(p.id) ?? [];
      const own = fixed.map((ip) => subnets.get(ip.subnet_id)).filter((s): s is SubnetRow => s !== undefined);
      return {
        id: p.id,
        network_id: p.network_id,
        mac_address: p.mac_address,
        mtu: Number(p.mtu),
        fixed_ips: fixed.map((ip) => ({ ...ip, prefixlen: prefixlen(subnets.get(ip.subnet_id)?.cidr ?? '/0') })),
        subnets: own.map((s) => ({
          id: s.id,
          cidr: s.cidr,
          gateway_ip: s.gateway_ip,
          ip_version: Number(s.ip_version),
          ipv6_ra_mode: s.ipv6_ra_mode,
          ipv6_address_mode: s.ipv6_address_mode,
          dns_nameservers: json<string[]>(s.dns_nameservers, []),
        })),
      };
    };
    return rows.map((row) => {
      const mine = ports.filter((p) => p.router_id === row.id);
      const gateway = mine.find((p) => p.id === row.gw_port_id);
      return {
        id: row.id,
        project_id: row.project_id,
        admin_state_up: row.admin_state_up === 1,
        enable_snat: row.enable_snat === 1,
        routes: json(row.routes, []),
        gw_port: gateway ? routerPort(gateway) : null,
        interfaces: mine.filter((p) => p.id !== row.gw_port_id).map(routerPort),
        floating_ips: floating
          .filter((f) => f.router_id === row.id && f.fixed_port_id !== null && f.fixed_ip_address !== null)
          .map((f) => ({ id: f.id, floating_ip_address: f.floating_ip_address, fixed_ip_address: f.fixed_ip_address ?? '', port_id: f.fixed_port_id ?? '', status: f.status })),
      };
    });
  };

  const securityGroupInfo = async (portIds: string[]): Promise<SecurityGroupInfo> => {
    const rows = await portsByIds(net, portIds);
    const ids = rows.map((r) => r.id);
    const [ips, groups] = await Promise.all([fixedIpsOf(net.db, ids), groupsOf(net.db, ids)]);
    const info: SecurityGroupInfo = { devices: {}, security_groups: {}, sg_member_ips: {} };
    for (const row of rows) {
      info.devices[row.id] = {
        id: row.id,
        mac_address: row.mac_address,
        fixed_ips: (ips.get(row.id) ?? []).map((ip) => ip.ip_address),
        security_groups: groups.get(row.id) ?? [],
        port_security_enabled: Number(row.port_security_enabled) === 1,
        allowed_address_pairs: json(row.allowed_address_pairs, []),
      };
    }
    const groupIds = [...new Set([...groups.values()].flat())];
    if (groupIds.length === 0) return info;
    const rules = await net.db.selectFrom('security_group_rule').selectAll().where('security_group_id', 'in', groupIds).orderBy('id').execute();
    for (const id of groupIds) info.security_groups[id] = [];
    for (const r of rules) {
      const rule: AgentSecurityGroupRule = {
        id: r.id,
        security_group_id: r.security_group_id,
        direction: r.direction === 'egress' ? 'egress' : 'ingress',
        ethertype: r.ethertype === 'IPv6' ? 'IPv6' : 'IPv4',
        protocol: r.protocol,
        port_range_min: r.port_range_min === null ? null : Number(r.port_range_min),
        port_range_max: r.port_range_max === null ? null : Number(r.port_range_max),
        remote_ip_prefix: r.remote_ip_prefix,
        remote_group_id: r.remote_group_id,
      };
      info.security_groups[r.security_group_id]?.push(rule);
    }
    const remotes = [...new Set(rules.map((r) => r.remote_group_id).filter((g): g is string => g !== null))];
    if (remotes.length > 0) {
      const members = await net.db
        .selectFrom('port_security_group')
        .innerJoin('ip_allocation', 'ip_allocation.port_id', 'port_security_group.port_id')
        .select(['port_security_group.security_group_id as group_id', 'ip_allocation.ip_address as ip'])
        .where('port_security_group.security_group_id', 'in', remotes)
        .execute();
      for (const g of remotes) info.sg_member_ips[g] = { IPv4: [], IPv6: [] };
      for (const m of members) info.sg_member_ips[m.group_id]?.[m.ip.includes(':') ? 'IPv6' : 'IPv4'].push(m.ip);
      for (const g of remotes) for (const list of Object.values(info.sg_member_ips[g] ?? {})) list.sort();
    }
    return info;
  };

  /** Port ids by device name; a device whose prefix matches no port (or two, bound elsewhere) is left out. */
  const portIdsOfDevices = async (host: string, devices: string[]): Promise<Map<string, string>> => {
    const ids = new Map<string, string>();
    for (const device of devices) {
      const prefix = devicePrefix(device);
      if (!prefix) continue;
      const rows = await net.db.selectFrom('port').select(['id', 'binding_host_id']).where('id', 'like', `${prefix}%`).execute();
      const row = rows.length === 1 ? rows[0] : rows.find((r) => r.binding_host_id === host);
      if (row) ids.set(device, row.id);
    }
    return ids;
  };

  const dhcpPortView = async (portId: string): Promise<DhcpPort | null> => {
    const row = await net.db.selectFrom('port').selectAll().where('id', '=', portId).executeTakeFirst();
    if (!row) return null;
    return dhcpPortOf(row, await fixedIpsOf(net.db, [row.id]));
  };

  /** Neutron's `create_dhcp_port`/`update_dhcp_port` in one idempotent call. */
  const dhcpPort = async (host: string, networkId: string): Promise<{ port: DhcpPort | null; has_router: boolean }> => {
    const network = await net.db.selectFrom('network').select(['id', 'project_id']).where('id', '=', networkId).executeTakeFirst();
    if (!network) return { port: null, has_router: false };
    const deviceId = dhcpDeviceId(host, networkId);
    const [subnets, existing, router] = await Promise.all([
      net.db.selectFrom('subnet').select('id').where('network_id', '=', networkId).where('enable_dhcp', '=', 1).orderBy('created_at').execute(),
      net.db.selectFrom('port').selectAll().where('network_id', '=', networkId).where('device_owner', '=', 'network:dhcp').where('device_id', '=', deviceId).executeTakeFirst(),
      net.db.selectFrom('router_port').innerJoin('port', 'port.id', 'router_port.port_id').select('port.id').where('port.network_id', '=', networkId).where('router_port.port_type', '!=', ROUTER_GATEWAY).executeTakeFirst(),
    ]);
    const hasRouter = router !== undefined;
    if (subnets.length === 0) {
      if (existing) {
        const info = await portInfoOf(net.db, existing);
        await net.db.transaction().execute((trx) => deletePortRecord(trx, existing.id));
        await afterPortDelete(net, info);
      }
      return { port: null, has_router: hasRouter };
    }
    let portId = existing?.id;
    if (!portId) {
      const created = await retryOnConflict(() =>
        net.db.transaction().execute((trx) =>
          createPortRecord(net, trx, {
            network_id: networkId,
            project_id: network.project_id,
            device_id: deviceId,
            device_owner: 'network:dhcp',
            security_groups: null,
            fixed_ips: subnets.map((s) => ({ subnet_id: s.id })),
            binding_host_id: host,
          }),
        ),
      );
      portId = created.id;
      await afterPortChange(net, portId);
    } else {
      const have = (await fixedIpsOf(net.db, [portId])).get(portId) ?? [];
      const wanted = new Set(subnets.map((s) => s.id));
      const keep = have.filter((ip) => wanted.has(ip.subnet_id));
      const missing = subnets.filter((s) => !have.some((ip) => ip.subnet_id === s.id));
      const moved = existing?.binding_host_id !== host;
      if (keep.length !== have.length || missing.length > 0 || moved) {
        const id = portId;
        await retryOnConflict(() =>
          net.db.transaction().execute((trx) =>
            updatePortRecord(net, trx, id, {
              fixed_ips: [...keep.map((ip) => ({ subnet_id: ip.subnet_id, ip_address: ip.ip_address })), ...missing.map((s) => ({ subnet_id: s.id }))],
              ...(moved ? { binding_host_id: host } : {}),
            }),
          ),
        );
        await afterPortChange(net, id);
      }
    }
    return { port: await dhcpPortView(portId), has_router: hasRouter };
  };

  const metadataInstance = async (ip: string, routerId: string | undefined, networkId: string | undefined): Promise<{ instance_id: string; project_id: string } | null> => {
    let networks: string[] = [];
    if (networkId) networks = [networkId];
    else if (routerId) {
      const rows = await net.db.selectFrom('router_port').innerJoin('port', 'port.id', 'router_port.port_id').select('port.network_id').where('router_port.router_id', '=', routerId).where('router_port.port_type', '!=', ROUTER_GATEWAY).execute();
      networks = [...new Set(rows.map((r) => r.network_id))];
    }
    if (networks.length === 0) return null;
    const row = await net.db
      .selectFrom('ip_allocation')
      .innerJoin('port', 'port.id', 'ip_allocation.port_id')
      .select(['port.device_id', 'port.project_id'])
      .where('ip_allocation.ip_address', '=', ip)
      .where('ip_allocation.network_id', 'in', networks)
      .where('port.device_owner', 'like', 'compute:%')
      .where('port.device_id', '!=', '')
      .executeTakeFirst();
    return row ? { instance_id: row.device_id, project_id: row.project_id } : null;
  };

  const tunnelEndpoints = async (host: string): Promise<string[]> => {
    const rows = await net.db.selectFrom('agent').select(['host', 'configurations', 'heartbeat_timestamp']).where('agent_type', '=', AGENT_TYPES.bridge).where('host', '!=', host).execute();
    const ips = rows.filter((r) => isAlive(net, r.heartbeat_timestamp)).map((r) => json<Record<string, unknown>>(r.configurations, {}).tunneling_ip);
    return [...new Set(ips.filter((ip): ip is string => typeof ip === 'string' && ip !== ''))].sort();
  };

  return {
    report_state: async (args) => {
      need(isRecord(args), 'report_state takes {agent_state, time}');
      const state = agentState(args.agent_state);
      const { status, row } = await recordHeartbeat(net, state);
      if (status !== 'alive') net.log.info({ agent_type: row.agent_type, host: row.host, id: row.id, status }, status === 'new' ? 'agent registered' : 'agent is alive again');
      return status;
    },
    get_devices_details: async (args) => {
      const host = text(args?.host ?? '', 'host');
      if (args?.devices === undefined) return deviceDetails(host, strings(args?.port_ids, 'port_ids'));
      const devices = strings(args.devices, 'devices');
      const ids = await portIdsOfDevices(host, devices);
      const details = await deviceDetails(host, devices.map((d) => ids.get(d) ?? d));
      return details.map((d, i) => ({ ...d, device: devices[i] ?? d.device }));
    },
    update_device_up: (args) => deviceStatus(args, 'ACTIVE'),
    update_device_down: (args) => deviceStatus(args, 'DOWN'),
    get_active_networks_info: async (args) => dhcpNetworks(text(args?.host, 'host'), args?.auto_schedule !== false),
    get_routers: async (args) => routers(text(args?.host, 'host'), args?.router_ids === undefined || args.router_ids === null ? undefined : strings(args.router_ids, 'router_ids'), args?.auto_schedule !== false),
    security_group_info_for_devices: async (args) => securityGroupInfo(strings(args?.port_ids, 'port_ids')),
    get_dhcp_port: async (args) => dhcpPort(text(args?.host, 'host'), text(args?.network_id, 'network_id')),
    get_metadata_instance: async (args) => {
      need(isRecord(args), 'get_metadata_instance takes {ip, router_id | network_id}');
      const routerId = args.router_id === undefined ? undefined : text(args.router_id, 'router_id');
      const networkId = args.network_id === undefined ? undefined : text(args.network_id, 'network_id');
      return metadataInstance(text(args.ip, 'ip'), routerId, networkId);
    },
    get_tunnel_endpoints: async (args) => tunnelEndpoints(text(args?.host, 'host')),
    update_floatingip_statuses: async (args) => {
      need(isRecord(args) && isRecord(args.statuses), 'update_floatingip_statuses takes {router_id, statuses}');
      const routerId = text(args.router_id, 'router_id');
      let updated = 0;
      for (const [id, status] of Object.entries(args.statuses)) {
        need(status === 'ACTIVE' || status === 'DOWN' || status === 'ERROR', 'a floating IP status is ACTIVE, DOWN or ERROR');
        // Only while the address still belongs to this router (it may have moved since the agent read it).
        const res = await net.db.updateTable('floatingip').set({ status }).where('id', '=', id).where('router_id', '=', routerId).where('status', '!=', status).executeTakeFirst();
        updated += Number(res.numUpdatedRows);
      }
      return { updated };
    },
  };
}

/**
 * Serves the agents' API on `network-plugin` as `server` (one per
 * network-api process; agents' calls are shared among them). Stop it with
 * the returned consumer.
 */
export async function serveAgentRpc(net: NetworkService, server: string): Promise<Consumer> {
  return net.bus.serve(PLUGIN_TOPIC, server, agentRpcHandlers(net) as unknown as Record<string, Handler>);
}
