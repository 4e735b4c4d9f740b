import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newUuid } from '../common.js';
import { createTestNetwork, expectNeutronError, type TestNetwork, type TestUser } from '../testing.js';

// Facts from neutron-lib's api-ref (subnetpools.inc), Tempest's
// test_subnetpools_extensions.py, and Neutron's SubnetPoolReader and
// SubnetAllocator (defaults, bounds, errors).

let t: TestNetwork;

before(async () => {
  t = await createTestNetwork();
});

after(async () => {
  await t.close();
});

function postPool(subnetpool: Record<string, unknown>, user: TestUser = t.alpha) {
  return t.request('POST', '/v2.0/subnetpools', { user, payload: { subnetpool } });
}

function postSubnet(subnet: Record<string, unknown>, user: TestUser = t.alpha) {
  return t.request('POST', '/v2.0/subnets', { user, payload: { subnet } });
}

async function network(user: TestUser = t.alpha): Promise<string> {
  return (await t.create(user, 'networks', 'network', {})).id as string;
}

test('create, show, update, delete (Tempest’s flow); defaults and compaction', async () => {
  const res = await postPool({ name: 'p1', prefixes: ['10.10.0.0/24', '10.10.1.0/24', '10.10.0.128/25'] });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const p = res.body.subnetpool;
  assert.equal(p.ip_version, 4, 'IP version from the prefixes');
  assert.deepEqual(p.prefixes, ['10.10.0.0/23'], 'prefixes merged');
  assert.equal(p.min_prefixlen, 8, 'IPv4 min default');
  assert.equal(p.max_prefixlen, 32, 'IPv4 max default');
  assert.equal(p.default_prefixlen, 8, 'default follows min');
  assert.equal(p.shared, false, 'not shared');
  assert.equal(p.is_default, false, 'not default');
  assert.equal(p.default_quota, null, 'no quota');
  assert.equal(p.address_scope_id, null, 'no address scope');
  const shown = await t.request('GET', `/v2.0/subnetpools/${p.id}`, { user: t.alpha });
  assert.equal(shown.body.subnetpool.name, 'p1', 'show');
  const updated = await t.request('PUT', `/v2.0/subnetpools/${p.id}`, { user: t.alpha, payload: { subnetpool: { name: 'p2', default_prefixlen: 26, min_prefixlen: 24 } } });
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
  assert.equal(updated.body.subnetpool.name, 'p2', 'renamed');
  assert.equal(updated.body.subnetpool.default_prefixlen, 26, 'default_prefixlen');
  assert.equal(updated.body.subnetpool.revision_number, 1, 'revision bumped');
  const v6 = await postPool({ prefixes: ['2001:db8::/48'] });
  assert.equal(v6.body.subnetpool.ip_version, 6, 'IPv6 pool');
  assert.equal(v6.body.subnetpool.min_prefixlen, 64, 'IPv6 min default');
  assert.equal(v6.body.subnetpool.max_prefixlen, 128, 'IPv6 max default');
  assert.equal((await t.request('DELETE', `/v2.0/subnetpools/${p.id}`, { user: t.alpha })).status, 204, 'deleted');
  expectNeutronError(await t.request('GET', `/v2.0/subnetpools/${p.id}`, { user: t.alpha }), 404, 'SubnetPoolNotFound', `Subnet pool ${p.id} could not be found.`);
});

test('bad pools are 400 with Neutron’s errors', async () => {
  expectNeutronError(await postPool({ prefixes: [] }), 400, 'EmptySubnetPoolPrefixList', 'Empty subnet pool prefix list.');
  expectNeutronError(await postPool({ prefixes: ['10.0.0.0/8', '2001:db8::/32'] }), 400, 'PrefixVersionMismatch', 'Cannot mix IPv4 and IPv6 prefixes in a subnet pool.');
  expectNeutronError(await postPool({ prefixes: ['10.0.0.0/8'], min_prefixlen: 24, max_prefixlen: 16 }), 400, 'IllegalSubnetPoolPrefixBounds', 'Illegal prefix bounds: min_prefixlen=24, max_prefixlen=16.');
  expectNeutronError(await postPool({ prefixes: ['10.0.0.0/8'], max_prefixlen: 33 }), 400, 'IllegalSubnetPoolPrefixBounds', 'Illegal prefix bounds: max_prefixlen=33, ip_version_max=32.');
  expectNeutronError(await postPool({ prefixes: ['10.0.0.0/8'], min_prefixlen: 16, default_prefixlen: 8 }), 400, 'IllegalSubnetPoolPrefixBounds', 'Illegal prefix bounds: default_prefixlen=8, min_prefixlen=16.');
  expectNeutronError(await postPool({ prefixes: ['banana'] }), 400, 'HTTPBadRequest');
  expectNeutronError(await postPool({}), 400, 'HTTPBadRequest', "Failed to parse request. Required attribute 'prefixes' not specified");
  expectNeutronError(await postPool({ prefixes: ['10.0.0.0/8'], address_scope_id: newUuid() }), 404, 'AddressScopeNotFound');
  expectNeutronError(await postPool({ prefixes: ['10.0.0.0/8'], ip_version: 4 }), 400, 'HTTPBadRequest');
});

test('subnets from a pool: first free prefix, specific CIDRs, bounds, exhaustion', async () => {
  const pool = (await postPool({ prefixes: ['10.20.0.0/22'], default_prefixlen: 24, min_prefixlen: 23, max_prefixlen: 28 })).body.subnetpool;
  const net = await network();
  const first = await postSubnet({ network_id: net, ip_version: 4, subnetpool_id: pool.id });
  assert.equal(first.status, 201, JSON.stringify(first.body));
  assert.equal(first.body.subnet.cidr, '10.20.0.0/24', 'first free prefix of the default length');
  assert.equal(first.body.subnet.subnetpool_id, pool.id, 'subnetpool_id');
  assert.equal(first.body.subnet.gateway_ip, '10.20.0.1', 'gateway');
  const net2 = await network();
  const second = await postSubnet({ network_id: net2, ip_version: 4, subnetpool_id: pool.id, prefixlen: 25 });
  assert.equal(second.body.subnet.cidr, '10.20.1.0/25', 'next free prefix of the asked length');
  const net3 = await network();
  const specific = await postSubnet({ network_id: net3, ip_version: 4, subnetpool_id: pool.id, cidr: '10.20.2.0/24' });
  assert.equal(specific.status, 201, JSON.stringify(specific.body));
  const net4 = await network();
  expectNeutronError(await postSubnet({ network_id: net4, ip_version: 4, subnetpool_id: pool.id, cidr: '10.20.2.0/25' }), 409, 'SubnetAllocationError', 'Failed to allocate subnet: Cannot allocate requested subnet from the available set of prefixes.');
  expectNeutronError(await postSubnet({ network_id: net4, ip_version: 4, subnetpool_id: pool.id, cidr: '192.168.0.0/24' }), 409, 'SubnetAllocationError');
  expectNeutronError(await postSubnet({ network_id: net4, ip_version: 4, subnetpool_id: pool.id, prefixlen: 29 }), 400, 'MaxPrefixSubnetAllocationError', 'Unable to allocate subnet with prefix length 29, maximum allowed prefix is 28.');
  expectNeutronError(await postSubnet({ network_id: net4, ip_version: 4, subnetpool_id: pool.id, prefixlen: 22 }), 400, 'MinPrefixSubnetAllocationError', 'Unable to allocate subnet with prefix length 22, minimum allowed prefix is 23.');
  expectNeutronError(await postSubnet({ network_id: net4, ip_version: 6, subnetpool_id: pool.id }), 400, 'BadRequest', 'Bad subnets request: Cannot allocate IPv6 subnet from IPv4 subnet pool.');
  expectNeutronError(await postSubnet({ network_id: net4, ip_version: 4, subnetpool_id: pool.id, allocation_pools: [{ start: '10.20.3.2', end: '10.20.3.9' }] }), 400, 'BadRequest', 'Bad subnets request: allocation_pools allowed only for specific subnet requests..'); // sic: Neutron's message ends in a period too
  const last = await postSubnet({ network_id: net4, ip_version: 4, subnetpool_id: pool.id });
  assert.equal(last.body.subnet.cidr, '10.20.3.0/24', 'the last /24');
  const net5 = await network();
  expectNeutronError(await postSubnet({ network_id: net5, ip_version: 4, subnetpool_id: pool.id }), 409, 'SubnetAllocationError', 'Failed to allocate subnet: Insufficient prefix space to allocate subnet size /24.');
  const small = await postSubnet({ network_id: net5, ip_version: 4, subnetpool_id: pool.id, prefixlen: 26 });
  assert.equal(small.body.subnet.cidr, '10.20.1.128/26', 'a smaller prefix still fits in the gap');
  const mixed = await postSubnet({ network_id: net, ip_version: 4, cidr: '172.16.0.0/24' });
  expectNeutronError(mixed, 400, 'NetworkSubnetPoolAffinityError', 'Subnets hosted on the same network must be allocated from the same subnet pool.');
  expectNeutronError(await t.request('DELETE', `/v2.0/subnetpools/${pool.id}`, { user: t.alpha }), 400, 'SubnetPoolDeleteError', 'Unable to delete subnet pool: Subnet pool has existing allocations.');
});

test('concurrent subnets from one pool get distinct prefixes', async () => {
  const pool = (await postPool({ prefixes: ['10.30.0.0/16'], default_prefixlen: 24 })).body.subnetpool;
  const nets = await Promise.all(Array.from({ length: 20 }, () => network()));
  const replies = await Promise.all(nets.map((n) => postSubnet({ network_id: n, ip_version: 4, subnetpool_id: pool.id })));
  assert.ok(replies.every((r) => r.status === 201), replies.map((r) => JSON.stringify(r.body)).join('\n'));
  const cidrs = replies.map((r) => r.body.subnet.cidr as string);
  assert.equal(new Set(cidrs).size, 20, `distinct prefixes: ${cidrs.join(',')}`);
});

test('default pools: admin only, one per IP version, use_default_subnetpool', async () => {
  expectNeutronError(await postPool({ prefixes: ['10.40.0.0/16'], is_default: true }), 403, 'PolicyNotAuthorized');
  expectNeutronError(await postPool({ prefixes: ['10.40.0.0/16'], shared: true }), 403, 'PolicyNotAuthorized');
  const net = await network();
  expectNeutronError(await postSubnet({ network_id: net, ip_version: 4, use_default_subnetpool: true }), 400, 'BadRequest', 'Bad subnets request: No default subnetpool found for IPv4.');
  const def = await postPool({ prefixes: ['10.40.0.0/16'], is_default: true, shared: true, default_prefixlen: 26 }, t.admin);
  assert.equal(def.status, 201, JSON.stringify(def.body));
  assert.equal(def.body.subnetpool.is_default, true, 'default');
  expectNeutronError(await postPool({ prefixes: ['10.41.0.0/16'], is_default: true }, t.admin), 400, 'InvalidInput', 'Invalid input for operation: A default subnetpool for this IP family has already been set. Only one default may exist per IP family.');
  const v6default = await postPool({ prefixes: ['2001:db8:40::/48'], is_default: true }, t.admin);
  assert.equal(v6default.status, 201, 'a default for IPv6 too');
  const res = await postSubnet({ network_id: net, ip_version: 4, use_default_subnetpool: true });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.subnet.cidr, '10.40.0.0/26', 'from the default pool');
  assert.equal(res.body.subnet.subnetpool_id, def.body.subnetpool.id, 'pool recorded');
  expectNeutronError(await postSubnet({ network_id: net, ip_version: 4, use_default_subnetpool: true, subnetpool_id: def.body.subnetpool.id }), 400, 'BadRequest', 'Bad subnets request: subnetpool_id and use_default_subnetpool cannot both be specified.');
  const other = await postPool({ prefixes: ['10.42.0.0/16'] }, t.admin);
  const upd = await t.request('PUT', `/v2.0/subnetpools/${other.body.subnetpool.id}`, { user: t.admin, payload: { subnetpool: { is_default: true } } });
  expectNeutronError(upd, 400, 'InvalidInput');
});

test('visibility: owner, admin, shared; others 404; members may not change what they do not own', async () => {
  const mine = (await postPool({ prefixes: ['10.50.0.0/16'] })).body.subnetpool;
  const shared = (await postPool({ prefixes: ['10.51.0.0/16'], shared: true }, t.admin)).body.subnetpool;
  expectNeutronError(await t.request('GET', `/v2.0/subnetpools/${mine.id}`, { user: t.beta }), 404, 'SubnetPoolNotFound');
  assert.equal((await t.request('GET', `/v2.0/subnetpools/${shared.id}`, { user: t.beta })).status, 200, 'shared pool visible');
  const list = (await t.request('GET', '/v2.0/subnetpools', { user: t.beta })).body.subnetpools.map((p: { id: string }) => p.id);
  assert.ok(!list.includes(mine.id) && list.includes(shared.id), 'list follows visibility');
  expectNeutronError(await t.request('PUT', `/v2.0/subnetpools/${shared.id}`, { user: t.beta, payload: { subnetpool: { name: 'x' } } }), 403, 'PolicyNotAuthorized');
  expectNeutronError(await t.request('DELETE', `/v2.0/subnetpools/${mine.id}`, { user: t.beta }), 404, 'SubnetPoolNotFound');
  const net = await network(t.beta);
  expectNeutronError(await postSubnet({ network_id: net, ip_version: 4, subnetpool_id: mine.id }, t.beta), 404, 'SubnetPoolNotFound');
  const fromShared = await postSubnet({ network_id: net, ip_version: 4, subnetpool_id: shared.id, prefixlen: 24 }, t.beta);
  assert.equal(fromShared.status, 201, JSON.stringify(fromShared.body));
});

test('prefix updates must keep the existing prefixes; per-project quota of a pool', async () => {
  const pool = (await postPool({ prefixes: ['10.60.0.0/24'], default_prefixlen: 26, default_quota: 128 })).body.subnetpool;
  const grow = await t.request('PUT', `/v2.0/subnetpools/${pool.id}`, { user: t.alpha, payload: { subnetpool: { prefixes: ['10.60.0.0/24', '10.60.1.0/24'] } } });
  assert.equal(grow.status, 200, JSON.stringify(grow.body));
  assert.deepEqual(grow.body.subnetpool.prefixes, ['10.60.0.0/23'], 'grown and compacted');
  expectNeutronError(
    await t.request('PUT', `/v2.0/subnetpools/${pool.id}`, { user: t.alpha, payload: { subnetpool: { prefixes: ['10.60.1.0/24'] } } }),
    400,
    'IllegalSubnetPoolPrefixUpdate',
    'Illegal update to prefixes: Existing prefixes must be a subset of the new prefixes.',
  );
  const n1 = await network();
  const n2 = await network();
  const n3 = await network();
  assert.equal((await postSubnet({ network_id: n1, ip_version: 4, subnetpool_id: pool.id })).status, 201, '64 addresses');
  assert.equal((await postSubnet({ network_id: n2, ip_version: 4, subnetpool_id: pool.id })).status, 201, '128 addresses');
  expectNeutronError(await postSubnet({ network_id: n3, ip_version: 4, subnetpool_id: pool.id }), 409, 'SubnetPoolQuotaExceeded', 'Per-tenant subnet pool prefix quota exceeded.');
});
