import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Bus } from '../core/bus/index.js';
import { ConfigError, databaseUrl, type StratusConfig } from '../core/config.js';
import { openDatabase } from '../core/db/database.js';
import type { NetworkSchema } from '../network/db/schema.js';
import { resourcesInState, type CloudResources } from '../network/linux/cleanup.js';
import type { Logger } from '../core/logging.js';
import { metadataSecret } from '../compute/metadata/secret.js';
import { startLinuxAgents, type RunningLinuxAgents } from '../network/linux/agents.js';
import { ensurePackages } from './packages.js';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;
}

/** What the Linux data plane runs: iproute2, iptables (with ip6tables), nftables, dnsmasq and dhcp_release, conntrack (stale NAT entries, flows of removed rules), radvd (IPv6 router advertisements). */
const LINUX_PACKAGES: [string, string][] = [
  ['ip', 'iproute2'],
  ['bridge', 'iproute2'],
  ['iptables-restore', 'iptables'],
  ['nft', 'nftables'],
  ['dnsmasq', 'dnsmasq-base'],
  ['dhcp_release', 'dnsmasq-utils'],
  ['conntrack', 'conntrack'],
  ['radvd', 'radvd'],
];

/**
 * Settles `network.driver` before the network roles start: `linux` and
 * `fake` stay; `auto` (the default) becomes `linux` when running as root
 * with the tools there (installed first), else `fake`, which `say` tells.
 * `linux` without root or tools, and an unknown driver, are errors.
 */
export function resolveNetworkDriver(config: StratusConfig, say: (line: string) => void): 'fake' | 'linux' {
  const wanted = config.network.driver;
  if (wanted === 'fake') return 'fake';
  if (wanted !== 'linux' && wanted !== 'auto') throw new ConfigError(`network.driver '${wanted}' is unknown (use auto, linux or fake)`);
  const root = process.getuid?.() === 0;
  if (root) {
    try {
      ensurePackages(LINUX_PACKAGES, say);
    } catch (err) {
      if (wanted === 'linux') throw new ConfigError(`network.driver linux: ${(err as Error).message}`);
    }
  }
  const missing = LINUX_PACKAGES.filter(([cmd]) => !have(cmd)).map(([cmd]) => cmd);
  if (!root || missing.length > 0) {
    const why = !root ? 'it needs root (network namespaces, bridges, packet filters)' : `${missing.join(', ')} not found`;
    if (wanted === 'linux') throw new ConfigError(`network.driver linux: ${why}`);
    say(`warning: the Linux network data plane is off (${why}): networking runs the fake driver (ports bind, no packets move)`);
    config.network.driver = 'fake';
    return 'fake';
  }
  config.network.driver = 'linux';
  return 'linux';
}

/**
 * Where the DHCP agent keeps dnsmasq's files: under /run, not the data
 * directory, because dnsmasq drops to `nobody` and rereads them as that
 * user, and a data directory (owner-only, holding secrets) is not for
 * others to enter. They are runtime state, rebuilt by the agent after a
 * reboot as the namespaces are. One directory per cloud (per data directory).
 */
export function dhcpStateDir(config: StratusConfig): string {
  return path.join('/run/stratus', createHash('sha256').update(config.data_dir).digest('hex').slice(0, 12), 'dhcp');
}

/**
 * Starts this host's network agents (bridge, DHCP, L3, metadata) for the
 * `linux` driver; `host` is the name compute binds ports to.
 */
export function startNetworkAgents(config: StratusConfig, bus: Bus, options: { host: string; log: Logger }): Promise<RunningLinuxAgents> {
  const linux = config.network.linux;
  const pub = config.network.public_network;
  const bridgeAddresses: Record<string, string[]> = {};
  const publicBridge = linux.bridge_mappings[pub.physical_network];
  if (linux.external_gateway_on_host && pub.enabled && publicBridge && pub.gateway_ip) {
    bridgeAddresses[publicBridge] = [`${pub.gateway_ip}/${pub.cidr.split('/')[1] ?? '24'}`];
  }
  const withMetadata = config.services.includes('compute');
  // Made here with the modes dnsmasq needs (the process umask is owner-only).
  const dhcpDir = dhcpStateDir(config);
  fs.mkdirSync(dhcpDir, { recursive: true });
  for (let dir = dhcpDir; dir !== '/run'; dir = path.dirname(dir)) fs.chmodSync(dir, 0o755);
  return startLinuxAgents(bus, {
    host: options.host,
    availabilityZone: config.network.availability_zone,
    reportInterval: config.network.report_interval,
    config: linux,
    stateDir: path.join(config.data_dir, 'network'),
    dhcpDir,
    bridgeAddresses,
    metadata: withMetadata ? { url: linux.metadata_url || `http://${config.public_host}:${config.compute.metadata.port}`, secret: metadataSecret(config) } : null,
    log: options.log,
  });
}

/**
 * The networks, routers and ports of this cloud, for `stratus cleanup`:
 * those in the network database, those the agents' state still names, and
 * the ports of the guests in the instances directory.
 */
export async function cloudNetworkResources(config: StratusConfig, instancesPath: string): Promise<CloudResources> {
  const networkIds = new Set<string>();
  const routerIds = new Set<string>();
  const portIds = new Set<string>();
  const url = databaseUrl(config, 'network');
  // An SQLite file that is not there holds nothing (opening it would make it).
  if (!url.startsWith('sqlite://') || fs.existsSync(url.slice('sqlite://'.length))) {
    const database = await openDatabase<NetworkSchema>(url, { role: 'cleanup' });
    try {
      for (const r of await database.db.selectFrom('network').select('id').execute()) networkIds.add(r.id);
      for (const r of await database.db.selectFrom('router').select('id').execute()) routerIds.add(r.id);
      for (const r of await database.db.selectFrom('port').select('id').execute()) portIds.add(r.id);
    } finally {
      await database.close();
    }
  }
  const state = await resourcesInState(dhcpStateDir(config), path.join(config.data_dir, 'network', 'l3'));
  for (const id of state.networkIds) networkIds.add(id);
  for (const id of state.routerIds) routerIds.add(id);
  for (const id of state.portIds) portIds.add(id);
  for (const entry of fs.existsSync(instancesPath) ? fs.readdirSync(instancesPath) : []) {
    try {
      const record = JSON.parse(fs.readFileSync(path.join(instancesPath, entry, 'guest.json'), 'utf8')) as { nics?: { portId?: string }[] };
      for (const nic of record.nics ?? []) if (typeof nic.portId === 'string') portIds.add(nic.portId);
    } catch {
      // Not a guest's directory.
    }
  }
  return { networkIds, routerIds, portIds };
}
