import assert from 'node:assert/strict';
import { parse } from 'node:querystring';
import { after, before, beforeEach, test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { isoNow, newUuid } from '../common.js';
import { listResponse, parseListQuery, STANDARD_ATTRIBUTES, type ListSpec } from '../lists.js';
import { createTestNetwork, errorType, expectNeutronError, type TestNetwork, type TestUser } from '../testing.js';

// Facts from neutron-lib's api-ref (ports.inc) and Tempest's port tests
// (test_ports.py, admin/test_ports.py, test_allowed_address_pair.py,
// test_extra_dhcp_options.py); error types and messages from Neutron.

let t: TestNetwork;
let events: { type: string; payload: any }[] = [];
let clearEvents: () => void;

before(async () => {
  t = await createTestNetwork();
  ({ events, clear: clearEvents } = t.recordNotifications());
});

after(async () => {
  await t.close();
});

beforeEach(() => {
  clearEvents();
});

interface NetOptions {
  shared?: boolean;
  port_security_enabled?: boolean;
  subnets?: { cidr: string; gateway?: string | null; pools?: [string, string][]; ipv6_address_mode?: string }[];
}

/** A network and its subnets, through the API. */
async function makeNetwork(user: TestUser, options: NetOptions = {}): Promise<{ id: string; subnets: string[] }> {
  const body: Record<string, unknown> = { name: `net-${newUuid().slice(0, 6)}` };
  if (options.shared !== undefined) body.shared = options.shared;
  if (options.port_security_enabled !== undefined) body.port_security_enabled = options.port_security_enabled;
  const network = await t.create(user, 'networks', 'network', body);
  const subnets: string[] = [];
  for (const spec of options.subnets ?? [{ cidr: '10.0.0.0/24' }]) {
    const subnet: Record<string, unknown> = { network_id: network.id, cidr: spec.cidr, ip_version: spec.cidr.includes(':') ? 6 : 4 };
    if (spec.gateway !== undefined) subnet.gateway_ip = spec.gateway;
    if (spec.pools) subnet.allocation_pools = spec.pools.map(([start, end]) => ({ start, end }));
    if (spec.ipv6_address_mode) {
      subnet.ipv6_address_mode = spec.ipv6_address_mode;
      subnet.ipv6_ra_mode = spec.ipv6_address_mode;
    }
    const created = await t.create(user, 'subnets', 'subnet', subnet);
    subnets.push(created.id as string);
  }
  return { id: network.id as string, subnets };
}

async function createPort(user: TestUser, body: Record<string, unknown>) {
  return t.request('POST', '/v2.0/ports', { user, payload: { port: body } });
}

async function portCount(networkId: string): Promise<number> {
  const row = await t.net.db.selectFrom('port').select((eb) => eb.fn.countAll<number>().as('n')).where('network_id', '=', networkId).executeTakeFirstOrThrow();
  return Number(row.n);
}

test('POST creates a port: DOWN, a MAC under base_mac, an address, the default group, Neutron defaults', async () => {
  const network = await makeNetwork(t.alpha);
  const res = await createPort(t.alpha, { network_id: network.id, name: 'p1' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const port = res.body.port;
  assert.equal(port.name, 'p1', 'name');
  assert.equal(port.status, 'DOWN', 'status DOWN at create');
  assert.equal(port.admin_state_up, true, 'admin_state_up defaults true');
  assert.match(port.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/, 'MAC under base_mac');
  assert.equal(port.fixed_ips.length, 1, 'one address');
  assert.equal(port.fixed_ips[0].subnet_id, network.subnets[0], 'from the subnet');
  assert.match(port.fixed_ips[0].ip_address, /^10\.0\.0\.\d+$/, 'an address of 10.0.0.0/24');
  assert.equal(port.device_id, '', 'device_id');
  assert.equal(port.device_owner, '', 'device_owner');
  assert.equal(port.project_id, t.alpha.projectId, 'project');
  assert.equal(port.tenant_id, t.alpha.projectId, 'tenant');
  assert.equal(port.revision_number, 1, 'revision');
  assert.equal(port.port_security_enabled, true, "the network's port security");
  assert.deepEqual(port.allowed_address_pairs, [], 'no pairs');
  assert.deepEqual(port.extra_dhcp_opts, [], 'no DHCP options');
  assert.deepEqual(port.tags, [], 'no tags');
  assert.equal(port.dns_name, '', 'dns_name');
  assert.equal(port['binding:vnic_type'], 'normal', 'vnic type');
  assert.equal(port.security_groups.length, 1, 'one group');
  assert.ok(!('binding:host_id' in port) && !('binding:vif_type' in port) && !('binding:profile' in port), 'binding details hidden from a member');
  assert.match(port.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'timestamp to the second');
  const group = await t.net.db.selectFrom('security_group').selectAll().where('id', '=', port.security_groups[0]).executeTakeFirstOrThrow();
  assert.equal(group.name, 'default', 'the default group');
  assert.equal(group.project_id, t.alpha.projectId, "the project's own");
  const admin = await t.request('GET', `/v2.0/ports/${port.id}`, { user: t.admin });
  assert.equal(admin.body.port['binding:vif_type'], 'unbound', 'unbound without a host');
  assert.equal(admin.body.port['binding:host_id'], '', 'no host');
  assert.deepEqual(admin.body.port['binding:profile'], {}, 'empty profile');
  assert.deepEqual(admin.body.port['binding:vif_details'], {}, 'no details');
  const created = events.filter((e) => e.type === 'port.create.end');
  assert.equal(created.length, 1, 'one port.create.end');
  assert.equal(created[0]?.payload.port.id, port.id, 'about the port');
  const updated = t.driver.calls.filter((c) => c.method === 'portUpdated' && (c.args[0] as { id: string }).id === port.id);
  assert.equal(updated.length, 1, 'the driver heard of the port');
});

test('POST refuses bad bodies with 400 and creates nothing', async () => {
  const network = await makeNetwork(t.alpha);
  const cases: [unknown, RegExp][] = [
    [{ port: {} }, /Required attribute 'network_id'/],
    [{ port: { network_id: 'nope' } }, /network_id.*not a valid UUID/],
    [{ port: { network_id: network.id, bogus: 1 } }, /Unrecognized attribute\(s\) 'bogus'/],
    [{ port: { network_id: network.id, status: 'ACTIVE' } }, /Attribute 'status' not allowed in POST/],
    [{ port: { network_id: network.id, admin_state_up: 'maybe' } }, /cannot be converted to boolean/],
    [{ port: { network_id: network.id, mac_address: 'zz:zz' } }, /not a valid MAC address/],
    [{ port: { network_id: network.id, fixed_ips: [{ ip_address: '10.0.0.300' }] } }, /not a valid IP address/],
    [{ port: { network_id: network.id, fixed_ips: 'x' } }, /Invalid data format for fixed IP/],
    [{ port: { network_id: network.id, fixed_ips: [{ ip_address: '10.0.0.9' }, { ip_address: '10.0.0.9' }] } }, /Duplicate IP address/],
    [{ port: { network_id: network.id, security_groups: ['x'] } }, /not a valid UUID/],
    [{ port: { network_id: network.id, 'binding:vnic_type': 'weird' } }, /binding:vnic_type/],
    [{ port: { network_id: network.id, 'binding:vif_type': 'ovs' } }, /not allowed in POST/],
    [{ nope: {} }, /Unable to find 'port'/],
  ];
  for (const [payload, message] of cases) {
    const res = await t.request('POST', '/v2.0/ports', { user: t.alpha, payload });
    assert.equal(res.status, 400, `${JSON.stringify(payload)}: ${JSON.stringify(res.body)}`);
    assert.match(res.body.NeutronError.message, message, JSON.stringify(payload));
  }
  const malformed = await t.request('POST', '/v2.0/ports', { user: t.alpha, payload: '{"port": ' });
  assert.equal(malformed.status, 400, 'malformed JSON');
  assert.equal(await portCount(network.id), 0, 'nothing created');
});

test('a network that does not exist or is not visible is 404 NetworkNotFound', async () => {
  const missing = newUuid();
  const res = await createPort(t.alpha, { network_id: missing });
  assert.equal(res.status, 404, JSON.stringify(res.body));
  assert.equal(errorType(res), 'NetworkNotFound', 'type');
  assert.equal(res.body.NeutronError.message, `Network ${missing} could not be found.`, 'message');
  const alphaNet = await makeNetwork(t.alpha);
  const other = await createPort(t.beta, { network_id: alphaNet.id });
  assert.equal(other.status, 404, "another project's private network");
  assert.equal(errorType(other), 'NetworkNotFound', 'type');
});

test('a member may create ports on a shared network of another project, but not choose addresses or network: owners', async () => {
  const shared = await makeNetwork(t.admin, { shared: true });
  const plain = await createPort(t.beta, { network_id: shared.id });
  assert.equal(plain.status, 201, JSON.stringify(plain.body));
  assert.equal(plain.body.port.project_id, t.beta.projectId, "the member's port");
  const bySubnet = await createPort(t.beta, { network_id: shared.id, fixed_ips: [{ subnet_id: shared.subnets[0] }] });
  assert.equal(bySubnet.status, 201, `subnet_id alone is allowed: ${JSON.stringify(bySubnet.body)}`);
  const byAddress = await createPort(t.beta, { network_id: shared.id, fixed_ips: [{ ip_address: '10.0.0.77' }] });
  assert.equal(byAddress.status, 403, JSON.stringify(byAddress.body));
  assert.equal(errorType(byAddress), 'PolicyNotAuthorized', 'type');
  const withMac = await createPort(t.beta, { network_id: shared.id, mac_address: 'fa:16:3e:00:00:01' });
  assert.equal(withMac.status, 403, 'explicit MAC needs the network owner');
  const router = await createPort(t.beta, { network_id: shared.id, device_owner: 'network:router_interface' });
  assert.equal(router.status, 403, 'network: owners need the network owner');
  const compute = await createPort(t.beta, { network_id: shared.id, device_owner: 'compute:nova' });
  assert.equal(compute.status, 201, 'compute: owners are fine');
  const otherProject = await createPort(t.beta, { network_id: shared.id, project_id: t.alpha.projectId });
  assert.equal(otherProject.status, 403, 'a member cannot create in another project');
  const pairs = await createPort(t.beta, { network_id: shared.id, allowed_address_pairs: [{ ip_address: '10.0.0.50' }] });
  assert.equal(pairs.status, 403, 'allowed address pairs need the network owner');
});

test('a reader cannot create, update or delete ports, but can read them', async () => {
  const network = await makeNetwork(t.alpha);
  const denied = await createPort(t.alphaReader, { network_id: network.id });
  assert.equal(denied.status, 403, JSON.stringify(denied.body));
  const port = await t.create(t.alpha, 'ports', 'port', { network_id: network.id });
  const show = await t.request('GET', `/v2.0/ports/${port.id}`, { user: t.alphaReader });
  assert.equal(show.status, 200, 'reader reads');
  const update = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alphaReader, payload: { port: { name: 'x' } } });
  assert.equal(update.status, 403, 'reader cannot update');
  assert.equal(errorType(update), 'PolicyNotAuthorized', 'update refused by policy');
  const del = await t.request('DELETE', `/v2.0/ports/${port.id}`, { user: t.alphaReader });
  assert.equal(del.status, 403, 'reader cannot delete');
  assert.equal(errorType(del), 'PolicyNotAuthorized', 'delete refused by policy');
  const after = await t.request('GET', `/v2.0/ports/${port.id}`, { user: t.alpha });
  assert.deepEqual(after.body.port, port, 'the port is as it was');
});

test("another project's port is 404 on show, update and delete; an unknown id is 404 PortNotFound", async () => {
  const network = await makeNetwork(t.alpha);
  const port = await t.create(t.alpha, 'ports', 'port', { network_id: network.id });
  for (const [method, payload] of [['GET', undefined], ['PUT', { port: { name: 'x' } }], ['DELETE', undefined]] as const) {
    const res = await t.request(method, `/v2.0/ports/${port.id}`, { user: t.beta, payload });
    assert.equal(res.status, 404, `${method}: ${JSON.stringify(res.body)}`);
    assert.equal(errorType(res), 'PortNotFound', method);
  }
  const unknown = newUuid();
  const res = await t.request('GET', `/v2.0/ports/${unknown}`, { user: t.alpha });
  assert.equal(res.status, 404, 'unknown');
  assert.equal(res.body.NeutronError.message, `Port ${unknown} could not be found.`, 'message');
});

test('the network owner sees ports other projects made on its network', async () => {
  const network = await makeNetwork(t.alpha);
  const res = await createPort(t.admin, { network_id: network.id, project_id: t.beta.projectId });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const list = await t.request('GET', `/v2.0/ports?network_id=${network.id}`, { user: t.alpha });
  assert.deepEqual(list.body.ports.map((p: { id: string }) => p.id), [res.body.port.id], 'listed for the network owner');
  const betaList = await t.request('GET', `/v2.0/ports?network_id=${network.id}`, { user: t.beta });
  assert.equal(betaList.body.ports.length, 1, 'and for its project');
  const gamma = await t.request('GET', `/v2.0/ports/${res.body.port.id}`, { user: t.beta });
  assert.equal(gamma.status, 200, 'shown to its project');
});

test('explicit MAC addresses: kept, unique per network (409 MacAddressInUse), free on another network', async () => {
  const network = await makeNetwork(t.alpha);
  const other = await makeNetwork(t.alpha);
  const mac = 'fa:16:3e:aa:bb:cc';
  const first = await createPort(t.alpha, { network_id: network.id, mac_address: 'FA-16-3E-AA-BB-CC' });
  assert.equal(first.status, 201, JSON.stringify(first.body));
  assert.equal(first.body.port.mac_address, mac, 'normalized');
  const again = await createPort(t.alpha, { network_id: network.id, mac_address: mac });
  assert.equal(again.status, 409, JSON.stringify(again.body));
  assert.equal(errorType(again), 'MacAddressInUse', 'type');
  assert.equal(again.body.NeutronError.message, `Unable to complete operation for network ${network.id}. The mac address ${mac} is in use.`, 'message');
  const elsewhere = await createPort(t.alpha, { network_id: other.id, mac_address: mac });
  assert.equal(elsewhere.status, 201, 'another network may reuse it');
  assert.equal(await portCount(network.id), 1, 'the refused port left nothing');
});

test('explicit fixed IPs: taken, refused when taken, outside, the network or broadcast address, or on another network', async () => {
  const network = await makeNetwork(t.alpha);
  const other = await makeNetwork(t.alpha, { subnets: [{ cidr: '10.9.0.0/24' }] });
  const ok = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ ip_address: '10.0.0.250' }] });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  assert.deepEqual(ok.body.port.fixed_ips, [{ subnet_id: network.subnets[0], ip_address: '10.0.0.250' }], 'the address asked for');
  const taken = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ subnet_id: network.subnets[0], ip_address: '10.0.0.250' }] });
  assert.equal(taken.status, 409, JSON.stringify(taken.body));
  assert.equal(errorType(taken), 'IpAddressAlreadyAllocated', 'type');
  const outside = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ ip_address: '192.168.1.5' }] });
  assert.equal(outside.status, 400, JSON.stringify(outside.body));
  assert.equal(errorType(outside), 'InvalidIpForNetwork', 'type');
  const wrongSubnet = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ subnet_id: network.subnets[0], ip_address: '10.9.0.5' }] });
  assert.equal(wrongSubnet.status, 400, 'address outside the subnet named');
  assert.equal(errorType(wrongSubnet), 'InvalidIpForSubnet', 'type');
  for (const ip of ['10.0.0.0', '10.0.0.255']) {
    const res = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ ip_address: ip }] });
    assert.equal(res.status, 400, `${ip}: ${JSON.stringify(res.body)}`);
    assert.equal(errorType(res), 'InvalidIpForSubnet', ip);
  }
  const gateway = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ ip_address: '10.0.0.1' }] });
  assert.equal(gateway.status, 409, 'the gateway is taken');
  const foreign = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ subnet_id: other.subnets[0] }] });
  assert.equal(foreign.status, 400, JSON.stringify(foreign.body));
  assert.match(foreign.body.NeutronError.message, /fixed_ips included invalid subnet/, 'message');
  const outsidePool = await createPort(t.alpha, { network_id: other.id, fixed_ips: [{ ip_address: '10.9.0.255' }] });
  assert.equal(outsidePool.status, 400, 'broadcast on the other network too');
  assert.equal(await portCount(network.id), 1, 'only the first port exists');
});

test('a full pool answers 409 IpAddressGenerationFailure', async () => {
  const network = await makeNetwork(t.alpha, { subnets: [{ cidr: '10.1.0.0/29', pools: [['10.1.0.2', '10.1.0.4']] }] });
  const addresses = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const res = await createPort(t.alpha, { network_id: network.id });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    addresses.add(res.body.port.fixed_ips[0].ip_address);
  }
  assert.deepEqual([...addresses].sort(), ['10.1.0.2', '10.1.0.3', '10.1.0.4'], 'the whole pool');
  const full = await createPort(t.alpha, { network_id: network.id });
  assert.equal(full.status, 409, JSON.stringify(full.body));
  assert.equal(errorType(full), 'IpAddressGenerationFailure', 'type');
  assert.equal(full.body.NeutronError.message, `No more IP addresses available on network ${network.id}.`, 'message');
  const outsidePool = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ ip_address: '10.1.0.6' }] });
  assert.equal(outsidePool.status, 201, 'an explicit address outside the pool is allowed');
  assert.equal(await portCount(network.id), 4, 'no half-made port');
});

test('a network without subnets gives ports without addresses', async () => {
  const network = await makeNetwork(t.alpha, { subnets: [] });
  const res = await createPort(t.alpha, { network_id: network.id });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.deepEqual(res.body.port.fixed_ips, [], 'no addresses');
});

test('IPv4 and SLAAC IPv6 subnets: an address from each; explicit IPv6 on SLAAC is refused', async () => {
  const network = await makeNetwork(t.alpha, { subnets: [{ cidr: '10.2.0.0/24' }, { cidr: '2001:db8:2::/64', ipv6_address_mode: 'slaac' }] });
  const res = await createPort(t.alpha, { network_id: network.id, mac_address: 'fa:16:3e:12:34:56' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const ips = res.body.port.fixed_ips as { subnet_id: string; ip_address: string }[];
  assert.equal(ips.length, 2, JSON.stringify(ips));
  assert.equal(ips[0]?.subnet_id, network.subnets[0], 'IPv4 first');
  assert.equal(ips[1]?.ip_address, '2001:db8:2:0:f816:3eff:fe12:3456', 'EUI-64 from the MAC');
  const explicit = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ ip_address: '2001:db8:2::99' }] });
  assert.equal(explicit.status, 400, JSON.stringify(explicit.body));
});

test('PUT fixed_ips replaces the set, keeping unchanged addresses and freeing the rest', async () => {
  const network = await makeNetwork(t.alpha, { subnets: [{ cidr: '10.3.0.0/24' }, { cidr: '10.4.0.0/24' }] });
  const [s1, s2] = network.subnets as [string, string];
  const port = await t.create(t.alpha, 'ports', 'port', { network_id: network.id, fixed_ips: [{ subnet_id: s1 }, { subnet_id: s2 }] });
  assert.equal(port.fixed_ips.length, 2, 'two addresses');
  const first = port.fixed_ips.find((ip: { subnet_id: string }) => ip.subnet_id === s1).ip_address as string;
  const second = port.fixed_ips.find((ip: { subnet_id: string }) => ip.subnet_id === s2).ip_address as string;
  const one = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alpha, payload: { port: { fixed_ips: [{ subnet_id: s1 }] } } });
  assert.equal(one.status, 200, JSON.stringify(one.body));
  assert.deepEqual(one.body.port.fixed_ips, [{ subnet_id: s1, ip_address: first }], 'kept the address on s1');
  assert.equal(one.body.port.revision_number, 2, 'revision bumped');
  const taker = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ ip_address: second }] });
  assert.equal(taker.status, 201, `the freed address is free: ${JSON.stringify(taker.body)}`);
  const both = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alpha, payload: { port: { fixed_ips: [{ subnet_id: s1 }, { subnet_id: s2 }] } } });
  assert.equal(both.status, 200, JSON.stringify(both.body));
  assert.equal(both.body.port.fixed_ips.length, 2, 'two again');
  assert.ok(both.body.port.fixed_ips.some((ip: { ip_address: string }) => ip.ip_address === first), 'first kept');
  const swap = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alpha, payload: { port: { fixed_ips: [{ ip_address: first }, { ip_address: '10.4.0.200' }] } } });
  assert.equal(swap.status, 200, JSON.stringify(swap.body));
  assert.deepEqual(swap.body.port.fixed_ips.map((ip: { ip_address: string }) => ip.ip_address), [first, '10.4.0.200'], 'explicit set');
  const clash = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alpha, payload: { port: { fixed_ips: [{ ip_address: second }] } } });
  assert.equal(clash.status, 409, 'taken by the other port');
  assert.equal(errorType(clash), 'IpAddressAlreadyAllocated', 'type');
  const after = await t.request('GET', `/v2.0/ports/${port.id}`, { user: t.alpha });
  assert.deepEqual(after.body.port.fixed_ips, swap.body.port.fixed_ips, 'a refused update changed nothing');
  const none = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alpha, payload: { port: { fixed_ips: [] } } });
  assert.deepEqual(none.body.port.fixed_ips, [], 'all given back');
});

test('PUT: name, description, admin_state_up, device fields; revision and updated_at move; read-only attributes are 400', async () => {
  const network = await makeNetwork(t.alpha);
  const port = await t.create(t.alpha, 'ports', 'port', { network_id: network.id, name: 'a' });
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const res = await t.request('PUT', `/v2.0/ports/${port.id}`, {
    user: t.alpha,
    payload: { port: { name: 'b', description: 'd', admin_state_up: false, device_id: 'vm-1', device_owner: 'compute:nova' } },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const updated = res.body.port;
  assert.equal(updated.name, 'b', 'name');
  assert.equal(updated.description, 'd', 'description');
  assert.equal(updated.admin_state_up, false, 'admin state');
  assert.equal(updated.device_id, 'vm-1', 'device_id');
  assert.equal(updated.device_owner, 'compute:nova', 'device_owner');
  assert.equal(updated.revision_number, port.revision_number + 1, 'revision');
  assert.notEqual(updated.updated_at, port.updated_at, 'updated_at');
  assert.equal(updated.created_at, port.created_at, 'created_at kept');
  assert.equal(events.filter((e) => e.type === 'port.update.end').length, 1, 'port.update.end');
  for (const body of [{ id: newUuid() }, { network_id: newUuid() }, { status: 'ACTIVE' }, { project_id: 'x' }, { tags: ['a'] }]) {
    const bad = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alpha, payload: { port: body } });
    assert.equal(bad.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(bad.body)}`);
  }
  const unchanged = await t.request('GET', `/v2.0/ports/${port.id}`, { user: t.alpha });
  assert.deepEqual(unchanged.body.port, updated, 'the refused updates changed nothing');
  const macChange = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alpha, payload: { port: { mac_address: 'fa:16:3e:01:02:03' } } });
  assert.equal(macChange.status, 403, 'only admins change MACs');
  const adminMac = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.admin, payload: { port: { mac_address: 'fa:16:3e:01:02:03' } } });
  assert.equal(adminMac.status, 200, JSON.stringify(adminMac.body));
  assert.equal(adminMac.body.port.mac_address, 'fa:16:3e:01:02:03', 'MAC changed');
});

test('security groups: default, none, chosen; unknown or foreign ones are 404 SecurityGroupNotFound', async () => {
  const network = await makeNetwork(t.alpha);
  const group = await t.create(t.alpha, 'security-groups', 'security_group', { name: 'web' });
  const betaGroup = await t.create(t.beta, 'security-groups', 'security_group', { name: 'theirs' });
  const none = await createPort(t.alpha, { network_id: network.id, security_groups: [] });
  assert.equal(none.status, 201, JSON.stringify(none.body));
  assert.deepEqual(none.body.port.security_groups, [], 'no groups');
  const chosen = await createPort(t.alpha, { network_id: network.id, security_groups: [group.id, group.id] });
  assert.equal(chosen.status, 201, JSON.stringify(chosen.body));
  assert.deepEqual(chosen.body.port.security_groups, [group.id], 'the group, once');
  const unknown = newUuid();
  const missing = await createPort(t.alpha, { network_id: network.id, security_groups: [unknown] });
  assert.equal(missing.status, 404, JSON.stringify(missing.body));
  assert.equal(errorType(missing), 'SecurityGroupNotFound', 'type');
  assert.equal(missing.body.NeutronError.message, `Security group ${unknown} does not exist`, 'message');
  const foreign = await createPort(t.alpha, { network_id: network.id, security_groups: [betaGroup.id] });
  assert.equal(foreign.status, 404, "another project's group");
  const router = await createPort(t.alpha, { network_id: network.id, device_owner: 'network:dhcp' });
  assert.deepEqual(router.body.port.security_groups, [], 'network: ports get no default group');
  const update = await t.request('PUT', `/v2.0/ports/${none.body.port.id}`, { user: t.alpha, payload: { port: { security_groups: [group.id] } } });
  assert.equal(update.status, 200, JSON.stringify(update.body));
  assert.deepEqual(update.body.port.security_groups, [group.id], 'updated');
  assert.ok(t.driver.calls.some((c) => c.method === 'securityGroupsUpdated' && (c.args[0] as string[]).includes(group.id)), 'the driver heard of the new member');
  const badUpdate = await t.request('PUT', `/v2.0/ports/${none.body.port.id}`, { user: t.alpha, payload: { port: { security_groups: [betaGroup.id] } } });
  assert.equal(badUpdate.status, 404, 'foreign group on update');
  const cleared = await t.request('PUT', `/v2.0/ports/${none.body.port.id}`, { user: t.alpha, payload: { port: { security_groups: null } } });
  assert.deepEqual(cleared.body.port.security_groups, [], 'null clears');
});

test('port security: off means no groups and no address pairs, as Neutron refuses them', async () => {
  const network = await makeNetwork(t.alpha);
  const group = await t.create(t.alpha, 'security-groups', 'security_group', { name: 'ps' });
  const withGroups = await createPort(t.alpha, { network_id: network.id, port_security_enabled: false, security_groups: [group.id] });
  assert.equal(withGroups.status, 400, JSON.stringify(withGroups.body));
  assert.equal(errorType(withGroups), 'PortSecurityAndIPRequiredForSecurityGroups', 'type');
  const withPairs = await createPort(t.alpha, { network_id: network.id, port_security_enabled: false, allowed_address_pairs: [{ ip_address: '10.0.0.9' }] });
  assert.equal(withPairs.status, 409, JSON.stringify(withPairs.body));
  assert.equal(errorType(withPairs), 'AddressPairAndPortSecurityRequired', 'type');
  const off = await createPort(t.alpha, { network_id: network.id, port_security_enabled: false });
  assert.equal(off.status, 201, JSON.stringify(off.body));
  assert.deepEqual(off.body.port.security_groups, [], 'no default group');
  assert.equal(off.body.port.port_security_enabled, false, 'off');
  const insecureNet = await makeNetwork(t.alpha, { port_security_enabled: false });
  const inherited = await createPort(t.alpha, { network_id: insecureNet.id });
  assert.equal(inherited.body.port.port_security_enabled, false, "the network's default");
  assert.deepEqual(inherited.body.port.security_groups, [], 'no groups');
  const on = await t.create(t.alpha, 'ports', 'port', { network_id: network.id });
  const disable = await t.request('PUT', `/v2.0/ports/${on.id}`, { user: t.alpha, payload: { port: { port_security_enabled: false } } });
  assert.equal(disable.status, 409, JSON.stringify(disable.body));
  assert.equal(errorType(disable), 'PortSecurityPortHasSecurityGroup', 'type');
  const disableAndClear = await t.request('PUT', `/v2.0/ports/${on.id}`, { user: t.alpha, payload: { port: { port_security_enabled: false, security_groups: [] } } });
  assert.equal(disableAndClear.status, 200, JSON.stringify(disableAndClear.body));
  assert.equal(disableAndClear.body.port.port_security_enabled, false, 'disabled');
  const addGroup = await t.request('PUT', `/v2.0/ports/${on.id}`, { user: t.alpha, payload: { port: { security_groups: [group.id] } } });
  assert.equal(addGroup.status, 400, 'groups on an insecure port');
  const addPairs = await t.request('PUT', `/v2.0/ports/${on.id}`, { user: t.alpha, payload: { port: { allowed_address_pairs: [{ ip_address: '10.0.0.9' }] } } });
  assert.equal(addPairs.status, 409, 'pairs on an insecure port');
  const enable = await t.request('PUT', `/v2.0/ports/${on.id}`, { user: t.alpha, payload: { port: { port_security_enabled: true, security_groups: [group.id] } } });
  assert.equal(enable.status, 200, JSON.stringify(enable.body));
  assert.deepEqual(enable.body.port.security_groups, [group.id], 'group back');
});

test('allowed address pairs: addresses and CIDRs, the MAC defaults to the port, duplicates and too many are 400', async () => {
  const network = await makeNetwork(t.alpha);
  const res = await createPort(t.alpha, { network_id: network.id, allowed_address_pairs: [{ ip_address: '10.0.0.100' }, { ip_address: '10.10.0.0/24', mac_address: 'fa:16:3e:99:99:99' }] });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const port = res.body.port;
  assert.deepEqual(port.allowed_address_pairs, [{ ip_address: '10.0.0.100', mac_address: port.mac_address }, { ip_address: '10.10.0.0/24', mac_address: 'fa:16:3e:99:99:99' }], 'pairs');
  const update = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alpha, payload: { port: { allowed_address_pairs: [{ ip_address: '2001:db8::5' }] } } });
  assert.equal(update.status, 200, JSON.stringify(update.body));
  assert.deepEqual(update.body.port.allowed_address_pairs, [{ ip_address: '2001:db8::5', mac_address: port.mac_address }], 'replaced');
  const cleared = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alpha, payload: { port: { allowed_address_pairs: [] } } });
  assert.deepEqual(cleared.body.port.allowed_address_pairs, [], 'cleared');
  const bad: [unknown, string | RegExp][] = [
    [[{ ip_address: '10.0.0.1' }, { ip_address: '10.0.0.1' }], 'DuplicateAddressPairInRequest'],
    [Array.from({ length: 11 }, (_, i) => ({ ip_address: `10.0.1.${i}` })), 'AllowedAddressPairExhausted'],
    [[{ mac_address: 'fa:16:3e:00:00:01' }], 'AllowedAddressPairsMissingIP'],
    [[{ ip_address: 'not-an-ip' }], /not a valid IP address/],
    [[{ ip_address: '10.0.0.0/99' }], /not a valid IP subnet/],
    [[{ ip_address: '10.0.0.1', mac_address: 'bad' }], /not a valid MAC/],
    [[{ ip_address: '10.0.0.1', extra: 1 }], /Unrecognized attribute/],
    ['x', /must be a list/],
  ];
  for (const [pairs, expected] of bad) {
    const r = await createPort(t.alpha, { network_id: network.id, allowed_address_pairs: pairs });
    assert.equal(r.status, 400, `${JSON.stringify(pairs)}: ${JSON.stringify(r.body)}`);
    if (typeof expected === 'string') assert.equal(errorType(r), expected, JSON.stringify(pairs));
    else assert.match(r.body.NeutronError.message, expected, JSON.stringify(pairs));
  }
});

test('extra DHCP options: created, merged on update, a null value removes one, bad ones are 400', async () => {
  const network = await makeNetwork(t.alpha);
  const opts = [
    { opt_name: 'bootfile-name', opt_value: 'pxelinux.0' },
    { opt_name: 'tftp-server', opt_value: '123.123.123.123' },
    { opt_name: 'server-ip-address', opt_value: '123.123.123.45', ip_version: 4 },
    { opt_name: 'dns-server', opt_value: '2001:db8::1', ip_version: 6 },
  ];
  const res = await createPort(t.alpha, { network_id: network.id, extra_dhcp_opts: opts });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const port = res.body.port;
  assert.deepEqual(port.extra_dhcp_opts, opts.map((o) => ({ ...o, ip_version: o.ip_version ?? 4 })), 'stored with ip_version');
  const update = await t.request('PUT', `/v2.0/ports/${port.id}`, {
    user: t.alpha,
    payload: { port: { extra_dhcp_opts: [{ opt_name: 'bootfile-name', opt_value: 'changed.0' }, { opt_name: 'tftp-server', opt_value: null }, { opt_name: 'domain-search', opt_value: 'example.org' }] } },
  });
  assert.equal(update.status, 200, JSON.stringify(update.body));
  const byName = new Map((update.body.port.extra_dhcp_opts as { opt_name: string; opt_value: string }[]).map((o) => [o.opt_name, o.opt_value]));
  assert.equal(byName.get('bootfile-name'), 'changed.0', 'replaced');
  assert.ok(!byName.has('tftp-server'), 'removed');
  assert.equal(byName.get('domain-search'), 'example.org', 'added');
  assert.equal(byName.get('dns-server'), '2001:db8::1', 'others kept');
  const blankRouter = await createPort(t.alpha, { network_id: network.id, extra_dhcp_opts: [{ opt_name: 'router', opt_value: '' }] });
  assert.equal(blankRouter.status, 201, 'router may be blank');
  assert.deepEqual(blankRouter.body.port.extra_dhcp_opts, [{ opt_name: 'router', opt_value: '', ip_version: 4 }], 'kept blank');
  for (const bad of [[{ opt_name: 'x' }], [{ opt_name: '', opt_value: 'v' }], [{ opt_name: 'x', opt_value: 'v', ip_version: 5 }], [{ opt_name: 'x', opt_value: '' }], ['x']]) {
    const r = await createPort(t.alpha, { network_id: network.id, extra_dhcp_opts: bad });
    assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${JSON.stringify(r.body)}`);
  }
});

test('binding: an admin sets the host, the driver binds, vif details are stored; members may not set or see them', async () => {
  const network = await makeNetwork(t.alpha);
  const denied = await createPort(t.alpha, { network_id: network.id, 'binding:host_id': 'compute-1' });
  assert.equal(denied.status, 403, JSON.stringify(denied.body));
  const res = await createPort(t.admin, { network_id: network.id, project_id: t.alpha.projectId, 'binding:host_id': 'compute-1', 'binding:profile': { a: 1 } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const port = res.body.port;
  assert.equal(port['binding:host_id'], 'compute-1', 'host');
  assert.equal(port['binding:vif_type'], 'tap', 'bound by the driver');
  assert.equal(port['binding:vif_details'].connectivity, 'l2', 'vif details');
  assert.deepEqual(port['binding:profile'], { a: 1 }, 'profile');
  assert.ok(t.driver.calls.some((c) => c.method === 'bindPort' && (c.args[0] as { id: string; host: string }).id === port.id && (c.args[0] as { host: string }).host === 'compute-1'), 'bindPort called');
  const shown = await t.request('GET', `/v2.0/ports/${port.id}`, { user: t.admin });
  assert.equal(shown.body.port['binding:vif_type'], port['binding:vif_type'], 'show agrees');
  assert.deepEqual(shown.body.port['binding:vif_details'], port['binding:vif_details'], 'details agree');
  const member = await t.request('GET', `/v2.0/ports/${port.id}`, { user: t.alpha });
  assert.ok(!('binding:host_id' in member.body.port), 'hidden from the member');
  assert.equal(member.body.port['binding:vnic_type'], 'normal', 'vnic_type visible');
  const memberUpdate = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.alpha, payload: { port: { 'binding:host_id': 'compute-2' } } });
  assert.equal(memberUpdate.status, 403, 'member cannot move it');
  const calls = t.driver.calls.length;
  const moved = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.admin, payload: { port: { 'binding:host_id': 'compute-2' } } });
  assert.equal(moved.status, 200, JSON.stringify(moved.body));
  assert.equal(moved.body.port['binding:host_id'], 'compute-2', 'moved');
  assert.equal(moved.body.port['binding:vif_type'], 'tap', 'bound again');
  assert.ok(t.driver.calls.slice(calls).some((c) => c.method === 'bindPort'), 'rebound');
  const unbound = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.admin, payload: { port: { 'binding:host_id': '' } } });
  assert.equal(unbound.body.port['binding:vif_type'], 'unbound', 'unbound without a host');
  const direct = await createPort(t.alpha, { network_id: network.id, 'binding:vnic_type': 'direct' });
  assert.equal(direct.status, 201, 'a member may choose the vnic type');
  assert.equal(direct.body.port['binding:vnic_type'], 'direct', 'direct');
  const boundMac = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.admin, payload: { port: { 'binding:host_id': 'compute-3' } } });
  assert.equal(boundMac.status, 200, 'bound again');
  const macOnBound = await t.request('PUT', `/v2.0/ports/${port.id}`, { user: t.admin, payload: { port: { mac_address: 'fa:16:3e:0a:0b:0c' } } });
  assert.equal(macOnBound.status, 409, 'no MAC change on a bound port');
  assert.equal(errorType(macOnBound), 'PortBound', 'type');
});

test('a host the driver cannot bind gives binding_failed; a driver error never undoes the port', async () => {
  const network = await makeNetwork(t.alpha);
  const original = t.driver.bindPort.bind(t.driver);
  t.driver.bindPort = async () => null;
  try {
    const res = await createPort(t.admin, { network_id: network.id, 'binding:host_id': 'nowhere' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.port['binding:vif_type'], 'binding_failed', 'binding_failed');
    t.driver.bindPort = async () => {
      throw new Error('driver down');
    };
    const broken = await createPort(t.admin, { network_id: network.id, 'binding:host_id': 'somewhere' });
    assert.equal(broken.status, 201, 'the port is committed anyway');
    assert.equal(broken.body.port['binding:vif_type'], 'binding_failed', 'not bound');
  } finally {
    t.driver.bindPort = original;
  }
});

test('lists: visibility, SQL filters, fixed_ips filters, fields, tags, unknown filters', async () => {
  const network = await makeNetwork(t.alpha, { subnets: [{ cidr: '10.20.0.0/24' }, { cidr: '10.21.0.0/24' }] });
  const [s1, s2] = network.subnets as [string, string];
  const p1 = await t.create(t.alpha, 'ports', 'port', { network_id: network.id, fixed_ips: [{ ip_address: '10.20.0.15' }], device_id: 'dev-1', device_owner: 'compute:nova', tags: ['red', 'blue'] });
  const p2 = await t.create(t.alpha, 'ports', 'port', { network_id: network.id, fixed_ips: [{ ip_address: '10.20.0.25' }], device_id: 'dev-2', tags: ['red'] });
  const p3 = await t.create(t.alpha, 'ports', 'port', { network_id: network.id, fixed_ips: [{ subnet_id: s2, ip_address: '10.21.0.15' }] });
  const betaNet = await makeNetwork(t.beta, { subnets: [{ cidr: '10.20.0.0/24' }] });
  const betaPort = await t.create(t.beta, 'ports', 'port', { network_id: betaNet.id, fixed_ips: [{ ip_address: '10.20.0.15' }] });
  const ids = async (query: string, user: TestUser = t.alpha): Promise<string[]> => {
    const res = await t.request('GET', `/v2.0/ports?${query}`, { user });
    assert.equal(res.status, 200, `${query}: ${JSON.stringify(res.body)}`);
    return (res.body.ports as { id: string }[]).map((p) => p.id).sort();
  };
  const sorted = (...list: Record<string, any>[]) => list.map((p) => String(p.id)).sort();
  assert.deepEqual(await ids(`network_id=${network.id}`), sorted(p1, p2, p3), 'by network');
  assert.ok(!(await ids('')).includes(betaPort.id), "beta's port is not listed to alpha");
  assert.ok((await ids('', t.admin)).includes(betaPort.id), 'admin sees all');
  assert.deepEqual(await ids('device_id=dev-1'), sorted(p1), 'device_id');
  assert.deepEqual(await ids(`device_owner=compute:nova&network_id=${network.id}`), sorted(p1), 'device_owner');
  assert.deepEqual(await ids(`mac_address=${p2.mac_address.toUpperCase()}`), sorted(p2), 'mac_address');
  assert.deepEqual(await ids('fixed_ips=ip_address%3D10.20.0.15'), sorted(p1), 'by address (only visible ports)');
  assert.deepEqual(await ids('fixed_ips=ip_address=10.20.0.15', t.admin), sorted(p1, betaPort), 'admin: both with that address');
  assert.deepEqual(await ids(`fixed_ips=subnet_id%3D${s2}`), sorted(p3), 'by subnet');
  assert.deepEqual(await ids(`fixed_ips=subnet_id%3D${s1}&fixed_ips=ip_address%3D10.20.0.25`), sorted(p2), 'address and subnet');
  assert.deepEqual(await ids(`fixed_ips=ip_address_substr%3D0.15&network_id=${network.id}`), sorted(p1, p3), 'substring');
  assert.deepEqual(await ids(`fixed_ips=ip_address_substr%3D10.20.0.2&network_id=${network.id}`), sorted(p2), 'substring of one');
  assert.deepEqual(await ids(`status=DOWN&network_id=${network.id}`), sorted(p1, p2, p3), 'status');
  assert.deepEqual(await ids(`tags=red&network_id=${network.id}`), sorted(p1, p2), 'tags');
  assert.deepEqual(await ids(`tags=red,blue&network_id=${network.id}`), sorted(p1), 'all tags');
  assert.deepEqual(await ids(`not-tags=red&network_id=${network.id}`), sorted(p3), 'not-tags');
  assert.deepEqual(await ids(`project_id=${t.alpha.projectId}&network_id=${network.id}`), sorted(p1, p2, p3), 'project');
  assert.deepEqual(await ids(`tenant_id=${t.beta.projectId}&network_id=${network.id}`), [], 'tenant');
  const fields = await t.request('GET', `/v2.0/ports?network_id=${network.id}&fields=id&fields=fixed_ips`, { user: t.alpha });
  for (const port of fields.body.ports as Record<string, unknown>[]) assert.deepEqual(Object.keys(port).sort(), ['fixed_ips', 'id'], 'only the fields asked for');
  const page = await t.request('GET', `/v2.0/ports?network_id=${network.id}&limit=2&sort_key=name&sort_dir=asc`, { user: t.alpha });
  assert.equal(page.body.ports.length, 2, 'a page of two');
  assert.ok(Array.isArray(page.body.ports_links), 'with links');
  const unknown = await t.request('GET', '/v2.0/ports?colour=red', { user: t.alpha });
  assert.equal(unknown.status, 400, 'unknown filter');
  const badFixed = await t.request('GET', '/v2.0/ports?fixed_ips=colour%3Dred', { user: t.alpha });
  assert.equal(badFixed.status, 400, 'unknown fixed_ips key');
  const show = await t.request('GET', `/v2.0/ports/${p1.id}?fields=name&fields=tags`, { user: t.alpha });
  assert.deepEqual(show.body.port, { name: '', tags: ['blue', 'red'] }, 'show with fields');
  const hostFilter = await t.request('GET', `/v2.0/ports?binding:host_id=&network_id=${network.id}`, { user: t.admin });
  assert.equal(hostFilter.body.ports.length, 3, 'admin filters on an empty host');
});

test('paged lists (read in SQL) answer as the whole list paged in memory: items, order, links; an unknown or hidden marker is 404', async () => {
  const network = await makeNetwork(t.alpha, { subnets: [{ cidr: '10.22.0.0/24' }] });
  const ports: string[] = [];
  for (const [i, name] of ['b', 'a', 'c', 'a', 'B', 'd', 'é'].entries()) {
    const port = await t.insertPort({ network_id: network.id, name, mac_address: `fa:16:3e:22:00:0${i}`, binding_host_id: i % 2 === 0 ? 'host-1' : '', revision_number: [3, 12, 1, 25, 7, 100, 9][i] ?? 1 }, [{ subnet_id: network.subnets[0] ?? '', ip_address: `10.22.0.${10 + i}` }]);
    ports.push(port.id);
  }
  const betaNet = await makeNetwork(t.beta, { subnets: [] });
  const hidden = (await t.insertPort({ network_id: betaNet.id, project_id: t.beta.projectId, mac_address: 'fa:16:3e:22:01:00' })).id;
  const spec: ListSpec = { collection: 'ports', resource: 'port', attributes: [...STANDARD_ATTRIBUTES, 'network_id', 'mac_address', 'fixed_ips'] };
  const headers = { host: 'network.test:9696' };
  const [first, third, last] = [...ports].sort() as [string, string, string, ...string[]];
  for (const user of [t.admin, t.alpha]) {
    const whole = await t.request('GET', `/v2.0/ports?network_id=${network.id}`, { user, headers });
    assert.equal(whole.body.ports.length, ports.length, 'every port');
    const n = `network_id=${network.id}`;
    const queries = [
      `${n}&limit=2`,
      `${n}&limit=2&marker=${first}`,
      `${n}&limit=3&marker=${third}&page_reverse=True`,
      `${n}&limit=2&page_reverse=True`,
      `${n}&marker=${third}`,
      `${n}&limit=10`,
      `${n}&limit=2&sort_key=name&sort_dir=desc&marker=${last}`,
      `${n}&limit=3&sort_key=revision_number&sort_dir=desc&sort_key=name&sort_dir=asc`,
      `${n}&limit=2&fields=name&fields=fixed_ips&sort_key=mac_address`,
      `${n}&limit=2&name=a&name=B&tenant_id=${t.alpha.projectId}`,
    ];
    for (const query of queries) {
      const res = await t.request('GET', `/v2.0/ports?${query}`, { user, headers });
      const req = { query: parse(query), headers, protocol: 'http' } as unknown as FastifyRequest;
      assert.deepEqual(res.body, listResponse(req, spec, whole.body.ports, parseListQuery(req, spec)), `${user === t.admin ? 'admin' : 'member'}: ${query}`);
    }
    const byAddress = async (query: string) => ((await t.request('GET', `/v2.0/ports?${n}&limit=2&${query}`, { user })).body.ports as { id: string }[]).map((p) => p.id);
    assert.deepEqual(await byAddress(`fixed_ips=ip_address%3D10.22.0.11&fixed_ips=subnet_id%3D${network.subnets[0]}`), [ports[1]], 'fixed_ips: address and subnet');
    assert.deepEqual(await byAddress(`fixed_ips=ip_address%3D10.22.0.11&fixed_ips=subnet_id%3D${newUuid()}`), [], 'fixed_ips: that address, another subnet');
    // Following next links from the first page, then previous links back, visits every port once each way.
    const walk = async (url: string, rel: string): Promise<string[]> => {
      const seen: string[] = [];
      for (let next: string | undefined = url; next !== undefined; ) {
        const res = await t.request('GET', next, { user, headers });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        seen.push(...(res.body.ports as { id: string }[]).map((p) => p.id));
        next = (res.body.ports_links as { rel: string; href: string }[] | undefined)?.find((l) => l.rel === rel)?.href.replace('http://network.test:9696', '');
      }
      return seen;
    };
    assert.deepEqual(await walk(`/v2.0/ports?${n}&limit=3`, 'next'), [...ports].sort(), 'forward, by id');
    const backward = await walk(`/v2.0/ports?${n}&limit=3&page_reverse=True`, 'previous');
    assert.deepEqual([...backward].sort(), [...ports].sort(), 'backward, every port');
    // Unknown, and not in the list (another network's; for the member, not its to see either).
    for (const marker of [newUuid(), hidden]) {
      const res = await t.request('GET', `/v2.0/ports?${n}&limit=2&marker=${marker}`, { user });
      expectNeutronError(res, 404, 'PortNotFound', `Port ${marker} could not be found.`);
    }
  }
});

test('DELETE: 204, the address is free again, the driver is told; twice is 404', async () => {
  const network = await makeNetwork(t.alpha);
  const port = await t.create(t.alpha, 'ports', 'port', { network_id: network.id, fixed_ips: [{ ip_address: '10.0.0.42' }], tags: ['x'] });
  const res = await t.request('DELETE', `/v2.0/ports/${port.id}`, { user: t.alpha });
  assert.equal(res.status, 204, JSON.stringify(res.body));
  assert.ok(t.driver.calls.some((c) => c.method === 'portDeleted' && (c.args[0] as { id: string }).id === port.id), 'portDeleted');
  const deleted = events.find((e) => e.type === 'port.delete.end');
  assert.equal(deleted?.payload.port_id, port.id, 'port.delete.end');
  const again = await t.request('DELETE', `/v2.0/ports/${port.id}`, { user: t.alpha });
  expectNeutronError(again, 404, 'PortNotFound', `Port ${port.id} could not be found.`);
  const reuse = await createPort(t.alpha, { network_id: network.id, fixed_ips: [{ ip_address: '10.0.0.42' }] });
  assert.equal(reuse.status, 201, 'address free again');
  const tags = await t.net.db.selectFrom('tag').selectAll().where('resource_id', '=', port.id).execute();
  assert.equal(tags.length, 0, 'tags removed');
});

test('router and floating IP ports cannot be deleted through the port API (409 ServicePortInUse) while their owner exists', async () => {
  const network = await makeNetwork(t.alpha, { subnets: [{ cidr: '10.40.0.0/24' }] });
  const router = await t.create(t.alpha, 'routers', 'router', { name: 'r' });
  const added = await t.request('PUT', `/v2.0/routers/${router.id}/add_router_interface`, { user: t.alpha, payload: { subnet_id: network.subnets[0] } });
  assert.equal(added.status, 200, JSON.stringify(added.body));
  const portId = added.body.port_id as string;
  const res = await t.request('DELETE', `/v2.0/ports/${portId}`, { user: t.alpha });
  assert.equal(res.status, 409, JSON.stringify(res.body));
  assert.equal(errorType(res), 'ServicePortInUse', 'type');
  assert.equal(res.body.NeutronError.message, `Port ${portId} cannot be deleted directly via the port API: has device owner network:router_interface.`, 'message');
  const admin = await t.request('DELETE', `/v2.0/ports/${portId}`, { user: t.admin });
  assert.equal(admin.status, 409, 'not even an admin');
  const stale = await t.create(t.alpha, 'ports', 'port', { network_id: network.id, device_owner: 'network:router_interface', device_id: newUuid() });
  const staleDelete = await t.request('DELETE', `/v2.0/ports/${stale.id}`, { user: t.alpha });
  assert.equal(staleDelete.status, 204, 'a port of a router that is gone may be deleted');

  const external = await t.create(t.admin, 'networks', 'network', { name: 'ext', 'router:external': true });
  await t.create(t.admin, 'subnets', 'subnet', { network_id: external.id, cidr: '172.30.0.0/24', ip_version: 4 });
  const fip = await t.create(t.alpha, 'floatingips', 'floatingip', { floating_network_id: external.id });
  const fipPort = await t.net.db.selectFrom('floatingip').select('floating_port_id').where('id', '=', fip.id).executeTakeFirstOrThrow();
  const fipDelete = await t.request('DELETE', `/v2.0/ports/${fipPort.floating_port_id}`, { user: t.admin });
  assert.equal(fipDelete.status, 409, JSON.stringify(fipDelete.body));
  assert.equal(errorType(fipDelete), 'ServicePortInUse', 'type');
  const hidden = await t.request('DELETE', `/v2.0/ports/${fipPort.floating_port_id}`, { user: t.alpha });
  assert.equal(hidden.status, 404, "the floating IP's port is not the member's to see");

  // A server port with a floating IP: deleting it disassociates the floating IP.
  await t.request('PUT', `/v2.0/routers/${router.id}`, { user: t.alpha, payload: { router: { external_gateway_info: { network_id: external.id } } } });
  const server = await t.create(t.alpha, 'ports', 'port', { network_id: network.id });
  const associated = await t.request('PUT', `/v2.0/floatingips/${fip.id}`, { user: t.alpha, payload: { floatingip: { port_id: server.id } } });
  assert.equal(associated.status, 200, JSON.stringify(associated.body));
  const gone = await t.request('DELETE', `/v2.0/ports/${server.id}`, { user: t.alpha });
  assert.equal(gone.status, 204, JSON.stringify(gone.body));
  const after = await t.request('GET', `/v2.0/floatingips/${fip.id}`, { user: t.alpha });
  assert.equal(after.body.floatingip.port_id, null, 'disassociated');
  assert.equal(after.body.floatingip.fixed_ip_address, null, 'no fixed address');
  assert.equal(after.body.floatingip.router_id, null, 'no router');
  assert.equal(after.body.floatingip.revision_number, associated.body.floatingip.revision_number + 1, 'revision bumped once');
});

test('the port quota: 409 OverQuota, counted inside the transaction, a refused bulk leaves nothing', async () => {
  const network = await makeNetwork(t.beta);
  const used = await t.net.db.selectFrom('port').select((eb) => eb.fn.countAll<number>().as('n')).where('project_id', '=', t.beta.projectId).executeTakeFirstOrThrow();
  await t.net.db.insertInto('quota').values({ project_id: t.beta.projectId, resource: 'port', hard_limit: Number(used.n) + 2 }).execute();
  try {
    const bulk = await t.request('POST', '/v2.0/ports', { user: t.beta, payload: { ports: [{ network_id: network.id }, { network_id: network.id }, { network_id: network.id }] } });
    assert.equal(bulk.status, 409, JSON.stringify(bulk.body));
    assert.equal(errorType(bulk), 'OverQuota', 'type');
    assert.equal(bulk.body.NeutronError.message, "Quota exceeded for resources: ['port'].", 'message');
    assert.equal(await portCount(network.id), 0, 'the bulk made nothing');
    const results = await Promise.all([0, 1, 2, 3].map(() => createPort(t.beta, { network_id: network.id })));
    assert.equal(results.filter((r) => r.status === 201).length, 2, 'two fit');
    assert.ok(results.filter((r) => r.status !== 201).every((r) => r.status === 409 && errorType(r) === 'OverQuota'), 'the rest are OverQuota');
    assert.equal(await portCount(network.id), 2, 'two rows');
  } finally {
    await t.net.db.deleteFrom('quota').where('project_id', '=', t.beta.projectId).execute();
  }
});

test('bulk create: all ports or none', async () => {
  const n1 = await makeNetwork(t.alpha);
  const n2 = await makeNetwork(t.alpha, { subnets: [{ cidr: '10.30.0.0/24' }] });
  const ok = await t.request('POST', '/v2.0/ports', { user: t.alpha, payload: { ports: [{ network_id: n1.id, name: 'a' }, { network_id: n2.id, name: 'b' }] } });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  assert.deepEqual(ok.body.ports.map((p: { name: string; network_id: string }) => [p.name, p.network_id]), [['a', n1.id], ['b', n2.id]], 'both, in order');
  assert.equal(events.filter((e) => e.type === 'port.create.end').length, 2, 'a notification each');
  for (const port of ok.body.ports as { id: string }[]) {
    assert.equal(t.driver.calls.filter((c) => c.method === 'portUpdated' && (c.args[0] as { id: string }).id === port.id).length, 1, 'the driver heard of each port once');
  }
  const bad = await t.request('POST', '/v2.0/ports', { user: t.alpha, payload: { ports: [{ network_id: n1.id, name: 'c' }, { network_id: n2.id, fixed_ips: [{ ip_address: '10.0.0.5' }] }] } });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.equal(await portCount(n1.id), 1, 'the first of a failed bulk was not kept');
  const macs = await t.request('POST', '/v2.0/ports', { user: t.alpha, payload: { ports: [{ network_id: n1.id, mac_address: 'fa:16:3e:33:33:33' }, { network_id: n1.id, mac_address: 'fa:16:3e:33:33:33' }] } });
  assert.equal(macs.status, 409, 'duplicate MAC inside one bulk');
  assert.equal(await portCount(n1.id), 1, 'nothing kept');
  const empty = await t.request('POST', '/v2.0/ports', { user: t.alpha, payload: { ports: [] } });
  assert.equal(empty.status, 400, 'empty bulk');
});

test('tags on create are shown and listed', async () => {
  const network = await makeNetwork(t.alpha);
  const res = await createPort(t.alpha, { network_id: network.id, tags: ['b', 'a', 'a'] });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.deepEqual(res.body.port.tags, ['a', 'b'], 'sorted, once');
  const bad = await createPort(t.alpha, { network_id: network.id, tags: [''] });
  assert.equal(bad.status, 400, 'empty tag');
});

test('concurrent creation on one /24: 253 distinct addresses, the rest 409 IpAddressGenerationFailure, no strays', async () => {
  const network = await makeNetwork(t.admin, { subnets: [{ cidr: '10.99.0.0/24' }] });
  await t.net.db.insertInto('quota').values({ project_id: t.admin.projectId, resource: 'port', hard_limit: -1 }).execute();
  const total = 260;
  const concurrency = 200;
  const results: { status: number; body: Record<string, any> }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next++;
      results.push(await createPort(t.admin, { network_id: network.id }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const created = results.filter((r) => r.status === 201);
  const failed = results.filter((r) => r.status !== 201);
  assert.equal(results.length, total, 'every request answered');
  assert.equal(created.length, 253, `253 created (statuses: ${JSON.stringify(failed.slice(0, 3).map((r) => r.body))})`);
  const addresses = new Set(created.map((r) => r.body.port.fixed_ips[0].ip_address as string));
  assert.equal(addresses.size, 253, 'all distinct');
  assert.ok(!addresses.has('10.99.0.1') && !addresses.has('10.99.0.0') && !addresses.has('10.99.0.255'), 'gateway, network and broadcast never handed out');
  assert.equal(failed.length, total - 253, 'the rest failed');
  for (const r of failed) {
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(errorType(r), 'IpAddressGenerationFailure', 'type');
  }
  assert.equal(await portCount(network.id), created.length, 'as many rows as 201s');
  const allocations = await t.net.db.selectFrom('ip_allocation').select((eb) => eb.fn.countAll<number>().as('n')).where('network_id', '=', network.id).executeTakeFirstOrThrow();
  assert.equal(Number(allocations.n), 253, 'as many addresses as ports');
  const list = await t.request('GET', `/v2.0/ports?network_id=${network.id}&fields=id`, { user: t.admin });
  assert.equal(list.body.ports.length, 253, 'listed');
  await t.net.db.deleteFrom('quota').where('project_id', '=', t.admin.projectId).execute();
});

test('lists of 10,000 ports stay fast, narrowed in SQL by network, device and project', async () => {
  const network = await makeNetwork(t.beta, { subnets: [] });
  const now = isoNow();
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  const rows = Array.from({ length: 10_000 }, (_, i) => ({
    id: newUuid(),
    project_id: t.beta.projectId,
    name: `bulk-${i}`,
    description: '',
    created_at: now,
    updated_at: now,
    revision_number: 1,
    network_id: network.id,
    mac_address: `fa:16:3e:77:${hex(i >> 8)}:${hex(i & 255)}`,
    admin_state_up: 1,
    status: 'DOWN',
    device_id: `bulk-device-${i}`,
    device_owner: 'compute:nova',
    binding_host_id: '',
    binding_vif_type: 'unbound',
    binding_vif_details: '{}',
    binding_vnic_type: 'normal',
    binding_profile: '{}',
    port_security_enabled: 1,
    allowed_address_pairs: '[]',
    extra_dhcp_opts: '[]',
    dns_name: '',
  }));
  for (let i = 0; i < rows.length; i += 500) await t.net.db.insertInto('port').values(rows.slice(i, i + 500)).execute();
  try {
    let started = Date.now();
    const one = await t.request('GET', '/v2.0/ports?device_id=bulk-device-4321', { user: t.beta });
    const narrowMs = Date.now() - started;
    assert.deepEqual(one.body.ports.map((p: { name: string }) => p.name), ['bulk-4321'], 'the one device');
    assert.ok(narrowMs < 500, `a device_id list reads one row, not 10,000 (${narrowMs} ms)`);
    const alpha = await t.request('GET', `/v2.0/ports?network_id=${network.id}`, { user: t.alpha });
    assert.equal(alpha.body.ports.length, 0, "another project's network lists nothing");
    started = Date.now();
    const all = await t.request('GET', `/v2.0/ports?network_id=${network.id}`, { user: t.beta });
    const allMs = Date.now() - started;
    assert.equal(all.body.ports.length, 10_000, 'all of them');
    assert.ok(allMs < 5000, `10,000 ports listed in ${allMs} ms`);
    const page = await t.request('GET', `/v2.0/ports?network_id=${network.id}&limit=100&sort_key=name&sort_dir=desc`, { user: t.beta });
    const byName = (all.body.ports as { id: string; name: string }[]).sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
    assert.deepEqual(page.body.ports.map((p: { id: string }) => p.id), byName.slice(0, 100).map((p) => p.id), 'a page of 100, by name descending');
    assert.deepEqual(page.body.ports_links.map((l: { rel: string }) => l.rel), ['next'], 'with a next link');
  } finally {
    await t.net.db.deleteFrom('port').where('network_id', '=', network.id).execute();
  }
});
