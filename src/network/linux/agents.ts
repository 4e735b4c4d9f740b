import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Bus, Handler } from '../../core/bus/index.js';
import type { LinuxNetworkConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import { Agent, PluginClient, type AgentIdentity, type AgentOptions } from '../agents/agent.js';
import { AGENT_TOPICS, AGENT_TYPES, type AgentNotifications, type DeviceDetails, type AgentState } from '../agents/interfaces.js';
import { LinuxBridge } from './bridge.js';
import { LinuxDhcp } from './dhcp.js';
import { PortFirewall } from './firewall.js';
import { HostNet } from './host.js';
import { bridgeName } from './names.js';
import { LinuxL3 } from './l3.js';
import { MetadataProxies, startMetadataAgent } from './metadata-proxy.js';

/**
 * The agents of the `linux` data plane on one host (Neutron's Linux bridge,
 * DHCP, L3 and metadata agents). They hold no database credentials: they
 * read their work from the network server over the bus ({@link PluginRpc})
 * and are told of changes on their topics. Each converges the host to what
 * the server says, so a restart, a missed notification or a periodic resync
 * all end in the same state, without touching what is already right.
 */

type Handlers = Partial<Record<keyof AgentNotifications, Handler>>;

/**
 * Runs `work` one at a time: a kick while it runs makes it run once more
 * after, however many kicks came (they are coalesced). A failed run is
 * logged; the next kick runs it again.
 */
class Coalescer {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly work: () => Promise<void>,
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  /** Resolves when a run that started after this call has finished. */
  kick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.work();
        } catch (err) {
          this.log.warn({ err }, `${this.what} failed; retried at the next change or resync`);
        }
      } while (this.again);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Waits for a run under way. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}

/** A port's device name on the host: a VM's tap or the host end of a DHCP or router veth. */
const TAP_DEVICE = /^tap[0-9a-f-]{11}$/;

/**
 * The bridge agent: follows the host's `tap*` devices (`ip monitor link`
 * plus a full scan every `polling_interval` seconds), wires each one whose
 * port the server knows onto its network's bridge, filters VM ports by
 * their security groups, and reports the port up (compute then hears
 * `network-vif-plugged`) or down when its device goes.
 */
export class BridgeAgent extends Agent {
  /** Wired devices, by device name. */
  private readonly wired = new Map<string, DeviceDetails>();
  /** Devices to read again (their port changed). */
  private readonly stale = new Set<string>();
  /** Deleted networks whose bridge is still to go, with the scans that found it in use (bounded: one someone else uses is given up). */
  private readonly deletedNetworks = new Map<string, number>();
  private firewallDirty = true;
  private fullScan = true;
  private readonly scans: Coalescer;
  private monitor: ChildProcess | null = null;
  private scanTimer: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private stopped = false;
  private tunnelPeers = '';
  private lastTunnelCheck = 0;

  constructor(
    bus: Bus,
    host: string,
    options: AgentOptions,
    private readonly hostNet: HostNet,
    private readonly plane: LinuxBridge,
    private readonly config: LinuxNetworkConfig,
  ) {
    super(
      bus,
      {
        agentType: AGENT_TYPES.bridge,
        binary: 'stratus-bridge-agent',
        topic: AGENT_TOPICS.none,
        serveTopic: AGENT_TOPICS.bridgeNotifier,
        host,
        configurations: {
          bridge_mappings: config.bridge_mappings,
          interface_mappings: config.interface_mappings,
          tunnel_types: ['vxlan'],
          tunneling_ip: config.local_ip,
          l2_population: false,
          extensions: [],
        },
      },
      options,
    );
    this.scans = new Coalescer(() => this.scan(), this.log, 'wiring tap devices');
  }

  override state(): AgentState {
    const state = super.state();
    state.configurations.devices = this.wired.size;
    return state;
  }

  protected override handlers(): Handlers {
    return {
      agent_updated: () => this.resync(),
      port_update: (args: { port?: { id?: string } }) => {
        const id = args?.port?.id;
        for (const [device, details] of this.wired) if (details.port_id === id) this.stale.add(device);
        this.firewallDirty = true;
        void this.scans.kick();
      },
      port_delete: () => {
        this.firewallDirty = true;
        void this.scans.kick();
      },
      network_delete: (args: { network_id?: string }) => {
        if (typeof args?.network_id === 'string') this.deletedNetworks.set(args.network_id, 0);
        void this.scans.kick();
      },
      security_groups_updated: () => {
        this.firewallDirty = true;
        void this.scans.kick();
      },
    };
  }

  override async start(): Promise<void> {
    this.stopped = false;
    await super.start();
    this.follow();
    const tick = (): void => {
      if (this.stopped) return;
      this.scanTimer = setTimeout(() => {
        void this.scans.kick().finally(tick);
      }, this.config.polling_interval * 1000);
      this.scanTimer.unref();
    };
    await this.scans.kick();
    tick();
  }

  override async stop(): Promise<void> {
    this.stopped = true;
    if (this.scanTimer) clearTimeout(this.scanTimer);
    if (this.debounce) clearTimeout(this.debounce);
    this.monitor?.kill();
    this.monitor = null;
    await this.scans.idle();
    await super.stop();
  }

  /** Reads and wires every device again (after a restart of the server's view, or an admin change). */
  resync(): Promise<void> {
    this.fullScan = true;
    this.firewallDirty = true;
    return this.scans.kick();
  }

  /** Resolves once the devices present now are wired (tests, bench). */
  settle(): Promise<void> {
    return this.scans.kick();
  }

  /** Follows link changes with `ip monitor link`: a new or removed device is wired within a moment. */
  private follow(): void {
    if (this.stopped) return;
    const args = [...(this.hostNet.netns ? ['-n', this.hostNet.netns] : []), 'monitor', 'link'];
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.monitor = child;
    child.stdout.on('data', () => {
      if (this.debounce) return;
      this.debounce = setTimeout(() => {
        this.debounce = null;
        void this.scans.kick();
      }, 50);
    });
    child.on('error', (err) => this.log.warn({ err }, 'ip monitor failed; the periodic scan goes on'));
    child.on('exit', () => {
      if (this.monitor !== child || this.stopped) return;
      this.monitor = null;
      setTimeout(() => this.follow(), 1000).unref();
    });
  }

  private async scan(): Promise<void> {
    const present = (await this.hostNet.links()).map((l) => l.ifname).filter((name) => TAP_DEVICE.test(name));
    const presentSet = new Set(present);
    const full = this.fullScan;
    this.fullScan = false;
    if (full) this.plane.recheckBridges();
    const toRead = present.filter((d) => full || !this.wired.has(d) || this.stale.has(d));
    for (const d of toRead) this.stale.delete(d);
    const plugged: DeviceDetails[] = [];
    if (toRead.length > 0) {
      const details = await this.plugin.call('get_devices_details', { host: this.identity.host, devices: toRead });
      for (const d of details) {
        // A device whose port the server does not know (yet, or not ours): tried again at the next scan.
        if (!('port_id' in d)) continue;
        try {
          await this.plane.plugPort(d);
        } catch (err) {
          this.log.warn({ err, device: d.device, port: d.port_id }, 'could not wire the port');
          continue;
        }
        const before = this.wired.get(d.device);
        this.wired.set(d.device, d);
        if (!before || before.admin_state_up !== d.admin_state_up || full) plugged.push(d);
        this.firewallDirty = true;
      }
    }
    const gone: DeviceDetails[] = [];
    for (const [device, d] of this.wired) {
      if (presentSet.has(device)) continue;
      this.wired.delete(device);
      gone.push(d);
      this.firewallDirty = true;
    }
    if (this.firewallDirty) {
      this.firewallDirty = false;
      await this.refreshFirewall(gone.map((d) => d.port_id));
    }
    // Up only once filtered: compute makes the server ACTIVE on this.
    for (const d of plugged) await this.deviceStatus(d.port_id, d.admin_state_up);
    for (const d of gone) await this.deviceStatus(d.port_id, false);
    // A deleted network's bridge goes once nothing is on it: its DHCP and router ports leave a moment after the network.
    for (const [networkId, tries] of [...this.deletedNetworks]) {
      if ([...this.wired.values()].some((d) => d.network_id === networkId)) continue;
      await this.plane.removeNetworkBridge(networkId).catch((err: unknown) => this.log.warn({ err, network: networkId }, 'could not remove the bridge of a deleted network'));
      if (!(await this.hostNet.link(bridgeName(networkId))) || tries >= 100) this.deletedNetworks.delete(networkId);
      else this.deletedNetworks.set(networkId, tries + 1);
    }
    await this.updateTunnels();
  }

  private async deviceStatus(portId: string, up: boolean): Promise<void> {
    try {
      await this.plugin.call(up ? 'update_device_up' : 'update_device_down', { port_id: portId, host: this.identity.host });
    } catch (err) {
      this.log.warn({ err, port: portId }, 'could not report the port status');
      this.fullScan = true;
    }
  }

  /** Filters every VM port of this host (network-owned ports are trusted, as Neutron's). */
  private async refreshFirewall(removed: string[]): Promise<void> {
    const filtered = [...this.wired.values()].filter((d) => !d.device_owner.startsWith('network:'));
    if (removed.length > 0) await this.plane.removeSecurityGroupFilters(removed);
    const info = await this.plugin.call('security_group_info_for_devices', { port_ids: filtered.map((d) => d.port_id) });
    await this.plane.applySecurityGroups(info);
  }

  /** VXLAN flooding to the other hosts' endpoints, checked once per heartbeat interval. */
  private async updateTunnels(): Promise<void> {
    if (!this.config.local_ip || Date.now() - this.lastTunnelCheck < this.options.reportInterval * 1000) return;
    this.lastTunnelCheck = Date.now();
    const peers = await this.plugin.call('get_tunnel_endpoints', { host: this.identity.host });
    const vnis = [...new Set([...this.wired.values()].filter((d) => d.network_type === 'vxlan' && d.segmentation_id !== null).map((d) => d.segmentation_id as number))];
    const key = `${peers.join()}|${vnis.join()}`;
    if (key === this.tunnelPeers) return;
    for (const vni of vnis) await this.plane.setVxlanPeers(vni, peers);
    this.tunnelPeers = key;
  }
}

/**
 * An agent whose work is one idempotent sync with the server: run at start,
 * after each notification (coalesced) and on `resync` (everything, `all`).
 */
abstract class SyncingAgent extends Agent {
  /** The next sync covers everything, not only what notifications marked. */
  protected all = true;
  protected readonly syncs: Coalescer;

  constructor(bus: Bus, identity: AgentIdentity, options: AgentOptions, what: string) {
    super(bus, identity, options);
    this.syncs = new Coalescer(() => this.sync(), this.log, what);
  }

  protected abstract sync(): Promise<void>;

  override async start(): Promise<void> {
    await super.start();
    await this.syncs.kick();
  }

  override async stop(): Promise<void> {
    await this.syncs.idle();
    await super.stop();
  }

  resync(): Promise<void> {
    this.all = true;
    return this.syncs.kick();
  }

  settle(): Promise<void> {
    return this.syncs.kick();
  }
}

/**
 * The DHCP agent: a dnsmasq per network it hosts, in `qdhcp-<network>`,
 * with this host's `network:dhcp` port (made by the server on request).
 * Notifications mark networks to set up again; every run also removes what
 * the host serves but should not.
 */
export class DhcpAgent extends SyncingAgent {
  private readonly dirty = new Set<string>();

  constructor(
    bus: Bus,
    host: string,
    availabilityZone: string,
    options: AgentOptions,
    private readonly plane: LinuxDhcp,
    config: LinuxNetworkConfig,
  ) {
    super(
      bus,
      {
        agentType: AGENT_TYPES.dhcp,
        binary: 'stratus-dhcp-agent',
        topic: AGENT_TOPICS.dhcp,
        host,
        availabilityZone,
        configurations: { dhcp_driver: 'dnsmasq', dhcp_lease_duration: config.dhcp_lease_duration, enable_isolated_metadata: config.isolated_metadata },
      },
      options,
      'setting up DHCP',
    );
  }

  protected override handlers(): Handlers {
    const network = (args: { network?: { id?: string }; port?: { network_id?: string }; network_id?: string }): void => {
      const id = args?.network?.id ?? args?.port?.network_id ?? args?.network_id;
      if (typeof id === 'string') this.dirty.add(id);
      else this.all = true;
      void this.syncs.kick();
    };
    return {
      agent_updated: () => this.resync(),
      network_create_end: network,
      network_update_end: network,
      network_delete_end: network,
      port_update_end: network,
      port_delete_end: network,
    };
  }

  protected async sync(): Promise<void> {
    const all = this.all;
    const dirty = new Set(this.dirty);
    this.all = false;
    this.dirty.clear();
    // Only a full resync takes unhosted networks (as Neutron's): one an admin just removed from this agent stays removed.
    const networks = await this.plugin.call('get_active_networks_info', { host: this.identity.host, auto_schedule: all });
    const hosted = new Set(networks.map((n) => n.id));
    for (const network of networks) {
      if (!all && !dirty.has(network.id)) continue;
      try {
        if (!network.admin_state_up) {
          await this.plane.teardownNetwork(network.id);
          continue;
        }
        const { port, has_router: hasRouter } = await this.plugin.call('get_dhcp_port', { host: this.identity.host, network_id: network.id });
        await this.plane.setupNetwork(network, port, hasRouter);
      } catch (err) {
        this.log.warn({ err, network: network.id }, 'could not set up DHCP for the network');
        this.dirty.add(network.id);
      }
    }
    for (const id of await this.plane.present()) {
      if (hosted.has(id)) continue;
      await this.plane.teardownNetwork(id).catch((err: unknown) => this.log.warn({ err, network: id }, 'could not stop DHCP for the network'));
    }
    this.configurationsCount(networks.length);
  }

  private configurationsCount(networks: number): void {
    if (this.identity.configurations) this.identity.configurations.networks = networks;
  }
}

/**
 * The L3 agent: a namespace per router it hosts (`qrouter-<router>`) with
 * its interfaces, gateway, SNAT, floating IPs and metadata proxy.
 */
export class L3Agent extends SyncingAgent {
  private readonly dirty = new Set<string>();
  private readonly removed = new Set<string>();

  constructor(
    bus: Bus,
    host: string,
    availabilityZone: string,
    options: AgentOptions,
    private readonly plane: LinuxL3,
  ) {
    super(
      bus,
      {
        agentType: AGENT_TYPES.l3,
        binary: 'stratus-l3-agent',
        topic: AGENT_TOPICS.l3,
        host,
        availabilityZone,
        configurations: { agent_mode: 'legacy', interface_driver: 'linuxbridge', routers: 0 },
      },
      options,
      'setting up routers',
    );
  }

  protected override handlers(): Handlers {
    const routers = (args: { router_ids?: string[] }): void => {
      for (const id of args?.router_ids ?? []) if (typeof id === 'string') this.dirty.add(id);
      void this.syncs.kick();
    };
    return {
      agent_updated: () => this.resync(),
      router_added_to_agent: routers,
      routers_updated: routers,
      router_removed_from_agent: (args: { router_id?: string }) => {
        if (typeof args?.router_id === 'string') this.removed.add(args.router_id);
        void this.syncs.kick();
      },
    };
  }

  protected async sync(): Promise<void> {
    const all = this.all;
    const dirty = [...this.dirty];
    const removed = [...this.removed];
    this.all = false;
    this.dirty.clear();
    this.removed.clear();
    for (const id of removed) await this.plane.teardownRouter(id);
    if (!all && dirty.length === 0) return;
    const routers = await this.plugin.call('get_routers', all ? { host: this.identity.host } : { host: this.identity.host, router_ids: dirty, auto_schedule: false });
    const wanted = new Set(routers.map((r) => r.id));
    for (const router of routers) {
      try {
        if (router.admin_state_up) {
          await this.plane.setupRouter(router);
          // What the router now does, as the server shows it (a floating IP of an unhosted router was DOWN).
          const stale = router.floating_ips.filter((f) => f.status !== 'ACTIVE');
          if (stale.length > 0) await this.plugin.call('update_floatingip_statuses', { router_id: router.id, statuses: Object.fromEntries(stale.map((f) => [f.id, 'ACTIVE'])) });
        } else {
          await this.plane.teardownRouter(router.id);
        }
      } catch (err) {
        this.log.warn({ err, router: router.id }, 'could not set up the router');
        this.dirty.add(router.id);
      }
    }
    // Asked for but not answered: deleted, or hosted elsewhere now.
    const gone = all ? (await this.plane.present()).filter((id) => !wanted.has(id)) : dirty.filter((id) => !wanted.has(id));
    for (const id of gone) await this.plane.teardownRouter(id).catch((err: unknown) => this.log.warn({ err, router: id }, 'could not remove the router'));
    if (all && this.identity.configurations) this.identity.configurations.routers = routers.length;
  }
}

/** The metadata agent: heartbeats, and serves the namespaces' proxies on a unix socket. */
class MetadataAgent extends Agent {
  constructor(bus: Bus, host: string, options: AgentOptions, socketPath: string) {
    super(bus, { agentType: AGENT_TYPES.metadata, binary: 'stratus-metadata-agent', topic: AGENT_TOPICS.none, serveTopic: '', host, configurations: { metadata_proxy_socket: socketPath } }, options);
  }
}

export interface LinuxAgentsOptions {
  /** The host name the agents report (compute binds ports to it). */
  host: string;
  availabilityZone: string;
  /** Seconds between heartbeats. */
  reportInterval: number;
  config: LinuxNetworkConfig;
  /** Where the agents keep their state (`<data_dir>/network`). */
  stateDir: string;
  /** Where dnsmasq's files go: a directory others may enter (dnsmasq reads them as `nobody`). */
  dhcpDir: string;
  /** The address the host keeps on a mapped bridge (the public network's gateway), by bridge. */
  bridgeAddresses: Record<string, string[]>;
  /** Compute's metadata API and the secret proxies sign with; null: no metadata proxy. */
  metadata: { url: string; secret: string } | null;
  log: Logger;
}

export interface RunningLinuxAgents {
  bridge: BridgeAgent;
  dhcp: DhcpAgent;
  l3: L3Agent;
  hostNet: HostNet;
  /** Resolves when every agent has applied what it has been told so far. */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the bridge, DHCP, L3 and metadata agents of one host. */
export async function startLinuxAgents(bus: Bus, options: LinuxAgentsOptions): Promise<RunningLinuxAgents> {
  const { config, log } = options;
  const hostNet = new HostNet(config.host_netns || null);
  const agentOptions: AgentOptions = { reportInterval: options.reportInterval, logger: log };
  const socketPath = path.join(options.stateDir, 'metadata_proxy');
  const stops: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const step of stops.splice(0).reverse()) await step().catch((err: unknown) => log.warn({ err }, 'stopping a network agent'));
  };
  try {
    let proxies: MetadataProxies | null = null;
    if (options.metadata) {
      const plugin = new PluginClient(bus, 10_000);
      const server = await startMetadataAgent({
        socketPath,
        metadataUrl: options.metadata.url,
        secret: options.metadata.secret,
        resolve: async (ip, target) => {
          const found = await plugin.call('get_metadata_instance', { ip, ...(target.routerId ? { router_id: target.routerId } : {}), ...(target.networkId ? { network_id: target.networkId } : {}) });
          return found ? { instanceId: found.instance_id, projectId: found.project_id } : null;
        },
        log: log.child({ agent: 'metadata' }),
      });
      stops.push(() => server.stop());
      const metadataAgent = new MetadataAgent(bus, options.host, agentOptions, socketPath);
      await metadataAgent.start();
      stops.push(() => metadataAgent.stop());
      proxies = new MetadataProxies(hostNet, { socketPath, stateDir: path.join(options.stateDir, 'metadata'), port: config.metadata_port, log });
    }
    const firewall = new PortFirewall(hostNet, { prefix: config.chain_prefix, log });
    const bridgePlane = new LinuxBridge(hostNet, firewall, {
      bridgeMappings: config.bridge_mappings,
      interfaceMappings: config.interface_mappings,
      vxlanLocalIp: config.local_ip,
      vxlanPort: config.vxlan_port,
      bridgeAddresses: options.bridgeAddresses,
      log,
    });
    const bridge = new BridgeAgent(bus, options.host, agentOptions, hostNet, bridgePlane, config);
    const dhcp = new DhcpAgent(
      bus,
      options.host,
      options.availabilityZone,
      agentOptions,
      new LinuxDhcp(hostNet, { stateDir: options.dhcpDir, dnsmasq: 'dnsmasq', leaseSeconds: config.dhcp_lease_duration, dnsDomain: config.dns_domain, isolatedMetadata: config.isolated_metadata && proxies !== null, metadata: proxies, log }),
      config,
    );
    const l3 = new L3Agent(bus, options.host, options.availabilityZone, agentOptions, new LinuxL3(hostNet, { stateDir: path.join(options.stateDir, 'l3'), metadata: proxies, metadataPort: config.metadata_port, log }));
    // The bridge agent first: the DHCP and router ports the others make are its devices.
    await bridge.start();
    stops.push(() => bridge.stop());
    await dhcp.start();
    stops.push(() => dhcp.stop());
    await l3.start();
    stops.push(() => l3.stop());
    const settle = async (): Promise<void> => {
      await dhcp.settle();
      await l3.settle();
      await bridge.settle();
    };
    return { bridge, dhcp, l3, hostNet, settle, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
