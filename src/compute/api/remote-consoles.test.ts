import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { roleLogger } from '../../core/logging.js';
import { startNovncProxy, type RunningNovncProxy } from '../consoles/novnc-proxy.js';
import { openConsole, RefusedUpgrade, RFB_DESKTOP_NAME, rfbHandshake, startTinyRfbServer, type TinyRfbServer } from '../consoles/rfb.test-util.js';
import { addBootFixtures, createTestCloud, type TestCloud } from '../test-cloud/testing.js';
import { expectComputeError } from '../testing.js';
import type { VncEndpoint } from '../virt/driver.js';

// Remote consoles through the whole compute service: the API asks the
// server's host (fake agents) for its VNC address, hands out a token, and
// the console proxy trades it for a connection to a tiny RFB server that
// stands in for the guest's VNC server.

let cloud: TestCloud;
let imageId: string;
let networkId: string;
let rfb: TinyRfbServer;
let proxy: RunningNovncProxy;
let serverId: string;
/** What the fake hosts' drivers answer for a VNC console (null: none, as the fake driver). */
let endpoint: VncEndpoint | null = null;

const VNC = { remote_console: { protocol: 'vnc', type: 'novnc' } };

async function waitFor(id: string, status: string): Promise<Record<string, any>> {
  for (let i = 0; i < 400; i++) {
    const res = await cloud.request('GET', `/servers/${id}`, { user: cloud.alpha, version: '2.93' });
    if (res.status === 404 && status === 'DELETED') return {};
    if (res.body.server?.status === status && res.body.server['OS-EXT-STS:task_state'] === null) return res.body.server;
    if (res.body.server?.status === 'ERROR') throw new Error(`server ${id} went to ERROR`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`server ${id} never reached ${status}`);
}

async function boot(name: string): Promise<string> {
  const res = await cloud.request('POST', '/servers', { user: cloud.alpha, version: '2.93', payload: { server: { name, imageRef: imageId, flavorRef: '1', networks: [{ uuid: networkId }] } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const id = res.body.server.id as string;
  await waitFor(id, 'ACTIVE');
  return id;
}

/** The websocket URL a noVNC page opens for a console URL. */
function socketUrl(consoleUrl: string): string {
  const url = new URL(consoleUrl);
  return `ws://${url.host}/${(url.searchParams.get('path') ?? '').replace(/^\//, '')}`;
}

function tokenOf(consoleUrl: string): string {
  return new URL(`http://x/${new URL(consoleUrl).searchParams.get('path') ?? ''}`).searchParams.get('token') ?? '';
}

before(async () => {
  cloud = await createTestCloud({ overrides: { 'compute.vnc.proxy_port': 0, bind_host: '127.0.0.1' } });
  ({ imageId, networkId } = await addBootFixtures(cloud));
  rfb = await startTinyRfbServer();
  proxy = await startNovncProxy(cloud.config, cloud.compute, roleLogger('compute-novncproxy'));
  cloud.config.compute.vnc.base_url = `http://127.0.0.1:${proxy.port}/vnc_lite.html`;
  // The driver double: the fake driver, answering where its "VNC server" is.
  for (const agent of cloud.agents) agent.driver.vncConsole = async () => endpoint;
  serverId = await boot('console');
});

after(async () => {
  await proxy?.stop();
  await rfb?.close();
  await cloud?.close();
});

describe('POST /servers/{id}/remote-consoles', () => {
  test('a driver without consoles (the fake) is a 400 Unavailable console type vnc.', async () => {
    endpoint = null;
    const res = await cloud.request('POST', `/servers/${serverId}/remote-consoles`, { user: cloud.alpha, version: '2.6', payload: VNC });
    expectComputeError(res, 400, 'Unavailable console type vnc.');
    assert.equal((await cloud.compute.db.selectFrom('console_auth_tokens').selectAll().execute()).length, 0, 'no token was made');
  });

  test('the URL opens a VNC session through the proxy once', async () => {
    endpoint = { host: '127.0.0.1', port: rfb.port };
    const res = await cloud.request('POST', `/servers/${serverId}/remote-consoles`, { user: cloud.alpha, version: '2.6', payload: VNC });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body.remote_console).sort(), ['protocol', 'type', 'url']);
    assert.equal(res.body.remote_console.protocol, 'vnc');
    assert.equal(res.body.remote_console.type, 'novnc');
    const url = res.body.remote_console.url as string;
    assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:${proxy.port}/vnc_lite\\.html\\?path=%3Ftoken%3D[0-9a-f-]{36}$`));
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.ok((await page.text()).includes('noVNC'));
    const client = await openConsole(socketUrl(url));
    assert.equal((await rfbHandshake(client)).name, RFB_DESKTOP_NAME);
    await assert.rejects(openConsole(socketUrl(url)), (err: unknown) => err instanceof RefusedUpgrade && err.status === 403);
    client.ws.close();
    await client.closed;
  });

  test('the body is checked as Nova’s schema does; mks and webmks come with 2.8', async () => {
    const post = (payload: unknown, version = '2.6') => cloud.request('POST', `/servers/${serverId}/remote-consoles`, { user: cloud.alpha, version, payload });
    expectComputeError(await post({}), 400, "'remote_console' is a required property");
    expectComputeError(await post({ remote_console: { protocol: 'vnc' } }), 400, "Invalid input for field/attribute remote_console. Value: {'protocol': 'vnc'}. 'type' is a required property");
    expectComputeError(await post({ remote_console: { protocol: 'vnc', type: 'novnc', extra: 1 } }), 400, /Additional properties are not allowed \('extra' was unexpected\)/);
    expectComputeError(await post({ remote_console: { protocol: 'foo', type: 'novnc' } }), 400, "Invalid input for field/attribute protocol. Value: foo. 'foo' is not one of ['vnc', 'spice', 'serial', 'rdp']");
    expectComputeError(await post({ remote_console: { protocol: 'mks', type: 'webmks' } }), 400, /'mks' is not one of/);
    expectComputeError(await post({ remote_console: { protocol: 'mks', type: 'webmks' } }, '2.8'), 400, 'Unavailable console type webmks.');
    expectComputeError(await post({ remote_console: { protocol: 'spice', type: 'spice-html5' } }), 400, 'Unavailable console type spice-html5.');
    expectComputeError(await post({ remote_console: { protocol: 'serial', type: 'serial' } }), 400, 'Unavailable console type serial.');
    expectComputeError(await post({ remote_console: { protocol: 'rdp', type: 'rdp-html5' } }), 400, 'Unavailable console type rdp.');
    expectComputeError(await post({ remote_console: { protocol: 'vnc', type: 'xvpvnc' } }), 400, 'Invalid console type xvpvnc');
    expectComputeError(await post(VNC, '2.5'), 404, 'The resource could not be found.');
  });

  test('VNC disabled in the configuration: 400 Unavailable console type novnc.', async () => {
    cloud.config.compute.vnc.enabled = false;
    try {
      const res = await cloud.request('POST', `/servers/${serverId}/remote-consoles`, { user: cloud.alpha, version: '2.6', payload: VNC });
      expectComputeError(res, 400, 'Unavailable console type novnc.');
    } finally {
      cloud.config.compute.vnc.enabled = true;
    }
  });

  test('who may: the project’s members and admins; readers get 403, other projects 404', async () => {
    endpoint = { host: '127.0.0.1', port: rfb.port };
    expectComputeError(await cloud.request('POST', `/servers/${serverId}/remote-consoles`, { user: cloud.alphaReader, version: '2.6', payload: VNC }), 403, 'Policy doesn\'t allow os_compute_api:os-remote-consoles to be performed.');
    expectComputeError(await cloud.request('POST', `/servers/${serverId}/remote-consoles`, { user: cloud.beta, version: '2.6', payload: VNC }), 404, `Instance ${serverId} could not be found.`);
    assert.equal((await cloud.request('POST', `/servers/${serverId}/remote-consoles`, { user: cloud.admin, version: '2.6', payload: VNC })).status, 200);
  });

  test('a stopped server has no console: 409', async () => {
    endpoint = { host: '127.0.0.1', port: rfb.port };
    const id = await boot('stopped-console');
    assert.equal((await cloud.request('POST', `/servers/${id}/action`, { user: cloud.alpha, payload: { 'os-stop': null } })).status, 202);
    await waitFor(id, 'SHUTOFF');
    const res = await cloud.request('POST', `/servers/${id}/remote-consoles`, { user: cloud.alpha, version: '2.6', payload: VNC });
    expectComputeError(res, 409, `Cannot 'get_vnc_console' instance ${id} while it is in vm_state stopped`);
  });
});

describe('POST /servers/{id}/action os-getVNCConsole (2.1 to 2.5)', () => {
  test('answers {console: {type, url}} with a working URL', async () => {
    endpoint = { host: '127.0.0.1', port: rfb.port };
    const res = await cloud.request('POST', `/servers/${serverId}/action`, { user: cloud.alpha, payload: { 'os-getVNCConsole': { type: 'novnc' } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body.console).sort(), ['type', 'url']);
    assert.equal(res.body.console.type, 'novnc');
    const client = await openConsole(socketUrl(res.body.console.url));
    assert.equal((await rfbHandshake(client)).version, 'RFB 003.008\n');
    client.ws.close();
    await client.closed;
  });

  test('checks its body, is gone from 2.6, and the other console actions say their type is unavailable', async () => {
    const act = (payload: unknown, version = '2.1') => cloud.request('POST', `/servers/${serverId}/action`, { user: cloud.alpha, version, payload });
    expectComputeError(await act({ 'os-getVNCConsole': {} }), 400, "Invalid input for field/attribute os-getVNCConsole. Value: {}. 'type' is a required property");
    expectComputeError(await act({ 'os-getVNCConsole': { type: 'spice-html5' } }), 400, "Invalid input for field/attribute type. Value: spice-html5. 'spice-html5' is not one of ['novnc', 'xvpvnc']");
    expectComputeError(await act({ 'os-getVNCConsole': { type: 'novnc' } }, '2.6'), 404, 'The resource could not be found.');
    expectComputeError(await act({ 'os-getSPICEConsole': { type: 'spice-html5' } }), 400, 'Unavailable console type spice-html5.');
    expectComputeError(await act({ 'os-getSerialConsole': { type: 'serial' } }), 400, 'Unavailable console type serial.');
    expectComputeError(await act({ 'os-getRDPConsole': { type: 'rdp-html5' } }), 400);
  });
});

describe('GET /os-console-auth-tokens/{token}', () => {
  test('shows an admin where a token leads, without using it up; members get 403', async () => {
    endpoint = { host: '127.0.0.1', port: rfb.port };
    const res = await cloud.request('POST', `/servers/${serverId}/remote-consoles`, { user: cloud.alpha, version: '2.6', payload: VNC });
    const token = tokenOf(res.body.remote_console.url);
    const shown = await cloud.request('GET', `/os-console-auth-tokens/${token}`, { user: cloud.admin, version: '2.31' });
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.deepEqual(shown.body, { console: { instance_uuid: serverId, host: '127.0.0.1', port: rfb.port, internal_access_path: null } });
    expectComputeError(await cloud.request('GET', `/os-console-auth-tokens/${token}`, { user: cloud.alpha, version: '2.31' }), 403, "Policy doesn't allow os_compute_api:os-console-auth-tokens to be performed.");
    expectComputeError(await cloud.request('GET', `/os-console-auth-tokens/${token}`, { user: cloud.admin, version: '2.30' }), 400);
    expectComputeError(await cloud.request('GET', '/os-console-auth-tokens/not-a-token', { user: cloud.admin, version: '2.31' }), 404, 'Token not found');
    // Still good for the proxy; once used it is gone for the API too.
    const client = await openConsole(socketUrl(res.body.remote_console.url));
    await rfbHandshake(client);
    expectComputeError(await cloud.request('GET', `/os-console-auth-tokens/${token}`, { user: cloud.admin, version: '2.31' }), 404, 'Token not found');
    client.ws.close();
    await client.closed;
  });

  test('a deleted server’s tokens are no longer valid', async () => {
    endpoint = { host: '127.0.0.1', port: rfb.port };
    const id = await boot('doomed-console');
    const res = await cloud.request('POST', `/servers/${id}/remote-consoles`, { user: cloud.alpha, version: '2.6', payload: VNC });
    assert.equal(res.status, 200);
    const token = tokenOf(res.body.remote_console.url);
    assert.equal((await cloud.request('GET', `/os-console-auth-tokens/${token}`, { user: cloud.admin, version: '2.31' })).status, 200);
    assert.equal((await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha })).status, 204);
    await waitFor(id, 'DELETED');
    expectComputeError(await cloud.request('GET', `/os-console-auth-tokens/${token}`, { user: cloud.admin, version: '2.31' }), 404, 'Token not found');
    await assert.rejects(openConsole(socketUrl(res.body.remote_console.url)), (err: unknown) => err instanceof RefusedUpgrade && err.status === 403);
  });
});
