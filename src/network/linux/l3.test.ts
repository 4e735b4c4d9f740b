import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { exists, processAlive, run } from '../../core/host-commands.js';
import type { RouterDetails, RouterPort } from '../agents/interfaces.js';
import { HostNet } from './host.js';
import { LinuxL3 } from './l3.js';
import { routerGatewayName, routerInterfaceName, routerNamespace, tapName } from './names.js';

// A "host" namespace with an internal bridge per network and an external
// bridge holding the external host's address; VMs in their own namespaces;
// the router's taps put on the bridges by the test, standing in for the
// bridge agent. Packets are real: curl against tiny HTTP servers that answer
// with the address they see the client at.

const root = process.getuid?.() === 0;
const suffix = () => randomBytes(4).toString('hex');
const HOST = `stx-${suffix()}`;
const VM_A = `stx-${suffix()}`;
const VM_B = `stx-${suffix()}`;
const EXTERNAL_HOST = '172.31.9.1';
const GATEWAY_IP = '172.31.9.10';
const FLOATING_IP = '172.31.9.20';
const VM_A_IP = '10.9.0.5';
const VM_B_IP = '10.9.1.5';

const log = pino({ level: 'silent' });
const host = new HostNet(HOST);
const servers: ChildProcess[] = [];
let stateDir = '';

function port(network: string, ip: string, cidr: string, gateway: string | null, mac: string): RouterPort {
  const subnet = randomUUID();
  return { id: randomUUID(), network_id: network, mac_address: mac, mtu: 1450, fixed_ips: [{ subnet_id: subnet, ip_address: ip, prefixlen: 24 }], subnets: [{ id: subnet, cidr, gateway_ip: gateway, ip_version: 4, ipv6_ra_mode: null, ipv6_address_mode: null, dns_nameservers: [] }] };
}

const routerId = randomUUID();
const ns = routerNamespace(routerId);
const ifaceA = port(randomUUID(), '10.9.0.1', '10.9.0.0/24', '10.9.0.1', 'fa:16:3e:00:0a:01');
const ifaceB = port(randomUUID(), '10.9.1.1', '10.9.1.0/24', '10.9.1.1', 'fa:16:3e:00:0b:01');
const gateway = port(randomUUID(), GATEWAY_IP, '172.31.9.0/24', EXTERNAL_HOST, 'fa:16:3e:00:0e:01');
gateway.mtu = 1500;
const floating = { id: randomUUID(), floating_ip_address: FLOATING_IP, fixed_ip_address: VM_A_IP, port_id: randomUUID(), status: 'ACTIVE' };

function router(changes: Partial<RouterDetails> = {}): RouterDetails {
  return { id: routerId, project_id: randomUUID(), admin_state_up: true, enable_snat: true, routes: [], gw_port: gateway, interfaces: [ifaceA, ifaceB], floating_ips: [], ...changes };
}

function inNs(netns: string, binary: string, args: string[]): Promise<string> {
  return run('ip', ['netns', 'exec', netns, binary, ...args]);
}

/** What a client in `from` gets from the server at `ip`: the address the server saw it at, or null when it cannot connect. */
function whoAmI(from: string, ip: string): Promise<string | null> {
  return inNs(from, 'curl', ['-sS', '--connect-timeout', '2', '--max-time', '5', `http://${ip}:8080/`]).then(
    (out) => out.trim(),
    () => null,
  );
}

/** Starts an HTTP server in `netns` on :8080 answering each request with the client's address. */
async function startEchoServer(netns: string): Promise<void> {
  const code = "require('http').createServer((q,s)=>s.end(q.socket.remoteAddress.replace(/^::ffff:/,''))).listen(8080,'0.0.0.0',()=>console.log('ready'))";
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`echo server in ${netns} exited (${code})`)));
  });
}

async function addVm(netns: string, bridge: string, ip: string, gatewayIp: string): Promise<void> {
  const outer = `v${netns.slice(4, 12)}`;
  await run('ip', ['netns', 'add', netns]);
  await run('ip', ['-n', HOST, 'link', 'add', 'name', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await run('ip', ['-n', HOST, 'link', 'set', 'dev', outer, 'master', bridge, 'up']);
  await run('ip', ['-n', netns, 'link', 'set', 'dev', 'lo', 'up']);
  await run('ip', ['-n', netns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await run('ip', ['-n', netns, 'link', 'set', 'dev', 'eth0', 'up']);
  await run('ip', ['-n', netns, 'route', 'add', 'default', 'via', gatewayIp]);
  await startEchoServer(netns);
}

/** What the bridge agent would do: each router tap on its network's bridge. */
async function plugTaps(r: RouterDetails): Promise<void> {
  const bridges = new Map([
    [ifaceA.id, 'br-a'],
    [ifaceB.id, 'br-b'],
    [gateway.id, 'br-ext'],
  ]);
  for (const p of [...r.interfaces, ...(r.gw_port ? [r.gw_port] : [])]) {
    await run('ip', ['-n', HOST, 'link', 'set', 'dev', tapName(p.id), 'master', bridges.get(p.id) ?? '']);
  }
}

async function setup(l3: LinuxL3, r: RouterDetails): Promise<void> {
  await l3.setupRouter(r);
  await plugTaps(r);
}

async function hostLinks(): Promise<string[]> {
  return (await host.links()).map((l) => l.ifname);
}

/** Everything an operator could look at in the router: devices (with their index: recreated ones change), addresses, routes, rules and their nft handles. */
async function snapshot(): Promise<unknown> {
  const links = JSON.parse(await run('ip', ['-n', ns, '-j', 'addr', 'show'])) as { ifindex: number; ifname: string; address: string; mtu: number; flags: string[]; addr_info: { local: string; prefixlen: number }[] }[];
  const taps = (await host.links()).filter((l) => l.ifname.startsWith('tap'));
  const tapIndexes = await Promise.all(taps.map(async (t) => `${t.ifname} ${JSON.parse(await run('ip', ['-n', HOST, '-j', 'link', 'show', 'dev', t.ifname]))[0].ifindex}`));
  return {
    links: links.map((l) => ({ ifindex: l.ifindex, ifname: l.ifname, address: l.address, mtu: l.mtu, flags: l.flags, addrs: l.addr_info.map((a) => `${a.local}/${a.prefixlen}`) })),
    taps: tapIndexes.sort(),
    routes4: await run('ip', ['-n', ns, '-4', 'route', 'show']),
    routes6: await run('ip', ['-n', ns, '-6', 'route', 'show']),
    iptables: (await inNs(ns, 'iptables-save', [])).split('\n').filter((l) => !l.startsWith('#')),
    nft: (await inNs(ns, 'nft', ['-a', 'list', 'ruleset'])).replace(/packets \d+ bytes \d+/g, ''),
  };
}

before(async () => {
  if (!root) return;
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'stx-l3-'));
  await run('ip', ['netns', 'add', HOST]);
  await run('ip', ['-n', HOST, 'link', 'set', 'dev', 'lo', 'up']);
  for (const bridge of ['br-a', 'br-b', 'br-ext']) {
    await run('ip', ['-n', HOST, 'link', 'add', 'name', bridge, 'type', 'bridge']);
    await run('ip', ['-n', HOST, 'link', 'set', 'dev', bridge, 'up']);
  }
  await run('ip', ['-n', HOST, 'addr', 'add', `${EXTERNAL_HOST}/24`, 'dev', 'br-ext']);
  await startEchoServer(HOST);
  await addVm(VM_A, 'br-a', VM_A_IP, '10.9.0.1');
  await addVm(VM_B, 'br-b', VM_B_IP, '10.9.1.1');
});

after(async () => {
  if (!root) return;
  for (const child of servers) child.kill('SIGKILL');
  await new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log }).teardownRouter(routerId).catch(() => undefined);
  for (const netns of [ns, VM_A, VM_B, HOST]) await run('ip', ['netns', 'delete', netns]).catch(() => undefined);
  await fs.rm(stateDir, { recursive: true, force: true });
});

test('a router forwards between its subnets untouched and SNATs what leaves to the gateway address', async () => {
  const l3 = new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log });
  await setup(l3, router());
  assert.equal(await whoAmI(VM_A, EXTERNAL_HOST), GATEWAY_IP, 'the external host sees the gateway address');
  assert.equal(await whoAmI(VM_A, VM_B_IP), VM_A_IP, 'a VM on another internal subnet sees the real address');
  assert.equal(await whoAmI(HOST, FLOATING_IP), null, 'no floating IP yet');
  const devices = JSON.parse(await run('ip', ['-n', ns, '-j', 'link', 'show'])) as { ifname: string; address: string; mtu: number }[];
  const qr = devices.find((d) => d.ifname === routerInterfaceName(ifaceA.id));
  assert.equal(qr?.address, ifaceA.mac_address, "the interface has its port's MAC");
  assert.equal(qr?.mtu, 1450, "and its network's MTU");
  assert.ok(devices.some((d) => d.ifname === routerGatewayName(gateway.id)), 'the gateway device is there');
  assert.deepEqual((await inNs(ns, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).trim(), '1');
  assert.ok((await run('ip', ['-n', ns, 'route', 'show', 'default'])).includes(`via ${EXTERNAL_HOST} dev ${routerGatewayName(gateway.id)}`));
  assert.deepEqual(await l3.present().then((ids) => ids.includes(routerId)), true, 'the router is present');
});

test('a floating IP reaches the VM from outside and is its address outbound; from inside too', async () => {
  const l3 = new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log });
  await setup(l3, router({ floating_ips: [floating] }));
  assert.equal(await whoAmI(HOST, FLOATING_IP), EXTERNAL_HOST, 'DNAT: the external host reaches the VM, which sees its real address');
  assert.equal(await whoAmI(VM_A, EXTERNAL_HOST), FLOATING_IP, "the VM's traffic leaves from its floating IP");
  assert.equal(await whoAmI(VM_B, FLOATING_IP), GATEWAY_IP, "another internal VM reaches it at its floating IP (hairpin, SNATed so that the answer comes back)");
  assert.equal(await whoAmI(VM_A, VM_B_IP), VM_A_IP, 'between internal subnets the floating IP plays no part');
});

test('setting the router up again, or after an agent restart, changes nothing', async () => {
  const wanted = router({ floating_ips: [floating] });
  const before = await snapshot();
  await new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log }).setupRouter(wanted);
  assert.deepEqual(await snapshot(), before, 'same devices, addresses, routes and rules (not even rewritten)');
  const l3 = new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log });
  await l3.setupRouter(wanted);
  await l3.setupRouter(wanted);
  assert.deepEqual(await snapshot(), before);
  assert.equal(await whoAmI(HOST, FLOATING_IP), EXTERNAL_HOST, 'and it still works');
});

test('removing the floating IP makes the VM unreachable at it again', async () => {
  const l3 = new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log });
  await setup(l3, router());
  assert.equal(await whoAmI(HOST, FLOATING_IP), null, 'unreachable from outside');
  assert.equal(await whoAmI(VM_A, EXTERNAL_HOST), GATEWAY_IP, 'outbound back to the gateway address');
  assert.ok(!(await inNs(ns, 'iptables-save', ['-t', 'nat'])).includes(FLOATING_IP), 'no rule names it');
  assert.ok(!(await run('ip', ['-n', ns, 'addr', 'show'])).includes(FLOATING_IP), 'no device has it');
});

test('extra routes come and go', async () => {
  const l3 = new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log });
  await setup(l3, router({ routes: [{ destination: '10.99.0.0/24', nexthop: VM_A_IP }] }));
  assert.match(await run('ip', ['-n', ns, 'route', 'show', '10.99.0.0/24']), new RegExp(`via ${VM_A_IP.replace(/\./g, '\\.')}`));
  await setup(l3, router({ routes: [{ destination: '10.98.0.0/16', nexthop: VM_B_IP }] }));
  assert.equal((await run('ip', ['-n', ns, 'route', 'show', '10.99.0.0/24'])).trim(), '', 'the removed route is gone');
  assert.match(await run('ip', ['-n', ns, 'route', 'show', '10.98.0.0/16']), /via 10\.9\.1\.5/);
  await setup(l3, router());
  assert.equal((await run('ip', ['-n', ns, 'route', 'show', '10.98.0.0/16'])).trim(), '');
  assert.ok((await run('ip', ['-n', ns, 'route', 'show', 'default'])).includes(EXTERNAL_HOST), 'the default route stays');
});

test('an IPv6 subnet in slaac mode: the router advertises it (radvd), a VM on it takes an address and its default route from that; without such a subnet no radvd runs', async () => {
  const l3 = new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log });
  const v6 = randomUUID();
  const dualA: RouterPort = {
    ...ifaceA,
    fixed_ips: [...ifaceA.fixed_ips, { subnet_id: v6, ip_address: '2001:db8:9::1', prefixlen: 64 }],
    subnets: [...ifaceA.subnets, { id: v6, cidr: '2001:db8:9::/64', gateway_ip: '2001:db8:9::1', ip_version: 6, ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac', dns_nameservers: ['2001:db8:9::53'] }],
  };
  await setup(l3, router({ interfaces: [dualA, ifaceB] }));
  const conf = await fs.readFile(path.join(stateDir, routerId, 'radvd.conf'), 'utf8');
  assert.match(conf, new RegExp(`interface ${routerInterfaceName(ifaceA.id)}\n`));
  assert.match(conf, /prefix 2001:db8:9::\/64\n  \{\n    AdvOnLink on;\n    AdvAutonomous on;/);
  assert.match(conf, /AdvManagedFlag off;\n  AdvOtherConfigFlag off;/);
  assert.match(conf, /RDNSS 2001:db8:9::53/);
  assert.ok(!conf.includes(routerInterfaceName(ifaceB.id)), 'an IPv4-only interface advertises nothing');
  // The VM's kernel autoconfigures from the advertisements (radvd sends its first ones at start): bounded wait.
  let address = '';
  for (let i = 0; i < 60 && !address; i++) {
    const addrs = JSON.parse(await run('ip', ['-n', VM_A, '-6', '-j', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])) as { addr_info: { local: string }[] }[];
    address = addrs[0]?.addr_info.find((a) => a.local.startsWith('2001:db8:9:'))?.local ?? '';
    if (!address) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.ok(address, 'the VM autoconfigured an address in the advertised prefix');
  assert.match(await run('ip', ['-n', VM_A, '-6', 'route', 'show', 'default']), /via fe80::/, 'its default route is the router');
  await inNs(VM_A, 'ping', ['-6', '-n', '-c', '1', '-w', '5', '2001:db8:9::1']);
  const pid = Number((await fs.readFile(path.join(stateDir, routerId, 'radvd.pid'), 'utf8')).trim());
  await setup(l3, router());
  assert.equal(await exists(path.join(stateDir, routerId, 'radvd.pid')), false, 'no IPv6 subnet to advertise: radvd stopped');
  assert.equal(await processAlive(pid, 'radvd'), false, 'and its process is gone');
});

test('removing an interface removes its qr- device and its tap', async () => {
  const l3 = new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log });
  await setup(l3, router({ interfaces: [ifaceA] }));
  const inside = (JSON.parse(await run('ip', ['-n', ns, '-j', 'link', 'show'])) as { ifname: string }[]).map((d) => d.ifname);
  assert.ok(!inside.includes(routerInterfaceName(ifaceB.id)), 'qr- is gone');
  assert.ok(inside.includes(routerInterfaceName(ifaceA.id)), 'the other one stays');
  assert.ok(!(await hostLinks()).includes(tapName(ifaceB.id)), 'its tap is gone');
  assert.equal(await whoAmI(VM_A, VM_B_IP), null, 'the subnet is no longer routed');
  assert.equal(await whoAmI(VM_A, EXTERNAL_HOST), GATEWAY_IP, 'the rest works');
  const recorded = JSON.parse(await fs.readFile(path.join(stateDir, routerId, 'ports.json'), 'utf8')) as { ports: string[] };
  assert.deepEqual(recorded.ports, [ifaceA.id, gateway.id].sort());
});

test('removing the gateway removes qg-, its tap and SNAT; the interfaces still route', async () => {
  const l3 = new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log });
  await setup(l3, router({ gw_port: null }));
  assert.ok(!(await hostLinks()).includes(tapName(gateway.id)));
  assert.equal((await run('ip', ['-n', ns, 'route', 'show', 'default'])).trim(), '');
  assert.ok(!(await inNs(ns, 'iptables-save', ['-t', 'nat'])).includes('SNAT'), 'no SNAT rule left');
  assert.equal(await whoAmI(VM_A, VM_B_IP), VM_A_IP);
});

test('teardown leaves nothing, and tearing down again is fine', async () => {
  const l3 = new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log });
  await setup(l3, router({ floating_ips: [floating] }));
  // Another agent instance (after a restart) still finds everything from the namespace and stateDir.
  const restarted = new LinuxL3(host, { stateDir, metadata: null, metadataPort: 9697, log });
  await restarted.teardownRouter(routerId);
  assert.ok(!(await host.namespaces()).includes(ns), 'no namespace');
  const taps = (await hostLinks()).filter((name) => [ifaceA, ifaceB, gateway].some((p) => name === tapName(p.id)));
  assert.deepEqual(taps, [], 'no tap');
  assert.equal(await exists(path.join(stateDir, routerId)), false, 'no state');
  assert.ok(!(await restarted.present()).includes(routerId));
  assert.equal(await whoAmI(VM_A, EXTERNAL_HOST), null);
  await restarted.teardownRouter(routerId);
});
