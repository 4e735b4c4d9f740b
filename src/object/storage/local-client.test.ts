import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { roleLogger } from '../../core/logging.js';
import { testConfig } from '../../core/testing.js';
import { Timestamp } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import type { StorageClient, StorageRequest, StorageResponse } from './client.js';
import { HttpStorageClient } from './http-client.js';
import { startStorageNode, type StorageNode } from './http-server.js';
import { LocalStorageClient } from './local-client.js';

/**
 * The direct transport of the all-in-one process answers exactly as the
 * HTTP one does: the same statuses, headers and bodies from the same
 * servers, streamed bodies, an aborted upload leaving nothing, an early
 * refusal not waiting for the body, and other nodes still reached over HTTP.
 */
let dir: string;
let node: StorageNode;
let http: HttpStorageClient;
let local: LocalStorageClient;
const salt = { prefix: '', suffix: 'local-client-test' };

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-local-client-'));
  fs.mkdirSync(path.join(dir, 'd1'));
  const { config } = testConfig('local-client');
  http = new HttpStorageClient();
  local = new LocalStorageClient(new HttpStorageClient());
  node = await startStorageNode({ config, salt, devicesDir: dir, logger: roleLogger('object-server'), bindHost: '127.0.0.1', ports: { object: 0, container: 0, account: 0 }, client: local });
  local.register('127.0.0.1', node.ports.object, node.handlers.object);
  local.register('127.0.0.1', node.ports.container, node.handlers.container);
});

after(async () => {
  await node.stop();
  http.close();
  local.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function device(kind: 'object' | 'container' | 'account'): RingDevice {
  return { id: 0, region: 1, zone: 1, ip: '127.0.0.1', port: node.ports[kind], device: 'd1', weight: 1, meta: '' };
}

async function text(res: StorageResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

/** The parts of a response that must not depend on the transport. */
async function seen(client: StorageClient, kind: 'object' | 'container' | 'account', req: StorageRequest): Promise<{ status: number; body: string; etag?: string; length?: string; type?: string }> {
  const res = await client.request(device(kind), req);
  const body = await text(res);
  return { status: res.status, body, ...(res.headers.etag ? { etag: res.headers.etag } : {}), ...(res.headers['content-length'] ? { length: res.headers['content-length'] } : {}), ...(res.headers['content-type'] ? { type: res.headers['content-type'] } : {}) };
}

test('a streamed PUT, GET, ranged GET, HEAD and a 404 look the same through both transports', async () => {
  for (const [name, client] of [['http', http], ['local', local]] as const) {
    const object = `obj-${name}`;
    const put = await client.request(device('object'), {
      method: 'PUT',
      device: 'd1',
      partition: 1,
      account: 'AUTH_a',
      container: 'c',
      object,
      headers: { 'x-timestamp': Timestamp.now().normal, 'content-type': 'text/plain', 'transfer-encoding': 'chunked' },
      body: Readable.from([Buffer.from('hello '), Buffer.from('world')]),
    });
    await text(put);
    assert.equal(put.status, 201, name);
    assert.equal(put.headers.etag, '5eb63bbbe01eeed093cb22bb8f5acdc3', name);
    const base = { device: 'd1', partition: 1, account: 'AUTH_a', container: 'c', object };
    assert.deepEqual(await seen(client, 'object', { ...base, method: 'GET', headers: {} }), { status: 200, body: 'hello world', etag: '5eb63bbbe01eeed093cb22bb8f5acdc3', length: '11', type: 'text/plain' }, name);
    const ranged = await seen(client, 'object', { ...base, method: 'GET', headers: { range: 'bytes=6-' } });
    assert.equal(ranged.status, 206, name);
    assert.equal(ranged.body, 'world', name);
    const head = await seen(client, 'object', { ...base, method: 'HEAD', headers: {} });
    assert.deepEqual([head.status, head.body, head.length], [200, '', '11'], name);
    const missing = await seen(client, 'object', { ...base, object: 'nothing', method: 'GET', headers: {} });
    assert.equal(missing.status, 404, name);
  }
});

test('an upload whose body fails part way leaves no object, through the direct transport too', async () => {
  const body = new PassThrough();
  const put = local.request(device('object'), {
    method: 'PUT',
    device: 'd1',
    partition: 1,
    account: 'AUTH_a',
    container: 'c',
    object: 'aborted',
    headers: { 'x-timestamp': Timestamp.now().normal, 'content-type': 'text/plain', 'content-length': '100' },
    body,
  });
  body.write(Buffer.alloc(10, 1));
  setImmediate(() => body.destroy(new Error('client went away')));
  const res = await put.catch((err: Error) => err);
  if (!(res instanceof Error)) {
    await text(res);
    assert.ok(res.status >= 400, `an aborted upload is not stored (status ${res.status})`);
  }
  const got = await seen(local, 'object', { method: 'GET', device: 'd1', partition: 1, account: 'AUTH_a', container: 'c', object: 'aborted', headers: {} });
  assert.equal(got.status, 404);
});

test('an early refusal answers without waiting for the body, and the sender is not left stalled', async () => {
  const stamp = Timestamp.now().normal;
  const base = { device: 'd1', partition: 1, account: 'AUTH_a', container: 'c', object: 'exists' };
  const first = await local.request(device('object'), { ...base, method: 'PUT', headers: { 'x-timestamp': stamp, 'content-type': 'text/plain' }, body: Buffer.from('one') });
  await text(first);
  assert.equal(first.status, 201);
  // An older write of a name is refused (409) before its body is read; the body is a stream that never ends.
  const body = new PassThrough();
  body.write('x');
  const older = await local.request(device('object'), { ...base, method: 'PUT', headers: { 'x-timestamp': '0000000001.00000', 'content-type': 'text/plain', 'transfer-encoding': 'chunked', expect: '100-continue' }, body });
  await text(older);
  assert.equal(older.status, 409);
  assert.equal(body.writableNeedDrain, false, 'the sender can go on writing (its data is drained)');
  body.destroy();
});

test('a container listing and a device another node serves (over HTTP) both answer', async () => {
  const stamp = Timestamp.now().normal;
  const put = await local.request(device('container'), { method: 'PUT', device: 'd1', partition: 2, account: 'AUTH_a', container: 'listed', headers: { 'x-timestamp': stamp } });
  await text(put);
  assert.equal(put.status, 201);
  const row = await local.request(device('container'), {
    method: 'PUT',
    device: 'd1',
    partition: 2,
    account: 'AUTH_a',
    container: 'listed',
    object: 'o1',
    headers: { 'x-timestamp': stamp, 'x-size': '3', 'x-content-type': 'text/plain', 'x-etag': 'abc' },
  });
  await text(row);
  const listing = await seen(local, 'container', { method: 'GET', device: 'd1', partition: 2, account: 'AUTH_a', container: 'listed', headers: {}, query: 'format=json' });
  assert.equal(listing.status, 200);
  assert.deepEqual((JSON.parse(listing.body) as { name: string }[]).map((o) => o.name), ['o1']);
  // The account server is not registered: the same client reaches it over HTTP.
  const account = await seen(local, 'account', { method: 'HEAD', device: 'd1', partition: 3, account: 'AUTH_nobody', headers: {} });
  assert.equal(account.status, 404);
});
