import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ServiceClient } from '../../core/auth/service-client.js';
import { createBus } from '../../core/bus/index.js';
import { injectJson } from '../../core/testing.js';
import { createImage } from '../service.js';
import { createObjectTestCloud, type ObjectTestCloud } from '../../object/testing.js';
import { ObjectStore } from './object.js';
import { StoreDataMissing } from './store.js';

async function bytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A source of `size` random bytes in 100 KiB chunks, and their MD5 once read. */
function randomSource(size: number): { stream: Readable; md5: () => string } {
  const hash = createHash('md5');
  const stream = Readable.from(
    (function* pieces() {
      for (let left = size; left > 0; left -= 100 * 1024) {
        const chunk = randomBytes(Math.min(left, 100 * 1024));
        hash.update(chunk);
        yield chunk;
      }
    })(),
  );
  return { stream, md5: () => hash.copy().digest('hex') };
}

/** The image store against the real object proxy and storage servers, as the image service uses it: its service user's catalog and token. */
describe('object image store on object storage', () => {
  let cloud: ObjectTestCloud;
  let store: ObjectStore;
  let account = '';
  let client: ServiceClient;
  const KiB = 1024;

  before(async () => {
    cloud = await createObjectTestCloud();
    client = new ServiceClient({ authUrl: cloud.authUrl, username: 'swift', password: 'swift-secret', projectName: 'service', region: 'RegionOne' });
    account = new URL(await client.endpoint('object-store')).pathname;
    store = new ObjectStore('swift', 'images in object storage', {
      container: 'glance',
      segmentSize: 256 * KiB,
      singleObjectLimit: 64 * KiB,
      connection: { endpoint: () => client.endpoint('object-store'), token: () => client.token() },
    });
  });
  after(async () => {
    store.close();
    await cloud.close();
  });

  /** Names in the glance container starting with `prefix`, listed as the service user. */
  const listed = async (prefix: string): Promise<string[]> => {
    const user = { token: await client.token(), userId: '', projectId: '' };
    const reply = await cloud.request('GET', `${account}/glance`, { user, query: `format=json&prefix=${encodeURIComponent(prefix)}` });
    assert.equal(reply.status, 200, reply.text);
    return reply.json<{ name: string }[]>().map((o) => o.name);
  };

  it('writes, reads, sizes and deletes a small image in the service account', async () => {
    const id = randomUUID();
    const data = randomBytes(20 * KiB);
    const stored = await store.add(id, Readable.from([data]));
    assert.deepEqual(stored, { url: `object://glance/${id}`, size: data.length });
    assert.match(account, /^\/v1\/AUTH_[0-9a-f]+$/);
    assert.ok((await bytes(await store.get(stored.url))).equals(data));
    assert.ok((await bytes(await store.get(stored.url, { start: 100, end: 199 }))).equals(data.subarray(100, 200)));
    assert.equal(await store.size(stored.url), data.length);
    await store.delete(stored.url);
    await assert.rejects(store.get(stored.url), StoreDataMissing);
    await assert.rejects(store.size(stored.url), StoreDataMissing);
    await store.delete(stored.url);
  });

  it('writes a large image as a static large object of segments, read whole and by ranges, deleted with its segments', async () => {
    const id = randomUUID();
    const size = 1100 * KiB + 17;
    const source = randomSource(size);
    const stored = await store.add(id, source.stream);
    assert.equal(stored.size, size);
    assert.equal(await store.size(stored.url), size);
    const whole = await bytes(await store.get(stored.url));
    assert.equal(whole.length, size);
    assert.equal(createHash('md5').update(whole).digest('hex'), source.md5());
    // A range across the first segment boundary, and the last bytes.
    const across = await bytes(await store.get(stored.url, { start: 256 * KiB - 5, end: 256 * KiB + 4 }));
    assert.ok(across.equals(whole.subarray(256 * KiB - 5, 256 * KiB + 5)));
    const tail = await bytes(await store.get(stored.url, { start: size - 3, end: size - 1 }));
    assert.ok(tail.equals(whole.subarray(size - 3)));
    assert.deepEqual(await listed(id), [id, ...[1, 2, 3, 4, 5].map((n) => `${id}-0000${n}`)]);
    const manifest = await cloud.request('GET', `${account}/glance/${id}`, { user: { token: await client.token(), userId: '', projectId: '' }, query: 'multipart-manifest=get' });
    assert.deepEqual(
      manifest.json<{ bytes: number }[]>().map((s) => s.bytes),
      [256 * KiB, 256 * KiB, 256 * KiB, 256 * KiB, size - 4 * 256 * KiB],
    );
    await store.delete(stored.url);
    await assert.rejects(store.get(stored.url), StoreDataMissing);
    assert.deepEqual(await listed(id), []);
  });

  it('leaves no segment behind when the upload fails mid-way', async () => {
    const id = randomUUID();
    const failing = Readable.from(
      (async function* pieces() {
        yield randomBytes(300 * KiB);
        throw new Error('the client went away');
      })(),
    );
    await assert.rejects(store.add(id, failing), /the client went away/);
    await assert.rejects(store.size(`object://glance/${id}`), StoreDataMissing);
    assert.deepEqual(await listed(id), []);
  });

  it('keeps the images of the image service there: upload, download with Range, delete', async () => {
    const config = structuredClone(cloud.config);
    config.image.stores = { swift: { type: 'object', segment_size: 256 * KiB } };
    config.image.default_store = 'swift';
    config.bus.url = `memory://image-${randomUUID()}`;
    const bus = await createBus(config.bus.url);
    const { images, app, database } = await createImage(config, bus, { identity: { authUrl: cloud.authUrl, password: 'swift-secret', username: 'swift' } });
    try {
      await app.ready();
      const alpha = cloud.alpha.token;
      const created = await injectJson(app, 'POST', '/v2/images', { token: alpha, payload: { name: 'cirros', disk_format: 'raw', container_format: 'bare' } });
      assert.equal(created.status, 201);
      const id = String(created.body.id);
      const data = randomBytes(600 * KiB + 3);
      assert.equal((await injectJson(app, 'PUT', `/v2/images/${id}/file`, { token: alpha, payload: data })).status, 204);
      const shown = await injectJson(app, 'GET', `/v2/images/${id}`, { token: alpha });
      assert.equal(shown.body.status, 'active');
      assert.equal(shown.body.size, data.length);
      assert.deepEqual(await listed(id), [id, `${id}-00001`, `${id}-00002`, `${id}-00003`]);
      const whole = await injectJson(app, 'GET', `/v2/images/${id}/file`, { token: alpha });
      assert.equal(whole.status, 200);
      assert.ok(whole.raw.equals(data));
      const part = await injectJson(app, 'GET', `/v2/images/${id}/file`, { token: alpha, headers: { range: 'bytes=262140-262150' } });
      assert.equal(part.status, 206);
      assert.ok(part.raw.equals(data.subarray(262140, 262151)));
      assert.equal((await injectJson(app, 'DELETE', `/v2/images/${id}`, { token: alpha })).status, 204);
      assert.deepEqual(await listed(id), []);
    } finally {
      await app.close();
      await Promise.allSettled([...images.running]);
      await database.close();
      await bus.close();
    }
  });
});
