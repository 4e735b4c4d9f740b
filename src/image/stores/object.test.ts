import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DEFAULTS } from '../../core/config.js';
import { openStores } from './index.js';
import { ObjectStore, objectLocation, segmentName } from './object.js';
import { StoreDataMissing } from './store.js';

/**
 * A tiny stand-in for the few Swift calls the store makes (container PUT,
 * object PUT/GET/HEAD/DELETE with Range, SLO manifest put/delete, prefix
 * listings), keeping objects in memory. It commits an object only when its
 * whole body arrived, as Swift's object server does.
 */
class SwiftStub {
  readonly containers = new Set<string>();
  readonly objects = new Map<string, { data: Buffer; etag: string; manifest?: { path: string; etag: string; size_bytes: number }[] }>();
  /** Bytes of the largest object PUT body received. */
  largestPut = 0;
  puts = 0;
  private server = http.createServer((req, res) => {
    this.handle(req, res).catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}/v1/AUTH_service`;
  }

  /** The stored bytes of an object (a manifest's segments joined). */
  content(name: string): Buffer | undefined {
    const object = this.objects.get(name);
    if (!object?.manifest) return object?.data;
    return Buffer.concat(object.manifest.map((s) => this.objects.get(s.path.slice(1))?.data ?? Buffer.alloc(0)));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stub');
    if (req.headers['x-auth-token'] !== 'service-token') {
      res.writeHead(401).end('<html><h1>Unauthorized</h1></html>');
      return;
    }
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (parts[0] !== 'v1' || parts[1] !== 'AUTH_service' || !parts[2]) {
      res.writeHead(404).end();
      return;
    }
    const container = parts[2];
    const object = parts.slice(3).join('/');
    const key = `${container}/${object}`;
    if (!object) {
      if (req.method === 'PUT') {
        const existed = this.containers.has(container);
        this.containers.add(container);
        res.writeHead(existed ? 202 : 201).end();
        return;
      }
      if (req.method === 'GET') {
        if (!this.containers.has(container)) return void res.writeHead(404).end();
        const prefix = url.searchParams.get('prefix') ?? '';
        const marker = url.searchParams.get('marker') ?? '';
        const names = [...this.objects.keys()]
          .filter((k) => k.startsWith(`${container}/${prefix}`))
          .map((k) => k.slice(container.length + 1))
          .filter((n) => n > marker)
          .sort()
          .slice(0, 2);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(names.map((name) => ({ name }))));
        return;
      }
      res.writeHead(405).end();
      return;
    }
    switch (req.method) {
      case 'PUT': {
        if (!this.containers.has(container)) return void (req.resume(), res.writeHead(404).end());
        const chunks: Buffer[] = [];
        let complete = false;
        req.on('end', () => (complete = true));
        try {
          for await (const chunk of req) chunks.push(chunk as Buffer);
        } catch {
          return; // The client went away mid-body: nothing is stored.
        }
        if (!complete) return;
        const data = Buffer.concat(chunks);
        this.puts += 1;
        this.largestPut = Math.max(this.largestPut, data.length);
        if (url.searchParams.get('multipart-manifest') === 'put') {
          const manifest = JSON.parse(data.toString()) as { path: string; etag: string; size_bytes: number }[];
          for (const segment of manifest) {
            const stored = this.objects.get(segment.path.slice(1));
            if (!stored || stored.etag !== segment.etag || stored.data.length !== segment.size_bytes) return void res.writeHead(400).end(`bad segment ${segment.path}`);
          }
          const etag = createHash('md5').update(manifest.map((s) => s.etag).join('')).digest('hex');
          this.objects.set(key, { data: Buffer.alloc(0), etag, manifest });
          res.writeHead(201, { ETag: `"${etag}"` }).end();
          return;
        }
        const etag = createHash('md5').update(data).digest('hex');
        if (req.headers.etag && req.headers.etag !== etag) return void res.writeHead(422).end('Unprocessable Entity');
        this.objects.set(key, { data, etag });
        res.writeHead(201, { ETag: etag }).end();
        return;
      }
      case 'GET':
      case 'HEAD': {
        const stored = this.objects.get(key);
        const data = this.content(key);
        if (!stored || !data) return void res.writeHead(404).end();
        const headers: Record<string, string> = { ETag: stored.etag, 'Content-Type': 'application/octet-stream' };
        if (stored.manifest) headers['X-Static-Large-Object'] = 'True';
        const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
        if (range && req.method === 'GET') {
          const start = Number(range[1]);
          const end = Math.min(Number(range[2]), data.length - 1);
          res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${data.length}`, 'Content-Length': String(end - start + 1) });
          res.end(data.subarray(start, end + 1));
          return;
        }
        res.writeHead(200, { ...headers, 'Content-Length': String(data.length) });
        res.end(req.method === 'GET' ? data : undefined);
        return;
      }
      case 'DELETE': {
        const stored = this.objects.get(key);
        if (url.searchParams.get('multipart-manifest') === 'delete') {
          if (!stored) return void res.writeHead(404).end();
          for (const segment of stored.manifest ?? []) this.objects.delete(segment.path.slice(1));
          this.objects.delete(key);
          const body = { 'Number Deleted': (stored.manifest?.length ?? 0) + 1, 'Number Not Found': 0, 'Response Body': '', 'Response Status': '200 OK', Errors: [] };
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
          return;
        }
        if (!stored) return void res.writeHead(404).end();
        this.objects.delete(key);
        res.writeHead(204).end();
        return;
      }
      default:
        res.writeHead(405).end();
    }
  }
}

async function bytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A source that yields `data` in uneven chunks. */
function chunked(data: Buffer): Readable {
  const sizes = [1000, 7, 65536, 100_000, 33];
  return Readable.from(
    (function* pieces() {
      let offset = 0;
      for (let i = 0; offset < data.length; i += 1) {
        const size = sizes[i % sizes.length] ?? 1;
        yield data.subarray(offset, offset + size);
        offset += size;
      }
    })(),
  );
}

describe('object image store', () => {
  const stub = new SwiftStub();
  let store: ObjectStore;
  const KiB = 1024;
  before(async () => {
    await stub.start();
    store = new ObjectStore('swift', 'images in object storage', {
      container: 'glance',
      segmentSize: 64 * KiB,
      singleObjectLimit: 16 * KiB,
      connection: { endpoint: async () => stub.endpoint, token: async () => 'service-token' },
    });
  });
  after(async () => {
    store.close();
    await stub.stop();
  });

  it('writes a small image as one object in its container, created on first use', async () => {
    const id = randomUUID();
    const data = randomBytes(10 * KiB);
    const stored = await store.add(id, chunked(data));
    assert.deepEqual(stored, { url: `object://glance/${id}`, size: data.length });
    assert.ok(stub.containers.has('glance'));
    assert.ok(stub.content(`glance/${id}`)?.equals(data));
    assert.ok(store.owns(stored.url));
    assert.equal(store.localPath(), null);
    assert.ok((await bytes(await store.get(stored.url))).equals(data));
    assert.ok((await bytes(await store.get(stored.url, { start: 5, end: 9 }))).equals(data.subarray(5, 10)));
    assert.equal(await store.size(stored.url), data.length);
    await store.delete(stored.url);
    assert.equal(stub.objects.has(`glance/${id}`), false);
    await assert.rejects(store.get(stored.url), StoreDataMissing);
    await assert.rejects(store.size(stored.url), StoreDataMissing);
    await store.delete(stored.url);
  });

  it('writes an empty image', async () => {
    const stored = await store.add(randomUUID(), Readable.from([]));
    assert.equal(stored.size, 0);
    assert.equal((await bytes(await store.get(stored.url))).length, 0);
  });

  it('writes a large image as segments no bigger than segment_size and a static large object manifest', async () => {
    const id = randomUUID();
    const data = randomBytes(300 * KiB + 123);
    stub.largestPut = 0;
    const stored = await store.add(id, chunked(data));
    assert.deepEqual(stored, { url: objectLocation('glance', id), size: data.length });
    assert.ok(stub.largestPut <= 64 * KiB, `a PUT of ${stub.largestPut} bytes`);
    const manifest = stub.objects.get(`glance/${id}`)?.manifest;
    assert.ok(manifest);
    assert.deepEqual(
      manifest.map((s) => s.path),
      [1, 2, 3, 4, 5].map((n) => `/glance/${segmentName(id, n)}`),
    );
    assert.deepEqual(manifest.map((s) => s.size_bytes), [65536, 65536, 65536, 65536, data.length - 4 * 65536]);
    assert.ok((await bytes(await store.get(stored.url))).equals(data));
    // A range across a segment boundary.
    const range = { start: 65536 - 10, end: 65536 + 10 };
    assert.ok((await bytes(await store.get(stored.url, range))).equals(data.subarray(range.start, range.end + 1)));
    assert.equal(await store.size(stored.url), data.length);
    await store.delete(stored.url);
    assert.deepEqual([...stub.objects.keys()].filter((k) => k.includes(id)), []);
  });

  it('an image of exactly one segment is still one manifest and one segment', async () => {
    const id = randomUUID();
    const data = randomBytes(64 * KiB);
    const stored = await store.add(id, chunked(data));
    assert.equal(stub.objects.get(`glance/${id}`)?.manifest?.length, 1);
    assert.ok((await bytes(await store.get(stored.url))).equals(data));
  });

  it('leaves nothing behind when the source fails mid-way', async () => {
    const id = randomUUID();
    const data = randomBytes(200 * KiB);
    const failing = Readable.from(
      (async function* pieces() {
        yield data.subarray(0, 150 * KiB);
        throw new Error('the client went away');
      })(),
    );
    await assert.rejects(store.add(id, failing), /the client went away/);
    assert.deepEqual([...stub.objects.keys()].filter((k) => k.includes(id)), []);
  });

  it('deletes segments an interrupted write left, with the image', async () => {
    const id = randomUUID();
    const stored = await store.add(id, Readable.from([randomBytes(KiB)]));
    // As if an earlier attempt had died after two segments.
    for (const n of [1, 2]) stub.objects.set(`glance/${segmentName(id, n)}`, { data: Buffer.from('x'), etag: 'x' });
    await store.delete(stored.url);
    assert.deepEqual([...stub.objects.keys()].filter((k) => k.includes(id)), []);
  });

  it('reports refusals of object storage, and reads only its own locations', async () => {
    const refused = new ObjectStore('swift', 'wrong token', {
      container: 'glance',
      segmentSize: 64 * KiB,
      connection: { endpoint: async () => stub.endpoint, token: async () => 'not-the-token' },
    });
    try {
      await assert.rejects(refused.add(randomUUID(), Readable.from([Buffer.from('x')])), /answered 401 to PUT container glance/);
      await assert.rejects(refused.get('object://glance/x'), /answered 401/);
    } finally {
      refused.close();
    }
    assert.equal(store.owns('object://other/x'), false);
    assert.equal(store.owns('file:///tmp/x'), false);
    await assert.rejects(store.get('object://other/x'), StoreDataMissing);
    assert.throws(() => new ObjectStore('bad', 'bad', { container: 'a/b', segmentSize: 1, connection: { endpoint: async () => '', token: async () => '' } }), /without '\/'/);
  });

  it('is configured as an image store of type object', async () => {
    const config = structuredClone(DEFAULTS.image);
    config.stores = { swift: { type: 'object', container: 'images', segment_size: 1024 } };
    config.default_store = 'swift';
    const connection = { endpoint: async () => stub.endpoint, token: async () => 'service-token' };
    const stores = await openStores(config, '/nonexistent', { objectStorage: connection });
    const swift = stores.all.get('swift');
    assert.ok(swift instanceof ObjectStore);
    try {
      assert.equal(stores.defaultId, 'swift');
      assert.equal(stores.forUrl('object://images/abc'), swift);
      const stored = await swift.add('abc', Readable.from([randomBytes(3000)]));
      assert.equal(stub.objects.get('images/abc')?.manifest?.length, 3);
      assert.equal(stored.size, 3000);
    } finally {
      swift.close();
    }
    await assert.rejects(openStores(config, '/nonexistent'), /needs the image service's connection to object storage/);
  });
});
