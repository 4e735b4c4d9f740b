/**
 * The names the Linux data plane gives what it creates, as Neutron's Linux
 * bridge agents name them, so that an operator who knows Neutron finds
 * them: every device and namespace is named after its resource, which is
 * how agents find their work again after a restart and how `stratus network
 * cleanup` finds everything of ours. Linux allows 15 characters per device.
 */

const DEVICE_ID_LENGTH = 11;

function short(id: string): string {
  return id.slice(0, DEVICE_ID_LENGTH);
}

/** A network's bridge on each host (`brq` + id). */
export function bridgeName(networkId: string): string {
  return `brq${short(networkId)}`;
}

/** A port's device on the host: a VM's tap, or the host end of a DHCP or router port's veth. */
export function tapName(portId: string): string {
  return `tap${short(portId)}`;
}

/** The namespace end of a DHCP port's veth. */
export function dhcpDeviceName(portId: string): string {
  return `ns-${short(portId)}`;
}

/** The namespace end of a router interface's veth. */
export function routerInterfaceName(portId: string): string {
  return `qr-${short(portId)}`;
}

/** The namespace end of a router gateway's veth. */
export function routerGatewayName(portId: string): string {
  return `qg-${short(portId)}`;
}

/** The VXLAN device of a network segment. */
export function vxlanName(vni: number): string {
  return `vxlan-${vni}`;
}

/** The VLAN sub-interface of a physical interface (`eth1.100`); Linux's 15-character limit applies. */
export function vlanName(physicalInterface: string, vlan: number): string {
  const name = `${physicalInterface}.${vlan}`;
  if (name.length > 15) throw new Error(`VLAN device name ${name} is longer than 15 characters`);
  return name;
}

/** A DHCP-served network's namespace. */
export function dhcpNamespace(networkId: string): string {
  return `qdhcp-${networkId}`;
}

/** A router's namespace. */
export function routerNamespace(routerId: string): string {
  return `qrouter-${routerId}`;
}

export const TAP_PREFIX = 'tap';
export const BRIDGE_PREFIX = 'brq';
export const VXLAN_PREFIX = 'vxlan-';
export const DHCP_NAMESPACE_PREFIX = 'qdhcp-';
export const ROUTER_NAMESPACE_PREFIX = 'qrouter-';

/** The port id prefix a device name (`tap`, `ns-`, `qr-`, `qg-`) carries, or null for other devices. */
export function portPrefixOf(device: string): string | null {
  const m = /^(?:tap|ns-|qr-|qg-)([0-9a-f-]{11})$/.exec(device);
  return m?.[1] ?? null;
}
