import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { newUuid } from '../common.js';
import { createTestNetwork, expectNeutronError, type TestNetwork } from '../testing.js';

// Facts from neutron-lib's api-ref (networks.inc, network_provider.inc,
// external-net, network_mtu, availability zones) and Tempest's
// test_networks.py, test_networks_negative.py and
// admin/test_external_network_extension.py; errors as Neutron (ML2) raises them.

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

const PROVIDER = ['provider:network_type', 'provider:physical_network', 'provider:segmentation_id'];

async function cleanup(ids: string[]): Promise<void> {
  for (const id of ids) await t.request('DELETE', `/v2.0/networks/${id}`, { user: t.admin });
}

test('POST creates a network with Neutron defaults; GET shows it; a member sees no provider attributes', async () => {
  const res = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { name: 'n1' } } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const n = res.body.network;
  assert.equal(n.name, 'n1', 'name');
  assert.equal(n.status, 'ACTIVE', 'status ACTIVE');
  assert.equal(n.admin_state_up, true, 'admin_state_up defaults to true');
  assert.equal(n.shared, false, 'not shared');
  assert.equal(n['router:external'], false, 'not external');
  assert.equal(n.port_security_enabled, true, 'port security on by default');
  assert.equal(n.mtu, 1450, 'vxlan network: global_physnet_mtu minus 50');
  assert.deepEqual(n.subnets, [], 'no subnets');
  assert.deepEqual(n.availability_zone_hints, [], 'no hints');
  assert.deepEqual(n.availability_zones, [], 'no DHCP yet: no zones');
  assert.equal(n.ipv4_address_scope, null, 'no address scope');
  assert.equal(n.project_id, t.alpha.projectId, 'owned by the caller');
  assert.equal(n.tenant_id, t.alpha.projectId, 'tenant_id too');
  assert.equal(n.revision_number, 1, 'revision 1');
  assert.match(n.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'created_at to the second');
  for (const attr of PROVIDER) assert.ok(!(attr in n), `${attr} hidden from a member`);
  assert.ok(notifications.events.some((e) => e.type === 'network.create.end' && e.payload.network.id === n.id), 'network.create.end published');
  assert.ok(
    t.driver.calls.some((c) => c.method === 'networkUpdated' && (c.args[0] as { id: string }).id === n.id),
    'driver told about the new network',
  );

  const admin = await t.request('GET', `/v2.0/networks/${n.id}`, { user: t.admin });
  assert.equal(admin.status, 200, JSON.stringify(admin.body));
  assert.equal(admin.body.network['provider:network_type'], 'vxlan', 'tenant network type');
  assert.equal(admin.body.network['provider:physical_network'], null, 'vxlan has no physical network');
  assert.equal(typeof admin.body.network['provider:segmentation_id'], 'number', 'a VNI was allocated');

  const fields = await t.request('GET', `/v2.0/networks/${n.id}?fields=id&fields=name&fields=mtu`, { user: t.alpha });
  assert.deepEqual(Object.keys(fields.body.network).sort(), ['id', 'mtu', 'name'], 'fields selects the attributes');
  await cleanup([n.id]);
});

test('project networks get distinct VNIs, also when created concurrently', async () => {
  const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => t.request('POST', '/v2.0/networks', { user: t.admin, payload: { network: { name: `c${i}` } } })));
  assert.ok(replies.every((r) => r.status === 201), replies.map((r) => `${r.status} ${JSON.stringify(r.body)}`).join('\n'));
  const vnis = replies.map((r) => r.body.network['provider:segmentation_id']);
  assert.equal(new Set(vnis).size, vnis.length, `all VNIs differ: ${vnis.join(',')}`);
  await cleanup(replies.map((r) => r.body.network.id));
});

test('bulk create returns networks in order and is all or nothing', async () => {
  const res = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { networks: [{ name: 'b1' }, { name: 'b2' }] } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.deepEqual(res.body.networks.map((n: { name: string }) => n.name), ['b1', 'b2'], 'both created');
  const before = (await t.request('GET', '/v2.0/networks', { user: t.admin })).body.networks.length;
  const bad = await t.request('POST', '/v2.0/networks', {
    user: t.admin,
    payload: { networks: [{ name: 'ok' }, { name: 'dup', 'provider:network_type': 'vlan', 'provider:physical_network': 'public', 'provider:segmentation_id': 77 }, { name: 'dup2', 'provider:network_type': 'vlan', 'provider:physical_network': 'public', 'provider:segmentation_id': 77 }] },
  });
  expectNeutronError(bad, 409, 'VlanIdInUse');
  const afterCount = (await t.request('GET', '/v2.0/networks', { user: t.admin })).body.networks.length;
  assert.equal(afterCount, before, 'nothing of the failed bulk remains');
  await cleanup(res.body.networks.map((n: { id: string }) => n.id));
});

test('provider networks: flat, vlan, vxlan rules and in-use conflicts', async () => {
  const post = (network: Record<string, unknown>, user = t.admin) => t.request('POST', '/v2.0/networks', { user, payload: { network } });
  const flat = await post({ 'provider:network_type': 'flat', 'provider:physical_network': 'public' });
  assert.equal(flat.status, 201, JSON.stringify(flat.body));
  assert.equal(flat.body.network.mtu, 1500, 'flat MTU is the physical one');
  assert.equal(flat.body.network['provider:segmentation_id'], null, 'flat has no segmentation id');
  const flatAgain = await post({ 'provider:network_type': 'flat', 'provider:physical_network': 'public' });
  expectNeutronError(flatAgain, 409, 'FlatNetworkInUse', 'Unable to create the flat network. Physical network public is in use.');

  const vlan = await post({ 'provider:network_type': 'vlan', 'provider:physical_network': 'public', 'provider:segmentation_id': 100 });
  assert.equal(vlan.status, 201, JSON.stringify(vlan.body));
  const vlanAgain = await post({ 'provider:network_type': 'vlan', 'provider:physical_network': 'public', 'provider:segmentation_id': 100 });
  expectNeutronError(vlanAgain, 409, 'VlanIdInUse', 'Unable to create the network. The VLAN 100 on physical network public is in use.');

  const vx = await post({ 'provider:network_type': 'vxlan', 'provider:segmentation_id': 70000 });
  assert.equal(vx.status, 201, JSON.stringify(vx.body));
  const vxAgain = await post({ 'provider:network_type': 'vxlan', 'provider:segmentation_id': 70000 });
  expectNeutronError(vxAgain, 409, 'TunnelIdInUse');

  const cases: [Record<string, unknown>, string][] = [
    [{ 'provider:network_type': 'vlan', 'provider:physical_network': 'public', 'provider:segmentation_id': 4095 }, 'segmentation_id out of range (1 through 4094)'],
    [{ 'provider:network_type': 'vlan', 'provider:physical_network': 'public', 'provider:segmentation_id': 0 }, 'segmentation_id out of range (1 through 4094)'],
    [{ 'provider:network_type': 'vlan', 'provider:segmentation_id': 5 }, 'segmentation_id requires physical_network for VLAN provider network'],
    [{ 'provider:network_type': 'vlan', 'provider:physical_network': 'nope', 'provider:segmentation_id': 5 }, "physical_network 'nope' unknown for VLAN provider network"],
    [{ 'provider:network_type': 'vxlan', 'provider:physical_network': 'public' }, 'provider:physical_network specified for vxlan network'],
    [{ 'provider:network_type': 'flat' }, 'physical_network required for flat provider network'],
    [{ 'provider:network_type': 'flat', 'provider:physical_network': 'other', 'provider:segmentation_id': 3 }, 'segmentation_id prohibited for flat provider network'],
    [{ 'provider:network_type': 'gre' }, "network_type value 'gre' not supported"],
    [{ 'provider:physical_network': 'public' }, 'network_type required'],
  ];
  for (const [body, message] of cases) {
    const res = await post(body);
    expectNeutronError(res, 400, 'InvalidInput', `Invalid input for operation: ${message}.`);
  }
  const member = await post({ 'provider:network_type': 'vxlan' }, t.alpha);
  expectNeutronError(member, 403, 'PolicyNotAuthorized');
  // A VLAN without an id on a physnet without a range: nothing to allocate.
  const noRange = await post({ 'provider:network_type': 'vlan', 'provider:physical_network': 'public' });
  expectNeutronError(noRange, 503, 'NoNetworkAvailable');
  await cleanup([flat.body.network.id, vlan.body.network.id, vx.body.network.id]);
  const reuse = await post({ 'provider:network_type': 'vlan', 'provider:physical_network': 'public', 'provider:segmentation_id': 100 });
  assert.equal(reuse.status, 201, 'a deleted network frees its VLAN');
  await cleanup([reuse.body.network.id]);
});

test('MTU: default, writable, bounds', async () => {
  const small = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { mtu: 1400 } } });
  assert.equal(small.status, 201, JSON.stringify(small.body));
  assert.equal(small.body.network.mtu, 1400, 'requested MTU kept');
  const big = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { mtu: 1500 } } });
  expectNeutronError(big, 400, 'InvalidInput', 'Invalid input for operation: Requested MTU is too big, maximum is 1450.');
  const tiny = await t.request('PUT', `/v2.0/networks/${small.body.network.id}`, { user: t.alpha, payload: { network: { mtu: 67 } } });
  expectNeutronError(tiny, 400, 'InvalidInput', 'Invalid input for operation: Requested MTU is too small, minimum is 68.');
  const neg = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { mtu: -1 } } });
  expectNeutronError(neg, 400, 'HTTPBadRequest');
  const upd = await t.request('PUT', `/v2.0/networks/${small.body.network.id}`, { user: t.alpha, payload: { network: { mtu: 1300 } } });
  assert.equal(upd.status, 200, JSON.stringify(upd.body));
  assert.equal(upd.body.network.mtu, 1300, 'updated');
  assert.equal(upd.body.network.revision_number, 2, 'revision bumped');
  await cleanup([small.body.network.id]);
});

test('visibility: owner, admin, shared and external networks; others get 404', async () => {
  const own = await t.create(t.alpha, 'networks', 'network', { name: 'private' });
  const shared = await t.create(t.admin, 'networks', 'network', { name: 'shared', shared: true });
  const external = await t.create(t.admin, 'networks', 'network', { name: 'ext', 'router:external': true });
  const betaList = (await t.request('GET', '/v2.0/networks', { user: t.beta })).body.networks.map((n: { id: string }) => n.id);
  assert.ok(!betaList.includes(own.id), 'beta does not list alpha’s network');
  assert.ok(betaList.includes(shared.id) && betaList.includes(external.id), 'beta lists shared and external networks');
  const show = await t.request('GET', `/v2.0/networks/${own.id}`, { user: t.beta });
  expectNeutronError(show, 404, 'NetworkNotFound', `Network ${own.id} could not be found.`);
  const put = await t.request('PUT', `/v2.0/networks/${own.id}`, { user: t.beta, payload: { network: { name: 'x' } } });
  expectNeutronError(put, 404, 'NetworkNotFound'); // update of an invisible network
  const del = await t.request('DELETE', `/v2.0/networks/${own.id}`, { user: t.beta });
  expectNeutronError(del, 404, 'NetworkNotFound'); // delete of an invisible network
  const putShared = await t.request('PUT', `/v2.0/networks/${shared.id}`, { user: t.beta, payload: { network: { name: 'x' } } });
  expectNeutronError(putShared, 403, 'PolicyNotAuthorized'); // visible, but not the caller's to change
  const reader = await t.request('PUT', `/v2.0/networks/${own.id}`, { user: t.alphaReader, payload: { network: { name: 'x' } } });
  expectNeutronError(reader, 403, 'PolicyNotAuthorized'); // a reader may not update
  const readerGet = await t.request('GET', `/v2.0/networks/${own.id}`, { user: t.alphaReader });
  assert.equal(readerGet.status, 200, 'a reader may read');
  const external2 = await t.request('GET', `/v2.0/networks?router:external=true`, { user: t.beta });
  assert.ok(external2.body.networks.every((n: { 'router:external': boolean }) => n['router:external']), 'filter on router:external');
  const missing = await t.request('GET', `/v2.0/networks/${newUuid()}`, { user: t.admin });
  expectNeutronError(missing, 404, 'NetworkNotFound');
  await cleanup([own.id, shared.id, external.id]);
});

test('members may not create shared or external networks; admins may, for any project', async () => {
  const shared = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { shared: true } } });
  expectNeutronError(shared, 403, 'PolicyNotAuthorized');
  const ext = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { 'router:external': true } } });
  expectNeutronError(ext, 403, 'PolicyNotAuthorized'); // external is for admins
  const notShared = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { shared: false } } });
  assert.equal(notShared.status, 201, 'an explicit default is allowed');
  const other = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { project_id: t.beta.projectId } } });
  expectNeutronError(other, 403, 'PolicyNotAuthorized'); // a member may not create in another project
  const forBeta = await t.request('POST', '/v2.0/networks', { user: t.admin, payload: { network: { project_id: t.beta.projectId } } });
  assert.equal(forBeta.status, 201, 'an admin may');
  assert.equal(forBeta.body.network.project_id, t.beta.projectId, 'owned by beta');
  const mismatch = await t.request('POST', '/v2.0/networks', { user: t.admin, payload: { network: { project_id: 'a', tenant_id: 'b' } } });
  expectNeutronError(mismatch, 400, 'HTTPBadRequest', "'project_id' and 'tenant_id' do not match");
  await cleanup([notShared.body.network.id, forBeta.body.network.id]);
});

test('bad input is 400 and changes nothing', async () => {
  const cases: unknown[] = [
    { network: { admin_state_up: 'maybe' } },
    { network: { name: 7 } },
    { network: { unknown_attr: 1 } },
    { network: { status: 'DOWN' } },
    { network: { availability_zone_hints: 'nova' } },
    { network: { 'provider:segmentation_id': 'x' } },
    { net: {} },
    'not json',
  ];
  const before = (await t.request('GET', '/v2.0/networks', { user: t.admin })).body.networks.length;
  for (const payload of cases) {
    const res = await t.request('POST', '/v2.0/networks', { user: t.admin, payload });
    assert.equal(res.status, 400, `${JSON.stringify(payload)}: ${JSON.stringify(res.body)}`);
    assert.equal(typeof res.body.NeutronError?.message, 'string', 'Neutron error body');
  }
  const afterCount = (await t.request('GET', '/v2.0/networks', { user: t.admin })).body.networks.length;
  assert.equal(afterCount, before, 'nothing created');
  const n = await t.create(t.alpha, 'networks', 'network', {});
  const zones = await t.request('PUT', `/v2.0/networks/${n.id}`, { user: t.alpha, payload: { network: { availability_zone_hints: ['nova'] } } });
  expectNeutronError(zones, 400, 'HTTPBadRequest', 'Cannot update read-only attribute availability_zone_hints');
  const badId = await t.request('GET', '/v2.0/networks?unknown=1', { user: t.alpha });
  expectNeutronError(badId, 400, 'HTTPBadRequest', "['unknown'] is invalid attribute for filtering");
  await cleanup([n.id]);
});

test('availability zone hints are checked against the known zones', async () => {
  const good = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { availability_zone_hints: ['nova'] } } });
  assert.equal(good.status, 201, JSON.stringify(good.body));
  assert.deepEqual(good.body.network.availability_zone_hints, ['nova'], 'hints kept');
  const bad = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { availability_zone_hints: ['mars'] } } });
  expectNeutronError(bad, 404, 'AvailabilityZoneNotFound', 'AvailabilityZone mars could not be found.');
  const sub = await t.request('POST', '/v2.0/subnets', { user: t.alpha, payload: { subnet: { network_id: good.body.network.id, ip_version: 4, cidr: '10.9.0.0/24' } } });
  assert.equal(sub.status, 201, JSON.stringify(sub.body));
  const shown = await t.request('GET', `/v2.0/networks/${good.body.network.id}`, { user: t.alpha });
  assert.deepEqual(shown.body.network.availability_zones, ['nova'], 'a network with DHCP is in the zone');
  assert.deepEqual(shown.body.network.subnets, [sub.body.subnet.id], 'subnets lists the subnet');
  const azs = await t.request('GET', '/v2.0/availability_zones', { user: t.alpha });
  assert.equal(azs.status, 200, JSON.stringify(azs.body));
  assert.deepEqual(
    azs.body.availability_zones,
    [
      { name: 'nova', resource: 'network', state: 'available' },
      { name: 'nova', resource: 'router', state: 'available' },
    ],
    'zones',
  );
  const routerZones = await t.request('GET', '/v2.0/availability_zones?resource=router', { user: t.alpha });
  assert.deepEqual(routerZones.body.availability_zones, [{ name: 'nova', resource: 'router', state: 'available' }], 'filtered');
  await cleanup([good.body.network.id]);
});

test('update: name, admin state, shared and external (admin), is_default; revision bumps', async () => {
  const n = await t.create(t.alpha, 'networks', 'network', { name: 'u' });
  const res = await t.request('PUT', `/v2.0/networks/${n.id}`, { user: t.alpha, payload: { network: { name: 'u2', admin_state_up: false, description: 'd2' } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.network.name, 'u2', 'name');
  assert.equal(res.body.network.admin_state_up, false, 'admin state');
  assert.equal(res.body.network.description, 'd2', 'description');
  assert.equal(res.body.network.revision_number, 2, 'revision');
  assert.ok(notifications.events.some((e) => e.type === 'network.update.end'), 'network.update.end');
  const shared = await t.request('PUT', `/v2.0/networks/${n.id}`, { user: t.alpha, payload: { network: { shared: true } } });
  expectNeutronError(shared, 403, 'PolicyNotAuthorized'); // members may not share
  const ext = await t.request('PUT', `/v2.0/networks/${n.id}`, { user: t.admin, payload: { network: { 'router:external': true, is_default: true } } });
  assert.equal(ext.status, 200, JSON.stringify(ext.body));
  assert.equal(ext.body.network['router:external'], true, 'external');
  assert.equal(ext.body.network.is_default, true, 'default external');
  const other = await t.create(t.admin, 'networks', 'network', { 'router:external': true });
  const second = await t.request('PUT', `/v2.0/networks/${other.id}`, { user: t.admin, payload: { network: { is_default: true } } });
  expectNeutronError(second, 409, 'DefaultExternalNetworkExists');
  const provider = await t.request('PUT', `/v2.0/networks/${n.id}`, { user: t.admin, payload: { network: { 'provider:network_type': 'vlan' } } });
  expectNeutronError(provider, 400, 'InvalidInput'); // the network type cannot change
  const seg = await t.request('PUT', `/v2.0/networks/${n.id}`, { user: t.admin, payload: { network: { 'provider:segmentation_id': 4242 } } });
  assert.equal(seg.status, 200, JSON.stringify(seg.body));
  assert.equal(seg.body.network['provider:segmentation_id'], 4242, 'segmentation id moved');
  await cleanup([n.id, other.id]);
});

test('unsharing a network other projects use is 409 InvalidSharedSetting', async () => {
  const n = await t.create(t.admin, 'networks', 'network', { shared: true, name: 'sh' });
  const sub = await t.request('POST', '/v2.0/subnets', { user: t.beta, payload: { subnet: { network_id: n.id, ip_version: 4, cidr: '10.77.0.0/24' } } });
  assert.equal(sub.status, 201, `beta may add a subnet to a shared network: ${JSON.stringify(sub.body)}`);
  const res = await t.request('PUT', `/v2.0/networks/${n.id}`, { user: t.admin, payload: { network: { shared: false } } });
  expectNeutronError(res, 409, 'InvalidSharedSetting');
  await cleanup([n.id]);
});

test('DELETE: 409 NetworkInUse with user ports; DHCP ports, subnets, addresses, segments and tags go with it', async () => {
  const n = await t.request('POST', '/v2.0/networks', { user: t.alpha, payload: { network: { name: 'd', tags: ['red', 'blue'] } } });
  assert.equal(n.status, 201, JSON.stringify(n.body));
  assert.deepEqual(n.body.network.tags, ['blue', 'red'], 'tags on create');
  const id = n.body.network.id as string;
  const sub = await t.create(t.alpha, 'subnets', 'subnet', { network_id: id, ip_version: 4, cidr: '10.50.0.0/24' });
  const dhcp = (await t.insertPort({ network_id: id, device_owner: 'network:dhcp' }, [{ subnet_id: sub.id, ip_address: '10.50.0.2' }])).id;
  const user = (await t.insertPort({ network_id: id, device_owner: 'compute:nova' }, [{ subnet_id: sub.id, ip_address: '10.50.0.3' }])).id;
  const refused = await t.request('DELETE', `/v2.0/networks/${id}`, { user: t.alpha });
  expectNeutronError(refused, 409, 'NetworkInUse');
  assert.ok(refused.body.NeutronError.message.startsWith(`Unable to complete operation on network ${id}. There are one or more ports still in use on the network`), refused.body.NeutronError.message);
  await t.net.db.deleteFrom('port').where('id', '=', user).execute();
  const reader = await t.request('DELETE', `/v2.0/networks/${id}`, { user: t.alphaReader });
  expectNeutronError(reader, 403, 'PolicyNotAuthorized'); // a reader may not delete
  const res = await t.request('DELETE', `/v2.0/networks/${id}`, { user: t.alpha });
  assert.equal(res.status, 204, JSON.stringify(res.body));
  assert.equal((await t.request('GET', `/v2.0/networks/${id}`, { user: t.alpha })).status, 404, 'network gone');
  assert.equal((await t.request('GET', `/v2.0/subnets/${sub.id}`, { user: t.alpha })).status, 404, 'subnet gone');
  assert.equal(await t.net.db.selectFrom('port').select('id').where('id', '=', dhcp).executeTakeFirst(), undefined, 'DHCP port gone');
  assert.equal((await t.net.db.selectFrom('ip_allocation').selectAll().where('network_id', '=', id).execute()).length, 0, 'addresses gone');
  assert.equal((await t.net.db.selectFrom('segment_allocation').selectAll().where('network_id', '=', id).execute()).length, 0, 'segment gone');
  assert.equal((await t.net.db.selectFrom('tag').selectAll().where('resource_id', '=', id).execute()).length, 0, 'tags gone');
  assert.ok(notifications.events.some((e) => e.type === 'network.delete.end' && e.payload.network_id === id), 'network.delete.end');
  assert.ok(t.driver.calls.some((c) => c.method === 'networkDeleted' && c.args[0] === id), 'driver told');
});

test('quota: the project’s network quota refuses with 409 OverQuota, bulk included', async () => {
  await t.net.db.insertInto('quota').values({ project_id: t.beta.projectId, resource: 'network', hard_limit: 5 }).execute();
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await t.create(t.beta, 'networks', 'network', { name: `q${i}` })).id);
  const res = await t.request('POST', '/v2.0/networks', { user: t.beta, payload: { network: { name: 'q5' } } });
  expectNeutronError(res, 409, 'OverQuota', "Quota exceeded for resources: ['network'].");
  await cleanup(ids.slice(0, 4));
  const bulk = await t.request('POST', '/v2.0/networks', { user: t.beta, payload: { networks: [{}, {}, {}, {}, {}] } });
  expectNeutronError(bulk, 409, 'OverQuota'); // a bulk create that would pass the quota creates nothing
  const list = await t.request('GET', '/v2.0/networks', { user: t.beta });
  assert.equal(list.body.networks.filter((n: { project_id: string }) => n.project_id === t.beta.projectId).length, 1, 'only the one left');
  await cleanup([ids[4] ?? '']);
  await t.net.db.deleteFrom('quota').where('project_id', '=', t.beta.projectId).execute();
});

test('list: filters, sorting, pagination and fields', async () => {
  const a = await t.create(t.alpha, 'networks', 'network', { name: 'list-a' });
  const b = await t.create(t.alpha, 'networks', 'network', { name: 'list-b', admin_state_up: false });
  const byName = await t.request('GET', '/v2.0/networks?name=list-b', { user: t.alpha });
  assert.deepEqual(byName.body.networks.map((n: { id: string }) => n.id), [b.id], 'filter by name');
  const down = await t.request('GET', '/v2.0/networks?admin_state_up=false', { user: t.alpha });
  assert.ok(down.body.networks.every((n: { admin_state_up: boolean }) => !n.admin_state_up), 'filter by boolean');
  const sorted = await t.request('GET', '/v2.0/networks?sort_key=name&sort_dir=desc&name=list-a&name=list-b', { user: t.alpha });
  assert.deepEqual(sorted.body.networks.map((n: { name: string }) => n.name), ['list-b', 'list-a'], 'sorted');
  const page = await t.request('GET', '/v2.0/networks?limit=1&name=list-a&name=list-b', { user: t.alpha });
  assert.equal(page.body.networks.length, 1, 'one per page');
  assert.ok(Array.isArray(page.body.networks_links), 'links');
  const fields = await t.request('GET', '/v2.0/networks?fields=id&fields=name', { user: t.alpha });
  assert.ok(fields.body.networks.every((n: Record<string, unknown>) => Object.keys(n).sort().join() === 'id,name'), 'fields');
  const provider = await t.request('GET', '/v2.0/networks?fields=provider:network_type', { user: t.alpha });
  assert.ok(provider.body.networks.every((n: Record<string, unknown>) => !('provider:network_type' in n)), 'provider attributes never shown to members');
  await cleanup([a.id, b.id]);
});
