import type { Logger } from '../../core/logging.js';
import type { BridgeDataPlane, DeviceDetails, SecurityGroupInfo } from '../agents/interfaces.js';
import type { PortFirewall } from './firewall.js';
import type { HostNet, Link } from './host.js';
import { bridgeName, tapName, vlanName, vxlanName } from './names.js';

/** How the bridge data plane meets the host's physical networks. */
export interface BridgeOptions {
  /** physnet -> existing/ensured bridge on the host (e.g. { public: 'br-ex' }): flat networks on that physnet use it, no brq. */
  bridgeMappings: Record<string, string>;
  /** physnet -> host interface (e.g. { physnet1: 'eth1' }): flat uses the interface itself on brq; VLAN a sub-interface <if>.<vlan>. */
  interfaceMappings: Record<string, string>;
  /** Local VTEP address for VXLAN ('' : VXLAN devices without `local`, single host). */
  vxlanLocalIp: string;
  /** VXLAN UDP port (4789). */
  vxlanPort: number;
  /** Addresses the host keeps on mapped bridges (e.g. { 'br-ex': ['172.24.4.1/24'] }): how the host reaches floating IPs. */
  bridgeAddresses: Record<string, string[]>;
  log: Logger;
}

/** A network's segment, as a port's details or the DHCP/L3 agents carry it. */
export interface NetworkSegment {
  network_id: string;
  network_type: string;
  physical_network: string | null;
  segmentation_id: number | null;
  mtu: number;
}

/** The flood entry of a VXLAN device: unknown and broadcast destinations go to every VTEP listed with it. */
const FLOOD_MAC = '00:00:00:00:00:00';

/** What `ip -j -d link show` says of a device's kind (the fields read here). */
interface LinkDetails {
  ifname: string;
  link?: string;
  master?: string;
  mtu?: number;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number; learning?: boolean } };
}

/**
 * The VM-port side of the Linux bridge agent, as Neutron's: one bridge per
 * network on each host (`brq<network>`), holding the network's segment
 * (a VXLAN device, a VLAN sub-interface or a physical interface) and the
 * taps of its ports; flat networks of a mapped physnet use the mapped
 * bridge itself (`br-ex`). Every method is idempotent and reads the
 * kernel's state, never memory, so an agent that restarts simply calls it
 * again; re-applying an unchanged state touches nothing traffic depends on.
 */
export class LinuxBridge implements BridgeDataPlane {
  private readonly log: Logger;
  /** Bridges this process has made right, by network: plugging onto them needs no check until one fails. */
  private readonly ready = new Map<string, string>();

  constructor(
    private readonly host: HostNet,
    private readonly firewall: PortFirewall,
    private readonly options: BridgeOptions,
  ) {
    this.log = options.log;
  }

  /**
   * The bridge of a network segment, made when missing (no STP, forward
   * delay 0, the network's MTU, up) with its VXLAN/VLAN/flat member; a
   * mapped flat network gets its mapped bridge (made when missing, up, with
   * its addresses). Returns the bridge's name.
   */
  async ensureNetworkBridge(segment: NetworkSegment): Promise<string> {
    const mapped = this.mappedBridge(segment);
    if (mapped) {
      await this.ensureMappedBridge(mapped);
      return mapped;
    }
    const bridge = bridgeName(segment.network_id);
    await this.ensureBridge(bridge, segment.mtu);
    // The host takes no part in a tenant network: no IPv6 link-local address on its bridge (as Neutron).
    await this.host.exec('sysctl', ['-q', '-w', `net.ipv6.conf.${bridge}.disable_ipv6=1`]).catch((err: unknown) => {
      this.log.debug({ err, bridge }, 'could not disable IPv6 on the bridge (IPv6 off on this host?)');
    });
    switch (segment.network_type) {
      case 'vxlan':
        await this.ensureVxlan(segment, bridge);
        break;
      case 'vlan': {
        const parent = this.physicalDevice(segment);
        if (Object.values(this.options.bridgeMappings).includes(parent)) await this.ensureMappedBridge(parent);
        const name = vlanName(parent, this.segmentationId(segment));
        await this.ensureVlan(name, parent, this.segmentationId(segment));
        await this.attach(name, bridge, segment.mtu);
        break;
      }
      case 'flat': {
        const iface = this.physicalDevice(segment);
        const link = await this.host.link(iface);
        if (!link) throw new Error(`interface ${iface} of physical network ${segment.physical_network ?? ''} does not exist on this host`);
        if (link.master && link.master !== bridge) throw new Error(`interface ${iface} is already on bridge ${link.master}: one flat network per physical network`);
        // The physical interface keeps its own MTU: it is the operator's.
        await this.attach(iface, bridge, null);
        break;
      }
      case 'local':
        break;
      default:
        throw new Error(`network type ${segment.network_type} is not supported by the Linux bridge data plane`);
    }
    return bridge;
  }

  /**
   * Sets the flood list (head-end replication) of VXLAN network `vni`: one
   * all-zero FDB entry per remote VTEP, the others removed. Idempotent; the
   * VXLAN device must exist (ensure the network's bridge first).
   */
  async setVxlanPeers(vni: number, remoteIps: string[]): Promise<void> {
    const device = vxlanName(vni);
    if (!(await this.host.link(device))) throw new Error(`VXLAN device ${device} does not exist: ensure the network's bridge first`);
    const entries = JSON.parse((await this.host.exec('bridge', ['-j', 'fdb', 'show', 'dev', device])) || '[]') as { mac: string; dst?: string }[];
    const current = new Set(entries.filter((e) => e.mac === FLOOD_MAC && e.dst).map((e) => e.dst ?? ''));
    const wanted = new Set(remoteIps.filter((ip) => ip !== this.options.vxlanLocalIp));
    const added = [...wanted].filter((ip) => !current.has(ip));
    const removed = [...current].filter((ip) => !wanted.has(ip));
    // New peers first: a peer that stays is never left out, even for a moment.
    for (const ip of added) await this.host.exec('bridge', ['fdb', 'append', FLOOD_MAC, 'dev', device, 'dst', ip]);
    for (const ip of removed) await this.host.exec('bridge', ['fdb', 'del', FLOOD_MAC, 'dev', device, 'dst', ip]);
    if (added.length > 0 || removed.length > 0) this.log.info({ vni, added, removed }, 'VXLAN flood list changed');
  }

  /**
   * Removes a network's brq bridge with its VXLAN/VLAN device when nothing
   * but its segment device is left on it (a flat interface only leaves the
   * bridge). The segment devices are found on the bridge itself, so a
   * network known only by its id (deleted while the agent was down) is
   * removed too; `segment`, when given, also removes a VXLAN/VLAN device
   * that a crash left without its bridge. Mapped bridges are never removed.
   * A bridge already gone is fine.
   */
  async removeNetworkBridge(networkId: string, segment?: NetworkSegment): Promise<void> {
    this.ready.delete(networkId);
    if (segment && this.mappedBridge(segment)) return;
    const bridge = bridgeName(networkId);
    const links = await this.host.links();
    const flatInterfaces = new Set(Object.values(this.options.interfaceMappings));
    const isSegmentDevice = (l: Link): boolean => l.kind === 'vxlan' || l.kind === 'vlan' || flatInterfaces.has(l.ifname);
    const onBridge = links.filter((l) => l.master === bridge);
    const others = onBridge.filter((l) => !isSegmentDevice(l)).map((l) => l.ifname);
    if (others.length > 0) {
      this.log.debug({ bridge, ports: others }, 'network bridge still in use; kept');
      return;
    }
    const member = segment ? this.memberName(segment) : null;
    const orphan = links.find((l) => l.ifname === member && l.master === undefined && (l.kind === 'vxlan' || l.kind === 'vlan'));
    for (const device of [...onBridge, ...(orphan ? [orphan] : [])]) {
      if (device.kind === 'vxlan' || device.kind === 'vlan') await this.host.deleteLink(device.ifname);
      else await this.host.ip(['link', 'set', 'dev', device.ifname, 'nomaster']);
    }
    if (links.some((l) => l.ifname === bridge)) {
      await this.host.deleteLink(bridge);
      this.log.info({ bridge, network_id: networkId }, 'network bridge removed');
    }
  }

  /**
   * Puts the port's tap (which must exist: QEMU's, or a DHCP/router veth's
   * host end) on its network's bridge, made when missing, with the
   * network's MTU; the tap is up when the port's admin state is up, down
   * otherwise (Neutron's). Idempotent.
   */
  async plugPort(port: DeviceDetails): Promise<void> {
    const tap = tapName(port.port_id);
    const link = await this.host.link(tap);
    if (!link) throw new Error(`cannot plug port ${port.port_id}: its device ${tap} does not exist on this host`);
    let bridge = this.ready.get(port.network_id);
    try {
      if (!bridge) bridge = await this.networkBridge(port);
      await this.attachLink(link, bridge, port.mtu, port.admin_state_up);
    } catch (err) {
      // The bridge went behind our back (or was never right): made again, then plugged again.
      if (!this.ready.has(port.network_id)) throw err;
      this.ready.delete(port.network_id);
      bridge = await this.networkBridge(port);
      await this.attach(tap, bridge, port.mtu, port.admin_state_up);
    }
    if (link.master !== bridge) this.log.info({ port_id: port.port_id, device: tap, bridge }, 'port plugged');
  }

  /** Forgets which bridges were made right: the next plug checks each again (an agent's full resync). */
  recheckBridges(): void {
    this.ready.clear();
  }

  private async networkBridge(segment: NetworkSegment): Promise<string> {
    const bridge = await this.ensureNetworkBridge(segment);
    this.ready.set(segment.network_id, bridge);
    return bridge;
  }

  /** Takes the port's tap off its bridge; a tap already gone is fine. The tap itself stays: its owner deletes it. */
  async unplugPort(portId: string): Promise<void> {
    const tap = tapName(portId);
    const link = await this.host.link(tap);
    if (!link?.master) return;
    await this.host.ip(['link', 'set', 'dev', tap, 'nomaster']).catch(async (err: unknown) => {
      if (await this.host.link(tap)) throw err;
    });
    this.log.info({ port_id: portId, device: tap, bridge: link.master }, 'port unplugged');
  }

  /** Replaces the filtering of all this host's ports with `info` (see {@link PortFirewall.apply}): pass every port of the host. */
  applySecurityGroups(info: SecurityGroupInfo): Promise<void> {
    // No port to filter: no chain, jump or table of ours stays on the host.
    if (Object.keys(info.devices).length === 0) return this.firewall.clear();
    const devices = Object.fromEntries(Object.keys(info.devices).map((id) => [id, tapName(id)]));
    return this.firewall.apply(info, devices);
  }

  /** Drops the filtering of these ports; the others keep theirs. */
  removeSecurityGroupFilters(portIds: string[]): Promise<void> {
    return this.firewall.remove(portIds);
  }

  /** The mapped bridge a flat network uses, or null. */
  private mappedBridge(segment: NetworkSegment): string | null {
    if (segment.network_type !== 'flat' || !segment.physical_network) return null;
    return this.options.bridgeMappings[segment.physical_network] ?? null;
  }

  /** The device a VLAN or flat segment rides on: the mapped interface, else the mapped bridge (VLANs of `br-ex`). */
  private physicalDevice(segment: NetworkSegment): string {
    const physnet = segment.physical_network;
    const device = physnet ? (this.options.interfaceMappings[physnet] ?? (segment.network_type === 'vlan' ? this.options.bridgeMappings[physnet] : undefined)) : undefined;
    if (!device) throw new Error(`no interface mapping for physical network ${physnet ?? '(none)'} of network ${segment.network_id}`);
    return device;
  }

  private segmentationId(segment: NetworkSegment): number {
    if (segment.segmentation_id === null) throw new Error(`${segment.network_type} network ${segment.network_id} has no segmentation id`);
    return segment.segmentation_id;
  }

  /** The segment's device on brq, or null (local networks, or a mapping no longer configured: then the bridge stays). */
  private memberName(segment: NetworkSegment): string | null {
    try {
      switch (segment.network_type) {
        case 'vxlan':
          return vxlanName(this.segmentationId(segment));
        case 'vlan':
          return vlanName(this.physicalDevice(segment), this.segmentationId(segment));
        case 'flat':
          return this.physicalDevice(segment);
        default:
          return null;
      }
    } catch {
      return null;
    }
  }

  private async details(name: string): Promise<LinkDetails | null> {
    const out = await this.host.ip(['-j', '-d', 'link', 'show', 'dev', name]).catch(() => null);
    if (out === null) return null;
    return (JSON.parse(out) as LinkDetails[])[0] ?? null;
  }

  /** A bridge that forwards at once (no STP, no forward delay), with `mtu` (unless null), up. */
  private async ensureBridge(name: string, mtu: number | null): Promise<void> {
    const link = await this.host.link(name);
    if (link && link.kind !== 'bridge') throw new Error(`${name} exists on this host and is not a bridge`);
    if (!link) {
      await this.host.ip(['link', 'add', 'name', name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']).catch(async (err: unknown) => {
        if (!(await this.host.link(name))) throw err;
      });
      this.log.info({ bridge: name }, 'bridge created');
    } else {
      // Same values again change nothing; after a crash mid-creation they are what was missing.
      await this.host.ip(['link', 'set', 'dev', name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    }
    if (mtu !== null && link?.mtu !== mtu) await this.host.ip(['link', 'set', 'dev', name, 'mtu', String(mtu)]);
    await this.host.ip(['link', 'set', 'dev', name, 'up']);
  }

  /** A mapped bridge (made when missing) up, with the host's addresses on it. The operator's own settings stay. */
  private async ensureMappedBridge(name: string): Promise<void> {
    const link = await this.host.link(name);
    if (link && link.kind !== 'bridge') throw new Error(`mapped bridge ${name} exists on this host and is not a bridge`);
    if (!link) await this.ensureBridge(name, null);
    else await this.host.ip(['link', 'set', 'dev', name, 'up']);
    for (const address of this.options.bridgeAddresses[name] ?? []) {
      // `replace` is idempotent: an address already there stays, untouched.
      await this.host.ip(['address', 'replace', address, 'dev', name]);
    }
  }

  /** `vxlan-<vni>` on the bridge; one made with other settings (VTEP address or port changed) is made again. */
  private async ensureVxlan(segment: NetworkSegment, bridge: string): Promise<void> {
    const vni = this.segmentationId(segment);
    const name = vxlanName(vni);
    const local = this.options.vxlanLocalIp;
    const current = await this.details(name);
    const data = current?.linkinfo?.info_data;
    let exists = current !== null;
    if (current && (current.linkinfo?.info_kind !== 'vxlan' || data?.id !== vni || data.port !== this.options.vxlanPort || (data.local ?? '') !== local || data.learning !== false)) {
      this.log.warn({ device: name, found: data ?? null }, 'VXLAN device has other settings; made again');
      await this.host.deleteLink(name);
      exists = false;
    }
    if (!exists) {
      const args = ['link', 'add', name, 'type', 'vxlan', 'id', String(vni), 'dstport', String(this.options.vxlanPort)];
      if (local) args.push('local', local);
      args.push('nolearning');
      await this.host.ip(args);
      this.log.info({ device: name, vni, local: local || null }, 'VXLAN device created');
    }
    await this.attach(name, bridge, segment.mtu);
  }

  /** `<parent>.<vlan>`, made when missing; one with another parent or id is an operator's and is refused. */
  private async ensureVlan(name: string, parent: string, vlan: number): Promise<void> {
    const current = await this.details(name);
    if (current) {
      if (current.linkinfo?.info_kind !== 'vlan' || current.linkinfo.info_data?.id !== vlan || current.link !== parent) {
        throw new Error(`${name} exists on this host and is not VLAN ${vlan} of ${parent}`);
      }
      return;
    }
    if (!(await this.host.link(parent))) throw new Error(`interface ${parent} for VLAN ${vlan} does not exist on this host`);
    await this.host.ip(['link', 'set', 'dev', parent, 'up']);
    await this.host.ip(['link', 'add', 'link', parent, 'name', name, 'type', 'vlan', 'id', String(vlan)]).catch((err: unknown) => {
      if (String(err).includes('Unknown device type')) throw new Error(`cannot make VLAN device ${name}: this host's kernel has no 802.1Q VLAN support`);
      throw err;
    });
    this.log.info({ device: name, vlan, parent }, 'VLAN device created');
  }

  /** Puts `device` on `bridge` with `mtu` (null: its own) and sets it up (or down). Changes only what differs. */
  private async attach(device: string, bridge: string, mtu: number | null, up = true): Promise<void> {
    const link = await this.host.link(device);
    if (!link) throw new Error(`device ${device} does not exist on this host`);
    await this.attachLink(link, bridge, mtu, up);
  }

  /** One `ip link set` for what differs (MTU, bridge) and the state: a port is plugged in one command. */
  private async attachLink(link: Link, bridge: string, mtu: number | null, up = true): Promise<void> {
    const args = ['link', 'set', 'dev', link.ifname];
    if (mtu !== null && link.mtu !== mtu) args.push('mtu', String(mtu));
    if (link.master !== bridge) args.push('master', bridge);
    args.push(up ? 'up' : 'down');
    await this.host.ip(args);
  }
}
