/**
 * What crosses the bus between the network server and its per-host agents,
 * and what each agent's data plane must do. Agents hold no database
 * credentials: they learn their state from the server (`network-plugin`
 * topic, {@link PluginRpc}) and are told of changes on their own topic
 * (`<topic>.<host>`, {@link AgentNotifications}).
 *
 * Messages are versioned by {@link AGENT_RPC_VERSION}: fields are added,
 * never changed in meaning.
 */

/** The topic the server serves for agents (Neutron's `q-plugin`). */
export const PLUGIN_TOPIC = 'network-plugin';

/** Version of the agent <-> server messages below. */
export const AGENT_RPC_VERSION = '1.0';

/** Neutron's agent types, as `GET /v2.0/agents` shows them. */
export const AGENT_TYPES = {
  bridge: 'Linux bridge agent',
  dhcp: 'DHCP agent',
  l3: 'L3 agent',
  metadata: 'Metadata agent',
} as const;

/** The topics agents serve (Neutron's): notifications reach `<topic>.<host>`. */
export const AGENT_TOPICS = {
  dhcp: 'dhcp_agent',
  l3: 'l3_agent',
  /** The bridge agent reports `N/A` and listens on the port/security-group notifier topic. */
  bridgeNotifier: 'q-agent-notifier',
  none: 'N/A',
} as const;

/** What an agent says about itself in every heartbeat. */
export interface AgentState {
  agent_type: string;
  binary: string;
  /** The topic it reports (`dhcp_agent`, `l3_agent`, `N/A`). */
  topic: string;
  host: string;
  /** DHCP and L3 agents only. */
  availability_zone?: string;
  configurations: Record<string, unknown>;
  /** True in the first heartbeat after the agent (re)started: `started_at` becomes now. */
  start_flag?: boolean;
  /** Whether the agent's resources were reported to placement (null: not applicable). */
  resources_synced?: boolean | null;
}

/** `report_state` arguments. `time` is the agent's clock (ISO-8601), for logs. */
export interface ReportStateArgs {
  agent_state: AgentState;
  time: string;
}

/** How the server saw a heartbeat: a new agent, a known one, or one that was dead. */
export type AgentStatus = 'new' | 'alive' | 'revived';

/** A port as a data-plane agent wires it (`get_devices_details`). */
export interface DeviceDetails {
  device: string;
  port_id: string;
  network_id: string;
  mac_address: string;
  admin_state_up: boolean;
  /** The port's status before the agent wires it. */
  status: string;
  network_type: string;
  physical_network: string | null;
  segmentation_id: number | null;
  mtu: number;
  fixed_ips: { subnet_id: string; ip_address: string }[];
  device_owner: string;
  device_id: string;
  port_security_enabled: boolean;
  security_groups: string[];
  allowed_address_pairs: { ip_address: string; mac_address: string }[];
  /** The port's bound host (`binding:host_id`). */
  host: string;
}

/** A subnet as the DHCP agent serves it. */
export interface DhcpSubnet {
  id: string;
  cidr: string;
  ip_version: number;
  gateway_ip: string | null;
  enable_dhcp: boolean;
  dns_nameservers: string[];
  host_routes: { destination: string; nexthop: string }[];
  allocation_pools: { start: string; end: string }[];
  ipv6_ra_mode: string | null;
  ipv6_address_mode: string | null;
}

/** A port as the DHCP agent answers for it (one host entry per fixed IP). */
export interface DhcpPort {
  id: string;
  mac_address: string;
  device_owner: string;
  device_id: string;
  admin_state_up: boolean;
  fixed_ips: { subnet_id: string; ip_address: string }[];
  dns_name: string;
  extra_dhcp_opts: { opt_name: string; opt_value: string; ip_version?: number }[];
}

/** A network hosted by a DHCP agent, with what it needs to serve it (`get_active_networks_info`). */
export interface DhcpNetwork {
  id: string;
  project_id: string;
  admin_state_up: boolean;
  mtu: number;
  network_type: string;
  physical_network: string | null;
  segmentation_id: number | null;
  subnets: DhcpSubnet[];
  ports: DhcpPort[];
}

/** A router interface or gateway port as the L3 agent plugs it. */
export interface RouterPort {
  id: string;
  network_id: string;
  mac_address: string;
  mtu: number;
  fixed_ips: { subnet_id: string; ip_address: string; prefixlen: number }[];
  subnets: { id: string; cidr: string; gateway_ip: string | null; ip_version: number; ipv6_ra_mode: string | null; ipv6_address_mode: string | null; dns_nameservers: string[] }[];
}

/** A router hosted by an L3 agent (`get_routers`). */
export interface RouterDetails {
  id: string;
  project_id: string;
  admin_state_up: boolean;
  enable_snat: boolean;
  routes: { destination: string; nexthop: string }[];
  gw_port: RouterPort | null;
  interfaces: RouterPort[];
  floating_ips: { id: string; floating_ip_address: string; fixed_ip_address: string; port_id: string; status: string }[];
}

/** One security-group rule as an agent applies it. */
export interface AgentSecurityGroupRule {
  id: string;
  security_group_id: string;
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
}

/** `security_group_info_for_devices`: the ports, the rules of their groups, and the members of remote groups. */
export interface SecurityGroupInfo {
  devices: Record<string, { id: string; mac_address: string; fixed_ips: string[]; security_groups: string[]; port_security_enabled: boolean; allowed_address_pairs: { ip_address: string; mac_address: string }[] }>;
  security_groups: Record<string, AgentSecurityGroupRule[]>;
  sg_member_ips: Record<string, { IPv4: string[]; IPv6: string[] }>;
}

/**
 * The calls an agent makes to the server on {@link PLUGIN_TOPIC}. Every
 * call is idempotent: an agent that restarts replays them to rebuild its
 * state.
 */
export interface PluginRpc {
  /** Heartbeat: creates or refreshes the agent's row; answers how the server saw it. */
  report_state(args: ReportStateArgs): AgentStatus;
  /**
   * The ports to wire on `host`; an unknown port comes back as `{device}` alone.
   * `devices` names them by their host device instead (`tap` + the id's first
   * 11 characters), as a bridge agent sees them; `device` echoes the name asked.
   */
  get_devices_details(args: { host: string; port_ids?: string[]; devices?: string[] }): (DeviceDetails | { device: string })[];
  /** The port is wired (`ACTIVE`): compute hears `network-vif-plugged`. */
  update_device_up(args: { port_id: string; host: string }): { device: string; exists: boolean };
  /** The port is unwired (`DOWN`): compute hears `network-vif-unplugged`. */
  update_device_down(args: { port_id: string; host: string }): { device: string; exists: boolean };
  /**
   * The networks the DHCP agent on `host` serves. With `auto_schedule` (the
   * default; an agent's full resync) networks with DHCP subnets that no agent
   * hosts are scheduled to it first; without, a network an admin just took
   * off the agent stays off.
   */
  get_active_networks_info(args: { host: string; auto_schedule?: boolean }): DhcpNetwork[];
  /** The routers the L3 agent on `host` hosts (all of them when `router_ids` is absent); `auto_schedule` as above. */
  get_routers(args: { host: string; router_ids?: string[]; auto_schedule?: boolean }): RouterDetails[];
  security_group_info_for_devices(args: { port_ids: string[] }): SecurityGroupInfo;
  /**
   * DHCP: this host's `network:dhcp` port on the network, made or brought up
   * to date (one address on each DHCP-enabled subnet, bound to `host`), with
   * whether a router serves the network; `port` is null when the network has
   * no DHCP-enabled subnet left (a port it had is deleted).
   */
  get_dhcp_port(args: { host: string; network_id: string }): { port: DhcpPort | null; has_router: boolean };
  /** Metadata: who has this fixed IP on the network, or on a network behind the router (compute ports only). */
  get_metadata_instance(args: { ip: string; router_id?: string; network_id?: string }): { instance_id: string; project_id: string } | null;
  /** L3: the floating IPs of the router as the agent has set them up (`ACTIVE`, `DOWN` or `ERROR`), by id. */
  update_floatingip_statuses(args: { router_id: string; statuses: Record<string, string> }): { updated: number };
  /** Bridge: the VXLAN endpoints (`configurations.tunneling_ip`) of the alive bridge agents of the other hosts. */
  get_tunnel_endpoints(args: { host: string }): string[];
}

/**
 * What the server tells an agent on `<topic>.<host>` (cast, no reply).
 * An agent ignores the ones that do not concern it.
 */
export interface AgentNotifications {
  /** The agent's `admin_state_up` changed. */
  agent_updated(args: { admin_state_up: boolean }): void;
  /** DHCP: a network was scheduled to (create) or removed from (delete) this agent. */
  network_create_end(args: { network: { id: string } }): void;
  /** DHCP: a hosted network or its subnets changed (re-read it with `get_active_networks_info`). */
  network_update_end(args: { network: { id: string } }): void;
  network_delete_end(args: { network_id: string }): void;
  /** DHCP: a port on a hosted network was created or changed, or deleted (its host entries change). */
  port_update_end(args: { port: { id: string; network_id: string } }): void;
  port_delete_end(args: { port_id: string; network_id: string }): void;
  /** L3: routers were added to, changed on, or removed from this agent. */
  router_added_to_agent(args: { router_ids: string[] }): void;
  routers_updated(args: { router_ids: string[] }): void;
  router_removed_from_agent(args: { router_id: string }): void;
  /** Bridge (fanout): a port changed; the agent whose host has its device re-reads and re-wires it. */
  port_update(args: { port: { id: string; network_id: string } }): void;
  /** Bridge (fanout): a port is gone. */
  port_delete(args: { port_id: string }): void;
  /** Bridge (fanout): a network is gone; its bridge goes when no device is left on it. */
  network_delete(args: { network_id: string }): void;
  /** Bridge (fanout): the rules or members of these groups changed; filters are rebuilt. */
  security_groups_updated(args: { security_group_ids: string[] }): void;
}

// The data-plane side. The Linux data plane implements these; the fake
// agents record them. Each method is idempotent: called again with the same
// input it changes nothing, which is how an agent resyncs after a restart.

/** The bridge agent's data plane: one per host, wires VM and service ports. */
export interface BridgeDataPlane {
  /** Creates (or keeps) the port's tap on its network's bridge, with the network's segment. */
  plugPort(port: DeviceDetails): Promise<void>;
  /** Removes the port's tap; a port already gone is not an error. */
  unplugPort(portId: string): Promise<void>;
  /** Replaces the filtering of these ports with the rules in `info` (anti-spoofing included). */
  applySecurityGroups(info: SecurityGroupInfo): Promise<void>;
  /** Drops the filtering of ports no longer on this host. */
  removeSecurityGroupFilters(portIds: string[]): Promise<void>;
}

/** The DHCP agent's data plane: a DHCP server per network it hosts. */
export interface DhcpDataPlane {
  /**
   * Starts or reloads DHCP for the network's DHCP-enabled subnets and ports,
   * answering through `dhcpPort` (this agent's `network:dhcp` port); stops it
   * when `dhcpPort` is null (no DHCP-enabled subnet left). `hasRouter`: a
   * subnet of the network is on a router (no isolated metadata then).
   */
  setupNetwork(network: DhcpNetwork, dhcpPort: DhcpPort | null, hasRouter?: boolean): Promise<void>;
  /** Stops DHCP for the network and removes what it created (namespace, port). */
  teardownNetwork(networkId: string): Promise<void>;
}

/** The L3 agent's data plane: a namespace per router it hosts. */
export interface L3DataPlane {
  /** Creates or updates the router: interfaces, gateway, SNAT, routes, floating IPs. */
  setupRouter(router: RouterDetails): Promise<void>;
  /** Removes the router's namespace and everything in it. */
  teardownRouter(routerId: string): Promise<void>;
}
