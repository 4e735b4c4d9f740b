import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createFlowCloud, type FlowCloud } from '../api/cloud-flows.test-util.js';
import { buildMetadataApp, startMetadataApi } from './api.js';
import { instanceIdSignature } from './secret.js';

const SECRET = 'metadata-test-secret';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFvQ7zvR2m6q0pU0kJ0y2q5w8xQh9mWb1n3c4d5e6f7g alice@laptop';
const USER_DATA = '#!/bin/sh\necho hello from user data\n';

/**
 * The metadata API over a real test cloud: one server booted by alpha with a
 * key pair, user data and metadata on a network, asked about through
 * `inject` as Neutron's proxy, Neutron's haproxy and the guest itself would.
 */
describe('metadata API', () => {
  let flows: FlowCloud;
  let app: FastifyInstance;
  let serverId: string;
  let projectId: string;
  let fixedIp: string;

  before(async () => {
    flows = await createFlowCloud({ hosts: ['host-a'] });
    const { cloud } = flows;
    const key = await cloud.request('POST', '/os-keypairs', { user: cloud.alpha, version: '2.93', payload: { keypair: { name: 'alice', public_key: KEY } } });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    serverId = await flows.boot('web one', { key_name: 'alice', user_data: Buffer.from(USER_DATA).toString('base64'), metadata: { role: 'web' } });
    const server = (await cloud.request('GET', `/servers/${serverId}`, { user: cloud.alpha, version: '2.93' })).body.server;
    projectId = server.tenant_id;
    fixedIp = server.addresses.lan[0].addr;
    app = buildMetadataApp(cloud.config, { compute: cloud.compute, secret: SECRET });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    await flows?.close();
  });

  /** A request as Neutron's metadata agent sends it: signed instance id and tenant. */
  const proxied = (url: string, options: { method?: 'GET' | 'POST' | 'PUT'; payload?: string; headers?: Record<string, string> } = {}) =>
    app.inject({
      method: options.method ?? 'GET',
      url,
      headers: { 'x-instance-id': serverId, 'x-tenant-id': projectId, 'x-instance-id-signature': instanceIdSignature(SECRET, serverId), 'x-forwarded-for': fixedIp, ...(options.payload === undefined ? {} : { 'content-type': 'text/plain' }), ...options.headers },
      ...(options.payload === undefined ? {} : { payload: options.payload }),
    });

  test('/ lists the EC2 versions to anyone', async () => {
    const res = await app.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.equal(res.body, '1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest');
  });

  test('the OpenStack tree: versions, a version\'s files, meta_data.json', async () => {
    const versions = await proxied('/openstack');
    assert.equal(versions.statusCode, 200);
    assert.deepEqual(versions.body.split('\n'), ['2012-08-10', '2013-04-04', '2013-10-17', '2015-10-15', '2016-06-30', '2016-10-06', '2017-02-22', '2018-08-27', '2020-10-14', 'latest']);
    const listing = await proxied('/openstack/latest/');
    assert.deepEqual(listing.body.split('\n'), ['meta_data.json', 'user_data', 'password', 'vendor_data.json', 'network_data.json', 'vendor_data2.json']);
    assert.deepEqual((await proxied('/openstack/2012-08-10')).body.split('\n'), ['meta_data.json', 'user_data']);
    const md = await proxied('/openstack/latest/meta_data.json');
    assert.equal(md.statusCode, 200);
    assert.match(String(md.headers['content-type']), /^application\/json/);
    const body = md.json();
    assert.equal(body.uuid, serverId);
    assert.equal(body.name, 'web one');
    assert.equal(body.hostname, 'web-one.novalocal');
    assert.equal(body.project_id, projectId);
    assert.equal(body.availability_zone, 'nova');
    assert.deepEqual(body.meta, { role: 'web' });
    assert.deepEqual(body.public_keys, { alice: KEY });
    assert.deepEqual(body.keys, [{ name: 'alice', type: 'ssh', data: KEY }]);
    assert.equal(Buffer.from(body.random_seed, 'base64').length, 512);
    const older = (await proxied('/openstack/2013-04-04/meta_data.json')).json();
    assert.equal('project_id' in older, false);
  });

  test('user data, network data and vendor data', async () => {
    const ud = await proxied('/openstack/latest/user_data');
    assert.equal(ud.statusCode, 200);
    assert.equal(ud.body, USER_DATA);
    const nd = (await proxied('/openstack/latest/network_data.json')).json();
    assert.equal(nd.links.length, 1);
    assert.equal(nd.links[0].type, 'phy');
    assert.match(nd.links[0].id, /^tap[0-9a-f-]{11}$/);
    assert.deepEqual(nd.networks, [{ id: 'network0', type: 'ipv4_dhcp', link: nd.links[0].id, network_id: flows.networkId }]);
    assert.deepEqual(nd.services, []);
    assert.deepEqual((await proxied('/openstack/latest/vendor_data.json')).json(), {});
    assert.deepEqual((await proxied('/openstack/latest/vendor_data2.json')).json(), { static: {} });
  });

  test('unknown paths, versions and files are 404s', async () => {
    for (const url of ['/openstack/latest/nothing', '/openstack/1999-01-01/meta_data.json', '/openstack/2012-08-10/vendor_data.json', '/openstack/2012-08-10/password', '/latest/meta-data/nothing', '/2001-01-01/meta-data/', '/latest/meta-data/hostname/more']) {
      const res = await proxied(url);
      assert.equal(res.statusCode, 404, url);
      assert.match(res.body, /^404 Not Found\n\nThe resource could not be found\./, url);
    }
  });

  test('the EC2 tree: listings with / for directories, values as text', async () => {
    assert.equal((await proxied('/latest')).body, 'meta-data/\nuser-data');
    const listing = (await proxied('/latest/meta-data/')).body.split('\n');
    assert.deepEqual(listing, [
      'ami-id',
      'ami-launch-index',
      'ami-manifest-path',
      'block-device-mapping/',
      'hostname',
      'instance-action',
      'instance-id',
      'instance-type',
      'local-hostname',
      'local-ipv4',
      'placement/',
      'public-hostname',
      'public-ipv4',
      'public-keys/',
      'reservation-id',
      'security-groups',
    ]);
    assert.equal((await proxied('/latest/meta-data/hostname')).body, 'web-one.novalocal');
    assert.equal((await proxied('/latest/meta-data/local-hostname')).body, 'web-one.novalocal');
    assert.equal((await proxied('/latest/meta-data/instance-id')).body, `i-${serverId.slice(0, 8)}`);
    assert.equal((await proxied('/latest/meta-data/instance-type')).body, 'm1.tiny');
    assert.equal((await proxied('/latest/meta-data/local-ipv4')).body, fixedIp);
    assert.equal((await proxied('/latest/meta-data/public-ipv4')).body, '');
    assert.equal((await proxied('/latest/meta-data/ami-launch-index')).body, '0');
    assert.equal((await proxied('/latest/meta-data/instance-action')).body, 'none');
    assert.equal((await proxied('/latest/meta-data/security-groups')).body, 'default');
    assert.match((await proxied('/latest/meta-data/reservation-id')).body, /^r-[0-9a-z]{8}$/);
    assert.equal((await proxied('/latest/meta-data/placement/')).body, 'availability-zone');
    assert.equal((await proxied('/latest/meta-data/placement/availability-zone')).body, 'nova');
    assert.match((await proxied('/latest/meta-data/block-device-mapping/')).body, /^ami\nroot$/);
    assert.equal((await proxied('/latest/meta-data/public-keys/')).body, '0=alice');
    assert.equal((await proxied('/latest/meta-data/public-keys/0/')).body, 'openssh-key');
    assert.equal((await proxied('/latest/meta-data/public-keys/0/openssh-key')).body, KEY);
    assert.equal((await proxied('/latest/user-data')).body, USER_DATA);
    assert.equal((await proxied('/2009-04-04/meta-data/hostname')).body, 'web-one.novalocal');
    assert.equal((await proxied('/ec2/2009-04-04/user-data')).body, USER_DATA);
    const old = (await proxied('/1.0/meta-data/')).body.split('\n');
    assert.ok(!old.includes('placement/') && !old.includes('instance-type') && old.includes('hostname'));
  });

  test('the proxy\'s signature: right, wrong, missing; the tenant must be the server\'s', async () => {
    assert.equal((await proxied('/latest/meta-data/hostname')).statusCode, 200);
    const wrong = await proxied('/latest/meta-data/hostname', { headers: { 'x-instance-id-signature': instanceIdSignature('another secret', serverId) } });
    assert.equal(wrong.statusCode, 403);
    assert.match(wrong.body, /Invalid proxy request signature\./);
    assert.equal((await proxied('/latest/meta-data/hostname', { headers: { 'x-instance-id-signature': '' } })).statusCode, 403);
    const missing = await app.inject({ method: 'GET', url: '/latest/meta-data/hostname', headers: { 'x-instance-id': serverId, 'x-tenant-id': projectId } });
    assert.equal(missing.statusCode, 400);
    assert.match(missing.body, /X-Instance-ID-Signature header is missing from request\./);
    const noTenant = await app.inject({ method: 'GET', url: '/latest/meta-data/hostname', headers: { 'x-instance-id': serverId, 'x-instance-id-signature': instanceIdSignature(SECRET, serverId) } });
    assert.equal(noTenant.statusCode, 400);
    const otherTenant = await proxied('/latest/meta-data/hostname', { headers: { 'x-tenant-id': flows.cloud.beta.projectId } });
    assert.equal(otherTenant.statusCode, 404);
    const unknown = '00000000-0000-4000-8000-000000000000';
    const gone = await proxied('/latest/meta-data/hostname', { headers: { 'x-instance-id': unknown, 'x-instance-id-signature': instanceIdSignature(SECRET, unknown) } });
    assert.equal(gone.statusCode, 404);
  });

  test('Neutron\'s haproxy headers: the fixed IP on the network, or on a network of the router', async () => {
    const byNetwork = await app.inject({ method: 'GET', url: '/openstack/latest/meta_data.json', headers: { 'x-forwarded-for': fixedIp, 'x-neutron-network-id': flows.networkId } });
    assert.equal(byNetwork.statusCode, 200, byNetwork.body);
    assert.equal(byNetwork.json().uuid, serverId);
    const otherNetwork = await app.inject({ method: 'GET', url: '/openstack/latest/meta_data.json', headers: { 'x-forwarded-for': fixedIp, 'x-neutron-network-id': '11111111-2222-4333-8444-555555555555' } });
    assert.equal(otherNetwork.statusCode, 404);
    const { cloud } = flows;
    const subnets = await cloud.call('network', 'GET', `/v2.0/subnets?network_id=${flows.networkId}`, { user: cloud.alpha });
    const router = await cloud.call('network', 'POST', '/v2.0/routers', { user: cloud.alpha, payload: { router: { name: 'r1' } } });
    assert.equal(router.status, 201, JSON.stringify(router.body));
    const routerId = router.body.router.id as string;
    const plug = await cloud.call('network', 'PUT', `/v2.0/routers/${routerId}/add_router_interface`, { user: cloud.alpha, payload: { subnet_id: subnets.body.subnets[0].id } });
    assert.equal(plug.status, 200, JSON.stringify(plug.body));
    const byRouter = await app.inject({ method: 'GET', url: '/latest/meta-data/instance-id', headers: { 'x-forwarded-for': fixedIp, 'x-neutron-router-id': routerId } });
    assert.equal(byRouter.statusCode, 200, byRouter.body);
    assert.equal(byRouter.body, `i-${serverId.slice(0, 8)}`);
    const otherAddress = await app.inject({ method: 'GET', url: '/latest/meta-data/instance-id', headers: { 'x-forwarded-for': '10.1.0.250', 'x-neutron-router-id': routerId } });
    assert.equal(otherAddress.statusCode, 404);
  });

  test('without proxy headers the connection\'s address is the fixed IP', async () => {
    const own = await app.inject({ method: 'GET', url: '/latest/meta-data/hostname', remoteAddress: fixedIp });
    assert.equal(own.statusCode, 200);
    assert.equal(own.body, 'web-one.novalocal');
    const stranger = await app.inject({ method: 'GET', url: '/latest/meta-data/hostname', remoteAddress: '10.1.0.251' });
    assert.equal(stranger.statusCode, 404);
  });

  test('the password: empty, set once by the guest, 409 after, shown by the compute API', async () => {
    const empty = await proxied('/openstack/latest/password');
    assert.equal(empty.statusCode, 200);
    assert.equal(empty.body, '');
    assert.equal((await proxied('/openstack/latest/password', { method: 'POST', payload: 'x'.repeat(1021) })).statusCode, 400);
    const encrypted = Buffer.alloc(512, 7).toString('base64');
    const set = await proxied('/openstack/latest/password', { method: 'POST', payload: encrypted });
    assert.equal(set.statusCode, 200, set.body);
    assert.equal((await proxied('/openstack/latest/password')).body, encrypted);
    const again = await proxied('/openstack/latest/password', { method: 'POST', payload: 'another' });
    assert.equal(again.statusCode, 409);
    assert.equal((await proxied('/openstack/latest/password', { method: 'PUT', payload: 'x' })).statusCode, 400);
    const { cloud } = flows;
    const shown = await cloud.request('GET', `/servers/${serverId}/os-server-password`, { user: cloud.alpha });
    assert.deepEqual(shown.body, { password: encrypted });
    assert.equal((await cloud.request('DELETE', `/servers/${serverId}/os-server-password`, { user: cloud.alpha })).status, 204);
    assert.equal((await proxied('/openstack/latest/password')).body, '');
    const noType = await app.inject({ method: 'POST', url: '/openstack/latest/password', remoteAddress: fixedIp, payload: 'plain' });
    assert.equal(noType.statusCode, 200, noType.body);
    assert.deepEqual((await cloud.request('GET', `/servers/${serverId}/os-server-password`, { user: cloud.alpha })).body, { password: 'plain' });
  });

  test('a server without user data: 404 user_data, not listed', async () => {
    const id = await flows.boot('plain');
    const headers = { 'x-instance-id': id, 'x-tenant-id': projectId, 'x-instance-id-signature': instanceIdSignature(SECRET, id) };
    assert.equal((await app.inject({ method: 'GET', url: '/openstack/latest/user_data', headers })).statusCode, 404);
    assert.equal((await app.inject({ method: 'GET', url: '/latest/user-data', headers })).statusCode, 404);
    assert.ok(!(await app.inject({ method: 'GET', url: '/openstack/latest', headers })).body.includes('user_data'));
    assert.equal((await app.inject({ method: 'GET', url: '/latest/meta-data/public-keys/', headers })).statusCode, 404);
  });

  test('startMetadataApi listens and answers over HTTP', async () => {
    const api = await startMetadataApi(flows.cloud.config, { compute: flows.cloud.compute, secret: SECRET, host: '127.0.0.1', port: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${api.port}/openstack/latest/meta_data.json`, { headers: { 'X-Instance-ID': serverId, 'X-Tenant-ID': projectId, 'X-Instance-ID-Signature': instanceIdSignature(SECRET, serverId) } });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { uuid: string }).uuid, serverId);
    } finally {
      await api.stop();
    }
  });
});
