import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { newUuid } from '../common.js';
import { createTestNetwork, expectNeutronError, type TestNetwork, type TestUser } from '../testing.js';

// Facts from neutron-lib's api-ref (subnets.inc), Tempest's test_networks.py
// and test_dhcp_ipv6.py, and Neutron's db_base_plugin_v2 / ipam_backend_mixin
// validation (error types and messages).

let t: TestNetwork;
let notifications: ReturnType<TestNetwork['recordNotifications']>;

before(async () => {
  t = await createTestNetwork();
  notifications = t.recordNotifications();
});

after(async () => {
  await t.close();
});

beforeEach(() => {
  notifications.clear();
});

async function network(user: TestUser = t.alpha, body: Record<string, unknown> = {}): Promise<string> {
  return (await t.create(user, 'networks', 'network', body)).id as string;
}

function post(subnet: Record<string, unknown>, user: TestUser = t.alpha) {
  return t.request('POST', '/v2.0/subnets', { user, payload: { subnet } });
}

/** A port row holding `ip` on the subnet. */
async function insertPort(networkId: string, deviceOwner: string, subnetId: string, ip: string): Promise<string> {
  return (await t.insertPort({ network_id: networkId, device_owner: deviceOwner }, [{ subnet_id: subnetId, ip_address: ip }])).id;
}

test('an IPv4 subnet gets Neutron defaults; the network lists it; the driver hears of it', async () => {
  const net = await network();
  const res = await post({ network_id: net, ip_version: 4, cidr: '10.0.0.0/24', name: 's1' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const s = res.body.subnet;
  assert.equal(s.cidr, '10.0.0.0/24', 'cidr');
  assert.equal(s.gateway_ip, '10.0.0.1', 'gateway is the first host');
  assert.deepEqual(s.allocation_pools, [{ start: '10.0.0.2', end: '10.0.0.254' }], 'pool without network, gateway, broadcast');
  assert.equal(s.enable_dhcp, true, 'DHCP on by default');
  assert.deepEqual(s.dns_nameservers, [], 'no name servers');
  assert.deepEqual(s.host_routes, [], 'no routes');
  assert.equal(s.ipv6_ra_mode, null, 'no RA mode');
  assert.equal(s.subnetpool_id, null, 'no pool');
  assert.deepEqual(s.service_types, [], 'no service types');
  assert.equal(s.project_id, t.alpha.projectId, 'owner');
  assert.ok(!('segment_id' in s), 'segment_id is for admins (policy get_subnet:segment_id)');
  const admin = await t.request('GET', `/v2.0/subnets/${s.id}`, { user: t.admin });
  assert.equal(admin.body.subnet.segment_id, null, 'admins see segment_id null');
  const shown = await t.request('GET', `/v2.0/networks/${net}`, { user: t.alpha });
  assert.deepEqual(shown.body.network.subnets, [s.id], 'network lists its subnet');
  assert.ok(notifications.events.some((e) => e.type === 'subnet.create.end' && e.payload.subnet.id === s.id), 'subnet.create.end');
  assert.ok(t.driver.calls.some((c) => c.method === 'networkUpdated' && (c.args[0] as { id: string }).id === net), 'networkUpdated');
  const fields = await t.request('GET', `/v2.0/subnets/${s.id}?fields=id&fields=network_id`, { user: t.alpha });
  assert.deepEqual(Object.keys(fields.body.subnet).sort(), ['id', 'network_id'], 'fields');
});

test('CIDR rules: host bits are cleared, bad CIDRs and overlaps are 400', async () => {
  const net = await network();
  const host = await post({ network_id: net, ip_version: 4, cidr: '10.1.0.5/24' });
  assert.equal(host.status, 201, JSON.stringify(host.body));
  assert.equal(host.body.subnet.cidr, '10.1.0.0/24', 'Neutron turns the CIDR into a proper subnet');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.1.0.128/25' }), 400, 'InvalidInput', `Invalid input for operation: Requested subnet with cidr: 10.1.0.128/25 for network: ${net} overlaps with another subnet.`);
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.1.0.0/16' }), 400, 'InvalidInput');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: 'banana' }), 400, 'HTTPBadRequest', "Invalid input for cidr. Reason: 'banana' is not a valid IP subnet.");
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.2.0.0' }), 400, 'HTTPBadRequest', "Invalid input for cidr. Reason: '10.2.0.0' isn't a recognized IP subnet cidr, '10.2.0.0/32' is recommended.");
  expectNeutronError(await post({ network_id: net, ip_version: 6, cidr: '10.3.0.0/24' }), 400, 'InvalidInput', "Invalid input for operation: cidr '10.3.0.0/24' does not match the ip_version '6'.");
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '0.0.0.0/0' }), 400, 'InvalidInput', 'Invalid input for operation: 0 is not allowed as CIDR prefix length.');
  expectNeutronError(await post({ network_id: net, ip_version: 5, cidr: '10.4.0.0/24' }), 400, 'HTTPBadRequest', 'Invalid input for ip_version. Reason: 5 is not in [4, 6].');
  expectNeutronError(await post({ network_id: net, cidr: '10.4.0.0/24' }), 400, 'HTTPBadRequest', "Failed to parse request. Required attribute 'ip_version' not specified");
  expectNeutronError(await post({ network_id: net, ip_version: 4 }), 400, 'BadRequest', 'Bad subnets request: a subnetpool must be specified in the absence of a cidr.');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.5.0.0/24', prefixlen: 24 }), 400, 'BadRequest', 'Bad subnets request: cidr and prefixlen must not be supplied together.');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.6.0.0/31' }), 400, 'InvalidInput', 'Invalid input for operation: Subnet has a prefix length that is incompatible with DHCP service enabled.');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '224.0.0.0/24' }), 400, 'InvalidInput', 'Invalid input for operation: Multicast IP subnet is not supported if enable_dhcp is True.');
  const noDhcp = await post({ network_id: net, ip_version: 4, cidr: '10.6.0.0/31', enable_dhcp: false });
  assert.equal(noDhcp.status, 201, 'a /31 without DHCP is fine');
  assert.deepEqual(noDhcp.body.subnet.allocation_pools, [{ start: '10.6.0.0', end: '10.6.0.0' }], 'a /31 pool is both addresses minus the gateway');
  const other = await network();
  assert.equal((await post({ network_id: other, ip_version: 4, cidr: '10.1.0.0/24' })).status, 201, 'overlap across networks is fine');
});

test('gateway rules', async () => {
  const net = await network();
  const none = await post({ network_id: net, ip_version: 4, cidr: '10.10.0.0/24', gateway_ip: null });
  assert.equal(none.status, 201, JSON.stringify(none.body));
  assert.equal(none.body.subnet.gateway_ip, null, 'no gateway');
  assert.deepEqual(none.body.subnet.allocation_pools, [{ start: '10.10.0.1', end: '10.10.0.254' }], 'the pool takes the whole range');
  const custom = await post({ network_id: net, ip_version: 4, cidr: '10.11.0.0/24', gateway_ip: '10.11.0.254' });
  assert.deepEqual(custom.body.subnet.allocation_pools, [{ start: '10.11.0.1', end: '10.11.0.253' }], 'pool avoids the gateway');
  const middle = await post({ network_id: net, ip_version: 4, cidr: '10.12.0.0/24', gateway_ip: '10.12.0.100' });
  assert.deepEqual(middle.body.subnet.allocation_pools, [{ start: '10.12.0.1', end: '10.12.0.99' }, { start: '10.12.0.101', end: '10.12.0.254' }], 'pools split around the gateway');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.13.0.0/24', gateway_ip: '10.13.0.0' }), 400, 'InvalidInput', 'Invalid input for operation: Gateway is not valid on subnet.');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.13.0.0/24', gateway_ip: '10.13.0.255' }), 400, 'InvalidInput', 'Invalid input for operation: Gateway is not valid on subnet.');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.13.0.0/24', gateway_ip: 'fe80::1' }), 400, 'InvalidInput', "Invalid input for operation: gateway_ip 'fe80::1' does not match the ip_version '4'.");
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.13.0.0/24', gateway_ip: 'gw' }), 400, 'HTTPBadRequest', "Invalid input for gateway_ip. Reason: 'gw' is not a valid IP address.");
  expectNeutronError(
    await post({ network_id: net, ip_version: 4, cidr: '10.13.0.0/24', gateway_ip: '10.13.0.5', allocation_pools: [{ start: '10.13.0.2', end: '10.13.0.10' }] }),
    409,
    'GatewayConflictWithAllocationPools',
    'Gateway ip 10.13.0.5 conflicts with allocation pool 10.13.0.2-10.13.0.10.',
  );
  const outside = await post({ network_id: net, ip_version: 4, cidr: '10.14.0.0/24', gateway_ip: '10.99.0.1' });
  assert.equal(outside.status, 201, 'Neutron allows an on-link gateway outside the CIDR');
});

test('allocation pool rules', async () => {
  const net = await network();
  const ok = await post({ network_id: net, ip_version: 4, cidr: '10.20.0.0/24', allocation_pools: [{ start: '10.20.0.10', end: '10.20.0.20' }, { start: '10.20.0.30', end: '10.20.0.40' }] });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  assert.deepEqual(ok.body.subnet.allocation_pools, [{ start: '10.20.0.10', end: '10.20.0.20' }, { start: '10.20.0.30', end: '10.20.0.40' }], 'pools kept');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.21.0.0/24', allocation_pools: [{ start: '10.21.0.10', end: '10.21.1.5' }] }), 400, 'OutOfBoundsAllocationPool', 'The allocation pool 10.21.0.10-10.21.1.5 spans beyond the subnet cidr 10.21.0.0/24.');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.21.0.0/24', allocation_pools: [{ start: '10.21.0.0', end: '10.21.0.5' }] }), 400, 'OutOfBoundsAllocationPool');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.21.0.0/24', allocation_pools: [{ start: '10.21.0.20', end: '10.21.0.10' }] }), 400, 'InvalidAllocationPool', "The allocation pool {'start': '10.21.0.20', 'end': '10.21.0.10'} is not valid.");
  expectNeutronError(
    await post({ network_id: net, ip_version: 4, cidr: '10.21.0.0/24', allocation_pools: [{ start: '10.21.0.10', end: '10.21.0.30' }, { start: '10.21.0.20', end: '10.21.0.40' }] }),
    409,
    'OverlappingAllocationPools',
    'Found overlapping allocation pools: 10.21.0.10-10.21.0.30 10.21.0.20-10.21.0.40 for subnet 10.21.0.0/24.',
  );
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.21.0.0/24', allocation_pools: [{ start: '10.21.0.10' }] }), 400, 'HTTPBadRequest');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.21.0.0/24', allocation_pools: [{ start: 'x', end: '10.21.0.9' }] }), 400, 'HTTPBadRequest');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.21.0.0/24', allocation_pools: [{ start: '2001:db8::1', end: '2001:db8::9' }] }), 400, 'InvalidAllocationPool');
});

test('DNS name servers and host routes', async () => {
  const net = await network();
  const ok = await post({ network_id: net, ip_version: 4, cidr: '10.30.0.0/24', dns_nameservers: ['8.8.4.4', '8.8.8.8'], host_routes: [{ destination: '10.20.0.0/32', nexthop: '10.100.1.1' }] });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  assert.deepEqual(ok.body.subnet.dns_nameservers, ['8.8.4.4', '8.8.8.8'], 'dns kept in order');
  assert.deepEqual(ok.body.subnet.host_routes, [{ destination: '10.20.0.0/32', nexthop: '10.100.1.1' }], 'routes kept');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.31.0.0/24', dns_nameservers: ['8.8.8.8', '8.8.8.8'] }), 400, 'HTTPBadRequest', "Invalid input for dns_nameservers. Reason: Duplicate nameserver '8.8.8.8'.");
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.31.0.0/24', dns_nameservers: ['dns.example'] }), 400, 'HTTPBadRequest', "Invalid input for dns_nameservers. Reason: 'dns.example' is not a valid nameserver. 'dns.example' is not a valid IP address.");
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.31.0.0/24', dns_nameservers: ['2001:4860:4860::8888'] }), 400, 'InvalidInput', "Invalid input for operation: dns_nameserver '2001:4860:4860::8888' does not match the ip_version '4'.");
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.31.0.0/24', dns_nameservers: ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4', '1.1.1.5', '1.1.1.6'] }), 400, 'DNSNameServersExhausted');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.31.0.0/24', host_routes: [{ destination: '10.0.0.0/8', nexthop: 'nope' }] }), 400, 'HTTPBadRequest');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.31.0.0/24', host_routes: [{ destination: '10.0.0.1/8', nexthop: '10.31.0.9' }] }), 400, 'HTTPBadRequest', "Invalid input for host_routes. Reason: '10.0.0.1/8' is not a recognized CIDR, '10.0.0.0/8' is recommended.");
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.31.0.0/24', host_routes: [{ destination: '2001::/64', nexthop: '10.31.0.9' }] }), 400, 'InvalidInput');
});

test('IPv6: defaults, address modes and their rules', async () => {
  const net = await network();
  const v6 = await post({ network_id: net, ip_version: 6, cidr: '2001:db8:0:1::/64' });
  assert.equal(v6.status, 201, JSON.stringify(v6.body));
  assert.equal(v6.body.subnet.gateway_ip, '2001:db8:0:1::1', 'IPv6 gateway is the first host');
  assert.deepEqual(v6.body.subnet.allocation_pools, [{ start: '2001:db8:0:1::2', end: '2001:db8:0:1:ffff:ffff:ffff:ffff' }], 'IPv6 pool');
  const canonical = await post({ network_id: net, ip_version: 6, cidr: '2001:DB8:0:2:0:0:0:0/64' });
  assert.equal(canonical.body.subnet.cidr, '2001:db8:0:2::/64', 'IPv6 CIDR in canonical form');
  for (const [i, mode] of ['slaac', 'dhcpv6-stateful', 'dhcpv6-stateless'].entries()) {
    const res = await post({ network_id: net, ip_version: 6, cidr: `2001:db8:${i + 10}::/64`, ipv6_ra_mode: mode, ipv6_address_mode: mode });
    assert.equal(res.status, 201, `${mode}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.subnet.ipv6_address_mode, mode, 'mode kept');
  }
  const combos = [
    ['dhcpv6-stateless', 'dhcpv6-stateful'],
    ['dhcpv6-stateless', 'slaac'],
    ['slaac', 'dhcpv6-stateful'],
    ['dhcpv6-stateful', 'dhcpv6-stateless'],
    ['dhcpv6-stateful', 'slaac'],
    ['slaac', 'dhcpv6-stateless'],
  ];
  for (const [ra, address] of combos) {
    expectNeutronError(
      await post({ network_id: net, ip_version: 6, cidr: '2001:db8:99::/64', ipv6_ra_mode: ra, ipv6_address_mode: address }),
      400,
      'InvalidInput',
      `Invalid input for operation: ipv6_ra_mode set to '${ra}' with ipv6_address_mode set to '${address}' is not valid. If both attributes are set, they must be the same value.`,
    );
  }
  expectNeutronError(await post({ network_id: net, ip_version: 6, cidr: '2001:db8:98::/80', ipv6_address_mode: 'slaac' }), 400, 'InvalidInput', 'Invalid input for operation: Invalid CIDR 2001:db8:98::/80 for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64.');
  expectNeutronError(await post({ network_id: net, ip_version: 6, cidr: '2001:db8:97::/64', ipv6_address_mode: 'slaac', enable_dhcp: false }), 400, 'InvalidInput', 'Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False.');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.40.0.0/24', ipv6_ra_mode: 'slaac' }), 400, 'InvalidInput', 'Invalid input for operation: ipv6_ra_mode is not valid when ip_version is 4.');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.40.0.0/24', ipv6_address_mode: 'slaac' }), 400, 'InvalidInput', 'Invalid input for operation: ipv6_address_mode is not valid when ip_version is 4.');
  expectNeutronError(await post({ network_id: net, ip_version: 6, cidr: '2001:db8:96::/64', ipv6_address_mode: 'auto' }), 400, 'HTTPBadRequest');
  const stateless = await post({ network_id: net, ip_version: 6, cidr: '2001:db8:95::/64', ipv6_address_mode: 'dhcpv6-stateless' });
  assert.equal(stateless.status, 201, 'address mode alone is fine');
  const disable = await t.request('PUT', `/v2.0/subnets/${stateless.body.subnet.id}`, { user: t.alpha, payload: { subnet: { enable_dhcp: false } } });
  expectNeutronError(disable, 400, 'InvalidInput', 'Invalid input for operation: Cannot disable enable_dhcp with ipv6 attributes set.');
});

test('subnets on other projects’ networks: private is 404 NetworkNotFound, external 404, shared allowed', async () => {
  const alphaNet = await network(t.alpha);
  expectNeutronError(await post({ network_id: alphaNet, ip_version: 4, cidr: '10.60.0.0/24' }, t.beta), 404, 'NetworkNotFound', `Network ${alphaNet} could not be found.`);
  const ext = await network(t.admin, { 'router:external': true });
  expectNeutronError(await post({ network_id: ext, ip_version: 4, cidr: '10.61.0.0/24' }, t.beta), 404, 'HTTPNotFound');
  const shared = await network(t.admin, { shared: true });
  const res = await post({ network_id: shared, ip_version: 4, cidr: '10.62.0.0/24' }, t.beta);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  expectNeutronError(await post({ network_id: newUuid(), ip_version: 4, cidr: '10.63.0.0/24' }), 404, 'NetworkNotFound');
  expectNeutronError(await post({ network_id: alphaNet, ip_version: 4, cidr: '10.64.0.0/24' }, t.alphaReader), 403, 'PolicyNotAuthorized');
  const svc = await post({ network_id: alphaNet, ip_version: 4, cidr: '10.65.0.0/24', service_types: ['compute:nova'] });
  expectNeutronError(svc, 403, 'PolicyNotAuthorized');
  const adminSvc = await post({ network_id: alphaNet, ip_version: 4, cidr: '10.65.0.0/24', service_types: ['compute:nova'] }, t.admin);
  assert.equal(adminSvc.status, 201, JSON.stringify(adminSvc.body));
  assert.deepEqual(adminSvc.body.subnet.service_types, ['compute:nova'], 'service types');
});

test('visibility follows the network: owner, admin, shared; others 404', async () => {
  const alphaNet = await network(t.alpha);
  const own = await t.create(t.alpha, 'subnets', 'subnet', { network_id: alphaNet, ip_version: 4, cidr: '10.70.0.0/24' });
  const shared = await network(t.admin, { shared: true });
  const onShared = await t.create(t.admin, 'subnets', 'subnet', { network_id: shared, ip_version: 4, cidr: '10.71.0.0/24' });
  const ext = await network(t.admin, { 'router:external': true });
  const onExt = await t.create(t.admin, 'subnets', 'subnet', { network_id: ext, ip_version: 4, cidr: '10.72.0.0/24' });
  expectNeutronError(await t.request('GET', `/v2.0/subnets/${own.id}`, { user: t.beta }), 404, 'SubnetNotFound', `Subnet ${own.id} could not be found.`);
  assert.equal((await t.request('GET', `/v2.0/subnets/${onShared.id}`, { user: t.beta })).status, 200, 'subnet of a shared network is visible');
  expectNeutronError(await t.request('GET', `/v2.0/subnets/${onExt.id}`, { user: t.beta }), 404, 'SubnetNotFound'); // a non-shared external network's subnet
  const list = (await t.request('GET', '/v2.0/subnets', { user: t.beta })).body.subnets.map((s: { id: string }) => s.id);
  assert.ok(!list.includes(own.id) && list.includes(onShared.id) && !list.includes(onExt.id), 'list follows the same rules');
  expectNeutronError(await t.request('PUT', `/v2.0/subnets/${own.id}`, { user: t.beta, payload: { subnet: { name: 'x' } } }), 404, 'SubnetNotFound');
  expectNeutronError(await t.request('DELETE', `/v2.0/subnets/${own.id}`, { user: t.beta }), 404, 'SubnetNotFound');
  expectNeutronError(await t.request('PUT', `/v2.0/subnets/${onShared.id}`, { user: t.beta, payload: { subnet: { name: 'x' } } }), 403, 'PolicyNotAuthorized'); // visible, but not beta's
  const byNet = await t.request('GET', `/v2.0/subnets?network_id=${alphaNet}`, { user: t.alpha });
  assert.deepEqual(byNet.body.subnets.map((s: { id: string }) => s.id), [own.id], 'filter by network');
  const sharedFilter = await t.request('GET', '/v2.0/subnets?shared=true', { user: t.beta });
  assert.ok(sharedFilter.body.subnets.some((s: { id: string }) => s.id === onShared.id), 'shared filter');
});

test('update: allowed attributes, revision, read-only cidr, pool and gateway checks', async () => {
  const net = await network();
  const s = await t.create(t.alpha, 'subnets', 'subnet', { network_id: net, ip_version: 4, cidr: '10.80.0.0/24', allocation_pools: [{ start: '10.80.0.10', end: '10.80.0.20' }] });
  const res = await t.request('PUT', `/v2.0/subnets/${s.id}`, {
    user: t.alpha,
    payload: { subnet: { name: 'new', gateway_ip: '10.80.0.2', dns_nameservers: ['7.8.8.8'], host_routes: [{ destination: '10.20.0.0/32', nexthop: '10.100.1.2' }], enable_dhcp: true } },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.subnet.name, 'new', 'name');
  assert.equal(res.body.subnet.gateway_ip, '10.80.0.2', 'gateway');
  assert.deepEqual(res.body.subnet.dns_nameservers, ['7.8.8.8'], 'dns');
  assert.equal(res.body.subnet.revision_number, 1, 'revision bumped');
  assert.deepEqual(res.body.subnet.allocation_pools, [{ start: '10.80.0.10', end: '10.80.0.20' }], 'pools unchanged');
  assert.ok(notifications.events.some((e) => e.type === 'subnet.update.end'), 'subnet.update.end');
  expectNeutronError(await t.request('PUT', `/v2.0/subnets/${s.id}`, { user: t.alpha, payload: { subnet: { cidr: '10.81.0.0/24' } } }), 400, 'HTTPBadRequest');
  expectNeutronError(await t.request('PUT', `/v2.0/subnets/${s.id}`, { user: t.alpha, payload: { subnet: { gateway_ip: '10.80.0.15' } } }), 409, 'GatewayConflictWithAllocationPools');
  expectNeutronError(await t.request('PUT', `/v2.0/subnets/${s.id}`, { user: t.alpha, payload: { subnet: { allocation_pools: [{ start: '10.80.0.1', end: '10.80.0.5' }] } } }), 409, 'GatewayConflictWithAllocationPools');
  const pools = await t.request('PUT', `/v2.0/subnets/${s.id}`, { user: t.alpha, payload: { subnet: { allocation_pools: [{ start: '10.80.0.100', end: '10.80.0.200' }] } } });
  assert.equal(pools.status, 200, JSON.stringify(pools.body));
  assert.deepEqual(pools.body.subnet.allocation_pools, [{ start: '10.80.0.100', end: '10.80.0.200' }], 'pools replaced');
  const noGw = await t.request('PUT', `/v2.0/subnets/${s.id}`, { user: t.alpha, payload: { subnet: { gateway_ip: null } } });
  assert.equal(noGw.body.subnet.gateway_ip, null, 'gateway removed');
  await insertPort(net, 'network:router_interface', s.id, '10.80.0.3');
  assert.equal((await t.request('PUT', `/v2.0/subnets/${s.id}`, { user: t.alpha, payload: { subnet: { gateway_ip: '10.80.0.3' } } })).status, 200, 'the router port’s address becomes the gateway');
  expectNeutronError(await t.request('PUT', `/v2.0/subnets/${s.id}`, { user: t.alpha, payload: { subnet: { gateway_ip: '10.80.0.4' } } }), 409, 'GatewayIpInUse');
});

test('DELETE: 409 SubnetInUse with user or router ports; DHCP addresses go; SLAAC subnets go with their addresses', async () => {
  const net = await network();
  const s = await t.create(t.alpha, 'subnets', 'subnet', { network_id: net, ip_version: 4, cidr: '10.90.0.0/24' });
  const dhcp = await insertPort(net, 'network:dhcp', s.id, '10.90.0.2');
  const vm = await insertPort(net, 'compute:nova', s.id, '10.90.0.3');
  expectNeutronError(await t.request('DELETE', `/v2.0/subnets/${s.id}`, { user: t.alpha }), 409, 'SubnetInUse', `Unable to complete operation on subnet ${s.id}: One or more ports have an IP allocation from this subnet.`);
  await t.net.db.deleteFrom('port').where('id', '=', vm).execute();
  const res = await t.request('DELETE', `/v2.0/subnets/${s.id}`, { user: t.alpha });
  assert.equal(res.status, 204, JSON.stringify(res.body));
  assert.equal((await t.net.db.selectFrom('ip_allocation').selectAll().where('port_id', '=', dhcp).execute()).length, 0, 'the DHCP port lost its address');
  assert.ok(notifications.events.some((e) => e.type === 'subnet.delete.end' && e.payload.subnet_id === s.id), 'subnet.delete.end');
  const slaac = await t.create(t.alpha, 'subnets', 'subnet', { network_id: net, ip_version: 6, cidr: '2001:db8:90::/64', ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' });
  await insertPort(net, 'compute:nova', slaac.id, '2001:db8:90::f816:3eff:fe00:1');
  assert.equal((await t.request('DELETE', `/v2.0/subnets/${slaac.id}`, { user: t.alpha })).status, 204, 'SLAAC subnet deletable with user ports');
  const routed = await t.create(t.alpha, 'subnets', 'subnet', { network_id: net, ip_version: 4, cidr: '10.91.0.0/24' });
  await insertPort(net, 'network:router_interface', routed.id, '10.91.0.1');
  expectNeutronError(await t.request('DELETE', `/v2.0/subnets/${routed.id}`, { user: t.alpha }), 409, 'SubnetInUse');
  expectNeutronError(await t.request('DELETE', `/v2.0/subnets/${newUuid()}`, { user: t.alpha }), 404, 'SubnetNotFound');
});

test('bulk create, and 50 concurrent creates with overlapping CIDRs: exactly one wins per CIDR', async () => {
  const n1 = await network();
  const n2 = await network();
  const bulk = await t.request('POST', '/v2.0/subnets', { user: t.alpha, payload: { subnets: [{ network_id: n1, ip_version: 4, cidr: '10.100.0.0/24', name: 'a' }, { network_id: n2, ip_version: 4, cidr: '10.100.0.0/24' }] } });
  assert.equal(bulk.status, 201, JSON.stringify(bulk.body));
  assert.equal(bulk.body.subnets.length, 2, 'two subnets');
  const badBulk = await t.request('POST', '/v2.0/subnets', { user: t.alpha, payload: { subnets: [{ network_id: n1, ip_version: 4, cidr: '10.101.0.0/24' }, { network_id: n1, ip_version: 4, cidr: '10.101.0.0/25' }] } });
  expectNeutronError(badBulk, 400, 'InvalidInput'); // overlap inside a bulk
  assert.equal((await t.request('GET', `/v2.0/subnets?cidr=10.101.0.0/24`, { user: t.alpha })).body.subnets.length, 0, 'bulk is all or nothing');

  const net = await network();
  const cidrs = Array.from({ length: 10 }, (_, i) => `10.200.${i}.0/24`);
  const requests = Array.from({ length: 50 }, (_, i) => post({ network_id: net, ip_version: 4, cidr: cidrs[i % 10] }));
  // Overlapping supernets race too: at most one of each may win, and only where nothing smaller did.
  const replies = await Promise.all(requests);
  const won = replies.filter((r) => r.status === 201);
  const lost = replies.filter((r) => r.status !== 201);
  assert.ok(lost.every((r) => r.status === 400 && r.body.NeutronError.type === 'InvalidInput'), lost.map((r) => JSON.stringify(r.body)).join('\n'));
  assert.deepEqual(won.map((r) => r.body.subnet.cidr).sort(), [...cidrs].sort(), 'exactly one subnet per CIDR');
  const rows = await t.net.db.selectFrom('subnet').select('cidr').where('network_id', '=', net).execute();
  assert.equal(rows.length, 10, 'ten rows');
});

test('quota: subnet quota refuses with 409 OverQuota', async () => {
  const used = (await t.net.db.selectFrom('subnet').select('id').where('project_id', '=', t.beta.projectId).execute()).length;
  await t.net.db.insertInto('quota').values({ project_id: t.beta.projectId, resource: 'subnet', hard_limit: used + 1 }).execute();
  const net = await network(t.beta);
  assert.equal((await post({ network_id: net, ip_version: 4, cidr: '10.110.0.0/24' }, t.beta)).status, 201, 'first fits');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.111.0.0/24' }, t.beta), 409, 'OverQuota', "Quota exceeded for resources: ['subnet'].");
  await t.net.db.deleteFrom('quota').where('project_id', '=', t.beta.projectId).execute();
});

test('bad input is 400: unknown attributes, bad ids, bad body', async () => {
  const net = await network();
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.120.0.0/24', bogus: 1 }), 400, 'HTTPBadRequest');
  expectNeutronError(await post({ network_id: 'not-a-uuid', ip_version: 4, cidr: '10.120.0.0/24' }), 400, 'HTTPBadRequest');
  expectNeutronError(await post({ ip_version: 4, cidr: '10.120.0.0/24' }), 400, 'HTTPBadRequest');
  expectNeutronError(await post({ network_id: net, ip_version: 4, cidr: '10.120.0.0/24', enable_dhcp: 'perhaps' }), 400, 'HTTPBadRequest');
  const res = await t.request('POST', '/v2.0/subnets', { user: t.alpha, payload: { subnet: 'x' } });
  expectNeutronError(res, 400, 'HTTPBadRequest'); // the body is not a mapping
  assert.equal((await t.request('GET', `/v2.0/subnets?network_id=${net}`, { user: t.alpha })).body.subnets.length, 0, 'nothing created');
});
