import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { killProcess, processAlive, readPid } from '../../core/host-commands.js';
import type { Logger } from '../../core/logging.js';
import type { DhcpDataPlane, DhcpNetwork, DhcpPort, DhcpSubnet } from '../agents/interfaces.js';
import { type Cidr, contains, formatIp, mask, normalizeIp, parseCidr, parseIp, size } from '../ipam/addresses.js';
import type { HostNet } from './host.js';
import { dhcpDeviceName, dhcpNamespace, tapName } from './names.js';

/** How the DHCP agent's data plane runs dnsmasq (the DHCP agent's config). */
export interface DhcpOptions {
  /**
   * Where per-network state lives: <stateDir>/<network id>/{pid,host,opts,addn_hosts,interface,loaded}.
   * dnsmasq drops to an unprivileged user and rereads the files on SIGHUP, so the
   * path to it must be traversable by others (the directories made here are 0755).
   */
  stateDir: string;
  /** dnsmasq binary ('dnsmasq'). */
  dnsmasq: string;
  /** Lease seconds (86400). */
  leaseSeconds: number;
  /** Domain of host names (`openstacklocal`; Neutron's dns_domain). */
  dnsDomain: string;
  /** Serve metadata on isolated networks: when the network has no router interface, the DHCP port also gets
   *  169.254.169.254/32 and DHCP hands a host route 169.254.169.254/32 via the DHCP port's address. */
  isolatedMetadata: boolean;
  /** Starts/stops the metadata proxy in a namespace (written by another helper); null: none. */
  metadata: { ensure(ns: string, target: { networkId: string }): Promise<void>; stop(ns: string): Promise<void> } | null;
  /** Upstream DNS servers dnsmasq forwards to (Neutron's dnsmasq_dns_servers); none: it answers only its own names. */
  dnsServers?: string[];
  log: Logger;
}

const METADATA_CIDR = '169.254.169.254/32';
/** Neutron's dnsmasq_lease_max: the cap of `--dhcp-lease-max` however large the subnets. */
const LEASE_MAX_CAP = 2n ** 24n;
/** Option 249: Microsoft's classless static routes, which older Windows reads instead of 121. */
const MS_CLASSLESS_ROUTES = '249';
const STATE_FILES = ['host', 'addn_hosts', 'opts'] as const;
type StateFile = (typeof STATE_FILES)[number];

/** A DHCP-enabled subnet the DHCP port has an address on. */
interface ServedSubnet {
  subnet: DhcpSubnet;
  cidr: Cidr;
  /** dnsmasq's tag for the subnet's options. */
  tag: string;
  /** The DHCP port's address on it: the DNS server and metadata next hop by default. */
  serverIp: string;
  /** The `--dhcp-range` value, or null when dnsmasq neither leases nor advertises on it. */
  range: string | null;
  /** dnsmasq hands out the ports' addresses here (IPv4, DHCPv6 stateful): they get `dhcp-host` lines. */
  leases: boolean;
  /** dnsmasq sends router advertisements for it (an IPv6 RA mode with no router to send them). */
  ra: boolean;
}

/** Everything one network needs on this host, computed from the server's view alone. */
interface Plan {
  networkId: string;
  ns: string;
  dir: string;
  device: string;
  tap: string;
  mac: string;
  mtu: number;
  /** `ip/prefix` on the namespace's device. */
  addresses: string[];
  gateways: { 4: string | null; 6: string | null };
  isolatedMetadata: boolean;
  files: Record<StateFile, string>;
  args: string[];
}

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;
const ID = /^[0-9A-Za-z][0-9A-Za-z-]{0,63}$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9.])?$/;
const OPTION_NAME = /^(?:option6?:)?[A-Za-z0-9-]+$/;
/** Control characters would end a line of dnsmasq's files and start another, possibly for another port. */
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * DHCP and DNS for the networks a DHCP agent hosts, as Neutron's dnsmasq
 * driver does it: per network a namespace `qdhcp-<network id>` with the DHCP
 * port's veth end and addresses, and a dnsmasq that serves the network's
 * ports from files under `<stateDir>/<network id>`. The host end of the veth
 * (`tap<port>`) is left for the bridge agent to plug.
 *
 * Every call is idempotent and rebuilds from what is on disk and in the
 * kernel (no memory is needed after a restart); calls for one network are
 * serialized.
 */
export class LinuxDhcp implements DhcpDataPlane {
  private readonly queues = new Map<string, Promise<void>>();
  private accessChecked = false;
  private tagReload: Promise<boolean> | undefined;

  constructor(
    private readonly host: HostNet,
    private readonly options: DhcpOptions,
  ) {
    if (!DOMAIN.test(options.dnsDomain)) throw new Error(`'${options.dnsDomain}' is not a usable DNS domain`);
  }

  /**
   * Brings DHCP for the network to what `network` says: `dhcpPort` is this
   * agent's `network:dhcp` port (with an address on each DHCP-enabled
   * subnet), null when no DHCP-enabled subnet is left (then it tears down, as
   * it does for a network that is administratively down). `hasRouter`: a
   * subnet of the network is on a router (then no isolated metadata, and
   * the router sends IPv6 router advertisements). Host and option changes
   * reload dnsmasq (SIGHUP, same process); subnet or address changes restart
   * it; a dead dnsmasq is started.
   */
  setupNetwork(network: DhcpNetwork, dhcpPort: DhcpPort | null, hasRouter = false): Promise<void> {
    checkId(network.id);
    return this.serialized(network.id, async () => {
      const plan = dhcpPort && network.admin_state_up ? this.plan(network, dhcpPort, hasRouter) : null;
      if (!plan) {
        await this.teardown(network.id);
        return;
      }
      await this.apply(plan);
    });
  }

  /** Stops dnsmasq and the metadata proxy, deletes the namespace, the veth and the state; what is gone already is fine. */
  teardownNetwork(networkId: string): Promise<void> {
    checkId(networkId);
    return this.serialized(networkId, () => this.teardown(networkId));
  }

  /** The network ids this agent has set up (its state directories). */
  async present(): Promise<string[]> {
    const dirs = await fs.readdir(this.options.stateDir, { withFileTypes: true }).catch(() => []);
    // By this agent's own state only: another cloud on the host (or a test) may have qdhcp- namespaces too.
    return dirs
      .filter((d) => d.isDirectory() && ID.test(d.name))
      .map((d) => d.name)
      .sort();
  }

  private serialized(networkId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.queues.get(networkId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.queues.set(networkId, tail);
    void tail.then(() => {
      if (this.queues.get(networkId) === tail) this.queues.delete(networkId);
    });
    return next;
  }

  private plan(network: DhcpNetwork, port: DhcpPort, hasRouter: boolean): Plan | null {
    const { log } = this.options;
    if (!MAC.test(port.mac_address)) throw new Error(`DHCP port ${port.id} has no usable MAC address '${port.mac_address}'`);
    const served = servedSubnets(network, port, hasRouter, this.options.leaseSeconds, log);
    if (served.length === 0) {
      log.warn({ network_id: network.id, port_id: port.id }, 'the DHCP port has no address on a DHCP-enabled subnet: DHCP is off');
      return null;
    }
    const isolatedMetadata = this.options.isolatedMetadata && !hasRouter && served.some((s) => s.cidr.version === 4);
    const dir = path.join(this.options.stateDir, network.id);
    const device = dhcpDeviceName(port.id);
    const hosts = hostFiles(network, served, this.options.dnsDomain);
    return {
      networkId: network.id,
      ns: dhcpNamespace(network.id),
      dir,
      device,
      tap: tapName(port.id),
      mac: port.mac_address.toLowerCase(),
      mtu: network.mtu,
      addresses: [...portAddresses(network, port), ...(isolatedMetadata ? [METADATA_CIDR] : [])],
      gateways: { 4: defaultGateway(served, 4), 6: defaultGateway(served, 6) },
      isolatedMetadata,
      files: { ...hosts, opts: optsFile(network, served, isolatedMetadata, this.options.dnsDomain, log) },
      args: dnsmasqArgs(dir, device, served, this.options),
    };
  }

  private async apply(plan: Plan): Promise<void> {
    const { log } = this.options;
    await fs.mkdir(plan.dir, { recursive: true });
    await fs.chmod(this.options.stateDir, 0o755);
    await fs.chmod(plan.dir, 0o755);
    if (!this.accessChecked) {
      this.accessChecked = true;
      await checkTraversable(this.options.stateDir, log);
    }
    await this.host.ensureNamespace(plan.ns);
    const hadDevice = (await this.nsDevices(plan.ns)).includes(plan.device);
    await this.host.ensureVeth(plan.tap, plan.device, plan.ns, { mac: plan.mac, ...(plan.mtu > 0 ? { mtu: plan.mtu } : {}) });
    await writeIfChanged(path.join(plan.dir, 'interface'), `${plan.device}\n`);
    await this.removeStaleDevices(plan);
    const addressesChanged = await this.ensureAddresses(plan);
    await this.ensureDefaultRoute(plan, 4);
    await this.ensureDefaultRoute(plan, 6);
    // What a running dnsmasq loaded (the files on disk, unless the agent died between writing and reloading).
    const loadedHosts = await fs.readFile(path.join(plan.dir, 'host'), 'utf8').catch(() => '');
    const loadedTagged = loadedHosts.includes(',set:');
    for (const name of STATE_FILES) await writeIfChanged(path.join(plan.dir, name), plan.files[name]);
    // dnsmasq binds its sockets once (--bind-interfaces): a new device or address needs a new process.
    const restartReason = !hadDevice ? 'device created' : addressesChanged ? 'addresses changed' : null;
    await this.ensureDnsmasq(plan, restartReason, loadedTagged);
    await this.releaseLeases(plan, leasesIn(loadedHosts), leasesIn(plan.files.host));
    if (this.options.metadata) {
      if (plan.isolatedMetadata) await this.options.metadata.ensure(plan.ns, { networkId: plan.networkId });
      else await this.options.metadata.stop(plan.ns);
    }
    log.debug({ network_id: plan.networkId }, 'DHCP set up');
  }

  /**
   * Ends the leases of hosts that are gone (a deleted port, a changed
   * address), as Neutron's agent does with `dhcp_release`: dnsmasq keeps
   * leases in memory after its host entry goes, and would refuse the address
   * to the next port given it (the new MAC finds it leased to the old one).
   */
  private async releaseLeases(plan: Plan, before: Set<string>, after: Set<string>): Promise<void> {
    for (const lease of before) {
      if (after.has(lease)) continue;
      const [mac = '', ip = ''] = lease.split(' ');
      await this.host.nsExec(plan.ns, 'dhcp_release', [plan.device, ip, mac]).catch((err: unknown) => {
        this.options.log.warn({ err, network_id: plan.networkId, ip, mac }, 'could not release the lease of a removed host (dhcp_release, from dnsmasq-utils): the address may be refused to its next port until the lease ends');
      });
    }
  }

  private async teardown(networkId: string): Promise<void> {
    const ns = dhcpNamespace(networkId);
    const dir = path.join(this.options.stateDir, networkId);
    const pidFile = path.join(dir, 'pid');
    const pid = await readPid(pidFile);
    if (pid) await stopDnsmasq(pid, pidFile);
    if (this.options.metadata) await this.options.metadata.stop(ns);
    const namespaces = await this.host.namespaces();
    if (namespaces.includes(ns)) {
      // Deleting the namespace end takes the host end with it, at once (a dying namespace frees its devices later).
      for (const device of await this.nsDevices(ns)) {
        if (device.startsWith('ns-')) await this.host.nsExec(ns, 'ip', ['link', 'delete', 'dev', device]);
      }
      await this.host.deleteNamespace(ns);
    }
    const recorded = (await fs.readFile(path.join(dir, 'interface'), 'utf8').catch(() => '')).trim();
    if (/^ns-[0-9a-f-]{11}$/.test(recorded)) await this.host.deleteLink(`tap${recorded.slice(3)}`);
    await fs.rm(dir, { recursive: true, force: true });
    this.options.log.info({ network_id: networkId }, 'DHCP torn down');
  }

  /** The devices in the namespace. */
  private async nsDevices(ns: string): Promise<string[]> {
    const out = await this.host.nsExec(ns, 'ip', ['-j', 'link', 'show']);
    return (JSON.parse(out || '[]') as { ifname: string }[]).map((l) => l.ifname);
  }

  /** A DHCP port replaced by another leaves its veth behind: delete it (its host end goes with it). */
  private async removeStaleDevices(plan: Plan): Promise<void> {
    for (const device of await this.nsDevices(plan.ns)) {
      if (device.startsWith('ns-') && device !== plan.device) {
        await this.host.nsExec(plan.ns, 'ip', ['link', 'delete', 'dev', device]);
        this.options.log.info({ network_id: plan.networkId, device }, 'removed a stale DHCP device');
      }
    }
  }

  /** Sets the device's addresses to the plan's; true when one other than the metadata address changed. */
  private async ensureAddresses(plan: Plan): Promise<boolean> {
    const out = await this.host.nsExec(plan.ns, 'ip', ['-j', 'addr', 'show', 'dev', plan.device]);
    const info = ((JSON.parse(out || '[]') as { addr_info?: AddrInfo[] }[])[0]?.addr_info ?? []).filter(
      // Link-local and autoconfigured addresses are the kernel's own.
      (a) => a.scope !== 'link' && a.scope !== 'host' && !a.dynamic,
    );
    const current = new Set(info.map((a) => `${a.local}/${a.prefixlen}`));
    const wanted = new Set(plan.addresses);
    let changed = false;
    for (const address of wanted) {
      if (current.has(address)) continue;
      const v6 = address.includes(':');
      await this.host.nsExec(plan.ns, 'ip', ['addr', 'add', address, 'dev', plan.device, ...(v6 ? ['nodad'] : [])]);
      changed ||= address !== METADATA_CIDR;
    }
    for (const address of current) {
      if (wanted.has(address)) continue;
      await this.host.nsExec(plan.ns, 'ip', ['addr', 'del', address, 'dev', plan.device]);
      changed ||= address !== METADATA_CIDR;
    }
    return changed;
  }

  /** A default route via the subnet's gateway lets dnsmasq forward DNS and the metadata proxy answer. */
  private async ensureDefaultRoute(plan: Plan, version: 4 | 6): Promise<void> {
    const family = version === 4 ? '-4' : '-6';
    const out = await this.host.nsExec(plan.ns, 'ip', ['-j', family, 'route', 'show', 'default']);
    const routes = (JSON.parse(out || '[]') as { gateway?: string; dev?: string; protocol?: string }[]).filter((r) => r.protocol !== 'ra');
    const gateway = plan.gateways[version];
    if (gateway) {
      if (routes.length === 1 && routes[0]?.gateway === gateway && routes[0].dev === plan.device) return;
      await this.host.nsExec(plan.ns, 'ip', [family, 'route', 'replace', 'default', 'via', gateway, 'dev', plan.device]);
    } else if (routes.length > 0) {
      await this.host.nsExec(plan.ns, 'ip', [family, 'route', 'del', 'default']);
    }
  }

  /**
   * dnsmasq before 2.91 crashes on SIGHUP once a `dhcp-host` with a `set:`
   * tag (a port with extra DHCP options) has answered a client (fixed by
   * dnsmasq commit f006be7, "Fix crash when reloading DHCP config on
   * SIGHUP"): those get a restart instead, which a static, authoritative
   * server survives (clients renewing are answered from the host file).
   */
  private reloadSafeWithTags(): Promise<boolean> {
    this.tagReload ??= this.host.exec(this.options.dnsmasq, ['--version']).then(
      (out) => {
        const m = /version (\d+)\.(\d+)/i.exec(out);
        return m !== null && (Number(m[1]) > 2 || (Number(m[1]) === 2 && Number(m[2]) >= 91));
      },
      () => false,
    );
    return this.tagReload;
  }

  /**
   * Keeps a running dnsmasq whose command line is the plan's, reloading it
   * (SIGHUP) when the files differ from what it last loaded (recorded in
   * `loaded` as pid and digest, so a restarted agent knows too); else
   * (re)starts it.
   */
  private async ensureDnsmasq(plan: Plan, restartReason: string | null, loadedTagged: boolean): Promise<void> {
    const { log } = this.options;
    const pidFile = path.join(plan.dir, 'pid');
    const loadedFile = path.join(plan.dir, 'loaded');
    const digest = createHash('sha256').update(STATE_FILES.map((name) => plan.files[name]).join('\0')).digest('hex');
    const running = await runningDnsmasq(pidFile, plan.ns);
    let reason = restartReason;
    if (running && !running.sameNamespace) reason = 'runs in another namespace';
    else if (running && !sameArgs(running.args, plan.args)) reason = 'configuration changed';
    if (running && !reason) {
      const loaded = await fs.readFile(loadedFile, 'utf8').catch(() => '');
      if (loaded === `${running.pid} ${digest}\n`) return;
      if (loadedTagged && !(await this.reloadSafeWithTags())) reason = 'tagged hosts cannot be reloaded by this dnsmasq';
      else {
        try {
          process.kill(running.pid, 'SIGHUP');
          await writeIfChanged(loadedFile, `${running.pid} ${digest}\n`);
          log.info({ network_id: plan.networkId, pid: running.pid }, 'dnsmasq reloaded');
          return;
        } catch {
          reason = 'exited';
        }
      }
    }
    if (running) {
      log.info({ network_id: plan.networkId, pid: running.pid, reason }, 'restarting dnsmasq');
      await stopDnsmasq(running.pid, pidFile);
    }
    await fs.rm(pidFile, { force: true });
    await this.host.nsExec(plan.ns, this.options.dnsmasq, plan.args);
    // dnsmasq's parent exits once the daemon is up and has written its pid file.
    const pid = await readPid(pidFile);
    if (!pid || !(await processAlive(pid, pidMarker(pidFile)))) throw new Error(`dnsmasq for network ${plan.networkId} did not stay up`);
    await writeIfChanged(loadedFile, `${pid} ${digest}\n`);
    log.info({ network_id: plan.networkId, pid }, 'dnsmasq started');
  }
}

interface AddrInfo {
  local: string;
  prefixlen: number;
  scope?: string;
  dynamic?: boolean;
}

function checkId(id: string): void {
  if (!ID.test(id)) throw new Error(`'${id}' is not a usable network id`);
}

/** What identifies our dnsmasq of a network among the host's processes. */
function pidMarker(pidFile: string): string {
  return `--pid-file=${pidFile}`;
}

async function runningDnsmasq(pidFile: string, ns: string): Promise<{ pid: number; args: string[]; sameNamespace: boolean } | null> {
  const pid = await readPid(pidFile);
  if (!pid || !(await processAlive(pid, pidMarker(pidFile)))) return null;
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const args = cmdline.split('\0').slice(1);
  if (args.at(-1) === '') args.pop();
  const [own, wanted] = await Promise.all([fs.stat(`/proc/${pid}/ns/net`).catch(() => null), fs.stat(`/run/netns/${ns}`).catch(() => null)]);
  const sameNamespace = own !== null && wanted !== null && own.ino === wanted.ino && own.dev === wanted.dev;
  return { pid, args, sameNamespace };
}

/**
 * dnsmasq reads its files as an unprivileged user: a directory on the way
 * that others cannot enter makes it serve no host at all, silently. Said
 * loudly, once.
 */
async function checkTraversable(dir: string, log: Logger): Promise<void> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const stat = await fs.stat(current).catch(() => null);
    if (stat && (stat.mode & 0o001) === 0) {
      log.error({ directory: current }, 'dnsmasq cannot reach its files: others may not enter this directory (it needs o+x)');
      return;
    }
    if (path.dirname(current) === current) return;
  }
}

/**
 * Kills our dnsmasq and waits until its sockets are closed: a dying
 * process loses its command line (which names it ours) before it closes
 * its files, so its end is the kernel's, a zombie or nothing.
 */
async function stopDnsmasq(pid: number, pidFile: string): Promise<void> {
  if (!(await processAlive(pid, pidMarker(pidFile)))) return;
  await killProcess(pid, pidMarker(pidFile));
  for (let i = 0; i < 250; i++) {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === '' || state === 'Z' || state === 'X') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`dnsmasq ${pid} does not exit`);
}

function sameArgs(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((arg, i) => arg === b[i]);
}

/** The IPv4 `mac ip` pairs of a hosts file (`<mac>,[set:...,]<name>,<ip>`; IPv6 entries are bracketed and left out). */
function leasesIn(hosts: string): Set<string> {
  const leases = new Set<string>();
  for (const line of hosts.split('\n')) {
    const fields = line.split(',');
    const mac = fields[0] ?? '';
    const ip = fields[fields.length - 1] ?? '';
    if (fields.length >= 2 && /^[0-9a-f:]{17}$/i.test(mac) && /^\d+\.\d+\.\d+\.\d+$/.test(ip)) leases.add(`${mac} ${ip}`);
  }
  return leases;
}

/** Writes `file` atomically (dnsmasq may reread it any time) when its content differs; true when it did. */
async function writeIfChanged(file: string, content: string): Promise<boolean> {
  if ((await fs.readFile(file, 'utf8').catch(() => null)) === content) {
    // Left by an older agent with another umask: readable again, unchanged.
    await fs.chmod(file, 0o644);
    return false;
  }
  const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    // Readable by dnsmasq after it dropped its privileges.
    await fs.writeFile(temporary, content);
    // dnsmasq rereads it as `nobody`; the mode given to writeFile would be cut by the process umask (owner-only in `up`).
    await fs.chmod(temporary, 0o644);
    await fs.rename(temporary, file);
  } finally {
    await fs.rm(temporary, { force: true });
  }
  return true;
}

/** The DHCP-enabled subnets the DHCP port has an address on, with how dnsmasq serves each. */
function servedSubnets(network: DhcpNetwork, port: DhcpPort, hasRouter: boolean, leaseSeconds: number, log: Logger): ServedSubnet[] {
  const served: ServedSubnet[] = [];
  for (const subnet of network.subnets) {
    if (!subnet.enable_dhcp || !ID.test(subnet.id)) continue;
    const cidr = parseCidr(subnet.cidr);
    const serverIp = port.fixed_ips.find((f) => f.subnet_id === subnet.id)?.ip_address;
    const ip = serverIp ? parseIp(serverIp) : null;
    if (!cidr || !ip || !contains(cidr, ip)) {
      log.warn({ network_id: network.id, subnet_id: subnet.id }, 'the DHCP port has no address on the subnet: not served');
      continue;
    }
    const tag = `subnet-${subnet.id}`;
    const lease = `${leaseSeconds}s`;
    const networkAddress = formatIp(cidr.version, cidr.network);
    if (cidr.version === 4) {
      const netmask = formatIp(4, mask(4, cidr.prefix));
      served.push({ subnet, cidr, tag, serverIp: formatIp(4, ip.value), range: `set:${tag},${networkAddress},static,${netmask},${lease}`, leases: true, ra: false });
      continue;
    }
    // Router advertisements need a /64 and are the router's job when there is one.
    const ra = subnet.ipv6_ra_mode !== null && !hasRouter && cidr.prefix === 64;
    const mode = subnet.ipv6_address_mode ?? subnet.ipv6_ra_mode ?? 'dhcpv6-stateful';
    const kind = mode === 'slaac' ? (ra ? 'ra-only' : null) : mode === 'dhcpv6-stateless' && ra ? 'ra-stateless' : 'static';
    const range = kind ? `set:${tag},${networkAddress},${kind},${cidr.prefix},${lease}` : null;
    served.push({ subnet, cidr, tag, serverIp: formatIp(6, ip.value), range, leases: mode === 'dhcpv6-stateful', ra });
  }
  return served;
}

/** dnsmasq's command line: only our files, none of the system's; the same input gives the same line. */
function dnsmasqArgs(dir: string, device: string, served: ServedSubnet[], options: DhcpOptions): string[] {
  const leaseMax = served.reduce((sum, s) => sum + size(s.cidr), 0n);
  const args = [
    '--conf-file=/dev/null',
    '--no-hosts',
    '--no-resolv',
    '--bind-interfaces',
    `--interface=${device}`,
    '--except-interface=lo',
    `--pid-file=${path.join(dir, 'pid')}`,
    `--dhcp-hostsfile=${path.join(dir, 'host')}`,
    `--addn-hosts=${path.join(dir, 'addn_hosts')}`,
    `--dhcp-optsfile=${path.join(dir, 'opts')}`,
    '--leasefile-ro',
    '--dhcp-authoritative',
    `--dhcp-lease-max=${leaseMax < LEASE_MAX_CAP ? leaseMax : LEASE_MAX_CAP}`,
    `--domain=${options.dnsDomain}`,
    // Names of our domain are answered here, never asked upstream.
    `--local=/${options.dnsDomain}/`,
  ];
  for (const s of served) if (s.range) args.push(`--dhcp-range=${s.range}`);
  if (served.some((s) => s.ra)) {
    // Router lifetime 0: dnsmasq advertises prefixes but is no router.
    args.push('--enable-ra', `--ra-param=${device},0,0`);
  }
  for (const server of options.dnsServers ?? []) {
    const ip = normalizeIp(server);
    if (ip) args.push(`--server=${ip}`);
  }
  return args;
}

/** The DHCP port's addresses with their subnets' prefixes. */
function portAddresses(network: DhcpNetwork, port: DhcpPort): string[] {
  const addresses: string[] = [];
  for (const fixed of port.fixed_ips) {
    const subnet = network.subnets.find((s) => s.id === fixed.subnet_id);
    const cidr = subnet ? parseCidr(subnet.cidr) : null;
    const ip = parseIp(fixed.ip_address);
    if (cidr && ip && contains(cidr, ip)) addresses.push(`${formatIp(ip.version, ip.value)}/${cidr.prefix}`);
  }
  return [...new Set(addresses)];
}

/** The first served subnet's gateway of that IP version that is on the subnet. */
function defaultGateway(served: ServedSubnet[], version: 4 | 6): string | null {
  for (const s of served) {
    const gateway = s.subnet.gateway_ip ? parseIp(s.subnet.gateway_ip) : null;
    if (s.cidr.version === version && gateway && (contains(s.cidr, gateway) || (version === 6 && s.subnet.gateway_ip?.startsWith('fe80:')))) {
      return formatIp(gateway.version, gateway.value);
    }
  }
  return null;
}

/** The host name a port's address gets: its dns_name, else Neutron's `host-<address>`. */
function hostName(port: DhcpPort, ip: string): string {
  const label = port.dns_name.toLowerCase().replace(/\.$/, '').split('.')[0] ?? '';
  return LABEL.test(label) ? label : `host-${ip.replace(/[.:]/g, '-')}`;
}

/** `dhcp-hostsfile` (MAC, name, address per leased address) and `addn-hosts` (names for DNS). */
function hostFiles(network: DhcpNetwork, served: ServedSubnet[], domain: string): { host: string; addn_hosts: string } {
  const host: string[] = [];
  const addn: string[] = [];
  for (const port of network.ports) {
    if (!port.admin_state_up || !MAC.test(port.mac_address) || !ID.test(port.id)) continue;
    const tag = port.extra_dhcp_opts.some((option) => dnsmasqOption(option) !== null) ? `set:port-${port.id},` : '';
    for (const fixed of port.fixed_ips) {
      const s = served.find((x) => x.subnet.id === fixed.subnet_id);
      const ip = parseIp(fixed.ip_address);
      if (!s || !ip || !contains(s.cidr, ip)) continue;
      const text = formatIp(ip.version, ip.value);
      const name = hostName(port, text);
      addn.push(`${text}\t${name}.${domain} ${name}`);
      if (s.leases) host.push(`${port.mac_address.toLowerCase()},${tag}${name}.${domain},${ip.version === 6 ? `[${text}]` : text}`);
    }
  }
  return { host: lines(host), addn_hosts: lines(addn) };
}

/** `dhcp-optsfile`: each served subnet's options by its tag, then each port's extra_dhcp_opts by its tag. */
function optsFile(network: DhcpNetwork, served: ServedSubnet[], isolatedMetadata: boolean, domain: string, log: Logger): string {
  const out: string[] = [];
  for (const s of served) out.push(...subnetOptions(s, network, isolatedMetadata, domain));
  for (const port of network.ports) {
    if (!port.admin_state_up || !ID.test(port.id)) continue;
    for (const option of port.extra_dhcp_opts) {
      const line = dnsmasqOption(option);
      if (line) out.push(`tag:port-${port.id},${line}`);
      else log.warn({ network_id: network.id, port_id: port.id, opt_name: option.opt_name }, 'ignoring an unusable extra DHCP option');
    }
  }
  return lines(out);
}

function subnetOptions(s: ServedSubnet, network: DhcpNetwork, isolatedMetadata: boolean, domain: string): string[] {
  const tag = `tag:${s.tag}`;
  const nameservers = s.subnet.dns_nameservers.flatMap((text) => {
    const ip = parseIp(text);
    return ip?.version === s.cidr.version ? [formatIp(ip.version, ip.value)] : [];
  });
  const dns = nameservers.length > 0 ? nameservers : [s.serverIp];
  if (s.cidr.version === 6) {
    return [`${tag},option6:dns-server,${dns.map((ip) => `[${ip}]`).join(',')}`, `${tag},option6:domain-search,${domain}`];
  }
  const gateway = s.subnet.gateway_ip ? normalizeIp(s.subnet.gateway_ip) : null;
  // An empty router option stops dnsmasq offering itself as the router.
  const options = [gateway ? `${tag},option:router,${gateway}` : `${tag},option:router`, `${tag},option:dns-server,${dns.join(',')}`];
  const routes = classlessRoutes(s, network, isolatedMetadata, gateway);
  if (routes.length > 0) {
    options.push(`${tag},option:classless-static-route,${routes.join(',')}`, `${tag},${MS_CLASSLESS_ROUTES},${routes.join(',')}`);
  }
  if (network.mtu > 0) options.push(`${tag},option:mtu,${network.mtu}`);
  options.push(`${tag},option:domain-search,${domain}`);
  return options;
}

/**
 * Option 121's `destination,nexthop` pairs: the subnet's host routes, the
 * network's other IPv4 subnets on-link (as Neutron does), the metadata
 * address via the DHCP port on an isolated network and, as RFC 3442 asks
 * (a client that gets 121 ignores the router option), the default route.
 */
function classlessRoutes(s: ServedSubnet, network: DhcpNetwork, isolatedMetadata: boolean, gateway: string | null): string[] {
  const routes: string[] = [];
  let hasDefault = false;
  for (const route of s.subnet.host_routes) {
    const destination = parseCidr(route.destination, true);
    const nexthop = parseIp(route.nexthop);
    if (destination?.version !== 4 || nexthop?.version !== 4) continue;
    hasDefault ||= destination.prefix === 0;
    routes.push(`${formatIp(4, destination.network)}/${destination.prefix},${formatIp(4, nexthop.value)}`);
  }
  for (const other of network.subnets) {
    const cidr = parseCidr(other.cidr);
    if (other.id !== s.subnet.id && cidr?.version === 4) routes.push(`${formatIp(4, cidr.network)}/${cidr.prefix},0.0.0.0`);
  }
  if (isolatedMetadata) routes.push(`${METADATA_CIDR},${s.serverIp}`);
  if (routes.length > 0 && gateway && !hasDefault) routes.push(`0.0.0.0/0,${gateway}`);
  return routes;
}

/** One of a port's extra_dhcp_opts as `name,value` in dnsmasq's syntax (IPv4 unless ip_version says 6), or null when unusable. */
function dnsmasqOption({ opt_name: name, opt_value: value, ip_version: version }: DhcpPort['extra_dhcp_opts'][number]): string | null {
  if (!OPTION_NAME.test(name) || typeof value !== 'string' || CONTROL.test(value)) return null;
  const bare = name.replace(/^option6?:/, '');
  // dnsmasq takes IPv4 options by number alone; IPv6 ones always with `option6:`.
  const prefixed = version === 6 ? `option6:${bare}` : /^\d+$/.test(bare) ? bare : `option:${bare}`;
  return `${prefixed},${value}`;
}

function lines(items: string[]): string {
  return items.map((item) => `${item}\n`).join('');
}
