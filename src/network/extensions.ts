/**
 * The API extensions this service implements, as `GET /v2.0/extensions`
 * lists them. Clients and Tempest decide what to use and test from this list,
 * so it names exactly what works: add an alias only with its behaviour.
 */
export interface Extension {
  alias: string;
  name: string;
  description: string;
}

export const EXTENSIONS: Extension[] = [
  { alias: 'agent', name: 'agent', description: 'The agent management extension.' },
  { alias: 'allowed-address-pairs', name: 'Allowed Address Pairs', description: 'Provides allowed address pairs' },
  { alias: 'availability_zone', name: 'Availability Zone', description: 'The availability zone extension.' },
  { alias: 'network_availability_zone', name: 'Network Availability Zone', description: 'Availability zone support for network.' },
  { alias: 'router_availability_zone', name: 'Router Availability Zone', description: 'Availability zone support for router.' },
  { alias: 'binding', name: 'Port Binding', description: 'Expose port bindings of a virtual port to external application' },
  { alias: 'default-subnetpools', name: 'Default Subnetpools', description: 'Provides ability to mark and use a subnetpool as the default.' },
  { alias: 'dhcp_agent_scheduler', name: 'DHCP Agent Scheduler', description: 'Schedule networks among dhcp agents' },
  { alias: 'empty-string-filtering', name: 'Empty String Filtering Extension', description: 'Allow filtering by attributes with empty string value' },
  { alias: 'external-net', name: 'Neutron external network', description: 'Adds external network attribute to network resource.' },
  { alias: 'extra_dhcp_opt', name: 'Neutron Extra DHCP options', description: 'Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)' },
  { alias: 'extraroute', name: 'Neutron Extra Route', description: 'Extra routes configuration for L3 router' },
  { alias: 'extraroute-atomic', name: 'Atomically add/remove extra routes', description: 'Edit extra routes of a router on server side by atomically adding/removing extra routes' },
  { alias: 'ext-gw-mode', name: 'Neutron L3 Configurable external gateway mode', description: 'Extension of the router abstraction for specifying whether SNAT should occur on the external gateway' },
  { alias: 'filter-validation', name: 'Filter parameters validation', description: 'Provides validation on filter parameters.' },
  { alias: 'fip-port-details', name: 'Floating IP Port Details Extension', description: 'Add port_details attribute to Floating IP resource' },
  { alias: 'ip-substring-filtering', name: 'IP address substring filtering', description: 'Provides IP address substring filtering when listing ports' },
  { alias: 'l3_agent_scheduler', name: 'L3 Agent Scheduler', description: 'Schedule routers among l3 agents' },
  { alias: 'net-mtu', name: 'Network MTU', description: 'Provides MTU attribute for a network resource.' },
  { alias: 'net-mtu-writable', name: 'Network MTU (writable)', description: 'Provides a writable MTU attribute for a network resource.' },
  { alias: 'pagination', name: 'Pagination support', description: 'Extension that indicates that pagination is enabled.' },
  { alias: 'port-security', name: 'Port Security', description: 'Provides port security' },
  { alias: 'project-id', name: 'project_id field enabled', description: 'Extension that indicates that project_id field is enabled.' },
  { alias: 'provider', name: 'Provider Network', description: 'Expose mapping of virtual networks to physical networks' },
  { alias: 'quotas', name: 'Quota management support', description: 'Expose functions for quotas management per project' },
  { alias: 'quota_details', name: 'Quota details management support', description: 'Expose functions for quotas usage statistics per project' },
  { alias: 'router', name: 'Neutron L3 Router', description: 'Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.' },
  { alias: 'quota-check-limit', name: 'Quota check limit', description: 'Support for checking the resource usage before applying a new quota limit' },
  { alias: 'security-groups-normalized-cidr', name: 'Security Group Rule normalized CIDR', description: 'Add new field with normalized remote_ip_prefix cidr in SG rule' },
  { alias: 'security-group', name: 'security-group', description: 'The security groups extension.' },
  { alias: 'sorting', name: 'Sorting support', description: 'Extension that indicates that sorting is enabled.' },
  { alias: 'standard-attr-description', name: 'standard-attr-description', description: 'Extension to add descriptions to standard attributes' },
  { alias: 'standard-attr-revisions', name: 'Resource revision numbers', description: 'This extension will display the revision number of neutron resources.' },
  { alias: 'standard-attr-tag', name: 'Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip', description: 'Enables to set tag on resources with standard attribute.' },
  { alias: 'tag', name: 'Tag support', description: 'Enables to set tag on resources.' },
  { alias: 'standard-attr-timestamp', name: 'Resource timestamps', description: 'Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.' },
  { alias: 'stateful-security-group', name: 'Stateful security group', description: 'Indicates if the security group is stateful or not' },
  { alias: 'subnet_allocation', name: 'Subnet Allocation', description: 'Enables allocation of subnets from a subnet pool' },
];

/** Neutron shows an extension with these fixed fields. */
export function extensionView(extension: Extension): Record<string, unknown> {
  return { alias: extension.alias, name: extension.name, description: extension.description, updated: '2026-11-21T10:00:00-00:00', links: [] };
}
