import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { EXPIRER_ACCOUNT, hashPathHex, Timestamp } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import type { StorageResponse } from './client.js';
import { objectDir, readReplicaFiles } from './diskfile.js';
import { expirerContainer, expirerTaskObject } from './expirer-queue.js';
import { listAsyncPending, readAsyncPending } from './updates.js';
import { createStorageCluster, type StorageCluster } from './testing.js';

async function text(res: StorageResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res.body as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('latin1');
}

function md5(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

let ticks = Timestamp.now().ticks;
/** A fresh increasing timestamp (requests in one test must not share one). */
function ts(): string {
  ticks += 1;
  return new Timestamp(ticks).internal;
}

describe('object server', () => {
  let cluster: StorageCluster;
  let node: RingDevice;
  let containerNodes: RingDevice[];
  let containerPart: number;
  const account = 'AUTH_test';
  const container = 'box';

  before(async () => {
    cluster = await createStorageCluster();
    const c = cluster.rings.container.getNodes(account, container);
    containerNodes = c.nodes;
    containerPart = c.partition;
    for (const n of containerNodes) {
      const res = await cluster.request('container', n, { method: 'PUT', partition: containerPart, account, container, headers: { 'x-timestamp': ts() } });
      res.body.resume();
      assert.equal(res.status, 201);
    }
  });
  after(async () => {
    await cluster.close();
  });

  function objectTarget(name: string): { node: RingDevice; partition: number; nodes: RingDevice[] } {
    const { partition, nodes } = cluster.rings.object.getNodes(account, container, name);
    node = nodes[0] as RingDevice;
    return { node, partition, nodes };
  }

  function containerHeaders(i: number): Record<string, string> {
    const n = containerNodes[i] as RingDevice;
    return { 'x-container-host': `${n.ip}:${n.port}`, 'x-container-device': n.device, 'x-container-partition': String(containerPart) };
  }

  async function put(name: string, body: Buffer | Readable, headers: Record<string, string> = {}, i = 0): Promise<StorageResponse> {
    const { nodes, partition } = objectTarget(name);
    const n = nodes[i] as RingDevice;
    return cluster.request('object', n, {
      method: 'PUT',
      partition,
      account,
      container,
      object: name,
      headers: { 'x-timestamp': ts(), 'content-type': 'text/plain', ...containerHeaders(i), ...headers },
      body,
    });
  }

  async function req(method: string, name: string, headers: Record<string, string> = {}, i = 0): Promise<StorageResponse> {
    const { nodes, partition } = objectTarget(name);
    return cluster.request('object', nodes[i] as RingDevice, { method, partition, account, container, object: name, headers });
  }

  async function listing(i = 0, query = 'format=json'): Promise<{ status: number; rows: { name: string; bytes: number; hash: string; content_type: string }[] }> {
    const res = await cluster.request('container', containerNodes[i] as RingDevice, { method: 'GET', partition: containerPart, account, container, headers: {}, query });
    const body = await text(res);
    return { status: res.status, rows: body ? JSON.parse(body) : [] };
  }

  it('stores an object and serves it back with its metadata', async () => {
    const res = await put('a/b c.txt', Buffer.from('hello world'), { 'x-object-meta-color': 'blue', 'content-disposition': 'inline', 'x-object-sysmeta-test': 'sys' });
    assert.equal(res.status, 201);
    assert.equal(res.headers.etag, md5('hello world'));
    res.body.resume();
    const got = await req('GET', 'a/b c.txt');
    assert.equal(got.status, 200);
    assert.equal(await text(got), 'hello world');
    assert.equal(got.headers['x-object-meta-color'], 'blue');
    assert.equal(got.headers['content-disposition'], 'inline');
    assert.equal(got.headers['x-object-sysmeta-test'], 'sys');
    assert.equal(got.headers['content-type'], 'text/plain');
    assert.equal(got.headers['content-length'], '11');
    assert.equal(got.headers.etag, md5('hello world'));
    assert.match(got.headers['x-timestamp'] ?? '', /^\d{10}\.\d{5}$/);
    const head = await req('HEAD', 'a/b c.txt');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '11');
    assert.equal(await text(head), '');
    const { rows } = await listing(0);
    const row = rows.find((r) => r.name === 'a/b c.txt');
    assert.ok(row);
    assert.equal(row.bytes, 11);
    assert.equal(row.hash, md5('hello world'));
  });

  it('streams a large chunked body and verifies a given ETag', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const total = Buffer.concat(Array.from({ length: 5 }, () => chunk));
    const res = await put('big', Readable.from(Array.from({ length: 5 }, () => chunk)), { etag: md5(total) });
    assert.equal(res.status, 201);
    res.body.resume();
    const got = await req('GET', 'big');
    const body = Buffer.from(await text(got), 'latin1');
    assert.equal(body.length, total.length);
    assert.equal(md5(body), md5(total));
    const bad = await put('bad-etag', Buffer.from('abc'), { etag: md5('abd') });
    assert.equal(bad.status, 422);
    bad.body.resume();
    assert.equal((await req('HEAD', 'bad-etag')).status, 404);
  });

  it('answers ranges: single, suffix, multiple, unsatisfiable', async () => {
    (await put('r', Buffer.from('0123456789'))).body.resume();
    const one = await req('GET', 'r', { range: 'bytes=2-4' });
    assert.equal(one.status, 206);
    assert.equal(one.headers['content-range'], 'bytes 2-4/10');
    assert.equal(await text(one), '234');
    const suffix = await req('GET', 'r', { range: 'bytes=-3' });
    assert.equal(await text(suffix), '789');
    const multi = await req('GET', 'r', { range: 'bytes=0-1,5-6' });
    assert.equal(multi.status, 206);
    const boundary = /boundary=(\w+)/.exec(multi.headers['content-type'] ?? '')?.[1];
    assert.ok(boundary);
    const body = await text(multi);
    assert.equal(body.length, Number(multi.headers['content-length']));
    assert.ok(body.includes('Content-Range: bytes 0-1/10\r\n\r\n01\r\n'));
    assert.ok(body.includes('Content-Range: bytes 5-6/10\r\n\r\n56\r\n'));
    assert.ok(body.endsWith(`--${boundary}--`));
    const none = await req('GET', 'r', { range: 'bytes=20-30' });
    assert.equal(none.status, 416);
    assert.equal(none.headers['content-range'], 'bytes */10');
    none.body.resume();
    const ignored = await req('GET', 'r', { range: 'bytes=5-3' });
    assert.equal(ignored.status, 200);
    assert.equal(await text(ignored), '0123456789');
  });

  it('answers conditional requests', async () => {
    (await put('c', Buffer.from('data'))).body.resume();
    const etag = md5('data');
    const a = await req('GET', 'c', { 'if-none-match': `"${etag}"` });
    assert.equal(a.status, 304);
    a.body.resume();
    const b = await req('GET', 'c', { 'if-match': 'nope' });
    assert.equal(b.status, 412);
    b.body.resume();
    const c = await req('GET', 'c', { 'if-modified-since': new Date(Date.now() + 60_000).toUTCString() });
    assert.equal(c.status, 304);
    c.body.resume();
    const d = await req('GET', 'c', { 'if-unmodified-since': new Date(Date.now() - 3_600_000).toUTCString() });
    assert.equal(d.status, 412);
    d.body.resume();
    const e = await req('GET', 'missing-one', { 'if-match': '*' });
    assert.equal(e.status, 412);
    e.body.resume();
    const f = await put('c', Buffer.from('again'), { 'if-none-match': '*' });
    assert.equal(f.status, 412);
    f.body.resume();
  });

  it('refuses older writes with 409 and X-Backend-Timestamp', async () => {
    const older = ts();
    const res = await put('t', Buffer.from('new'));
    assert.equal(res.status, 201);
    res.body.resume();
    const stale = await put('t', Buffer.from('old'), { 'x-timestamp': older });
    assert.equal(stale.status, 409);
    assert.ok(stale.headers['x-backend-timestamp']);
    stale.body.resume();
    assert.equal(await text(await req('GET', 't')), 'new');
  });

  it('keeps one data file per object and deletes with a tombstone', async () => {
    (await put('d', Buffer.from('one'))).body.resume();
    (await put('d', Buffer.from('two'))).body.resume();
    const { partition, nodes } = objectTarget('d');
    const dir = objectDir(cluster.devicePath((nodes[0] as RingDevice).device), partition, hashPathHex(cluster.salt, account, container, 'd'));
    assert.deepEqual(
      fs.readdirSync(dir).map((f) => path.extname(f)),
      ['.data'],
    );
    const del = await req('DELETE', 'd', { 'x-timestamp': ts(), ...containerHeaders(0) });
    assert.equal(del.status, 204);
    del.body.resume();
    assert.deepEqual(
      fs.readdirSync(dir).map((f) => path.extname(f)),
      ['.ts'],
    );
    const gone = await req('GET', 'd');
    assert.equal(gone.status, 404);
    assert.ok(gone.headers['x-backend-timestamp']);
    gone.body.resume();
    const again = await req('DELETE', 'd', { 'x-timestamp': ts() });
    assert.equal(again.status, 404);
    again.body.resume();
    const { rows } = await listing(0);
    assert.equal(
      rows.some((r) => r.name === 'd'),
      false,
    );
  });

  it('POST replaces user metadata and keeps the content type unless given', async () => {
    (await put('p', Buffer.from('x'), { 'x-object-meta-a': '1', 'x-object-meta-b': '2', 'content-type': 'text/x-one' })).body.resume();
    const post = await req('POST', 'p', { 'x-timestamp': ts(), 'x-object-meta-c': '3' });
    assert.equal(post.status, 202);
    post.body.resume();
    const head = await req('HEAD', 'p');
    assert.equal(head.headers['x-object-meta-a'], undefined);
    assert.equal(head.headers['x-object-meta-c'], '3');
    assert.equal(head.headers['content-type'], 'text/x-one');
    const post2 = await req('POST', 'p', { 'x-timestamp': ts(), 'content-type': 'text/x-two', ...containerHeaders(0) });
    assert.equal(post2.status, 202);
    post2.body.resume();
    const head2 = await req('HEAD', 'p');
    assert.equal(head2.headers['content-type'], 'text/x-two');
    assert.equal(head2.headers['x-object-meta-c'], undefined);
    const { rows } = await listing(0);
    assert.equal(rows.find((r) => r.name === 'p')?.content_type, 'text/x-two');
    const missing = await req('POST', 'nothing', { 'x-timestamp': ts() });
    assert.equal(missing.status, 404);
    missing.body.resume();
  });

  it('hides expired objects and checks X-If-Delete-At', async () => {
    const soon = Math.floor(Date.now() / 1000) + 2;
    (await put('e', Buffer.from('x'), { 'x-delete-at': String(soon) })).body.resume();
    const bad = await req('DELETE', 'e', { 'x-timestamp': ts(), 'x-if-delete-at': String(soon + 5) });
    assert.equal(bad.status, 412);
    bad.body.resume();
    const past = await put('e2', Buffer.from('x'), { 'x-delete-at': '1000' });
    assert.equal(past.status, 400);
    assert.equal(await text(past), 'X-Delete-At in past');
    for (;;) {
      const res = await req('HEAD', 'e');
      if (res.status === 404) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const open = await req('HEAD', 'e', { 'x-backend-open-expired': 'true' });
    assert.equal(open.status, 200);
  });

  it('answers 507 for a missing device and 400 for bad input', async () => {
    const { partition } = objectTarget('x');
    const n = { ...(cluster.rings.object.devices[0] as RingDevice), device: 'nope' };
    const res = await cluster.client.request(n, { method: 'GET', device: 'nope', partition, account, container, object: 'x', headers: {} });
    assert.equal(res.status, 507);
    res.body.resume();
    const noTs = await req('PUT', 'x', { 'content-type': 'text/plain', 'content-length': '0' });
    assert.equal(noTs.status, 400);
    assert.equal(await text(noTs), 'Missing X-Timestamp header');
    const noType = await cluster.request('object', node, { method: 'PUT', partition, account, container, object: 'x', headers: { 'x-timestamp': ts() }, body: Buffer.from('') });
    assert.equal(noType.status, 400);
    assert.equal(await text(noType), 'No content type');
  });

  it('saves a container update that cannot be sent as async_pending', async () => {
    await cluster.stopNode(2);
    try {
      const dead = containerNodes.findIndex((n) => n.device === 'd3');
      const { nodes } = objectTarget('pending');
      const i = nodes.findIndex((n) => n.device !== 'd3');
      const res = await put('pending', Buffer.from('x'), containerHeaders(dead), i);
      assert.equal(res.status, 201);
      res.body.resume();
      const files = await listAsyncPending(cluster.devicePath((nodes[i] as RingDevice).device));
      const records = await Promise.all(files.map((f) => readAsyncPending(f)));
      const rec = records.find((r) => r.obj === 'pending');
      assert.ok(rec);
      assert.equal(rec.op, 'PUT');
      assert.equal(rec.account, account);
      assert.equal(rec.container, container);
      assert.equal(rec.target, 'container');
      assert.equal(rec.headers['x-size'], '1');
    } finally {
      await cluster.startNode(2);
    }
  });

  it('quarantines a corrupted small object on read', async () => {
    (await put('q', Buffer.from('precious'))).body.resume();
    const { partition, nodes } = objectTarget('q');
    const dev = cluster.devicePath((nodes[0] as RingDevice).device);
    const hash = hashPathHex(cluster.salt, account, container, 'q');
    const dir = objectDir(dev, partition, hash);
    const file = path.join(dir, fs.readdirSync(dir)[0] as string);
    const bytes = fs.readFileSync(file);
    bytes[0] = (bytes[0] ?? 0) ^ 0xff;
    fs.writeFileSync(file, bytes);
    const res = await req('GET', 'q');
    assert.equal(res.status, 404);
    res.body.resume();
    assert.equal(fs.existsSync(dir), false);
    assert.ok(fs.existsSync(path.join(dev, 'quarantined', 'objects', hash)));
  });

  it('queues X-Delete-At in the expirer account and unqueues it on overwrite', async () => {
    const deleteAt = Math.floor(Date.now() / 1000) + 3600;
    const queue = expirerContainer(cluster.salt, deleteAt, account, container, 'exp');
    const placement = cluster.rings.container.getNodes(EXPIRER_ACCOUNT, queue);
    const qn = placement.nodes[0] as RingDevice;
    const res = await put('exp', Buffer.from('soon gone'), {
      'x-delete-at': String(deleteAt),
      'x-delete-at-host': `${qn.ip}:${qn.port}`,
      'x-delete-at-device': qn.device,
      'x-delete-at-partition': String(placement.partition),
      'x-delete-at-container': queue,
    });
    assert.equal(res.status, 201);
    res.body.resume();
    const list = await cluster.request('container', qn, { method: 'GET', partition: placement.partition, account: EXPIRER_ACCOUNT, container: queue, headers: {}, query: 'format=json' });
    const rows = JSON.parse(await text(list)) as { name: string; content_type: string }[];
    assert.deepEqual(
      rows.map((r) => r.name),
      [expirerTaskObject(deleteAt, account, container, 'exp')],
    );
    // An overwrite without X-Delete-At queues the removal of the old entry for the updater.
    const again = await put('exp', Buffer.from('stays'));
    assert.equal(again.status, 201);
    again.body.resume();
    const { nodes } = objectTarget('exp');
    const records = await Promise.all((await listAsyncPending(cluster.devicePath((nodes[0] as RingDevice).device))).map((f) => readAsyncPending(f)));
    const removal = records.find((r) => r.account === EXPIRER_ACCOUNT && r.op === 'DELETE');
    assert.ok(removal);
    assert.equal(removal.container, queue);
    assert.equal(removal.obj, expirerTaskObject(deleteAt, account, container, 'exp'));
  });

  it("leaves the expirer's queue alone on a DELETE that says X-Backend-Clean-Expiring-Object-Queue: no", async () => {
    const deleteAt = Math.floor(Date.now() / 1000) + 3600;
    const queueRemovals = async (name: string): Promise<number> => {
      const { nodes } = objectTarget(name);
      const records = await Promise.all((await listAsyncPending(cluster.devicePath((nodes[0] as RingDevice).device))).map((f) => readAsyncPending(f)));
      return records.filter((r) => r.account === EXPIRER_ACCOUNT && r.op === 'DELETE' && r.obj === expirerTaskObject(deleteAt, account, container, name)).length;
    };
    for (const [name, clean, removals] of [
      ['exp-quiet', 'no', 0],
      ['exp-quiet-f', 'f', 0],
      ['exp-clean', 'yes', 1],
      ['exp-default', undefined, 1],
    ] as const) {
      const res = await put(name, Buffer.from('x'), { 'x-delete-at': String(deleteAt) });
      assert.equal(res.status, 201);
      res.body.resume();
      const del = await req('DELETE', name, { 'x-timestamp': ts(), 'x-if-delete-at': String(deleteAt), ...(clean ? { 'x-backend-clean-expiring-object-queue': clean } : {}) });
      assert.equal(del.status, 204);
      del.body.resume();
      const head = await req('HEAD', name);
      head.body.resume();
      assert.equal(head.status, 404);
      assert.equal(await queueRemovals(name), removals, `${name}: queue removals saved`);
    }
  });

  it('takes replicated writes as they are, without container updates', async () => {
    const { partition, nodes } = objectTarget('replica');
    const n = nodes[1] as RingDevice;
    const stamp = ts();
    const res = await cluster.request('object', n, {
      method: 'PUT',
      partition,
      account,
      container,
      object: 'replica',
      headers: { 'x-timestamp': stamp, 'content-type': 'image/png', etag: md5('png!'), 'x-object-meta-k': 'v', 'x-delete-at': '1000', 'x-backend-replication': 'true', 'x-backend-replication-headers': 'x-custom', 'x-custom': 'kept' },
      body: Buffer.from('png!'),
    });
    assert.equal(res.status, 201);
    res.body.resume();
    const head = await req('HEAD', 'replica', { 'x-backend-replication': 'true' }, 1);
    assert.equal(head.status, 200);
    assert.equal(head.headers['x-backend-timestamp'], stamp);
    assert.equal(head.headers['x-object-meta-k'], 'v');
    head.body.resume();
    const expired = await req('HEAD', 'replica', {}, 1);
    assert.equal(expired.status, 404);
    expired.body.resume();
    const { rows } = await listing(1);
    assert.equal(
      rows.some((r) => r.name === 'replica'),
      false,
    );
    const files = await readReplicaFiles(cluster.devicePath(n.device), partition, hashPathHex(cluster.salt, account, container, 'replica'));
    assert.equal(files.data?.metadata['x-custom'], 'kept');
  });

  it('answers Expect: 100-continue with an early 409 and never reads the body', async () => {
    (await put('early', Buffer.from('newest'))).body.resume();
    const { partition, nodes } = objectTarget('early');
    const n = nodes[0] as RingDevice;
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(1000));
    const res = await cluster.request('object', n, { method: 'PUT', partition, account, container, object: 'early', headers: { 'x-timestamp': '1000000000.00000', 'content-type': 'a/b', 'content-length': '100000', expect: '100-continue' }, body });
    assert.equal(res.status, 409);
    res.body.resume();
    body.destroy();
    assert.equal(await text(await req('GET', 'early')), 'newest');
  });

  it('answers REPLICATE with suffix hashes that change with the files', async () => {
    (await put('rep', Buffer.from('x'))).body.resume();
    const { partition, nodes } = objectTarget('rep');
    const n = nodes[0] as RingDevice;
    const suffix = hashPathHex(cluster.salt, account, container, 'rep').slice(-3);
    const first = await cluster.client.request(n, { method: 'REPLICATE', device: n.device, partition, account: '', headers: {} });
    const hashes = JSON.parse(await text(first)) as Record<string, string>;
    assert.ok(hashes[suffix]);
    (await put('rep', Buffer.from('y'))).body.resume();
    const second = await cluster.client.request(n, { method: 'REPLICATE', device: n.device, partition, account: suffix, headers: {} });
    const after = JSON.parse(await text(second)) as Record<string, string>;
    assert.notEqual(after[suffix], hashes[suffix]);
  });
});
