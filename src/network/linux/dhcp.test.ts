import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { killProcess, processAlive, readPid, run } from '../../core/host-commands.js';
import type { DhcpNetwork, DhcpPort, DhcpSubnet } from '../agents/interfaces.js';
import { type DhcpOptions, LinuxDhcp } from './dhcp.js';
import { HostNet } from './host.js';

// As under `stratus up`, whose files are owner-only: dnsmasq must still read what it is given.
process.umask(0o077);
import { dhcpDeviceName, dhcpNamespace, tapName } from './names.js';

/**
 * The DHCP data plane on real namespaces: a "host" namespace with a bridge
 * (this test plugs the DHCP tap into it, as the bridge agent would) and a
 * "VM" namespace on the bridge whose interface takes each port's MAC in
 * turn and asks for a lease with busybox udhcpc. What a guest sees is what
 * is checked: its address, gateway, DNS server, MTU, routes, host name,
 * extra options, and no offer at all for a port that is gone.
 */

const hostNs = `stx-${randomBytes(4).toString('hex')}`;
const vmNs = `stx-${randomBytes(4).toString('hex')}`;
const host = new HostNet(hostNs);
const vm = new HostNet(vmNs);
const log = pino({ level: 'silent' });
let work = '';
let script = '';
let options: DhcpOptions;
let dhcp: LinuxDhcp;
const metadataCalls: string[] = [];
const networkIds: string[] = [];

const mac = (): string => `fa:16:3e:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

function subnet(cidr: string, gateway: string | null, extra: Partial<DhcpSubnet> = {}): DhcpSubnet {
  return { id: randomUUID(), cidr, ip_version: cidr.includes(':') ? 6 : 4, gateway_ip: gateway, enable_dhcp: true, dns_nameservers: [], host_routes: [], allocation_pools: [], ipv6_ra_mode: null, ipv6_address_mode: null, ...extra };
}

function port(fixedIps: { subnet_id: string; ip_address: string }[], extra: Partial<DhcpPort> = {}): DhcpPort {
  return { id: randomUUID(), mac_address: mac(), device_owner: 'compute:nova', device_id: randomUUID(), admin_state_up: true, fixed_ips: fixedIps, dns_name: '', extra_dhcp_opts: [], ...extra };
}

function newNetwork(subnets: DhcpSubnet[], ports: DhcpPort[]): DhcpNetwork {
  const id = randomUUID();
  networkIds.push(id);
  return { id, project_id: randomUUID(), admin_state_up: true, mtu: 1450, network_type: 'vxlan', physical_network: null, segmentation_id: 100, subnets, ports };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The VM interface takes `mac` and asks for a lease; what the lease script saw, or a rejection when no lease came. */
async function lease(portMac: string): Promise<Record<string, string>> {
  await vm.ip(['link', 'set', 'dev', 'eth0', 'address', portMac]);
  const out = await vm.exec('busybox', ['udhcpc', '-i', 'eth0', '-n', '-q', '-t', '3', '-T', '1', '-s', script, '-O', 'mtu', '-O', 'staticroutes', '-O', 'search', '-O', 'ntpsrv']);
  return Object.fromEntries(
    out
      .split('\n')
      .filter((line) => line.startsWith('lease '))
      .map((line) => {
        const [key = '', ...value] = line.slice('lease '.length).split('=');
        return [key, value.join('=')];
      }),
  );
}

/** Plugs the DHCP port's tap into the bridge, as the bridge agent would. */
async function plug(dhcpPort: DhcpPort): Promise<void> {
  await host.ip(['link', 'set', 'dev', tapName(dhcpPort.id), 'master', 'br0']);
}

async function dnsmasqPid(networkId: string): Promise<number | null> {
  const pidFile = path.join(work, 'state', networkId, 'pid');
  const pid = await readPid(pidFile);
  return pid && (await processAlive(pid, `--pid-file=${pidFile}`)) ? pid : null;
}

async function nsAddresses(ns: string, device: string): Promise<string[]> {
  const out = JSON.parse(await run('ip', ['-j', '-n', ns, 'addr', 'show', 'dev', device])) as { addr_info: { local: string; prefixlen: number; scope: string }[] }[];
  return (out[0]?.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`);
}

async function defaultRoute(ns: string): Promise<string | null> {
  const routes = JSON.parse(await run('ip', ['-j', '-n', ns, '-4', 'route', 'show', 'default'])) as { gateway?: string }[];
  return routes[0]?.gateway ?? null;
}

before(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-dhcp-'));
  // dnsmasq reads its files as nobody.
  await fs.chmod(work, 0o755);
  script = path.join(work, 'lease.sh');
  const vars = ['ip', 'subnet', 'router', 'dns', 'mtu', 'staticroutes', 'msstaticroutes', 'hostname', 'domain', 'search', 'ntpsrv'];
  await fs.writeFile(script, `#!/bin/sh\n[ "$1" = bound ] || exit 0\n${vars.map((v) => `echo "lease ${v}=$${v}"`).join('\n')}\n`, { mode: 0o755 });
  for (const ns of [hostNs, vmNs]) await run('ip', ['netns', 'add', ns]);
  await host.ip(['link', 'set', 'lo', 'up']);
  await vm.ip(['link', 'set', 'lo', 'up']);
  await host.ip(['link', 'add', 'br0', 'type', 'bridge']);
  await host.ip(['link', 'set', 'br0', 'up']);
  await host.ip(['link', 'add', 'vm0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vmNs]);
  await host.ip(['link', 'set', 'vm0', 'master', 'br0', 'up']);
  await vm.ip(['link', 'set', 'eth0', 'up']);
  const metadata = {
    ensure: async (ns: string): Promise<void> => void metadataCalls.push(`ensure ${ns}`),
    stop: async (ns: string): Promise<void> => void metadataCalls.push(`stop ${ns}`),
  };
  options = { stateDir: path.join(work, 'state'), dnsmasq: 'dnsmasq', leaseSeconds: 86400, dnsDomain: 'openstacklocal', isolatedMetadata: true, metadata, log };
  dhcp = new LinuxDhcp(host, options);
});

after(async () => {
  for (const id of networkIds) {
    const pidFile = path.join(work, 'state', id, 'pid');
    const pid = await readPid(pidFile);
    if (pid) await killProcess(pid, `--pid-file=${pidFile}`);
    await host.deleteNamespace(dhcpNamespace(id)).catch(() => undefined);
  }
  for (const ns of [hostNs, vmNs]) await host.deleteNamespace(ns).catch(() => undefined);
  if (work) await fs.rm(work, { recursive: true, force: true });
});

// One network the tests below change step by step, as a DHCP agent would see it.
const a = subnet('10.61.0.0/24', '10.61.0.1', { host_routes: [{ destination: '192.168.50.0/24', nexthop: '10.61.0.254' }] });
const dhcpPort = port([{ subnet_id: a.id, ip_address: '10.61.0.2' }], { device_owner: 'network:dhcp' });
const web = port([{ subnet_id: a.id, ip_address: '10.61.0.11' }], { dns_name: 'web-1' });
const db = port([{ subnet_id: a.id, ip_address: '10.61.0.12' }]);
let net: DhcpNetwork;

test('a port gets its address, gateway, DNS server, MTU, host routes and host name; its name resolves', async () => {
  net = newNetwork([a], [dhcpPort, web]);
  await dhcp.setupNetwork(net, dhcpPort);
  const ns = dhcpNamespace(net.id);
  assert.equal((await host.link(tapName(dhcpPort.id)))?.master, undefined, 'the tap is left for the bridge agent to plug');
  assert.deepEqual((await nsAddresses(ns, dhcpDeviceName(dhcpPort.id))).sort(), ['10.61.0.2/24', '169.254.169.254/32']);
  assert.equal(await defaultRoute(ns), '10.61.0.1');
  assert.deepEqual(metadataCalls, [`ensure ${ns}`], 'an isolated network gets the metadata proxy');
  assert.ok((await dhcp.present()).includes(net.id), 'present() lists it');
  await plug(dhcpPort);

  const got = await lease(web.mac_address);
  assert.equal(got.ip, '10.61.0.11');
  assert.equal(got.subnet, '255.255.255.0');
  assert.equal(got.router, '10.61.0.1');
  assert.equal(got.dns, '10.61.0.2', 'with no dns_nameservers, dnsmasq itself');
  assert.equal(got.mtu, '1450');
  assert.equal(got.staticroutes, '192.168.50.0/24 10.61.0.254 169.254.169.254/32 10.61.0.2 0.0.0.0/0 10.61.0.1');
  assert.equal(got.hostname, 'web-1');
  assert.equal(got.domain, 'openstacklocal');
  assert.equal(got.search, 'openstacklocal');

  await vm.ip(['addr', 'add', '10.61.0.11/24', 'dev', 'eth0']);
  try {
    const answer = await vm.exec('busybox', ['nslookup', 'web-1.openstacklocal', '10.61.0.2']);
    assert.match(answer, /Address:\s*10\.61\.0\.11/);
  } finally {
    await vm.ip(['addr', 'flush', 'dev', 'eth0']);
  }
});

test('a new port is served by the same dnsmasq (reloaded)', async () => {
  const pid = await dnsmasqPid(net.id);
  assert.ok(pid);
  net = { ...net, ports: [...net.ports, db] };
  await dhcp.setupNetwork(net, dhcpPort);
  assert.equal(await dnsmasqPid(net.id), pid, 'not restarted');
  const got = await lease(db.mac_address);
  assert.equal(got.ip, '10.61.0.12');
  assert.equal(got.hostname, 'host-10-61-0-12');
  assert.equal(got.ntpsrv, '', 'no extra options');
});

test('setting up again, or from a restarted agent, keeps the same dnsmasq and files', async () => {
  const pid = await dnsmasqPid(net.id);
  const files = async (): Promise<string[]> => Promise.all(['host', 'addn_hosts', 'opts'].map((f) => fs.readFile(path.join(work, 'state', net.id, f), 'utf8')));
  const before = await files();
  await dhcp.setupNetwork(net, dhcpPort);
  await new LinuxDhcp(host, options).setupNetwork(net, dhcpPort);
  assert.equal(await dnsmasqPid(net.id), pid);
  assert.deepEqual(await files(), before);
  assert.equal((await host.link(tapName(dhcpPort.id)))?.master, 'br0', 'the plugged tap stays plugged');
  assert.equal((await lease(web.mac_address)).ip, '10.61.0.11');
});

test('a removed port gets no offer', async () => {
  const pid = await dnsmasqPid(net.id);
  net = { ...net, ports: net.ports.filter((p) => p.id !== web.id) };
  await dhcp.setupNetwork(net, dhcpPort);
  assert.equal(await dnsmasqPid(net.id), pid);
  await assert.rejects(lease(web.mac_address), 'udhcpc gives up without a lease');
  assert.equal((await lease(db.mac_address)).ip, '10.61.0.12', 'the others still get theirs');
});

test("a removed port's address goes to the next port at once: its lease is released, not held for the old MAC", async () => {
  // web (10.61.0.11) had a lease in the first test, and was removed by the one before.
  const pid = await dnsmasqPid(net.id);
  const next = port([{ subnet_id: a.id, ip_address: '10.61.0.11' }]);
  net = { ...net, ports: [...net.ports, next] };
  await dhcp.setupNetwork(net, dhcpPort);
  assert.equal(await dnsmasqPid(net.id), pid, 'reloaded, not restarted');
  assert.equal((await lease(next.mac_address)).ip, '10.61.0.11', "the new port gets the old port's address");
  net = { ...net, ports: net.ports.filter((p) => p.id !== next.id) };
  await dhcp.setupNetwork(net, dhcpPort);
});

test('a port whose admin state is down gets no offer', async () => {
  const pid = await dnsmasqPid(net.id);
  net = { ...net, ports: net.ports.map((p) => (p.id === db.id ? { ...p, admin_state_up: false } : p)) };
  await dhcp.setupNetwork(net, dhcpPort);
  await assert.rejects(lease(db.mac_address));
  net = { ...net, ports: net.ports.map((p) => (p.id === db.id ? { ...p, admin_state_up: true } : p)) };
  await dhcp.setupNetwork(net, dhcpPort);
  assert.equal((await lease(db.mac_address)).ip, '10.61.0.12');
  assert.equal(await dnsmasqPid(net.id), pid);
});

test('a subnet without a gateway gives no router option and no default route', async () => {
  const pid = await dnsmasqPid(net.id);
  net = { ...net, subnets: [{ ...a, gateway_ip: null }] };
  await dhcp.setupNetwork(net, dhcpPort);
  assert.equal(await dnsmasqPid(net.id), pid);
  const got = await lease(db.mac_address);
  assert.equal(got.ip, '10.61.0.12');
  assert.equal(got.router, '');
  assert.equal(got.staticroutes, '192.168.50.0/24 10.61.0.254 169.254.169.254/32 10.61.0.2', 'no default route in option 121 either');
  assert.equal(await defaultRoute(dhcpNamespace(net.id)), null);
  net = { ...net, subnets: [a] };
});

test('with a router, no isolated metadata: no metadata address, route or proxy', async () => {
  metadataCalls.length = 0;
  const pid = await dnsmasqPid(net.id);
  await dhcp.setupNetwork(net, dhcpPort, true);
  const ns = dhcpNamespace(net.id);
  assert.deepEqual(await nsAddresses(ns, dhcpDeviceName(dhcpPort.id)), ['10.61.0.2/24']);
  assert.deepEqual(metadataCalls, [`stop ${ns}`]);
  assert.equal((await lease(db.mac_address)).staticroutes, '192.168.50.0/24 10.61.0.254 0.0.0.0/0 10.61.0.1');
  assert.equal(await dnsmasqPid(net.id), pid);
});

test("a port's extra DHCP options reach it; changes after it got a lease keep DHCP up", async () => {
  const pid = await dnsmasqPid(net.id);
  const ntp = port([{ subnet_id: a.id, ip_address: '10.61.0.14' }], { extra_dhcp_opts: [{ opt_name: 'ntp-server', opt_value: '10.61.0.9' }, { opt_name: 'bad', opt_value: 'x\ndhcp-option=3,6.6.6.6' }] });
  net = { ...net, ports: [...net.ports, ntp] };
  await dhcp.setupNetwork(net, dhcpPort, true);
  assert.equal(await dnsmasqPid(net.id), pid, 'reloaded');
  const got = await lease(ntp.mac_address);
  assert.equal(got.ip, '10.61.0.14');
  assert.equal(got.ntpsrv, '10.61.0.9');
  assert.equal(got.router, '10.61.0.1', 'an option value with a line break is not written');
  // dnsmasq before 2.91 crashes reloading tagged hosts that have answered a client: restarted instead.
  net = { ...net, ports: net.ports.filter((p) => p.id !== ntp.id) };
  await dhcp.setupNetwork(net, dhcpPort, true);
  assert.equal((await lease(db.mac_address)).ip, '10.61.0.12');
  await assert.rejects(lease(ntp.mac_address));
  assert.ok(await dnsmasqPid(net.id));
});

test('a subnet added restarts dnsmasq, which then serves both', async () => {
  const pid = await dnsmasqPid(net.id);
  const b = subnet('10.62.0.0/24', '10.62.0.1');
  const app = port([{ subnet_id: b.id, ip_address: '10.62.0.13' }]);
  const dhcpPortAB = { ...dhcpPort, fixed_ips: [...dhcpPort.fixed_ips, { subnet_id: b.id, ip_address: '10.62.0.2' }] };
  net = { ...net, subnets: [a, b], ports: [...net.ports.filter((p) => p.id !== dhcpPort.id), dhcpPortAB, app] };
  await dhcp.setupNetwork(net, dhcpPortAB, true);
  const restarted = await dnsmasqPid(net.id);
  assert.ok(restarted && restarted !== pid, 'a new dnsmasq');
  const got = await lease(app.mac_address);
  assert.equal(got.ip, '10.62.0.13');
  assert.equal(got.router, '10.62.0.1');
  assert.equal(got.staticroutes, '10.61.0.0/24 0.0.0.0 0.0.0.0/0 10.62.0.1', 'the other subnet is on-link');
  assert.equal((await lease(db.mac_address)).ip, '10.61.0.12');
});

test('a killed dnsmasq is started again', async () => {
  const pid = await dnsmasqPid(net.id);
  assert.ok(pid);
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && (await dnsmasqPid(net.id)); i++) await sleep(20);
  const dhcpPortAB = net.ports.find((p) => p.id === dhcpPort.id) ?? dhcpPort;
  await dhcp.setupNetwork(net, dhcpPortAB, true);
  const started = await dnsmasqPid(net.id);
  assert.ok(started && started !== pid);
  assert.equal((await lease(db.mac_address)).ip, '10.61.0.12');
});

test('IPv6: a DHCPv6-stateful subnet gets host entries; a SLAAC subnet with no router gets router advertisements from dnsmasq', async () => {
  const v4 = subnet('10.63.0.0/24', '10.63.0.1');
  const stateful = subnet('2001:db8:63::/64', '2001:db8:63::1', { ip_version: 6, ipv6_address_mode: 'dhcpv6-stateful', ipv6_ra_mode: null });
  const slaac = subnet('2001:db8:64::/64', '2001:db8:64::1', { ip_version: 6, ipv6_address_mode: 'slaac', ipv6_ra_mode: 'slaac' });
  const server = port(
    [
      { subnet_id: v4.id, ip_address: '10.63.0.2' },
      { subnet_id: stateful.id, ip_address: '2001:db8:63::2' },
      { subnet_id: slaac.id, ip_address: '2001:db8:64::2' },
    ],
    { device_owner: 'network:dhcp' },
  );
  const guest = port([{ subnet_id: stateful.id, ip_address: '2001:db8:63::11' }]);
  const net6 = newNetwork([v4, stateful, slaac], [server, guest]);
  await dhcp.setupNetwork(net6, server);
  try {
    await plug(server);
    assert.ok(await dnsmasqPid(net6.id), 'dnsmasq takes the IPv6 configuration');
    assert.deepEqual((await nsAddresses(dhcpNamespace(net6.id), dhcpDeviceName(server.id))).sort(), ['10.63.0.2/24', '169.254.169.254/32', '2001:db8:63::2/64', '2001:db8:64::2/64']);
    const hosts = await fs.readFile(path.join(work, 'state', net6.id, 'host'), 'utf8');
    assert.ok(hosts.split('\n').includes(`${guest.mac_address},host-2001-db8-63--11.openstacklocal,[2001:db8:63::11]`), hosts);
    // A link coming up sends a router solicitation; the guest configures a SLAAC address from the answer.
    await vm.ip(['link', 'set', 'eth0', 'down']);
    await vm.ip(['link', 'set', 'eth0', 'up']);
    let addresses: string[] = [];
    for (let i = 0; i < 100 && !addresses.some((x) => x.startsWith('2001:db8:64:')); i++) {
      await sleep(100);
      addresses = await nsAddresses(vmNs, 'eth0');
    }
    assert.ok(addresses.some((x) => x.startsWith('2001:db8:64:') && x.endsWith('/64')), `a SLAAC address in ${addresses.join(' ')}`);
  } finally {
    await host.ip(['link', 'set', 'dev', tapName(server.id), 'nomaster']).catch(() => undefined);
    await dhcp.teardownNetwork(net6.id);
  }
});

test('with no DHCP port left, everything is removed; tearing down again is fine', async () => {
  const pid = await dnsmasqPid(net.id);
  assert.ok(pid);
  await dhcp.setupNetwork(net, null);
  assert.ok(!(await host.namespaces()).includes(dhcpNamespace(net.id)), 'no namespace');
  assert.equal(await host.link(tapName(dhcpPort.id)), null, 'no tap');
  assert.ok(!(await processAlive(pid, 'dnsmasq')), 'no dnsmasq');
  assert.equal(await fs.stat(path.join(work, 'state', net.id)).catch(() => null), null, 'no state');
  assert.ok(!(await dhcp.present()).includes(net.id));
  await dhcp.teardownNetwork(net.id);
});
