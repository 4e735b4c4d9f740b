import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createBus, type Bus, type Consumer } from '../../core/bus/index.js';
import { databaseUrl, type StratusConfig } from '../../core/config.js';
import { migrate, openDatabase, type Database } from '../../core/db/database.js';
import { roleLogger } from '../../core/logging.js';
import { testConfig } from '../../core/testing.js';
import { insertServer } from '../api/server-fixtures.test-util.js';
import { migrations } from '../db/migrations.js';
import type { ComputeSchema } from '../db/schema.js';
import { COMPUTE_TOPIC } from '../rpc.js';
import type { VncEndpoint } from '../virt/driver.js';
import { createConsoleToken, hashConsoleToken, lookupConsoleToken, novncAccessUrl, purgeConsoleTokens } from './console-tokens.js';
import { originProblem, startNovncProxy, tokenOfRequest, type RunningNovncProxy } from './novnc-proxy.js';
import { openConsole, RefusedUpgrade, RFB_DESKTOP_NAME, rfbHandshake, startTinyRfbServer, type TinyRfbServer } from './rfb.test-util.js';

// The console proxy on a real compute database, between a websocket client
// and a tiny RFB server on loopback; a stand-in for the servers' host
// (`host-1` on the bus) says where each server's console is.

let config: StratusConfig;
let dir: string;
let database: Database<ComputeSchema>;
let proxy: RunningNovncProxy;
let rfb: TinyRfbServer;
let serverUuid: string;
let bus: Bus;
let host: Consumer;
/** What the host says of each server's console (default: the tiny RFB server); a string makes it fail. */
const consoles = new Map<string, VncEndpoint | null | string>();

const owner = { projectId: 'p-console', userId: 'u-console' };

before(async () => {
  let unique: string;
  ({ config, dir, unique } = testConfig('console', { 'compute.vnc.proxy_port': 0, bind_host: '127.0.0.1' }));
  bus = await createBus(`memory://${unique}`);
  database = await openDatabase<ComputeSchema>(databaseUrl(config, 'compute'), { role: 'compute-novncproxy' });
  await migrate(database.db, migrations);
  serverUuid = (await insertServer(database.db, owner)).uuid;
  rfb = await startTinyRfbServer();
  host = await bus.serve(COMPUTE_TOPIC, 'host-1', {
    get_vnc_console: (args: { instance_uuid: string }) => {
      const known = consoles.get(args.instance_uuid);
      if (typeof known === 'string') throw new Error(known);
      return known === undefined ? { host: '127.0.0.1', port: rfb.port } : known;
    },
  });
  proxy = await startNovncProxy(config, { db: database.db, bus }, roleLogger('compute-novncproxy'));
  config.compute.vnc.base_url = `http://127.0.0.1:${proxy.port}/vnc_lite.html`;
});

after(async () => {
  await proxy.stop();
  await rfb.close();
  await host.stop();
  await bus.close();
  await database.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A token for the tiny RFB server (or `port`), valid for `ttl` seconds, and its console URL. */
async function newToken(options: { ttl?: number; port?: number; instance?: string } = {}): Promise<{ token: string; url: string }> {
  const base = config.compute.vnc.base_url;
  const { token } = await createConsoleToken(database.db, { instanceUuid: options.instance ?? serverUuid, consoleType: 'novnc', host: '127.0.0.1', port: options.port ?? rfb.port, accessUrlBase: base }, options.ttl ?? 600);
  return { token, url: novncAccessUrl(base, token) };
}

/** The websocket URL a noVNC page opens for a console URL (its `path` parameter under the proxy). */
function socketUrl(consoleUrl: string): string {
  const url = new URL(consoleUrl);
  return `ws://${url.host}/${(url.searchParams.get('path') ?? '').replace(/^\//, '')}`;
}

async function refusedWith(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof RefusedUpgrade) return err.status;
    throw err;
  }
  assert.fail('the websocket was accepted');
}

describe('console URLs and tokens', () => {
  test('the URL is the base with the token inside its path parameter, as Nova builds it', () => {
    assert.equal(novncAccessUrl('http://h.example:6080/vnc_lite.html', 'abc-123'), 'http://h.example:6080/vnc_lite.html?path=%3Ftoken%3Dabc-123');
    assert.equal(novncAccessUrl('https://h.example/console/vnc_lite.html?path=console%2Fws', 't'), 'https://h.example/console/vnc_lite.html?path=console%2Fws%3Ftoken%3Dt');
  });

  test('only the token’s SHA-256 is stored', async () => {
    const { token } = await newToken();
    const rows = await database.db.selectFrom('console_auth_tokens').selectAll().execute();
    assert.ok(rows.some((r) => r.token_hash === hashConsoleToken(token)));
    assert.ok(rows.every((r) => !Object.values(r).includes(token)), 'the token itself is nowhere in the table');
    assert.match(hashConsoleToken(token), /^[0-9a-f]{64}$/);
  });

  test('the token is read from the query, the path parameter, or a cookie', () => {
    assert.equal(tokenOfRequest('/?token=t1', undefined), 't1');
    assert.equal(tokenOfRequest('/websockify?path=%3Ftoken%3Dt2', undefined), 't2');
    assert.equal(tokenOfRequest('/websockify', 'a=b; token=t3'), 't3');
    assert.equal(tokenOfRequest('/websockify', 'path=%3Ftoken%3Dt4'), 't4');
    assert.equal(tokenOfRequest('/?token=t5', 'token=other'), 't5', 'the query wins');
    assert.equal(tokenOfRequest('/websockify', undefined), '');
  });

  test('Origin: none passes; it must name this host (or the console URL’s) with the console URL’s scheme', () => {
    const info = { accessUrlBase: 'http://console.example:6080/vnc_lite.html' };
    assert.equal(originProblem({ host: '127.0.0.1:6080' }, info), null);
    assert.equal(originProblem({ host: '127.0.0.1:6080', origin: 'http://127.0.0.1:6080' }, info), null);
    assert.equal(originProblem({ host: '127.0.0.1:6080', origin: 'http://console.example:6080' }, info), null);
    assert.equal(originProblem({ host: '127.0.0.1:6080', origin: 'http://evil.example' }, info), 'Origin header does not match this host.');
    assert.equal(originProblem({ host: '127.0.0.1:6080', origin: 'https://127.0.0.1:6080' }, info), 'Origin header protocol does not match this host.');
    assert.equal(originProblem({ host: '127.0.0.1:6080', origin: 'https://127.0.0.1:6080', 'x-forwarded-proto': 'http' }, info), null);
    assert.equal(originProblem({ host: '127.0.0.1:6080', origin: 'null' }, info), 'Origin header not valid.');
    assert.equal(originProblem({ host: '[::1]:6080', origin: 'http://[::1]:6080' }, info), null);
  });

  test('expired tokens and those of deleted servers are purged; others stay', async () => {
    const gone = await insertServer(database.db, owner);
    const orphan = await newToken({ instance: gone.uuid });
    const expired = await newToken({ ttl: -5 });
    await database.db.updateTable('instance').set({ deleted: 1, vm_state: 'deleted' }).where('uuid', '=', gone.uuid).execute();
    assert.equal(await purgeConsoleTokens(database.db), 2);
    const fresh = await newToken();
    assert.equal(await purgeConsoleTokens(database.db), 0);
    const hashes = (await database.db.selectFrom('console_auth_tokens').select('token_hash').execute()).map((r) => r.token_hash);
    assert.ok(!hashes.includes(hashConsoleToken(expired.token)));
    assert.ok(!hashes.includes(hashConsoleToken(orphan.token)));
    assert.ok(hashes.includes(hashConsoleToken(fresh.token)));
    assert.equal((await lookupConsoleToken(database.db, fresh.token))?.port, rfb.port);
  });
});

describe('the console page', () => {
  test('the console URL opens a noVNC page (as Tempest checks it)', async () => {
    const { url } = await newToken();
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    const html = await res.text();
    assert.match(html, /<html.*>/);
    assert.ok(html.includes('</html>') && html.includes('noVNC') && html.includes('<script'));
    assert.ok(html.includes("from './core/rfb.js'"));
    // Loading the page does not use the token up.
    const client = await openConsole(socketUrl(url));
    assert.equal((await rfbHandshake(client)).name, RFB_DESKTOP_NAME);
    client.ws.close();
  });

  test('noVNC’s modules are served from the @novnc/novnc package; nothing else is', async () => {
    const rfbJs = await fetch(`http://127.0.0.1:${proxy.port}/core/rfb.js`);
    assert.equal(rfbJs.status, 200);
    assert.match(rfbJs.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(await rfbJs.text(), /export default class RFB/);
    const pako = await fetch(`http://127.0.0.1:${proxy.port}/vendor/pako/lib/zlib/inflate.js`);
    assert.equal(pako.status, 200);
    await pako.arrayBuffer();
    for (const p of ['/package.json', '/core/../package.json', '/core/%2e%2e/package.json', '/core/nothing.js', '/etc/passwd']) {
      const res = await fetch(`http://127.0.0.1:${proxy.port}${p}`);
      assert.equal(res.status, 404, p);
      await res.arrayBuffer();
    }
    // Every module the page loads, followed through their imports, is there.
    const seen = new Set<string>();
    const queue = ['/core/rfb.js'];
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      if (seen.has(next)) continue;
      seen.add(next);
      const res = await fetch(`http://127.0.0.1:${proxy.port}${next}`);
      assert.equal(res.status, 200, next);
      const text = await res.text();
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/g)) queue.push(new URL(m[1] ?? '', `http://x${next}`).pathname);
    }
    assert.ok(seen.size > 20, `noVNC's modules: ${seen.size}`);
    for (const page of ['/vnc.html', '/vnc_auto.html']) {
      const res = await fetch(`http://127.0.0.1:${proxy.port}${page}`);
      assert.equal(res.status, 200, page);
      await res.arrayBuffer();
    }
    const post = await fetch(`http://127.0.0.1:${proxy.port}/vnc_lite.html`, { method: 'POST' });
    assert.equal(post.status, 405);
    await post.arrayBuffer();
  });
});

describe('the websocket proxy', () => {
  test('a client with the token completes the RFB handshake through the proxy; subprotocol binary is accepted', async () => {
    const { url } = await newToken();
    const client = await openConsole(socketUrl(url));
    assert.equal(client.ws.protocol, 'binary');
    const { version, name } = await rfbHandshake(client);
    assert.equal(version, 'RFB 003.008\n');
    assert.equal(name, RFB_DESKTOP_NAME);
    client.ws.close();
    await client.closed;
  });

  test('a second use of the token is refused before any upgrade', async () => {
    const { url } = await newToken();
    const first = await openConsole(socketUrl(url));
    await rfbHandshake(first);
    assert.equal(await refusedWith(openConsole(socketUrl(url))), 403);
    first.ws.close();
    await first.closed;
    assert.equal(await refusedWith(openConsole(socketUrl(url))), 403, 'still refused after the first connection closed');
  });

  test('only one of two simultaneous uses of a token gets through', async () => {
    const { url } = await newToken();
    const results = await Promise.allSettled([openConsole(socketUrl(url)), openConsole(socketUrl(url))]);
    const opened = results.filter((r) => r.status === 'fulfilled');
    assert.equal(opened.length, 1);
    const refused = results.find((r) => r.status === 'rejected');
    assert.ok(refused && refused.reason instanceof RefusedUpgrade && refused.reason.status === 403);
    for (const r of opened) r.value.ws.close();
  });

  test('an expired token, an unknown one and a deleted server’s are refused; no token is a 400', async () => {
    const expired = await newToken({ ttl: 0 });
    assert.equal(await refusedWith(openConsole(socketUrl(expired.url))), 403);
    assert.equal(await refusedWith(openConsole(`ws://127.0.0.1:${proxy.port}/?token=not-a-token`)), 403);
    const doomed = await insertServer(database.db, owner);
    const orphan = await newToken({ instance: doomed.uuid });
    await database.db.updateTable('instance').set({ deleted: 1, vm_state: 'deleted' }).where('uuid', '=', doomed.uuid).execute();
    assert.equal(await refusedWith(openConsole(socketUrl(orphan.url))), 403);
    assert.equal(await refusedWith(openConsole(`ws://127.0.0.1:${proxy.port}/websockify`)), 400);
  });

  test('a refusal has no body, so a raw client (Tempest’s) reads no frame', async () => {
    const { url } = await newToken();
    const bad = new URL(socketUrl(url).replace('token=', 'token=bad'));
    const socket = net.connect(proxy.port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.write(`GET ${bad.pathname}${bad.search} HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: path=${encodeURIComponent(bad.search)}\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n`);
    await new Promise((resolve) => socket.on('close', resolve));
    const text = Buffer.concat(received).toString('latin1');
    assert.match(text, /^HTTP\/1\.1 403 /);
    assert.ok(text.endsWith('\r\n\r\n'), `nothing after the head: ${JSON.stringify(text)}`);
  });

  test('a malformed handshake is a 400 and does not use the token up', async () => {
    const { url } = await newToken();
    const target = new URL(socketUrl(url));
    const socket = net.connect(proxy.port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.write(`GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await new Promise((resolve) => socket.on('close', resolve));
    assert.match(Buffer.concat(received).toString('latin1'), /^HTTP\/1\.1 400 /);
    const client = await openConsole(socketUrl(url));
    assert.equal((await rfbHandshake(client)).name, RFB_DESKTOP_NAME);
    client.ws.close();
  });

  test('a token in a cookie works (older noVNC)', async () => {
    const { token } = await newToken();
    const client = await openConsole(`ws://127.0.0.1:${proxy.port}/websockify`, { headers: { Cookie: `token=${token}` } });
    assert.equal((await rfbHandshake(client)).name, RFB_DESKTOP_NAME);
    client.ws.close();
  });

  test('a foreign Origin is refused without using the token up; this host’s is accepted', async () => {
    const { url } = await newToken();
    assert.equal(await refusedWith(openConsole(socketUrl(url), { origin: 'http://attacker.example' })), 403);
    assert.equal(await refusedWith(openConsole(socketUrl(url), { origin: `https://127.0.0.1:${proxy.port}` })), 403, 'the scheme must match the console URL');
    const client = await openConsole(socketUrl(url), { origin: `http://127.0.0.1:${proxy.port}` });
    assert.equal((await rfbHandshake(client)).name, RFB_DESKTOP_NAME);
    client.ws.close();
  });

  test('closing one side closes the other', async () => {
    // The browser closes: the guest's side is ended.
    const endedBefore = rfb.ended;
    const first = await openConsole(socketUrl((await newToken()).url));
    await rfbHandshake(first);
    first.ws.close(1000);
    await first.closed;
    for (let i = 0; i < 500 && rfb.ended === endedBefore; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(rfb.ended, endedBefore + 1, 'the RFB server saw the end of its connection');
    // The guest's console goes away: the browser gets a normal close.
    const second = await openConsole(socketUrl((await newToken()).url));
    await rfbHandshake(second);
    rfb.dropAll();
    assert.equal(await second.closed, 1000);
  });

  test('a token whose server’s console moved (stop, move, delete) is refused, and kept for nothing', async () => {
    const moved = await insertServer(database.db, owner);
    const { url } = await newToken({ instance: moved.uuid });
    consoles.set(moved.uuid, { host: '127.0.0.1', port: rfb.port + 1 });
    assert.equal(await refusedWith(openConsole(socketUrl(url))), 403);
    consoles.set(moved.uuid, null);
    assert.equal(await refusedWith(openConsole(socketUrl(url))), 403, 'the host has no console for it');
    consoles.set(moved.uuid, 'the agent broke');
    assert.equal(await refusedWith(openConsole(socketUrl(url))), 502, 'the host could not say');
    consoles.delete(moved.uuid);
    const client = await openConsole(socketUrl(url));
    assert.equal((await rfbHandshake(client)).name, RFB_DESKTOP_NAME, 'the token was not used up by the refusals');
    client.ws.close();
    const homeless = await insertServer(database.db, owner, { host: null, node: null, vm_state: 'shelved_offloaded' });
    assert.equal(await refusedWith(openConsole(socketUrl((await newToken({ instance: homeless.uuid })).url))), 403, 'a server without a host has no console');
  });

  test('a console server that does not answer is a 502', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const address = closed.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await new Promise((resolve) => closed.close(resolve));
    const gone = await insertServer(database.db, owner);
    consoles.set(gone.uuid, { host: '127.0.0.1', port });
    const { url } = await newToken({ port, instance: gone.uuid });
    assert.equal(await refusedWith(openConsole(socketUrl(url))), 502);
  });

  test('stop closes open console connections', async () => {
    const other = await startNovncProxy(config, { db: database.db, bus }, roleLogger('compute-novncproxy'));
    const { token } = await newToken();
    const client = await openConsole(`ws://127.0.0.1:${other.port}/?token=${token}`);
    await rfbHandshake(client);
    await other.stop();
    assert.equal(await client.closed, 1006);
    await other.stop();
  });
});
