import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestNetwork, errorType, expectNeutronError, type TestNetwork } from '../testing.js';
import { createPort, createRouter, externalNetwork, networkWithSubnet, routerAction } from './l3.test-util.js';

// Facts from neutron-lib's api-ref (floatingips.inc) and Tempest's
// test_floating_ips(_negative).py, admin/test_floating_ips_admin_actions.py
// and admin/test_external_network_extension.py.

let t: TestNetwork;
let pub: { network: Record<string, any>; subnet: Record<string, any> };
/** alpha's network behind a router with a gateway to `pub`, and two ports on it. */
let lan: { network: Record<string, any>; subnet: Record<string, any>; router: Record<string, any>; ports: Record<string, any>[] };
let notifications: ReturnType<TestNetwork['recordNotifications']>;

before(async () => {
  t = await createTestNetwork();
  notifications = t.recordNotifications();
  for (const user of [t.alpha, t.beta, t.admin]) {
    const res = await t.request('PUT', `/v2.0/quotas/${user.projectId}`, { user: t.admin, payload: { quota: { router: 100, floatingip: 100, port: 1000 } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  pub = await externalNetwork(t, '172.24.4.0/24');
  const { network, subnet } = await networkWithSubnet(t, t.alpha, '10.0.0.0/24');
  const router = await createRouter(t, t.alpha, pub.network.id as string);
  const added = await routerAction(t, t.alpha, router.id as string, 'add_router_interface', { subnet_id: subnet.id });
  assert.equal(added.status, 200, JSON.stringify(added.body));
  const ports = [await createPort(t, t.alpha, network.id as string), await createPort(t, t.alpha, network.id as string)];
  lan = { network, subnet, router, ports };
});

after(async () => {
  await t.close();
});

async function createFip(body: Record<string, unknown>, user = t.alpha): Promise<{ status: number; body: Record<string, any> }> {
  return t.request('POST', '/v2.0/floatingips', { user, payload: { floatingip: { floating_network_id: pub.network.id, ...body } } });
}

/** An address of `lan`'s subnet that `port` does not hold (addresses are handed out at random). */
function addressNotOn(port: Record<string, any> | undefined): string {
  const held = new Set((port?.fixed_ips ?? []).map((ip: { ip_address: string }) => ip.ip_address));
  return held.has('10.0.0.251') ? '10.0.0.252' : '10.0.0.251';
}

describe('the whole flow', () => {
  test('network, subnet, public, router with gateway and interface, port; a floating IP associated, disassociated, deleted', async () => {
    const ext = await externalNetwork(t, '198.51.100.0/24');
    const { network, subnet } = await networkWithSubnet(t, t.alpha, '10.77.0.0/24');
    const router = await createRouter(t, t.alpha, ext.network.id as string);
    assert.equal(router.external_gateway_info.network_id, ext.network.id, 'gateway');
    const iface = await routerAction(t, t.alpha, router.id as string, 'add_router_interface', { subnet_id: subnet.id });
    assert.equal(iface.status, 200, JSON.stringify(iface.body));
    const port = await createPort(t, t.alpha, network.id as string, { name: 'vm-port' });
    const fixed = port.fixed_ips[0].ip_address as string;

    const created = await t.request('POST', '/v2.0/floatingips', { user: t.alpha, payload: { floatingip: { floating_network_id: ext.network.id, port_id: port.id, description: 'web' } } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const fip = created.body.floatingip;
    assert.match(fip.floating_ip_address, /^198\.51\.100\.\d+$/, 'an address of the external subnet');
    assert.equal(fip.floating_network_id, ext.network.id, 'floating_network_id');
    assert.equal(fip.port_id, port.id, 'port_id');
    assert.equal(fip.fixed_ip_address, fixed, 'the port address');
    assert.equal(fip.router_id, router.id, 'the router that connects them');
    assert.equal(fip.status, 'ACTIVE', 'active when associated');
    assert.equal(fip.project_id, t.alpha.projectId, 'project_id');
    assert.equal(fip.tenant_id, t.alpha.projectId, 'tenant_id');
    assert.equal(fip.description, 'web', 'description');
    assert.equal(fip.revision_number, 1, 'revision');
    assert.deepEqual(fip.tags, [], 'tags');
    assert.equal(fip.dns_name, '', 'dns_name');
    assert.equal(fip.dns_domain, '', 'dns_domain');
    assert.equal(fip.qos_policy_id, null, 'qos_policy_id');
    assert.ok(!('name' in fip), 'floating IPs have no name');
    assert.deepEqual(
      fip.port_details,
      { name: 'vm-port', network_id: network.id, mac_address: port.mac_address, admin_state_up: true, status: port.status, device_id: '', device_owner: '' },
      'port_details',
    );
    assert.ok(t.driver.calls.some((c) => c.method === 'routerUpdated' && c.args[0] === router.id), 'the router heard of it');

    const fport = await t.request('GET', `/v2.0/ports?device_id=${fip.id}`, { user: t.admin });
    assert.equal(fport.body.ports.length, 1, 'a port holds the address');
    assert.equal(fport.body.ports[0].device_owner, 'network:floatingip', 'device_owner');
    assert.equal(fport.body.ports[0].project_id, '', 'of no project');
    assert.deepEqual(
      fport.body.ports[0].fixed_ips.map((ip: any) => ip.ip_address),
      [fip.floating_ip_address],
      'the floating address',
    );

    const shown = await t.request('GET', `/v2.0/floatingips/${fip.id}`, { user: t.alpha });
    assert.deepEqual(shown.body.floatingip, fip, 'show');
    const listed = await t.request('GET', `/v2.0/floatingips?port_id=${port.id}`, { user: t.alpha });
    assert.deepEqual(
      listed.body.floatingips.map((f: any) => f.id),
      [fip.id],
      'list by port',
    );

    const gatewayBusy = await t.request('PUT', `/v2.0/routers/${router.id}`, { user: t.alpha, payload: { router: { external_gateway_info: {} } } });
    expectNeutronError(gatewayBusy, 409, 'RouterExternalGatewayInUseByFloatingIp');
    const ifaceBusy = await routerAction(t, t.alpha, router.id as string, 'remove_router_interface', { subnet_id: subnet.id });
    expectNeutronError(ifaceBusy, 409, 'RouterInterfaceInUseByFloatingIP', `Router interface for subnet ${subnet.id} on router ${router.id} cannot be deleted, as it is required by one or more floating IPs.`);
    const routerBusy = await t.request('DELETE', `/v2.0/routers/${router.id}`, { user: t.alpha });
    assert.equal(routerBusy.status, 409, 'the router is in use');

    const off = await t.request('PUT', `/v2.0/floatingips/${fip.id}`, { user: t.alpha, payload: { floatingip: { port_id: null } } });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.equal(off.body.floatingip.port_id, null, 'port_id cleared');
    assert.equal(off.body.floatingip.fixed_ip_address, null, 'fixed_ip_address cleared');
    assert.equal(off.body.floatingip.router_id, null, 'router_id cleared');
    assert.equal(off.body.floatingip.port_details, null, 'no port details');
    assert.equal(off.body.floatingip.status, 'DOWN', 'down when not associated');
    assert.equal(off.body.floatingip.revision_number, 2, 'revision bumped');
    assert.equal(off.body.floatingip.floating_ip_address, fip.floating_ip_address, 'the address is kept');

    const del = await t.request('DELETE', `/v2.0/floatingips/${fip.id}`, { user: t.alpha });
    assert.equal(del.status, 204, JSON.stringify(del.body));
    const notified = notifications.events.filter((e) => e.type.startsWith('floatingip.') && (e.payload.floatingip?.id ?? e.payload.floatingip_id) === fip.id);
    assert.deepEqual(
      notified.map((e) => e.type),
      ['floatingip.create.end', 'floatingip.update.end', 'floatingip.delete.end'],
      'notified',
    );
    assert.equal(notified[2]?.payload.floatingip_id, fip.id, 'delete payload');
    assert.equal((await t.request('GET', `/v2.0/floatingips/${fip.id}`, { user: t.alpha })).status, 404, 'gone');
    const portsLeft = await t.request('GET', `/v2.0/ports?device_id=${fip.id}`, { user: t.admin });
    assert.equal(portsLeft.body.ports.length, 0, 'its port is deleted');
    const reuse = await t.request('POST', '/v2.0/floatingips', { user: t.admin, payload: { floatingip: { floating_network_id: ext.network.id, floating_ip_address: fip.floating_ip_address } } });
    assert.equal(reuse.status, 201, `the address is free again: ${JSON.stringify(reuse.body)}`);

    const removed = await routerAction(t, t.alpha, router.id as string, 'remove_router_interface', { subnet_id: subnet.id });
    assert.equal(removed.status, 200, 'the interface may go now');
    const cleared = await t.request('PUT', `/v2.0/routers/${router.id}`, { user: t.alpha, payload: { router: { external_gateway_info: {} } } });
    assert.equal(cleared.status, 200, 'the gateway may go now');
    assert.equal((await t.request('DELETE', `/v2.0/routers/${router.id}`, { user: t.alpha })).status, 204, 'the router may go now');
  });
});

describe('create', () => {
  test('unassociated: DOWN, no port, no router', async () => {
    const res = await createFip({});
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const fip = res.body.floatingip;
    assert.equal(fip.status, 'DOWN', 'DOWN');
    assert.equal(fip.port_id, null, 'port_id');
    assert.equal(fip.router_id, null, 'router_id');
    assert.equal(fip.fixed_ip_address, null, 'fixed_ip_address');
    assert.equal(fip.port_details, null, 'port_details');
  });

  test('the network must be external (400) and exist (404)', async () => {
    const res = await createFip({ floating_network_id: lan.network.id, port_id: lan.ports[0]?.id });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.NeutronError.message, `Bad floatingip request: Network ${lan.network.id} is not a valid external network.`, 'message');
    const missing = await createFip({ floating_network_id: lan.router.id });
    expectNeutronError(missing, 404, 'NetworkNotFound');
    const none = await t.request('POST', '/v2.0/floatingips', { user: t.alpha, payload: { floatingip: {} } });
    assert.equal(none.status, 400, 'floating_network_id is required');
    const bad = await createFip({ floating_ip_address: 'x' }, t.admin);
    assert.equal(bad.status, 400, 'an address that is not one');
    const unknown = await createFip({ name: 'x' });
    assert.equal(unknown.status, 400, 'floating IPs have no name');
  });

  test('floating_ip_address is for admins; admins get the address they ask for, or 409 when it is taken', async () => {
    // An address no earlier test took (automatic addresses are random within the pool).
    const ports = await t.request('GET', `/v2.0/ports?network_id=${pub.network.id}`, { user: t.admin });
    const taken = new Set((ports.body.ports as { fixed_ips: { ip_address: string }[] }[]).flatMap((p) => p.fixed_ips.map((ip) => ip.ip_address)));
    const wanted = Array.from({ length: 240 }, (_, i) => `172.24.4.${250 - i}`).find((ip) => !taken.has(ip)) ?? '';
    const member = await createFip({ floating_ip_address: wanted });
    expectNeutronError(member, 403, 'PolicyNotAuthorized');
    const admin = await createFip({ floating_ip_address: wanted }, t.admin);
    assert.equal(admin.status, 201, JSON.stringify(admin.body));
    assert.equal(admin.body.floatingip.floating_ip_address, wanted, 'the address asked for');
    const again = await createFip({ floating_ip_address: wanted }, t.admin);
    expectNeutronError(again, 409, 'IpAddressAlreadyAllocated');
    const bySubnet = await createFip({ subnet_id: pub.subnet.id });
    assert.equal(bySubnet.status, 201, 'a subnet may be named');
  });

  test('admins create floating IPs for a project, with its port', async () => {
    const port = await createPort(t, t.alpha, lan.network.id as string);
    const res = await t.request('POST', '/v2.0/floatingips', { user: t.admin, payload: { floatingip: { floating_network_id: pub.network.id, project_id: t.alpha.projectId, port_id: port.id } } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.floatingip.project_id, t.alpha.projectId, 'project');
    assert.equal(res.body.floatingip.fixed_ip_address, port.fixed_ips[0].ip_address, 'associated');
    const seen = await t.request('GET', `/v2.0/floatingips/${res.body.floatingip.id}`, { user: t.alpha });
    assert.equal(seen.status, 200, 'the project sees it');
  });

  test('an empty pool is 409 IpAddressGenerationFailure; nothing is left behind', async () => {
    const tiny = await externalNetwork(t, '192.0.2.0/29', { allocation_pools: [{ start: '192.0.2.2', end: '192.0.2.2' }] });
    const first = await t.request('POST', '/v2.0/floatingips', { user: t.alpha, payload: { floatingip: { floating_network_id: tiny.network.id } } });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const second = await t.request('POST', '/v2.0/floatingips', { user: t.alpha, payload: { floatingip: { floating_network_id: tiny.network.id } } });
    expectNeutronError(second, 409, 'IpAddressGenerationFailure');
    const ports = await t.request('GET', `/v2.0/ports?network_id=${tiny.network.id}`, { user: t.admin });
    assert.equal(ports.body.ports.length, 1, 'only the first floating IP holds a port');
  });

  test('concurrent creates on a small pool: each address once, the rest 409', async () => {
    const small = await externalNetwork(t, '192.0.2.16/29', { allocation_pools: [{ start: '192.0.2.18', end: '192.0.2.20' }] });
    const replies = await Promise.all(Array.from({ length: 6 }, () => t.request('POST', '/v2.0/floatingips', { user: t.alpha, payload: { floatingip: { floating_network_id: small.network.id } } })));
    const created = replies.filter((r) => r.status === 201).map((r) => r.body.floatingip.floating_ip_address as string);
    assert.equal(created.length, 3, `three addresses: ${JSON.stringify(replies.map((r) => r.status))}`);
    assert.deepEqual([...created].sort(), ['192.0.2.18', '192.0.2.19', '192.0.2.20'], 'each address once');
    assert.ok(
      replies.filter((r) => r.status !== 201).every((r) => r.status === 409 && errorType(r) === 'IpAddressGenerationFailure'),
      'the others are IpAddressGenerationFailure',
    );
  });

  test('a refused association creates nothing', async () => {
    const before = (await t.request('GET', '/v2.0/floatingips', { user: t.admin })).body.floatingips.length;
    const res = await createFip({ port_id: lan.ports[0]?.id, fixed_ip_address: addressNotOn(lan.ports[0]) });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    const afterCount = (await t.request('GET', '/v2.0/floatingips', { user: t.admin })).body.floatingips.length;
    assert.equal(afterCount, before, 'no floating IP');
    const ports = await t.request('GET', '/v2.0/ports?device_owner=network:floatingip', { user: t.admin });
    assert.equal(ports.body.ports.length, afterCount, 'no orphan floating IP port');
  });

  test('the floatingip quota is enforced', async () => {
    const quota = await t.request('PUT', `/v2.0/quotas/${t.beta.projectId}`, { user: t.admin, payload: { quota: { floatingip: 1 } } });
    assert.equal(quota.status, 200, JSON.stringify(quota.body));
    assert.equal((await createFip({}, t.beta)).status, 201, 'the first');
    const over = await createFip({}, t.beta);
    expectNeutronError(over, 409, 'OverQuota');
    await t.request('PUT', `/v2.0/quotas/${t.beta.projectId}`, { user: t.admin, payload: { quota: { floatingip: 100 } } });
  });
});

describe('association', () => {
  test('a port no router connects to the floating network is 404 ExternalGatewayForFloatingIPNotFound', async () => {
    const { network, subnet } = await networkWithSubnet(t, t.alpha, '10.50.0.0/24');
    const noGateway = await createRouter(t, t.alpha);
    await routerAction(t, t.alpha, noGateway.id as string, 'add_router_interface', { subnet_id: subnet.id });
    const port = await createPort(t, t.alpha, network.id as string);
    const ip = port.fixed_ips[0].ip_address as string;
    const res = await createFip({ port_id: port.id, fixed_ip_address: ip });
    expectNeutronError(
      res,
      404,
      'ExternalGatewayForFloatingIPNotFound',
      `External network ${pub.network.id} is not reachable from subnet ${subnet.id}.  Therefore, cannot associate Port ${port.id} with a Floating IP.`,
    );
    const fip = (await createFip({})).body.floatingip;
    const update = await t.request('PUT', `/v2.0/floatingips/${fip.id}`, { user: t.alpha, payload: { floatingip: { port_id: port.id, fixed_ip_address: ip } } });
    assert.equal(update.status, 404, 'nor by update');
    assert.equal(errorType(update), 'ExternalGatewayForFloatingIPNotFound', 'type');
  });

  test('update associates, moves to another port, keeps the association on other updates', async () => {
    const fip = (await createFip({ port_id: lan.ports[0]?.id })).body.floatingip;
    assert.equal(fip.port_id, lan.ports[0]?.id, 'first port');
    const moved = await t.request('PUT', `/v2.0/floatingips/${fip.id}`, { user: t.alpha, payload: { floatingip: { port_id: lan.ports[1]?.id } } });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(moved.body.floatingip.port_id, lan.ports[1]?.id, 'second port');
    assert.equal(moved.body.floatingip.fixed_ip_address, lan.ports[1]?.fixed_ips[0].ip_address, 'its address');
    assert.equal(moved.body.floatingip.router_id, lan.router.id, 'router');
    const described = await t.request('PUT', `/v2.0/floatingips/${fip.id}`, { user: t.alpha, payload: { floatingip: { description: 'kept' } } });
    assert.equal(described.body.floatingip.port_id, lan.ports[1]?.id, 'still associated');
    assert.equal(described.body.floatingip.description, 'kept', 'description');
    const off = await t.request('PUT', `/v2.0/floatingips/${fip.id}`, { user: t.alpha, payload: { floatingip: { port_id: null } } });
    assert.equal(off.body.floatingip.status, 'DOWN', 'disassociated');
    const readOnly = await t.request('PUT', `/v2.0/floatingips/${fip.id}`, { user: t.alpha, payload: { floatingip: { floating_network_id: pub.network.id } } });
    assert.equal(readOnly.status, 400, 'floating_network_id cannot change');
  });

  test('a port on another router: the floating IP follows it', async () => {
    const fip = (await createFip({ port_id: lan.ports[1]?.id })).body.floatingip;
    const { network, subnet } = await networkWithSubnet(t, t.alpha, '10.51.0.0/24');
    const router2 = await createRouter(t, t.alpha, pub.network.id as string);
    await routerAction(t, t.alpha, router2.id as string, 'add_router_interface', { subnet_id: subnet.id });
    const port = await createPort(t, t.alpha, network.id as string);
    const res = await t.request('PUT', `/v2.0/floatingips/${fip.id}`, { user: t.alpha, payload: { floatingip: { port_id: port.id } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.floatingip.router_id, router2.id, 'the other router');
    assert.equal(res.body.floatingip.port_id, port.id, 'the new port');
  });

  test('one floating IP per port address (409); the address must be the port IPv4 one', async () => {
    const port = await createPort(t, t.alpha, lan.network.id as string);
    const first = await createFip({ port_id: port.id });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const second = await createFip({ port_id: port.id });
    expectNeutronError(second, 409, 'FloatingIPPortAlreadyAssociated');
    const notHeld = addressNotOn(port);
    const wrong = await createFip({ port_id: port.id, fixed_ip_address: notHeld });
    assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
    assert.equal(wrong.body.NeutronError.message, `Bad floatingip request: Port ${port.id} does not have fixed ip ${notHeld}.`, 'message');
    const noPort = await createFip({ fixed_ip_address: notHeld });
    assert.equal(noPort.status, 400, JSON.stringify(noPort.body));
    assert.equal(noPort.body.NeutronError.message, 'Bad floatingip request: fixed_ip_address cannot be specified without a port_id.', 'message');
    const missing = await createFip({ port_id: lan.router.id });
    assert.equal(missing.status, 404, 'a port that does not exist');
    assert.equal(errorType(missing), 'PortNotFound', 'PortNotFound');
  });

  test('a port with two IPv4 addresses needs fixed_ip_address; each address takes its own floating IP', async () => {
    const port = await createPort(t, t.alpha, lan.network.id as string, { fixed_ips: [{ subnet_id: lan.subnet.id }, { subnet_id: lan.subnet.id }] });
    assert.equal(port.fixed_ips.length, 2, 'two addresses');
    const [a, b] = port.fixed_ips.map((ip: any) => ip.ip_address as string);
    const ambiguous = await createFip({ port_id: port.id });
    assert.equal(ambiguous.status, 400, JSON.stringify(ambiguous.body));
    assert.equal(ambiguous.body.NeutronError.message, `Bad floatingip request: Port ${port.id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address when assigning a floating IP.`, 'message');
    const fa = await createFip({ port_id: port.id, fixed_ip_address: a });
    assert.equal(fa.status, 201, JSON.stringify(fa.body));
    assert.equal(fa.body.floatingip.fixed_ip_address, a, 'first address');
    const fb = await createFip({ port_id: port.id, fixed_ip_address: b });
    assert.equal(fb.status, 201, 'the other address takes another');
    const swap = await t.request('PUT', `/v2.0/floatingips/${fa.body.floatingip.id}`, { user: t.alpha, payload: { floatingip: { port_id: port.id, fixed_ip_address: b } } });
    assert.equal(swap.status, 409, 'b is taken');
    await t.request('DELETE', `/v2.0/floatingips/${fb.body.floatingip.id}`, { user: t.alpha });
    const moved = await t.request('PUT', `/v2.0/floatingips/${fa.body.floatingip.id}`, { user: t.alpha, payload: { floatingip: { port_id: port.id, fixed_ip_address: b } } });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(moved.body.floatingip.fixed_ip_address, b, 'moved to the other address');
  });

  test("another project's port is not found", async () => {
    const hidden = await networkWithSubnet(t, t.beta, '10.52.0.0/24');
    const betaPort = await createPort(t, t.beta, hidden.network.id as string);
    const res = await createFip({ port_id: betaPort.id });
    expectNeutronError(res, 404, 'PortNotFound');
  });

  test('deleting the port disassociates its floating IP', async () => {
    const port = await createPort(t, t.alpha, lan.network.id as string);
    const fip = (await createFip({ port_id: port.id })).body.floatingip;
    assert.equal(fip.status, 'ACTIVE', 'associated');
    const del = await t.request('DELETE', `/v2.0/ports/${port.id}`, { user: t.alpha });
    assert.equal(del.status, 204, JSON.stringify(del.body));
    const shown = await t.request('GET', `/v2.0/floatingips/${fip.id}`, { user: t.alpha });
    assert.equal(shown.body.floatingip.port_id, null, 'port_id');
    assert.equal(shown.body.floatingip.fixed_ip_address, null, 'fixed_ip_address');
    assert.equal(shown.body.floatingip.router_id, null, 'router_id');
    assert.equal(shown.body.floatingip.status, 'DOWN', 'status');
  });

  test('the floating port cannot be deleted through the port API', async () => {
    const fip = (await createFip({})).body.floatingip;
    const ports = await t.request('GET', `/v2.0/ports?device_id=${fip.id}`, { user: t.admin });
    const res = await t.request('DELETE', `/v2.0/ports/${ports.body.ports[0].id}`, { user: t.admin });
    expectNeutronError(res, 409, 'ServicePortInUse');
  });
});

describe('visibility and policy', () => {
  test("another project's floating IP is 404; lists show only the caller's; admins see all", async () => {
    const mine = (await createFip({})).body.floatingip;
    const theirs = (await createFip({}, t.beta)).body.floatingip;
    const adminOwn = (await createFip({}, t.admin)).body.floatingip;
    for (const [method, payload] of [
      ['GET', undefined],
      ['PUT', { floatingip: { description: 'x' } }],
      ['DELETE', undefined],
    ] as const) {
      const res = await t.request(method, `/v2.0/floatingips/${mine.id}`, { user: t.beta, payload });
      assert.equal(res.status, 404, `${method}: ${JSON.stringify(res.body)}`);
      assert.equal(errorType(res), 'FloatingIPNotFound', 'FloatingIPNotFound');
      assert.equal(res.body.NeutronError.message, `Floating IP ${mine.id} could not be found`, 'message');
    }
    const alphaList = (await t.request('GET', '/v2.0/floatingips', { user: t.alpha })).body.floatingips.map((f: any) => f.id);
    assert.ok(alphaList.includes(mine.id), 'own listed');
    assert.ok(!alphaList.includes(theirs.id) && !alphaList.includes(adminOwn.id), 'others not listed');
    const adminList = (await t.request('GET', '/v2.0/floatingips', { user: t.admin })).body.floatingips.map((f: any) => f.id);
    for (const id of [mine.id, theirs.id, adminOwn.id]) assert.ok(adminList.includes(id), 'admins list all');
    const byNetwork = await t.request('GET', `/v2.0/floatingips?floating_network_id=${pub.network.id}&fields=id&fields=status`, { user: t.alpha });
    assert.equal(byNetwork.status, 200, JSON.stringify(byNetwork.body));
    assert.deepEqual(Object.keys(byNetwork.body.floatingips[0]).sort(), ['id', 'status'], 'fields');
    const reader = await t.request('PUT', `/v2.0/floatingips/${mine.id}`, { user: t.alphaReader, payload: { floatingip: { description: 'x' } } });
    assert.equal(reader.status, 403, 'a reader may not change');
    const readerShow = await t.request('GET', `/v2.0/floatingips/${mine.id}`, { user: t.alphaReader });
    assert.equal(readerShow.status, 200, 'a reader reads');
  });

  test('deleting an external network deletes its unassociated floating IPs', async () => {
    const ext = await externalNetwork(t, '203.0.113.0/24');
    const fip = await t.request('POST', '/v2.0/floatingips', { user: t.admin, payload: { floatingip: { floating_network_id: ext.network.id } } });
    assert.equal(fip.status, 201, JSON.stringify(fip.body));
    const listed = await t.request('GET', `/v2.0/floatingips?floating_network_id=${ext.network.id}`, { user: t.admin });
    assert.deepEqual(
      listed.body.floatingips.map((f: any) => f.id),
      [fip.body.floatingip.id],
      'listed by network',
    );
    const del = await t.request('DELETE', `/v2.0/networks/${ext.network.id}`, { user: t.admin });
    assert.equal(del.status, 204, JSON.stringify(del.body));
    const gone = await t.request('GET', `/v2.0/floatingips/${fip.body.floatingip.id}`, { user: t.admin });
    assert.equal(gone.status, 404, 'the floating IP went with its network');
  });
});
