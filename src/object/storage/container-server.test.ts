import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashPathHex, Timestamp } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import type { StorageResponse } from './client.js';
import { createStorageCluster, type StorageCluster } from './testing.js';

async function text(res: StorageResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res.body as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

let ticks = Timestamp.now().ticks;
function ts(): string {
  ticks += 1;
  return new Timestamp(ticks).internal;
}

describe('container and account servers', () => {
  let cluster: StorageCluster;
  const account = 'AUTH_c';

  before(async () => {
    cluster = await createStorageCluster({ accountReportDelayMs: 10 });
    const a = cluster.rings.account.getNodes(account);
    for (const n of a.nodes) {
      const res = await cluster.request('account', n, { method: 'PUT', partition: a.partition, account, headers: { 'x-timestamp': ts() } });
      assert.equal(res.status, 201);
      res.body.resume();
    }
  });
  after(async () => {
    await cluster.close();
  });

  /** Sends a request to every replica of a container (with its account replica) and returns the statuses. */
  async function containerAll(method: string, container: string, headers: Record<string, string> = {}): Promise<number[]> {
    const a = cluster.rings.account.getNodes(account);
    const c = cluster.rings.container.getNodes(account, container);
    const stamp = ts();
    return Promise.all(
      c.nodes.map(async (n, i) => {
        const an = a.nodes[i] as RingDevice;
        const res = await cluster.request('container', n, {
          method,
          partition: c.partition,
          account,
          container,
          headers: { 'x-timestamp': stamp, 'x-account-host': `${an.ip}:${an.port}`, 'x-account-device': an.device, 'x-account-partition': String(a.partition), ...headers },
        });
        res.body.resume();
        return res.status;
      }),
    );
  }

  async function containerReq(method: string, container: string, options: { headers?: Record<string, string>; query?: string; replica?: number } = {}): Promise<StorageResponse> {
    const c = cluster.rings.container.getNodes(account, container);
    return cluster.request('container', c.nodes[options.replica ?? 0] as RingDevice, { method, partition: c.partition, account, container, headers: options.headers ?? {}, ...(options.query ? { query: options.query } : {}) });
  }

  /** Puts an object row on every replica of the container, as object servers do. */
  async function row(container: string, name: string, size: number, extra: Record<string, string> = {}): Promise<void> {
    const c = cluster.rings.container.getNodes(account, container);
    const stamp = ts();
    for (const n of c.nodes) {
      const res = await cluster.client.request(n, {
        method: 'PUT',
        device: n.device,
        partition: c.partition,
        account,
        container,
        object: name,
        headers: { 'x-timestamp': stamp, 'x-size': String(size), 'x-content-type': 'text/plain', 'x-etag': 'e'.repeat(32), ...extra },
      });
      assert.equal(res.status, 201);
      res.body.resume();
    }
  }

  async function accountReq(method: string, options: { headers?: Record<string, string>; query?: string; replica?: number } = {}): Promise<StorageResponse> {
    const a = cluster.rings.account.getNodes(account);
    return cluster.request('account', a.nodes[options.replica ?? 0] as RingDevice, { method, partition: a.partition, account, headers: options.headers ?? {}, ...(options.query ? { query: options.query } : {}) });
  }

  it('creates a container (201, then 202) with metadata, and shows its stats', async () => {
    assert.deepEqual(await containerAll('PUT', 'one', { 'x-container-meta-color': 'red', 'x-container-read': '.r:*' }), [201, 201, 201]);
    assert.deepEqual(await containerAll('PUT', 'one'), [202, 202, 202]);
    const head = await containerReq('HEAD', 'one');
    assert.equal(head.status, 204);
    assert.equal(head.headers['x-container-object-count'], '0');
    assert.equal(head.headers['x-container-bytes-used'], '0');
    assert.equal(head.headers['x-container-meta-color'], 'red');
    assert.equal(head.headers['x-container-read'], '.r:*');
    assert.match(head.headers['x-put-timestamp'] ?? '', /^\d{10}\.\d{5}$/);
    assert.equal(head.headers['x-backend-storage-policy-index'], '0');
    head.body.resume();
  });

  it('counts object rows, newest timestamp winning, and lists them', async () => {
    await containerAll('PUT', 'two');
    await row('two', 'b', 10);
    await row('two', 'a', 5);
    await row('two', 'b', 7);
    const head = await containerReq('HEAD', 'two', { replica: 2 });
    assert.equal(head.headers['x-container-object-count'], '2');
    assert.equal(head.headers['x-container-bytes-used'], '12');
    head.body.resume();
    const list = await containerReq('GET', 'two', { query: 'format=json' });
    assert.equal(list.status, 200);
    assert.equal(list.headers['content-type'], 'application/json; charset=utf-8');
    const rows = JSON.parse(await text(list)) as { name: string; bytes: number; last_modified: string }[];
    assert.deepEqual(
      rows.map((r) => [r.name, r.bytes]),
      [
        ['a', 5],
        ['b', 7],
      ],
    );
    assert.match(rows[0]?.last_modified ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  });

  it('pages listings with every query option', async () => {
    await containerAll('PUT', 'pages');
    for (const name of ['a', 'b/1', 'b/2', 'b/3/x', 'c', 'd/', 'é']) await row('pages', name, 1);
    const names = async (query: string): Promise<string[]> => {
      const res = await containerReq('GET', 'pages', { query: `format=json&${query}` });
      const body = await text(res);
      return body ? (JSON.parse(body) as { name?: string; subdir?: string }[]).map((r) => r.name ?? `dir:${r.subdir}`) : [];
    };
    assert.deepEqual(await names(''), ['a', 'b/1', 'b/2', 'b/3/x', 'c', 'd/', 'é']);
    assert.deepEqual(await names('limit=2'), ['a', 'b/1']);
    assert.deepEqual(await names('marker=b%2F2'), ['b/3/x', 'c', 'd/', 'é']);
    assert.deepEqual(await names('end_marker=c'), ['a', 'b/1', 'b/2', 'b/3/x']);
    assert.deepEqual(await names('prefix=b%2F'), ['b/1', 'b/2', 'b/3/x']);
    assert.deepEqual(await names('delimiter=%2F'), ['a', 'dir:b/', 'c', 'dir:d/', 'é']);
    assert.deepEqual(await names('prefix=b%2F&delimiter=%2F'), ['b/1', 'b/2', 'dir:b/3/']);
    assert.deepEqual(await names('path=b'), ['b/1', 'b/2']);
    assert.deepEqual(await names('reverse=true'), ['é', 'd/', 'c', 'b/3/x', 'b/2', 'b/1', 'a']);
    assert.deepEqual(await names('reverse=true&delimiter=%2F'), ['é', 'dir:d/', 'c', 'dir:b/', 'a']);
    assert.deepEqual(await names('reverse=true&marker=c&end_marker=a'), ['b/3/x', 'b/2', 'b/1']);
    assert.deepEqual(await names('delimiter=%2F&limit=3'), ['a', 'dir:b/', 'c']);
    const plain = await containerReq('GET', 'pages', { query: 'prefix=b%2F&delimiter=%2F' });
    assert.equal(plain.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(await text(plain), 'b/1\nb/2\nb/3/\n');
    const xml = await containerReq('GET', 'pages', { query: 'format=xml&limit=1' });
    assert.match(
      await text(xml),
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<container name="pages"><object><name>a<\/name><hash>e{32}<\/hash><bytes>1<\/bytes><content_type>text\/plain<\/content_type><last_modified>[0-9T:.-]{26}<\/last_modified><\/object><\/container>$/,
    );
    const json = await containerReq('GET', 'pages', { query: 'format=json&prefix=%C3%A9' });
    assert.match(await text(json), /^\[\{"bytes":1,"hash":"e{32}","name":"\\u00e9","content_type":"text\/plain","last_modified":"[0-9T:.-]{26}"\}\]$/);
    const empty = await containerReq('GET', 'pages', { query: 'prefix=zzz' });
    assert.equal(empty.status, 204);
    empty.body.resume();
    const emptyJson = await containerReq('GET', 'pages', { query: 'format=json&prefix=zzz' });
    assert.equal(emptyJson.status, 200);
    assert.equal(await text(emptyJson), '[]');
    const tooMany = await containerReq('GET', 'pages', { query: 'limit=10001' });
    assert.equal(tooMany.status, 412);
    assert.equal(await text(tooMany), 'Maximum limit is 10000');
  });

  it('uses swift_bytes of a content type as the listed size', async () => {
    await containerAll('PUT', 'slo');
    await row('slo', 'manifest', 120, { 'x-content-type': 'application/octet-stream;swift_bytes=1048576' });
    const res = await containerReq('GET', 'slo', { query: 'format=json' });
    const [entry] = JSON.parse(await text(res)) as { bytes: number; content_type: string }[];
    assert.equal(entry?.bytes, 1048576);
    assert.equal(entry?.content_type, 'application/octet-stream');
  });

  it('refuses to delete a container that holds objects, then deletes it', async () => {
    await containerAll('PUT', 'del');
    await row('del', 'x', 3);
    assert.deepEqual(await containerAll('DELETE', 'del'), [409, 409, 409]);
    const c = cluster.rings.container.getNodes(account, 'del');
    for (const n of c.nodes) {
      const res = await cluster.client.request(n, { method: 'DELETE', device: n.device, partition: c.partition, account, container: 'del', object: 'x', headers: { 'x-timestamp': ts() } });
      assert.equal(res.status, 204);
      res.body.resume();
    }
    assert.deepEqual(await containerAll('DELETE', 'del'), [204, 204, 204]);
    const head = await containerReq('HEAD', 'del');
    assert.equal(head.status, 404);
    assert.ok((head.headers['x-backend-delete-timestamp'] ?? '') > (head.headers['x-backend-put-timestamp'] ?? ''));
    head.body.resume();
    assert.deepEqual(await containerAll('DELETE', 'del'), [404, 404, 404]);
    assert.deepEqual(await containerAll('PUT', 'del'), [201, 201, 201]);
  });

  it('updates metadata with POST and enforces the overall limits', async () => {
    await containerAll('PUT', 'meta');
    const post = await containerReq('POST', 'meta', { headers: { 'x-timestamp': ts(), 'x-container-meta-a': '1', 'x-container-sysmeta-b': '2' } });
    assert.equal(post.status, 204);
    post.body.resume();
    const head = await containerReq('HEAD', 'meta');
    assert.equal(head.headers['x-container-meta-a'], '1');
    assert.equal(head.headers['x-container-sysmeta-b'], '2');
    head.body.resume();
    const remove = await containerReq('POST', 'meta', { headers: { 'x-timestamp': ts(), 'x-container-meta-a': '' } });
    remove.body.resume();
    const head2 = await containerReq('HEAD', 'meta');
    assert.equal(head2.headers['x-container-meta-a'], undefined);
    head2.body.resume();
    const big: Record<string, string> = { 'x-timestamp': ts() };
    for (let i = 0; i < 91; i++) big[`x-container-meta-k${i}`] = 'v';
    const tooMany = await containerReq('POST', 'meta', { headers: big });
    assert.equal(tooMany.status, 400);
    assert.equal(await text(tooMany), 'Too many metadata items; max 90');
    const missing = await containerReq('POST', 'nope', { headers: { 'x-timestamp': ts() } });
    assert.equal(missing.status, 404);
    missing.body.resume();
  });

  it('reports object counts to the account and lists containers', async () => {
    await containerAll('PUT', 'acct');
    await row('acct', 'o1', 100);
    await row('acct', 'o2', 50);
    await cluster.flushAccountReports();
    for (let replica = 0; replica < 3; replica++) {
      const head = await accountReq('HEAD', { replica });
      assert.equal(head.status, 204);
      assert.ok(Number(head.headers['x-account-container-count']) >= 1);
      head.body.resume();
    }
    const list = await accountReq('GET', { query: 'format=json&prefix=acct' });
    assert.equal(list.status, 200);
    const [entry] = JSON.parse(await text(list)) as { name: string; count: number; bytes: number; last_modified: string }[];
    assert.equal(entry?.name, 'acct');
    assert.equal(entry?.count, 2);
    assert.equal(entry?.bytes, 150);
    const plain = await accountReq('GET', { query: 'prefix=acc' });
    assert.equal(await text(plain), 'acct\n');
  });

  it('marks a deleted account and refuses to re-create it', async () => {
    const other = 'AUTH_gone';
    const a = cluster.rings.account.getNodes(other);
    const n = a.nodes[0] as RingDevice;
    const put = await cluster.request('account', n, { method: 'PUT', partition: a.partition, account: other, headers: { 'x-timestamp': ts(), 'x-account-meta-temp-url-key': 'k' } });
    assert.equal(put.status, 201);
    put.body.resume();
    const head = await cluster.request('account', n, { method: 'HEAD', partition: a.partition, account: other, headers: {} });
    assert.equal(head.headers['x-account-meta-temp-url-key'], 'k');
    head.body.resume();
    const del = await cluster.request('account', n, { method: 'DELETE', partition: a.partition, account: other, headers: { 'x-timestamp': ts() } });
    assert.equal(del.status, 204);
    assert.equal(del.headers['x-account-status'], 'Deleted');
    del.body.resume();
    const after = await cluster.request('account', n, { method: 'HEAD', partition: a.partition, account: other, headers: {} });
    assert.equal(after.status, 404);
    assert.equal(after.headers['x-account-status'], 'Deleted');
    after.body.resume();
    const again = await cluster.request('account', n, { method: 'PUT', partition: a.partition, account: other, headers: { 'x-timestamp': ts() } });
    assert.equal(again.status, 403);
    assert.equal(await text(again), 'Recently deleted');
    const never = await cluster.request('account', n, { method: 'HEAD', partition: a.partition, account: 'AUTH_never', headers: {} });
    assert.equal(never.status, 404);
    assert.equal(never.headers['x-account-status'], undefined);
    never.body.resume();
  });

  it('autocreates containers of hidden accounts on object rows', async () => {
    const c = cluster.rings.container.getNodes('.expiring_objects', '0000086400');
    const n = c.nodes[0] as RingDevice;
    const res = await cluster.client.request(n, {
      method: 'PUT',
      device: n.device,
      partition: c.partition,
      account: '.expiring_objects',
      container: '0000086400',
      object: '0000086400-AUTH_c/x/y',
      headers: { 'x-timestamp': ts(), 'x-size': '0', 'x-content-type': 'text/plain', 'x-etag': 'd41d8cd98f00b204e9800998ecf8427e' },
    });
    assert.equal(res.status, 201);
    res.body.resume();
    const orphan = await containerReq('PUT', 'never-made', { headers: { 'x-timestamp': ts() } });
    orphan.body.resume();
    const cn = cluster.rings.container.getNodes(account, 'no-such');
    const missing = await cluster.client.request(cn.nodes[0] as RingDevice, {
      method: 'PUT',
      device: (cn.nodes[0] as RingDevice).device,
      partition: cn.partition,
      account,
      container: 'no-such',
      object: 'o',
      headers: { 'x-timestamp': ts(), 'x-size': '0', 'x-content-type': 'text/plain', 'x-etag': 'x' },
    });
    assert.equal(missing.status, 404);
    missing.body.resume();
  });

  it('replicates a container db over REPLICATE', async () => {
    await containerAll('PUT', 'rep');
    const c = cluster.rings.container.getNodes(account, 'rep');
    const [first, second] = c.nodes as [RingDevice, RingDevice];
    // A row only the first replica has.
    const only = await cluster.client.request(first, { method: 'PUT', device: first.device, partition: c.partition, account, container: 'rep', object: 'lonely', headers: { 'x-timestamp': ts(), 'x-size': '4', 'x-content-type': 'a/b', 'x-etag': 'x' } });
    only.body.resume();
    const hash = hashPathHex(cluster.salt, account, 'rep');
    const { ContainerBroker, dbPath } = await import('./broker.js');
    const local = ContainerBroker.open(dbPath(cluster.devicePath(first.device), 'container', c.partition, hash));
    try {
      const send = async (body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
        const res = await cluster.client.request(second, { method: 'REPLICATE', device: second.device, partition: c.partition, account: hash, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) });
        const t = await text(res);
        return { status: res.status, json: t && res.status < 300 ? (JSON.parse(t) as Record<string, unknown>) : {} };
      };
      const info = local.replicationInfo();
      const sync = await send({ op: 'sync', info });
      assert.equal(sync.status, 200);
      assert.equal(sync.json.point, -1);
      const merged = await send({ op: 'merge_items', items: local.getItemsSince(-1, 1000), source: info.id });
      assert.equal(merged.status, 202);
      const again = await send({ op: 'sync', info });
      assert.equal(again.json.point, info.max_row);
      const list = await containerReq('GET', 'rep', { query: 'format=json', replica: 1 });
      assert.deepEqual(
        (JSON.parse(await text(list)) as { name: string }[]).map((r) => r.name),
        ['lonely'],
      );
      const bad = await send({ op: 'nope' });
      assert.equal(bad.status, 400);
    } finally {
      local.close();
    }
  });

  it('reports a replicated container to its account only when its account row changed', async () => {
    await containerAll('PUT', 'calm');
    await row('calm', 'a', 10);
    await cluster.flushAccountReports();
    const c = cluster.rings.container.getNodes(account, 'calm');
    const [first, second] = c.nodes as [RingDevice, RingDevice];
    const hash = hashPathHex(cluster.salt, account, 'calm');
    const { AccountBroker, ContainerBroker, dbPath } = await import('./broker.js');
    const a = cluster.rings.account.getNodes(account);
    /** Every account replica's container row of 'calm' (with its ROWID: a report rewrites the row). */
    const accountRows = (): unknown[] =>
      a.nodes.map((n) => {
        const broker = AccountBroker.open(dbPath(cluster.devicePath(n.device), 'account', a.partition, hashPathHex(cluster.salt, account)));
        try {
          return broker.getItemsSince(-1, 10000).find((r) => r.name === 'calm');
        } finally {
          broker.close();
        }
      });
    const send = async (body: unknown): Promise<number> => {
      const res = await cluster.client.request(second, { method: 'REPLICATE', device: second.device, partition: c.partition, account: hash, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) });
      res.body.resume();
      return res.status;
    };
    const local = ContainerBroker.open(dbPath(cluster.devicePath(first.device), 'container', c.partition, hash));
    try {
      const before = accountRows();
      assert.ok(before.every((r) => r !== undefined));
      // A replicator pass over replicas in sync: sync, and rows the peer has already.
      const info = local.replicationInfo();
      assert.equal(await send({ op: 'sync', info }), 200);
      assert.equal(await send({ op: 'merge_items', items: local.getItemsSince(-1, 1000), source: info.id }), 202);
      await cluster.flushAccountReports();
      assert.deepEqual(accountRows(), before, 'no report, no rewritten account row');

      // A row the peer did not have changes its counts: that is reported.
      local.putObjects([{ name: 'b', created_at: ts(), size: 5, content_type: 'text/plain', etag: 'e', deleted: 0, storage_policy_index: 0, ctype_timestamp: '', meta_timestamp: '' }]);
      assert.equal(await send({ op: 'merge_items', items: local.getItemsSince(info.max_row, 1000), source: info.id }), 202);
      await cluster.flushAccountReports();
      const list = await accountReq('GET', { query: 'format=json&prefix=calm', replica: 1 });
      const [entry] = JSON.parse(await text(list)) as { name: string; count: number; bytes: number }[];
      assert.deepEqual([entry?.name, entry?.count, entry?.bytes], ['calm', 2, 15]);
    } finally {
      local.close();
    }
  });
});
