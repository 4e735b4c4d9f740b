import fs from 'node:fs/promises';
import { PortFirewall } from './firewall.js';
import type { HostNet } from './host.js';
import { BRIDGE_PREFIX, DHCP_NAMESPACE_PREFIX, ROUTER_NAMESPACE_PREFIX, VXLAN_PREFIX } from './names.js';
import type { Logger } from '../../core/logging.js';

/** What {@link cleanupHost} removed. */
export interface CleanupReport {
  namespaces: string[];
  devices: string[];
  firewall: boolean;
}

/** Our devices: ports' taps and veth ends on the host, networks' bridges and VXLAN devices. */
const OUR_DEVICE = /^(?:tap[0-9a-f-]{11}|brq[0-9a-f-]{11}|vxlan-\d+)$/;

/**
 * Removes every host resource of the Linux data plane (`stratus cleanup`):
 * router and DHCP namespaces with what runs in them (dnsmasq, metadata
 * proxies), taps and veth ends, network bridges and VXLAN devices, the
 * mapped bridges named in `bridges` (such as `br-ex`), the packet-filter
 * chains and tables of `chainPrefix`, and the agents' state under
 * `stateDirs`. For a clean slate with the cloud stopped: running guests lose
 * their network.
 */
export async function cleanupHost(host: HostNet, options: { chainPrefix: string; bridges: string[]; stateDirs: string[]; log: Logger }): Promise<CleanupReport> {
  const report: CleanupReport = { namespaces: [], devices: [], firewall: false };
  for (const ns of await host.namespaces()) {
    if (!ns.startsWith(DHCP_NAMESPACE_PREFIX) && !ns.startsWith(ROUTER_NAMESPACE_PREFIX)) continue;
    await host.deleteNamespace(ns);
    report.namespaces.push(ns);
  }
  const links = await host.links();
  // Ports first, then what they were on.
  const order = (name: string): number => (name.startsWith(BRIDGE_PREFIX) || options.bridges.includes(name) ? 2 : name.startsWith(VXLAN_PREFIX) ? 1 : 0);
  const ours = links.filter((l) => OUR_DEVICE.test(l.ifname) || options.bridges.includes(l.ifname)).sort((a, b) => order(a.ifname) - order(b.ifname));
  for (const link of ours) {
    // A veth's other end may have gone with its namespace already.
    if (!(await host.link(link.ifname))) continue;
    await host.deleteLink(link.ifname);
    report.devices.push(link.ifname);
  }
  await new PortFirewall(host, { prefix: options.chainPrefix, log: options.log }).clear();
  report.firewall = true;
  for (const dir of options.stateDirs) await fs.rm(dir, { recursive: true, force: true });
  return report;
}
