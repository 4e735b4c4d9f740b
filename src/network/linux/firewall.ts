import type { Logger } from '../../core/logging.js';
import type { AgentSecurityGroupRule, SecurityGroupInfo } from '../agents/interfaces.js';
import type { HostNet } from './host.js';
import { PROTOCOLS } from '../security-group-rules.js';
import { tapName } from './names.js';

/**
 * Security groups as packet filters on a host, laid out as Neutron's
 * iptables firewall lays them out for Linux bridges. br_netfilter sends
 * bridged IPv4/IPv6 frames through iptables' FORWARD chain, where
 * `-m physdev` tells which tap a packet enters or leaves by; each port gets
 * an ingress chain (`i`, to the VM), an egress chain (`o`, from the VM) and
 * a source anti-spoofing chain (`s`). iptables cannot see Ethernet source
 * addresses of ARP, so MAC and ARP anti-spoofing is an nft table of the
 * bridge family. Every chain and table starts with the firewall's prefix,
 * so that two clouds on one host never meet, and `clear()` finds them all.
 */

/** A port the firewall filters: its id and the tap it is bridged through. */
export interface FirewallPort {
  portId: string;
  device: string;
}

type Family = 4 | 6;
type PortSecurity = SecurityGroupInfo['devices'][string];

/** Neutron keys port chains by the first ten characters of the port id (28-character chain names). */
const PORT_CHAIN_ID_LENGTH = 10;
/** A letter first: the prefix is also the nft table's name. */
const PREFIX_PATTERN = /^[a-z][a-z0-9-]{0,9}$/;

const DEVICE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
/** Port ids are UUIDs: lower-case hex, so that a port chain is never mistaken for another prefix's base chain. */
const PORT_ID_PATTERN = /^[0-9a-f][0-9a-f-]{9,63}$/;
const MAC_PATTERN = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;
const ADDRESS_PATTERN = /^[0-9A-Fa-f.:]+(?:\/\d{1,3})?$/;


/** Protocols iptables matches by a module of the same name; the others go by number, which every iptables knows. */
const MATCH_MODULES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 33: 'dccp', 58: 'ipv6-icmp', 132: 'sctp', 136: 'udplite' };

/** ICMPv6 a VM must receive for IPv6 to work: MLD query/report/done, router advertisement, neighbour solicitation/advertisement, MLDv2 report. */
const ICMPV6_INGRESS = [130, 131, 132, 134, 135, 136, 143];
/** ICMPv6 a VM may send from `::` (duplicate address detection): MLD report, neighbour solicitation, MLDv2 report. */
const ICMPV6_FROM_UNSPECIFIED = [131, 135, 143];
/** ICMPv6 a VM may send once its source is verified: MLD, router and neighbour solicitation, neighbour advertisement. */
const ICMPV6_EGRESS = [130, 131, 132, 133, 135, 136, 143];
const ICMPV6_ROUTER_ADVERTISEMENT = 134;

const ESTABLISHED = '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN';
const INVALID = '-m conntrack --ctstate INVALID -j DROP';

function baseChains(prefix: string): { forward: string; input: string; sg: string; fallback: string } {
  return { forward: `${prefix}-FORWARD`, input: `${prefix}-INPUT`, sg: `${prefix}-sg-chain`, fallback: `${prefix}-sg-fallback` };
}

function portChain(prefix: string, kind: 'i' | 'o' | 's', portId: string): string {
  return `${prefix}-${kind}${portId.slice(0, PORT_CHAIN_ID_LENGTH)}`;
}

/** Exact shapes, so that a cloud whose prefix is `a` never takes `a-b`'s chains for its own. */
function isOurChain(prefix: string, chain: string): boolean {
  return new RegExp(`^${prefix}-(?:FORWARD|INPUT|sg-chain|sg-fallback|[ios][0-9a-f-]{${PORT_CHAIN_ID_LENGTH}})$`).test(chain);
}

function nftPortChain(portId: string): string {
  return `port-${portId}`;
}

function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

/** `10.0.0.5` -> `10.0.0.5/32`; a prefix is kept. */
function withPrefix(address: string): string {
  return address.includes('/') ? address : `${address}/${familyOf(address) === 4 ? 32 : 128}`;
}

function isEverywhere(prefix: string): boolean {
  return prefix.endsWith('/0');
}

/** An address or a prefix of one address (`/32`, `/128`): what conntrack can match. */
function isHostAddress(address: string): boolean {
  const [, length] = address.split('/');
  return length === undefined || Number(length) === (familyOf(address) === 4 ? 32 : 128);
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

/** The EUI-64 link-local address Linux gives an interface with this MAC. */
export function linkLocalAddress(mac: string): string {
  const b = mac.split(':').map((h) => Number.parseInt(h, 16));
  const [b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0] = b;
  const group = (hi: number, lo: number): string => ((hi << 8) | lo).toString(16);
  return `fe80::${group(b0 ^ 0x02, b1)}:${group(b2, 0xff)}:${group(0xfe, b3)}:${group(b4, b5)}`;
}

function check(ok: boolean, what: string): void {
  // The text goes into iptables-restore and nft scripts: refuse anything that could break out of a line.
  if (!ok) throw new Error(`security group info holds an unusable ${what}`);
}

/** The ports that get filters: port security on (a port with it off passes everything, as in Neutron). */
function filteredPorts(info: SecurityGroupInfo, devices: Record<string, string>): { port: FirewallPort; security: PortSecurity }[] {
  return Object.entries(info.devices)
    .filter(([, d]) => d.port_security_enabled)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([portId, security]) => {
      const device = devices[portId] ?? tapName(portId);
      check(PORT_ID_PATTERN.test(portId), `port id '${portId}'`);
      check(DEVICE_PATTERN.test(device), `device '${device}' of port ${portId}`);
      check(MAC_PATTERN.test(security.mac_address.toLowerCase()), `MAC address of port ${portId}`);
      for (const ip of security.fixed_ips) check(ADDRESS_PATTERN.test(ip), `address '${ip}' of port ${portId}`);
      for (const pair of security.allowed_address_pairs) {
        check(ADDRESS_PATTERN.test(pair.ip_address), `address pair '${pair.ip_address}' of port ${portId}`);
        if (pair.mac_address) check(MAC_PATTERN.test(pair.mac_address.toLowerCase()), `address pair MAC of port ${portId}`);
      }
      return { port: { portId, device }, security };
    });
}

/** `-p ... [-m ... --dport a:b | --icmp-type t/c] ` for a rule, '' for any protocol, null when it cannot apply to this family. */
function protocolMatch(family: Family, rule: AgentSecurityGroupRule): string | null {
  const proto = rule.protocol?.toLowerCase() ?? '';
  if (proto === '' || proto === 'any') return '';
  let number = /^\d{1,3}$/.test(proto) ? Number(proto) : PROTOCOLS[proto];
  if (number === undefined || number > 255) return null;
  if (number === 0) return '';
  // IPv6 rules may say `icmp` for ICMPv6, as Neutron accepts.
  if (family === 6 && number === 1) number = 58;
  if (family === 4 && number === 58) return null;
  const name = MATCH_MODULES[number];
  if (!name) return `-p ${number} `;
  const { port_range_min: min, port_range_max: max } = rule;
  if (number === 1 || number === 58) {
    if (min === null) return `-p ${name} `;
    const type = max === null ? `${min}` : `${min}/${max}`;
    return number === 1 ? `-p icmp -m icmp --icmp-type ${type} ` : `-p ipv6-icmp -m icmp6 --icmpv6-type ${type} `;
  }
  if (min === null && max === null) return `-p ${name} `;
  const lo = min ?? max;
  const hi = max ?? min;
  const range = lo === hi ? `${lo}` : `${lo}:${hi}`;
  // udplite has no match module of its own: multiport knows its ports.
  return number === 136 ? `-p udplite -m multiport --dports ${range} ` : `-p ${name} -m ${name} --dport ${range} `;
}

/** The iptables specs of one security group rule (several for a remote group: one per member address). */
function ruleSpecs(family: Family, rule: AgentSecurityGroupRule, info: SecurityGroupInfo): string[] {
  const proto = protocolMatch(family, rule);
  if (proto === null) return [];
  const flag = rule.direction === 'ingress' ? '-s' : '-d';
  let remotes: string[];
  if (rule.remote_group_id) {
    const members = info.sg_member_ips[rule.remote_group_id]?.[family === 4 ? 'IPv4' : 'IPv6'] ?? [];
    remotes = members.filter((ip) => familyOf(ip) === family).map((ip) => {
      check(ADDRESS_PATTERN.test(ip), `member address '${ip}'`);
      return `${flag} ${withPrefix(ip)} `;
    });
  } else if (rule.remote_ip_prefix && !isEverywhere(rule.remote_ip_prefix)) {
    if (familyOf(rule.remote_ip_prefix) !== family) return [];
    check(ADDRESS_PATTERN.test(rule.remote_ip_prefix), `remote prefix '${rule.remote_ip_prefix}'`);
    remotes = [`${flag} ${withPrefix(rule.remote_ip_prefix)} `];
  } else {
    remotes = [''];
  }
  return remotes.map((remote) => `${remote}${proto}-j RETURN`);
}

function groupRules(family: Family, direction: 'ingress' | 'egress', security: PortSecurity, info: SecurityGroupInfo): string[] {
  const ethertype = family === 4 ? 'IPv4' : 'IPv6';
  return security.security_groups.flatMap((group) =>
    (info.security_groups[group] ?? []).filter((r) => r.direction === direction && r.ethertype === ethertype).flatMap((r) => ruleSpecs(family, r, info)),
  );
}

/** To the VM: replies, DHCP and IPv6 neighbour discovery, then what its groups let in. */
function ingressRules(family: Family, security: PortSecurity, info: SecurityGroupInfo): string[] {
  const fixed =
    family === 4
      ? ['-p udp -m udp --sport 67 --dport 68 -j RETURN']
      : ['-p udp -m udp --sport 547 --dport 546 -j RETURN', ...ICMPV6_INGRESS.map((t) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j RETURN`)];
  return unique([ESTABLISHED, INVALID, ...fixed, ...groupRules(family, 'ingress', security, info)]);
}

/**
 * From the VM. Only what has no verified source yet (a DHCP discover from
 * 0.0.0.0, duplicate address detection from ::) passes before the source
 * check; DHCP renewals and neighbour discovery pass after it, as in
 * Neutron, so that a VM cannot spoof its source even there.
 */
function egressRules(family: Family, spoofChain: string, security: PortSecurity, info: SecurityGroupInfo): string[] {
  const beforeSpoofCheck =
    family === 4
      ? ['-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN']
      : ICMPV6_FROM_UNSPECIFIED.map((t) => `-s ::/128 -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j RETURN`);
  const afterSpoofCheck =
    family === 4
      ? ['-p udp -m udp --sport 68 --dport 67 -j RETURN', '-p udp -m udp --sport 67 --dport 68 -j DROP']
      : [
          '-p udp -m udp --sport 546 --dport 547 -j RETURN',
          '-p udp -m udp --sport 547 --dport 546 -j DROP',
          `-p ipv6-icmp -m icmp6 --icmpv6-type ${ICMPV6_ROUTER_ADVERTISEMENT} -j DROP`,
          ...ICMPV6_EGRESS.map((t) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j RETURN`),
        ];
  return unique([...beforeSpoofCheck, `-j ${spoofChain}`, ...afterSpoofCheck, ESTABLISHED, INVALID, ...groupRules(family, 'egress', security, info)]);
}

/** The sources a VM may use: its fixed IPs and allowed address pairs, each with its MAC; the rest is dropped. */
function spoofRules(family: Family, security: PortSecurity): string[] {
  const mac = security.mac_address.toLowerCase();
  const pairs: [string, string | null][] = [];
  const add = (pairMac: string, address: string): void => {
    if (familyOf(address) !== family) return;
    pairs.push([pairMac, withPrefix(address)]);
    // IPv6 also needs the link-local address of that MAC (neighbour discovery, DHCPv6).
    if (family === 6) pairs.push([pairMac, `${linkLocalAddress(pairMac)}/128`]);
  };
  for (const pair of security.allowed_address_pairs) add((pair.mac_address || mac).toLowerCase(), pair.ip_address);
  for (const ip of security.fixed_ips) add(mac, ip);
  // A port without addresses (addresses assigned inside the VM) is held to its MAC alone, as in Neutron.
  if (security.fixed_ips.length === 0) pairs.push([mac, null]);
  const rules = pairs.map(([m, ip]) => `${ip ? `-s ${ip} ` : ''}-m mac --mac-source ${m} -j RETURN`);
  return [...unique(rules), '-j DROP'];
}

/** The chains and rules of one family, in chain order. */
function filterRuleset(family: Family, prefix: string, info: SecurityGroupInfo, devices: Record<string, string>): Map<string, string[]> {
  const c = baseChains(prefix);
  const chains = new Map<string, string[]>([
    [c.forward, []],
    [c.input, []],
    [c.sg, []],
    [c.fallback, ['-j DROP']],
  ]);
  const push = (chain: string, ...specs: string[]): void => {
    chains.get(chain)?.push(...specs);
  };
  for (const { port, security } of filteredPorts(info, devices)) {
    const [i, o, s] = [portChain(prefix, 'i', port.portId), portChain(prefix, 'o', port.portId), portChain(prefix, 's', port.portId)];
    // Tagged with the port id, so that remove() finds a port's jumps after a restart, with nothing in memory.
    const tag = `-m comment --comment ${port.portId}`;
    const out = `-m physdev --physdev-out ${port.device} --physdev-is-bridged ${tag}`;
    const inn = `-m physdev --physdev-in ${port.device} --physdev-is-bridged ${tag}`;
    push(c.forward, `${out} -j ${c.sg}`, `${inn} -j ${c.sg}`);
    push(c.sg, `${out} -j ${i}`, `${inn} -j ${o}`);
    // Traffic to the host itself is routed, not bridged: no --physdev-is-bridged here.
    push(c.input, `-m physdev --physdev-in ${port.device} ${tag} -j ${o}`);
    chains.set(i, [...ingressRules(family, security, info), `-j ${c.fallback}`]);
    chains.set(o, [...egressRules(family, s, security, info), `-j ${c.fallback}`]);
    chains.set(s, spoofRules(family, security));
  }
  // A packet between two ports passes both ports' chains (they RETURN what they allow) before this.
  push(c.sg, '-j ACCEPT');
  return chains;
}

/** What `iptables-save -t filter` says: the chains and the `-A` lines. */
interface SavedFilter {
  chains: Set<string>;
  rules: string[];
}

function parseSave(text: string): SavedFilter {
  const chains = new Set<string>();
  const rules: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) chains.add(line.slice(1).split(' ')[0] ?? '');
    else if (line.startsWith('-A ')) rules.push(line.trim());
  }
  return { chains, rules };
}

const EMPTY_FILTER: SavedFilter = { chains: new Set(), rules: [] };

/**
 * The lines that leave exactly one jump from FORWARD and INPUT to ours, first
 * in line (another tool's rule inserted before it could accept what our
 * groups drop), or none when `keep` is false. Nothing when that already holds.
 */
function jumpFixes(prefix: string, saved: SavedFilter, keep: boolean): string[] {
  const c = baseChains(prefix);
  const lines: string[] = [];
  for (const [builtin, target] of [
    ['FORWARD', c.forward],
    ['INPUT', c.input],
  ] as const) {
    const own = saved.rules.filter((r) => r.startsWith(`-A ${builtin} `));
    const jumps = own.filter((r) => r.endsWith(` -j ${target}`));
    if (keep && jumps.length === 1 && own[0] === `-A ${builtin} -j ${target}`) continue;
    lines.push(...jumps.map((j) => `-D ${j.slice(3)}`));
    if (keep) lines.push(`-I ${builtin} 1 -j ${target}`);
  }
  return lines;
}

/** The restore input that makes the host's filter table hold `wanted` (and no other chain of ours), given what it holds now. */
function restoreInput(prefix: string, wanted: Map<string, string[]>, saved: SavedFilter): string {
  const stale = [...saved.chains].filter((chain) => isOurChain(prefix, chain) && !wanted.has(chain)).sort();
  return [
    '*filter',
    // Declaring a chain under --noflush empties it; stale ones are emptied so that -X may delete them.
    ...[...wanted.keys(), ...stale].map((chain) => `:${chain} - [0:0]`),
    ...[...wanted].flatMap(([chain, specs]) => specs.map((spec) => `-A ${chain} ${spec}`)),
    ...jumpFixes(prefix, saved, true),
    ...stale.map((chain) => `-X ${chain}`),
    'COMMIT',
    '',
  ].join('\n');
}

function checkPrefix(prefix: string): void {
  if (!PREFIX_PATTERN.test(prefix)) throw new Error(`firewall prefix '${prefix}' must be 1-10 characters of [a-z0-9-], starting with a letter`);
}

/**
 * Pure: the `iptables-restore --noflush` input that gives every port of
 * `info` with port security its filters for one IP family, on a host that
 * has none of ours yet (the jumps from FORWARD and INPUT included).
 */
export function iptablesRules(family: 4 | 6, prefix: string, info: SecurityGroupInfo, devices: Record<string, string>): string {
  checkPrefix(prefix);
  return restoreInput(prefix, filterRuleset(family, prefix, info, devices), EMPTY_FILTER);
}

/**
 * Pure: the `nft -f -` script (one transaction) that replaces table
 * `bridge <prefix>`: frames entering the bridge from a filtered port's tap
 * must carry the port's MAC (or an allowed pair's), and its ARP must speak
 * for the port's IPv4 addresses or pairs (or 0.0.0.0, ARP probes).
 */
export function nftRules(prefix: string, info: SecurityGroupInfo, devices: Record<string, string>): string {
  checkPrefix(prefix);
  const ports = filteredPorts(info, devices);
  const set = (items: string[]): string => `{ ${items.join(', ')} }`;
  const lines = [
    // Creating the table first makes the delete succeed on a host that has none yet.
    `table bridge ${prefix} {}`,
    `delete table bridge ${prefix}`,
    `table bridge ${prefix} {`,
    '  map ports {',
    '    type ifname : verdict',
    ...(ports.length > 0 ? [`    elements = ${set(ports.map(({ port }) => `"${port.device}" : jump ${nftPortChain(port.portId)}`))}`] : []),
    '  }',
    '  chain prerouting {',
    '    type filter hook prerouting priority filter; policy accept;',
    '    iifname vmap @ports',
    '  }',
  ];
  for (const { port, security } of ports) {
    const mac = security.mac_address.toLowerCase();
    const pairs = security.allowed_address_pairs;
    const macs = unique([mac, ...pairs.map((p) => (p.mac_address || mac).toLowerCase())]);
    const ipv4 = unique([...security.fixed_ips, ...pairs.map((p) => p.ip_address)].filter((ip) => familyOf(ip) === 4));
    lines.push(`  chain ${nftPortChain(port.portId)} {`, `    ether saddr != ${set(macs)} drop`, `    arp saddr ether != ${set(macs)} drop`);
    if (!ipv4.some(isEverywhere)) lines.push(`    arp saddr ip != ${set(['0.0.0.0', ...ipv4])} drop`);
    lines.push('  }');
  }
  lines.push('}', '');
  return lines.join('\n');
}

/**
 * The security-group filters of one host: iptables (IPv4 and IPv6) and an
 * nft bridge table, all under one prefix. Calls are serialized; each reads
 * the kernel's state first, so a fresh instance (an agent restart) finds
 * and fixes what an earlier one left.
 */
export class PortFirewall {
  private readonly prefix: string;
  private readonly log: Logger;
  private queue: Promise<unknown> = Promise.resolve();
  /** What the last apply() wrote, per family (empty after a restart): a rule it had and the next has not went. */
  private readonly applied = new Map<Family, Map<string, string[]>>();

  /** `prefix`: 1-10 characters of [a-z0-9-], a letter first (default `stratus`); every chain and table of ours starts with it. */
  constructor(
    private readonly host: HostNet,
    options: { prefix?: string; log: Logger },
  ) {
    this.prefix = options.prefix ?? 'stratus';
    checkPrefix(this.prefix);
    this.log = options.log;
  }

  /**
   * Replaces the filtering of all ports of this host with what `info` says
   * (`devices`: port id -> tap; a missing one is the port's `tap` name).
   * Ports not in `info.devices` lose their chains. Each table changes in one
   * transaction: traffic of unchanged ports is never unfiltered. Idempotent.
   *
   * A connection a rule let in outlives the rule in conntrack (ESTABLISHED
   * passes first), so when a port's ingress or egress chain loses a rule (a
   * rule deleted, a remote group member gone, a group left) the tracked
   * connections into (or out of) the port's addresses are forgotten, as
   * Neutron does. The ones still allowed are taken up again at their next
   * packet (TCP's loose pick-up, a new ICMP or UDP flow); the others stop.
   */
  apply(info: SecurityGroupInfo, devices: Record<string, string>): Promise<void> {
    return this.serialized(async () => {
      for (const family of [4, 6] as const) {
        const wanted = filterRuleset(family, this.prefix, info, devices);
        await this.restore(family, restoreInput(this.prefix, wanted, await this.saved(family)));
        const before = this.applied.get(family);
        this.applied.set(family, wanted);
        if (before) await this.forgetRevokedFlows(family, before, wanted, info, devices);
      }
      await this.host.exec('nft', ['-f', '-'], { input: nftRules(this.prefix, info, devices) });
      const filtered = Object.values(info.devices).filter((d) => d.port_security_enabled).length;
      this.log.info({ ports: Object.keys(info.devices).length, filtered }, 'security group filters applied');
    });
  }

  /** Drops the filtering of these ports; the other ports keep theirs. Ports without filters are fine. */
  remove(portIds: string[]): Promise<void> {
    return this.serialized(async () => {
      const ids = new Set(portIds);
      if (ids.size === 0) return;
      for (const id of ids) check(PORT_ID_PATTERN.test(id), `port id '${id}'`);
      const c = baseChains(this.prefix);
      const bases = new Set([c.forward, c.input, c.sg]);
      for (const family of [4, 6] as const) {
        const saved = await this.saved(family);
        const jumps = saved.rules.filter((r) => bases.has(r.split(' ')[1] ?? '') && ids.has(commentOf(r) ?? ''));
        const chains = [...ids].flatMap((id) => (['i', 'o', 's'] as const).map((k) => portChain(this.prefix, k, id))).filter((ch) => saved.chains.has(ch));
        if (jumps.length === 0 && chains.length === 0) continue;
        const input = ['*filter', ...chains.map((ch) => `:${ch} - [0:0]`), ...jumps.map((j) => `-D ${j.slice(3)}`), ...chains.map((ch) => `-X ${ch}`), 'COMMIT', ''];
        await this.restore(family, input.join('\n'));
      }
      await this.removeNft(ids);
      this.log.info({ port_ids: [...ids] }, 'security group filters removed');
    });
  }

  /** Removes every chain, jump and nft table of this prefix. Idempotent. */
  clear(): Promise<void> {
    return this.serialized(async () => {
      for (const family of [4, 6] as const) {
        const saved = await this.saved(family);
        const ours = [...saved.chains].filter((chain) => isOurChain(this.prefix, chain)).sort();
        const jumps = jumpFixes(this.prefix, saved, false);
        if (ours.length === 0 && jumps.length === 0) continue;
        await this.restore(family, ['*filter', ...ours.map((ch) => `:${ch} - [0:0]`), ...jumps, ...ours.map((ch) => `-X ${ch}`), 'COMMIT', ''].join('\n'));
      }
      await this.host.exec('nft', ['-f', '-'], { input: `table bridge ${this.prefix} {}\ndelete table bridge ${this.prefix}\n` });
      this.log.info({ prefix: this.prefix }, 'security group filters cleared');
    });
  }

  /** Deletes the conntrack entries of flows that a rule gone since `before` may have let through. */
  private async forgetRevokedFlows(family: Family, before: Map<string, string[]>, after: Map<string, string[]>, info: SecurityGroupInfo, devices: Record<string, string>): Promise<void> {
    const lost = (chain: string): boolean => {
      const now = new Set(after.get(chain) ?? []);
      return (before.get(chain) ?? []).some((rule) => !now.has(rule));
    };
    for (const { port, security } of filteredPorts(info, devices)) {
      const addresses = unique([...security.fixed_ips, ...security.allowed_address_pairs.map((pair) => pair.ip_address)].filter((a) => familyOf(a) === family && isHostAddress(a)).map((a) => a.split('/')[0] ?? a));
      // Ingress: connections the port was the destination of; egress: the ones it opened.
      const directions = [...(lost(portChain(this.prefix, 'i', port.portId)) ? ['--orig-dst'] : []), ...(lost(portChain(this.prefix, 'o', port.portId)) ? ['--orig-src'] : [])];
      for (const direction of directions) {
        for (const address of addresses) {
          // `conntrack -D` fails when nothing matched, which is fine.
          await this.host.exec('conntrack', ['-D', '-f', family === 4 ? 'ipv4' : 'ipv6', direction, address]).catch(() => undefined);
        }
      }
      if (directions.length > 0 && addresses.length > 0) this.log.info({ port_id: port.portId, family, directions }, 'connections a removed rule let through forgotten');
    }
  }

  private async removeNft(ids: Set<string>): Promise<void> {
    const tables = JSON.parse(await this.host.exec('nft', ['-j', 'list', 'tables', 'bridge'])) as NftJson;
    if (!tables.nftables.some((o) => o.table?.name === this.prefix)) return;
    const listing = JSON.parse(await this.host.exec('nft', ['-j', 'list', 'table', 'bridge', this.prefix])) as NftJson;
    const chains = new Set(listing.nftables.flatMap((o) => (o.chain ? [o.chain.name] : [])));
    const elements = listing.nftables.flatMap((o) => (o.map?.name === 'ports' ? (o.map.elem ?? []) : []));
    const commands: string[] = [];
    for (const id of ids) {
      const chain = nftPortChain(id);
      for (const [device, verdict] of elements) {
        if (typeof device === 'string' && verdict.jump?.target === chain) commands.push(`delete element bridge ${this.prefix} ports { "${device}" }`);
      }
      if (chains.has(chain)) commands.push(`delete chain bridge ${this.prefix} ${chain}`);
    }
    if (commands.length > 0) await this.host.exec('nft', ['-f', '-'], { input: `${commands.join('\n')}\n` });
  }

  private async saved(family: Family): Promise<SavedFilter> {
    return parseSave(await this.host.exec(family === 4 ? 'iptables-save' : 'ip6tables-save', ['-t', 'filter']));
  }

  private async restore(family: Family, input: string): Promise<void> {
    await this.host.exec(family === 4 ? 'iptables-restore' : 'ip6tables-restore', ['--noflush', '--wait'], { input });
  }

  /** One change at a time: each reads the state the previous one left. */
  private serialized(work: () => Promise<void>): Promise<void> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** The parts of `nft -j list` output read here. */
interface NftJson {
  nftables: { table?: { name: string }; chain?: { name: string }; map?: { name: string; elem?: [unknown, { jump?: { target: string } }][] } }[];
}

/** The port id a rule of ours is tagged with (`-m comment --comment <id>`). */
function commentOf(rule: string): string | null {
  return /--comment "?([0-9a-f-]+)"?/.exec(rule)?.[1] ?? null;
}
