import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestNetwork, errorType, expectNeutronError, type TestNetwork } from '../testing.js';
import { createPort, createRouter, createSubnet, externalNetwork, networkWithSubnet, routerAction } from './l3.test-util.js';

// Facts from neutron-lib's api-ref (routers.inc) and Tempest's
// test_routers(_negative).py and admin/test_routers(_negative).py.

let t: TestNetwork;
let pub: { network: Record<string, any>; subnet: Record<string, any> };
let notifications: ReturnType<TestNetwork['recordNotifications']>;

before(async () => {
  t = await createTestNetwork();
  notifications = t.recordNotifications();
  for (const user of [t.alpha, t.admin]) {
    const res = await t.request('PUT', `/v2.0/quotas/${user.projectId}`, { user: t.admin, payload: { quota: { router: 100, port: 1000 } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  pub = await externalNetwork(t, '172.24.4.0/24');
});

after(async () => {
  await t.close();
});

describe('create, show, list, update, delete', () => {
  test('a member creates a router: ACTIVE, no gateway, no routes, standard attributes', async () => {
    const res = await t.request('POST', '/v2.0/routers', { user: t.alpha, payload: { router: { name: 'r1', description: 'd' } } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const r = res.body.router;
    assert.equal(r.name, 'r1', 'name');
    assert.equal(r.description, 'd', 'description');
    assert.equal(r.status, 'ACTIVE', 'status');
    assert.equal(r.admin_state_up, true, 'admin_state_up defaults to true');
    assert.equal(r.external_gateway_info, null, 'no gateway');
    assert.deepEqual(r.routes, [], 'no routes');
    assert.deepEqual(r.availability_zone_hints, [], 'no hints');
    assert.deepEqual(r.availability_zones, ['nova'], 'the configured zone');
    assert.deepEqual(r.tags, [], 'tags');
    assert.equal(r.project_id, t.alpha.projectId, 'project_id');
    assert.equal(r.tenant_id, t.alpha.projectId, 'tenant_id');
    assert.equal(r.revision_number, 1, 'revision');
    assert.match(r.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'created_at');
    assert.ok(!('distributed' in r) && !('ha' in r), 'distributed and ha are hidden from members');
    assert.ok(!('gw_port_id' in r), 'gw_port_id is internal');
    const shown = await t.request('GET', `/v2.0/routers/${r.id}`, { user: t.admin });
    assert.equal(shown.body.router.distributed, false, 'admins see distributed false');
    assert.equal(shown.body.router.ha, false, 'admins see ha false');
    assert.ok(t.driver.calls.some((c) => c.method === 'routerUpdated' && c.args[0] === r.id), 'the driver heard of the router');
  });

  test('show with fields, list with filters; another project sees nothing (404), a reader reads but may not change', async () => {
    const r = await createRouter(t, t.alpha, undefined, { name: 'visible' });
    const fields = await t.request('GET', `/v2.0/routers/${r.id}?fields=name&fields=id`, { user: t.alpha });
    assert.deepEqual(fields.body.router, { name: 'visible', id: r.id }, 'fields');
    const list = await t.request('GET', '/v2.0/routers?name=visible', { user: t.alpha });
    assert.deepEqual(
      list.body.routers.map((x: any) => x.id),
      [r.id],
      'filter by name',
    );
    const bad = await t.request('GET', '/v2.0/routers?bogus=1', { user: t.alpha });
    assert.equal(bad.status, 400, 'unknown filter');
    for (const [method, payload] of [
      ['GET', undefined],
      ['PUT', { router: { name: 'x' } }],
      ['DELETE', undefined],
    ] as const) {
      const res = await t.request(method, `/v2.0/routers/${r.id}`, { user: t.beta, payload });
      assert.equal(res.status, 404, `${method} by another project: ${JSON.stringify(res.body)}`);
      assert.equal(errorType(res), 'RouterNotFound', 'RouterNotFound');
      assert.equal(res.body.NeutronError.message, `Router ${r.id} could not be found`, 'message');
    }
    const betaList = await t.request('GET', '/v2.0/routers', { user: t.beta });
    assert.ok(!betaList.body.routers.some((x: any) => x.id === r.id), 'not listed for another project');
    const adminList = await t.request('GET', '/v2.0/routers', { user: t.admin });
    assert.ok(adminList.body.routers.some((x: any) => x.id === r.id), 'admins list every project');
    const read = await t.request('GET', `/v2.0/routers/${r.id}`, { user: t.alphaReader });
    assert.equal(read.status, 200, 'a reader reads');
    const change = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alphaReader, payload: { router: { name: 'x' } } });
    assert.equal(change.status, 403, 'a reader may not change');
    assert.equal(errorType(change), 'PolicyNotAuthorized', 'PolicyNotAuthorized');
    const action = await routerAction(t, t.alphaReader, r.id as string, 'add_extraroutes', { router: { routes: [] } });
    assert.equal(action.status, 403, 'nor use the actions');
  });

  test('update bumps the revision; delete is 204, then 404; the driver hears of the deletion', async () => {
    const r = await createRouter(t, t.alpha);
    const res = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { name: 'renamed', admin_state_up: false, description: 'x' } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.router.name, 'renamed', 'name');
    assert.equal(res.body.router.admin_state_up, false, 'admin_state_up');
    assert.equal(res.body.router.revision_number, 2, 'revision bumped');
    const del = await t.request('DELETE', `/v2.0/routers/${r.id}`, { user: t.alpha });
    assert.equal(del.status, 204, JSON.stringify(del.body));
    const gone = await t.request('GET', `/v2.0/routers/${r.id}`, { user: t.alpha });
    assert.equal(gone.status, 404, 'gone');
    assert.ok(t.driver.calls.some((c) => c.method === 'routerDeleted' && c.args[0] === r.id), 'routerDeleted');
    const again = await t.request('DELETE', `/v2.0/routers/${r.id}`, { user: t.alpha });
    assert.equal(again.status, 404, 'deleting again is 404');
  });

  test('each committed change is notified with the view', async () => {
    const { subnet } = await networkWithSubnet(t, t.alpha, '10.8.0.0/24');
    notifications.clear();
    const r = await createRouter(t, t.alpha);
    await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { name: 'n2' } } });
    const added = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: subnet.id });
    await routerAction(t, t.alpha, r.id as string, 'remove_router_interface', { subnet_id: subnet.id });
    await t.request('DELETE', `/v2.0/routers/${r.id}`, { user: t.alpha });
    const mine = notifications.events.filter((e) => e.type.startsWith('router.'));
    assert.deepEqual(
      mine.map((e) => e.type),
      ['router.create.end', 'router.update.end', 'router.interface.create', 'router.interface.delete', 'router.delete.end'],
      'event types in order',
    );
    assert.equal(mine[0]?.payload.router.id, r.id, 'create payload is the view');
    assert.equal(mine[1]?.payload.router.name, 'n2', 'update payload is the new view');
    assert.deepEqual(mine[2]?.payload.router_interface, added.body, 'interface payload');
    assert.equal(mine[4]?.payload.router_id, r.id, 'delete payload has the id');
    assert.equal(mine[4]?.payload.router.id, r.id, 'and the last view');
  });

  test('bad input is 400 and creates nothing', async () => {
    const cases: [unknown, string][] = [
      [{ router: { bogus: 1 } }, 'unknown attribute'],
      [{ router: { routes: [] } }, 'routes are not allowed in POST'],
      [{ router: { admin_state_up: 'maybe' } }, 'admin_state_up not a boolean'],
      [{ router: { name: 'x'.repeat(256) } }, 'name too long'],
      [{ router: { external_gateway_info: { enable_snat: true } } }, 'gateway without network_id'],
      [{ router: { external_gateway_info: { network_id: 'nope' } } }, 'gateway network_id not a UUID'],
      [{ router: { external_gateway_info: { network_id: pub.network.id, color: 'red' } } }, 'unexpected gateway key'],
      [{ router: { availability_zone_hints: 'nova' } }, 'hints not a list'],
      [{ notrouter: {} }, 'no router in the body'],
      ['{not json', 'malformed JSON'],
    ];
    const before = (await t.request('GET', '/v2.0/routers', { user: t.admin })).body.routers.length;
    for (const [payload, why] of cases) {
      const res = await t.request('POST', '/v2.0/routers', { user: t.alpha, payload });
      assert.equal(res.status, 400, `${why}: ${JSON.stringify(res.body)}`);
      assert.equal(typeof res.body.NeutronError?.message, 'string', `${why}: a Neutron fault`);
    }
    const afterCount = (await t.request('GET', '/v2.0/routers', { user: t.admin })).body.routers.length;
    assert.equal(afterCount, before, 'nothing created');
    const hint = await t.request('POST', '/v2.0/routers', { user: t.alpha, payload: { router: { availability_zone_hints: ['nowhere'] } } });
    assert.equal(hint.status, 404, 'an unknown zone');
    assert.equal(errorType(hint), 'AvailabilityZoneNotFound', 'AvailabilityZoneNotFound');
    const ok = await createRouter(t, t.alpha, undefined, { availability_zone_hints: ['nova'] });
    assert.deepEqual(ok.availability_zone_hints, ['nova'], 'a known zone is kept');
  });

  test('distributed and ha: admin only, and only false', async () => {
    const member = await t.request('POST', '/v2.0/routers', { user: t.alpha, payload: { router: { distributed: false } } });
    assert.equal(member.status, 403, 'members may not set distributed');
    const ha = await t.request('POST', '/v2.0/routers', { user: t.alpha, payload: { router: { ha: false } } });
    assert.equal(ha.status, 403, 'members may not set ha');
    const admin = await t.request('POST', '/v2.0/routers', { user: t.admin, payload: { router: { distributed: false, ha: false } } });
    assert.equal(admin.status, 201, JSON.stringify(admin.body));
    const dvr = await t.request('POST', '/v2.0/routers', { user: t.admin, payload: { router: { distributed: true } } });
    assert.equal(dvr.status, 400, 'no DVR here');
  });

  test('admins create routers for other projects; members may not', async () => {
    const res = await t.request('POST', '/v2.0/routers', { user: t.admin, payload: { router: { project_id: t.beta.projectId } } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.router.project_id, t.beta.projectId, 'owned by beta');
    const seen = await t.request('GET', `/v2.0/routers/${res.body.router.id}`, { user: t.beta });
    assert.equal(seen.status, 200, 'beta sees it');
    const member = await t.request('POST', '/v2.0/routers', { user: t.alpha, payload: { router: { tenant_id: t.beta.projectId } } });
    assert.equal(member.status, 403, 'a member may not create in another project');
  });

  test('the router quota is enforced', async () => {
    const quota = await t.request('PUT', `/v2.0/quotas/${t.beta.projectId}`, { user: t.admin, payload: { quota: { router: 2 } } });
    assert.equal(quota.status, 200, JSON.stringify(quota.body));
    const have = (await t.request('GET', '/v2.0/routers', { user: t.beta })).body.routers.length;
    for (let i = have; i < 2; i++) await createRouter(t, t.beta);
    const res = await t.request('POST', '/v2.0/routers', { user: t.beta, payload: { router: {} } });
    expectNeutronError(res, 409, 'OverQuota');
    await t.request('PUT', `/v2.0/quotas/${t.beta.projectId}`, { user: t.admin, payload: { quota: { router: 10 } } });
  });
});

describe('external gateway', () => {
  test('a gateway takes a network:router_gateway port of no project on the external network; SNAT on by default', async () => {
    const r = await createRouter(t, t.alpha, pub.network.id as string);
    const gw = r.external_gateway_info;
    assert.equal(gw.network_id, pub.network.id, 'network_id');
    assert.equal(gw.enable_snat, true, 'enable_snat defaults to true');
    assert.equal(gw.external_fixed_ips.length, 1, 'one address');
    assert.equal(gw.external_fixed_ips[0].subnet_id, pub.subnet.id, 'on the public subnet');
    const ports = await t.request('GET', `/v2.0/ports?device_id=${r.id}&device_owner=network:router_gateway`, { user: t.admin });
    assert.equal(ports.body.ports.length, 1, JSON.stringify(ports.body));
    const port = ports.body.ports[0];
    assert.equal(port.project_id, '', 'the gateway port belongs to no project');
    assert.equal(port.network_id, pub.network.id, 'on the external network');
    assert.deepEqual(
      port.fixed_ips.map((ip: any) => ip.ip_address),
      [gw.external_fixed_ips[0].ip_address],
      'the address shown',
    );
    const mine = await t.request('GET', `/v2.0/ports?device_id=${r.id}`, { user: t.alpha });
    assert.equal(mine.body.ports.length, 0, 'members do not see the gateway port');
  });

  test('setting enable_snat needs an admin; admins set it either way', async () => {
    const member = await t.request('POST', '/v2.0/routers', { user: t.alpha, payload: { router: { external_gateway_info: { network_id: pub.network.id, enable_snat: false } } } });
    assert.equal(member.status, 403, JSON.stringify(member.body));
    for (const snat of [false, true]) {
      const res = await t.request('POST', '/v2.0/routers', { user: t.admin, payload: { router: { external_gateway_info: { network_id: pub.network.id, enable_snat: snat } } } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.router.external_gateway_info.enable_snat, snat, `enable_snat ${snat}`);
    }
    const r = await createRouter(t, t.alpha, pub.network.id as string);
    const off = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.admin, payload: { router: { external_gateway_info: { network_id: pub.network.id, enable_snat: false } } } });
    assert.equal(off.body.router.external_gateway_info.enable_snat, false, 'reset without SNAT');
    assert.deepEqual(off.body.router.external_gateway_info.external_fixed_ips, r.external_gateway_info.external_fixed_ips, 'the gateway address is kept');
  });

  test('set by update, then cleared with {}: the port goes', async () => {
    const r = await createRouter(t, t.alpha);
    const set = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { external_gateway_info: { network_id: pub.network.id } } } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal(set.body.router.external_gateway_info.network_id, pub.network.id, 'gateway set');
    assert.equal(set.body.router.revision_number, 2, 'revision bumped once');
    const clear = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { external_gateway_info: {} } } });
    assert.equal(clear.status, 200, JSON.stringify(clear.body));
    assert.equal(clear.body.router.external_gateway_info, null, 'gateway cleared');
    const ports = await t.request('GET', `/v2.0/ports?device_id=${r.id}`, { user: t.admin });
    assert.equal(ports.body.ports.length, 0, 'the gateway port is deleted');
    const setAgain = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { external_gateway_info: { network_id: pub.network.id } } } });
    assert.equal(setAgain.status, 200, 'set again');
    const clearNull = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { external_gateway_info: null } } });
    assert.equal(clearNull.body.router.external_gateway_info, null, 'null clears too');
  });

  test('a network that is not external is 400; one that does not exist is 404', async () => {
    const { network } = await networkWithSubnet(t, t.alpha, '10.9.0.0/24');
    const r = await createRouter(t, t.alpha);
    const internal = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { external_gateway_info: { network_id: network.id } } } });
    assert.equal(internal.status, 400, JSON.stringify(internal.body));
    assert.equal(internal.body.NeutronError.message, `Bad router request: Network ${network.id} is not an external network.`, 'message');
    const missing = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { external_gateway_info: { network_id: r.id } } } });
    expectNeutronError(missing, 404, 'NetworkNotFound');
    const { network: hidden } = await networkWithSubnet(t, t.beta, '10.9.1.0/24');
    const other = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { external_gateway_info: { network_id: hidden.id } } } });
    assert.equal(other.status, 404, "another project's network is not found");
  });

  test('external_fixed_ips: admin only; a free address is taken, a used one is 409, the gateway address 400', async () => {
    const member = await t.request('POST', '/v2.0/routers', { user: t.alpha, payload: { router: { external_gateway_info: { network_id: pub.network.id, external_fixed_ips: [{ subnet_id: pub.subnet.id }] } } } });
    assert.equal(member.status, 403, 'members may not choose addresses');
    const port = await createPort(t, t.admin, pub.network.id as string);
    const used = port.fixed_ips[0];
    const taken = await t.request('POST', '/v2.0/routers', { user: t.admin, payload: { router: { external_gateway_info: { network_id: pub.network.id, external_fixed_ips: [used] } } } });
    expectNeutronError(taken, 409, 'IpAddressAlreadyAllocated');
    await t.request('DELETE', `/v2.0/ports/${port.id}`, { user: t.admin });
    const res = await t.request('POST', '/v2.0/routers', { user: t.admin, payload: { router: { external_gateway_info: { network_id: pub.network.id, external_fixed_ips: [used] } } } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.router.external_gateway_info.external_fixed_ips[0].ip_address, used.ip_address, 'the freed address');
    const gateway = await t.request('POST', '/v2.0/routers', { user: t.admin, payload: { router: { external_gateway_info: { network_id: pub.network.id, external_fixed_ips: [{ ip_address: pub.subnet.gateway_ip }] } } } });
    assert.equal(gateway.status, 400, JSON.stringify(gateway.body));
    const moved = await t.request('PUT', `/v2.0/routers/${res.body.router.id}`, {
      user: t.admin,
      payload: { router: { external_gateway_info: { network_id: pub.network.id, external_fixed_ips: [{ ip_address: '172.24.4.200' }] } } },
    });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(moved.body.router.external_gateway_info.external_fixed_ips[0].ip_address, '172.24.4.200', 'the gateway address changed');
  });

  test('a router with a gateway is deleted with its gateway port', async () => {
    const r = await createRouter(t, t.alpha, pub.network.id as string);
    const del = await t.request('DELETE', `/v2.0/routers/${r.id}`, { user: t.alpha });
    assert.equal(del.status, 204, JSON.stringify(del.body));
    const ports = await t.request('GET', `/v2.0/ports?device_id=${r.id}`, { user: t.admin });
    assert.equal(ports.body.ports.length, 0, 'the gateway port went with it');
  });
});

describe('interfaces', () => {
  test('by subnet: a network:router_interface port holds the gateway address; the router is in use until it is removed', async () => {
    const { network, subnet } = await networkWithSubnet(t, t.alpha, '10.20.0.0/24');
    const r = await createRouter(t, t.alpha);
    const res = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: subnet.id });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const info = res.body;
    assert.equal(info.id, r.id, 'id is the router');
    assert.equal(info.subnet_id, subnet.id, 'subnet_id');
    assert.deepEqual(info.subnet_ids, [subnet.id], 'subnet_ids');
    assert.equal(info.network_id, network.id, 'network_id');
    assert.equal(info.project_id, t.alpha.projectId, 'project_id');
    assert.equal(info.tenant_id, t.alpha.projectId, 'tenant_id');
    assert.deepEqual(info.tags, [], 'tags');
    const port = await t.request('GET', `/v2.0/ports/${info.port_id}`, { user: t.alpha });
    assert.equal(port.body.port.device_id, r.id, 'device_id');
    assert.equal(port.body.port.device_owner, 'network:router_interface', 'device_owner');
    assert.deepEqual(port.body.port.fixed_ips, [{ subnet_id: subnet.id, ip_address: '10.20.0.1' }], 'the gateway address');
    const direct = await t.request('DELETE', `/v2.0/ports/${info.port_id}`, { user: t.alpha });
    assert.equal(direct.status, 409, 'an interface port is not deleted through the port API');
    const busy = await t.request('DELETE', `/v2.0/routers/${r.id}`, { user: t.alpha });
    expectNeutronError(busy, 409, 'RouterInUse', `Router ${r.id} has ports still attached: ${info.port_id}`);
    const shown = await t.request('GET', `/v2.0/routers/${r.id}`, { user: t.alpha });
    assert.equal(shown.body.router.revision_number, 2, 'adding an interface bumps the revision');

    const removed = await routerAction(t, t.alpha, r.id as string, 'remove_router_interface', { subnet_id: subnet.id });
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.equal(removed.body.port_id, info.port_id, 'the same port');
    assert.equal(removed.body.subnet_id, subnet.id, 'subnet_id');
    const portGone = await t.request('GET', `/v2.0/ports/${info.port_id}`, { user: t.alpha });
    assert.equal(portGone.status, 404, 'the interface port is deleted');
    assert.ok(t.driver.calls.some((c) => c.method === 'portDeleted' && (c.args[0] as { id: string }).id === info.port_id), 'the driver heard of the deleted port');
    const again = await routerAction(t, t.alpha, r.id as string, 'remove_router_interface', { subnet_id: subnet.id });
    expectNeutronError(again, 404, 'RouterInterfaceNotFoundForSubnet', `Router ${r.id} has no interface on subnet ${subnet.id}`);
    const del = await t.request('DELETE', `/v2.0/routers/${r.id}`, { user: t.alpha });
    assert.equal(del.status, 204, 'deletable once the interface is gone');
  });

  test('one port per subnet, no overlapping subnets, subnets need a gateway', async () => {
    const a = await networkWithSubnet(t, t.alpha, '10.21.0.0/24');
    const b = await networkWithSubnet(t, t.alpha, '10.21.0.0/24');
    const noGateway = await networkWithSubnet(t, t.alpha, '10.22.0.0/24', { gateway_ip: null });
    const r = await createRouter(t, t.alpha);
    assert.equal((await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: a.subnet.id })).status, 200, 'first interface');
    const dup = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: a.subnet.id });
    assert.equal(dup.status, 400, JSON.stringify(dup.body));
    assert.equal(dup.body.NeutronError.message, `Bad router request: Router already has a port on subnet ${a.subnet.id}.`, 'message');
    const overlap = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: b.subnet.id });
    assert.equal(overlap.status, 400, JSON.stringify(overlap.body));
    assert.match(overlap.body.NeutronError.message, /overlaps with cidr 10\.21\.0\.0\/24/, 'overlap message');
    const gw = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: noGateway.subnet.id });
    assert.equal(gw.status, 400, JSON.stringify(gw.body));
    assert.equal(gw.body.NeutronError.message, 'Bad router request: Subnet for router interface must have a gateway IP.', 'message');
    const ports = await t.request('GET', `/v2.0/ports?device_id=${r.id}`, { user: t.alpha });
    assert.equal(ports.body.ports.length, 1, 'refused requests left no port');
  });

  test('the body: subnet_id or port_id, valid UUIDs, not both', async () => {
    const r = await createRouter(t, t.alpha);
    const cases: [unknown, string][] = [
      [{}, 'Bad router request: Either subnet_id or port_id must be specified.'],
      [{ subnet_id: 'x' }, "Bad router request: 'x' is not a valid UUID."],
      [{ subnet_id: r.id, port_id: r.id }, 'Bad router request: Cannot specify both subnet-id and port-id.'],
    ];
    for (const [body, message] of cases) {
      const res = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.NeutronError.message, message, 'message');
    }
    const missing = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: r.id });
    assert.equal(missing.status, 404, 'a subnet that does not exist');
    assert.equal(errorType(missing), 'SubnetNotFound', 'SubnetNotFound');
    const notMine = await routerAction(t, t.beta, r.id as string, 'add_router_interface', { subnet_id: r.id });
    assert.equal(notMine.status, 404, "another project's router");
    assert.equal(errorType(notMine), 'RouterNotFound', 'RouterNotFound');
  });

  test("another project's subnet is not found; a shared network's subnet is not the member's to route", async () => {
    const r = await createRouter(t, t.alpha);
    const hidden = await networkWithSubnet(t, t.beta, '10.23.0.0/24');
    const res = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: hidden.subnet.id });
    expectNeutronError(res, 404, 'SubnetNotFound');
    const shared = await networkWithSubnet(t, t.admin, '10.24.0.0/24', {}, { shared: true });
    const sharedRes = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: shared.subnet.id });
    assert.equal(sharedRes.status, 400, JSON.stringify(sharedRes.body));
    assert.equal(sharedRes.body.NeutronError.message, `Bad router request: Cannot add interface to router because subnet ${shared.subnet.id} is not owned by project making the request.`, 'message');
  });

  test('by port: the port becomes the interface; a port with a device is 409 PortInUse; removal by port deletes it', async () => {
    const { network, subnet } = await networkWithSubnet(t, t.alpha, '10.25.0.0/24');
    const r = await createRouter(t, t.alpha);
    const port = await createPort(t, t.alpha, network.id as string, { name: 'gw-port' });
    const res = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { port_id: port.id });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.port_id, port.id, 'port_id');
    assert.equal(res.body.subnet_id, subnet.id, 'subnet_id');
    const shown = await t.request('GET', `/v2.0/ports/${port.id}`, { user: t.alpha });
    assert.equal(shown.body.port.device_id, r.id, 'device_id is the router');
    assert.equal(shown.body.port.device_owner, 'network:router_interface', 'device_owner');
    const r2 = await createRouter(t, t.alpha);
    const inUse = await routerAction(t, t.alpha, r2.id as string, 'add_router_interface', { port_id: port.id });
    expectNeutronError(inUse, 409, 'PortInUse');
    const vm = await createPort(t, t.alpha, network.id as string, { device_id: 'a-server' });
    const vmRes = await routerAction(t, t.alpha, r2.id as string, 'add_router_interface', { port_id: vm.id });
    assert.equal(vmRes.status, 409, 'a port with a device');
    const mismatch = await routerAction(t, t.alpha, r.id as string, 'remove_router_interface', { port_id: port.id, subnet_id: r.id });
    expectNeutronError(mismatch, 400, 'SubnetMismatchForPort');
    const notThere = await routerAction(t, t.alpha, r2.id as string, 'remove_router_interface', { port_id: port.id });
    expectNeutronError(notThere, 404, 'RouterInterfaceNotFound', `Router ${r2.id} does not have an interface with id ${port.id}`);
    const removed = await routerAction(t, t.alpha, r.id as string, 'remove_router_interface', { port_id: port.id });
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.equal((await t.request('GET', `/v2.0/ports/${port.id}`, { user: t.alpha })).status, 404, 'the port is deleted');
    assert.ok(t.driver.calls.some((c) => c.method === 'portDeleted' && (c.args[0] as { id: string }).id === port.id), 'the driver heard of the deleted port');
    const hidden = await networkWithSubnet(t, t.beta, '10.26.0.0/24');
    const betaPort = await createPort(t, t.beta, hidden.network.id as string);
    const notVisible = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { port_id: betaPort.id });
    assert.equal(notVisible.status, 404, "another project's port");
    assert.equal(errorType(notVisible), 'PortNotFound', 'PortNotFound');
  });

  test('a port without addresses cannot be an interface', async () => {
    const network = await t.create(t.alpha, 'networks', 'network', { name: 'no-subnet' });
    const port = await createPort(t, t.alpha, network.id as string);
    const r = await createRouter(t, t.alpha);
    const res = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { port_id: port.id });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.NeutronError.message, 'Bad router request: Router port must have at least one fixed IP.', 'message');
  });

  test('a subnet of the external network cannot also be an interface of a router with that gateway', async () => {
    const r = await createRouter(t, t.admin, pub.network.id as string);
    const res = await routerAction(t, t.admin, r.id as string, 'add_router_interface', { subnet_id: pub.subnet.id });
    assert.equal(res.status, 400, JSON.stringify(res.body));
  });
});

describe('extra routes', () => {
  test('routes through connected nexthops; the nexthop must be on a subnet of the router and not its own address', async () => {
    const { subnet } = await networkWithSubnet(t, t.alpha, '10.30.0.0/24');
    const r = await createRouter(t, t.alpha);
    await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: subnet.id });
    const routes = [{ destination: '192.168.50.0/24', nexthop: '10.30.0.5' }];
    const ok = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { routes } } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.router.routes, routes, 'routes set');
    const far = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { routes: [{ destination: '192.168.51.0/24', nexthop: '10.99.0.5' }] } } });
    expectNeutronError(far, 400, 'InvalidRoutes', "Invalid format for routes: [{'destination': '192.168.51.0/24', 'nexthop': '10.99.0.5'}], the nexthop is not connected with router");
    const own = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { routes: [{ destination: '192.168.51.0/24', nexthop: '10.30.0.1' }] } } });
    assert.equal(own.status, 400, 'the router own address');
    assert.equal(errorType(own), 'InvalidRoutes', 'InvalidRoutes');
    const bad = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { routes: [{ destination: '192.168.51.1/24', nexthop: '10.30.0.5' }] } } });
    assert.equal(bad.status, 400, 'a destination with host bits');
    const keys = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { routes: [{ destination: '192.168.51.0/24' }] } } });
    assert.equal(keys.status, 400, 'a route without nexthop');
    const unchanged = await t.request('GET', `/v2.0/routers/${r.id}`, { user: t.alpha });
    assert.deepEqual(unchanged.body.router.routes, routes, 'refused updates changed nothing');
    const inUse = await routerAction(t, t.alpha, r.id as string, 'remove_router_interface', { subnet_id: subnet.id });
    expectNeutronError(inUse, 409, 'RouterInterfaceInUseByRoute');
    const cleared = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.alpha, payload: { router: { routes: null } } });
    assert.deepEqual(cleared.body.router.routes, [], 'null clears the routes');
    const removed = await routerAction(t, t.alpha, r.id as string, 'remove_router_interface', { subnet_id: subnet.id });
    assert.equal(removed.status, 200, 'removable once no route needs it');
  });

  test('add_extraroutes and remove_extraroutes edit the set atomically', async () => {
    const { subnet } = await networkWithSubnet(t, t.alpha, '10.31.0.0/24');
    const r = await createRouter(t, t.alpha);
    await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: subnet.id });
    const a = { destination: '192.168.60.0/24', nexthop: '10.31.0.5' };
    const b = { destination: '192.168.61.0/24', nexthop: '10.31.0.6' };
    const added = await routerAction(t, t.alpha, r.id as string, 'add_extraroutes', { router: { routes: [a, b] } });
    assert.equal(added.status, 200, JSON.stringify(added.body));
    assert.deepEqual(added.body.router.routes, [a, b], 'both added');
    const twice = await routerAction(t, t.alpha, r.id as string, 'add_extraroutes', { router: { routes: [a] } });
    assert.deepEqual(twice.body.router.routes, [a, b], 'a duplicate is merged');
    const bad = await routerAction(t, t.alpha, r.id as string, 'add_extraroutes', { router: { routes: [{ destination: '192.168.62.0/24', nexthop: '10.200.0.1' }] } });
    assert.equal(bad.status, 400, 'an unreachable nexthop');
    const removed = await routerAction(t, t.alpha, r.id as string, 'remove_extraroutes', { router: { routes: [a, { destination: '1.2.3.0/24', nexthop: '10.31.0.9' }] } });
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.deepEqual(removed.body.router.routes, [b], 'a removed; an absent route is ignored');
    const noRoutes = await routerAction(t, t.alpha, r.id as string, 'add_extraroutes', { router: {} });
    assert.equal(noRoutes.status, 400, 'routes are required');
  });

  test('routes through the gateway subnet; clearing the gateway that routes need is refused', async () => {
    const r = await createRouter(t, t.admin, pub.network.id as string);
    const routes = [{ destination: '203.0.113.0/24', nexthop: '172.24.4.99' }];
    const ok = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.admin, payload: { router: { routes } } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const clear = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.admin, payload: { router: { external_gateway_info: {} } } });
    expectNeutronError(clear, 400, 'InvalidRoutes');
    const both = await t.request('PUT', `/v2.0/routers/${r.id}`, { user: t.admin, payload: { router: { external_gateway_info: {}, routes: [] } } });
    assert.equal(both.status, 200, JSON.stringify(both.body));
    assert.equal(both.body.router.external_gateway_info, null, 'cleared together with the routes');
  });
});

describe('IPv6', () => {
  test('an IPv6 subnet is an interface on its gateway address', async () => {
    const { subnet } = await networkWithSubnet(t, t.alpha, 'fd00:40::/64');
    const r = await createRouter(t, t.alpha);
    const res = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: subnet.id });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const port = await t.request('GET', `/v2.0/ports/${res.body.port_id}`, { user: t.alpha });
    assert.deepEqual(port.body.port.fixed_ips, [{ subnet_id: subnet.id, ip_address: subnet.gateway_ip }], 'gateway address');
  });

  test('a subnet with address mode but no RA mode is refused', async () => {
    const network = await t.create(t.alpha, 'networks', 'network', {});
    const subnet = await createSubnet(t, t.alpha, network.id as string, 'fd00:41::/64', { ipv6_address_mode: 'slaac' });
    const r = await createRouter(t, t.alpha);
    const res = await routerAction(t, t.alpha, r.id as string, 'add_router_interface', { subnet_id: subnet.id });
    assert.equal(res.status, 400, JSON.stringify(res.body));
  });
});
