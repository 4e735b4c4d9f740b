import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { hashPathHex, Timestamp } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import { loadHashDir, objectDir } from './diskfile.js';
import { HttpStorageClient, storagePath } from './http-client.js';
import { createStorageCluster, type StorageCluster } from './testing.js';

function device(port: number, name = 'd1'): RingDevice {
  return { id: 0, region: 1, zone: 1, ip: '127.0.0.1', port, device: name, weight: 1, meta: '' };
}

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

describe('HttpStorageClient', () => {
  it('quotes each name and keeps the slashes of an object name', () => {
    assert.equal(storagePath({ device: 'd1', partition: 7, account: 'AUTH_a b', container: 'c/x', object: 'dir/é?.txt' }), '/d1/7/AUTH_a%20b/c%2Fx/dir/%C3%A9%3F.txt');
  });

  it('times out a server that does not answer, and rejects an unreachable one', async () => {
    const { server, port } = await listen(() => undefined);
    const client = new HttpStorageClient();
    try {
      await assert.rejects(client.request(device(port), { method: 'GET', device: 'd1', partition: 0, account: 'a', headers: {} }, { timeoutMs: 100 }), /response timeout/);
      const closed = await listen(() => undefined);
      await new Promise<void>((resolve) => closed.server.close(() => resolve()));
      await assert.rejects(client.request(device(closed.port), { method: 'GET', device: 'd1', partition: 0, account: 'a', headers: {} }), /ECONNREFUSED/);
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('does not send the body when the server answers before 100 Continue', async () => {
    let received = 0;
    const server = http.createServer();
    server.on('checkContinue', (req, res) => {
      req.on('data', (c: Buffer) => (received += c.length));
      res.writeHead(409, { 'content-length': '0' });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const client = new HttpStorageClient();
    try {
      const body = new PassThrough();
      body.end(Buffer.alloc(1000, 1));
      const res = await client.request(device(port), { method: 'PUT', device: 'd1', partition: 0, account: 'a', container: 'c', object: 'o', headers: { expect: '100-continue', 'content-length': '1000' }, body });
      assert.equal(res.status, 409);
      res.body.resume();
      assert.equal(received, 0);
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('uploads through the client', () => {
  let cluster: StorageCluster;
  before(async () => {
    cluster = await createStorageCluster({ devices: 1, replicas: 1, partPower: 4 });
  });
  after(async () => {
    await cluster.close();
  });

  it('leaves nothing when the body stream fails mid-upload (chunked or with a length)', async () => {
    for (const withLength of [false, true]) {
      const name = `aborted-${withLength}`;
      const { partition, nodes } = cluster.rings.object.getNodes('AUTH_a', 'c', name);
      const node = nodes[0] as RingDevice;
      const body = new Readable({ read() {} });
      body.push(Buffer.alloc(64 * 1024, 1));
      const headers: Record<string, string> = { 'x-timestamp': Timestamp.now().internal, 'content-type': 'a/b', expect: '100-continue' };
      if (withLength) headers['content-length'] = String(1024 * 1024);
      const pending = cluster.client.request(node, { method: 'PUT', device: node.device, partition, account: 'AUTH_a', container: 'c', object: name, headers, body });
      pending.catch(() => undefined);
      const dir = objectDir(cluster.devicePath(node.device), partition, hashPathHex(cluster.salt, 'AUTH_a', 'c', name));
      const tmpDir = `${cluster.devicePath(node.device)}/tmp`;
      const temporaries = (): string[] => (fs.existsSync(tmpDir) ? fs.readdirSync(tmpDir) : []);
      // Wait until the server is writing the body to its temporary file, then break the upload.
      while (temporaries().length === 0) await new Promise((r) => setTimeout(r, 5));
      body.destroy(new Error('client went away'));
      await assert.rejects(pending);
      while (temporaries().length > 0) await new Promise((r) => setTimeout(r, 5));
      assert.equal((await loadHashDir(dir)).data, null);
      const head = await cluster.client.request(node, { method: 'HEAD', device: node.device, partition, account: 'AUTH_a', container: 'c', object: name, headers: {} });
      assert.equal(head.status, 404);
      head.body.resume();
    }
  });
});
