import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../core/logging.js';
import type { L3DataPlane, RouterDetails, RouterPort } from '../agents/interfaces.js';
import { contains, formatCidr, normalizeIp, parseCidr, parseIp } from '../ipam/addresses.js';
import type { HostNet } from './host.js';
import type { MetadataProxies } from './metadata-proxy.js';
import { RouterAdvertisements } from './radvd.js';
import { portPrefixOf, routerGatewayName, routerInterfaceName, routerNamespace, tapName } from './names.js';

/** Options of {@link LinuxL3}. */
export interface L3Options {
  /** `<stateDir>/<router id>/ports.json` records the ports a router has, for its teardown. */
  stateDir: string;
  /** Proxies started in each router namespace (null: no metadata). */
  metadata: MetadataProxies | null;
  /** The port the proxy listens on inside the namespace (9697). */
  metadataPort: number;
  log: Logger;
}

/** A device in the router namespace, as `ip -j addr show` gives it (the fields we read). */
interface NsDevice {
  ifname: string;
  address?: string;
  mtu?: number;
  flags?: string[];
  addr_info?: { family: string; local: string; prefixlen: number; scope: string }[];
}

/** A route as `ip -j route show` gives it. */
interface NsRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

/** A router port as it must be in the namespace. */
interface WantedPort {
  port: RouterPort;
  /** `qr-<port11>` or `qg-<port11>`. */
  device: string;
  /** `<ip>/<prefixlen>`, canonical; on the gateway also each floating IP as `/32`. */
  addresses: string[];
}

/** One iptables table as we want our part of it. */
interface WantedTable {
  name: 'nat' | 'mangle' | 'filter';
  /** Our chains, declared (and so flushed and refilled) on every change. */
  chains: string[];
  /** `[built-in chain, our chain]`: jumped to once, appended. */
  jumps: [string, string][];
  /** Rules in `iptables-save`'s own spelling, so that comparing with it tells whether anything changes. */
  rules: string[];
}

/** Marks packets that came in on the gateway, so that the hairpin SNAT leaves them alone (Neutron's 0x2). */
const FROM_GATEWAY_MARK = '0x2/0xffff';
const METADATA_ADDRESS = '169.254.169.254/32';

/**
 * The L3 data plane: each router is a namespace `qrouter-<id>` on this host,
 * as Neutron's legacy L3 agent makes it. Interfaces and the gateway are veth
 * pairs whose host end `tap<port11>` is left unplugged (the bridge agent puts
 * it on its network's bridge); the namespace forwards between them, SNATs
 * the internal subnets to the gateway address, DNATs floating IPs,
 * redirects 169.254.169.254:80 to the metadata proxy and sends IPv6 router
 * advertisements on the interfaces whose subnets ask for them (radvd).
 *
 * Every call converges: what is no longer wanted goes, what is missing is
 * added, and what is already right is not touched (no device is recreated,
 * no rule rewritten), so setting a router up again does not interrupt its
 * traffic, and an agent that restarts finds its work again from the kernel
 * and `stateDir`. Calls for one router run one at a time.
 */
export class LinuxL3 implements L3DataPlane {
  private readonly queues = new Map<string, Promise<void>>();
  private readonly log: Logger;
  private readonly advertisements: RouterAdvertisements;

  constructor(
    private readonly host: HostNet,
    private readonly options: L3Options,
  ) {
    this.log = options.log.child({ component: 'l3' });
    this.advertisements = new RouterAdvertisements(host, this.log);
  }

  /**
   * Creates or updates the router (see the class). A router whose
   * `admin_state_up` is false is torn down, as Neutron's agent does. On
   * failure what was done stays (the next call converges from there) and the
   * ports are recorded, so that a teardown still finds their taps.
   */
  setupRouter(router: RouterDetails): Promise<void> {
    return this.serialized(router.id, () => (router.admin_state_up ? this.converge(router) : this.teardown(router.id)));
  }

  /** Stops the metadata proxy, deletes the namespace and the host ends of the router's veths, and forgets the router. Idempotent. */
  teardownRouter(routerId: string): Promise<void> {
    return this.serialized(routerId, () => this.teardown(routerId));
  }

  /** Router ids this agent has set up (its recorded state), for the resync after a restart. */
  async present(): Promise<string[]> {
    // By this agent's own state only: another cloud on the host (or a test) may have qrouter- namespaces too.
    const dirs = await fs.readdir(this.options.stateDir, { withFileTypes: true }).catch(() => []);
    return dirs
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  }

  private serialized(routerId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.queues.get(routerId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    const settled = next.catch(() => undefined);
    this.queues.set(routerId, settled);
    void settled.then(() => {
      if (this.queues.get(routerId) === settled) this.queues.delete(routerId);
    });
    return next;
  }

  private async converge(router: RouterDetails): Promise<void> {
    const ns = routerNamespace(router.id);
    const ports = wantedPorts(router);
    const ids = ports.map((p) => p.port.id);
    // Recorded before any device exists, so that a setup that fails half-way still gets torn down whole.
    await this.record(router.id, [...new Set([...(await this.recorded(router.id)), ...ids])]);
    await this.host.ensureNamespace(ns);
    await this.enableForwarding(ns);
    const devices = await this.nsDevices(ns);
    await this.removeStalePorts(ns, devices, ports);
    for (const wanted of ports) await this.plugPort(ns, wanted, devices.find((d) => d.ifname === wanted.device));
    const gateway = ports.find((p) => p.port.id === router.gw_port?.id) ?? null;
    await this.convergeRoutes(ns, router, gateway);
    await this.convergeFirewall(ns, router, gateway);
    await this.advertisements.converge(ns, this.routerDir(router.id), router.interfaces);
    const metadata = this.options.metadata;
    if (metadata && router.interfaces.length > 0) await metadata.ensure(ns, { routerId: router.id });
    else if (metadata) await metadata.stop(ns);
    await this.record(router.id, ids);
    this.log.debug({ router: router.id, interfaces: router.interfaces.length, floating_ips: router.floating_ips.length }, 'router set up');
  }

  private async teardown(routerId: string): Promise<void> {
    const ns = routerNamespace(routerId);
    await this.options.metadata?.stop(ns);
    const taps = new Set((await this.recorded(routerId)).map(tapName));
    if ((await this.host.namespaces()).includes(ns)) {
      for (const device of await this.nsDevices(ns)) {
        const prefix = routerPortPrefix(device.ifname);
        if (prefix) taps.add(`tap${prefix}`);
      }
    }
    // Deleting the namespace deletes the inner ends, and with them their peers; the host ends go explicitly too in case one was left.
    await this.host.deleteNamespace(ns);
    for (const tap of taps) await this.host.deleteLink(tap);
    await fs.rm(this.routerDir(routerId), { recursive: true, force: true });
    this.log.debug({ router: routerId }, 'router torn down');
  }

  private async enableForwarding(ns: string): Promise<void> {
    await this.host.nsExec(ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    // A host without IPv6 has no such key: the router then forwards IPv4 only.
    await this.host.nsExec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.forwarding=1']).catch((err: unknown) => this.log.debug({ err, ns }, 'no IPv6 forwarding'));
  }

  private ip(ns: string, args: string[]): Promise<string> {
    return this.host.nsExec(ns, 'ip', args);
  }

  private async nsDevices(ns: string): Promise<NsDevice[]> {
    return JSON.parse((await this.ip(ns, ['-j', 'addr', 'show'])) || '[]') as NsDevice[];
  }

  /** Removes `qr-`/`qg-` devices of ports the router no longer has, with their host ends. */
  private async removeStalePorts(ns: string, devices: NsDevice[], ports: WantedPort[]): Promise<void> {
    const wanted = new Set(ports.map((p) => p.device));
    for (const device of devices) {
      const prefix = routerPortPrefix(device.ifname);
      if (!prefix || wanted.has(device.ifname)) continue;
      await this.ip(ns, ['link', 'delete', 'dev', device.ifname]);
      await this.host.deleteLink(`tap${prefix}`);
      this.log.info({ ns, device: device.ifname }, 'removed a router port');
    }
  }

  /** The port's veth (MAC, MTU, up) and its addresses; a right device is left alone. */
  private async plugPort(ns: string, wanted: WantedPort, current: NsDevice | undefined): Promise<void> {
    const { port, device } = wanted;
    const tap = tapName(port.id);
    const hostEnd = await this.host.link(tap);
    const right =
      current !== undefined &&
      hostEnd !== null &&
      current.address?.toLowerCase() === port.mac_address.toLowerCase() &&
      current.mtu === port.mtu &&
      hostEnd.mtu === port.mtu &&
      (current.flags ?? []).includes('UP') &&
      hostEnd.operstate === 'UP';
    if (!right) {
      // An inner end without its host end cannot be repaired in place: it is made again.
      if (current && !hostEnd) await this.ip(ns, ['link', 'delete', 'dev', device]);
      await this.host.ensureVeth(tap, device, ns, { mac: port.mac_address, mtu: port.mtu });
    }
    const have = new Set(
      (current && hostEnd ? (current.addr_info ?? []) : [])
        .filter((a) => a.scope === 'global')
        .map((a) => `${normalizeIp(a.local) ?? a.local}/${a.prefixlen}`),
    );
    const want = new Set(wanted.addresses);
    for (const address of have) if (!want.has(address)) await this.ip(ns, ['addr', 'delete', address, 'dev', device]);
    for (const address of want) {
      if (have.has(address)) continue;
      const v6 = address.includes(':');
      // No duplicate address detection: the router's addresses are allocated by IPAM and must work at once.
      await this.ip(ns, ['addr', 'add', address, 'dev', device, ...(v6 ? ['nodad'] : [])]);
      if (!v6 && device.startsWith('qg-')) await this.announce(ns, device, address.slice(0, address.indexOf('/')));
    }
  }

  /** A gratuitous ARP for a new external address (a floating IP that moved here), best effort. */
  private async announce(ns: string, device: string, ip: string): Promise<void> {
    await this.host.nsExec(ns, 'busybox', ['arping', '-U', '-c', '1', '-I', device, '-s', ip, ip]).catch((err: unknown) => this.log.debug({ err, ns, ip }, 'no gratuitous ARP'));
  }

  /** The default route through the gateway and the router's extra routes, per IP version. */
  private async convergeRoutes(ns: string, router: RouterDetails, gateway: WantedPort | null): Promise<void> {
    for (const version of [4, 6] as const) {
      const routes = JSON.parse((await this.ip(ns, [`-${version}`, '-j', 'route', 'show'])) || '[]') as NsRoute[];
      await this.convergeDefaultRoute(ns, version, routes, gateway);
      const wanted = new Map<string, string>();
      for (const route of router.routes) {
        const dest = parseCidr(route.destination);
        const nexthop = normalizeIp(route.nexthop);
        if (dest && nexthop && dest.version === version) wanted.set(formatCidr(dest), nexthop);
      }
      const current = new Map<string, string>();
      for (const route of routes) {
        const dest = parseCidr(route.dst);
        if (route.dst !== 'default' && route.gateway && dest) current.set(formatCidr(dest), normalizeIp(route.gateway) ?? route.gateway);
      }
      for (const [dest, via] of current) {
        if (wanted.has(dest)) continue;
        await this.ip(ns, [`-${version}`, 'route', 'delete', dest, 'via', via]).catch((err: unknown) => this.log.warn({ err, ns, dest }, 'could not remove a route'));
      }
      for (const [dest, via] of wanted) {
        if (current.get(dest) === via) continue;
        // A next hop the router cannot reach is the user's mistake: the other routes still go in.
        await this.ip(ns, [`-${version}`, 'route', 'replace', dest, 'via', via]).catch((err: unknown) => this.log.warn({ err, ns, dest, nexthop: via }, 'could not add a route'));
      }
    }
  }

  private async convergeDefaultRoute(ns: string, version: 4 | 6, routes: NsRoute[], gateway: WantedPort | null): Promise<void> {
    const current = routes.find((r) => r.dst === 'default');
    const via = gateway ? gatewayIp(gateway.port, version) : null;
    if (gateway && via) {
      if (current?.gateway && normalizeIp(current.gateway) === via.ip && current.dev === gateway.device) return;
      // A gateway outside the subnet (Neutron allows it) is reached on-link.
      await this.ip(ns, [`-${version}`, 'route', 'replace', 'default', 'via', via.ip, 'dev', gateway.device, ...(via.inSubnet ? [] : ['onlink'])]);
    } else if (current) {
      await this.ip(ns, [`-${version}`, 'route', 'delete', 'default']);
    }
  }

  /**
   * Replaces our chains in the namespace's nat, mangle and filter tables
   * when they differ from what the router wants (one `iptables-restore`,
   * atomic), and forgets the connections of floating IPs that went or moved.
   */
  private async convergeFirewall(ns: string, router: RouterDetails, gateway: WantedPort | null): Promise<void> {
    const wanted = wantedTables(router, gateway, this.options.metadata ? this.options.metadataPort : null);
    const current = parseSave(await this.host.nsExec(ns, 'iptables-save', []));
    const input: string[] = [];
    for (const table of wanted) {
      const have = current.get(table.name) ?? { chains: new Set<string>(), rules: [] };
      const missingJumps = table.jumps.map(([from, to]) => `-A ${from} -j ${to}`).filter((jump) => !have.rules.includes(jump));
      if (table.chains.every((c) => have.chains.has(c)) && missingJumps.length === 0 && table.chains.every((c) => sameList(inChain(have.rules, c), inChain(table.rules, c)))) continue;
      input.push(`*${table.name}`, ...table.chains.map((c) => `:${c} - [0:0]`), ...table.rules, ...missingJumps, 'COMMIT');
    }
    if (input.length === 0) return;
    await this.host.nsExec(ns, 'iptables-restore', ['--noflush'], { input: `${input.join('\n')}\n` });
    const before = floatingMap(current.get('nat')?.rules ?? []);
    const after = new Map(router.floating_ips.map((f) => [normalizeIp(f.floating_ip_address) ?? f.floating_ip_address, normalizeIp(f.fixed_ip_address) ?? f.fixed_ip_address]));
    for (const [fip, fixed] of before) if (after.get(fip) !== fixed) await this.forgetConnections(ns, fip);
    this.log.info({ ns, floating_ips: after.size }, 'router NAT rules updated');
  }

  /** Drops the connection-tracking entries of a floating IP, so that its old NAT stops at once (best effort). */
  private async forgetConnections(ns: string, fip: string): Promise<void> {
    // `conntrack -D` fails when nothing matched, which is fine.
    for (const flag of ['--orig-dst', '--reply-dst']) await this.host.nsExec(ns, 'conntrack', ['-D', flag, fip]).catch(() => undefined);
  }

  private routerDir(routerId: string): string {
    return path.join(this.options.stateDir, routerId);
  }

  private async recorded(routerId: string): Promise<string[]> {
    const text = await fs.readFile(path.join(this.routerDir(routerId), 'ports.json'), 'utf8').catch(() => '');
    if (!text) return [];
    try {
      const parsed = JSON.parse(text) as { ports?: unknown };
      return Array.isArray(parsed.ports) ? parsed.ports.filter((p): p is string => typeof p === 'string') : [];
    } catch {
      return [];
    }
  }

  private async record(routerId: string, ports: string[]): Promise<void> {
    const dir = this.routerDir(routerId);
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'ports.json');
    // Written aside and renamed: a crash never leaves half a file.
    await fs.writeFile(`${file}.tmp`, `${JSON.stringify({ ports: [...ports].sort() })}\n`);
    await fs.rename(`${file}.tmp`, file);
  }
}

/** The port prefix of a router device (`qr-`/`qg-`), or null for other devices. */
function routerPortPrefix(device: string): string | null {
  return device.startsWith('qr-') || device.startsWith('qg-') ? portPrefixOf(device) : null;
}

function portAddresses(port: RouterPort): string[] {
  return port.fixed_ips.map((ip) => `${normalizeIp(ip.ip_address) ?? ip.ip_address}/${ip.prefixlen}`);
}

/** The router's ports: each interface as `qr-`, the gateway as `qg-` with the IPv4 floating IPs as `/32`. */
function wantedPorts(router: RouterDetails): WantedPort[] {
  const ports = router.interfaces.map((port) => ({ port, device: routerInterfaceName(port.id), addresses: [...new Set(portAddresses(port))] }));
  const gw = router.gw_port;
  if (gw) {
    const fips = router.floating_ips.map((f) => normalizeIp(f.floating_ip_address)).filter((ip): ip is string => ip !== null && !ip.includes(':'));
    ports.push({ port: gw, device: routerGatewayName(gw.id), addresses: [...new Set([...portAddresses(gw), ...fips.map((ip) => `${ip}/32`)])] });
  }
  return ports;
}

/** The gateway of the gateway port's subnet for an IP version, and whether it lies in that subnet. */
function gatewayIp(port: RouterPort, version: 4 | 6): { ip: string; inSubnet: boolean } | null {
  for (const fixed of port.fixed_ips) {
    const subnet = port.subnets.find((s) => s.id === fixed.subnet_id);
    const ip = subnet?.gateway_ip ? normalizeIp(subnet.gateway_ip) : null;
    const parsed = ip ? parseIp(ip) : null;
    if (!subnet || !ip || !parsed || parsed.version !== version) continue;
    const cidr = parseCidr(subnet.cidr);
    return { ip, inSubnet: cidr !== null && contains(cidr, parsed) };
  }
  return null;
}

/** The first IPv4 address of the gateway port (what SNAT rewrites to). */
function gatewayAddress(port: RouterPort): string | null {
  for (const fixed of port.fixed_ips) {
    const ip = normalizeIp(fixed.ip_address);
    if (ip && !ip.includes(':')) return ip;
  }
  return null;
}

/**
 * What the router wants in iptables (IPv4: IPv6 is routed, never NATed), as
 * Neutron's L3 agent writes it: floating IPs DNAT in PREROUTING and OUTPUT
 * and SNAT before the general SNAT; the general SNAT only for traffic
 * leaving through the gateway; traffic between internal subnets untouched
 * unless it was DNATed (a VM reaching another's floating IP from inside, the
 * "hairpin", is SNATed so that the answer comes back through the router);
 * metadata requests redirected to the proxy, whose port only the internal
 * interfaces may reach (from outside, anyone could claim a VM's address).
 */
function wantedTables(router: RouterDetails, gateway: WantedPort | null, metadataPort: number | null): WantedTable[] {
  const nat: string[] = [];
  const mangle: string[] = [];
  const filter: string[] = [];
  if (metadataPort !== null) {
    nat.push(`-A stratus-PREROUTING -d ${METADATA_ADDRESS} -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports ${metadataPort}`);
    filter.push(`-A stratus-INPUT -i qr-+ -p tcp -m tcp --dport ${metadataPort} -j ACCEPT`, `-A stratus-INPUT -p tcp -m tcp --dport ${metadataPort} -j DROP`);
  }
  const qg = gateway?.device;
  const gwIp = gateway ? gatewayAddress(gateway.port) : null;
  if (qg) {
    const floating = router.floating_ips
      .map((f) => ({ fip: normalizeIp(f.floating_ip_address), fixed: normalizeIp(f.fixed_ip_address) }))
      .filter((f): f is { fip: string; fixed: string } => f.fip !== null && f.fixed !== null && !f.fip.includes(':') && !f.fixed.includes(':'))
      .sort((a, b) => a.fip.localeCompare(b.fip));
    for (const { fip, fixed } of floating) {
      nat.push(`-A stratus-PREROUTING -d ${fip}/32 -j DNAT --to-destination ${fixed}`, `-A stratus-OUTPUT -d ${fip}/32 -j DNAT --to-destination ${fixed}`);
    }
    nat.push(`-A stratus-POSTROUTING ! -o ${qg} -m conntrack ! --ctstate DNAT -j ACCEPT`, '-A stratus-POSTROUTING -j stratus-float-snat', '-A stratus-POSTROUTING -j stratus-snat');
    for (const { fip, fixed } of floating) nat.push(`-A stratus-float-snat -s ${fixed}/32 -j SNAT --to-source ${fip}`);
    if (router.enable_snat && gwIp) {
      mangle.push(`-A stratus-PREROUTING -i ${qg} -j MARK --set-xmark ${FROM_GATEWAY_MARK}`);
      nat.push(`-A stratus-snat -o ${qg} -j SNAT --to-source ${gwIp}`, `-A stratus-snat -m mark ! --mark ${FROM_GATEWAY_MARK} -m conntrack --ctstate DNAT -j SNAT --to-source ${gwIp}`);
    }
  }
  return [
    {
      name: 'nat',
      chains: ['stratus-PREROUTING', 'stratus-OUTPUT', 'stratus-POSTROUTING', 'stratus-float-snat', 'stratus-snat'],
      jumps: [
        ['PREROUTING', 'stratus-PREROUTING'],
        ['OUTPUT', 'stratus-OUTPUT'],
        ['POSTROUTING', 'stratus-POSTROUTING'],
      ],
      rules: nat,
    },
    { name: 'mangle', chains: ['stratus-PREROUTING'], jumps: [['PREROUTING', 'stratus-PREROUTING']], rules: mangle },
    { name: 'filter', chains: ['stratus-INPUT'], jumps: [['INPUT', 'stratus-INPUT']], rules: filter },
  ];
}

/** `iptables-save` output by table: the chains it declares and its `-A` lines. */
function parseSave(text: string): Map<string, { chains: Set<string>; rules: string[] }> {
  const tables = new Map<string, { chains: Set<string>; rules: string[] }>();
  let table: { chains: Set<string>; rules: string[] } | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = { chains: new Set(), rules: [] };
      tables.set(line.slice(1).trim(), table);
    } else if (table && line.startsWith(':')) {
      table.chains.add(line.slice(1).split(' ')[0] ?? '');
    } else if (table && line.startsWith('-A ')) {
      table.rules.push(line.trim());
    }
  }
  return tables;
}

/** The rules of one chain, in order (`iptables-save` groups them by chain, whatever order they were written in). */
function inChain(rules: string[], chain: string): string[] {
  return rules.filter((r) => r.startsWith(`-A ${chain} `));
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Floating IP -> fixed IP, as the DNAT rules in place say. */
function floatingMap(natRules: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const rule of natRules) {
    const m = /^-A stratus-PREROUTING -d (\S+)\/32 -j DNAT --to-destination (\S+)$/.exec(rule);
    if (m?.[1] && m[2]) map.set(m[1], m[2]);
  }
  return map;
}
