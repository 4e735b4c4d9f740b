import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createFlowCloud, type FlowCloud } from './cloud-flows.test-util.js';

// os-interface: ports attached and detached by the server's host, through
// the network service; errors as Nova answers them.

let f: FlowCloud;
let serverId: string;

before(async () => {
  f = await createFlowCloud();
  serverId = await f.boot('nic');
});

after(async () => {
  await f.close();
});

const url = (suffix = ''): string => `/servers/${serverId}/os-interface${suffix}`;

async function listPorts(): Promise<Record<string, any>[]> {
  const res = await f.cloud.request('GET', url(), { user: f.cloud.alpha, version: '2.70' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.interfaceAttachments;
}

async function secondNetwork(): Promise<string> {
  const net = await f.cloud.call('network', 'POST', '/v2.0/networks', { user: f.cloud.alpha, payload: { network: { name: 'back' } } });
  const subnet = await f.cloud.call('network', 'POST', '/v2.0/subnets', { user: f.cloud.alpha, payload: { subnet: { network_id: net.body.network.id, cidr: '10.2.0.0/24', ip_version: 4 } } });
  assert.equal(subnet.status, 201, JSON.stringify(subnet.body));
  return net.body.network.id;
}

describe('os-interface', () => {
  test('list and show the boot port', async () => {
    const ports = await listPorts();
    assert.equal(ports.length, 1, 'one port');
    const [port] = ports;
    assert.equal(port?.net_id, f.networkId, 'its network');
    assert.equal(port?.port_state, 'ACTIVE', 'bound');
    assert.match(port?.fixed_ips[0].ip_address ?? '', /^10\.1\.0\./, 'address');
    assert.equal(port?.tag, null, '2.70 tag');
    const old = await f.cloud.request('GET', url(), { user: f.cloud.alpha, version: '2.69' });
    assert.equal('tag' in old.body.interfaceAttachments[0], false, 'no tag before 2.70');
    const show = await f.cloud.request('GET', url(`/${port?.port_id}`), { user: f.cloud.alpha });
    assert.equal(show.status, 200, JSON.stringify(show.body));
    assert.equal(show.body.interfaceAttachment.mac_addr, port?.mac_addr, 'mac');
    const foreign = await f.cloud.call('network', 'POST', '/v2.0/ports', { user: f.cloud.alpha, payload: { port: { network_id: f.networkId } } });
    const notOurs = await f.cloud.request('GET', url(`/${foreign.body.port.id}`), { user: f.cloud.alpha });
    assert.equal(notOurs.status, 404, 'a port of no server');
    assert.equal(notOurs.body.itemNotFound.message, `Instance ${serverId} does not have a port with id ${foreign.body.port.id}`);
    const missing = await f.cloud.request('GET', url('/00000000-0000-0000-0000-000000000000'), { user: f.cloud.alpha });
    assert.equal(missing.status, 404, 'unknown port');
    const beta = await f.cloud.request('GET', url(), { user: f.cloud.beta });
    assert.equal(beta.status, 404, 'another project’s server is not found');
    await f.cloud.call('network', 'DELETE', `/v2.0/ports/${foreign.body.port.id}`, { user: f.cloud.alpha });
  });

  test('attach on a network (fixed IP, 2.49 tag) plugs a new port; detach deletes it', async () => {
    const netId = await secondNetwork();
    const res = await f.cloud.request('POST', url(), { user: f.cloud.alpha, version: '2.70', payload: { interfaceAttachment: { net_id: netId, fixed_ips: [{ ip_address: '10.2.0.50' }], tag: 'backend' } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const attached = res.body.interfaceAttachment;
    assert.equal(attached.net_id, netId, 'on that network');
    assert.deepEqual(attached.fixed_ips.map((ip: { ip_address: string }) => ip.ip_address), ['10.2.0.50'], 'the address asked for');
    assert.equal(attached.tag, 'backend', 'tagged');
    assert.equal((await listPorts()).length, 2, 'two ports');
    const server = (await f.cloud.request('GET', `/servers/${serverId}`, { user: f.cloud.alpha })).body.server;
    assert.deepEqual(server.addresses.back.map((a: { addr: string }) => a.addr), ['10.2.0.50'], 'the server shows the address');
    const plugged = f.cloud.agents.some((a) => (a.driver as unknown as { calls: { method: string; args?: unknown[] }[] }).calls.some((c) => c.method === 'attachInterface' && c.args?.[0] === attached.port_id));
    assert.ok(plugged, 'the driver plugged it');

    const del = await f.cloud.request('DELETE', url(`/${attached.port_id}`), { user: f.cloud.alpha });
    assert.equal(del.status, 202, JSON.stringify(del.body));
    for (let i = 0; i < 200 && (await listPorts()).length > 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await listPorts()).length, 1, 'back to one');
    const port = await f.cloud.call('network', 'GET', `/v2.0/ports/${attached.port_id}`, { user: f.cloud.admin });
    assert.equal(port.status, 404, 'the port compute made is deleted');
    // The agent records the server's new network info just after it deletes the port.
    let addresses: Record<string, unknown> = { back: [] };
    for (let i = 0; i < 200 && 'back' in addresses; i++) {
      addresses = (await f.cloud.request('GET', `/servers/${serverId}`, { user: f.cloud.alpha })).body.server.addresses;
      if ('back' in addresses) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal('back' in addresses, false, 'the server no longer shows the address');
    const again = await f.cloud.request('DELETE', url(`/${attached.port_id}`), { user: f.cloud.alpha });
    assert.equal(again.status, 404, 'no longer attached');
  });

  test('attach a given port: bound to the server; detach unbinds and keeps it', async () => {
    const created = await f.cloud.call('network', 'POST', '/v2.0/ports', { user: f.cloud.alpha, payload: { port: { network_id: f.networkId } } });
    const portId = created.body.port.id as string;
    const res = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { interfaceAttachment: { port_id: portId } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.interfaceAttachment.port_id, portId, 'that port');
    const bound = await f.cloud.call('network', 'GET', `/v2.0/ports/${portId}`, { user: f.cloud.admin });
    assert.equal(bound.body.port.device_id, serverId, 'the server’s');
    assert.ok(bound.body.port['binding:host_id'], 'bound to its host');
    const inUse = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { interfaceAttachment: { port_id: portId } } });
    assert.equal(inUse.status, 409, 'a port in use');
    assert.equal(inUse.body.conflictingRequest.message, `Port ${portId} is still in use.`);
    assert.equal((await f.cloud.request('DELETE', url(`/${portId}`), { user: f.cloud.alpha })).status, 202);
    let port: Record<string, any> = bound.body.port;
    for (let i = 0; i < 200 && port.device_id; i++) {
      port = (await f.cloud.call('network', 'GET', `/v2.0/ports/${portId}`, { user: f.cloud.admin })).body.port;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(port.device_id, '', 'unbound from the server');
    assert.equal(port['binding:host_id'], '', 'and from the host');
    assert.equal(port.status, 'DOWN', 'and down, as nothing carries its traffic');
    const actions = await f.cloud.request('GET', `/servers/${serverId}/os-instance-actions`, { user: f.cloud.alpha });
    const names = (actions.body.instanceActions as { action: string }[]).map((a) => a.action);
    assert.ok(names.includes('attach_interface') && names.includes('detach_interface'), JSON.stringify(names));
    await f.cloud.call('network', 'DELETE', `/v2.0/ports/${portId}`, { user: f.cloud.alpha });
  });

  test('bad requests: both ids, an address without a network, unknown port or network, wrong state', async () => {
    const both = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { interfaceAttachment: { port_id: '11111111-2222-3333-4444-555555555555', net_id: f.networkId } } });
    assert.equal(both.status, 400, JSON.stringify(both.body));
    assert.equal(both.body.badRequest.message, 'Must not input both network_id and port_id');
    const ipOnly = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { interfaceAttachment: { fixed_ips: [{ ip_address: '10.1.0.99' }] } } });
    assert.equal(ipOnly.status, 400, 'an address needs a network');
    assert.equal(ipOnly.body.badRequest.message, 'Must input network_id when request IP address');
    const badUuid = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { interfaceAttachment: { net_id: 'nope' } } });
    assert.equal(badUuid.status, 400, 'not a uuid');
    const tagEarly = await f.cloud.request('POST', url(), { user: f.cloud.alpha, version: '2.48', payload: { interfaceAttachment: { net_id: f.networkId, tag: 'x' } } });
    assert.equal(tagEarly.status, 400, 'tag is 2.49');
    const port = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { interfaceAttachment: { port_id: '11111111-2222-3333-4444-555555555555' } } });
    assert.equal(port.status, 404, 'unknown port');
    assert.equal(port.body.itemNotFound.message, 'Port id 11111111-2222-3333-4444-555555555555 could not be found.');
    const net = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { interfaceAttachment: { net_id: '11111111-2222-3333-4444-555555555555' } } });
    assert.equal(net.status, 404, 'unknown network');
    assert.equal(net.body.itemNotFound.message, 'Network 11111111-2222-3333-4444-555555555555 could not be found.');
    const reader = await f.cloud.request('POST', url(), { user: f.cloud.alphaReader, payload: { interfaceAttachment: { net_id: f.networkId } } });
    assert.equal(reader.status, 403, 'readers cannot attach');
    const server = await f.cloud.request('POST', `/servers/00000000-0000-0000-0000-000000000000/os-interface`, { user: f.cloud.alpha, payload: { interfaceAttachment: { net_id: f.networkId } } });
    assert.equal(server.status, 404, 'unknown server');

    assert.equal((await f.act(serverId, { pause: null })).status, 202);
    await f.settle(serverId);
    assert.equal((await f.act(serverId, { suspend: null })).status, 409, 'a paused server cannot suspend');
    assert.equal((await f.act(serverId, { unpause: null })).status, 202);
    await f.settle(serverId);
    assert.equal((await f.act(serverId, { suspend: null })).status, 202);
    await f.settle(serverId);
    const suspended = await f.cloud.request('POST', url(), { user: f.cloud.alpha, payload: { interfaceAttachment: { net_id: f.networkId } } });
    assert.equal(suspended.status, 409, JSON.stringify(suspended.body));
    assert.equal(suspended.body.conflictingRequest.message, `Cannot 'attach_interface' instance ${serverId} while it is in vm_state suspended`);
    const [first] = await listPorts();
    const detach = await f.cloud.request('DELETE', url(`/${first?.port_id}`), { user: f.cloud.alpha });
    assert.equal(detach.status, 409, 'nor detach');
    assert.equal((await f.act(serverId, { resume: null })).status, 202);
    await f.settle(serverId);
  });
});
