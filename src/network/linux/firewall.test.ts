import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { run } from '../../core/host-commands.js';
import type { AgentSecurityGroupRule, SecurityGroupInfo } from '../agents/interfaces.js';
import { iptablesRules, linkLocalAddress, nftRules, PortFirewall } from './firewall.js';
import { HostNet } from './host.js';
import { tapName } from './names.js';

const log = pino({ level: 'silent' });

// Fixed ids so that the expected text reads plainly.
const PORT_A = 'aaaaaaaa-1111-4111-8111-111111111111';
const PORT_B = 'bbbbbbbb-2222-4222-8222-222222222222';
const GROUP = 'gggggggg-0000-4000-8000-000000000000';
const OTHER = 'oooooooo-0000-4000-8000-000000000000';

function rule(fields: Partial<AgentSecurityGroupRule>): AgentSecurityGroupRule {
  return {
    id: randomUUID(),
    security_group_id: GROUP,
    direction: 'ingress',
    ethertype: 'IPv4',
    protocol: null,
    port_range_min: null,
    port_range_max: null,
    remote_ip_prefix: null,
    remote_group_id: null,
    ...fields,
  };
}

function port(id: string, mac: string, ips: string[], extra: Partial<SecurityGroupInfo['devices'][string]> = {}): SecurityGroupInfo['devices'][string] {
  return { id, mac_address: mac, fixed_ips: ips, security_groups: [GROUP], port_security_enabled: true, allowed_address_pairs: [], ...extra };
}

function info(rules: AgentSecurityGroupRule[], devices: SecurityGroupInfo['devices'][string][], members: SecurityGroupInfo['sg_member_ips'] = {}): SecurityGroupInfo {
  return { devices: Object.fromEntries(devices.map((d) => [d.id, d])), security_groups: { [GROUP]: rules }, sg_member_ips: members };
}

/** The rules of one chain in restore text, without the `-A chain `. */
function chain(text: string, name: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`-A ${name} `))
    .map((l) => l.slice(`-A ${name} `.length));
}

const devices = { [PORT_A]: 'tapaaaaaaaa-11', [PORT_B]: 'tapbbbbbbbb-22' };

describe('iptablesRules and nftRules (text, no root)', () => {
  test('a rule by protocol and port range, and an ICMP rule by type/code, land in the port ingress chain between the fixed rules and the fallback', () => {
    const text = iptablesRules(4, 'stx', info([rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 23 }), rule({ protocol: 'icmp', port_range_min: 8, port_range_max: 0 })], [port(PORT_A, 'fa:16:3e:00:00:0a', ['10.0.0.10'])]), devices);
    assert.deepEqual(chain(text, 'stx-iaaaaaaaa-1'), [
      '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-m conntrack --ctstate INVALID -j DROP',
      '-p udp -m udp --sport 67 --dport 68 -j RETURN',
      '-p tcp -m tcp --dport 22:23 -j RETURN',
      '-p icmp -m icmp --icmp-type 8/0 -j RETURN',
      '-j stx-sg-fallback',
    ]);
    assert.deepEqual(chain(text, 'stx-FORWARD'), [
      '-m physdev --physdev-out tapaaaaaaaa-11 --physdev-is-bridged -m comment --comment aaaaaaaa-1111-4111-8111-111111111111 -j stx-sg-chain',
      '-m physdev --physdev-in tapaaaaaaaa-11 --physdev-is-bridged -m comment --comment aaaaaaaa-1111-4111-8111-111111111111 -j stx-sg-chain',
    ]);
    assert.deepEqual(chain(text, 'stx-sg-chain'), [
      '-m physdev --physdev-out tapaaaaaaaa-11 --physdev-is-bridged -m comment --comment aaaaaaaa-1111-4111-8111-111111111111 -j stx-iaaaaaaaa-1',
      '-m physdev --physdev-in tapaaaaaaaa-11 --physdev-is-bridged -m comment --comment aaaaaaaa-1111-4111-8111-111111111111 -j stx-oaaaaaaaa-1',
      '-j ACCEPT',
    ]);
    assert.deepEqual(chain(text, 'stx-INPUT'), ['-m physdev --physdev-in tapaaaaaaaa-11 -m comment --comment aaaaaaaa-1111-4111-8111-111111111111 -j stx-oaaaaaaaa-1']);
    assert.deepEqual(chain(text, 'stx-sg-fallback'), ['-j DROP']);
    assert.deepEqual(chain(text, 'stx-saaaaaaaa-1'), ['-s 10.0.0.10/32 -m mac --mac-source fa:16:3e:00:00:0a -j RETURN', '-j DROP']);
    assert.deepEqual(chain(text, 'stx-oaaaaaaaa-1'), [
      '-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN',
      '-j stx-saaaaaaaa-1',
      '-p udp -m udp --sport 68 --dport 67 -j RETURN',
      '-p udp -m udp --sport 67 --dport 68 -j DROP',
      '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-m conntrack --ctstate INVALID -j DROP',
      '-j stx-sg-fallback',
    ]);
    const lines = text.split('\n');
    assert.equal(lines[0], '*filter');
    assert.ok(lines.includes(':stx-iaaaaaaaa-1 - [0:0]'));
    assert.ok(lines.includes('-I FORWARD 1 -j stx-FORWARD') && lines.includes('-I INPUT 1 -j stx-INPUT'));
    assert.ok(lines.every((l) => !l.startsWith(':') || l.slice(1).split(' ')[0]!.length <= 28), 'chain names fit in 28 characters');
    assert.equal(lines.at(-2), 'COMMIT');
  });

  test('a remote prefix is the source of an ingress rule and the destination of an egress rule; protocol numbers work like names', () => {
    const text = iptablesRules(4, 'stx', info([rule({ protocol: '6', port_range_min: 80, port_range_max: 80, remote_ip_prefix: '192.168.0.0/16' }), rule({ direction: 'egress', protocol: '112', remote_ip_prefix: '10.9.0.0/24' }), rule({ direction: 'egress', protocol: 'udp', remote_ip_prefix: '0.0.0.0/0' })], [port(PORT_A, 'fa:16:3e:00:00:0a', ['10.0.0.10'])]), devices);
    assert.ok(chain(text, 'stx-iaaaaaaaa-1').includes('-s 192.168.0.0/16 -p tcp -m tcp --dport 80 -j RETURN'));
    const egress = chain(text, 'stx-oaaaaaaaa-1');
    assert.ok(egress.includes('-d 10.9.0.0/24 -p 112 -j RETURN'));
    assert.ok(egress.includes('-p udp -j RETURN'), 'an everywhere prefix matches everything');
    assert.equal(egress.at(-1), '-j stx-sg-fallback');
  });

  test('a remote group gives one rule per member address of the family', () => {
    const members = { [OTHER]: { IPv4: ['10.0.0.20', '10.0.0.21'], IPv6: ['2001:db8::20'] } };
    const text = iptablesRules(4, 'stx', info([rule({ remote_group_id: OTHER }), rule({ remote_group_id: GROUP })], [port(PORT_A, 'fa:16:3e:00:00:0a', ['10.0.0.10'])], members), devices);
    const ingress = chain(text, 'stx-iaaaaaaaa-1');
    assert.ok(ingress.includes('-s 10.0.0.20/32 -j RETURN') && ingress.includes('-s 10.0.0.21/32 -j RETURN'));
    assert.ok(!ingress.some((l) => l.includes('2001:db8')));
    // A group without known members lets nothing in.
    assert.equal(ingress.filter((l) => l.startsWith('-s ')).length, 2);
  });

  test('IPv6: the family`s rules only, ICMPv6 for neighbour discovery, link-local sources, RA and DHCPv6 servers dropped', () => {
    const mac = 'fa:16:3e:00:00:0a';
    const rules = [rule({ ethertype: 'IPv6', protocol: 'icmp', port_range_min: 128 }), rule({ ethertype: 'IPv6', protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '2001:db8:1::/48' }), rule({ protocol: 'tcp', port_range_min: 23, port_range_max: 23 })];
    const text = iptablesRules(6, 'stx', info(rules, [port(PORT_A, mac, ['10.0.0.10', '2001:db8::10'])]), devices);
    const ingress = chain(text, 'stx-iaaaaaaaa-1');
    assert.ok(ingress.includes('-p ipv6-icmp -m icmp6 --icmpv6-type 128 -j RETURN'), 'icmp in an IPv6 rule is ICMPv6');
    assert.ok(ingress.includes('-s 2001:db8:1::/48 -p tcp -m tcp --dport 22 -j RETURN'));
    assert.ok(!ingress.some((l) => l.includes('--dport 23')), 'IPv4 rules stay out of ip6tables');
    for (const type of [130, 134, 135, 136]) assert.ok(ingress.includes(`-p ipv6-icmp -m icmp6 --icmpv6-type ${type} -j RETURN`));
    assert.ok(ingress.includes('-p udp -m udp --sport 547 --dport 546 -j RETURN'));
    assert.equal(linkLocalAddress(mac), 'fe80::f816:3eff:fe00:a');
    assert.deepEqual(chain(text, 'stx-saaaaaaaa-1'), [`-s 2001:db8::10/128 -m mac --mac-source ${mac} -j RETURN`, `-s fe80::f816:3eff:fe00:a/128 -m mac --mac-source ${mac} -j RETURN`, '-j DROP']);
    const egress = chain(text, 'stx-oaaaaaaaa-1');
    assert.ok(egress.indexOf('-s ::/128 -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j RETURN') < egress.indexOf('-j stx-saaaaaaaa-1'), 'duplicate address detection passes before the source check');
    assert.ok(egress.includes('-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j DROP'), 'a VM sends no router advertisements');
    assert.ok(egress.includes('-p udp -m udp --sport 547 --dport 546 -j DROP'), 'a VM is no DHCPv6 server');
    assert.ok(egress.indexOf('-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j DROP') > egress.indexOf('-j stx-saaaaaaaa-1'));
  });

  test('a port with port security off gets no chain, no jump and no MAC filter; one with no group gets the fixed rules and the fallback', () => {
    const open = port(PORT_B, 'fa:16:3e:00:00:0b', ['10.0.0.11'], { port_security_enabled: false, security_groups: [] });
    const bare = port(PORT_A, 'fa:16:3e:00:00:0a', ['10.0.0.10'], { security_groups: [] });
    const text = iptablesRules(4, 'stx', info([rule({ protocol: 'tcp' })], [bare, open]), devices);
    assert.ok(!text.includes('bbbbbbbb'), 'nothing of the open port');
    assert.deepEqual(chain(text, 'stx-iaaaaaaaa-1'), ['-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN', '-m conntrack --ctstate INVALID -j DROP', '-p udp -m udp --sport 67 --dport 68 -j RETURN', '-j stx-sg-fallback']);
    const nft = nftRules('stx', info([], [bare, open]), devices);
    assert.ok(!nft.includes('bbbbbbbb') && !nft.includes('tapbbbbbbbb-22'));
    assert.ok(nft.includes('"tapaaaaaaaa-11" : jump port-aaaaaaaa-1111-4111-8111-111111111111'));
    const none = nftRules('stx', info([], [open]), devices);
    assert.ok(!none.includes('elements'), 'an empty map when no port is filtered');
  });

  test('allowed address pairs: their addresses with their MAC (or the port`s) pass the source check, and their MACs and IPv4 prefixes pass the MAC and ARP filters', () => {
    const pairs = [
      { ip_address: '10.0.0.100', mac_address: 'fa:16:3e:00:01:00' },
      { ip_address: '10.1.0.0/24', mac_address: '' },
      { ip_address: '2001:db8::100', mac_address: 'fa:16:3e:00:01:00' },
    ];
    const p = port(PORT_A, 'FA:16:3E:00:00:0A', ['10.0.0.10'], { allowed_address_pairs: pairs });
    const v4 = iptablesRules(4, 'stx', info([], [p]), devices);
    assert.deepEqual(chain(v4, 'stx-saaaaaaaa-1'), [
      '-s 10.0.0.100/32 -m mac --mac-source fa:16:3e:00:01:00 -j RETURN',
      '-s 10.1.0.0/24 -m mac --mac-source fa:16:3e:00:00:0a -j RETURN',
      '-s 10.0.0.10/32 -m mac --mac-source fa:16:3e:00:00:0a -j RETURN',
      '-j DROP',
    ]);
    const v6 = iptablesRules(6, 'stx', info([], [p]), devices);
    assert.ok(chain(v6, 'stx-saaaaaaaa-1').includes('-s 2001:db8::100/128 -m mac --mac-source fa:16:3e:00:01:00 -j RETURN'));
    const nft = nftRules('stx', info([], [p]), devices);
    assert.ok(nft.includes('ether saddr != { fa:16:3e:00:00:0a, fa:16:3e:00:01:00 } drop'));
    assert.ok(nft.includes('arp saddr ip != { 0.0.0.0, 10.0.0.10, 10.0.0.100, 10.1.0.0/24 } drop'));
    assert.ok(nft.startsWith('table bridge stx {}\ndelete table bridge stx\ntable bridge stx {'), 'one transaction that replaces the table');
    // A pair of everywhere lets any ARP sender address through.
    const any = nftRules('stx', info([], [port(PORT_A, 'fa:16:3e:00:00:0a', ['10.0.0.10'], { allowed_address_pairs: [{ ip_address: '0.0.0.0/0', mac_address: '' }] })]), devices);
    assert.ok(!any.includes('arp saddr ip'));
  });

  test('text that could break the restore input is refused', () => {
    assert.throws(() => iptablesRules(4, 'stx', info([], [port(PORT_A, 'fa:16:3e:00:00:0a', ['10.0.0.10'])]), { [PORT_A]: 'tap x\n-F' }), /unusable device/);
    assert.throws(() => iptablesRules(4, 'stx', info([], [port(PORT_A, 'fa:16:3e:00:00:0a', ['10.0.0.10\nCOMMIT'])]), devices), /unusable address/);
    assert.throws(() => iptablesRules(4, 'Bad_Prefix', info([], []), {}), /prefix/);
    assert.throws(() => new PortFirewall(new HostNet('none'), { prefix: 'much-too-long', log }), /prefix/);
  });
});

describe('PortFirewall on a host (a namespace standing for it)', () => {
  const ns = `stx-${randomBytes(4).toString('hex')}`;
  const host = new HostNet(ns);
  const fw = new PortFirewall(host, { prefix: 'stxf', log });
  const a = randomUUID();
  const b = randomUUID();
  const two = (): SecurityGroupInfo => info([rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22 })], [port(a, 'fa:16:3e:00:00:0a', ['10.0.0.10']), port(b, 'fa:16:3e:00:00:0b', ['10.0.0.11'])]);
  const save = (family: 4 | 6 = 4): Promise<string> => host.exec(family === 4 ? 'iptables-save' : 'ip6tables-save', ['-t', 'filter']);
  const ours = (text: string): string[] => text.split('\n').filter((l) => /^:stxf-/.test(l)).map((l) => l.slice(1).split(' ')[0] ?? '');

  before(async () => {
    await host.ensureNamespace(ns);
  });
  after(async () => {
    await host.deleteNamespace(ns);
  });

  test('apply twice: one jump from FORWARD and from INPUT, first in line, for each family; the chains of both ports', async () => {
    await fw.apply(two(), {});
    await fw.apply(two(), {});
    for (const family of [4, 6] as const) {
      const text = await save(family);
      assert.deepEqual(text.split('\n').filter((l) => l.includes('-j stxf-FORWARD') || l.includes('-j stxf-INPUT')), ['-A INPUT -j stxf-INPUT', '-A FORWARD -j stxf-FORWARD']);
      for (const id of [a, b]) for (const k of ['i', 'o', 's']) assert.ok(ours(text).includes(`stxf-${k}${id.slice(0, 10)}`));
    }
    const nft = await host.exec('nft', ['list', 'table', 'bridge', 'stxf']);
    assert.ok(nft.includes(`"${tapName(a)}" : jump port-${a}`) && nft.includes(`"${tapName(b)}" : jump port-${b}`));
  });

  test('a rule another tool put before our jump: the next apply puts ours first again, still once', async () => {
    await host.exec('iptables', ['-I', 'FORWARD', '1', '-s', '192.0.2.1/32', '-j', 'ACCEPT']);
    await fw.apply(two(), {});
    const forward = (await save()).split('\n').filter((l) => l.startsWith('-A FORWARD '));
    assert.deepEqual(forward, ['-A FORWARD -j stxf-FORWARD', '-A FORWARD -s 192.0.2.1/32 -j ACCEPT']);
  });

  test('remove drops one port`s chains, jumps and MAC filter; the other port keeps all of its own', async () => {
    await fw.remove([a]);
    for (const family of [4, 6] as const) {
      const text = await save(family);
      assert.ok(!text.includes(a.slice(0, 10)), `nothing of the removed port (IPv${family})`);
      assert.ok(ours(text).includes(`stxf-i${b.slice(0, 10)}`));
      assert.equal(text.split('\n').filter((l) => l.includes(`--comment ${b}`)).length, 5);
    }
    const nft = await host.exec('nft', ['list', 'table', 'bridge', 'stxf']);
    assert.ok(!nft.includes(a) && nft.includes(`port-${b}`));
    await fw.remove([a]);
  });

  test('after a restart (a new instance, nothing in memory) apply removes the chains of ports that are gone', async () => {
    await fw.apply(two(), {});
    const restarted = new PortFirewall(host, { prefix: 'stxf', log });
    await restarted.apply(info([], [port(b, 'fa:16:3e:00:00:0b', ['10.0.0.11'])]), {});
    const text = await save();
    assert.ok(!text.includes(a.slice(0, 10)));
    assert.deepEqual(ours(text).sort(), ['stxf-FORWARD', 'stxf-INPUT', `stxf-i${b.slice(0, 10)}`, `stxf-o${b.slice(0, 10)}`, `stxf-s${b.slice(0, 10)}`, 'stxf-sg-chain', 'stxf-sg-fallback'].sort());
  });

  test('clear leaves nothing of its prefix (and nothing of another prefix is touched); clearing again is fine', async () => {
    const neighbour = new PortFirewall(host, { prefix: 'stxf-b', log });
    await neighbour.apply(two(), {});
    await fw.clear();
    await fw.clear();
    for (const family of [4, 6] as const) {
      const text = await save(family);
      assert.deepEqual(
        text.split('\n').filter((l) => /(^:| )stxf-(?!b-)/.test(l)),
        [],
        `no chain or jump of stxf left (IPv${family})`,
      );
      assert.ok(text.includes(':stxf-b-FORWARD') && text.includes('-A FORWARD -j stxf-b-FORWARD'), 'the other prefix keeps its own');
    }
    const tables = await host.exec('nft', ['list', 'tables']);
    assert.ok(!/table bridge stxf$/m.test(tables) && /table bridge stxf-b$/m.test(tables));
    await neighbour.clear();
    assert.ok(!(await save()).includes('stxf'));
    assert.ok(!(await run('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset'])).includes('stxf'));
  });
});
