import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { run } from '../../core/host-commands.js';
import type { AgentSecurityGroupRule, DeviceDetails, SecurityGroupInfo } from '../agents/interfaces.js';
import { LinuxBridge, type NetworkSegment } from './bridge.js';
import { PortFirewall } from './firewall.js';
import { HostNet } from './host.js';
import { bridgeName, tapName, vxlanName } from './names.js';

/*
 * Real packets between "VMs" (namespaces with one veth each, whose host end
 * is named as the port's tap) on a "host" (a namespace too), so that nothing
 * of the real host is touched.
 */

const log = pino({ level: 'silent' });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function newNamespaceName(): string {
  return `stx-${randomBytes(4).toString('hex')}`;
}

/** Every namespace a test makes, deleted in after() whatever happened. */
const namespaces: string[] = [];
const servers: ChildProcess[] = [];

async function makeNamespace(): Promise<string> {
  const ns = newNamespaceName();
  namespaces.push(ns);
  await new HostNet().ensureNamespace(ns);
  return ns;
}

after(async () => {
  for (const child of servers) child.kill('SIGKILL');
  for (const ns of namespaces) await new HostNet().deleteNamespace(ns);
});

interface Vm {
  ns: string;
  portId: string;
  mac: string;
  ip: string;
}

/** A VM on `host`: a namespace whose eth0 is the peer of the port's tap (left unplugged on the host). */
async function makeVm(host: HostNet, ip: string, prefixLength = 24): Promise<Vm> {
  const ns = await makeNamespace();
  const portId = randomUUID();
  const mac = `fa:16:3e:${randomBytes(3).toString('hex').match(/../g)?.join(':') ?? '00:00:01'}`;
  await host.ip(['link', 'add', tapName(portId), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await run('ip', ['-n', ns, 'link', 'set', 'dev', 'eth0', 'address', mac]);
  await run('ip', ['-n', ns, 'address', 'add', `${ip}/${prefixLength}`, 'dev', 'eth0']);
  await run('ip', ['-n', ns, 'link', 'set', 'dev', 'eth0', 'up']);
  return { ns, portId, mac, ip };
}

function details(vm: Vm, segment: NetworkSegment, fields: Partial<DeviceDetails> = {}): DeviceDetails {
  return {
    device: tapName(vm.portId),
    port_id: vm.portId,
    network_id: segment.network_id,
    mac_address: vm.mac,
    admin_state_up: true,
    status: 'DOWN',
    network_type: segment.network_type,
    physical_network: segment.physical_network,
    segmentation_id: segment.segmentation_id,
    mtu: segment.mtu,
    fixed_ips: [{ subnet_id: randomUUID(), ip_address: vm.ip }],
    device_owner: 'compute:nova',
    device_id: randomUUID(),
    port_security_enabled: true,
    security_groups: [],
    allowed_address_pairs: [],
    host: 'test-host',
    ...fields,
  };
}

/** One ping (up to two seconds): true when a reply came back. */
async function pings(vm: Vm, target: string, source?: string): Promise<boolean> {
  const args = ['netns', 'exec', vm.ns, 'ping', '-n', '-q', '-c', '1', '-w', '2', ...(source ? ['-I', source] : []), target];
  return run('ip', args, { timeoutMs: 10_000 }).then(
    () => true,
    () => false,
  );
}

/** Pings until a reply comes (bridges and neighbours settle), at most ten times. */
async function reaches(vm: Vm, target: string, source?: string): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    if (await pings(vm, target, source)) return true;
    await sleep(200);
  }
  return false;
}

/** A new TCP connection from `vm` to `target:port` gets the server's greeting. */
async function connects(vm: Vm, target: string, port: number): Promise<boolean> {
  const out = await run('ip', ['netns', 'exec', vm.ns, 'busybox', 'nc', '-w', '2', target, String(port)], { input: '', timeoutMs: 10_000 }).catch(() => '');
  return out.includes('open');
}

/** A TCP server in the VM that greets every connection with `open`. */
async function serve(vm: Vm, port: number): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', vm.ns, 'busybox', 'nc', '-ll', '-p', String(port), '-e', 'echo', 'open'], { stdio: 'ignore' });
  servers.push(child);
  for (let i = 0; i < 50; i++) {
    const listening = await run('ip', ['netns', 'exec', vm.ns, 'ss', '-Hltn', `sport = :${port}`]).catch(() => '');
    if (listening.trim()) return;
    await sleep(100);
  }
  throw new Error(`no server on port ${port} in ${vm.ns}`);
}

/** The state of `ip` in the VM's neighbour table ('' when there is no entry). */
async function neighbour(vm: Vm, ip: string): Promise<string> {
  return (await run('ip', ['-n', vm.ns, 'neigh', 'show', ip, 'dev', 'eth0'])).trim();
}

function sgRule(group: string, fields: Partial<AgentSecurityGroupRule>): AgentSecurityGroupRule {
  return { id: randomUUID(), security_group_id: group, direction: 'ingress', ethertype: 'IPv4', protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, ...fields };
}

/** Neutron's default group: all egress, ingress only from its members. */
function defaultGroupRules(group: string): AgentSecurityGroupRule[] {
  return [
    sgRule(group, { direction: 'egress' }),
    sgRule(group, { direction: 'egress', ethertype: 'IPv6' }),
    sgRule(group, { remote_group_id: group }),
    sgRule(group, { ethertype: 'IPv6', remote_group_id: group }),
  ];
}

type PortSecurity = SecurityGroupInfo['devices'][string];

function portSecurity(vm: Vm, groups: string[], fields: Partial<PortSecurity> = {}): PortSecurity {
  return { id: vm.portId, mac_address: vm.mac, fixed_ips: [vm.ip], security_groups: groups, port_security_enabled: true, allowed_address_pairs: [], ...fields };
}

/** The info the server would send: the ports, their groups' rules, and the members of every group. */
function sgInfo(ports: PortSecurity[], groups: Record<string, AgentSecurityGroupRule[]>): SecurityGroupInfo {
  const members: SecurityGroupInfo['sg_member_ips'] = {};
  for (const id of Object.keys(groups)) {
    const ips = ports.filter((p) => p.security_groups.includes(id)).flatMap((p) => p.fixed_ips);
    members[id] = { IPv4: ips.filter((ip) => !ip.includes(':')), IPv6: ips.filter((ip) => ip.includes(':')) };
  }
  return { devices: Object.fromEntries(ports.map((p) => [p.id, p])), security_groups: groups, sg_member_ips: members };
}

describe('LinuxBridge and PortFirewall on one host', () => {
  let hostNs = '';
  let host: HostNet;
  let firewall: PortFirewall;
  let bridge: LinuxBridge;
  const vni = 1000 + (randomBytes(2).readUInt16BE() % 50_000);
  const network: NetworkSegment = { network_id: randomUUID(), network_type: 'vxlan', physical_network: null, segmentation_id: vni, mtu: 1450 };
  const publicNet: NetworkSegment = { network_id: randomUUID(), network_type: 'flat', physical_network: 'public', segmentation_id: null, mtu: 1500 };
  let vm1: Vm;
  let vm2: Vm;
  const defaultGroup = randomUUID();
  const egressOnly = randomUUID();
  const web = randomUUID();
  const everything = randomUUID();
  const groups = (): Record<string, AgentSecurityGroupRule[]> => ({
    [defaultGroup]: defaultGroupRules(defaultGroup),
    [egressOnly]: [sgRule(egressOnly, { direction: 'egress' })],
    [web]: [...defaultGroupRules(web), sgRule(web, { protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '0.0.0.0/0' })],
    [everything]: [sgRule(everything, { direction: 'egress' }), sgRule(everything, {})],
  });

  before(async () => {
    hostNs = await makeNamespace();
    host = new HostNet(hostNs);
    firewall = new PortFirewall(host, { prefix: 'stxb', log });
    bridge = new LinuxBridge(host, firewall, { bridgeMappings: { public: 'br-ex' }, interfaceMappings: {}, vxlanLocalIp: '', vxlanPort: 4789, bridgeAddresses: { 'br-ex': ['172.24.4.1/24'] }, log });
    vm1 = await makeVm(host, '10.0.0.1');
    vm2 = await makeVm(host, '10.0.0.2');
  });

  test('ensureNetworkBridge makes brq with its VXLAN device (network MTU, no STP, no forward delay, up); again, it changes nothing', async () => {
    const name = await bridge.ensureNetworkBridge(network);
    assert.equal(name, bridgeName(network.network_id));
    const show = async (dev: string): Promise<{ ifindex: number; mtu: number; master?: string; flags: string[]; linkinfo: { info_kind: string; info_data: Record<string, unknown> } }> =>
      JSON.parse(await host.ip(['-j', '-d', 'link', 'show', 'dev', dev]))[0];
    const brq = await show(name);
    assert.equal(brq.linkinfo.info_kind, 'bridge');
    assert.equal(brq.mtu, 1450);
    assert.equal(brq.linkinfo.info_data.stp_state, 0);
    assert.equal(brq.linkinfo.info_data.forward_delay, 0);
    assert.ok(brq.flags.includes('UP'));
    const vxlan = await show(vxlanName(vni));
    assert.equal(vxlan.linkinfo.info_kind, 'vxlan');
    assert.equal(vxlan.master, name);
    assert.equal(vxlan.mtu, 1450);
    assert.equal(vxlan.linkinfo.info_data.id, vni);
    assert.equal(vxlan.linkinfo.info_data.port, 4789);
    assert.equal(vxlan.linkinfo.info_data.learning, false);
    assert.equal((await host.exec('sysctl', ['-n', `net.ipv6.conf.${name}.disable_ipv6`])).trim(), '1', 'the host has no address on a tenant network');
    assert.equal(await bridge.ensureNetworkBridge(network), name);
    assert.equal((await show(name)).ifindex, brq.ifindex);
    assert.equal((await show(vxlanName(vni))).ifindex, vxlan.ifindex, 'the VXLAN device was kept');
  });

  test('plugPort puts the taps on the network bridge with its MTU; a missing tap is a clear error; plugging again changes nothing', async () => {
    for (const vm of [vm1, vm2]) await bridge.plugPort(details(vm, network));
    for (const vm of [vm1, vm2]) {
      const tap = await host.link(tapName(vm.portId));
      assert.equal(tap?.master, bridgeName(network.network_id));
      assert.equal(tap?.mtu, 1450);
    }
    await bridge.plugPort(details(vm1, network));
    const ghost = { ...vm1, portId: randomUUID() };
    await assert.rejects(bridge.plugPort(details(ghost, network)), new RegExp(`${tapName(ghost.portId)} does not exist`));
    // No firewall yet: everything passes.
    assert.ok(await reaches(vm1, vm2.ip));
    // A port whose admin state is down keeps its place on the bridge, with its tap down.
    const flags = async (): Promise<string[]> => JSON.parse(await host.ip(['-j', 'link', 'show', 'dev', tapName(vm2.portId)]))[0].flags;
    await bridge.plugPort(details(vm2, network, { admin_state_up: false }));
    assert.ok(!(await flags()).includes('UP'));
    assert.equal(await pings(vm1, vm2.ip), false);
    await bridge.plugPort(details(vm2, network));
    assert.ok((await flags()).includes('UP'));
  });

  test('the default group: VM1 pings VM2 while both are in it, not once VM1 is not a member', async () => {
    await bridge.applySecurityGroups(sgInfo([portSecurity(vm1, [defaultGroup]), portSecurity(vm2, [defaultGroup])], groups()));
    assert.ok(await reaches(vm1, vm2.ip));
    assert.ok(await reaches(vm2, vm1.ip));
    await bridge.applySecurityGroups(sgInfo([portSecurity(vm1, [egressOnly]), portSecurity(vm2, [defaultGroup])], groups()));
    assert.equal(await pings(vm1, vm2.ip), false, 'VM2 lets in members of its group only');
    assert.equal(await pings(vm2, vm1.ip), false, 'VM1 lets nothing in');
  });

  test('IPv6 through the same filters: neighbour discovery passes, the default group lets members ping, a non-member is dropped', async () => {
    const v6 = new Map([
      [vm1, '2001:db8::1'],
      [vm2, '2001:db8::2'],
    ]);
    for (const [vm, ip] of v6) await run('ip', ['-n', vm.ns, 'address', 'add', `${ip}/64`, 'dev', 'eth0', 'nodad']);
    const ports = (vm1Groups: string[]): PortSecurity[] => [portSecurity(vm1, vm1Groups, { fixed_ips: [vm1.ip, '2001:db8::1'] }), portSecurity(vm2, [defaultGroup], { fixed_ips: [vm2.ip, '2001:db8::2'] })];
    await bridge.applySecurityGroups(sgInfo(ports([defaultGroup]), groups()));
    assert.ok(await reaches(vm1, '2001:db8::2'));
    assert.ok(await reaches(vm2, '2001:db8::1'));
    await bridge.applySecurityGroups(sgInfo(ports([egressOnly]), groups()));
    assert.equal(await pings(vm1, '2001:db8::2'), false);
    for (const [vm, ip] of v6) await run('ip', ['-n', vm.ns, 'address', 'del', `${ip}/64`, 'dev', 'eth0']);
  });

  test('an ingress rule tcp 22 from 0.0.0.0/0 opens port 22 and not 23; without the rule new connections fail', async () => {
    await serve(vm2, 22);
    await serve(vm2, 23);
    await bridge.applySecurityGroups(sgInfo([portSecurity(vm1, [egressOnly]), portSecurity(vm2, [web])], groups()));
    assert.equal(await connects(vm1, vm2.ip, 22), true);
    assert.equal(await connects(vm1, vm2.ip, 23), false);
    assert.equal(await pings(vm1, vm2.ip), false, 'nor ICMP');
    const withoutSsh = { ...groups(), [web]: defaultGroupRules(web) };
    await bridge.applySecurityGroups(sgInfo([portSecurity(vm1, [egressOnly]), portSecurity(vm2, [web])], withoutSsh));
    assert.equal(await connects(vm1, vm2.ip, 22), false);
    // Applying the same again changes nothing.
    await bridge.applySecurityGroups(sgInfo([portSecurity(vm1, [egressOnly]), portSecurity(vm2, [web])], withoutSsh));
    assert.equal(await connects(vm1, vm2.ip, 22), false);
  });

  test('a removed rule ends the flows it let in (their conntrack entries go); a change that removes no rule of the port leaves them', async () => {
    const icmpIn = randomUUID();
    const rules = (extra: AgentSecurityGroupRule[]): Record<string, AgentSecurityGroupRule[]> => ({ ...groups(), [icmpIn]: [sgRule(icmpIn, { direction: 'egress' }), ...extra] });
    const icmpRule = sgRule(icmpIn, { protocol: 'icmp' });
    const ports = [portSecurity(vm1, [egressOnly]), portSecurity(vm2, [icmpIn])];
    await bridge.applySecurityGroups(sgInfo(ports, rules([icmpRule])));
    // One ping flow (one ICMP id), five echoes a second: conntrack keeps it ESTABLISHED for as long as it runs.
    const ping = spawn('ip', ['netns', 'exec', vm1.ns, 'ping', '-n', '-i', '0.2', '-w', '30', vm2.ip], { stdio: ['ignore', 'pipe', 'ignore'] });
    servers.push(ping);
    let replies = 0;
    ping.stdout.on('data', (chunk: Buffer) => (replies += chunk.toString().split('bytes from').length - 1));
    const repliesWithin = async (ms: number): Promise<number> => {
      const start = replies;
      await sleep(ms);
      return replies - start;
    };
    try {
      for (let i = 0; i < 50 && replies === 0; i++) await sleep(100);
      assert.ok(replies > 0, 'the ping gets replies while ICMP is let in');
      await bridge.applySecurityGroups(sgInfo(ports, rules([icmpRule, sgRule(icmpIn, { protocol: 'tcp', port_range_min: 80, port_range_max: 80 })])));
      assert.ok((await repliesWithin(1500)) > 0, 'a rule added: the flow goes on');
      await bridge.applySecurityGroups(sgInfo(ports, rules([])));
      await sleep(300);
      assert.equal(await repliesWithin(2000), 0, 'the ICMP rule gone: the running ping gets no more replies');
    } finally {
      ping.kill('SIGKILL');
    }
  });

  test('IP spoofing: a VM that sends from an address not its own gets nothing through, unless it is an allowed address pair', async () => {
    // Static neighbours: no ARP, so the IP source check alone decides.
    await run('ip', ['-n', vm1.ns, 'neigh', 'replace', vm2.ip, 'lladdr', vm2.mac, 'dev', 'eth0', 'nud', 'permanent']);
    await run('ip', ['-n', vm2.ns, 'neigh', 'replace', '10.0.0.99', 'lladdr', vm1.mac, 'dev', 'eth0', 'nud', 'permanent']);
    await run('ip', ['-n', vm1.ns, 'address', 'add', '10.0.0.99/24', 'dev', 'eth0']);
    const ports = (pairs: PortSecurity['allowed_address_pairs']): PortSecurity[] => [portSecurity(vm1, [everything], { allowed_address_pairs: pairs }), portSecurity(vm2, [everything])];
    await bridge.applySecurityGroups(sgInfo(ports([]), groups()));
    assert.ok(await reaches(vm1, vm2.ip, vm1.ip), 'from its own address');
    assert.equal(await pings(vm1, vm2.ip, '10.0.0.99'), false, 'from a spoofed address');
    await bridge.applySecurityGroups(sgInfo(ports([{ ip_address: '10.0.0.99', mac_address: vm1.mac }]), groups()));
    assert.ok(await reaches(vm1, vm2.ip, '10.0.0.99'), 'from an allowed address pair');
    await run('ip', ['-n', vm2.ns, 'neigh', 'del', '10.0.0.99', 'dev', 'eth0']);
  });

  test('ARP spoofing: a VM cannot answer ARP for an address not its own (VM2 never learns it), unless it is an allowed address pair', async () => {
    const ports = (pairs: PortSecurity['allowed_address_pairs']): PortSecurity[] => [portSecurity(vm1, [everything], { allowed_address_pairs: pairs }), portSecurity(vm2, [everything])];
    await bridge.applySecurityGroups(sgInfo(ports([]), groups()));
    await run('ip', ['-n', vm2.ns, 'neigh', 'flush', 'dev', 'eth0']);
    assert.equal(await pings(vm2, '10.0.0.99'), false);
    assert.ok(!(await neighbour(vm2, '10.0.0.99')).includes(vm1.mac), 'the spoofed ARP reply was dropped');
    await bridge.applySecurityGroups(sgInfo(ports([{ ip_address: '10.0.0.99', mac_address: vm1.mac }]), groups()));
    await run('ip', ['-n', vm2.ns, 'neigh', 'flush', 'dev', 'eth0']);
    assert.ok(await reaches(vm2, '10.0.0.99'));
    assert.ok((await neighbour(vm2, '10.0.0.99')).includes(vm1.mac));
    await run('ip', ['-n', vm1.ns, 'address', 'del', '10.0.0.99/24', 'dev', 'eth0']);
  });

  test('MAC spoofing: frames from a VM with another MAC are dropped (not even its ARP gets through)', async () => {
    await bridge.applySecurityGroups(sgInfo([portSecurity(vm1, [everything]), portSecurity(vm2, [everything])], groups()));
    assert.ok(await reaches(vm1, vm2.ip));
    const fake = 'fa:16:3e:99:99:99';
    await run('ip', ['-n', vm1.ns, 'link', 'set', 'dev', 'eth0', 'address', fake]);
    await run('ip', ['-n', vm2.ns, 'neigh', 'flush', 'dev', 'eth0']);
    await run('ip', ['-n', vm1.ns, 'neigh', 'flush', 'dev', 'eth0']);
    assert.equal(await pings(vm1, vm2.ip), false);
    assert.equal(await pings(vm2, vm1.ip), false);
    assert.ok(!(await neighbour(vm2, vm1.ip)).includes(fake), 'VM2 never heard from the spoofed MAC');
  });

  test('port security off lets everything through, spoofed MAC and address included', async () => {
    const off = { port_security_enabled: false, security_groups: [] };
    await bridge.applySecurityGroups(sgInfo([portSecurity(vm1, [], off), portSecurity(vm2, [], off)], groups()));
    await run('ip', ['-n', vm1.ns, 'address', 'add', '10.0.0.98/24', 'dev', 'eth0']);
    assert.ok(await reaches(vm1, vm2.ip), 'with the spoofed MAC');
    assert.ok(await reaches(vm1, vm2.ip, '10.0.0.98'), 'with the spoofed MAC and address');
    assert.ok(await reaches(vm2, vm1.ip));
    await run('ip', ['-n', vm1.ns, 'address', 'del', '10.0.0.98/24', 'dev', 'eth0']);
    await run('ip', ['-n', vm1.ns, 'link', 'set', 'dev', 'eth0', 'address', vm1.mac]);
  });

  test('a flat network of a mapped physnet uses the mapped bridge, with the host`s address; traffic to the host passes the VM`s egress rules', async () => {
    assert.equal(await bridge.ensureNetworkBridge(publicNet), 'br-ex');
    const brEx = await host.link('br-ex');
    assert.equal(brEx?.kind, 'bridge');
    assert.match(await host.ip(['-4', '-o', 'address', 'show', 'dev', 'br-ex']), /172\.24\.4\.1\/24/);
    assert.equal(await bridge.ensureNetworkBridge(publicNet), 'br-ex');
    assert.equal((await host.ip(['-4', '-o', 'address', 'show', 'dev', 'br-ex'])).trim().split('\n').length, 1, 'the address once');
    assert.equal(await host.link(bridgeName(publicNet.network_id)), null, 'no brq for it');
    const vm3 = await makeVm(host, '172.24.4.10');
    await bridge.plugPort(details(vm3, publicNet));
    assert.equal((await host.link(tapName(vm3.portId)))?.master, 'br-ex');
    const ports = [portSecurity(vm1, [defaultGroup]), portSecurity(vm2, [defaultGroup])];
    await bridge.applySecurityGroups(sgInfo([...ports, portSecurity(vm3, [egressOnly])], groups()));
    assert.ok(await reaches(vm3, '172.24.4.1'));
    await bridge.applySecurityGroups(sgInfo([...ports, portSecurity(vm3, [])], groups()));
    assert.equal(await pings(vm3, '172.24.4.1'), false, 'no egress rule: the host is not reached either');
    await bridge.removeSecurityGroupFilters([vm3.portId]);
    assert.ok(await reaches(vm3, '172.24.4.1'), 'without filters it passes');
    assert.ok(await reaches(vm1, vm2.ip), 'the other ports keep theirs');
    await bridge.unplugPort(vm3.portId);
    await bridge.removeNetworkBridge(publicNet.network_id, publicNet);
    assert.ok(await host.link('br-ex'), 'a mapped bridge is never removed');
  });

  test('removeNetworkBridge keeps a bridge with taps; after unplugPort of both it removes brq and its VXLAN device (by network id alone); all of it again is fine', async () => {
    await bridge.removeNetworkBridge(network.network_id, network);
    assert.ok(await host.link(bridgeName(network.network_id)));
    await bridge.unplugPort(vm1.portId);
    assert.equal((await host.link(tapName(vm1.portId)))?.master, undefined);
    assert.ok(await host.link(tapName(vm1.portId)), 'the tap itself stays');
    await bridge.removeNetworkBridge(network.network_id, network);
    assert.ok(await host.link(bridgeName(network.network_id)), 'VM2 is still on it');
    await bridge.unplugPort(vm2.portId);
    // Known by its id alone, as after a network deleted while the agent was down: its devices are found on the bridge.
    await bridge.removeNetworkBridge(network.network_id);
    assert.equal(await host.link(bridgeName(network.network_id)), null);
    assert.equal(await host.link(vxlanName(vni)), null);
    await bridge.removeNetworkBridge(network.network_id, network);
    await bridge.unplugPort(vm2.portId);
    await bridge.unplugPort(randomUUID());
    // A VXLAN device left without its bridge (a crash between the two) goes with the segment.
    await bridge.ensureNetworkBridge(network);
    await host.deleteLink(bridgeName(network.network_id));
    assert.ok(await host.link(vxlanName(vni)));
    await bridge.removeNetworkBridge(network.network_id, network);
    assert.equal(await host.link(vxlanName(vni)), null);
  });

  test('clear leaves no chain, jump or nft table of ours on the host', async () => {
    await firewall.clear();
    for (const save of ['iptables-save', 'ip6tables-save']) assert.ok(!(await host.exec(save, [])).includes('stxb'), save);
    assert.ok(!(await host.exec('nft', ['list', 'ruleset'])).includes('stxb'));
    await firewall.clear();
  });
});

describe('VLAN, flat and local segments', () => {
  let host: HostNet;
  let bridge: LinuxBridge;
  const segment = (type: string, physnet: string | null, id: number | null): NetworkSegment => ({ network_id: randomUUID(), network_type: type, physical_network: physnet, segmentation_id: id, mtu: 1400 });

  before(async () => {
    const ns = await makeNamespace();
    host = new HostNet(ns);
    // Veths stand for the host's physical interfaces (this kernel has no dummy devices).
    for (const dev of ['eth1', 'eth2']) await host.ip(['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}-wire`]);
    bridge = new LinuxBridge(host, new PortFirewall(host, { prefix: 'stxl', log }), { bridgeMappings: { public: 'br-ex' }, interfaceMappings: { physnet1: 'eth1', physnet2: 'eth2' }, vxlanLocalIp: '', vxlanPort: 4789, bridgeAddresses: {}, log });
  });

  test('a VLAN network gets <interface>.<vlan> on its brq (on a kernel without 802.1Q: a clear error); removing the bridge deletes that sub-interface, never the interface', async () => {
    const vlan = segment('vlan', 'physnet1', 101);
    const supported = await host.ip(['link', 'add', 'link', 'eth1', 'name', 'probe.9', 'type', 'vlan', 'id', '9']).then(
      () => host.deleteLink('probe.9').then(() => true),
      () => false,
    );
    if (!supported) {
      // What an operator sees on such a kernel (this machine kind has none): the reason.
      await assert.rejects(bridge.ensureNetworkBridge(vlan), /no 802\.1Q VLAN support/);
      return;
    }
    const name = await bridge.ensureNetworkBridge(vlan);
    await bridge.ensureNetworkBridge(vlan);
    const sub = JSON.parse(await host.ip(['-j', '-d', 'link', 'show', 'dev', 'eth1.101']))[0];
    assert.equal(sub.linkinfo.info_kind, 'vlan');
    assert.equal(sub.linkinfo.info_data.id, 101);
    assert.equal(sub.master, name);
    assert.equal(sub.mtu, 1400);
    await bridge.removeNetworkBridge(vlan.network_id, vlan);
    assert.equal(await host.link(name), null);
    assert.equal(await host.link('eth1.101'), null);
    assert.ok(await host.link('eth1'));
    // A VLAN of a mapped physnet rides on the mapped bridge.
    const onBrEx = await bridge.ensureNetworkBridge(segment('vlan', 'public', 7));
    assert.equal((await host.link('br-ex.7'))?.master, onBrEx);
    await assert.rejects(bridge.ensureNetworkBridge(segment('vlan', 'physnet9', 5)), /no interface mapping for physical network physnet9/);
  });

  test('a flat network puts the interface itself on brq (one flat network per interface); removing it only takes the interface off', async () => {
    const flat = segment('flat', 'physnet2', null);
    const name = await bridge.ensureNetworkBridge(flat);
    assert.equal((await host.link('eth2'))?.master, name);
    await assert.rejects(bridge.ensureNetworkBridge(segment('flat', 'physnet2', null)), /already on bridge/);
    await bridge.removeNetworkBridge(flat.network_id, flat);
    assert.equal(await host.link(name), null);
    assert.equal((await host.link('eth2'))?.master, undefined);
  });

  test('a local network is a brq alone; an unknown type is refused', async () => {
    const local = segment('local', null, null);
    const name = await bridge.ensureNetworkBridge(local);
    assert.deepEqual(
      (await host.links()).filter((l) => l.master === name),
      [],
    );
    await bridge.removeNetworkBridge(local.network_id);
    assert.equal(await host.link(name), null);
    await assert.rejects(bridge.ensureNetworkBridge(segment('geneve', null, 5)), /not supported/);
  });
});

describe('VXLAN between two hosts', () => {
  const vni = 1000 + (randomBytes(2).readUInt16BE() % 50_000);
  const network: NetworkSegment = { network_id: randomUUID(), network_type: 'vxlan', physical_network: null, segmentation_id: vni, mtu: 1450 };
  const sides: { host: HostNet; bridge: LinuxBridge; vtep: string; vm?: Vm }[] = [];

  before(async () => {
    const [a, b] = [await makeNamespace(), await makeNamespace()];
    // The underlay: one veth between the two hosts, a VTEP address at each end.
    await run('ip', ['-n', a, 'link', 'add', 'underlay', 'type', 'veth', 'peer', 'name', 'underlay', 'netns', b]);
    for (const [ns, vtep] of [
      [a, '192.0.2.1'],
      [b, '192.0.2.2'],
    ] as const) {
      await run('ip', ['-n', ns, 'address', 'add', `${vtep}/24`, 'dev', 'underlay']);
      await run('ip', ['-n', ns, 'link', 'set', 'dev', 'underlay', 'up']);
      const host = new HostNet(ns);
      const bridge = new LinuxBridge(host, new PortFirewall(host, { prefix: 'stxv', log }), { bridgeMappings: {}, interfaceMappings: {}, vxlanLocalIp: vtep, vxlanPort: 4789, bridgeAddresses: {}, log });
      sides.push({ host, bridge, vtep });
    }
    for (const [i, side] of sides.entries()) {
      side.vm = await makeVm(side.host, `10.1.0.${i + 1}`);
      await side.bridge.plugPort(details(side.vm, network));
    }
  });

  test('without peers the VMs do not meet; with each host`s flood list (one all-zero FDB entry per remote VTEP) they ping each other', async () => {
    const [a, b] = sides;
    assert.ok(a?.vm && b?.vm);
    assert.equal(await pings(a.vm, b.vm.ip), false);
    await a.bridge.setVxlanPeers(vni, [b.vtep, a.vtep]);
    await b.bridge.setVxlanPeers(vni, [a.vtep]);
    const fdb = async (host: HostNet): Promise<string[]> =>
      (await host.exec('bridge', ['fdb', 'show', 'dev', vxlanName(vni)]))
        .split('\n')
        .filter((l) => l.startsWith('00:00:00:00:00:00'))
        .map((l) => l.trim());
    assert.deepEqual(await fdb(a.host), [`00:00:00:00:00:00 dst ${b.vtep} self permanent`], 'its own VTEP is not a peer');
    assert.deepEqual(await fdb(b.host), [`00:00:00:00:00:00 dst ${a.vtep} self permanent`]);
    const vxlan = JSON.parse(await a.host.ip(['-j', '-d', 'link', 'show', 'dev', vxlanName(vni)]))[0];
    assert.equal(vxlan.linkinfo.info_data.local, a.vtep);
    assert.ok(await reaches(a.vm, b.vm.ip));
    assert.ok(await reaches(b.vm, a.vm.ip));
    await a.bridge.setVxlanPeers(vni, [b.vtep]);
    assert.deepEqual(await fdb(a.host), [`00:00:00:00:00:00 dst ${b.vtep} self permanent`], 'the same list again changes nothing');
    await a.bridge.setVxlanPeers(vni, []);
    assert.deepEqual(await fdb(a.host), []);
    assert.equal(await pings(a.vm, b.vm.ip), false, 'no peer, no way out');
    await assert.rejects(a.bridge.setVxlanPeers(vni + 1, [b.vtep]), /does not exist/);
  });

  test('a VTEP address change on restart makes the VXLAN device again with the new address', async () => {
    const [a] = sides;
    assert.ok(a);
    const moved = new LinuxBridge(a.host, new PortFirewall(a.host, { prefix: 'stxv', log }), { bridgeMappings: {}, interfaceMappings: {}, vxlanLocalIp: '192.0.2.11', vxlanPort: 4789, bridgeAddresses: {}, log });
    await moved.ensureNetworkBridge(network);
    const vxlan = JSON.parse(await a.host.ip(['-j', '-d', 'link', 'show', 'dev', vxlanName(vni)]))[0];
    assert.equal(vxlan.linkinfo.info_data.local, '192.0.2.11');
    assert.equal(vxlan.master, bridgeName(network.network_id));
  });
});
