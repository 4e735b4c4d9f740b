import type { RuleDefault } from '../core/policy/index.js';

/**
 * The network service's default policy: Neutron's current defaults (secure
 * RBAC: admin, member, reader; the network's owner; shared networks readable
 * by all). Targets carry the resource's `project_id` (and `tenant_id`), and,
 * for resources on a network, `network:project_id` and `network:shared`
 * ('True'/'False'); networks carry `shared` and `router:external`.
 *
 * Rules named `<action>:<attribute>` guard single attributes, as Neutron's do:
 * a create or update that sets one is checked against it too, and a read
 * leaves out the attributes whose `get_<resource>:<attribute>` rule refuses.
 * Operators override any rule in `policy.yaml` (policy_files.network).
 */
const ADMIN = 'role:admin';
const PROJECT_MEMBER = '(role:member and project_id:%(project_id)s)';
const PROJECT_READER = '(role:reader and project_id:%(project_id)s)';
const NET_OWNER_MEMBER = '(role:member and project_id:%(network:project_id)s)';
const NET_OWNER_READER = '(role:reader and project_id:%(network:project_id)s)';
const ADMIN_OR_PROJECT_MEMBER = `${ADMIN} or ${PROJECT_MEMBER}`;
const ADMIN_OR_PROJECT_READER = `${ADMIN} or ${PROJECT_READER}`;
const ADMIN_OR_NET_OWNER_MEMBER = `${ADMIN} or ${NET_OWNER_MEMBER}`;
const SHARED_NETWORK = "'True':%(network:shared)s";

const rules: Record<string, string> = {
  context_is_admin: ADMIN,
  admin_only: ADMIN,
  default: ADMIN,
  shared: "'True':%(shared)s",
  external: "'True':%(router:external)s",
  // The target's `device_owner_prefix` is 'network' for owners starting 'network:' (Neutron: field:port:device_owner=~^network:).
  network_device: "'network':%(device_owner_prefix)s",

  // networks
  create_network: ADMIN_OR_PROJECT_MEMBER,
  'create_network:shared': ADMIN,
  'create_network:router:external': ADMIN,
  'create_network:is_default': ADMIN,
  'create_network:port_security_enabled': ADMIN_OR_PROJECT_MEMBER,
  'create_network:segments': ADMIN,
  'create_network:provider:network_type': ADMIN,
  'create_network:provider:physical_network': ADMIN,
  'create_network:provider:segmentation_id': ADMIN,
  get_network: `${ADMIN_OR_PROJECT_READER} or rule:shared or rule:external`,
  'get_network:segments': ADMIN,
  'get_network:provider:network_type': ADMIN,
  'get_network:provider:physical_network': ADMIN,
  'get_network:provider:segmentation_id': ADMIN,
  update_network: ADMIN_OR_PROJECT_MEMBER,
  'update_network:segments': ADMIN,
  'update_network:shared': ADMIN,
  'update_network:provider:network_type': ADMIN,
  'update_network:provider:physical_network': ADMIN,
  'update_network:provider:segmentation_id': ADMIN,
  'update_network:router:external': ADMIN,
  'update_network:is_default': ADMIN,
  'update_network:port_security_enabled': ADMIN_OR_PROJECT_MEMBER,
  delete_network: ADMIN_OR_PROJECT_MEMBER,

  // subnets
  create_subnet: `${ADMIN_OR_PROJECT_MEMBER} or ${NET_OWNER_MEMBER}`,
  'create_subnet:segment_id': ADMIN,
  'create_subnet:service_types': ADMIN,
  get_subnet: `${ADMIN_OR_PROJECT_READER} or ${NET_OWNER_READER} or ${SHARED_NETWORK}`,
  'get_subnet:segment_id': ADMIN,
  update_subnet: `${ADMIN_OR_PROJECT_MEMBER} or ${NET_OWNER_MEMBER}`,
  'update_subnet:segment_id': ADMIN,
  'update_subnet:service_types': ADMIN,
  delete_subnet: `${ADMIN_OR_PROJECT_MEMBER} or ${NET_OWNER_MEMBER}`,

  // subnet pools
  create_subnetpool: ADMIN_OR_PROJECT_MEMBER,
  'create_subnetpool:shared': ADMIN,
  'create_subnetpool:is_default': ADMIN,
  get_subnetpool: `${ADMIN_OR_PROJECT_READER} or rule:shared`,
  update_subnetpool: ADMIN_OR_PROJECT_MEMBER,
  'update_subnetpool:is_default': ADMIN,
  delete_subnetpool: ADMIN_OR_PROJECT_MEMBER,

  // ports
  create_port: ADMIN_OR_PROJECT_MEMBER,
  'create_port:device_owner': `not rule:network_device or ${ADMIN_OR_NET_OWNER_MEMBER}`,
  'create_port:mac_address': ADMIN_OR_NET_OWNER_MEMBER,
  'create_port:fixed_ips': `${ADMIN_OR_NET_OWNER_MEMBER} or ${SHARED_NETWORK}`,
  'create_port:fixed_ips:ip_address': ADMIN_OR_NET_OWNER_MEMBER,
  'create_port:fixed_ips:subnet_id': `${ADMIN_OR_NET_OWNER_MEMBER} or ${SHARED_NETWORK}`,
  'create_port:port_security_enabled': ADMIN_OR_NET_OWNER_MEMBER,
  'create_port:binding:host_id': ADMIN,
  'create_port:binding:profile': ADMIN,
  'create_port:binding:vnic_type': ADMIN_OR_PROJECT_MEMBER,
  'create_port:allowed_address_pairs': ADMIN_OR_NET_OWNER_MEMBER,
  'create_port:allowed_address_pairs:mac_address': ADMIN_OR_NET_OWNER_MEMBER,
  'create_port:allowed_address_pairs:ip_address': ADMIN_OR_NET_OWNER_MEMBER,
  get_port: `${ADMIN_OR_PROJECT_READER} or ${NET_OWNER_READER}`,
  'get_port:binding:vif_type': ADMIN,
  'get_port:binding:vif_details': ADMIN,
  'get_port:binding:host_id': ADMIN,
  'get_port:binding:profile': ADMIN,
  'get_port:resource_request': ADMIN,
  update_port: `${ADMIN_OR_PROJECT_MEMBER} or ${NET_OWNER_MEMBER}`,
  'update_port:device_owner': `not rule:network_device or ${ADMIN_OR_NET_OWNER_MEMBER}`,
  'update_port:mac_address': ADMIN,
  'update_port:fixed_ips': ADMIN_OR_NET_OWNER_MEMBER,
  'update_port:fixed_ips:ip_address': ADMIN_OR_NET_OWNER_MEMBER,
  'update_port:fixed_ips:subnet_id': `${ADMIN_OR_NET_OWNER_MEMBER} or ${SHARED_NETWORK}`,
  'update_port:port_security_enabled': ADMIN_OR_NET_OWNER_MEMBER,
  'update_port:binding:host_id': ADMIN,
  'update_port:binding:profile': ADMIN,
  'update_port:binding:vnic_type': ADMIN_OR_PROJECT_MEMBER,
  'update_port:allowed_address_pairs': ADMIN_OR_NET_OWNER_MEMBER,
  'update_port:allowed_address_pairs:mac_address': ADMIN_OR_NET_OWNER_MEMBER,
  'update_port:allowed_address_pairs:ip_address': ADMIN_OR_NET_OWNER_MEMBER,
  delete_port: `${ADMIN_OR_PROJECT_MEMBER} or ${NET_OWNER_MEMBER}`,

  // routers
  create_router: ADMIN_OR_PROJECT_MEMBER,
  'create_router:external_gateway_info': ADMIN_OR_PROJECT_MEMBER,
  'create_router:external_gateway_info:network_id': ADMIN_OR_PROJECT_MEMBER,
  'create_router:external_gateway_info:enable_snat': ADMIN,
  'create_router:external_gateway_info:external_fixed_ips': ADMIN,
  'create_router:distributed': ADMIN,
  'create_router:ha': ADMIN,
  get_router: ADMIN_OR_PROJECT_READER,
  'get_router:distributed': ADMIN,
  'get_router:ha': ADMIN,
  update_router: ADMIN_OR_PROJECT_MEMBER,
  'update_router:external_gateway_info': ADMIN_OR_PROJECT_MEMBER,
  'update_router:external_gateway_info:network_id': ADMIN_OR_PROJECT_MEMBER,
  'update_router:external_gateway_info:enable_snat': ADMIN,
  'update_router:external_gateway_info:external_fixed_ips': ADMIN,
  'update_router:distributed': ADMIN,
  'update_router:ha': ADMIN,
  delete_router: ADMIN_OR_PROJECT_MEMBER,
  add_router_interface: ADMIN_OR_PROJECT_MEMBER,
  remove_router_interface: ADMIN_OR_PROJECT_MEMBER,
  add_extraroutes: ADMIN_OR_PROJECT_MEMBER,
  remove_extraroutes: ADMIN_OR_PROJECT_MEMBER,

  // floating IPs
  create_floatingip: ADMIN_OR_PROJECT_MEMBER,
  'create_floatingip:floating_ip_address': ADMIN,
  get_floatingip: ADMIN_OR_PROJECT_READER,
  update_floatingip: ADMIN_OR_PROJECT_MEMBER,
  delete_floatingip: ADMIN_OR_PROJECT_MEMBER,

  // security groups
  create_security_group: ADMIN_OR_PROJECT_MEMBER,
  get_security_group: ADMIN_OR_PROJECT_READER,
  update_security_group: ADMIN_OR_PROJECT_MEMBER,
  delete_security_group: ADMIN_OR_PROJECT_MEMBER,
  create_security_group_rule: ADMIN_OR_PROJECT_MEMBER,
  get_security_group_rule: `${ADMIN_OR_PROJECT_READER} or (role:reader and project_id:%(security_group:project_id)s)`,
  delete_security_group_rule: `${ADMIN_OR_PROJECT_MEMBER} or (role:member and project_id:%(security_group:project_id)s)`,

  // quotas
  get_quota: ADMIN_OR_PROJECT_READER,
  update_quota: ADMIN,
  delete_quota: ADMIN,

  // agents and availability zones
  get_agent: ADMIN,
  update_agent: ADMIN,
  delete_agent: ADMIN,
  create_dhcp_network: ADMIN,
  get_dhcp_networks: ADMIN,
  delete_dhcp_network: ADMIN,
  create_l3_router: ADMIN,
  get_l3_routers: ADMIN,
  delete_l3_router: ADMIN,
  get_l3_agents_hosting_routers: ADMIN,
  get_dhcp_agents_hosting_networks: ADMIN,
  get_availability_zone: '',

  // tags (Neutron checks the parent resource's update rule; these add to it)
  create_tags: ADMIN_OR_PROJECT_MEMBER,
  update_tags: ADMIN_OR_PROJECT_MEMBER,
  delete_tags: ADMIN_OR_PROJECT_MEMBER,
};

export const networkPolicyDefaults: RuleDefault[] = Object.entries(rules).map(([name, checkStr]) => ({ name, checkStr }));
