/**
 * The data plane behind the network API (ML2's mechanism driver and the
 * agents it talks to, in one interface). The API calls it after each change
 * is committed; the driver makes the change real on the hosts (or, the
 * `fake` driver, records it) and reports port status back through
 * {@link DriverCallbacks.portStatus}.
 *
 * Every method gets plain data (ids and views), never the database, so that
 * a driver may hand the work to per-host agents over the bus.
 */
export interface NetworkInfo {
  id: string;
  project_id: string;
  network_type: string;
  physical_network: string | null;
  segmentation_id: number | null;
  mtu: number;
  admin_state_up: boolean;
  router_external: boolean;
}

export interface PortInfo {
  id: string;
  network_id: string;
  project_id: string;
  mac_address: string;
  admin_state_up: boolean;
  device_id: string;
  device_owner: string;
  fixed_ips: { subnet_id: string; ip_address: string }[];
  host: string;
  vnic_type: string;
  profile: Record<string, unknown>;
  port_security_enabled: boolean;
  security_groups: string[];
  allowed_address_pairs: { ip_address: string; mac_address: string }[];
}

export interface PortBinding {
  vif_type: string;
  vif_details: Record<string, unknown>;
}

/** What a driver tells the API back. */
export interface DriverCallbacks {
  /** A port came up (`ACTIVE`) or went down (`DOWN`) on its host; the API records it and tells compute. */
  portStatus(portId: string, status: 'ACTIVE' | 'DOWN' | 'BUILD' | 'ERROR'): Promise<void>;
}

export interface NetworkDriver {
  /** `fake` or `linux`. */
  readonly name: string;
  start(callbacks: DriverCallbacks): Promise<void>;
  stop(): Promise<void>;
  /**
   * Binds a port to a host (`binding:host_id` was set): the VIF type and
   * details compute plugs the VM with, or null when the host cannot bind it
   * (the port's `binding:vif_type` becomes `binding_failed`).
   */
  bindPort(port: PortInfo, network: NetworkInfo): Promise<PortBinding | null>;
  /** A port was created or changed (address, security groups, state, binding). */
  portUpdated(port: PortInfo, network: NetworkInfo): Promise<void>;
  /** A port is gone: unplug it from its host. */
  portDeleted(port: PortInfo): Promise<void>;
  /** A network or its subnets changed: DHCP is set up (or torn down) for it. */
  networkUpdated(network: NetworkInfo): Promise<void>;
  networkDeleted(networkId: string): Promise<void>;
  /** A router, its interfaces, gateway, routes or floating IPs changed. */
  routerUpdated(routerId: string): Promise<void>;
  routerDeleted(routerId: string): Promise<void>;
  /** The rules or members of these security groups changed: re-apply them on the ports using them. */
  securityGroupsUpdated(groupIds: string[]): Promise<void>;
}
