import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../core/logging.js';
import { PortFirewall } from './firewall.js';
import type { HostNet } from './host.js';
import { bridgeName, dhcpNamespace, routerNamespace, tapName } from './names.js';

/** What one cloud has on a host, by id: its networks, routers and ports. */
export interface CloudResources {
  networkIds: Iterable<string>;
  routerIds: Iterable<string>;
  portIds: Iterable<string>;
}

/** What {@link cleanupHost} removed. */
export interface CleanupReport {
  namespaces: string[];
  devices: string[];
}

/**
 * The ids the agents' state directories still name (`dhcp/<network>`,
 * `l3/<router>/ports.json`): what a crashed or stopped agent had set up,
 * also for resources the database no longer has.
 */
export async function resourcesInState(dhcpDir: string, l3Dir: string): Promise<CloudResources> {
  const dirs = async (dir: string): Promise<string[]> => (await fs.readdir(dir, { withFileTypes: true }).catch(() => [])).filter((d) => d.isDirectory()).map((d) => d.name);
  const routerIds = await dirs(l3Dir);
  const portIds: string[] = [];
  for (const id of routerIds) {
    const text = await fs.readFile(path.join(l3Dir, id, 'ports.json'), 'utf8').catch(() => '');
    try {
      const ports = (JSON.parse(text || '{}') as { ports?: unknown }).ports;
      if (Array.isArray(ports)) portIds.push(...ports.filter((p): p is string => typeof p === 'string'));
    } catch {
      // A torn file names nothing.
    }
  }
  return { networkIds: await dirs(dhcpDir), routerIds, portIds };
}

/**
 * Removes the host resources of one cloud's Linux data plane (`stratus
 * cleanup`): the DHCP and router namespaces of its networks and routers
 * with what runs in them (dnsmasq, metadata proxies), its ports' taps and
 * veth ends, its networks' bridges with their VXLAN or VLAN members, the
 * mapped bridges named in `bridges` (such as `br-ex`), the packet-filter
 * chains and table of `chainPrefix`, and the agents' `stateDirs`. Only
 * what is named after this cloud's resources goes: another cloud on the
 * host keeps its own. For a clean slate with the cloud stopped.
 */
export async function cleanupHost(host: HostNet, options: { resources: CloudResources; chainPrefix: string; bridges: string[]; stateDirs: string[]; log: Logger }): Promise<CleanupReport> {
  const report: CleanupReport = { namespaces: [], devices: [] };
  const { resources } = options;
  const namespaces = new Set(await host.namespaces());
  const wantedNamespaces = [...new Set([...resources.networkIds].map(dhcpNamespace)), ...new Set([...resources.routerIds].map(routerNamespace))];
  for (const ns of wantedNamespaces) {
    if (!namespaces.has(ns)) continue;
    await host.deleteNamespace(ns);
    report.namespaces.push(ns);
  }
  const links = await host.links();
  const bridges = new Set([...[...resources.networkIds].map(bridgeName), ...options.bridges]);
  const taps = new Set([...resources.portIds].map(tapName));
  // Ports first, then the segment devices on this cloud's bridges, then the bridges.
  const remove = [
    ...links.filter((l) => taps.has(l.ifname)),
    ...links.filter((l) => l.master !== undefined && bridges.has(l.master) && (l.kind === 'vxlan' || l.kind === 'vlan')),
    ...links.filter((l) => bridges.has(l.ifname)),
  ];
  for (const link of remove) {
    // A veth's other end may have gone with its namespace already.
    if (!(await host.link(link.ifname))) continue;
    await host.deleteLink(link.ifname);
    report.devices.push(link.ifname);
  }
  await new PortFirewall(host, { prefix: options.chainPrefix, log: options.log }).clear();
  for (const dir of options.stateDirs) await fs.rm(dir, { recursive: true, force: true });
  return report;
}
