import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { PluginClient } from './agents/agent.js';
import { AGENT_TYPES, type DeviceDetails } from './agents/interfaces.js';
import { createTestNetwork, TEST_AGENT_HOST, type TestNetwork } from './testing.js';

// The agents' view of the server, over the bus as a data-plane agent calls it.

let t: TestNetwork;
let plugin: PluginClient;
let networkId: string;
let subnetId: string;
let portId: string;

before(async () => {
  t = await createTestNetwork({}, { agents: true });
  plugin = new PluginClient(t.net.bus, 5000);
  networkId = (await t.create(t.alpha, 'networks', 'network', { name: 'rpc-net' })).id as string;
  subnetId = (await t.create(t.alpha, 'subnets', 'subnet', { network_id: networkId, ip_version: 4, cidr: '10.77.0.0/24', dns_nameservers: ['9.9.9.9'] })).id as string;
  portId = (await t.create(t.admin, 'ports', 'port', { network_id: networkId, device_owner: 'compute:nova', device_id: randomUUID(), 'binding:host_id': TEST_AGENT_HOST })).id as string;
  await t.settle();
});

after(async () => {
  await t?.close();
});

test('get_devices_details gives what the bridge agent wires; an unknown port comes back bare', async () => {
  const unknown = randomUUID();
  const [details, missing] = await plugin.call('get_devices_details', { host: TEST_AGENT_HOST, port_ids: [portId, unknown] });
  const port = details as DeviceDetails;
  assert.equal(port.port_id, portId, 'the port');
  assert.equal(port.network_id, networkId, 'its network');
  assert.equal(port.network_type, 'vxlan', 'the segment type');
  assert.equal(typeof port.segmentation_id, 'number', 'a VNI');
  assert.equal(port.host, TEST_AGENT_HOST, 'bound here');
  assert.match(port.mac_address, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'a MAC');
  assert.ok(port.security_groups.length > 0, 'the default group');
  assert.deepEqual(missing, { device: unknown }, 'unknown port');
});

test('update_device_down and update_device_up set the port status; another host cannot', async () => {
  assert.deepEqual(await plugin.call('update_device_down', { port_id: portId, host: TEST_AGENT_HOST }), { device: portId, exists: true }, 'down');
  const down = await t.request('GET', `/v2.0/ports/${portId}`, { user: t.admin });
  assert.equal(down.body.port.status, 'DOWN', 'DOWN recorded');
  await plugin.call('update_device_up', { port_id: portId, host: 'some-other-host' });
  assert.equal((await t.request('GET', `/v2.0/ports/${portId}`, { user: t.admin })).body.port.status, 'DOWN', 'a host the port is not bound to is ignored');
  await plugin.call('update_device_up', { port_id: portId, host: TEST_AGENT_HOST });
  assert.equal((await t.request('GET', `/v2.0/ports/${portId}`, { user: t.admin })).body.port.status, 'ACTIVE', 'ACTIVE recorded');
  const gone = randomUUID();
  assert.deepEqual(await plugin.call('update_device_up', { port_id: gone, host: TEST_AGENT_HOST }), { device: gone, exists: false }, 'unknown port');
  await assert.rejects(plugin.call('update_device_up', { host: TEST_AGENT_HOST } as never), (err: Error) => err.name === 'RemoteError', 'no port_id: refused');
});

test('get_active_networks_info schedules networks needing DHCP to the asking agent and describes them', async () => {
  await t.net.db.deleteFrom('network_dhcp_agent').execute();
  const networks = await plugin.call('get_active_networks_info', { host: TEST_AGENT_HOST });
  const mine = networks.find((n) => n.id === networkId);
  assert.ok(mine, 'the network with a DHCP subnet is served');
  assert.deepEqual(
    mine.subnets.map((s) => [s.id, s.cidr, s.enable_dhcp, s.dns_nameservers]),
    [[subnetId, '10.77.0.0/24', true, ['9.9.9.9']]],
    'its subnet',
  );
  assert.ok(
    mine.ports.some((p) => p.id === portId),
    'its ports',
  );
  const hosting = await t.request('GET', `/v2.0/networks/${networkId}/dhcp-agents`, { user: t.admin });
  assert.deepEqual(
    (hosting.body.agents as { host: string; agent_type: string }[]).map((a) => [a.agent_type, a.host]),
    [[AGENT_TYPES.dhcp, TEST_AGENT_HOST]],
    'now hosted by that agent',
  );
  assert.deepEqual(await plugin.call('get_active_networks_info', { host: 'no-such-host' }), [], 'no agent there: nothing');
});

test('get_routers gives the routers the L3 agent hosts', async () => {
  const router = await t.create(t.alpha, 'routers', 'router', { name: 'edge' });
  // Unhosted routers come to the agent asking.
  await t.net.db.deleteFrom('router_l3_agent').execute();
  const routers = await plugin.call('get_routers', { host: TEST_AGENT_HOST });
  const mine = routers.find((r) => r.id === router.id);
  assert.ok(mine, 'scheduled to the only L3 agent and returned');
  const hosting = await t.request('GET', `/v2.0/routers/${router.id}/l3-agents`, { user: t.admin });
  assert.deepEqual(
    (hosting.body.agents as { host: string; agent_type: string }[]).map((a) => [a.agent_type, a.host]),
    [[AGENT_TYPES.l3, TEST_AGENT_HOST]],
    'now hosted by that agent',
  );
  assert.equal(mine.gw_port, null, 'no gateway');
  assert.deepEqual(mine.interfaces, [], 'no interfaces');
  assert.deepEqual(await plugin.call('get_routers', { host: TEST_AGENT_HOST, router_ids: [] }), [], 'none asked, none given');
  assert.deepEqual(await plugin.call('get_routers', { host: 'no-such-host' }), [], 'no agent there: nothing');
});

test('security_group_info_for_devices gives the ports, their groups rules and remote group members', async () => {
  const info = await plugin.call('security_group_info_for_devices', { port_ids: [portId] });
  const device = info.devices[portId];
  assert.ok(device, 'the port');
  const [group] = device.security_groups;
  assert.ok(group, 'in the default group');
  const rules = info.security_groups[group] ?? [];
  assert.ok(
    rules.some((r) => r.direction === 'egress'),
    'egress rules',
  );
  assert.ok(
    rules.some((r) => r.direction === 'ingress' && r.remote_group_id === group),
    'ingress from the group itself',
  );
  assert.deepEqual(info.sg_member_ips[group]?.IPv4, device.fixed_ips.filter((ip) => !ip.includes(':')), 'the group members are the port');
});

test('get_devices_details by device name: the tap of a port resolves to the port; another name comes back bare', async () => {
  const tap = `tap${portId.slice(0, 11)}`;
  const [details, other] = await plugin.call('get_devices_details', { host: TEST_AGENT_HOST, devices: [tap, 'tapffffffffff0'] });
  assert.equal((details as DeviceDetails).port_id, portId, 'the port');
  assert.equal(details?.device, tap, 'named as asked');
  assert.deepEqual(other, { device: 'tapffffffffff0' }, 'no such port');
});

test("get_dhcp_port makes this host's DHCP port once, with an address on each DHCP subnet, and drops it when DHCP goes", async () => {
  const first = await plugin.call('get_dhcp_port', { host: TEST_AGENT_HOST, network_id: networkId });
  assert.ok(first.port, 'a port');
  assert.equal(first.port.device_owner, 'network:dhcp');
  assert.match(first.port.device_id, new RegExp(`^dhcp[0-9a-f-]{36}-${networkId}$`), "Neutron's device id");
  assert.deepEqual(
    first.port.fixed_ips.map((ip) => ip.subnet_id),
    [subnetId],
    'one address on the DHCP subnet',
  );
  assert.equal(first.has_router, false, 'no router yet');
  const again = await plugin.call('get_dhcp_port', { host: TEST_AGENT_HOST, network_id: networkId });
  assert.equal(again.port?.id, first.port.id, 'the same port the second time');
  const shown = await t.request('GET', `/v2.0/ports/${first.port.id}`, { user: t.admin });
  assert.equal(shown.body.port['binding:host_id'], TEST_AGENT_HOST, 'bound to the asking host');
  const other = (await t.create(t.alpha, 'networks', 'network', { name: 'no-dhcp' })).id as string;
  await t.create(t.alpha, 'subnets', 'subnet', { network_id: other, ip_version: 4, cidr: '10.78.0.0/24', enable_dhcp: false });
  assert.equal((await plugin.call('get_dhcp_port', { host: TEST_AGENT_HOST, network_id: other })).port, null, 'no DHCP subnet: no port');
  assert.equal((await plugin.call('get_dhcp_port', { host: TEST_AGENT_HOST, network_id: randomUUID() })).port, null, 'no network: no port');
});

test('get_metadata_instance finds the server by fixed IP on the network or behind the router; update_floatingip_statuses records the agent', async () => {
  const [ip] = ((await t.request('GET', `/v2.0/ports/${portId}`, { user: t.admin })).body.port.fixed_ips as { ip_address: string }[]).map((f) => f.ip_address);
  const port = (await t.request('GET', `/v2.0/ports/${portId}`, { user: t.admin })).body.port;
  assert.deepEqual(await plugin.call('get_metadata_instance', { ip: ip ?? '', network_id: networkId }), { instance_id: port.device_id, project_id: port.project_id }, 'on the network');
  assert.equal(await plugin.call('get_metadata_instance', { ip: '10.77.0.254', network_id: networkId }), null, 'nobody has that address');
  const router = await t.create(t.alpha, 'routers', 'router', { name: 'md' });
  assert.equal(await plugin.call('get_metadata_instance', { ip: ip ?? '', router_id: router.id as string }), null, 'not behind a router without interfaces');
  await t.request('PUT', `/v2.0/routers/${router.id}/add_router_interface`, { user: t.alpha, payload: { subnet_id: subnetId } });
  assert.equal((await plugin.call('get_metadata_instance', { ip: ip ?? '', router_id: router.id as string }))?.instance_id, port.device_id, 'behind the router');
  assert.deepEqual(await plugin.call('update_floatingip_statuses', { router_id: router.id as string, statuses: {} }), { updated: 0 }, 'nothing to record');
  await assert.rejects(plugin.call('update_floatingip_statuses', { router_id: router.id as string, statuses: { [randomUUID()]: 'UP' } }), (err: Error) => err.name === 'RemoteError', 'an unknown status is refused');
});

test('get_tunnel_endpoints gives the other hosts’ alive bridge agents’ VTEPs, never the asking host’s', async () => {
  assert.deepEqual(await plugin.call('get_tunnel_endpoints', { host: TEST_AGENT_HOST }), [], 'one host: no peers');
  const other = new PluginClient(t.net.bus, 5000);
  await other.call('report_state', { agent_state: { agent_type: AGENT_TYPES.bridge, binary: 'stratus-bridge-agent', topic: 'N/A', host: 'host-b', configurations: { tunneling_ip: '192.0.2.7' } }, time: new Date().toISOString() });
  assert.deepEqual(await plugin.call('get_tunnel_endpoints', { host: TEST_AGENT_HOST }), ['192.0.2.7'], "host-b's endpoint");
  assert.deepEqual(await plugin.call('get_tunnel_endpoints', { host: 'host-b' }), [], 'not its own');
});
