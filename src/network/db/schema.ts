/**
 * The network service's tables. Booleans are integers (0/1), times ISO-8601
 * UTC strings with microseconds, lists and mappings JSON text, as in every
 * Stratus service. Every resource row carries Neutron's standard attributes:
 * `description`, `created_at`, `updated_at`, `revision_number` (tags live in
 * `tag`).
 */
export interface NetworkSchema {
  network: NetworkRow;
  segment_allocation: SegmentAllocationRow;
  subnet: SubnetRow;
  subnetpool: SubnetpoolRow;
  port: PortRow;
  ip_allocation: IpAllocationRow;
  port_security_group: { port_id: string; security_group_id: string };
  router: RouterRow;
  router_port: { router_id: string; port_id: string; port_type: string };
  floatingip: FloatingIpRow;
  security_group: SecurityGroupRow;
  default_security_group: { project_id: string; security_group_id: string };
  security_group_rule: SecurityGroupRuleRow;
  quota: { project_id: string; resource: string; hard_limit: number };
  tag: { resource_type: string; resource_id: string; tag: string };
  agent: AgentRow;
  network_dhcp_agent: { network_id: string; agent_id: string };
  router_l3_agent: { router_id: string; agent_id: string };
}

/** The standard attributes every resource has. */
export interface StandardColumns {
  id: string;
  project_id: string;
  name: string;
  description: string;
  created_at: string;
  updated_at: string;
  revision_number: number;
}

export interface NetworkRow extends StandardColumns {
  admin_state_up: number;
  status: string;
  shared: number;
  router_external: number;
  /** The default external network (`is_default`, auto-allocated topology). */
  is_default: number;
  mtu: number;
  port_security_enabled: number;
  /** `flat`, `vlan`, `vxlan` (or `local`). */
  network_type: string;
  physical_network: string | null;
  segmentation_id: number | null;
  /** JSON list of availability zone names. */
  availability_zone_hints: string;
  dns_domain: string;
}

/**
 * Which segment a network holds. The primary key makes two networks on one
 * VLAN, one VNI or one flat physical network impossible, also under
 * concurrent requests: a flat network takes segmentation id 0, and VXLAN's
 * physical network is the empty string.
 */
export interface SegmentAllocationRow {
  network_type: string;
  physical_network: string;
  segmentation_id: number;
  network_id: string;
}

export interface SubnetRow extends StandardColumns {
  network_id: string;
  ip_version: number;
  cidr: string;
  gateway_ip: string | null;
  enable_dhcp: number;
  ipv6_ra_mode: string | null;
  ipv6_address_mode: string | null;
  subnetpool_id: string | null;
  /** JSON list of addresses. */
  dns_nameservers: string;
  /** JSON list of `{destination, nexthop}`. */
  host_routes: string;
  /** JSON list of `{start, end}`. */
  allocation_pools: string;
  /** JSON list of device owners this subnet serves (`service_types`). */
  service_types: string;
  segment_id: string | null;
}

export interface SubnetpoolRow extends StandardColumns {
  ip_version: number;
  /** JSON list of CIDRs. */
  prefixes: string;
  default_prefixlen: number;
  min_prefixlen: number;
  max_prefixlen: number;
  shared: number;
  is_default: number;
  default_quota: number | null;
  address_scope_id: string | null;
}

export interface PortRow extends StandardColumns {
  network_id: string;
  mac_address: string;
  admin_state_up: number;
  /** `DOWN` until the driver binds it, then `ACTIVE` (or `BUILD`, `ERROR`). */
  status: string;
  device_id: string;
  device_owner: string;
  binding_host_id: string;
  binding_vif_type: string;
  /** JSON mapping. */
  binding_vif_details: string;
  binding_vnic_type: string;
  /** JSON mapping. */
  binding_profile: string;
  port_security_enabled: number;
  /** JSON list of `{ip_address, mac_address}`. */
  allowed_address_pairs: string;
  /** JSON list of `{opt_name, opt_value, ip_version}`. */
  extra_dhcp_opts: string;
  dns_name: string;
}

/**
 * An address taken from a subnet. The primary key (subnet, address) is what
 * makes IPAM safe: two requests racing for one address cannot both insert it.
 */
export interface IpAllocationRow {
  subnet_id: string;
  ip_address: string;
  network_id: string;
  port_id: string;
}

export interface RouterRow extends StandardColumns {
  admin_state_up: number;
  status: string;
  /** The router's port on its external network, when it has a gateway. */
  gw_port_id: string | null;
  external_network_id: string | null;
  enable_snat: number;
  /** JSON list of `{destination, nexthop}` (extraroute). */
  routes: string;
  distributed: number;
  ha: number;
  availability_zone_hints: string;
}

export interface FloatingIpRow extends StandardColumns {
  floating_network_id: string;
  floating_ip_address: string;
  /** The port on the external network that holds the floating address. */
  floating_port_id: string;
  fixed_port_id: string | null;
  fixed_ip_address: string | null;
  router_id: string | null;
  status: string;
  dns_name: string;
  dns_domain: string;
}

export interface SecurityGroupRow extends StandardColumns {
  stateful: number;
}

export interface SecurityGroupRuleRow {
  id: string;
  project_id: string;
  security_group_id: string;
  /** `ingress` or `egress`. */
  direction: string;
  /** `IPv4` or `IPv6`. */
  ethertype: string;
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
  remote_address_group_id: string | null;
  description: string;
  created_at: string;
  updated_at: string;
  revision_number: number;
}

export interface AgentRow {
  id: string;
  /** `DHCP agent`, `L3 agent`, `Linux bridge agent`, `Metadata agent`. */
  agent_type: string;
  binary: string;
  topic: string;
  host: string;
  availability_zone: string | null;
  admin_state_up: number;
  /** JSON mapping the agent reports. */
  configurations: string;
  resources_synced: number | null;
  description: string;
  heartbeat_timestamp: string;
  started_at: string;
  created_at: string;
}
